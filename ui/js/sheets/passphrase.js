// Encrypted images: a sheet asks, and stays up until the passphrase works or is cancelled.
import { invoke } from '../api.js';
import { $ } from '../dom.js';
import { baseName } from '../format.js';
import { openPath } from '../images.js';
import { closeWithCancel } from './fields.js';

export function askPassphrase(path) {
  $('passphrase-name').textContent = `“${baseName(path)}”`;
  $('passphrase').value = '';
  $('passphrase-remember').checked = false; // the keychain only when asked, every time
  invoke('keychain_store').then((store) => { $('passphrase-store').textContent = `Kept in ${store}.`; });
  $('passphrase-error').textContent = '';
  $('passphrase-sheet').hidden = false;
  $('passphrase-sheet').dataset.path = path;
  $('passphrase').focus();
}

/** Opens the image with the passphrase typed; the sheet stays up while it is wrong. */
async function unlock(event) {
  event.preventDefault();
  const path = $('passphrase-sheet').dataset.path;
  const field = $('passphrase');
  const typed = field.value;
  field.value = '';
  const e = await openPath(path, typed, $('passphrase-remember').checked);
  if (e?.kind === 'wrong-passphrase') {
    $('passphrase-error').textContent = 'Wrong password. Try again.';
    field.focus();
  } else {
    $('passphrase-sheet').hidden = true;
  }
}

export function setUpPassphraseSheet() {
  $('passphrase-form').onsubmit = unlock;
  closeWithCancel('passphrase');
}
