// File › New Image: a blank image, or one made from a folder, in the New Image sheet; mounted
// after it is made unless asked not to, so that a new vault is one sheet and one click away.
import { invoke, message } from '../api.js';
import { $, status } from '../dom.js';
import { bytes, baseName, stem, extensionOf } from '../format.js';
import { state } from '../state.js';
import { openPath } from '../images.js';
import { mount } from '../mounts.js';
import { longJob } from './progress.js';
import {
  closeWithCancel, pickDestinationInto, passwordsFollowEncryption, resetEncryption, encryptionChoice, clearPasswords,
  sayWhereKeychainKeeps,
} from './fields.js';

/** `fromFolder` picks the Image from Folder flavour of the sheet. */
export function openNewImage(fromFolder) {
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
  $('new-fs').value = 'JHFS+';
  $('new-layout').value = 'GPTSPUD';
  resetEncryption('new');
  clearPasswords('new');
  $('new-remember').checked = false; // the keychain only when asked, every time
  sayWhereKeychainKeeps('new-store');
  $('new-mount').checked = true;
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
  const remember = $('new-remember').checked;
  const mountAfter = $('new-mount').checked;
  clearPasswords('new');
  $('new-sheet').hidden = true;
  const report = await longJob('New Image', 'Creating', 'create_image', { request }, baseName(request.output));
  if (!report) return;
  if (await openPath(report.output, request.passphrase, remember)) return;
  // What the keychain said, if it was asked to remember the password.
  const told = [`Created ${baseName(report.output)}: ${report.entries} files and folders, ${bytes(report.output_size)}.`, state.selected.keychain]
    .filter(Boolean).join(' ');
  if (mountAfter) await mount(false, told);
  else status(told);
}

/** The sheet names its output by the format chosen, as Convert does: the extension follows. */
function renameForFormat() {
  const out = $('new-output').value;
  if (!out) return;
  const format = $('new-format').value;
  const wanted = format === 'UDTO' && ['ISO', 'HYBRID'].includes($('new-fs').value) ? 'iso' : extensionOf(format);
  $('new-output').value = `${stem(out)}.${wanted}`;
}

/** A CD/DVD file system comes as a DVD/CD master with no partition map. */
function fileSystemChosen() {
  if (['ISO', 'HYBRID'].includes($('new-fs').value)) { $('new-layout').value = 'NONE'; $('new-format').value = 'UDTO'; }
  renameForFormat();
}

function formatChosen() {
  // A Disk Copy 4.2 image is a floppy: no partition map, a floppy's size (1440K unless given one).
  if ($('new-format').value === 'DC42') {
    $('new-layout').value = 'NONE';
    if (!['400', '720', '800', '1440'].includes($('new-size').value) || $('new-size-unit').value !== '10') {
      $('new-size').value = '1440';
      $('new-size-unit').value = '10';
    }
  }
  renameForFormat();
}

/** The folder's Choose…: the image is named after the folder, and saved beside it unless placed already. */
async function chooseFolder() {
  try {
    const folder = await invoke('pick_folder');
    if (!folder) return;
    $('new-folder').value = folder;
    $('new-name').value = baseName(folder);
    if (!$('new-output').value) $('new-output').value = `${folder}.dmg`;
  } catch (e) {
    status(message(e), true);
  }
}

export function setUpNewImageSheet() {
  $('new-form').onsubmit = createImage;
  closeWithCancel('new');
  passwordsFollowEncryption('new');
  $('new-fs').onchange = fileSystemChosen;
  $('new-format').onchange = formatChosen;
  $('new-folder-choose').onclick = chooseFolder;
  $('new-output-choose').onclick = () => pickDestinationInto('new-output', 'Save New Image As', 'untitled.dmg');
}
