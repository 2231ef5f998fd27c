// What the selection allows: the menus and the toolbar enable their items by the same rules, so
// nothing offered is refused for a reason the window already knew.
import { state } from './state.js';
import { attachmentOf } from './mounts.js';

/** Whether the image is encrypted, by the engine's word ("AES-128", "AES-256"). */
export const isEncrypted = (info) => !!info.encryption;

/** Each menu item's id, and whether it can be chosen now. */
export function allowed() {
  const image = state.selected;
  const info = image?.info;
  const idle = state.job === null;
  const mounted = !!image && !!attachmentOf(image);
  const hasVolumes = !!info && info.partitions.some((p) => p.volumes.length > 0);
  const onImage = !!image && idle;
  return {
    'new-blank': idle,
    'new-folder': idle,
    'new-device': idle && state.device !== null,
    open: idle,
    'open-bundle': idle,
    close: !!image,
    mount: onImage && !mounted && hasVolumes,
    'mount-read-only': onImage && !mounted && hasVolumes,
    eject: idle && mounted,
    verify: onImage,
    'first-aid': onImage && hasVolumes,
    convert: onImage,
    restore: onImage,
    burn: onImage,
    resize: onImage && !mounted && info.abilities.resize,
    compact: onImage && !mounted && info.abilities.compact,
    chpass: onImage && isEncrypted(info),
    'forget-password': !!image && isEncrypted(info),
  };
}
