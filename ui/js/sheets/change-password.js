// Images › Change Password…, for an encrypted image: old password, new one typed twice.
import { invoke, message } from '../api.js';
import { $, status } from '../dom.js';
import { alertSheet } from './alert.js';
import { baseName } from '../format.js';
import { state } from '../state.js';
import { isEncrypted } from '../can.js';
import { closeWithCancel } from './fields.js';

const FIELDS = ['chpass-old', 'chpass-new', 'chpass-new2'];

export function openChangePassword() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  if (!isEncrypted(image.info)) {
    alertSheet(`“${baseName(image.info.path)}” is not encrypted: it has no password to change.`);
    return;
  }
  $('chpass-name').textContent = baseName(image.info.path);
  for (const id of FIELDS) $(id).value = '';
  $('chpass-error').textContent = '';
  $('chpass-sheet').hidden = false;
  $('chpass-old').focus();
}

async function changePassword(event) {
  event.preventDefault();
  const image = state.selected;
  const [old, fresh, again] = FIELDS.map((id) => $(id).value);
  if (!fresh) { $('chpass-error').textContent = 'Enter a new password.'; return; }
  if (fresh !== again) { $('chpass-error').textContent = 'The new passwords do not match.'; return; }
  try {
    await invoke('change_password', { path: image.info.path, old, new: fresh });
    for (const id of FIELDS) $(id).value = '';
    $('chpass-sheet').hidden = true;
    status(`Password changed for ${baseName(image.info.path)}.`);
  } catch (e) {
    $('chpass-error').textContent = e?.kind === 'wrong-passphrase' ? 'The old password is wrong.' : message(e);
  }
}

export function setUpChangePasswordSheet() {
  $('chpass-form').onsubmit = changePassword;
  closeWithCancel('chpass');
}
