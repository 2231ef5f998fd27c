//! The machine's disks: listing and watching them for the sidebar, imaging one, and writing an
//! image onto one (restore, burn).

use super::images::ConvertRequest;
use super::jobs::{long_job, Jobs, ProgressEvent, Reported};
use super::{blocking, CommandError, Unlocked};
use dimg::ops::{self, text, ConvertReport};
use std::path::PathBuf;
use tauri::ipc::Channel;
use tauri::{AppHandle, Emitter, Runtime, State};

/// The machine's disks for the sidebar's Devices section.
#[tauri::command]
pub async fn devices() -> Result<Vec<dimg::device::Device>, CommandError> {
    blocking(dimg::device::list).await
}

/// Tells the page of each change to the disks (udisks2's signals) as a `devices-changed`
/// event, from then on; false where nothing tells of changes, and the page polls instead.
#[tauri::command]
pub async fn watch_devices<R: Runtime>(app: AppHandle<R>) -> bool {
    static WATCHING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let watch = move || match dimg::device::changes() {
        Some(changes) => {
            std::thread::spawn(move || {
                changes.for_each(|()| drop(app.emit("devices-changed", ())))
            });
            true
        }
        None => false,
    };
    let started = tauri::async_runtime::spawn_blocking(|| *WATCHING.get_or_init(watch));
    started.await.unwrap_or(false)
}

/// File › New Image › Image from Device…: the device (`request.source`) copied byte for byte
/// into the chosen format, with progress and Cancel.
#[tauri::command]
pub async fn image_device(
    request: ConvertRequest,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
) -> Result<Reported<ConvertReport>, CommandError> {
    let (device, output, options) = request.parse()?;
    long_job(&jobs, job, on_progress, text::convert, move |p, c| {
        ops::image_device(&device, &output, &options, false, p, c)
    })
    .await
}

/// Images › Restore…: the image's disk written onto `target` (the engine refuses a device too
/// small, mounted or holding the image), read back unless `verify` is off.
#[tauri::command]
pub async fn restore_image(
    path: PathBuf,
    target: PathBuf,
    verify: bool,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
    unlocked: State<'_, Unlocked>,
) -> Result<Reported<ops::RestoreReport>, CommandError> {
    let pass = unlocked.get(&path);
    long_job(&jobs, job, on_progress, text::restore, move |p, c| {
        ops::restore(&path, pass.as_deref(), &target, verify, p, c)
    })
    .await
}

/// Images › Burn…: the image onto the disc in `options.device`, as `dimg burn` does.
#[tauri::command]
pub async fn burn_image(
    path: PathBuf,
    options: ops::BurnOptions,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
    unlocked: State<'_, Unlocked>,
) -> Result<Reported<ops::BurnReport>, CommandError> {
    let pass = unlocked.get(&path);
    long_job(&jobs, job, on_progress, text::burn, move |p, c| {
        ops::burn(&path, pass.as_deref(), &options, false, p, c)
    })
    .await
}
