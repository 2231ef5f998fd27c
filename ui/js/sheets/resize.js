// Images › Resize…: the sheet shows the sizes the image can take, then resizes it.
import { invoke, message } from '../api.js';
import { $, status } from '../dom.js';
import { bytes, baseName } from '../format.js';
import { state } from '../state.js';
import { openPath } from '../images.js';
import { longJob } from './progress.js';
import { closeWithCancel } from './fields.js';

/** The sizes the selected image can take, as resize_limits gave them when the sheet opened. */
let limits = null;

export async function openResize() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  $('resize-name').textContent = baseName(image.info.path);
  $('resize-error').textContent = '';
  try {
    const l = await invoke('resize_limits', { path: image.info.path });
    limits = l;
    $('resize-limits').textContent = `From ${bytes(l.minimum)} to ${bytes(l.maximum)}; now ${bytes(l.current)}.`;
    $('resize-size').value = (l.current / 1e6).toFixed(1);
    $('resize-sheet').hidden = false;
  } catch (e) {
    status(message(e), true);
  }
}

async function resize(event) {
  event.preventDefault();
  const image = state.selected;
  const size = Math.round(Number($('resize-size').value) * 1e6 / 512) * 512;
  if (!(size >= limits.minimum && size <= limits.maximum)) {
    $('resize-error').textContent = `Give a size from ${bytes(limits.minimum)} to ${bytes(limits.maximum)}.`;
    return;
  }
  $('resize-sheet').hidden = true;
  const report = await longJob('Resize', 'Resizing', 'resize_image', { path: image.info.path, size });
  if (!report) return;
  await openPath(image.info.path);
  status(`Resized ${baseName(image.info.path)} to ${bytes(report.new_size)}.`);
}

export function setUpResizeSheet() {
  $('resize-form').onsubmit = resize;
  closeWithCancel('resize');
}
