// The info pane of the selected image: a summary first, the container's facts and partition
// table under Details, and where it is mounted.
import { invoke } from './api.js';
import { $, row } from './dom.js';
import { scaled, bytes, baseName } from './format.js';
import { state } from './state.js';
import { attachmentOf, mountPointOf, mountedReadOnly } from './mounts.js';
import { isEncrypted } from './can.js';
import { failed } from './sheets/alert.js';

/** The summary: the volumes' space (an APFS container's volumes share one free space), the image's facts. */
function renderSummary(i) {
  $('info-name').textContent = baseName(i.path);
  const volumes = i.partitions.flatMap((p) => p.volumes.map((v) => [p, v]));
  let used = 0;
  let free = 0;
  for (const p of i.partitions.filter((q) => q.volumes.length)) {
    const u = p.volumes.reduce((sum, v) => sum + (v.used ?? 0), 0);
    used += u;
    free += p.volumes[0].available ?? Math.max(p.size - u, 0);
  }
  const known = volumes.length > 0 && used + free > 0;
  $('capacity').hidden = !known;
  $('capacity-used').style.width = known ? `${(100 * used) / (used + free)}%` : '0';
  $('capacity-legend').textContent = known ? `${scaled(used)} used, ${scaled(free)} free` : '';
  // The summary rounds (decimal units, as a Mac shows them); Details has the exact bytes.
  $('info-used').textContent = known ? scaled(used) : '—';
  $('info-available').textContent = known ? scaled(free) : '—';
  $('info-exact-used').textContent = known ? bytes(used) : '—';
  $('info-exact-available').textContent = known ? bytes(free) : '—';
  $('info-volumes').textContent = volumes.map(([p, v]) => `${v.name || '(untitled)'} (${p.file_system}${v.role ? `, ${v.role}` : ''})`).join(', ') || 'none dimg can browse';
  $('info-encryption').textContent = isEncrypted(i) ? `${i.encryption} (the image is encrypted)` : 'None';
  $('info-format').textContent = i.format;
  $('info-size').textContent = scaled(i.file_size);
  $('info-disk-size').textContent = scaled(i.disk_size);
  $('info-exact-size').textContent = bytes(i.file_size);
  $('info-exact-disk-size').textContent = `${bytes(i.disk_size)}, ${i.sectors.toLocaleString('en-US')} sectors`;
  $('info-scheme').textContent = i.partition_scheme;
  $('info-path').textContent = i.path;
}

/** Under Details: what dimg recognised, the container's facts, its partitions. */
function renderDetails(image) {
  const i = image.info;
  $('info-recognised').textContent = i.recognised.join(', ') || 'nothing (a blank or unformatted disk)';
  $('info-facts').replaceChildren(...i.facts.map((f) => row([f.label, f.value], 'th')));
  // A row per volume (an APFS container holds several), a partition without one as itself.
  $('partitions').tBodies[0].replaceChildren(...i.partitions.flatMap((p) =>
    (p.volumes.length ? p.volumes : [null]).map((v) =>
      row([v?.id ?? p.index, p.name, p.kind, p.file_system || 'unknown',
        v ? `${v.name}${v.role ? ` (${v.role})` : ''}${v.encrypted ? ', encrypted' : ''}` : '',
        p.start.toLocaleString('en-US'), bytes(p.size), v?.used == null ? '' : bytes(v.used),
        (v && mountPointOf(image, v.id)) ?? '']))));
}

/** A row per mount point, with Open to show it in the file manager. */
function renderMounts(image) {
  const label = mountedReadOnly(image) ? 'Mounted read-only at' : 'Mounted at';
  $('info-mounts').replaceChildren(...(attachmentOf(image)?.mounts ?? []).map((m) => {
    const tr = row([label, m.mount_point], 'th');
    const open = document.createElement('button');
    open.textContent = 'Open';
    open.className = 'reveal';
    open.title = 'Show the volume in the file manager';
    open.onclick = () => invoke('reveal', { path: m.mount_point }).catch((e) => failed('Open', e));
    tr.cells[1].append(' ', open);
    return tr;
  }));
}

/** The pane while an image (not one of its volumes) is selected; the hint while nothing is. */
export function renderInfo() {
  const image = state.selected;
  $('empty').hidden = !!image || state.device !== null;
  $('info').hidden = !image || state.volume !== null;
  if (!image) return;
  renderSummary(image.info);
  renderDetails(image);
  renderMounts(image);
}
