// Mounted images: what the kernel has mounted (by this window or by `dimg attach`), Mount,
// Mount Read-Only and Eject.
import { invoke, message } from './api.js';
import { alertSheet, failed } from './sheets/alert.js';
import { selectedDevice, unmountable, mountDevice } from './devices.js';
import { $, status } from './dom.js';
import { baseName } from './format.js';
import { state, render, refresh } from './state.js';
import { lockedVolume, unlockVolume } from './images.js';

/** What is attached of an image (by this window or by `dimg attach`), or undefined. */
export function attachmentOf(image) {
  return state.attached.find((a) => a.image === image.info.path || a.image === image.realPath);
}

/** Where volume `id` of the image is mounted, or null. */
export function mountPointOf(image, id) {
  return attachmentOf(image)?.mounts.find((m) => m.volume === id)?.mount_point ?? null;
}

/** Whether the image is mounted read-only: asked to be, or its format or file system is not written. */
export function mountedReadOnly(image) {
  const a = attachmentOf(image);
  return !!a && !a.writable;
}

/** The mounts as the kernel has them: polled, so that mounts made elsewhere show up too. */
const refreshAttached = () => refresh('attached', 'attached');

export function watchMounts() {
  refreshAttached();
  setInterval(refreshAttached, 2000);
}

/**
 * Mount: the selected image's volumes, read/write where the image and their file system allow,
 * or (`readOnly`) never written. Answers where they are mounted, in a sentence (null when they
 * are not: the alert says why). A locked volume selected, or an image whose every volume is
 * locked, asks for the password first and mounts once it is given.
 */
export async function mount(readOnly = false) {
  const image = state.selected;
  if (!image || attachmentOf(image)) return null;
  const volumes = image.info.partitions.flatMap((p) => p.volumes);
  const locked = lockedVolume(image, state.volume) ?? (volumes.every((v) => v.locked) ? volumes[0] : null);
  if (locked) {
    unlockVolume(image.info.path, locked, () => mount(readOnly));
    return null;
  }
  const name = baseName(image.info.path);
  $('mount').disabled = true;
  status(`Mounting “${name}”…`);
  let said = null;
  try {
    const a = await invoke('mount_image', { path: image.info.path, readOnly });
    image.realPath = a.image;
    const how = a.writable ? '' : ' read-only';
    said = `“${name}” mounted${how} at ${a.mounts.map((m) => m.mount_point).join(', ')}.`;
    status(said);
  } catch (e) {
    status('');
    failed(`Mounting “${name}”`, e);
  }
  await refreshAttached();
  render();
  return said;
}

/**
 * Eject: the selected image's volumes unmounted and their server ended. A writable one's
 * server first writes and syncs every change: once that returns, the image may be unplugged.
 */
export async function eject() {
  const image = state.selected;
  const a = image && attachmentOf(image);
  if (!a) return;
  const name = baseName(image.info.path);
  $('mount').disabled = true;
  status(a.writable ? `Ejecting ${name}: writing its changes…` : `Ejecting ${name}…`);
  try {
    await invoke('eject_image', { path: a.image });
    status(a.writable ? `“${name}” ejected: every change is written, and it can be safely unplugged.` : `${name} ejected.`);
  } catch (e) {
    status('');
    alertSheet(`“${name}” is still mounted, and nothing written to it is lost`, message(e));
  }
  await refreshAttached();
  render();
}

/** The toolbar's button: Mount, or Eject for a mounted image (Unmount for a device). */
export function mountOrEject() {
  const device = selectedDevice();
  if (device) mountDevice(unmountable(device));
  else if (state.selected && attachmentOf(state.selected)) eject();
  else mount();
}
