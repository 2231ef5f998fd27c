// What several sheets share: Cancel, a destination with its Choose… button, encryption with its
// passwords, where the keychain keeps one.
import { invoke } from '../api.js';
import { $ } from '../dom.js';
import { failed } from './alert.js';

/** The `name` sheet's Cancel button hides it. */
export function closeWithCancel(name) {
  $(`${name}-close`).onclick = () => { $(`${name}-sheet`).hidden = true; };
}

/** The sheet's error goes as soon as `field` is typed in again: it spoke of what was there. */
export function errorGoesOnTyping(name, field) {
  $(field).addEventListener('input', () => { $(`${name}-error`).textContent = ''; });
}

/** A Choose… button: a save dialog suggests what `field` holds (or `fallback`), the answer goes in it. */
export async function pickDestinationInto(field, title, fallback = '') {
  try {
    const path = await invoke('pick_destination', { suggested: $(field).value || fallback, title });
    if (path) $(field).value = path;
  } catch (e) {
    failed('Choosing where to save', e);
  }
}

/** The sheet's password fields show while its Encryption menu asks for encryption. */
export function passwordsFollowEncryption(sheet) {
  $(`${sheet}-encryption`).onchange = () => { $(`${sheet}-pass-row`).hidden = !$(`${sheet}-encryption`).value; };
}

/** The sheet starts unencrypted, its password fields hidden. */
export function resetEncryption(sheet) {
  $(`${sheet}-encryption`).value = '';
  $(`${sheet}-pass-row`).hidden = true;
}

/** A sheet's encryption answers ("convert" or "new" fields): {encryption, passphrase}, or a problem. */
export function encryptionChoice(sheet) {
  const bits = $(`${sheet}-encryption`).value;
  if (!bits) return { encryption: null, passphrase: null };
  const passphrase = $(`${sheet}-pass`).value;
  if (!passphrase) return { problem: 'Enter a password for the encrypted image.' };
  if (passphrase !== $(`${sheet}-pass2`).value) return { problem: 'The passwords do not match.' };
  return { encryption: Number(bits), passphrase };
}

/** Forgets the passwords a sheet was given. */
export function clearPasswords(sheet) {
  $(`${sheet}-pass`).value = '';
  $(`${sheet}-pass2`).value = '';
}

/** The hint under a "Remember password" box: where the keychain would keep it. */
export function sayWhereKeychainKeeps(hint) {
  invoke('keychain_store').then((store) => { $(hint).textContent = `Kept in ${store}.`; });
}

/** The first of `buttons` on screen. */
const shown = (buttons) => [...buttons].find((b) => b.offsetParent !== null);

/**
 * Esc cancels the sheet in front and Return presses its default button, as on a Mac (a
 * destructive button is never the default). Return on a focused button is that button's.
 */
export function setUpSheetKeys() {
  document.addEventListener('keydown', (e) => {
    const sheet = [...document.querySelectorAll('.sheet')].reverse().find((s) => !s.hidden);
    if (!sheet) return;
    let button = null;
    if (e.key === 'Escape') button = shown(sheet.querySelectorAll('[data-cancel]'));
    else if (e.key === 'Enter' && !e.target.closest?.('textarea, button, summary')) button = shown(sheet.querySelectorAll('button.default'));
    if (!button || button.disabled) return;
    e.preventDefault();
    button.click();
  });
}

/** Where a new image is saved unless the user says otherwise: the Desktop folder (else home). */
let defaultFolder = null;
export async function savedInto() {
  defaultFolder ??= await invoke('default_folder');
  return defaultFolder.endsWith('/') ? defaultFolder : `${defaultFolder}/`;
}
