// What the selection allows: the menus and the toolbar enable their items by the same rules, so
// nothing offered is refused for a reason the window already knew.
import { state } from './state.js';
import { attachmentOf } from './mounts.js';
import { selectedDevice, diskOf, holdsSystem, mountable, unmountable, withPartitions } from './devices.js';

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
  const device = idle ? selectedDevice() : undefined;
  // The running system's disk is never changed (the engine refuses it too).
  const changeable = !!device && !holdsSystem(diskOf(device) ?? device);
  return {
    'new-blank': idle,
    'new-folder': idle,
    'new-device': !!device,
    open: idle,
    'open-bundle': idle,
    'open-location': idle,
    close: !!image,
    mount: (onImage && !mounted && hasVolumes) || (!!device && mountable(device)),
    'mount-read-only': onImage && !mounted && hasVolumes,
    eject: (idle && mounted) || (!!device && unmountable(device)),
    verify: onImage,
    'first-aid': (onImage && hasVolumes) || (!!device && withPartitions([device]).some((d) => d.file_system)),
    convert: onImage,
    restore: onImage,
    burn: onImage,
    resize: onImage && !mounted && info.abilities.resize,
    compact: onImage && !mounted && info.abilities.compact,
    chpass: onImage && isEncrypted(info),
    'forget-password': !!image && isEncrypted(info),
    erase: changeable,
    partition: changeable,
  };
}
