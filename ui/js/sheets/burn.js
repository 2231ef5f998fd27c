// Images › Burn…: the selected image onto a disc, through libburn or cdrdao.
import { $, status } from '../dom.js';
import { bytes, baseName } from '../format.js';
import { state } from '../state.js';
import { longJob } from './progress.js';
import { closeWithCancel } from './fields.js';

export function openBurn() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  $('burn-name').textContent = `“${baseName(image.info.path)}”`;
  $('burn-error').textContent = '';
  $('burn-sheet').hidden = false;
}

async function burn(event) {
  event.preventDefault();
  const image = state.selected;
  const speed = $('burn-speed').value ? Number($('burn-speed').value) : null;
  const options = { device: $('burn-device').value, speed, simulate: $('burn-test').checked,
    verify: $('burn-verify').checked, eject: $('burn-eject').checked };
  $('burn-sheet').hidden = true;
  const report = await longJob('Burn', 'Burning', 'burn_image', { path: image.info.path, options });
  if (!report) return;
  const done = report.simulated ? 'test burn done, nothing written'
    : report.verified ? `burnt, ${bytes(report.verified)} read back identical` : 'burnt';
  status(`${baseName(image.info.path)} onto ${report.device}: ${done}.`);
}

export function setUpBurnSheet() {
  $('burn-form').onsubmit = burn;
  closeWithCancel('burn');
}
