// The page owns what people see; every real piece of work is a Rust command.
import { listen, message, painted, setWindowTheme } from './api.js';
import { status } from './dom.js';
import { state, addView, render } from './state.js';
import { attachmentOf, watchMounts, mountOrEject } from './mounts.js';
import { renderDevicePane, watchDevices } from './devices.js';
import { renderBrowserPane } from './browser.js';
import { openPath, pick, closeSelected, listenForImages, verify, compact, forgetPassword } from './images.js';
import { renderSidebar, setUpKeyboard } from './sidebar.js';
import { renderInfo } from './info.js';
import { renderToolbar, setUpToolbar } from './toolbar.js';
import { setUpProgressSheet } from './sheets/progress.js';
import { setUpExportSheet } from './sheets/export.js';
import { setUpPassphraseSheet } from './sheets/passphrase.js';
import { openNewImage, setUpNewImageSheet } from './sheets/new-image.js';
import { openConvert, openImageFromDevice, setUpConvertSheet } from './sheets/convert.js';
import { openResize, setUpResizeSheet } from './sheets/resize.js';
import { openRestore, setUpRestoreSheet } from './sheets/restore.js';
import { openBurn, setUpBurnSheet } from './sheets/burn.js';
import { openChangePassword, setUpChangePasswordSheet } from './sheets/change-password.js';

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

setUpToolbar();
setUpNewImageSheet();
setUpConvertSheet();
setUpResizeSheet();
setUpRestoreSheet();
setUpBurnSheet();
setUpChangePasswordSheet();
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
