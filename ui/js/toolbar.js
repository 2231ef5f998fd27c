// The toolbar: fixed-width items with an icon and a label, enabled by what the selection allows
// (the menus' rules); and the window's title, the selected item's name.
import { $ } from './dom.js';
import { state } from './state.js';
import { setWindowTitle } from './api.js';
import { baseName } from './format.js';
import { allowed } from './can.js';
import { attachmentOf, mountOrEject } from './mounts.js';
import { selectedDevice, unmountable } from './devices.js';
import { pick, select, verify } from './images.js';
import { openNewImage } from './sheets/new-image.js';
import { openConvert } from './sheets/convert.js';
import { openBurn } from './sheets/burn.js';
import { openRestore } from './sheets/restore.js';
import { openFirstAid } from './sheets/first-aid.js';
import { openErase } from './sheets/erase.js';
import { openPartition } from './sheets/partition.js';

/** The selected item's name: a volume's, an image's, a device's; else the app's. */
function selectedName() {
  const image = state.selected;
  if (image && state.volume !== null) {
    const v = image.info.partitions.flatMap((p) => p.volumes).find((w) => w.id === state.volume);
    if (v?.name.trim()) return v.name;
  }
  if (image) return baseName(image.info.path);
  if (state.device) return baseName(state.device);
  return 'dimg';
}

let title = null;

export function renderToolbar() {
  const can = allowed();
  const image = state.selected;
  const device = selectedDevice();
  // A device says Unmount where an image says Eject.
  const mounted = image ? !!attachmentOf(image) : !!device && unmountable(device);
  $('new-image').disabled = !can['new-blank'];
  $('open').disabled = !can.open;
  $('first-aid').disabled = !can['first-aid'];
  $('partition').disabled = !can.partition;
  $('erase').disabled = !can.erase;
  $('restore').disabled = !can.restore;
  $('mount').disabled = mounted ? !can.eject : !can.mount;
  $('mount').querySelector('.label').textContent = mounted ? (device ? 'Unmount' : 'Eject') : 'Mount';
  $('mount').dataset.icon = mounted ? 'eject' : 'mount';
  $('mount').title = mounted ? 'Eject the image: unmount its volumes (a writable one\'s changes are written first)'
    : 'Mount the image\'s volumes where the file manager shows them';
  $('show-info').disabled = !image;
  $('verify').disabled = !can.verify;
  $('convert').disabled = !can.convert;
  $('burn').disabled = !can.burn;
  const name = selectedName();
  if (name !== title) {
    title = name;
    setWindowTitle(name === 'dimg' ? 'dimg' : `${name} — dimg`).catch(() => {});
  }
}

export function setUpToolbar() {
  // Each button: an icon over its label, both of fixed width, so nothing shifts as labels change.
  for (const b of document.querySelectorAll('#toolbar button')) {
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = b.textContent;
    const icon = document.createElement('span');
    icon.className = 'icon';
    b.replaceChildren(icon, label);
  }
  $('open').onclick = () => pick();
  $('new-image').onclick = () => openNewImage(false);
  $('first-aid').onclick = openFirstAid;
  $('partition').onclick = openPartition;
  $('erase').onclick = openErase;
  $('restore').onclick = openRestore;
  $('mount').onclick = mountOrEject;
  $('verify').onclick = verify;
  $('convert').onclick = openConvert;
  $('burn').onclick = openBurn;
  $('show-info').onclick = () => state.selected && select(state.selected.info.path);
}
