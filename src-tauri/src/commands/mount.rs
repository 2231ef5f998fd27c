//! Mounting an image's volumes where the file manager shows them, through `dimg_mount`.

use super::browse::hand_to_opener;
use super::{blocking, CommandError, Unlocked};
use dimg_mount::Access;
use std::path::{Path, PathBuf};
use tauri::State;

/// Mount: the image's volumes where the file manager shows them, served by a `dimg attach`
/// process that outlives the window, as hdiutil's helper does ([`dimg_program`]). The passphrase of an unlocked image goes to it through a pipe.
/// Read/write where the image and the volume's file system allow (the attachment says which),
/// unless `read_only` (Images › Mount Read-Only), which never changes the image.
#[tauri::command]
pub async fn mount_image(
    path: PathBuf,
    read_only: bool,
    unlocked: State<'_, Unlocked>,
) -> Result<dimg_mount::Attachment, CommandError> {
    let pass = unlocked.get(&path);
    blocking(move || {
        let request = dimg_mount::Request {
            image: path,
            access: match read_only {
                true => Access::ReadOnly,
                false => Access::AsTheImageAllows,
            },
            ..Default::default()
        };
        let secret = pass.as_ref().and_then(|p| p.candidates().next());
        dimg_mount::spawn_attach(&dimg_program(), &request, secret)
    })
    .await
}

/// The `dimg` command that serves mounts: the one beside this program, else the one on PATH.
pub(crate) fn dimg_program() -> PathBuf {
    let beside = std::env::current_exe().map(|e| e.with_file_name("dimg"));
    beside
        .ok()
        .filter(|d| d.is_file())
        .unwrap_or_else(|| PathBuf::from("dimg"))
}

/// Eject: unmounts the image's volumes and ends their server; for a writable one, only once
/// the server has written and synced every change (a UDRW's checksums too), so that when it
/// returns the image's file is whole.
#[tauri::command]
pub async fn eject_image(path: PathBuf) -> Result<dimg_mount::Detached, CommandError> {
    blocking(move || dimg_mount::detach(&path, false)).await
}

/// Refuses a job that rewrites the image at `path` while it is attached: its server would go on
/// serving (and writing) the disk as it was.
pub(super) fn refuse_while_attached(path: &Path, job: &str) -> Result<(), CommandError> {
    let image = std::fs::canonicalize(path).ok();
    match dimg_mount::attached()
        .iter()
        .any(|a| Some(&a.image) == image.as_ref())
    {
        true => Err(CommandError::from(format!(
            "{} is mounted: eject it before {job} it",
            path.display()
        ))),
        false => Ok(()),
    }
}

/// Every attached image, whoever attached it (this window or `dimg attach`).
#[tauri::command]
pub async fn attached() -> Vec<dimg_mount::Attachment> {
    tauri::async_runtime::spawn_blocking(dimg_mount::attached)
        .await
        .unwrap_or_default()
}

/// Open: a mounted volume's folder in the file manager.
#[tauri::command]
pub fn reveal(path: PathBuf) -> Result<(), CommandError> {
    hand_to_opener(&path).map_err(CommandError::from)
}
