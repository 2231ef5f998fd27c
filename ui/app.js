// The page owns what people see; every real piece of work is a Rust command.
const { invoke, Channel } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const $ = (id) => document.getElementById(id);
const state = { images: [], selected: null, job: null, nextJob: 1 };

/** "1.5 MiB", or "" below 1 KiB. */
function scaled(n) {
  let v = n, unit = '';
  for (const u of ['KiB', 'MiB', 'GiB', 'TiB']) { if (v < 1024) break; v /= 1024; unit = u; }
  return unit ? `${v.toFixed(1)} ${unit}` : '';
}

/** "405,504 bytes (396.0 KiB)". */
function bytes(n) {
  const s = scaled(n);
  return `${n.toLocaleString('en-US')} bytes` + (s ? ` (${s})` : '');
}

function status(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

function baseName(path) { return path.split(/[\\/]/).pop(); }

async function openPath(path) {
  status(`Opening ${baseName(path)}…`);
  try {
    const info = await invoke('open_image', { path });
    state.images = state.images.filter((i) => i.info.path !== info.path);
    state.images.push({ info, verified: null });
    select(info.path);
    status('');
  } catch (e) {
    status(String(e), true);
  }
}

function select(path) {
  state.selected = state.images.find((i) => i.info.path === path) || null;
  render();
}

function render() {
  const list = $('images');
  list.replaceChildren(...state.images.map((image) => {
    const li = document.createElement('li');
    li.textContent = baseName(image.info.path);
    const kind = document.createElement('span');
    kind.className = 'kind';
    kind.textContent = image.info.format;
    li.append(kind);
    if (image === state.selected) li.className = 'selected';
    li.onclick = () => select(image.info.path);
    return li;
  }));
  const image = state.selected;
  $('empty').hidden = !!image;
  $('info').hidden = !image;
  $('verify').disabled = !image || state.job !== null;
  if (!image) return;
  const i = image.info;
  $('info-name').textContent = baseName(i.path);
  $('info-format').textContent = i.format;
  $('info-size').textContent = bytes(i.file_size);
  $('info-disk-size').textContent = `${bytes(i.disk_size)}, ${i.sectors.toLocaleString('en-US')} sectors`;
  $('info-recognised').textContent = i.recognised.join(', ') || 'nothing (a blank or unformatted disk)';
  $('info-scheme').textContent = i.partition_scheme;
  $('info-path').textContent = i.path;
  $('info-facts').replaceChildren(...i.facts.map((f) => row([f.label, f.value], 'th')));
  $('partitions').tBodies[0].replaceChildren(...i.partitions.map((p) =>
    row([p.index, p.name, p.file_system || 'unknown', p.start.toLocaleString('en-US'), bytes(p.size)])));
  const v = image.verified;
  $('verify-result').hidden = !v;
  if (v) {
    $('verify-bytes').textContent = bytes(v.bytes);
    $('verify-crc32').textContent = v.crc32;
    $('verify-sha256').textContent = v.sha256;
  }
}

function row(cells, first = 'td') {
  const tr = document.createElement('tr');
  cells.forEach((c, k) => {
    const cell = document.createElement(k === 0 ? first : 'td');
    cell.textContent = c;
    tr.append(cell);
  });
  return tr;
}

function showProgress(p) {
  $('progress-phase').textContent = `${p.phase} ${baseName(state.selected?.info.path || '')}`;
  $('progress').value = p.total ? p.done / p.total : 0;
  const pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
  $('progress-text').textContent = `${pct}% — ${scaled(p.done) || p.done + ' bytes'} of ${scaled(p.total) || p.total + ' bytes'}`;
}

async function verify() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  const job = state.nextJob++;
  state.job = job;
  const channel = new Channel();
  channel.onmessage = showProgress;
  showProgress({ phase: 'Verifying', done: 0, total: image.info.disk_size });
  $('sheet').hidden = false;
  status('');
  render();
  try {
    image.verified = await invoke('verify_image', { path: image.info.path, job, onProgress: channel });
    status(`${baseName(image.info.path)} verified: CRC-32 ${image.verified.crc32}`);
  } catch (e) {
    status(String(e) === 'cancelled' ? 'Verify cancelled.' : String(e), String(e) !== 'cancelled');
  } finally {
    state.job = null;
    $('sheet').hidden = true;
    render();
  }
}

async function pick() {
  try {
    const path = await invoke('pick_image');
    if (path) await openPath(path);
  } catch (e) {
    status(String(e), true);
  }
}

function closeSelected() {
  if (!state.selected) return;
  state.images = state.images.filter((i) => i !== state.selected);
  state.selected = state.images[state.images.length - 1] || null;
  render();
}

const menuActions = {
  open: pick,
  close: closeSelected,
  verify,
  about: () => status('dimg — a disk image utility. Opens .dmg, .iso, .toast, .nrg, .bin/.cue, .img, .cdr.'),
};

$('open').onclick = pick;
$('verify').onclick = verify;
$('cancel').onclick = () => { if (state.job !== null) invoke('cancel_job', { job: state.job }); };

listen('menu', (e) => menuActions[e.payload]?.());
listen('tauri://drag-enter', () => { $('drop-hint').hidden = false; });
listen('tauri://drag-leave', () => { $('drop-hint').hidden = true; });
listen('tauri://drag-drop', (e) => {
  $('drop-hint').hidden = true;
  e.payload.paths.forEach(openPath);
});

invoke('launch_paths').then((paths) => paths.forEach(openPath));
render();
