// The progress sheet: a long Rust command's progress, with Cancel, while the window stays live.
import { invoke, Channel, message } from '../api.js';
import { $, status } from '../dom.js';
import { scaled, baseName } from '../format.js';
import { state, render } from '../state.js';

/** What the sheet names as being worked on: the running job's label, or the selected image. */
let label = null;

function showProgress(p) {
  $('progress-phase').textContent = `${p.phase} ${label || baseName(state.selected?.info.path || '')}`;
  $('progress').value = p.total ? p.done / p.total : 0;
  const pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
  $('progress-text').textContent = `${pct}% — ${scaled(p.done) || p.done + ' bytes'} of ${scaled(p.total) || p.total + ' bytes'}`;
}

/**
 * Runs a long Rust command with the progress sheet and its Cancel. A failure (a cancel too) is
 * thrown, for the caller to say where it belongs.
 */
export async function runJob(phase, command, args, jobLabel = null) {
  const job = state.nextJob++;
  state.job = job;
  const channel = new Channel();
  label = jobLabel;
  channel.onmessage = showProgress;
  showProgress({ phase, done: 0, total: jobLabel ? 0 : state.selected.info.disk_size });
  $('sheet').hidden = false;
  status('');
  render();
  try {
    return await invoke(command, { ...args, job, onProgress: channel });
  } finally {
    state.job = null;
    $('sheet').hidden = true;
    render();
  }
}

/** Runs a long Rust command with the progress sheet; `name` words the outcome, a failure on the status line. */
export async function longJob(name, phase, command, args, jobLabel = null) {
  try {
    return await runJob(phase, command, args, jobLabel);
  } catch (e) {
    const cancelled = e?.kind === 'cancelled';
    status(cancelled ? `${name} cancelled.` : message(e), !cancelled);
    return null;
  }
}

export function setUpProgressSheet() {
  $('cancel').onclick = () => { if (state.job !== null) invoke('cancel_job', { job: state.job }); };
}
