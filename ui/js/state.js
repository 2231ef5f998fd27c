// What the window shows, and its drawing: each part of the window is a view drawn from `state`.
import { invoke, message } from './api.js';
import { $, status } from './dom.js';

export const state = { images: [], selected: null, volume: null, job: null, nextJob: 1, attached: [], devices: [], device: null, devicesTold: false };

const views = [];

/** Adds `draw` to the views render() draws, in the order they are added. */
export function addView(draw) { views.push(draw); }

/** Draws the window again from `state`. */
export function render() {
  for (const draw of views) draw();
}

/**
 * Draws a new selection: the last one's status line goes, the pane starts at its top, and the
 * selected row scrolls into view.
 */
export function showSelection() {
  status('');
  render();
  $('pane').scrollTop = 0;
  document.querySelector('#sidebar li.selected')?.scrollIntoView({ block: 'nearest' });
}

/** Sets `state[key]` to what `command` answers, drawing the window again when it changed. */
export async function refresh(command, key) {
  try {
    const now = await invoke(command);
    if (JSON.stringify(now) !== JSON.stringify(state[key])) {
      state[key] = now;
      render();
    }
  } catch (e) {
    status(message(e), true);
  }
}
