//! The machine's disks: listing and watching them for the sidebar, imaging one, writing an
//! image onto one (restore, burn), and changing one as Disk Utility does (erase, partition,
//! mount, unmount).

use super::images::ConvertRequest;
use super::jobs::{long_job, Jobs, ProgressEvent, Reported};
use super::{blocking, CommandError, Unlocked};
use dimg::device::MountChange;
use dimg::ops::{self, text, ConvertReport};
use serde::Deserialize;
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

/// What the Erase sheet asks for: the new volume's format and name, and for a whole disk its
/// partition map ("GPT", "MBR", "APM").
#[derive(Deserialize)]
pub struct EraseRequest {
    device: PathBuf,
    format: String,
    name: String,
    scheme: Option<String>,
}

/// Erase…: a disk or partition made into a new volume (the engine refuses the running system's
/// disk and a mounted volume, saying why).
#[tauri::command]
pub async fn erase_device(
    request: EraseRequest,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
) -> Result<Reported<ops::EraseReport>, CommandError> {
    let options = ops::EraseOptions {
        format: request.format.parse()?,
        name: request.name,
        scheme: request.scheme.as_deref().map(str::parse).transpose()?,
    };
    let device = request.device;
    long_job(&jobs, job, on_progress, text::erase, move |p, c| {
        ops::erase(&device, &options, p, c)
    })
    .await
}

/// What the Partition sheet asks for: a partition added to a disk (of `size` bytes, the largest
/// free space without one, with a volume of `format` named `name` if one is given), or a
/// partition deleted or resized to `size`.
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum PartitionRequest {
    Add {
        disk: PathBuf,
        size: Option<u64>,
        format: Option<String>,
        name: String,
    },
    Delete {
        partition: PathBuf,
    },
    Resize {
        partition: PathBuf,
        size: u64,
    },
}

/// Partition…: as `dimg partition` does, through udisks2.
#[tauri::command]
pub async fn partition_device(
    request: PartitionRequest,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
) -> Result<Reported<ops::PartitionReport>, CommandError> {
    long_job(
        &jobs,
        job,
        on_progress,
        text::partition,
        move |p, c| match request {
            PartitionRequest::Add {
                disk,
                size,
                format,
                name,
            } => {
                let format = format.as_deref().map(str::parse).transpose();
                let format = format.map_err(|reason| dimg::Error::Refused {
                    path: disk.clone(),
                    reason,
                })?;
                ops::add_partition(&disk, size, format, &name, p, c)
            }
            PartitionRequest::Delete { partition } => ops::delete_partition(&partition),
            PartitionRequest::Resize { partition, size } => ops::resize_partition(&partition, size),
        },
    )
    .await
}

/// Mount for a device: its volumes where the desktop mounts them, through udisks2.
#[tauri::command]
pub async fn mount_device(path: PathBuf) -> Result<Vec<MountChange>, CommandError> {
    blocking(move || dimg::device::mount(&path)).await
}

/// Unmount for a device: every volume of it that is mounted.
#[tauri::command]
pub async fn unmount_device(path: PathBuf) -> Result<Vec<MountChange>, CommandError> {
    blocking(move || dimg::device::unmount(&path, false)).await
}
