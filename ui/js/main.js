// The page owns what people see; every real piece of work is a Rust command.
import { invoke, listen, message, painted, setWindowTheme } from './api.js';
import { $, row, status } from './dom.js';
import { scaled, bytes, baseName } from './format.js';
import { state, addView, render } from './state.js';
import { attachmentOf, watchMounts, mountOrEject } from './mounts.js';
import { withPartitions, renderDevicePane, watchDevices } from './devices.js';
import { renderBrowserPane } from './browser.js';
import { openPath, select, pick, closeSelected, listenForImages, verify, compact, forgetPassword } from './images.js';
import { renderSidebar, setUpKeyboard } from './sidebar.js';
import { renderInfo } from './info.js';
import { renderToolbar } from './toolbar.js';
import { longJob, setUpProgressSheet } from './sheets/progress.js';
import { setUpExportSheet } from './sheets/export.js';
import { setUpPassphraseSheet } from './sheets/passphrase.js';

/** File › New Image: `fromFolder` picks the Image from Folder flavour of the sheet. */
function openNewImage(fromFolder) {
  if (state.job !== null) return;
  const sheet = $('new-sheet');
  sheet.dataset.mode = fromFolder ? 'folder' : 'blank';
  $('new-title').textContent = fromFolder ? 'New Image from Folder' : 'New Blank Image';
  $('new-folder-row').hidden = !fromFolder;
  $('new-size-row').hidden = fromFolder;
  $('new-format').value = fromFolder ? 'UDZO' : 'UDRW';
  $('new-size-unit').value = '20';
  // A floppy is made blank; from a folder, an image is sized by it.
  $('new-format').querySelector('[value=DC42]').hidden = fromFolder;
  for (const o of $('new-fs').options) o.hidden = o.dataset.only && o.dataset.only !== sheet.dataset.mode;
  $('new-fs').value = 'HFS+';
  $('new-layout').value = 'GPTSPUD';
  $('new-encryption').value = '';
  $('new-pass-row').hidden = true;
  clearPasswords('new');
  $('new-error').textContent = '';
  if (!$('new-name').value) $('new-name').value = 'untitled';
  sheet.hidden = false;
}

/** What is wrong with the sheet's answers, or null. */
function newImageProblem(r) {
  if (r.folder !== null && !r.folder.trim()) return 'Choose the folder to make the image from.';
  if (!r.output.trim()) return 'Choose where to save the image.';
  if (!r.volume_name.trim()) return 'Give the volume a name.';
  if (r.folder === null && !(r.size > 0)) return 'The size must be a number greater than zero.';
  if (['ISO', 'HYBRID'].includes(r.file_system) && r.layout !== 'NONE') return 'A CD/DVD (ISO 9660) image has no partition map: choose “No partition map”.';
  return null;
}

async function createImage(event) {
  event.preventDefault();
  const fromFolder = $('new-sheet').dataset.mode === 'folder';
  const sizeText = $('new-size').value.trim();
  const request = {
    folder: fromFolder ? $('new-folder').value : null,
    output: $('new-output').value,
    size: fromFolder ? null : (/^\d+(\.\d+)?$/.test(sizeText) ? Math.round(Number(sizeText) * 2 ** Number($('new-size-unit').value)) : -1),
    file_system: $('new-fs').value,
    volume_name: $('new-name').value,
    layout: $('new-layout').value,
    format: $('new-format').value,
    overwrite: $('new-overwrite').checked,
  };
  const secret = encryptionChoice('new');
  $('new-error').textContent = '';
  const problem = newImageProblem(request) || secret.problem;
  if (problem) {
    $('new-error').textContent = problem;
    return;
  }
  Object.assign(request, { encryption: secret.encryption, passphrase: secret.passphrase });
  clearPasswords('new');
  $('new-sheet').hidden = true;
  const report = await longJob('New Image', 'Creating', 'create_image', { request }, baseName(request.output));
  if (!report) return;
  await openPath(report.output, request.passphrase);
  status(`Created ${baseName(report.output)}: ${report.entries} files and folders, ${bytes(report.output_size)}`);
}

const EXTENSIONS = { UDTO: 'cdr', ISO: 'iso', CUE: 'cue', NRG: 'nrg', TOAST: 'toast', UDSP: 'sparseimage', UDSB: 'sparsebundle', DC42: 'image' };

/** The suggested output: beside the source, named after it, with the format's extension. */
function suggestedOutput(path, format) {
  const dot = path.lastIndexOf('.');
  const stem = dot > path.lastIndexOf('/') ? path.slice(0, dot) : path;
  return `${stem}-${format.toLowerCase()}.${EXTENSIONS[format] || 'dmg'}`;
}

function openConvert() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  delete $('convert-sheet').dataset.device;
  $('convert-verb').textContent = 'Convert';
  $('convert-name').textContent = baseName(image.info.path);
  $('convert-output').value = suggestedOutput(image.info.path, $('convert-format').value);
  $('convert-encryption').value = '';
  $('convert-pass-row').hidden = true;
  $('convert-error').textContent = '';
  $('convert-sheet').hidden = false;
}

/** A sheet's encryption answers ("convert" or "new" fields): {bits, passphrase}, or a problem. */
function encryptionChoice(sheet) {
  const bits = $(`${sheet}-encryption`).value;
  if (!bits) return { encryption: null, passphrase: null };
  const passphrase = $(`${sheet}-pass`).value;
  if (!passphrase) return { problem: 'Enter a password for the encrypted image.' };
  if (passphrase !== $(`${sheet}-pass2`).value) return { problem: 'The passwords do not match.' };
  return { encryption: Number(bits), passphrase };
}

/** Forgets the passwords a sheet was given. */
function clearPasswords(sheet) {
  $(`${sheet}-pass`).value = '';
  $(`${sheet}-pass2`).value = '';
}

/** File › New Image › Image from Device…: the Convert sheet, for the selected disk or partition. */
function openImageFromDevice() {
  if (state.job !== null) return;
  if (!state.device) {
    status('Select a disk or partition under Devices first.', true);
    return;
  }
  $('convert-sheet').dataset.device = state.device;
  $('convert-verb').textContent = 'Image from';
  $('convert-name').textContent = `“${baseName(state.device)}”`;
  $('convert-output').value = '';
  $('convert-encryption').value = '';
  $('convert-pass-row').hidden = true;
  $('convert-error').textContent = '';
  $('convert-sheet').hidden = false;
}

async function convert(event) {
  event.preventDefault();
  const device = $('convert-sheet').dataset.device;
  if (device) return imageDevice(device);
  const image = state.selected;
  const request = convertRequest(image.info.path);
  if (!request) return;
  const report = await longJob('Convert', 'Converting', 'convert_image', { request });
  if (!report) return;
  image.converted = report;
  status(`Converted ${baseName(image.info.path)} to ${report.format}: ${baseName(report.output)}`);
  render();
}

/** The Convert sheet's answers as a request to write `source`, or null with the problem shown. */
function convertRequest(source) {
  const secret = encryptionChoice('convert');
  const problem = secret.problem || (!$('convert-output').value && 'Choose where to save the image.');
  if (problem) {
    $('convert-error').textContent = problem;
    return null;
  }
  const request = {
    source,
    output: $('convert-output').value,
    format: $('convert-format').value,
    overwrite: $('convert-overwrite').checked,
    encryption: secret.encryption,
    passphrase: secret.passphrase,
  };
  clearPasswords('convert');
  $('convert-sheet').hidden = true;
  return request;
}

async function imageDevice(device) {
  const request = convertRequest(device);
  if (!request) return;
  const report = await longJob('Imaging', 'Imaging', 'image_device', { request }, baseName(device));
  if (!report) return;
  await openPath(report.output);
  status(`Imaged ${device} as ${baseName(report.output)} (${report.format}).`);
}

/** Images › Restore…: the selected image onto a disk under Devices, the loss named first. */
function openRestore() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  // Not the disk the running system is on, nor its partitions: the engine would refuse them.
  const system = (d) => withPartitions([d]).some((x) => x.mount_points.includes('/'));
  const targets = withPartitions(state.devices.filter((d) => !system(d)));
  if (!targets.length) {
    status('No disk to restore onto: none is listed under Devices.', true);
    return;
  }
  $('restore-name').textContent = `“${baseName(image.info.path)}”`;
  $('restore-target').replaceChildren(...targets.map((d) => {
    const o = document.createElement('option');
    o.value = d.path;
    o.textContent = `${baseName(d.path)}${d.model ? ` — ${d.model}` : ''} (${scaled(d.size) || bytes(d.size)})`;
    return o;
  }));
  if (state.device) $('restore-target').value = state.device;
  $('restore-error').textContent = '';
  warnRestore();
  $('restore-sheet').hidden = false;
}

/** Says, before anything is written, what the chosen disk will lose. */
function warnRestore() {
  const d = withPartitions(state.devices).find((x) => x.path === $('restore-target').value);
  if (!d) return;
  const what = [d.model, bytes(d.size), d.file_system].filter(Boolean).join(', ');
  $('restore-warning').textContent = `Everything on ${d.path} (${what}) will be erased and replaced by the image's disk.`;
}

async function restore(event) {
  event.preventDefault();
  const image = state.selected;
  const target = $('restore-target').value;
  $('restore-sheet').hidden = true;
  const report = await longJob('Restore', 'Restoring', 'restore_image',
    { path: image.info.path, target, verify: $('restore-verify').checked });
  if (!report) return;
  status(`Restored ${baseName(image.info.path)} onto ${report.target}: ${bytes(report.written)}${report.verified ? ', read back identical' : ''}.`);
}

/** Images › Burn…: the selected image onto a disc, through libburn or cdrdao. */
function openBurn() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  $('burn-name').textContent = `“${baseName(image.info.path)}”`;
  $('burn-error').textContent = '';
  $('burn-sheet').hidden = false;
}

async function burn(event) {
  event.preventDefault();
  const image = state.selected;
  const speed = $('burn-speed').value ? Number($('burn-speed').value) : null;
  const options = { device: $('burn-device').value, speed, simulate: $('burn-test').checked,
    verify: $('burn-verify').checked, eject: $('burn-eject').checked };
  $('burn-sheet').hidden = true;
  const report = await longJob('Burn', 'Burning', 'burn_image', { path: image.info.path, options });
  if (!report) return;
  const done = report.simulated ? 'test burn done, nothing written'
    : report.verified ? `burnt, ${bytes(report.verified)} read back identical` : 'burnt';
  status(`${baseName(image.info.path)} onto ${report.device}: ${done}.`);
}

/** Images › Resize…: the sheet shows the sizes the image can take, then resizes it. */
async function openResize() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  $('resize-name').textContent = baseName(image.info.path);
  $('resize-error').textContent = '';
  try {
    const l = await invoke('resize_limits', { path: image.info.path });
    state.resizeLimits = l;
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
  const l = state.resizeLimits;
  if (!(size >= l.minimum && size <= l.maximum)) {
    $('resize-error').textContent = `Give a size from ${bytes(l.minimum)} to ${bytes(l.maximum)}.`;
    return;
  }
  $('resize-sheet').hidden = true;
  const report = await longJob('Resize', 'Resizing', 'resize_image', { path: image.info.path, size });
  if (!report) return;
  await openPath(image.info.path);
  status(`Resized ${baseName(image.info.path)} to ${bytes(report.new_size)}.`);
}

/** Images › Change Password…, for an encrypted image: old password, new one typed twice. */
function openChangePassword() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  if (!image.info.format.includes('encrypted')) {
    status(`${baseName(image.info.path)} is not encrypted: it has no password to change.`, true);
    return;
  }
  $('chpass-name').textContent = baseName(image.info.path);
  for (const id of ['chpass-old', 'chpass-new', 'chpass-new2']) $(id).value = '';
  $('chpass-error').textContent = '';
  $('chpass-sheet').hidden = false;
  $('chpass-old').focus();
}

async function changePassword(event) {
  event.preventDefault();
  const image = state.selected;
  const [old, fresh, again] = ['chpass-old', 'chpass-new', 'chpass-new2'].map((id) => $(id).value);
  if (!fresh) { $('chpass-error').textContent = 'Enter a new password.'; return; }
  if (fresh !== again) { $('chpass-error').textContent = 'The new passwords do not match.'; return; }
  try {
    await invoke('change_password', { path: image.info.path, old, new: fresh });
    for (const id of ['chpass-old', 'chpass-new', 'chpass-new2']) $(id).value = '';
    $('chpass-sheet').hidden = true;
    status(`Password changed for ${baseName(image.info.path)}.`);
  } catch (e) {
    $('chpass-error').textContent = e?.kind === 'wrong-passphrase' ? 'The old password is wrong.' : message(e);
  }
}

/**
 * View › Appearance: null follows the system (the window's GTK theme, which the page sees as
 * prefers-color-scheme), 'light' or 'dark' overrides it; the choice outlives the window.
 */
async function setAppearance(theme) {
  if (theme) localStorage.setItem('appearance', theme);
  else localStorage.removeItem('appearance');
  try {
    await setWindowTheme(theme);
  } catch (e) {
    status(message(e), true);
  }
}

const menuActions = {
  'new-blank': () => openNewImage(false),
  'new-folder': () => openNewImage(true),
  'new-device': openImageFromDevice,
  restore: openRestore,
  burn: openBurn,
  open: () => pick(),
  'open-bundle': () => pick('pick_bundle'),
  close: closeSelected,
  verify,
  convert: openConvert,
  resize: openResize,
  compact,
  chpass: openChangePassword,
  'forget-password': forgetPassword,
  'appearance-system': () => setAppearance(null),
  'appearance-light': () => setAppearance('light'),
  'appearance-dark': () => setAppearance('dark'),
  mount: () => { if (state.selected && !attachmentOf(state.selected)) mountOrEject(); },
  eject: () => { if (state.selected && attachmentOf(state.selected)) mountOrEject(); },
  about: () => status('dimg — a disk image utility. Opens .dmg, .iso, .toast, .nrg, .bin/.cue, .img, .cdr.'),
};

$('open').onclick = () => pick();
$('new-image').onclick = () => openNewImage(false);
$('image-device').onclick = openImageFromDevice;
$('burn').onclick = openBurn;
$('restore-form').onsubmit = restore;
$('restore-target').onchange = warnRestore;
$('restore-close').onclick = () => { $('restore-sheet').hidden = true; };
$('burn-form').onsubmit = burn;
$('burn-close').onclick = () => { $('burn-sheet').hidden = true; };
$('show-info').onclick = () => state.selected && select(state.selected.info.path);
$('mount').onclick = mountOrEject;
$('verify').onclick = verify;
$('convert').onclick = openConvert;
$('convert-form').onsubmit = convert;
$('resize-form').onsubmit = resize;
$('chpass-form').onsubmit = changePassword;
$('chpass-close').onclick = () => { $('chpass-sheet').hidden = true; };
$('resize-close').onclick = () => { $('resize-sheet').hidden = true; };
$('convert-close').onclick = () => { $('convert-sheet').hidden = true; };
$('convert-format').onchange = () => {
  $('convert-output').value = suggestedOutput(state.selected.info.path, $('convert-format').value);
};
$('convert-choose').onclick = async () => {
  try {
    const path = await invoke('pick_destination', { suggested: $('convert-output').value, title: 'Convert To' });
    if (path) $('convert-output').value = path;
  } catch (e) {
    status(message(e), true);
  }
};
$('new-form').onsubmit = createImage;
$('new-close').onclick = () => { $('new-sheet').hidden = true; };
for (const sheet of ['new', 'convert']) {
  $(`${sheet}-encryption`).onchange = () => { $(`${sheet}-pass-row`).hidden = !$(`${sheet}-encryption`).value; };
}
/** The New Image sheet names its output by the format chosen, as Convert does: the extension follows. */
function renameForFormat() {
  const out = $('new-output').value;
  if (!out) return;
  const format = $('new-format').value;
  const wanted = format === 'UDTO' && ['ISO', 'HYBRID'].includes($('new-fs').value) ? 'iso' : (EXTENSIONS[format] || 'dmg');
  const dot = out.lastIndexOf('.');
  const stem = dot > out.lastIndexOf('/') ? out.slice(0, dot) : out;
  $('new-output').value = `${stem}.${wanted}`;
}
$('new-fs').onchange = () => {
  if (['ISO', 'HYBRID'].includes($('new-fs').value)) { $('new-layout').value = 'NONE'; $('new-format').value = 'UDTO'; }
  renameForFormat();
};
$('new-format').onchange = () => {
  // A Disk Copy 4.2 image is a floppy: no partition map, a floppy's size (1440K unless given one).
  if ($('new-format').value === 'DC42') {
    $('new-layout').value = 'NONE';
    if (!['400', '720', '800', '1440'].includes($('new-size').value) || $('new-size-unit').value !== '10') {
      $('new-size').value = '1440';
      $('new-size-unit').value = '10';
    }
  }
  renameForFormat();
};
$('new-folder-choose').onclick = async () => {
  try {
    const folder = await invoke('pick_folder');
    if (!folder) return;
    $('new-folder').value = folder;
    $('new-name').value = baseName(folder);
    if (!$('new-output').value) $('new-output').value = `${folder}.dmg`;
  } catch (e) {
    status(message(e), true);
  }
};
$('new-output-choose').onclick = async () => {
  try {
    const path = await invoke('pick_destination', { suggested: $('new-output').value || 'untitled.dmg', title: 'Save New Image As' });
    if (path) $('new-output').value = path;
  } catch (e) {
    status(message(e), true);
  }
};
setUpExportSheet();
setUpPassphraseSheet();
setUpProgressSheet();
setUpKeyboard();

listen('menu', (e) => menuActions[e.payload]?.());
listenForImages();
watchMounts();
watchDevices();
if (localStorage.getItem('appearance')) setAppearance(localStorage.getItem('appearance'));
// A second way in for a running window (drag-and-drop and "Open With" end here too).
window.openPath = openPath;
// A module's names are its own: the end-to-end tests read the state as a page global.
window.state = state;
addView(renderSidebar);
addView(renderDevicePane);
addView(renderBrowserPane);
addView(renderToolbar);
addView(renderInfo);
render();
painted('window');
