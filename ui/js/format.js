// How the page words sizes and names files.

/** "1.5 MiB", or "" below 1 KiB. */
export function scaled(n) {
  let v = n, unit = '';
  for (const u of ['KiB', 'MiB', 'GiB', 'TiB']) { if (v < 1024) break; v /= 1024; unit = u; }
  return unit ? `${v.toFixed(1)} ${unit}` : '';
}

/** "405,504 bytes (396.0 KiB)". */
export function bytes(n) {
  const s = scaled(n);
  return `${n.toLocaleString('en-US')} bytes` + (s ? ` (${s})` : '');
}

export function baseName(path) { return path.split(/[\\/]/).pop(); }

/** The path without its file name's extension. */
export function stem(path) {
  const dot = path.lastIndexOf('.');
  return dot > path.lastIndexOf('/') ? path.slice(0, dot) : path;
}

const EXTENSIONS = { UDTO: 'cdr', ISO: 'iso', CUE: 'cue', NRG: 'nrg', TOAST: 'toast', UDSP: 'sparseimage', UDSB: 'sparsebundle', DC42: 'image' };

/** The extension an image of `format` (UDZO, ISO, …) is named with. */
export const extensionOf = (format) => EXTENSIONS[format] || 'dmg';
