// Encrypted images: a sheet asks, and stays up until the passphrase works or is cancelled.
import { $ } from '../dom.js';
import { baseName } from '../format.js';
import { closeWithCancel, errorGoesOnTyping, sayWhereKeychainKeeps } from './fields.js';

/** What the sheet does with a passphrase: the opener that asked (it knows the image). */
let tryPassphrase = null;

/**
 * Asks for `path`'s passphrase; `open(typed, remember)` tries one and answers its error. With
 * `volume` (one `info` lists), the password asked for is that volume's own (APFS encrypts a
 * volume by itself): the sheet names it and gives its hint. The keychain keeps an image's
 * password by the image's identity, which an unencrypted image holding the volume has not, so
 * it is not offered to keep a volume's.
 */
export function askPassphrase(path, open, volume = null) {
  tryPassphrase = open;
  $('passphrase-what').textContent = volume ? 'the volume' : 'the disk image';
  $('passphrase-name').textContent = volume ? `“${volume.name}” of “${baseName(path)}”` : `“${baseName(path)}”`;
  const hint = volume?.passphrase_hint;
  $('passphrase-hint').textContent = hint ? `Hint: ${hint}` : '';
  $('passphrase-hint').hidden = !hint;
  $('passphrase-remember-row').hidden = !!volume;
  $('passphrase-store').hidden = !!volume;
  $('passphrase').value = '';
  $('passphrase-remember').checked = false; // the keychain only when asked, every time
  sayWhereKeychainKeeps('passphrase-store');
  $('passphrase-error').textContent = '';
  $('passphrase-sheet').hidden = false;
  $('passphrase').focus();
}

/** Opens the image with the passphrase typed; the sheet stays up while it is wrong. */
async function unlock(event) {
  event.preventDefault();
  const field = $('passphrase');
  const typed = field.value;
  field.value = '';
  const e = await tryPassphrase(typed, $('passphrase-remember').checked);
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
  errorGoesOnTyping('passphrase', 'passphrase');
}
