// The machine's disks and their partitions, as `dimg list` gives them: watched, and one shown in the pane.
import { invoke, listen } from './api.js';
import { $, row, status } from './dom.js';
import { bytes, baseName } from './format.js';
import { failed } from './sheets/alert.js';
import { state, showSelection, refresh } from './state.js';

/** Disks, each followed by its partitions. */
export const withPartitions = (disks) => disks.flatMap((d) => [d, ...d.partitions]);

/** The volumes a device can be given (Erase, Partition's new volume), as `dimg erase -fs` names them. */
export const VOLUME_FORMATS = [
  ['APFS', 'APFS'],
  ['APFSX', 'APFS (Case-sensitive)'],
  ['JHFS+', 'Mac OS Extended (Journaled)'],
  ['HFS+', 'Mac OS Extended'],
  ['JHFSX', 'Mac OS Extended (Case-sensitive, Journaled)'],
  ['ExFAT', 'ExFAT'],
  ['MS-DOS', 'MS-DOS (FAT)'],
  ['ext4', 'ext4'],
  ['NTFS', 'NTFS'],
];

/** Adds an option per volume format to `select`. */
export const offerVolumeFormats = (select) => select.append(...VOLUME_FORMATS.map(([value, text]) => new Option(text, value)));

/** The selected disk or partition, as `dimg list` describes it, or undefined. */
export const selectedDevice = () => withPartitions(state.devices).find((d) => d.path === state.device);

/** The disk `d` is (or is a partition of). */
export const diskOf = (d) => state.devices.find((disk) => withPartitions([disk]).includes(d));

/** Whether the disk holds the running system (in one of its partitions): nothing changes it. */
export const holdsSystem = (disk) => withPartitions([disk]).some((x) => x.mount_points.includes('/'));

/** Its volumes: a partitioned disk's partitions, else itself. */
const volumesOf = (d) => (d.partitions.length ? d.partitions : [d]);

/** Whether Mount has a volume of `d` to mount, and Unmount one to unmount. */
export const mountable = (d) => volumesOf(d).some((v) => v.file_system && !v.mount_points.length);
export const unmountable = (d) => withPartitions([d]).some((v) => v.mount_points.length > 0);

/**
 * Mount or Unmount of the selected device, through udisks2 (the desktop's mounts, under
 * /media/USER): the status line says where, an alert why not.
 */
export async function mountDevice(unmount) {
  const d = selectedDevice();
  if (!d) return;
  try {
    const changed = await invoke(unmount ? 'unmount_device' : 'mount_device', { path: d.path });
    const where = changed.map((c) => `${baseName(c.device)} ${unmount ? 'from' : 'at'} ${c.mount_point}`).join(', ');
    status(`${unmount ? 'Unmounted' : 'Mounted'} ${where}.`);
  } catch (e) {
    failed(`${unmount ? 'Unmounting' : 'Mounting'} “${baseName(d.path)}”`, e);
  }
  await refreshDevices();
}

/** Selects a disk or partition under Devices: the pane shows it instead of an image. */
export function selectDevice(path) {
  state.device = path;
  state.selected = null;
  state.volume = null;
  showSelection();
}

/** The selected disk or partition: its facts and partitions. */
export function renderDevicePane() {
  const shown = withPartitions(state.devices).find((d) => d.path === state.device);
  $('device-info').hidden = !shown;
  if (!shown) return;
  $('device-name').textContent = baseName(shown.path);
  const facts = [['Device', shown.path], ['Model', shown.model || '—'], ['Size', bytes(shown.size)], ['Kind', shown.kind],
    ['Removable', shown.removable ? 'yes' : 'no'], ['File system', shown.file_system || '—'],
    ['Mount point', shown.mount_points.join(', ') || 'not mounted']];
  $('device-facts').replaceChildren(...facts.map((fact) => row(fact, 'th')));
  $('device-partitions').tBodies[0].replaceChildren(...shown.partitions.map((p) =>
    row([p.path, p.file_system || '—', bytes(p.size), p.mount_points.join(', ')])));
}

/** The devices: loop devices attached, sticks plugged in or ejected appear. */
export const refreshDevices = () => refresh('devices', 'devices');
let devicesDue = null;
/** A change udisks2 told of; the burst one attach makes is listed once. */
const devicesChanged = () => {
  clearTimeout(devicesDue);
  devicesDue = setTimeout(refreshDevices, 150);
};

/** Told of each change where udisks2 runs; polled where nothing tells. */
export function watchDevices() {
  listen('devices-changed', devicesChanged).then(() => invoke('watch_devices')).then((told) => {
    state.devicesTold = told;
    refreshDevices();
    if (!told) setInterval(refreshDevices, 2000);
  });
}
