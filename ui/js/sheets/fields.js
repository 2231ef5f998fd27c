// What several sheets share: Cancel, a destination with its Choose… button, encryption with its passwords.
import { invoke, message } from '../api.js';
import { $, status } from '../dom.js';

/** The `name` sheet's Cancel button hides it. */
export function closeWithCancel(name) {
  $(`${name}-close`).onclick = () => { $(`${name}-sheet`).hidden = true; };
}

/** A Choose… button: a save dialog suggests what `field` holds (or `fallback`), the answer goes in it. */
export async function pickDestinationInto(field, title, fallback = '') {
  try {
    const path = await invoke('pick_destination', { suggested: $(field).value || fallback, title });
    if (path) $(field).value = path;
  } catch (e) {
    status(message(e), true);
  }
}
