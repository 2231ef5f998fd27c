// The page's elements: found by id, table rows built, the status line under the pane.

export const $ = (id) => document.getElementById(id);

/** A table row of `cells`, the first a `first` cell ('th' for a fact's label). */
export function row(cells, first = 'td') {
  const tr = document.createElement('tr');
  cells.forEach((c, k) => {
    const cell = document.createElement(k === 0 ? first : 'td');
    cell.textContent = c;
    tr.append(cell);
  });
  return tr;
}

/** The line under the pane: what happened, or (`isError`) what went wrong. */
export function status(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}
