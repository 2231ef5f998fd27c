//! An image's own commands: opening it (with the keychain's help), its password, and the jobs
//! that make or rewrite a whole image: verify, First Aid, resize, compact, convert, create.

use super::jobs::{long_job, Jobs, ProgressEvent, Reported};
use super::mount::refuse_while_attached;
use super::{blocking, CommandError, Unlocked};
use crate::keychain;
use dimg::ops::{
    self, request, text, CompactReport, ConvertOptions, ConvertReport, FirstAidReport, ImageInfo,
    Limits, ResizeReport, VerifyReport,
};
use dimg::Passphrase;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use tauri::ipc::Channel;
use tauri::State;

/// An opened image, and anything the user should know about the keychain.
#[derive(Serialize)]
pub struct OpenedImage {
    info: ImageInfo,
    keychain: Option<String>,
}

/// Opens an image. For an encrypted one, `passphrase` is what the page's sheet asked for; without
/// it, a passphrase the keychain remembers for this image is tried. A passphrase that works is
/// kept for this session, and in the keychain only when `remember` says so.
#[tauri::command]
pub async fn open_image(
    path: PathBuf,
    passphrase: Option<String>,
    remember: bool,
    unlocked: State<'_, Unlocked>,
) -> Result<OpenedImage, CommandError> {
    let typed = passphrase.map(|p| Arc::new(Passphrase::new(p.into_bytes())));
    let key = path.clone();
    let opened = blocking(move || keychain::open(&path, typed, remember)).await?;
    if let Some(p) = opened.passphrase {
        unlocked.keep(key, p);
    }
    Ok(OpenedImage {
        info: opened.info,
        keychain: opened.note,
    })
}

/// Images › Change Password…: the image opens with `new` from then on, and no longer with
/// `old`. The passphrase this session keeps for it is replaced, and one the keychain kept is
/// forgotten: it was the old one.
#[tauri::command]
pub async fn change_password(
    path: PathBuf,
    old: String,
    new: String,
    unlocked: State<'_, Unlocked>,
) -> Result<(), CommandError> {
    if new.is_empty() {
        return Err(CommandError::from(
            "give the image a new password".to_string(),
        ));
    }
    let old = Passphrase::new(old.into_bytes());
    let new = Arc::new(Passphrase::new(new.into_bytes()));
    let (key, kept) = (path.clone(), new.clone());
    blocking(move || -> dimg::Result<()> {
        ops::chpass(&path, &old, &new)?;
        // One the keychain fails to forget is found wrong at the next open, and forgotten then.
        let _ = keychain::forget_image(&path)?;
        Ok(())
    })
    .await?;
    unlocked.keep(key, kept);
    Ok(())
}

/// Where the passphrase sheet's "Remember" would keep a password, for the sheet to say.
#[tauri::command]
pub fn keychain_store() -> &'static str {
    keychain::Store::current().describe()
}

/// Images › Forget Password: the keychain no longer opens this image; true when it held a
/// password for it.
#[tauri::command]
pub async fn forget_password(path: PathBuf) -> Result<bool, CommandError> {
    blocking(move || keychain::forget_image(&path))
        .await?
        .map_err(|e| CommandError::from(format!("The keychain could not forget it: {e}")))
}

#[tauri::command]
pub async fn verify_image(
    path: PathBuf,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
    unlocked: State<'_, Unlocked>,
) -> Result<Reported<VerifyReport>, CommandError> {
    let pass = unlocked.get(&path);
    long_job(&jobs, job, on_progress, text::verify, move |p, c| {
        ops::verify(&path, pass.as_deref(), p, c)
    })
    .await
}

/// Images › First Aid…: every HFS+, HFSX and FAT volume's structures checked, or with `repair`
/// mended where that is safe (the engine refuses an image it cannot write, saying why).
#[tauri::command]
pub async fn first_aid(
    path: PathBuf,
    repair: bool,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
    unlocked: State<'_, Unlocked>,
) -> Result<Reported<FirstAidReport>, CommandError> {
    if repair {
        refuse_while_attached(&path, "repairing")?;
    }
    let pass = unlocked.get(&path);
    long_job(&jobs, job, on_progress, text::first_aid, move |p, c| {
        ops::verify_volumes(&path, pass.as_deref(), repair, p, c)
    })
    .await
}

/// The sizes the Resize sheet offers: the smallest, the current and the largest.
#[tauri::command]
pub async fn resize_limits(
    path: PathBuf,
    unlocked: State<'_, Unlocked>,
) -> Result<Limits, CommandError> {
    let pass = unlocked.get(&path);
    blocking(move || ops::limits(&path, pass.as_deref())).await
}

/// Images › Resize…: the image's disk and its volume to `size` bytes.
#[tauri::command]
pub async fn resize_image(
    path: PathBuf,
    size: u64,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
    unlocked: State<'_, Unlocked>,
) -> Result<Reported<ResizeReport>, CommandError> {
    refuse_while_attached(&path, "resizing")?;
    let pass = unlocked.get(&path);
    long_job(&jobs, job, on_progress, text::resize, move |p, c| {
        ops::resize(&path, pass.as_deref(), size, p, c)
    })
    .await
}

/// Images › Compact: gives back the space of the bands the volume leaves free.
#[tauri::command]
pub async fn compact_image(
    path: PathBuf,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
    unlocked: State<'_, Unlocked>,
) -> Result<Reported<CompactReport>, CommandError> {
    refuse_while_attached(&path, "compacting")?;
    let pass = unlocked.get(&path);
    long_job(&jobs, job, on_progress, text::compact, move |p, c| {
        ops::compact(&path, pass.as_deref(), p, c)
    })
    .await
}

/// How the Convert and New Image sheets ask for the new image to be written.
#[derive(Deserialize)]
struct WriteRequest {
    /// hdiutil's format name, e.g. "UDZO".
    format: String,
    overwrite: bool,
    /// 128 or 256 to encrypt the new image with `passphrase`.
    encryption: Option<u32>,
    passphrase: Option<String>,
}

impl WriteRequest {
    /// The password, if any, moves into the options.
    fn options(self) -> Result<ConvertOptions, String> {
        request::convert_options(
            &self.format,
            self.overwrite,
            self.encryption,
            self.passphrase,
        )
    }
}

/// What the Convert sheet asks for.
#[derive(Deserialize)]
pub struct ConvertRequest {
    source: PathBuf,
    output: PathBuf,
    #[serde(flatten)]
    write: WriteRequest,
}

impl ConvertRequest {
    /// The source, the output, and how to write it.
    pub(super) fn parse(self) -> Result<(PathBuf, PathBuf, ConvertOptions), CommandError> {
        let options = self.write.options()?;
        Ok((self.source, self.output, options))
    }
}

#[tauri::command]
pub async fn convert_image(
    request: ConvertRequest,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
    unlocked: State<'_, Unlocked>,
) -> Result<Reported<ConvertReport>, CommandError> {
    let pass = unlocked.get(&request.source);
    let (source, output, options) = request.parse()?;
    long_job(&jobs, job, on_progress, text::convert, move |p, c| {
        ops::convert(&source, pass.as_deref(), &output, &options, p, c)
    })
    .await
}

/// What the New Image sheet asks for.
#[derive(Deserialize)]
pub struct CreateRequest {
    /// The folder to make the image from; none for a blank image.
    folder: Option<PathBuf>,
    output: PathBuf,
    /// Bytes, for a blank image (or to fix a folder image's size).
    size: Option<u64>,
    /// "HFS+", "HFSX", "ISO", "FAT", "FAT32", "NONE".
    file_system: String,
    volume_name: String,
    /// "GPTSPUD", "MBRSPUD", "NONE".
    layout: String,
    #[serde(flatten)]
    write: WriteRequest,
}

/// File › New Image: a blank image or one made from a folder, with progress and Cancel.
#[tauri::command]
pub async fn create_image(
    request: CreateRequest,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
) -> Result<Reported<ops::CreateReport>, CommandError> {
    let options = ops::CreateOptions {
        output: request.write.options()?,
        file_system: request.file_system.parse()?,
        volume_name: request.volume_name,
        size: request.size,
        layout: Some(request::layout(&request.layout)?),
        distribution: ops::Distribution::default(),
        apfs_encryption: None,
        apfs_compression: None,
    };
    let (folder, target) = (request.folder, request.output);
    long_job(
        &jobs,
        job,
        on_progress,
        |r: &ops::CreateReport| text::convert(&r.written),
        move |p, c| ops::create(folder.as_deref(), &target, &options, p, c),
    )
    .await
}
