// The machine's disks and their partitions, as `dimg list` gives them: watched, and one shown in the pane.
import { invoke, listen } from './api.js';
import { $, row } from './dom.js';
import { bytes, baseName } from './format.js';
import { state, showSelection, refresh } from './state.js';

/** Disks, each followed by its partitions. */
export const withPartitions = (disks) => disks.flatMap((d) => [d, ...d.partitions]);

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
const refreshDevices = () => refresh('devices', 'devices');
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
