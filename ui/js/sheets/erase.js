// Erase… (a device under Devices): the disk or partition becomes one new volume — Mac OS
// Extended written by dimg, ExFAT, MS-DOS (FAT), ext4 or NTFS by udisks2 — a whole disk with a
// new partition map. The sheet names what is lost; its volumes are unmounted first, as Disk
// Utility does.
import { invoke } from '../api.js';
import { $ } from '../dom.js';
import { bytes, baseName, scaled } from '../format.js';
import { state } from '../state.js';
import { offerVolumeFormats, selectedDevice, unmountable, refreshDevices, withPartitions } from '../devices.js';
import { longJob } from './progress.js';
import { closeWithCancel } from './fields.js';

/** Whether `d` is a whole disk (its map is the erase's to choose), not a partition. */
const isDisk = (d) => state.devices.includes(d);

export function openErase() {
  const d = selectedDevice();
  if (!d || state.job !== null) return;
  const name = baseName(d.path);
  $('erase-name').textContent = `“${name}”`;
  const held = withPartitions([d]).filter((x) => x.file_system)
    .map((x) => `${x.label ? `“${x.label}”, ` : ''}${x.file_system}`);
  $('erase-warning').textContent = `Erasing “${name}” (${bytes(d.size)}${held.length ? `: ${held.join('; ')}` : ''}) `
    + `will permanently delete everything on it${unmountable(d) ? ', and it will be unmounted first' : ''}. This can't be undone.`;
  $('erase-volume-name').value = 'Untitled';
  $('erase-format').value = 'APFS';
  $('erase-scheme').value = 'GPT';
  $('erase-scheme-row').hidden = !isDisk(d);
  $('erase-start').textContent = `Erase “${name}”`;
  $('erase-error').textContent = '';
  $('erase-sheet').hidden = false;
  $('erase-volume-name').focus();
}

async function erase(event) {
  event.preventDefault();
  const d = selectedDevice();
  const name = $('erase-volume-name').value.trim();
  if (!name) {
    $('erase-error').textContent = 'Give the new volume a name.';
    return;
  }
  const request = { device: d.path, format: $('erase-format').value, name, scheme: isDisk(d) ? $('erase-scheme').value : null };
  $('erase-sheet').hidden = true;
  await longJob({
    name: 'Erase', phase: 'Erasing', command: 'erase_device', label: `“${baseName(d.path)}”`,
    args: { request },
    done: async (report) => {
      await refreshDevices();
      return `“${baseName(d.path)}” erased: a new ${report.file_system} volume “${report.name}” of ${scaled(report.size)} on ${report.volume}.`;
    },
    before: () => (unmountable(d) ? invoke('unmount_device', { path: d.path }) : null),
  });
}

export function setUpEraseSheet() {
  offerVolumeFormats($('erase-format'));
  $('erase-form').onsubmit = erase;
  closeWithCancel('erase');
}
