// The Rust side: every real piece of work is a command, and the shell's news comes as events.
// Tauri puts its API on the page as window.__TAURI__ (app.withGlobalTauri in tauri.conf.json).
const tauri = window.__TAURI__;

export const { invoke, Channel } = tauri.core;
export const { listen } = tauri.event;

/** A command's error: the Rust side sends {kind, message}. */
export const message = (e) => e?.message ?? String(e);

/** Tells the shell when `moment` ('window', 'info') is first on screen: after the next frame. */
export function painted(moment) {
  requestAnimationFrame(() => requestAnimationFrame(() => invoke('painted', { moment })));
}

/** The window's theme: 'light', 'dark', or null for the system's. */
export const setWindowTheme = (theme) => tauri.window.getCurrentWindow().setTheme(theme);

/** The window's title. */
export const setWindowTitle = (title) => tauri.window.getCurrentWindow().setTitle(title);
