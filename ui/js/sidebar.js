// The sidebar: the machine's devices, the open images each with its volumes, and its keyboard.
import { $ } from './dom.js';
import { scaled, baseName } from './format.js';
import { state } from './state.js';
import { invoke } from './api.js';
import { mount, mountPointOf, mountedReadOnly } from './mounts.js';
import { failed } from './sheets/alert.js';
import { selectDevice } from './devices.js';
import { select, closeSelected } from './images.js';
import { isEncrypted } from './can.js';

/**
 * A sidebar row: its name, its detail line, and its icon as Disk Utility draws its kinds
 * (`icon-internal-disk`, `icon-external-disk`, `icon-optical-disc`, `icon-disk-image`,
 * `icon-volume`, `icon-apfs-container`; the lock and the eject mark are `encrypted` and `mounted`).
 */
function sidebarItem(text, kind, className, selected, onclick, icon) {
  const li = document.createElement('li');
  li.textContent = text;
  li.title = text; // the whole name, where the row ellipsizes it
  if (kind) {
    const k = document.createElement('span');
    k.className = 'kind';
    k.textContent = kind;
    li.append(k);
  }
  li.className = `${className} icon-${icon}${selected ? ' selected' : ''}`;
  li.onclick = onclick;
  return li;
}

/** "⏏ /media/…" at the end of a row, after a lock when the mount is read-only. */
function appendMountPoint(item, point, readOnly = false) {
  const at = document.createElement('span');
  at.className = 'mount-point';
  if (readOnly) {
    const lock = document.createElement('span');
    lock.className = 'read-only';
    lock.title = 'read-only';
    lock.setAttribute('aria-label', 'read-only');
    at.append(lock);
  }
  at.append(`⏏ ${point}`);
  item.append(at);
}

/** A disk (`className` 'device') or one of its partitions. */
function deviceItem(d, className) {
  const about = [d.kind, scaled(d.size)];
  if (className === 'device') about.push(d.removable ? 'removable' : 'internal');
  else if (d.file_system) about.splice(0, 1, d.file_system);
  const name = baseName(d.path) + (d.model ? ` — ${d.model}` : '');
  const icon = className !== 'device' ? 'volume'
    : d.kind === 'rom' ? 'optical-disc' : d.removable ? 'external-disk' : 'internal-disk';
  const item = sidebarItem(name, about.join(' · '), className, state.device === d.path, () => selectDevice(d.path), icon);
  item.classList.add(d.kind === 'rom' ? 'optical' : 'drive');
  for (const point of d.mount_points) appendMountPoint(item, point);
  return item;
}

/** A volume's sidebar name, as Disk Utility names it: the volume's own, else its partition's. */
const volumeName = (p, v) => v.name.trim() || (p.name === 'whole disk' ? p.file_system : p.name);

/** A volume's detail line: its file system (and APFS role), its partition, its size. */
function volumeDetail(p, v) {
  const system = v.role ? `${p.file_system} ${v.role}` : p.file_system;
  const partition = p.name === 'whole disk' ? 'whole disk' : `partition ${p.index} “${p.name}”`;
  return [system, partition, scaled(p.size)].join(' · ');
}

/** An APFS container's row: its volumes follow it, one level further in. */
function containerItem(image, p) {
  const path = image.info.path;
  return sidebarItem('APFS Container', `${p.name} · ${scaled(p.size)}`, 'container', false,
    () => select(path), 'apfs-container');
}

/** An image's row, then a row for each of its volumes (an APFS container's under its row). */
function imageItems(image) {
  const path = image.info.path;
  const mine = image === state.selected;
  const volumes = image.info.partitions.flatMap((p) => [
    ...(p.file_system === 'APFS' && p.volumes.length ? [containerItem(image, p)] : []),
    ...p.volumes.map((v) => {
      const point = mountPointOf(image, v.id);
      const icon = p.file_system === 'ISO 9660' ? 'optical-disc' : 'volume';
      const item = sidebarItem(volumeName(p, v), volumeDetail(p, v), 'volume',
        mine && state.volume === v.id, () => select(path, v.id), icon);
      if (p.file_system === 'APFS') item.classList.add('in-container');
      if (v.encrypted) item.classList.add('encrypted');
      if (v.locked) {
        item.classList.add('locked');
        item.title = `${item.title} (locked: select it to enter its password)`;
      }
      if (point) {
        const readOnly = mountedReadOnly(image);
        item.classList.add('mounted');
        item.title = `Mounted${readOnly ? ' read-only' : ''} at ${point}`;
        appendMountPoint(item, point, readOnly);
      }
      return item;
    }),
  ]);
  const row = sidebarItem(baseName(path), `${image.info.format} · ${scaled(image.info.disk_size)}`,
    'image', mine && state.volume === null, () => select(path), 'disk-image');
  if (isEncrypted(image.info)) row.classList.add('encrypted');
  return [row, ...volumes];
}

export function renderSidebar() {
  $('devices').replaceChildren(...state.devices.flatMap((d) => [deviceItem(d, 'device'), ...d.partitions.map((p) => deviceItem(p, 'volume device-part'))]));
  $('images').replaceChildren(...state.images.flatMap(imageItems));
}

/**
 * The keyboard, as in Disk Utility's sidebar: ↑/↓ move through images and volumes, Return opens
 * an image's first volume — and on a volume, shows it in the file manager (mounting it first) —,
 * Delete closes the selected image, Ctrl/Cmd-I shows its info. Keys typed into a field or a
 * sheet are the field's.
 */
function onKey(e) {
  if (e.target.closest?.('input, select, textarea') || [...document.querySelectorAll('.sheet')].some((s) => !s.hidden)) return;
  const rows = [...document.querySelectorAll('#images li')];
  const at = rows.findIndex((li) => li.classList.contains('selected'));
  const image = state.selected;
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    const next = rows[Math.min(Math.max(at + (e.key === 'ArrowDown' ? 1 : -1), 0), rows.length - 1)];
    next?.click();
  } else if (e.key === 'Enter' && image && state.volume === null) {
    const next = rows.slice(at + 1).find((li) => !li.classList.contains('container'));
    next?.classList.contains('volume') && next.click();
  } else if (e.key === 'Enter' && image) {
    openVolume(image, state.volume);
  } else if ((e.key === 'Delete' || e.key === 'Backspace') && image) {
    closeSelected();
  } else if (e.key.toLowerCase() === 'i' && (e.ctrlKey || e.metaKey) && image) {
    select(image.info.path);
  } else {
    return;
  }
  e.preventDefault();
}

/** The volume in the file manager: where it is mounted, mounting the image first if it is not. */
async function openVolume(image, id) {
  const point = mountPointOf(image, id) ?? ((await mount()) && mountPointOf(image, id));
  if (point) invoke('reveal', { path: point }).catch((e) => failed('Opening the volume', e));
}

export function setUpKeyboard() {
  document.addEventListener('keydown', onKey);
}
