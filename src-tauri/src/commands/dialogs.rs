//! Where the page gets paths from the desktop: the native file dialogs, and the images a
//! launch hands over (a file manager's "Open With").

use dimg::container::sparsebundle;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use tauri_plugin_dialog::{DialogExt, FilePath};

/// Image paths given on the command line (how a file manager's "Open With" hands them over),
/// this launch's and those of later launches forwarded here; the page takes them as they come.
pub struct LaunchPaths(Mutex<Vec<PathBuf>>);

impl LaunchPaths {
    pub fn from_args(args: impl Iterator<Item = OsString>) -> Self {
        let paths = LaunchPaths(Mutex::new(Vec::new()));
        paths.add(args, &std::env::current_dir().unwrap_or_default());
        paths
    }

    /// Adds a launch's arguments, relative ones taken from `cwd`, the launching process's folder.
    fn add(&self, args: impl Iterator<Item = OsString>, cwd: &Path) {
        // Absolute, as a file manager would pass them; a path that does not resolve is kept so
        // that opening it reports the problem.
        let paths = args
            .filter(|a| !a.to_string_lossy().starts_with('-'))
            .map(|a| cwd.join(a))
            .map(|p| std::fs::canonicalize(&p).unwrap_or(p));
        self.0.lock().expect("launch paths lock").extend(paths);
    }
}

#[tauri::command]
pub fn launch_paths(paths: State<LaunchPaths>) -> Vec<PathBuf> {
    std::mem::take(&mut *paths.0.lock().expect("launch paths lock"))
}

/// A second launch (another "Open With", the `.desktop` file's actions) ends here instead of
/// opening a second window: its images join this window, which comes forward.
pub fn second_launch<R: Runtime>(app: &AppHandle<R>, argv: Vec<String>, cwd: String) {
    let args = argv.into_iter().skip(1).map(OsString::from);
    app.state::<LaunchPaths>().add(args, Path::new(&cwd));
    // The page takes the paths when told; one that is still loading takes them when it starts.
    let _ = app.emit("launch-paths", ());
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

#[tauri::command]
pub async fn pick_image(app: AppHandle) -> Result<Option<PathBuf>, String> {
    // The same extensions the bundle associates with the app, from tauri.conf.json.
    let extensions: Vec<String> = app
        .config()
        .bundle
        .file_associations
        .iter()
        .flatten()
        .flat_map(|a| a.ext.iter().map(|e| e.to_string()))
        .collect();
    let picked = native_dialog(move || {
        let extensions: Vec<&str> = extensions.iter().map(String::as_str).collect();
        app.dialog()
            .file()
            .set_title("Open Disk Image")
            .add_filter("Disk images", &extensions)
            .add_filter("All files", &["*"])
            .blocking_pick_file()
    })
    .await?;
    Ok(picked.map(|p| sparsebundle::bundle_of(&p).unwrap_or(p)))
}

/// File › Open Sparse Bundle…: a bundle is a folder, which a file dialog cannot choose.
#[tauri::command]
pub async fn pick_bundle(app: AppHandle) -> Result<Option<PathBuf>, String> {
    native_dialog(move || {
        app.dialog()
            .file()
            .set_title("Open Sparse Bundle")
            .blocking_pick_folder()
    })
    .await
}

/// The native folder chooser.
#[tauri::command]
pub async fn pick_folder(app: AppHandle) -> Result<Option<PathBuf>, String> {
    native_dialog(move || {
        app.dialog()
            .file()
            .set_title("Image from Folder")
            .blocking_pick_folder()
    })
    .await
}

/// The native save dialog, starting from the page's suggestion.
#[tauri::command]
pub async fn pick_destination(
    app: AppHandle,
    suggested: PathBuf,
    title: String,
) -> Result<Option<PathBuf>, String> {
    native_dialog(move || {
        let mut dialog = app.dialog().file().set_title(title);
        if let Some(dir) = suggested.parent() {
            dialog = dialog.set_directory(dir);
        }
        if let Some(name) = suggested.file_name() {
            dialog = dialog.set_file_name(name.to_string_lossy());
        }
        dialog.blocking_save_file()
    })
    .await
}

/// Runs a native file dialog off the async runtime (it blocks until the user answers) and
/// gives the chosen path, or `None` when the user cancelled.
async fn native_dialog(
    show: impl FnOnce() -> Option<FilePath> + Send + 'static,
) -> Result<Option<PathBuf>, String> {
    let picked = tauri::async_runtime::spawn_blocking(show)
        .await
        .map_err(|e| e.to_string())?;
    picked
        .map(|p| p.into_path().map_err(|e| e.to_string()))
        .transpose()
}

/// Where a new image is saved unless the user says otherwise, as Disk Utility suggests: the
/// Desktop folder, else (none on this machine) the home folder.
#[tauri::command]
pub fn default_folder(app: AppHandle) -> Result<PathBuf, String> {
    let paths = app.path();
    match paths.desktop_dir() {
        Ok(desktop) if desktop.is_dir() => Ok(desktop),
        _ => paths.home_dir().map_err(|e| e.to_string()),
    }
}
