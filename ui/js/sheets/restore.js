// Images › Restore…: the selected image onto a disk under Devices, the loss named first.
import { $, status } from '../dom.js';
import { scaled, bytes, baseName } from '../format.js';
import { state } from '../state.js';
import { withPartitions } from '../devices.js';
import { longJob } from './progress.js';
import { closeWithCancel } from './fields.js';

export function openRestore() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  // Not the disk the running system is on, nor its partitions: the engine would refuse them.
  const system = (d) => withPartitions([d]).some((x) => x.mount_points.includes('/'));
  const targets = withPartitions(state.devices.filter((d) => !system(d)));
  if (!targets.length) {
    status('No disk to restore onto: none is listed under Devices.', true);
    return;
  }
  $('restore-name').textContent = `“${baseName(image.info.path)}”`;
  $('restore-target').replaceChildren(...targets.map((d) => {
    const o = document.createElement('option');
    o.value = d.path;
    o.textContent = `${baseName(d.path)}${d.model ? ` — ${d.model}` : ''} (${scaled(d.size) || bytes(d.size)})`;
    return o;
  }));
  if (state.device) $('restore-target').value = state.device;
  $('restore-error').textContent = '';
  warnRestore();
  $('restore-sheet').hidden = false;
}

/** Says, before anything is written, what the chosen disk will lose. */
function warnRestore() {
  const d = withPartitions(state.devices).find((x) => x.path === $('restore-target').value);
  if (!d) return;
  const what = [d.model, bytes(d.size), d.file_system].filter(Boolean).join(', ');
  $('restore-warning').textContent = `Everything on ${d.path} (${what}) will be erased and replaced by the image's disk.`;
}

async function restore(event) {
  event.preventDefault();
  const image = state.selected;
  const target = $('restore-target').value;
  $('restore-sheet').hidden = true;
  const report = await longJob('Restore', 'Restoring', 'restore_image',
    { path: image.info.path, target, verify: $('restore-verify').checked });
  if (!report) return;
  status(`Restored ${baseName(image.info.path)} onto ${report.target}: ${bytes(report.written)}${report.verified ? ', read back identical' : ''}.`);
}

export function setUpRestoreSheet() {
  $('restore-form').onsubmit = restore;
  $('restore-target').onchange = warnRestore;
  closeWithCancel('restore');
}
