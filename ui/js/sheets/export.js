// The Export sheet: the browser's selection (or the whole volume) extracted into a new folder.
import { $ } from '../dom.js';
import { baseName, folderOf } from '../format.js';
import { state } from '../state.js';
import { browser, itemRequest } from '../browser.js';
import { longJob } from './progress.js';
import { closeWithCancel, pickDestinationInto } from './fields.js';

function openExport() {
  const image = state.selected;
  if (!image || state.volume === null || state.job !== null) return;
  const item = browser.item || '/';
  const name = item === '/' ? (browser.label || 'volume') : baseName(item);
  $('export-name').textContent = `“${name}”`;
  $('export-output').value = `${folderOf(image.info.path)}${name} (exported)`;
  $('export-sheet').hidden = false;
  $('export-output').focus();
}

async function exportItem(event) {
  event.preventDefault();
  $('export-sheet').hidden = true;
  const item = browser.item || '/';
  const destination = $('export-output').value;
  await longJob({
    name: 'Export', phase: 'Extracting', command: 'export_item', args: { request: itemRequest(item), destination },
    done: (report) => {
      const kept = report.neutralised.length ? ` ${report.neutralised.length} kept not as stored (Show Details).` : '';
      const unreadable = report.unreadable.length ? ` ${report.unreadable.length} could not be read and were left out (Show Details).` : '';
      return `Exported ${report.files} files, ${report.directories} folders to ${report.destination}.${kept}${unreadable}`;
    },
  });
}

/** The browser's Export… button opens the sheet. */
export function setUpExportSheet() {
  $('export').onclick = openExport;
  $('export-form').onsubmit = exportItem;
  closeWithCancel('export');
  $('export-choose').onclick = () => pickDestinationInto('export-output', 'Export To');
}
