// The open images: opened (from the picker, a drop, the command line), selected, verified, closed.
import { invoke, listen, message, painted } from './api.js';
import { $, status } from './dom.js';
import { bytes, baseName } from './format.js';
import { state, render } from './state.js';
import { resetBrowser, loadFolder } from './browser.js';
import { longJob } from './sheets/progress.js';
import { askPassphrase } from './sheets/passphrase.js';

/** Opens the image at `path` and selects it; the error, or null, for the passphrase sheet. */
export async function openPath(path, passphrase = null, remember = false) {
  status(`Opening ${baseName(path)}…`);
  try {
    const { info, keychain } = await invoke('open_image', { path, passphrase, remember });
    // `keychain`: what the keychain said of the password as the image opened, if anything.
    const opened = { info, verified: null, keychain };
    // One opened again (after a resize or a repair, say) keeps its place in the sidebar.
    const at = state.images.findIndex((i) => i.info.path === info.path);
    if (at < 0) state.images.push(opened);
    else state.images[at] = opened;
    select(info.path);
    painted('info');
    status(keychain || '');
    return null;
  } catch (e) {
    if (e?.kind === 'passphrase-needed') {
      askPassphrase(path, (typed, remember) => openPath(path, typed, remember));
      status('');
    } else if (e?.kind === 'wrong-passphrase') {
      status(''); // the sheet says so
    } else {
      status(message(e), true);
    }
    return e;
  }
}

/**
 * Whether the image is encrypted: an encrypted image names it in its format, an encrypted sparse
 * bundle only in its facts (its token holds the key); both say how under "Encryption".
 */
export function isEncrypted(info) {
  return info.facts.some((f) => f.label === 'Encryption');
}

/** Selects an image, or (with `volume`, a volume id as `info` gives it) one of its volumes to browse. */
export function select(path, volume = null) {
  state.device = null;
  state.selected = state.images.find((i) => i.info.path === path) || null;
  state.volume = volume;
  resetBrowser();
  render();
  if (volume !== null) loadFolder('/');
}

/** File › Open: the image a file dialog (`command`) picks. */
export async function pick(command = 'pick_image') {
  try {
    const path = await invoke(command);
    if (path) await openPath(path);
  } catch (e) {
    status(message(e), true);
  }
}

export function closeSelected() {
  if (!state.selected) return;
  state.images = state.images.filter((i) => i !== state.selected);
  state.selected = state.images[state.images.length - 1] || null;
  state.volume = null;
  render();
}

/** Images dropped on the window, and those of the command line: this launch's and a second launch's. */
export function listenForImages() {
  listen('tauri://drag-enter', () => { $('drop-hint').hidden = false; });
  listen('tauri://drag-leave', () => { $('drop-hint').hidden = true; });
  listen('tauri://drag-drop', (e) => {
    $('drop-hint').hidden = true;
    e.payload.paths.forEach((p) => openPath(p));
  });
  const openLaunchPaths = () => invoke('launch_paths').then((paths) => paths.forEach((p) => openPath(p)));
  // Listening first: paths added before that are taken now, those after it are announced.
  listen('launch-paths', openLaunchPaths).then(openLaunchPaths);
}

export async function verify() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  const report = await longJob('Verify', 'Verifying', 'verify_image', { path: image.info.path });
  if (!report) return;
  image.verified = report;
  const failed = report.checks.filter((c) => !c.ok).map((c) => c.name);
  if (failed.length) status(`${baseName(image.info.path)}: checksum mismatch: ${failed.join(', ')}`, true);
  else status(`${baseName(image.info.path)} verified: CRC-32 ${report.crc32}`);
  render();
}

/** Images › Compact: a sparse image or bundle gives back the bands its volumes leave free. */
export async function compact() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  const report = await longJob('Compact', 'Compacting', 'compact_image', { path: image.info.path });
  if (!report) return;
  await openPath(image.info.path);
  status(`Compacted ${baseName(image.info.path)}: ${bytes(report.reclaimed)} given back.`);
}

/** Images › Forget Password: the keychain no longer opens the selected image by itself. */
export async function forgetPassword() {
  const image = state.selected;
  if (!image || !isEncrypted(image.info)) return;
  try {
    const forgotten = await invoke('forget_password', { path: image.info.path });
    status(forgotten
      ? `Password forgotten: ${baseName(image.info.path)} will ask for it when it is opened again.`
      : `The keychain kept no password for ${baseName(image.info.path)}.`);
  } catch (e) {
    status(message(e), true);
  }
}
