// The Convert sheet: the selected image into another format, or (Image from Device…) a disk or
// partition into an image; either may be encrypted.
import { $ } from '../dom.js';
import { baseName, bytes, stem, extensionOf } from '../format.js';
import { state } from '../state.js';
import { openPath } from '../images.js';
import { longJob } from './progress.js';
import {
  closeWithCancel, pickDestinationInto, passwordsFollowEncryption, resetEncryption, encryptionChoice, clearPasswords,
} from './fields.js';
import { alertSheet } from './alert.js';

/** The suggested output: beside the source, named after it, with the format's extension. */
function suggestedOutput(path, format) {
  return `${stem(path)}-${format.toLowerCase()}.${extensionOf(format)}`;
}

/** Shows the sheet fresh as "`verb` `name`", saving to `output`, compressed and unencrypted. */
function showSheet(verb, name, output) {
  $('convert-verb').textContent = verb;
  $('convert-name').textContent = name;
  $('convert-format').value = 'UDZO';
  $('convert-output').value = output;
  $('convert-overwrite').checked = false;
  resetEncryption('convert');
  clearPasswords('convert');
  $('convert-error').textContent = '';
  $('convert-sheet').hidden = false;
  $('convert-format').focus();
}

export function openConvert() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  delete $('convert-sheet').dataset.device;
  showSheet('Convert', `“${baseName(image.info.path)}”`, suggestedOutput(image.info.path, 'UDZO'));
}

/** File › New Image › Image from Device…: the sheet, for the selected disk or partition. */
export function openImageFromDevice() {
  if (state.job !== null) return;
  if (!state.device) {
    alertSheet('Select a disk or partition under Devices first.');
    return;
  }
  $('convert-sheet').dataset.device = state.device;
  showSheet('Image from', `“${baseName(state.device)}”`, '');
}

async function convert(event) {
  event.preventDefault();
  const device = $('convert-sheet').dataset.device;
  if (device) return imageDevice(device);
  const image = state.selected;
  const request = convertRequest(image.info.path);
  if (!request) return;
  await longJob({
    name: 'Convert', phase: 'Converting', command: 'convert_image', args: { request },
    done: (report) => `“${baseName(image.info.path)}” converted to ${report.format}: saved as “${baseName(report.output)}”, ${bytes(report.output_size)}.`,
  });
}

/** The sheet's answers as a request to write `source`, or null with the problem shown. */
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
  await longJob({
    name: 'Image from Device', phase: 'Imaging', command: 'image_device', args: { request }, label: `“${baseName(device)}”`,
    done: async (report) => {
      await openPath(report.output);
      return `${device} imaged as “${baseName(report.output)}” (${report.format}, ${bytes(report.output_size)}).`;
    },
  });
}

/** The device pane's Image from Device… button opens the sheet too. */
export function setUpConvertSheet() {
  $('convert-form').onsubmit = convert;
  closeWithCancel('convert');
  passwordsFollowEncryption('convert');
  $('convert-format').onchange = () => {
    const source = $('convert-sheet').dataset.device || state.selected?.info.path;
    if ($('convert-output').value && source) $('convert-output').value = suggestedOutput(source, $('convert-format').value);
  };
  $('convert-choose').onclick = () => pickDestinationInto('convert-output', 'Convert To');
  $('image-device').onclick = openImageFromDevice;
}
