// The open images: opened (from the picker, a drop, the command line), selected, verified, closed.
import { invoke, listen, painted } from './api.js';
import { $, status } from './dom.js';
import { bytes, baseName } from './format.js';
import { state, showSelection } from './state.js';
import { resetBrowser, loadFolder } from './browser.js';
import { longJob } from './sheets/progress.js';
import { askPassphrase } from './sheets/passphrase.js';
import { cannotOpen, failed } from './sheets/alert.js';
import { isEncrypted } from './can.js';

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
      status('');
      cannotOpen(path, e);
    }
    return e;
  }
}

/** Selects an image, or (with `volume`, a volume id as `info` gives it) one of its volumes to
 * browse; a locked one asks for its password first, as Disk Utility does. */
export function select(path, volume = null) {
  state.device = null;
  state.selected = state.images.find((i) => i.info.path === path) || null;
  state.volume = volume;
  resetBrowser();
  showSelection();
  const locked = lockedVolume(state.selected, volume);
  if (locked) unlockVolume(path, locked, () => select(path, volume));
  else if (volume !== null) loadFolder('/');
}

/** The image's volume `id` if it is locked: encrypted by itself (APFS) and not yet unlocked. */
export function lockedVolume(image, id) {
  const v = image?.info.partitions.flatMap((p) => p.volumes).find((w) => w.id === id);
  return v?.locked ? v : null;
}

/**
 * A locked volume's password: the sheet asks, the image opens again with what is typed (which
 * unlocks the volume, or is wrong and the sheet stays up), then `next`.
 */
export function unlockVolume(path, volume, next) {
  askPassphrase(path, async (typed) => {
    const e = await openPath(path, typed);
    if (!e) next();
    return e;
  }, volume);
}


/** File › Open: the image a file dialog (`command`) picks. */
export async function pick(command = 'pick_image') {
  try {
    const path = await invoke(command);
    if (path) await openPath(path);
  } catch (e) {
    failed('Open', e);
  }
}

/** File › Close Image (and Delete): the image leaves the sidebar; the one after it (else before) is selected. */
export function closeSelected() {
  if (!state.selected) return;
  const at = state.images.indexOf(state.selected);
  state.images = state.images.filter((i) => i !== state.selected);
  state.selected = state.images[Math.min(at, state.images.length - 1)] || null;
  state.volume = null;
  resetBrowser();
  showSelection();
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
  const name = baseName(image.info.path);
  await longJob({
    name: 'Verify', phase: 'Verifying', command: 'verify_image', args: { path: image.info.path },
    done: (report) => {
      const failedChecks = report.checks.filter((c) => !c.ok).map((c) => c.name);
      return failedChecks.length
        ? `“${name}” is damaged: its ${failedChecks.join(', ')} ${failedChecks.length > 1 ? 'do' : 'does'} not match.`
        : `“${name}” is OK: ${bytes(report.bytes)} read${report.checks.length ? ', every checksum matches' : ''}.`;
    },
  });
}

/** Images › Compact: a sparse image or bundle gives back the bands its volumes leave free. */
export async function compact() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  await longJob({
    name: 'Compact', phase: 'Compacting', command: 'compact_image', args: { path: image.info.path },
    done: async (report) => {
      await openPath(image.info.path);
      return `Compacted “${baseName(image.info.path)}”: ${bytes(report.reclaimed)} given back.`;
    },
  });
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
    failed('Forget Password', e);
  }
}
