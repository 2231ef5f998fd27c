// How the page words sizes and names files. Sizes are decimal (1 KB = 1,000 bytes), as a Mac
// shows them; exact bytes only where the whole figure matters (Details).

/** "405,504". */
export const grouped = (n) => n.toLocaleString('en-US');

/** "405.5 KB", "20 MB", "1.2 GB"; "512 bytes" below 1 KB. */
export function scaled(n) {
  // A value that rounds to 1000 of a unit is 1 of the next: 999,950 bytes is "1 MB".
  const tenths = (x) => Math.round(x * 10) / 10;
  let v = n, unit = '';
  for (const u of ['KB', 'MB', 'GB', 'TB', 'PB']) { if (tenths(v) < 1000) break; v /= 1000; unit = u; }
  // Tenths rounded half up, as the engine's text rounds them.
  return unit ? `${tenths(v).toFixed(1).replace(/\.0$/, '')} ${unit}` : `${grouped(n)} bytes`;
}

/** "405,504 bytes (405.5 KB)": the exact figure, then the scaled one. */
export function bytes(n) {
  return n < 1000 ? scaled(n) : `${grouped(n)} bytes (${scaled(n)})`;
}

/**
 * The bytes a size typed in a sheet means: `text` ("20", "1.5", "2,000") of the unit 10^`exponent`
 * (3 KB, 6 MB, 9 GB, 12 TB), rounded up to whole 512-byte sectors; NaN for anything else. Every
 * sheet reads sizes through it, so "20 MB" is the same disk in New Image and in Resize.
 */
export function typedSize(text, exponent) {
  const t = String(text).trim().replace(/,/g, '');
  if (!/^\d+(\.\d+)?$/.test(t)) return NaN;
  const exact = Math.round(Number(t) * 10 ** Number(exponent));
  return exact > 0 ? Math.ceil(exact / 512) * 512 : NaN;
}

export function baseName(path) { return path.split(/[\\/]/).pop(); }

/** The folder `path` is in, with its trailing slash. */
export const folderOf = (path) => path.slice(0, path.lastIndexOf('/') + 1);

/** The path without its file name's extension. */
export function stem(path) {
  const dot = path.lastIndexOf('.');
  return dot > path.lastIndexOf('/') ? path.slice(0, dot) : path;
}

/** A sentence: its first letter capital, one full stop at its end. */
export function sentence(text) {
  const t = String(text).trim();
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

const EXTENSIONS = { UDTO: 'cdr', ISO: 'iso', CUE: 'cue', NRG: 'nrg', TOAST: 'toast', UDSP: 'sparseimage', UDSB: 'sparsebundle', DC42: 'image', ASIF: 'asif', VMDK: 'vmdk', VDI: 'vdi', VHD: 'vhd', VHDX: 'vhdx', qcow2: 'qcow2', Parallels: 'hds' };

/** The extension an image of `format` (UDZO, ISO, …) is named with. */
export const extensionOf = (format) => EXTENSIONS[format] || 'dmg';
