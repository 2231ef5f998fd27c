// Alerts: what went wrong, first as a sentence a person reads ("“bad.dmg” can't be opened because
// part of its data is damaged."), the technical line under Details.
import { message } from '../api.js';
import { $ } from '../dom.js';
import { baseName, sentence } from '../format.js';

/** Shows the alert sheet: `text`, and `technical` under Details when there is one. */
export function alertSheet(text, technical = '') {
  $('alert-text').textContent = sentence(text);
  $('alert-technical').textContent = technical;
  $('alert-details').hidden = !technical || technical === text;
  $('alert-details').open = false;
  $('alert-sheet').hidden = false;
  $('alert-close').focus();
}

/** Why a command failed, in plain words: the shell's `cause`, else its message. */
export const causeOf = (e) => e?.cause || message(e);

/** An image that did not open: nothing is added to the sidebar, and this says why. */
export function cannotOpen(path, e) {
  alertSheet(`“${baseName(path)}” can't be opened because ${causeOf(e)}`, message(e));
}

/** Any other failure: `what` ("Mount", "Eject") and why. */
export function failed(what, e) {
  alertSheet(`${what} failed because ${causeOf(e)}`, message(e));
}

export function setUpAlertSheet() {
  $('alert-close').onclick = () => { $('alert-sheet').hidden = true; };
}
