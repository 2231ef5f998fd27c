// The Convert sheet: the selected image into another format, or (Image from Device…) a disk or
// partition into an image; either may be encrypted.
import { $, status } from '../dom.js';
import { baseName, stem, extensionOf } from '../format.js';
import { state, render } from '../state.js';
import { openPath } from '../images.js';
import { longJob } from './progress.js';
import {
  closeWithCancel, pickDestinationInto, passwordsFollowEncryption, resetEncryption, encryptionChoice, clearPasswords,
} from './fields.js';

/** The suggested output: beside the source, named after it, with the format's extension. */
function suggestedOutput(path, format) {
  return `${stem(path)}-${format.toLowerCase()}.${extensionOf(format)}`;
}

/** Shows the sheet as "`verb` `name`", saving to `output`, unencrypted. */
function showSheet(verb, name, output) {
  $('convert-verb').textContent = verb;
  $('convert-name').textContent = name;
  $('convert-output').value = output;
  resetEncryption('convert');
  $('convert-error').textContent = '';
  $('convert-sheet').hidden = false;
}

export function openConvert() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  delete $('convert-sheet').dataset.device;
  showSheet('Convert', baseName(image.info.path), suggestedOutput(image.info.path, $('convert-format').value));
}

/** File › New Image › Image from Device…: the sheet, for the selected disk or partition. */
export function openImageFromDevice() {
  if (state.job !== null) return;
  if (!state.device) {
    status('Select a disk or partition under Devices first.', true);
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
  const report = await longJob('Convert', 'Converting', 'convert_image', { request });
  if (!report) return;
  image.converted = report;
  status(`Converted ${baseName(image.info.path)} to ${report.format}: ${baseName(report.output)}`);
  render();
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
  const report = await longJob('Imaging', 'Imaging', 'image_device', { request }, baseName(device));
  if (!report) return;
  await openPath(report.output);
  status(`Imaged ${device} as ${baseName(report.output)} (${report.format}).`);
}

/** The device pane's Image from Device… button opens the sheet too. */
export function setUpConvertSheet() {
  $('convert-form').onsubmit = convert;
  closeWithCancel('convert');
  passwordsFollowEncryption('convert');
  $('convert-format').onchange = () => {
    $('convert-output').value = suggestedOutput(state.selected.info.path, $('convert-format').value);
  };
  $('convert-choose').onclick = () => pickDestinationInto('convert-output', 'Convert To');
  $('image-device').onclick = openImageFromDevice;
}
