// The window's menus: each item's click reaches the page as a "menu" event naming it.
import { invoke, listen, message, setWindowTheme } from './api.js';
import { status } from './dom.js';
import { state } from './state.js';
import { mount, eject } from './mounts.js';
import { pick, closeSelected, verify, compact, forgetPassword } from './images.js';
import { openNewImage } from './sheets/new-image.js';
import { openConvert, openImageFromDevice } from './sheets/convert.js';
import { openResize } from './sheets/resize.js';
import { openRestore } from './sheets/restore.js';
import { openBurn } from './sheets/burn.js';
import { openChangePassword } from './sheets/change-password.js';
import { openFirstAid } from './sheets/first-aid.js';

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

/** The appearance chosen in an earlier window, if one was. */
export function restoreAppearance() {
  if (localStorage.getItem('appearance')) setAppearance(localStorage.getItem('appearance'));
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
  'first-aid': openFirstAid,
  convert: openConvert,
  resize: openResize,
  compact,
  chpass: openChangePassword,
  'forget-password': forgetPassword,
  'appearance-system': () => setAppearance(null),
  'appearance-light': () => setAppearance('light'),
  'appearance-dark': () => setAppearance('dark'),
  mount: () => mount(),
  'mount-read-only': () => mount(true),
  eject,
  about: () => status('dimg — a disk image utility. Opens .dmg, .iso, .toast, .nrg, .bin/.cue, .img, .cdr.'),
};

/** Whether the shell was last told an image is selected (undefined: not told yet). */
let toldSelected;

/** The Images menu can be chosen while an image is selected: the shell is told when that changes. */
export function renderMenu() {
  const selected = !!state.selected;
  if (selected === toldSelected) return;
  toldSelected = selected;
  invoke('image_selected', { selected }).catch((e) => status(message(e), true));
}

export function listenToMenu() {
  listen('menu', (e) => menuActions[e.payload]?.());
}
