//! Browsing an image's volume: listing a folder, and taking items out of it (Export, a
//! double-click, a drag to the file manager).

use super::jobs::{long_job, Jobs, ProgressEvent, Reported};
use super::{blocking, CommandError, Unlocked};
use dimg::ops::{self, text, Cancel, ExtractReport, Listing, NoProgress, Progress};
use dimg::{Error, Passphrase};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tauri::ipc::Channel;
use tauri::State;

/// A folder of a volume of an image: `volume` as `info` numbers them.
#[tauri::command]
pub async fn list_folder(
    path: PathBuf,
    volume: Option<ops::VolumeId>,
    folder: String,
    unlocked: State<'_, Unlocked>,
) -> Result<Listing, CommandError> {
    let pass = unlocked.get(&path);
    blocking(move || ops::list(&path, pass.as_deref(), volume, &folder)).await
}

/// One file or folder of a volume, to take out of the image.
#[derive(Deserialize)]
pub struct ItemRequest {
    source: PathBuf,
    volume: Option<ops::VolumeId>,
    /// Its path in the volume.
    item: String,
}

impl ItemRequest {
    /// Extracts the item into the new folder `destination`; with `strict`, an unreadable file
    /// fails it rather than being left out.
    fn extract(
        &self,
        pass: Option<&Passphrase>,
        destination: &Path,
        strict: bool,
        progress: &dyn Progress,
        cancel: &Cancel,
    ) -> dimg::Result<ExtractReport> {
        let ItemRequest {
            source,
            volume,
            item,
        } = self;
        ops::extract(
            source,
            pass,
            *volume,
            item,
            destination,
            strict,
            progress,
            cancel,
        )
    }

    /// Extracts the item into a temporary folder of its own (named `prefix`…, left for whoever
    /// it is handed to), and returns the extracted file or folder.
    fn extract_to_temp(&self, pass: Option<&Passphrase>, prefix: &str) -> dimg::Result<PathBuf> {
        let holder = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| Error::io(&std::env::temp_dir(), e))?
            .keep();
        let folder = holder.join("item");
        // The one item asked for: if it cannot be read, that is the answer.
        self.extract(pass, &folder, true, &NoProgress, &Cancel::new())?;
        let name = Path::new(self.item.as_str())
            .file_name()
            .map(std::ffi::OsStr::to_os_string)
            .unwrap_or_default();
        Ok(folder.join(name))
    }
}

/// Export…: the item extracted into the new folder `destination`, with progress and Cancel.
#[tauri::command]
pub async fn export_item(
    request: ItemRequest,
    destination: PathBuf,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
    unlocked: State<'_, Unlocked>,
) -> Result<Reported<ExtractReport>, CommandError> {
    let pass = unlocked.get(&request.source);
    long_job(&jobs, job, on_progress, text::extract, move |p, c| {
        request.extract(pass.as_deref(), &destination, false, p, c)
    })
    .await
}

/// A double-click: the file extracted to a temporary folder of its own and handed to the
/// program that opens files ($DIMG_OPEN_WITH, else the desktop's opener). Returns where it is.
#[tauri::command]
pub async fn open_item(
    request: ItemRequest,
    unlocked: State<'_, Unlocked>,
) -> Result<PathBuf, CommandError> {
    let pass = unlocked.get(&request.source);
    blocking(move || -> dimg::Result<PathBuf> {
        let file = request.extract_to_temp(pass.as_deref(), "dimg-open-")?;
        hand_to_opener(&file)?;
        Ok(file)
    })
    .await
}

/// Dragging an item out of the browser: it is extracted to a temporary folder, then a native
/// drag of that file or folder begins (GTK's on Linux, through the `drag` crate), which the
/// file manager copies where it is dropped. The page starts it from its own `dragstart`, while
/// the button is still down.
#[tauri::command]
pub async fn drag_out(
    window: tauri::WebviewWindow,
    request: ItemRequest,
    unlocked: State<'_, Unlocked>,
) -> Result<PathBuf, CommandError> {
    let pass = unlocked.get(&request.source);
    let file = blocking(move || request.extract_to_temp(pass.as_deref(), "dimg-drag-")).await?;
    let (started, outcome) = std::sync::mpsc::channel();
    let dragged = file.clone();
    let on_main = window.clone();
    window
        .run_on_main_thread(move || {
            let _ = started.send(start_native_drag(&on_main, dragged));
        })
        .map_err(|e| CommandError::from(e.to_string()))?;
    let outcome = tauri::async_runtime::spawn_blocking(move || outcome.recv())
        .await
        .map_err(|e| CommandError::from(e.to_string()))?;
    match outcome {
        Ok(Ok(())) => Ok(file),
        Ok(Err(e)) => Err(CommandError::from(format!("The drag could not start: {e}"))),
        Err(_) => Err(CommandError::from("The drag could not start.".to_string())),
    }
}

fn start_native_drag(window: &tauri::WebviewWindow, file: PathBuf) -> Result<(), String> {
    let icon = drag::Image::Raw(include_bytes!("../../../icons/32x32.png").to_vec());
    let item = drag::DragItem::Files(vec![file]);
    let options = drag::Options::default();
    #[cfg(target_os = "linux")]
    let target = window.gtk_window().map_err(|e| e.to_string())?;
    #[cfg(not(target_os = "linux"))]
    let target = window.clone();
    drag::start_drag(&target, item, icon, |_, _| {}, options).map_err(|e| e.to_string())
}

/// Gives a file or folder to the program that opens them: $DIMG_OPEN_WITH, else the desktop's
/// opener (the file manager, for a folder).
pub(crate) fn hand_to_opener(path: &Path) -> dimg::Result<()> {
    let opener = std::env::var_os("DIMG_OPEN_WITH").unwrap_or_else(|| {
        if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        }
        .into()
    });
    std::process::Command::new(&opener)
        .arg(path)
        .spawn()
        .map_err(|e| Error::io(Path::new(&opener), e))?;
    Ok(())
}
