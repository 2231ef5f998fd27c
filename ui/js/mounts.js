// Mounted images: what the kernel has mounted (by this window or by `dimg attach`), Mount and Eject.
import { invoke, message } from './api.js';
import { $, status } from './dom.js';
import { baseName } from './format.js';
import { state, render, refresh } from './state.js';

/** What is attached of an image (by this window or by `dimg attach`), or undefined. */
export function attachmentOf(image) {
  return state.attached.find((a) => a.image === image.info.path || a.image === image.realPath);
}

/** Where volume `id` of the image is mounted, or null. */
export function mountPointOf(image, id) {
  return attachmentOf(image)?.mounts.find((m) => m.volume === id)?.mount_point ?? null;
}

/** The mounts as the kernel has them: polled, so that mounts made elsewhere show up too. */
const refreshAttached = () => refresh('attached', 'attached');

export function watchMounts() {
  refreshAttached();
  setInterval(refreshAttached, 2000);
}

export async function mountOrEject() {
  const image = state.selected;
  if (!image) return;
  const name = baseName(image.info.path);
  const eject = !!attachmentOf(image);
  $('mount').disabled = true;
  status(eject ? `Ejecting ${name}…` : `Mounting ${name}…`);
  try {
    if (eject) {
      await invoke('eject_image', { path: attachmentOf(image).image });
      status(`${name} ejected.`);
    } else {
      const a = await invoke('mount_image', { path: image.info.path });
      image.realPath = a.image;
      status(`${name} mounted at ${a.mounts.map((m) => m.mount_point).join(', ')}.`);
    }
  } catch (e) {
    status(message(e), true);
  }
  await refreshAttached();
  render();
}
