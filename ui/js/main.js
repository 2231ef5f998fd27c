// The page owns what people see; every real piece of work is a Rust command. This module starts
// it: the window's parts drawn as views, the sheets and controls set up, the shell listened to.
import { painted } from './api.js';
import { state, addView, render } from './state.js';
import { renderSidebar, setUpKeyboard } from './sidebar.js';
import { renderDevicePane, watchDevices } from './devices.js';
import { renderBrowserPane, setUpSorting } from './browser.js';
import { restoreLayout } from './layout.js';
import { renderToolbar, setUpToolbar } from './toolbar.js';
import { renderInfo } from './info.js';
import { watchMounts } from './mounts.js';
import { openPath, listenForImages } from './images.js';
import { listenToMenu, renderMenu, restoreAppearance } from './menu.js';
import { setUpProgressSheet } from './sheets/progress.js';
import { setUpPassphraseSheet } from './sheets/passphrase.js';
import { setUpNewImageSheet } from './sheets/new-image.js';
import { setUpConvertSheet } from './sheets/convert.js';
import { setUpResizeSheet } from './sheets/resize.js';
import { setUpRestoreSheet } from './sheets/restore.js';
import { setUpBurnSheet } from './sheets/burn.js';
import { setUpChangePasswordSheet } from './sheets/change-password.js';
import { setUpLocationSheet } from './sheets/location.js';
import { setUpExportSheet } from './sheets/export.js';
import { setUpFirstAidSheet } from './sheets/first-aid.js';
import { setUpAlertSheet } from './sheets/alert.js';
import { setUpEraseSheet } from './sheets/erase.js';
import { setUpPartitionSheet } from './sheets/partition.js';
import { setUpSheetKeys } from './sheets/fields.js';

addView(renderSidebar);
addView(renderDevicePane);
addView(renderBrowserPane);
addView(renderToolbar);
addView(renderInfo);
addView(renderMenu);

setUpToolbar();
setUpKeyboard();
restoreLayout();
setUpSorting();
setUpProgressSheet();
setUpPassphraseSheet();
setUpNewImageSheet();
setUpConvertSheet();
setUpResizeSheet();
setUpRestoreSheet();
setUpBurnSheet();
setUpChangePasswordSheet();
setUpLocationSheet();
setUpExportSheet();
setUpFirstAidSheet();
setUpAlertSheet();
setUpEraseSheet();
setUpPartitionSheet();
setUpSheetKeys();

listenToMenu();
listenForImages();
watchMounts();
watchDevices();
restoreAppearance();
// A second way in for a running window (drag-and-drop and "Open With" end here too).
window.openPath = openPath;
// A module's names are its own: the end-to-end tests read the state as a page global.
window.state = state;
render();
painted('window');
