// What the window remembers across launches, as a Mac app does: its size, the sidebar's width,
// the browser's column widths and its sort. Kept in the page's local storage.

const KEY = 'dimg.layout';

/** The remembered layout: { window: [w, h], sidebar: px, columns: [px...], sort: { column, descending } }. */
export const layout = (() => {
  try {
    return JSON.parse(localStorage.getItem(KEY)) || {};
  } catch {
    return {};
  }
})();

/** Remembers `layout` as it is now. */
export function keepLayout() {
  localStorage.setItem(KEY, JSON.stringify(layout));
}

/** Gives the window, the sidebar and the columns their remembered sizes, and follows changes. */
export function restoreLayout() {
  const win = window.__TAURI__?.window?.getCurrentWindow?.();
  if (win && layout.window) {
    const [w, h] = layout.window;
    win.setSize(new window.__TAURI__.dpi.LogicalSize(w, h)).catch(() => {});
  }
  let resized;
  window.addEventListener('resize', () => {
    clearTimeout(resized);
    // The window's own size (with its menu bar), as setSize takes it back.
    resized = setTimeout(async () => {
      if (!win) return;
      const size = (await win.innerSize()).toLogical(await win.scaleFactor());
      layout.window = [Math.round(size.width), Math.round(size.height)];
      keepLayout();
    }, 300);
  });
  const sidebar = document.getElementById('sidebar');
  if (layout.sidebar) sidebar.style.width = `${layout.sidebar}px`;
  setUpSplitter(sidebar, document.getElementById('splitter'));
  new ResizeObserver(() => {
    const width = Math.round(sidebar.getBoundingClientRect().width);
    if (width && width !== layout.sidebar) { layout.sidebar = width; keepLayout(); }
  }).observe(sidebar);
  setUpColumns(document.getElementById('files'));
}

/** The line between the sidebar and the pane: dragged, the sidebar takes the width (remembered). */
function setUpSplitter(sidebar, splitter) {
  splitter.onmousedown = (down) => {
    down.preventDefault();
    const start = sidebar.getBoundingClientRect().width;
    const move = (e) => { sidebar.style.width = `${start + e.clientX - down.clientX}px`; };
    const up = () => {
      removeEventListener('mousemove', move);
      removeEventListener('mouseup', up);
    };
    addEventListener('mousemove', move);
    addEventListener('mouseup', up);
  };
}

/** A grip at each header's right edge: dragged, its column takes the width (remembered). */
function setUpColumns(table) {
  const headers = [...table.tHead.rows[0].cells];
  headers.forEach((th, i) => {
    if (layout.columns?.[i]) th.style.width = `${layout.columns[i]}px`;
    const grip = document.createElement('span');
    grip.className = 'grip';
    grip.onclick = (e) => e.stopPropagation();
    grip.onmousedown = (down) => {
      down.preventDefault();
      const start = th.getBoundingClientRect().width;
      const move = (e) => { th.style.width = `${Math.max(40, start + e.clientX - down.clientX)}px`; };
      const up = () => {
        removeEventListener('mousemove', move);
        removeEventListener('mouseup', up);
        layout.columns = headers.map((h) => Math.round(h.getBoundingClientRect().width));
        keepLayout();
      };
      addEventListener('mousemove', move);
      addEventListener('mouseup', up);
    };
    th.append(grip);
  });
}
