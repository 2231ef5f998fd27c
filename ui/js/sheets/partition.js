// Partition… (a device under Devices): on a disk, a partition added in its free space (with a
// new volume if asked); on a partition, resized within the free space after it, or deleted —
// the destructive choice names what it deletes and is not the default.
import { $ } from '../dom.js';
import { baseName, scaled, typedSize } from '../format.js';
import { state } from '../state.js';
import { offerVolumeFormats, selectedDevice, refreshDevices } from '../devices.js';
import { longJob } from './progress.js';
import { closeWithCancel } from './fields.js';

export function openPartition() {
  const d = selectedDevice();
  if (!d || state.job !== null) return;
  const disk = state.devices.includes(d);
  $('partition-name').textContent = `“${baseName(d.path)}”`;
  $('partition-free').textContent = disk
    ? `${d.partitions.length} partition${d.partitions.length === 1 ? '' : 's'} on ${scaled(d.size)}: a new one goes in the first free space it fits.`
    : `${scaled(d.size)}${d.file_system ? `, ${d.file_system}` : ''}.`;
  for (const o of $('partition-action').options) o.hidden = disk !== (o.value === 'add');
  $('partition-action').value = disk ? 'add' : 'resize';
  $('partition-action-row').hidden = disk;
  $('partition-size').value = '';
  $('partition-size-unit').value = '6';
  $('partition-format').value = '';
  $('partition-volume-name').value = 'Untitled';
  actionChosen();
  $('partition-sheet').hidden = false;
  $('partition-size').focus();
}

/** The sheet follows the choice: Delete asks nothing, names what it deletes, and is not the default. */
function actionChosen() {
  const action = $('partition-action').value;
  const d = selectedDevice();
  $('partition-size-row').hidden = action === 'delete';
  $('partition-size').placeholder = action === 'add' ? 'all the free space' : '';
  $('partition-format-row').hidden = action !== 'add';
  $('partition-volume-row').hidden = action !== 'add' || !$('partition-format').value;
  const deleting = action === 'delete';
  $('partition-warning').textContent = deleting && d
    ? `Everything on ${d.path}${d.file_system ? ` (${d.file_system})` : ''} will be lost.` : '';
  $('partition-start').textContent = deleting && d ? `Delete “${baseName(d.path)}”` : 'Apply';
  $('partition-start').className = deleting ? 'destructive' : 'default';
  $('partition-close').className = deleting ? 'default' : '';
}

/** The request the sheet's answers make, or a problem to say. */
function partitionRequest(d) {
  const action = $('partition-action').value;
  const typed = $('partition-size').value.trim();
  const size = typed ? typedSize(typed, $('partition-size-unit').value) : null;
  if (typed && !(size > 0)) return { problem: 'The size must be a number greater than zero.' };
  if (action === 'add') {
    const format = $('partition-format').value || null;
    return { request: { action, disk: d.path, size, format, name: $('partition-volume-name').value.trim() || 'Untitled' } };
  }
  if (action === 'resize' && !size) return { problem: 'Give the partition its new size.' };
  return { request: action === 'resize' ? { action, partition: d.path, size } : { action, partition: d.path } };
}

async function partition(event) {
  event.preventDefault();
  const d = selectedDevice();
  const { request, problem } = partitionRequest(d);
  if (problem) {
    $('partition-warning').textContent = problem;
    return;
  }
  $('partition-sheet').hidden = true;
  await longJob({
    name: 'Partition', phase: 'Partitioning', command: 'partition_device', label: `“${baseName(d.path)}”`,
    args: { request },
    done: async (report) => {
      await refreshDevices();
      return `${baseName(report.partition)} ${report.action}: ${scaled(report.size)} at ${scaled(report.offset)} of ${baseName(report.disk)}.`;
    },
  });
}

export function setUpPartitionSheet() {
  offerVolumeFormats($('partition-format'));
  $('partition-form').onsubmit = partition;
  $('partition-action').onchange = actionChosen;
  $('partition-format').onchange = actionChosen;
  closeWithCancel('partition');
}
