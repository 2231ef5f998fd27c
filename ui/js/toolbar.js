// The toolbar: its buttons, enabled for what the selection allows.
import { $ } from './dom.js';
import { state } from './state.js';
import { attachmentOf } from './mounts.js';

export function renderToolbar() {
  const image = state.selected;
  $('mount').disabled = !image || state.job !== null;
  $('mount').textContent = image && attachmentOf(image) ? 'Eject' : 'Mount';
  $('verify').disabled = !image || state.job !== null;
  $('convert').disabled = !image || state.job !== null;
  $('show-info').disabled = !image;
  $('burn').disabled = !image || state.job !== null;
}
