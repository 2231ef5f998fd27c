// The Export sheet: the browser's selection (or the whole volume) extracted into a new folder.
import { $, status } from '../dom.js';
import { baseName } from '../format.js';
import { state } from '../state.js';
import { browser, itemRequest } from '../browser.js';
import { longJob } from './progress.js';
import { closeWithCancel, pickDestinationInto } from './fields.js';

function openExport() {
  const image = state.selected;
  if (!image || state.volume === null || state.job !== null) return;
  const item = browser.item || '/';
  const name = item === '/' ? (browser.label || 'volume') : baseName(item);
  const dir = image.info.path.slice(0, image.info.path.lastIndexOf('/') + 1);
  $('export-name').textContent = `“${name}”`;
  $('export-output').value = `${dir}${name} (exported)`;
  $('export-sheet').hidden = false;
}

async function exportItem(event) {
  event.preventDefault();
  $('export-sheet').hidden = true;
  const item = browser.item || '/';
  const destination = $('export-output').value;
  const report = await longJob('Export', 'Extracting', 'export_item', { request: itemRequest(item), destination });
  if (!report) return;
  const kept = report.neutralised.length ? ` (${report.neutralised.length} not as stored: ${report.neutralised.join('; ')})` : '';
  const unreadable = report.unreadable.length
    ? ` ${report.unreadable.length} could not be read and were left out: ${report.unreadable.join('; ')}` : '';
  status(`Exported ${report.files} files, ${report.directories} folders to ${report.destination}${kept}.${unreadable}`,
    report.unreadable.length > 0);
}

/** The browser's Export… button opens the sheet. */
export function setUpExportSheet() {
  $('export').onclick = openExport;
  $('export-form').onsubmit = exportItem;
  closeWithCancel('export');
  $('export-choose').onclick = () => pickDestinationInto('export-output', 'Export To');
}
