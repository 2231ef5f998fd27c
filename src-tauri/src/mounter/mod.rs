//! The mounter: what a double-click on an image does, as DiskImageMounter does on a Mac
//! (`dimg-app --mount IMAGE...`, the default handler `dimg-mounter.desktop` names). It mounts
//! every volume of the image where the file manager shows them, through the same `dimg attach`
//! server the app's Mount uses, then opens the first volume in the file manager. An encrypted
//! image asks for its passphrase (unless the keychain has it); an image whose checksums take a
//! while to verify shows progress with Cancel; an image already mounted opens its volume; an
//! image with nothing to mount says what it holds and offers the app. Whatever goes wrong is a
//! dialog of one sentence, also written to standard error for the session's log.

mod dialogs;

use crate::commands::browse::hand_to_opener;
use crate::commands::mount::dimg_program;
use crate::keychain;
use dimg::ops::{self, Cancel, ImageInfo};
use dimg::{Error, Passphrase};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Mounts each image in turn; the exit status is 1 when any could not be.
pub fn run(images: impl Iterator<Item = PathBuf>) -> i32 {
    if let Err(e) = gtk::init() {
        eprintln!("dimg-app: the mounter cannot open its dialogs: {e}");
        return 1;
    }
    let mut status = 0;
    for image in images {
        if let Err(sentence) = mount(&image) {
            dialogs::tell(&dialogs::title("Could not mount", &image), &sentence);
            status = 1;
        }
    }
    status
}

/// What stopped a mount, as the one sentence its dialog shows.
type Sentence = String;

fn mount(image: &Path) -> Result<(), Sentence> {
    let name = file_name(image);
    let canonical = std::fs::canonicalize(image)
        .map_err(|e| format!("“{name}” could not be opened: {e} ({}).", image.display()))?;
    if let Some(point) = mounted_volume(&canonical) {
        return show(&point);
    }
    let Some(keychain::Opened {
        info, passphrase, ..
    }) = unlock(&canonical)?
    else {
        return Ok(());
    };
    if !info.partitions.iter().any(|p| !p.volumes.is_empty()) {
        if dialogs::nothing_to_mount(&name, &holdings(&info)) {
            open_in_app(&canonical)?;
        }
        return Ok(());
    }
    if !verified(&canonical, passphrase.clone())? {
        return Ok(());
    }
    let request = dimg_mount::Request {
        image: canonical.clone(),
        ..Default::default()
    };
    let secret = passphrase.as_ref().and_then(|p| p.candidates().next());
    let attached = dimg_mount::spawn_attach(&dimg_program(), &request, secret)
        .map_err(|reason| format!("“{name}” could not be mounted: {reason}."))?;
    match attached.mounts.first() {
        Some(first) => show(&first.mount_point),
        None => Err(format!(
            "“{name}” was attached, but none of its volumes was mounted."
        )),
    }
}

/// The folder of a volume of `image` that is mounted already, by whoever mounted it.
fn mounted_volume(image: &Path) -> Option<PathBuf> {
    dimg_mount::attached()
        .into_iter()
        .filter(|a| a.image == image)
        .find_map(|a| a.mounts.first().map(|m| m.mount_point.clone()))
}

/// The image's description and the passphrase that opens it: the keychain's, else one asked
/// for (remembered when the user asks). `None` when the user cancelled.
fn unlock(image: &Path) -> Result<Option<keychain::Opened>, Sentence> {
    let name = file_name(image);
    let opened = match keychain::open(image, None, false) {
        Err(Error::PassphraseNeeded { .. }) => {
            let Some((typed, remember)) = dialogs::ask_passphrase(&name) else {
                return Ok(None);
            };
            keychain::open(image, Some(Arc::new(typed)), remember)
        }
        other => other,
    };
    match opened {
        Ok(opened) => {
            if let Some(note) = &opened.note {
                eprintln!("dimg-app: {name}: {note}");
            }
            Ok(Some(opened))
        }
        Err(Error::WrongPassphrase { .. }) => Err(format!(
            "The password you entered for “{name}” is not correct, so nothing was mounted."
        )),
        Err(e) => Err(format!("“{name}” could not be opened: {e}.")),
    }
}

/// Verifies an image that carries checksums (UDIF), as DiskImageMounter does before mounting,
/// with a progress dialog and Cancel when it takes a while. False when the user cancelled.
fn verified(image: &Path, passphrase: Option<Arc<Passphrase>>) -> Result<bool, Sentence> {
    let name = file_name(image);
    let sums = dimg::container::open(image, passphrase.as_deref())
        .map_err(|e| format!("“{name}” could not be opened: {e}."))?
        .container
        .checksums();
    if sums.of_disk.is_empty() && sums.of_file.is_empty() {
        return Ok(true);
    }
    let owned = image.to_path_buf();
    let report = dialogs::with_progress(&name, move |progress, cancel: &Cancel| {
        ops::verify(&owned, passphrase.as_deref(), progress, cancel)
    });
    match report {
        Ok(report) if report.ok => Ok(true),
        Ok(_) => Err(format!(
            "“{name}” is damaged (its checksums do not match), so it was not mounted."
        )),
        Err(Error::Cancelled | Error::CancelledPartway { .. }) => Ok(false),
        Err(e) => Err(format!("“{name}” could not be verified: {e}.")),
    }
}

/// What an image with no volume to mount holds, for its dialog: each partition and what is in
/// it, and the tracks of a disc.
fn holdings(info: &ImageInfo) -> String {
    let mut parts: Vec<String> = info
        .partitions
        .iter()
        .map(|p| {
            let what = p.file_system.unwrap_or("no file system dimg knows");
            format!("{} ({what})", p.partition.name)
        })
        .collect();
    parts.extend(
        info.facts
            .iter()
            .filter(|f| f.label == "Track")
            .map(|f| format!("track {}", f.value)),
    );
    format!("a {} holding {}", info.format, parts.join(", "))
}

/// Opens a mounted volume in the file manager.
fn show(point: &Path) -> Result<(), Sentence> {
    hand_to_opener(point).map_err(|e| {
        format!(
            "The volume is mounted at {}, but the file manager could not be opened: {e}.",
            point.display()
        )
    })
}

/// Opens the image in the dimg window (a running one takes it over).
fn open_in_app(image: &Path) -> Result<(), Sentence> {
    std::env::current_exe()
        .and_then(|app| std::process::Command::new(app).arg(image).spawn())
        .map(drop)
        .map_err(|e| {
            format!(
                "dimg could not be started to open “{}”: {e}.",
                file_name(image)
            )
        })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}
