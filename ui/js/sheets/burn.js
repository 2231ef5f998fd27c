// Images › Burn…: the selected image onto a disc, through libburn or cdrdao, in one of the
// optical drives udisks2 (or sysfs) lists under Devices.
import { $ } from '../dom.js';
import { bytes, baseName } from '../format.js';
import { state } from '../state.js';
import { longJob } from './progress.js';
import { closeWithCancel } from './fields.js';

/** Burn can be pressed once a drive is chosen. */
const driveChosen = () => { $('burn-start').disabled = !$('burn-device').value; };

export function openBurn() {
  const image = state.selected;
  if (!image || state.job !== null) return;
  const drives = state.devices.filter((d) => d.kind === 'rom');
  $('burn-device').replaceChildren(...drives.map((d) => new Option(`${baseName(d.path)}${d.model ? ` — ${d.model}` : ''}`, d.path)));
  $('burn-none').hidden = drives.length > 0;
  $('burn-name').textContent = `“${baseName(image.info.path)}”`;
  $('burn-speed').value = '';
  $('burn-test').checked = false;
  $('burn-verify').checked = true;
  $('burn-eject').checked = false;
  $('burn-error').textContent = '';
  driveChosen();
  $('burn-sheet').hidden = false;
  $('burn-device').focus();
}

async function burn(event) {
  event.preventDefault();
  const image = state.selected;
  const speed = $('burn-speed').value ? Number($('burn-speed').value) : null;
  const options = { device: $('burn-device').value, speed, simulate: $('burn-test').checked,
    verify: $('burn-verify').checked, eject: $('burn-eject').checked };
  $('burn-sheet').hidden = true;
  await longJob({
    name: 'Burn', phase: 'Burning', command: 'burn_image', args: { path: image.info.path, options },
    done: (report) => {
      const done = report.simulated ? 'test burn done, nothing written'
        : report.verified ? `burnt, ${bytes(report.verified)} read back identical` : 'burnt';
      return `“${baseName(image.info.path)}” onto ${report.device}: ${done}.`;
    },
  });
}

export function setUpBurnSheet() {
  $('burn-form').onsubmit = burn;
  $('burn-device').onchange = driveChosen;
  closeWithCancel('burn');
}
