//! The page's commands, a file per domain. Each is a few lines over `dimg::ops` or `dimg_mount`,
//! run off the async runtime; the engine knows nothing of Tauri.

pub mod browse;
pub mod devices;
pub mod dialogs;
pub mod images;
pub mod jobs;
pub mod mount;

use dimg::{Error, Passphrase};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tauri::{AppHandle, State};

/// What the page gets when a command fails: a kind it can act on (ask for a passphrase, say
/// "cancelled"), the cause in plain words for the sentence a person reads first ("part of its
/// data is damaged"), and the one-line technical message for Details.
#[derive(Debug, Serialize)]
pub struct CommandError {
    kind: &'static str,
    cause: String,
    message: String,
}

impl From<String> for CommandError {
    fn from(message: String) -> Self {
        CommandError {
            kind: "error",
            cause: message.clone(),
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
            cause: cause(&e),
            message: e.to_string(),
        }
    }
}

/// Why `e` happened, as the end of a sentence ("… because part of its data is damaged").
fn cause(e: &Error) -> String {
    use std::io::ErrorKind;
    match e {
        Error::Io { source, .. } => match source.kind() {
            ErrorKind::InvalidData | ErrorKind::UnexpectedEof => {
                "part of its data is damaged".into()
            }
            // The system's own NotFound is the file's; an engine's names a file it needs.
            ErrorKind::NotFound if source.get_ref().is_some() => {
                "a file it needs can't be found".into()
            }
            ErrorKind::NotFound => "it can't be found".into(),
            ErrorKind::PermissionDenied => "you don't have permission to use it".into(),
            ErrorKind::StorageFull => "there is no space left on the disk".into(),
            ErrorKind::ReadOnlyFilesystem => "it is on a read-only disk".into(),
            ErrorKind::AlreadyExists => "a file of that name exists already".into(),
            _ => format!("of an error reading or writing it ({source})"),
        },
        Error::Unrecognized { .. } => "it isn't a disk image dimg recognises".into(),
        Error::Unsupported { format, .. } => {
            format!("it is in a format dimg can't open yet ({format})")
        }
        // Most reasons go on from the file's name ("already exists"); some stand alone.
        Error::Refused { reason, .. }
            if matches!(reason.split_whitespace().next(), Some("it" | "its" | "the")) =>
        {
            reason.clone()
        }
        Error::Refused { path, reason } => {
            let name = path.file_name().unwrap_or(path.as_os_str());
            format!("“{}” {reason}", name.to_string_lossy())
        }
        Error::PassphraseNeeded { .. } => "it is encrypted and needs its password".into(),
        Error::WrongPassphrase { .. } => "the password is wrong".into(),
        Error::Cancelled => String::new(),
        Error::CancelledPartway { .. } => "the disk now holds part of the image and can't be used \
             until it is restored or erased"
            .into(),
    }
}

/// Runs blocking work (the engine's, a mount server's) off the async runtime; its errors reach
/// the page as their one-line message.
async fn blocking<T: Send + 'static, E: Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, CommandError>
where
    CommandError: From<E>,
{
    tauri::async_runtime::spawn_blocking(work)
        .await
        // Spelt out: within this function, a bare `CommandError::from` is `From<E>`'s.
        .map_err(|e| <CommandError as From<String>>::from(e.to_string()))?
        .map_err(CommandError::from)
}

/// Passphrases of the encrypted images opened this session, by path; in memory only (wiped on
/// drop), so Verify and Convert need not ask again.
#[derive(Default)]
pub struct Unlocked(Mutex<HashMap<PathBuf, Arc<Passphrase>>>);

impl Unlocked {
    fn get(&self, path: &Path) -> Option<Arc<Passphrase>> {
        self.0.lock().expect("unlocked lock").get(path).cloned()
    }
    fn keep(&self, path: PathBuf, passphrase: Arc<Passphrase>) {
        self.0
            .lock()
            .expect("unlocked lock")
            .insert(path, passphrase);
    }
}

/// The page says which menu items its selection allows, and the appearance in force.
#[tauri::command]
pub fn menu_state(
    enabled: HashMap<String, bool>,
    appearance: String,
    app: AppHandle,
) -> Result<(), CommandError> {
    crate::menu::follow_page(&app, &enabled, &appearance)
        .map_err(|e| CommandError::from(e.to_string()))
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
