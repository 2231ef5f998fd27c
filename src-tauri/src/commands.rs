use crate::keychain;
use dimg::container::sparsebundle;
use dimg::ops::{
    self, request, Cancel, CompactReport, ConvertOptions, ConvertReport, ExtractReport, ImageInfo,
    Limits, Listing, NoProgress, Progress, ResizeReport, VerifyReport,
};
use dimg::{Error, Passphrase};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tauri::ipc::Channel;
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

/// The page's first frames: the window drawn, an image's info shown. With `DIMG_APP_TIMING` set
/// (`.ci/app`, the app benchmark), each first one is said on stderr as the wall clock's
/// milliseconds, so that whoever started the app can tell how long it took.
#[tauri::command]
pub fn painted(moment: String, said: State<Painted>) {
    if std::env::var_os("DIMG_APP_TIMING").is_none() {
        return;
    }
    if said.0.lock().expect("painted lock").insert(moment.clone()) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        eprintln!("dimg-app: first {moment} painted at {} ms", now.as_millis());
    }
}

/// The moments `painted` has said.
#[derive(Default)]
pub struct Painted(Mutex<HashSet<String>>);

/// Cancel tokens of running jobs, by the id the page gave them.
#[derive(Default)]
pub struct Jobs(Mutex<HashMap<u64, Cancel>>);

impl Jobs {
    fn start(&self, id: u64) -> Cancel {
        let cancel = Cancel::new();
        self.0.lock().expect("jobs lock").insert(id, cancel.clone());
        cancel
    }
    fn finish(&self, id: u64) {
        self.0.lock().expect("jobs lock").remove(&id);
    }
}

/// Runs engine work off the async runtime; errors reach the page as their one-line message.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> dimg::Result<T> + Send + 'static,
) -> Result<T, CommandError> {
    tauri::async_runtime::spawn_blocking(work)
        .await
        .map_err(|e| CommandError::other(e.to_string()))?
        .map_err(CommandError::from)
}

/// What the page gets when a command fails: a kind it can act on (ask for a passphrase, say
/// "cancelled") and the one-line message.
#[derive(Debug, Serialize)]
pub struct CommandError {
    kind: &'static str,
    message: String,
}

impl CommandError {
    fn other(message: String) -> Self {
        CommandError {
            kind: "error",
            message,
        }
    }
}

impl From<Error> for CommandError {
    fn from(e: Error) -> Self {
        let kind = match e {
            Error::PassphraseNeeded { .. } => "passphrase-needed",
            Error::WrongPassphrase { .. } => "wrong-passphrase",
            Error::Cancelled | Error::CancelledPartway { .. } => "cancelled",
            _ => "error",
        };
        CommandError {
            kind,
            message: e.to_string(),
        }
    }
}

/// Passphrases of the encrypted images opened this session, by path; in memory only (wiped on
/// drop), so Verify and Convert need not ask again.
#[derive(Default)]
pub struct Unlocked(Mutex<HashMap<PathBuf, Arc<Passphrase>>>);

impl Unlocked {
    fn get(&self, path: &PathBuf) -> Option<Arc<Passphrase>> {
        self.0.lock().expect("unlocked lock").get(path).cloned()
    }
}

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
        unlocked.0.lock().expect("unlocked lock").insert(key, p);
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
        return Err(CommandError::other("give the image a new password".into()));
    }
    let old = Passphrase::new(old.into_bytes());
    let new = Arc::new(Passphrase::new(new.into_bytes()));
    let (key, kept) = (path.clone(), new.clone());
    blocking(move || {
        ops::chpass(&path, &old, &new)?;
        // The keychain's passphrase was the old one. One it fails to forget is found wrong at
        // the next open, and forgotten then.
        let _ = keychain::forget_image(&path)?;
        Ok(())
    })
    .await?;
    unlocked.0.lock().expect("unlocked lock").insert(key, kept);
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
        .map_err(|e| CommandError::other(format!("The keychain could not forget it: {e}")))
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

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressEvent {
    phase: String,
    done: u64,
    total: u64,
}

/// Streams progress to the page over a channel, at most every 50 ms (and always the last step),
/// so a fast job never floods the page.
struct ChannelProgress {
    channel: Channel<ProgressEvent>,
    state: Mutex<(String, u64, Instant)>,
}

const PROGRESS_INTERVAL: Duration = Duration::from_millis(50);

impl ChannelProgress {
    fn new(channel: Channel<ProgressEvent>) -> Self {
        let long_ago = Instant::now() - PROGRESS_INTERVAL;
        ChannelProgress {
            channel,
            state: Mutex::new((String::new(), 0, long_ago)),
        }
    }
}

impl Progress for ChannelProgress {
    fn begin(&self, phase: &str, total: u64) {
        let mut state = self.state.lock().expect("progress lock");
        *state = (phase.to_string(), total, Instant::now() - PROGRESS_INTERVAL);
    }
    fn advance(&self, done: u64) {
        let mut state = self.state.lock().expect("progress lock");
        let (phase, total, last) = &mut *state;
        if done < *total && last.elapsed() < PROGRESS_INTERVAL {
            return;
        }
        *last = Instant::now();
        // The page may have gone away; the job goes on regardless.
        let _ = self.channel.send(ProgressEvent {
            phase: phase.clone(),
            done,
            total: *total,
        });
    }
}

/// Runs a long engine job with progress streamed to the page and a cancel token the page can
/// trip through `cancel_job(id)`.
async fn long_job<T: Send + 'static>(
    jobs: &Jobs,
    id: u64,
    channel: Channel<ProgressEvent>,
    work: impl FnOnce(&dyn Progress, &Cancel) -> dimg::Result<T> + Send + 'static,
) -> Result<T, CommandError> {
    let cancel = jobs.start(id);
    let progress = ChannelProgress::new(channel);
    let result = blocking(move || work(&progress, &cancel)).await;
    jobs.finish(id);
    result
}

#[tauri::command]
pub async fn verify_image(
    path: PathBuf,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
    unlocked: State<'_, Unlocked>,
) -> Result<VerifyReport, CommandError> {
    let pass = unlocked.get(&path);
    long_job(&jobs, job, on_progress, move |p, c| {
        ops::verify(&path, pass.as_deref(), p, c)
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
) -> Result<ResizeReport, CommandError> {
    let pass = unlocked.get(&path);
    long_job(&jobs, job, on_progress, move |p, c| {
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
) -> Result<CompactReport, CommandError> {
    let pass = unlocked.get(&path);
    long_job(&jobs, job, on_progress, move |p, c| {
        ops::compact(&path, pass.as_deref(), p, c)
    })
    .await
}

/// What the Convert sheet asks for.
#[derive(Deserialize)]
pub struct ConvertRequest {
    source: PathBuf,
    output: PathBuf,
    /// hdiutil's format name, e.g. "UDZO".
    format: String,
    overwrite: bool,
    /// 128 or 256 to encrypt the new image with `passphrase`.
    encryption: Option<u32>,
    passphrase: Option<String>,
}

impl ConvertRequest {
    /// How to write the output; the password, if any, moves into them.
    fn options(&mut self) -> Result<ConvertOptions, CommandError> {
        request::convert_options(
            &self.format,
            self.overwrite,
            self.encryption,
            self.passphrase.take(),
        )
        .map_err(CommandError::other)
    }
}

#[tauri::command]
pub async fn convert_image(
    mut request: ConvertRequest,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
    unlocked: State<'_, Unlocked>,
) -> Result<ConvertReport, CommandError> {
    let pass = unlocked.get(&request.source);
    let options = request.options()?;
    long_job(&jobs, job, on_progress, move |p, c| {
        let ConvertRequest { source, output, .. } = &request;
        ops::convert(source, pass.as_deref(), output, &options, p, c)
    })
    .await
}

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
    mut request: ConvertRequest,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
) -> Result<ConvertReport, CommandError> {
    let options = request.options()?;
    long_job(&jobs, job, on_progress, move |p, c| {
        let ConvertRequest { source, output, .. } = &request;
        ops::image_device(source, output, &options, false, p, c)
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
) -> Result<ops::RestoreReport, CommandError> {
    let pass = unlocked.get(&path);
    long_job(&jobs, job, on_progress, move |p, c| {
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
) -> Result<ops::BurnReport, CommandError> {
    let pass = unlocked.get(&path);
    long_job(&jobs, job, on_progress, move |p, c| {
        ops::burn(&path, pass.as_deref(), &options, false, p, c)
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
    /// hdiutil's format name.
    format: String,
    /// 128 or 256 to encrypt with `passphrase`.
    encryption: Option<u32>,
    passphrase: Option<String>,
    overwrite: bool,
}

/// File › New Image: a blank image or one made from a folder, with progress and Cancel.
#[tauri::command]
pub async fn create_image(
    request: CreateRequest,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
) -> Result<ops::CreateReport, CommandError> {
    let output = request::convert_options(
        &request.format,
        request.overwrite,
        request.encryption,
        request.passphrase,
    )
    .map_err(CommandError::other)?;
    let options = ops::CreateOptions {
        file_system: request.file_system.parse().map_err(CommandError::other)?,
        volume_name: request.volume_name,
        size: request.size,
        layout: Some(request::layout(&request.layout).map_err(CommandError::other)?),
        output,
    };
    let (folder, target) = (request.folder, request.output);
    long_job(&jobs, job, on_progress, move |p, c| {
        ops::create(folder.as_deref(), &target, &options, p, c)
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

/// Export…: the item extracted into the new folder `destination`, with progress and Cancel.
#[tauri::command]
pub async fn export_item(
    request: ItemRequest,
    destination: PathBuf,
    job: u64,
    on_progress: Channel<ProgressEvent>,
    jobs: State<'_, Jobs>,
    unlocked: State<'_, Unlocked>,
) -> Result<ExtractReport, CommandError> {
    let pass = unlocked.get(&request.source);
    long_job(&jobs, job, on_progress, move |p, c| {
        let ItemRequest {
            source,
            volume,
            item,
        } = &request;
        ops::extract(
            source,
            pass.as_deref(),
            *volume,
            item,
            &destination,
            false,
            p,
            c,
        )
    })
    .await
}

/// Extracts an item of a volume into a temporary folder of its own (named `prefix`…, left for
/// whoever it is handed to), and returns the extracted file or folder.
fn extract_to_temp(
    request: &ItemRequest,
    pass: Option<&Passphrase>,
    prefix: &str,
) -> dimg::Result<PathBuf> {
    let holder = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| Error::io(&std::env::temp_dir(), e))?
        .keep();
    let folder = holder.join("item");
    let ItemRequest {
        source,
        volume,
        item,
    } = request;
    ops::extract(
        source,
        pass,
        *volume,
        item,
        &folder,
        // The one item asked for: if it cannot be read, that is the answer.
        true,
        &NoProgress,
        &Cancel::new(),
    )?;
    let name = Path::new(item.as_str())
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    Ok(folder.join(name))
}

/// A double-click: the file extracted to a temporary folder of its own and handed to the
/// program that opens files ($DIMG_OPEN_WITH, else the desktop's opener). Returns where it is.
#[tauri::command]
pub async fn open_item(
    request: ItemRequest,
    unlocked: State<'_, Unlocked>,
) -> Result<PathBuf, CommandError> {
    let pass = unlocked.get(&request.source);
    blocking(move || {
        let file = extract_to_temp(&request, pass.as_deref(), "dimg-open-")?;
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
    let file = blocking(move || extract_to_temp(&request, pass.as_deref(), "dimg-drag-")).await?;
    let (started, outcome) = std::sync::mpsc::channel();
    let dragged = file.clone();
    let on_main = window.clone();
    window
        .run_on_main_thread(move || {
            let _ = started.send(start_native_drag(&on_main, dragged));
        })
        .map_err(|e| CommandError::other(e.to_string()))?;
    let outcome = tauri::async_runtime::spawn_blocking(move || outcome.recv())
        .await
        .map_err(|e| CommandError::other(e.to_string()))?;
    match outcome {
        Ok(Ok(())) => Ok(file),
        Ok(Err(e)) => Err(CommandError::other(format!(
            "The drag could not start: {e}"
        ))),
        Err(_) => Err(CommandError::other("The drag could not start.".into())),
    }
}

fn start_native_drag(window: &tauri::WebviewWindow, file: PathBuf) -> Result<(), String> {
    let icon = drag::Image::Raw(include_bytes!("../../icons/32x32.png").to_vec());
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
fn hand_to_opener(path: &std::path::Path) -> dimg::Result<()> {
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
        .map_err(|e| Error::io(std::path::Path::new(&opener), e))?;
    Ok(())
}

/// Mount: the image's volumes where the file manager shows them, served by a `dimg attach`
/// process that outlives the window, as hdiutil's helper does (the `dimg` beside this program,
/// else the one on PATH). The passphrase of an unlocked image goes to it through a pipe.
#[tauri::command]
pub async fn mount_image(
    path: PathBuf,
    unlocked: State<'_, Unlocked>,
) -> Result<dimg_mount::Attachment, CommandError> {
    let pass = unlocked.get(&path);
    tauri::async_runtime::spawn_blocking(move || {
        let beside = std::env::current_exe().map(|e| e.with_file_name("dimg"));
        let dimg = beside
            .ok()
            .filter(|d| d.is_file())
            .unwrap_or_else(|| PathBuf::from("dimg"));
        let request = dimg_mount::Request {
            image: path,
            ..Default::default()
        };
        let secret = pass.as_ref().and_then(|p| p.candidates().next());
        dimg_mount::spawn_attach(&dimg, &request, secret)
    })
    .await
    .map_err(|e| CommandError::other(e.to_string()))?
    .map_err(CommandError::other)
}

/// Eject: unmounts the image's volumes and ends their server.
#[tauri::command]
pub async fn eject_image(path: PathBuf) -> Result<dimg_mount::Detached, CommandError> {
    tauri::async_runtime::spawn_blocking(move || dimg_mount::detach(&path, false))
        .await
        .map_err(|e| CommandError::other(e.to_string()))?
        .map_err(CommandError::other)
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

#[tauri::command]
pub fn cancel_job(job: u64, jobs: State<Jobs>) {
    if let Some(cancel) = jobs.0.lock().expect("jobs lock").get(&job) {
        cancel.cancel();
    }
}
