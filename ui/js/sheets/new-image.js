// File › New Image: a blank image, or one made from a folder, in the New Image sheet; mounted
// after it is made unless asked not to, so that a new vault is one sheet and one click away.
import { invoke } from '../api.js';
import { $ } from '../dom.js';
import { bytes, baseName, stem, extensionOf, typedSize } from '../format.js';
import { state } from '../state.js';
import { openPath } from '../images.js';
import { mount } from '../mounts.js';
import { longJob } from './progress.js';
import {
  closeWithCancel, pickDestinationInto, passwordsFollowEncryption, resetEncryption, encryptionChoice, clearPasswords,
  sayWhereKeychainKeeps, savedInto,
} from './fields.js';
import { failed } from './alert.js';

/** The Save As the sheet suggested; replaced by a folder's name until the user changes it. */
let suggested = '';

/** `fromFolder` picks the Image from Folder flavour of the sheet. */
export async function openNewImage(fromFolder) {
  if (state.job !== null) return;
  const sheet = $('new-sheet');
  sheet.dataset.mode = fromFolder ? 'folder' : 'blank';
  $('new-title').textContent = fromFolder ? 'New Image from Folder' : 'New Blank Image';
  $('new-folder-row').hidden = !fromFolder;
  $('new-format').value = fromFolder ? 'UDZO' : 'UDRW';
  $('new-size').value = '100';
  $('new-size-unit').value = '6';
  $('new-floppy').value = '1474560';
  floppyChosen();
  $('new-folder').value = '';
  $('new-name').value = 'untitled';
  $('new-overwrite').checked = false;
  // Each sheet opens fresh: "untitled" in the Desktop folder, as Disk Utility suggests.
  suggested = `${await savedInto()}untitled.${extensionOf($('new-format').value)}`;
  $('new-output').value = suggested;
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
  sheet.hidden = false;
  (fromFolder ? $('new-folder-choose') : $('new-name')).focus();
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
  const request = {
    folder: fromFolder ? $('new-folder').value : null,
    output: $('new-output').value,
    size: fromFolder ? null : blankSize(),
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
  await longJob({
    name: 'New Image', phase: 'Creating', command: 'create_image', args: { request }, label: `“${baseName(request.output)}”`,
    done: async (report) => {
      const made = `Created “${baseName(report.output)}”: ${report.entries} files and folders, ${bytes(report.output_size)}.`;
      if (await openPath(report.output, request.passphrase, remember)) return made;
      // What the keychain said, if it was asked to remember the password; where it is mounted.
      const mounted = mountAfter ? await mount() : null;
      return [made, state.selected.keychain, mounted].filter(Boolean).join(' ');
    },
  });
}

/** The sheet names its output by the format chosen, as Convert does: the extension follows. */
function renameForFormat() {
  const out = $('new-output').value;
  if (!out) return;
  const format = $('new-format').value;
  const wanted = format === 'UDTO' && ['ISO', 'HYBRID'].includes($('new-fs').value) ? 'iso' : extensionOf(format);
  const renamed = `${stem(out)}.${wanted}`;
  if (out === suggested) suggested = renamed;
  $('new-output').value = renamed;
}

/** A CD/DVD file system comes as a DVD/CD master with no partition map. */
function fileSystemChosen() {
  if (['ISO', 'HYBRID'].includes($('new-fs').value)) { $('new-layout').value = 'NONE'; $('new-format').value = 'UDTO'; }
  renameForFormat();
}

/** A blank image's size: a floppy's (Disk Copy 4.2), else the size typed. */
function blankSize() {
  if ($('new-format').value === 'DC42') return Number($('new-floppy').value);
  return typedSize($('new-size').value, $('new-size-unit').value);
}

/** A Disk Copy 4.2 image is a floppy: its size is one of the floppies', not typed. */
function floppyChosen() {
  const floppy = $('new-format').value === 'DC42' && $('new-sheet').dataset.mode === 'blank';
  $('new-floppy-row').hidden = !floppy;
  $('new-size-row').hidden = floppy || $('new-sheet').dataset.mode === 'folder';
}

function formatChosen() {
  // A Disk Copy 4.2 image is a floppy: no partition map.
  floppyChosen();
  if ($('new-format').value === 'DC42') $('new-layout').value = 'NONE';
  renameForFormat();
}

/** The folder's Choose…: the image is named after the folder, and saved beside it unless placed already. */
async function chooseFolder() {
  try {
    const folder = await invoke('pick_folder');
    if (!folder) return;
    $('new-folder').value = folder;
    $('new-name').value = baseName(folder);
    // Named after the folder, unless the user chose the name already.
    if ($('new-output').value === suggested) {
      suggested = `${await savedInto()}${baseName(folder)}.${extensionOf($('new-format').value)}`;
      $('new-output').value = suggested;
    }
  } catch (e) {
    failed('Choosing the folder', e);
  }
}

export function setUpNewImageSheet() {
  $('new-form').onsubmit = createImage;
  closeWithCancel('new');
  passwordsFollowEncryption('new');
  $('new-fs').onchange = fileSystemChosen;
  $('new-format').onchange = formatChosen;
  $('new-folder-choose').onclick = chooseFolder;
  $('new-output-choose').onclick = () => pickDestinationInto('new-output', 'Save New Image As');
}
