// The job sheet: a long Rust command's progress, with Cancel, while the window stays live; then
// its outcome in the same sheet — a sentence, Show Details with the report as `dimg` prints it,
// and Done.
import { invoke, Channel, message } from '../api.js';
import { $ } from '../dom.js';
import { scaled, baseName, sentence } from '../format.js';
import { state, render } from '../state.js';
import { causeOf } from './alert.js';

/** What the sheet names as being worked on: the running job's label, or the selected image. */
let label = null;

function showProgress(p) {
  $('progress-phase').textContent = `${p.phase} ${label || `“${baseName(state.selected?.info.path || '')}”`}`;
  $('progress').value = p.total ? p.done / p.total : 0;
  const pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
  $('progress-text').textContent = `${pct}% — ${scaled(p.done)} of ${scaled(p.total)}`;
}

/**
 * Runs a long Rust command with the progress sheet and its Cancel; it answers {report, text}. A
 * failure (a cancel too) is thrown, for the caller to say where it belongs.
 */
export async function runJob(phase, command, args, jobLabel = null) {
  const job = state.nextJob++;
  state.job = job;
  const channel = new Channel();
  label = jobLabel;
  channel.onmessage = showProgress;
  showProgress({ phase, done: 0, total: jobLabel ? 0 : state.selected?.info.disk_size ?? 0 });
  $('job-running').hidden = false;
  $('job-done').hidden = true;
  $('sheet').hidden = false;
  $('cancel').focus();
  render();
  try {
    return await invoke(command, { ...args, job, onProgress: channel });
  } finally {
    state.job = null;
    $('sheet').hidden = true;
    render();
  }
}

/** The sheet's last state: `outcome` (a sentence), `details` under Show Details, and Done. */
function showOutcome(outcome, details, failed) {
  $('job-outcome').textContent = sentence(outcome);
  $('job-outcome').classList.toggle('error', failed);
  $('job-report').textContent = details;
  $('job-details').hidden = !details;
  $('job-details').open = false;
  $('job-running').hidden = true;
  $('job-done').hidden = false;
  $('sheet').hidden = false;
  $('job-close').focus();
}

/**
 * A job from start to outcome: `name` ("Verify") words a failure, `phase` the progress,
 * `before()` what must be done first, and `done(report)` (it may finish the work: open the new
 * image, mount it) the success, which is "Operation successful." unless it says more. The
 * report, or null when the job did not finish.
 */
export async function longJob({ name, phase, command, args, label: jobLabel = null, done = null, before = null }) {
  try {
    // What must happen first (volumes unmounted before an erase): a failure is the job's.
    if (before) await before();
    const { report, text } = await runJob(phase, command, args, jobLabel);
    const said = done ? await done(report) : null;
    showOutcome(said || 'Operation successful.', text, false);
    return report;
  } catch (e) {
    if (e?.kind === 'cancelled') showOutcome(`${name} was cancelled.${e.cause ? ` ${sentence(e.cause)}` : ''}`, '', false);
    else showOutcome(`${name} failed because ${causeOf(e)}`, message(e), true);
    return null;
  }
}

export function setUpProgressSheet() {
  $('cancel').onclick = () => { if (state.job !== null) invoke('cancel_job', { job: state.job }); };
  $('job-close').onclick = () => { $('sheet').hidden = true; };
}
