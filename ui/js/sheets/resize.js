// Images › Resize…: the sheet shows the sizes the image can take, then resizes it.
import { invoke } from '../api.js';
import { $ } from '../dom.js';
import { bytes, baseName, typedSize } from '../format.js';
import { state } from '../state.js';
import { openPath } from '../images.js';
import { longJob } from './progress.js';
import { closeWithCancel } from './fields.js';
import { failed } from './alert.js';

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
    $('resize-size').value = (l.current / 1e6).toFixed(1).replace(/\.0$/, '');
    $('resize-size-unit').value = '6';
    $('resize-sheet').hidden = false;
    $('resize-size').focus();
  } catch (e) {
    failed(`Resizing “${baseName(image.info.path)}”`, e);
  }
}

async function resize(event) {
  event.preventDefault();
  const image = state.selected;
  const size = typedSize($('resize-size').value, $('resize-size-unit').value);
  if (!(size >= limits.minimum && size <= limits.maximum)) {
    $('resize-error').textContent = `Give a size from ${bytes(limits.minimum)} to ${bytes(limits.maximum)}.`;
    return;
  }
  $('resize-sheet').hidden = true;
  await longJob({
    name: 'Resize', phase: 'Resizing', command: 'resize_image', args: { path: image.info.path, size },
    done: async (report) => {
      await openPath(image.info.path);
      return `“${baseName(image.info.path)}” resized to ${bytes(report.new_size)}.`;
    },
  });
}

export function setUpResizeSheet() {
  $('resize-form').onsubmit = resize;
  closeWithCancel('resize');
}
