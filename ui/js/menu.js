// The window's menus: each item's click reaches the page as a "menu" event naming it.
import { invoke, listen, setWindowTheme } from './api.js';
import { status } from './dom.js';
import { render } from './state.js';
import { allowed } from './can.js';
import { failed } from './sheets/alert.js';
import { mount, eject } from './mounts.js';
import { pick, closeSelected, verify, compact, forgetPassword } from './images.js';
import { openNewImage } from './sheets/new-image.js';
import { openConvert, openImageFromDevice } from './sheets/convert.js';
import { openResize } from './sheets/resize.js';
import { openRestore } from './sheets/restore.js';
import { openBurn } from './sheets/burn.js';
import { openChangePassword } from './sheets/change-password.js';
import { openLocation } from './sheets/location.js';
import { openFirstAid } from './sheets/first-aid.js';
import { openErase } from './sheets/erase.js';
import { openPartition } from './sheets/partition.js';
import { selectedDevice, mountDevice } from './devices.js';

/**
 * View › Appearance: null follows the system (the window's GTK theme, which the page sees as
 * prefers-color-scheme), 'light' or 'dark' overrides it; the choice outlives the window.
 */
async function setAppearance(theme) {
  if (theme) localStorage.setItem('appearance', theme);
  else localStorage.removeItem('appearance');
  render();
  try {
    await setWindowTheme(theme);
  } catch (e) {
    failed('Changing the appearance', e);
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
  'open-location': openLocation,
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
  mount: () => (selectedDevice() ? mountDevice(false) : mount()),
  'mount-read-only': () => mount(true),
  eject: () => (selectedDevice() ? mountDevice(true) : eject()),
  erase: openErase,
  partition: openPartition,
  about: () => status('dimg — a disk image utility. Opens .dmg, .iso, .toast, .nrg, .bin/.cue, .img, .cdr.'),
};

/** What the shell was last told of the menus (null: nothing yet). */
let told = null;

/** The menus follow the selection: the shell is told whenever what they allow changes. */
export function renderMenu() {
  const now = { enabled: allowed(), appearance: localStorage.getItem('appearance') || 'system' };
  const said = JSON.stringify(now);
  if (said === told) return;
  told = said;
  window.menuState = now; // what the end-to-end tests compare with the native menu's
  invoke('menu_state', now).catch((e) => failed('Updating the menus', e));
}

/** A menu item chosen: done only if the selection still allows it (a key may outrun the menu). */
export function listenToMenu() {
  listen('menu', (e) => {
    if (allowed()[e.payload] === false) return;
    menuActions[e.payload]?.();
  });
}
