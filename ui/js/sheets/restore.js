// Images › Restore…: the selected image onto a disk under Devices, the loss named first. The
// disk the running system is on is not offered, and the sheet says why when it is all there is.
import { $ } from '../dom.js';
import { scaled, bytes, baseName } from '../format.js';
import { state } from '../state.js';
import { withPartitions, holdsSystem } from '../devices.js';
import { longJob } from './progress.js';
import { closeWithCancel } from './fields.js';
import { alertSheet } from './alert.js';

export function openRestore() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  const system = state.devices.filter(holdsSystem);
  const targets = withPartitions(state.devices.filter((d) => !holdsSystem(d)));
  if (!targets.length) {
    const why = system.length
      ? `${system.map((d) => baseName(d.path)).join(', ')} ${system.length > 1 ? 'hold' : 'holds'} the running system, and no other disk is listed under Devices`
      : 'no disk is listed under Devices';
    alertSheet(`There is no disk to restore “${baseName(image.info.path)}” onto: ${why}.`);
    return;
  }
  $('restore-name').textContent = `“${baseName(image.info.path)}”`;
  $('restore-target').replaceChildren(...targets.map((d) =>
    new Option(`${baseName(d.path)}${d.model ? ` — ${d.model}` : ''} (${scaled(d.size)})`, d.path)));
  if (targets.some((d) => d.path === state.device)) $('restore-target').value = state.device;
  $('restore-verify').checked = true;
  $('restore-error').textContent = '';
  warnRestore();
  $('restore-sheet').hidden = false;
  $('restore-target').focus();
}

/** Says, before anything is written, what the chosen disk will lose; the button names it too. */
function warnRestore() {
  const d = withPartitions(state.devices).find((x) => x.path === $('restore-target').value);
  if (!d) return;
  const what = [d.model, bytes(d.size), d.file_system].filter(Boolean).join(', ');
  $('restore-warning').textContent = `Everything on ${d.path} (${what}) will be erased and replaced by the image's disk.`;
  $('restore-start').textContent = `Erase “${baseName(d.path)}” and Restore`;
}

async function restore(event) {
  event.preventDefault();
  const image = state.selected;
  const target = $('restore-target').value;
  $('restore-sheet').hidden = true;
  await longJob({
    name: 'Restore', phase: 'Restoring', command: 'restore_image',
    args: { path: image.info.path, target, verify: $('restore-verify').checked },
    done: (report) => `“${baseName(image.info.path)}” restored onto ${report.target}: ${bytes(report.written)}${report.verified ? ', read back identical' : ''}.`,
  });
}

export function setUpRestoreSheet() {
  $('restore-form').onsubmit = restore;
  $('restore-target').onchange = warnRestore;
  closeWithCancel('restore');
}
