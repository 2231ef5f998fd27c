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
