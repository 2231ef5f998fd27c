// The file browser of the selected volume: its folders listed in place, opened, dragged out.
import { invoke } from './api.js';
import { $, status } from './dom.js';
import { scaled, baseName } from './format.js';
import { state } from './state.js';
import { mountPointOf, mountedReadOnly } from './mounts.js';
import { layout, keepLayout } from './layout.js';
import { failed } from './sheets/alert.js';

/** Folders listed so far, those open, the selected item, the volume's name. */
export const browser = { listings: new Map(), expanded: new Set(['/']), item: null, label: '' };

/** Forgets the last volume's folders: the next one starts at its root, nothing selected. */
export function resetBrowser() {
  browser.listings.clear();
  browser.expanded = new Set(['/']);
  browser.item = null;
}

/** "folder/name" under "/". */
const childPath = (folder, name) => (folder === '/' ? `/${name}` : `${folder}/${name}`);

/** An application bundle is a folder whose name ends in .app, as the Finder shows it. */
const isApplication = (entry) => entry.kind.type === 'directory' && entry.name.endsWith('.app');

/** The file-kind icon's class: folder, file, link or application. */
function iconOf(entry) {
  if (isApplication(entry)) return 'application';
  return { directory: 'folder', symlink: 'link' }[entry.kind.type] || 'file';
}

function kindOf(entry) {
  if (isApplication(entry)) return 'Application';
  switch (entry.kind.type) {
    case 'directory': return 'Folder';
    case 'symlink': return `Alias → ${entry.kind.target}`;
    case 'special': return entry.kind.target;
    default: return 'File';
  }
}

export async function loadFolder(folder) {
  const image = state.selected;
  try {
    const listing = await invoke('list_folder', { path: image.info.path, volume: state.volume, folder });
    if (image !== state.selected) return;
    browser.listings.set(folder, listing.entries);
    browser.label = listing.volume;
    renderBrowser();
  } catch (e) {
    failed(`Listing “${folder === '/' ? (browser.label || 'the volume') : baseName(folder)}”`, e);
  }
}

/** A volume's line under its name: file system, size, used, free, where it is mounted. */
function volumeSummary(image, id) {
  const p = image.info.partitions.find((q) => q.volumes.some((v) => v.id === id));
  const v = p?.volumes.find((w) => w.id === id);
  if (!v) return '';
  const facts = [p.file_system, scaled(p.size)];
  if (v.used != null) facts.push(`${scaled(v.used)} used`, `${scaled(v.available ?? Math.max(p.size - v.used, 0))} free`);
  if (v.counts) facts.push(`${v.counts.files.toLocaleString('en-US')} files, ${v.counts.folders.toLocaleString('en-US')} folders`);
  const point = mountPointOf(image, id);
  facts.push(point ? `mounted${mountedReadOnly(image) ? ' read-only' : ''} at ${point}` : 'not mounted');
  return facts.join(' · ');
}

/** The pane while a volume is selected. */
export function renderBrowserPane() {
  const browsing = !!state.selected && state.volume !== null;
  $('browser').hidden = !browsing;
  if (browsing) renderBrowser();
}

/** How each column sorts, by the header's position: Name, Size, Kind, Date Modified. */
const sortKeys = [
  (e) => e.name.toLocaleLowerCase(),
  (e) => (e.kind.type === 'directory' ? -1 : e.size),
  (e) => kindOf(e),
  (e) => e.modified || 0,
];

/** A folder's entries in the order the header asks for (by name, ascending, at first). */
function sorted(entries) {
  const { column = 0, descending = false } = layout.sort || {};
  const key = sortKeys[column];
  const order = (a, b) => {
    const [x, y] = [key(a), key(b)];
    const by = typeof x === 'string' ? x.localeCompare(y) : x - y;
    return by || a.name.localeCompare(b.name);
  };
  return [...entries].sort((a, b) => (descending ? -order(a, b) : order(a, b)));
}

/** A click on a header sorts by its column; a second click reverses the order. */
export function setUpSorting() {
  [...$('files').tHead.rows[0].cells].forEach((th, column) => {
    th.onclick = () => {
      const now = layout.sort || { column: 0, descending: false };
      layout.sort = { column, descending: now.column === column ? !now.descending : false };
      keepLayout();
      renderBrowser();
    };
  });
}

/** The header's mark on the sorted column. */
function markSorted() {
  const { column = 0, descending = false } = layout.sort || {};
  [...$('files').tHead.rows[0].cells].forEach((th, i) => {
    th.classList.toggle('sorted', i === column);
    th.classList.toggle('descending', i === column && descending);
  });
}

/** The open folders' entries as rows, each under its folder, indented by depth. */
function renderBrowser() {
  $('browser-name').textContent = browser.label || baseName(state.selected.info.path);
  $('volume-summary').textContent = volumeSummary(state.selected, state.volume);
  const rows = [];
  const add = (folder, depth) => {
    for (const e of sorted(browser.listings.get(folder) || [])) {
      const path = childPath(folder, e.name);
      const isDir = e.kind.type === 'directory';
      const tr = document.createElement('tr');
      tr.dataset.path = path;
      if (browser.item === path) tr.className = 'selected';
      const name = document.createElement('td');
      name.style.paddingLeft = `${8 + depth * 16}px`;
      const toggle = document.createElement('span');
      toggle.className = 'toggle';
      toggle.textContent = isDir ? (browser.expanded.has(path) ? '▾' : '▸') : '';
      const icon = document.createElement('span');
      icon.className = `file-icon ${iconOf(e)}`;
      name.append(toggle, icon, e.name);
      const cells = [isDir ? '—' : scaled(e.size), kindOf(e),
        e.modified ? new Date(e.modified * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : ''];
      tr.append(name, ...cells.map((c) => { const td = document.createElement('td'); td.textContent = c; return td; }));
      tr.onclick = (event) => {
        browser.item = path;
        if (isDir && event.target === toggle) toggleFolder(path);
        else renderBrowser();
      };
      tr.ondblclick = () => (isDir ? toggleFolder(path) : openItem(path));
      tr.draggable = true;
      tr.ondragstart = (event) => { event.preventDefault(); dragOut(path); };
      rows.push(tr);
      if (isDir && browser.expanded.has(path)) add(path, depth + 1);
    }
  };
  add('/', 0);
  $('files').tBodies[0].replaceChildren(...rows);
  markSorted();
}

function toggleFolder(path) {
  if (browser.expanded.has(path)) {
    browser.expanded.delete(path);
    renderBrowser();
  } else {
    browser.expanded.add(path);
    if (browser.listings.has(path)) renderBrowser();
    else loadFolder(path);
  }
}

/** What the commands on an item of the browsed volume are given. */
export const itemRequest = (item) => ({ source: state.selected.info.path, volume: state.volume, item });

async function openItem(path) {
  status(`Opening ${baseName(path)}…`);
  try {
    const file = await invoke('open_item', { request: itemRequest(path) });
    status(`Opened ${baseName(path)} (a copy in ${file})`);
  } catch (e) {
    status('');
    failed(`Opening “${baseName(path)}”`, e);
  }
}

/** Dragged to the file manager: extracted, then handed over as a native drag of the file. */
async function dragOut(path) {
  status(`Preparing ${baseName(path)} for the drop…`);
  try {
    const file = await invoke('drag_out', { request: itemRequest(path) });
    status(`Drop ${baseName(path)} where it should go (a copy is in ${file}).`);
  } catch (e) {
    status('');
    failed(`Dragging “${baseName(path)}”`, e);
  }
}
