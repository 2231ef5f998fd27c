// File › Open Location…: a disk image read where it lives, at an http:// or https:// address.
import { $ } from '../dom.js';
import { openPath } from '../images.js';
import { closeWithCancel, errorGoesOnTyping } from './fields.js';

export function openLocation() {
  $('location-url').value = '';
  $('location-error').textContent = '';
  $('location-sheet').hidden = false;
  $('location-url').focus();
}

async function openAddress(event) {
  event.preventDefault();
  const url = $('location-url').value.trim();
  if (!/^https?:\/\/\S+$/.test(url)) {
    $('location-error').textContent = 'Enter an address that starts with http:// or https://.';
    return;
  }
  $('location-sheet').hidden = true;
  await openPath(url);
}

export function setUpLocationSheet() {
  $('location-form').onsubmit = openAddress;
  closeWithCancel('location');
  errorGoesOnTyping('location', 'location-url');
}
