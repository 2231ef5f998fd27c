// Images › First Aid…: the selected image's volumes checked (HFS+, HFSX, FAT), the report in the
// sheet, and Repair for what remains wrong.
import { $ } from '../dom.js';
import { baseName, sentence } from '../format.js';
import { state } from '../state.js';
import { openPath } from '../images.js';
import { attachmentOf } from '../mounts.js';
import { runJob } from './progress.js';
import { closeWithCancel } from './fields.js';
import { causeOf } from './alert.js';

/** The image the sheet reports on. */
let checked = null;

/** "1 problem", "2 problems". */
const counted = (n, noun) => `${n} ${noun}${n === 1 ? '' : 's'}`;

const sum = (report, key) => report.volumes.reduce((n, v) => n + v[key].length, 0);

/** A list item of `text`, classed `kind`. */
function line(text, kind) {
  const li = document.createElement('li');
  li.textContent = text;
  li.className = kind;
  return li;
}

/** One volume: its verdict, then a line per repair made and per problem left. */
function volumeItem(v) {
  const name = `Volume ${v.partition} (${v.file_system})`;
  if (!v.checked) return line(`${name}: not checked: dimg checks HFS+ and FAT volumes`, 'unchecked');
  const counts = Object.entries(v.counted).map(([what, n]) => `${n} ${what}`).join(', ');
  const verdict = v.problems.length ? counted(v.problems.length, 'problem') : 'OK';
  const item = line(`${name}: ${verdict}${counts ? ` (${counts})` : ''}`, v.problems.length ? 'damaged' : 'ok');
  const details = document.createElement('ul');
  details.append(
    ...v.repaired.map((r) => line(`Repaired ${r}`, 'repaired')),
    ...v.problems.map((p) => line(`${p.structure}: ${p.what}`, 'problem')),
  );
  if (details.children.length) item.append(details);
  return item;
}

/** The sheet says what First Aid found, and offers Repair where it may help. */
function showReport(report, repairing) {
  const problems = sum(report, 'problems');
  const repaired = sum(report, 'repaired');
  const volumes = report.volumes.filter((v) => v.checked).length;
  let summary = volumes ? `${counted(volumes, 'volume')} checked: ${problems ? counted(problems, 'problem') : 'OK'}` : 'No volume dimg checks.';
  if (repaired) summary += `, ${counted(repaired, 'repair')} made`;
  $('first-aid-volumes').replaceChildren(...report.volumes.map(volumeItem));
  $('first-aid-summary').textContent = summary;
  // A repair that changed nothing found nothing it could safely change.
  const mendable = problems > 0 && !(repairing && repaired === 0);
  $('first-aid-error').textContent = problems && !mendable ? 'First Aid cannot repair the problems left.' : '';
  $('first-aid-repair').hidden = !mendable;
  $('first-aid-repair').disabled = false;
  if (mendable) refuseWhileMounted();
  $('first-aid-sheet').hidden = false;
}

/** A mounted image's server would go on serving the disk as it was: Repair waits for Eject. */
function refuseWhileMounted() {
  const image = state.images.find((i) => i.info.path === checked);
  if (!image || !attachmentOf(image)) return;
  $('first-aid-repair').disabled = true;
  $('first-aid-error').textContent = `“${baseName(checked)}” is mounted: eject it before repairing it.`;
}

/** First Aid on the selected image, or on the selected device's volumes (checked, not repaired). */
export async function openFirstAid() {
  if (state.job !== null) return;
  checked = state.device ?? state.selected?.info.path;
  if (!checked) return;
  $('first-aid-name').textContent = `“${baseName(checked)}”`;
  try {
    const { report } = await runJob('Checking', 'first_aid', { path: checked, repair: false }, `“${baseName(checked)}”`);
    showReport(report, false);
  } catch (e) {
    showFailure(e, false);
  }
}

/** The engine's refusal (a compressed or read-only image), or a cancel: said in the sheet. */
function showFailure(e, repairing) {
  const cancelled = e?.kind === 'cancelled';
  $('first-aid-volumes').replaceChildren();
  $('first-aid-summary').textContent = '';
  $('first-aid-error').textContent = cancelled ? `${repairing ? 'Repair' : 'First Aid'} cancelled.` : sentence(causeOf(e));
  $('first-aid-repair').hidden = !repairing;
  $('first-aid-repair').disabled = !cancelled;
  $('first-aid-sheet').hidden = false;
}

/** Repair: the safe repairs made; the report then says what changed and what is left. */
async function repair(event) {
  event.preventDefault();
  $('first-aid-sheet').hidden = true;
  try {
    const { report } = await runJob('Repairing', 'first_aid', { path: checked, repair: true }, `“${baseName(checked)}”`);
    // The volume's space and counts may have changed.
    if (sum(report, 'repaired')) await openPath(checked);
    showReport(report, true);
  } catch (e) {
    showFailure(e, true);
  }
}

export function setUpFirstAidSheet() {
  $('first-aid-form').onsubmit = repair;
  closeWithCancel('first-aid');
}
