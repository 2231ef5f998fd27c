// The toolbar: its buttons, enabled for what the selection allows.
import { $ } from './dom.js';
import { state } from './state.js';
import { attachmentOf, mountOrEject } from './mounts.js';
import { pick, select, verify } from './images.js';
import { openNewImage } from './sheets/new-image.js';
import { openConvert } from './sheets/convert.js';
import { openBurn } from './sheets/burn.js';

export function renderToolbar() {
  const image = state.selected;
  $('mount').disabled = !image || state.job !== null;
  $('mount').textContent = image && attachmentOf(image) ? 'Eject' : 'Mount';
  $('verify').disabled = !image || state.job !== null;
  $('convert').disabled = !image || state.job !== null;
  $('show-info').disabled = !image;
  $('burn').disabled = !image || state.job !== null;
}

export function setUpToolbar() {
  $('open').onclick = () => pick();
  $('new-image').onclick = () => openNewImage(false);
  $('mount').onclick = mountOrEject;
  $('verify').onclick = verify;
  $('convert').onclick = openConvert;
  $('burn').onclick = openBurn;
  $('show-info').onclick = () => state.selected && select(state.selected.info.path);
}
