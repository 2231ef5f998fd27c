//! Passphrases the user asked to remember, in the system keychain, under the image's identity:
//! its path and the UUID in its encryption header (readable without the key), so a different
//! image moved to the same path is not offered the passphrase. [`open`] and [`forget_image`]
//! decide when one is looked up, stored and forgotten; the commands only pass them on.
//!
//! On Linux the keychain is the desktop's Secret Service (GNOME Keyring, KWallet), which keeps
//! secrets across logins. Where none answers on the session bus (a bare X session, a server),
//! the kernel keyring stands in: it forgets after a few days, and the sheet says so. On macOS
//! it is the user's login Keychain, through keyring's apple-native backend.

use dimg::ops::{self, ImageInfo};
use dimg::{Error, Passphrase};
use keyring::Entry;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

const SERVICE: &str = "dimg disk image";

/// Where remembered passphrases go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// The platform's own keychain: the Secret Service on Linux, the login Keychain on macOS.
    Desktop,
    /// Linux's kernel keyring, when no Secret Service answers.
    #[cfg(target_os = "linux")]
    Kernel,
}

impl Store {
    /// The store this session uses, chosen once: asking the Secret Service for an entry that
    /// does not exist answers "no entry" only when the service is there.
    pub fn current() -> Store {
        static CHOSEN: std::sync::OnceLock<Store> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            #[cfg(target_os = "linux")]
            {
                let probe = Store::Desktop.entry("dimg: is a keychain there?");
                match probe.and_then(|e| e.get_secret().map(drop)) {
                    Ok(()) | Err(keyring::Error::NoEntry) => Store::Desktop,
                    Err(_) => Store::Kernel,
                }
            }
            #[cfg(not(target_os = "linux"))]
            Store::Desktop
        })
    }

    /// One line for the passphrase sheet and the status bar: where a remembered password lives.
    pub fn describe(self) -> &'static str {
        match self {
            Store::Desktop => "the desktop keychain",
            #[cfg(target_os = "linux")]
            Store::Kernel => {
                "the kernel keyring (no desktop keychain answered; it forgets after a few days)"
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn entry(self, identity: &str) -> keyring::Result<Entry> {
        use keyring::{keyutils::KeyutilsCredential, secret_service::SsCredential};
        let credential: Box<keyring::Credential> = match self {
            Store::Desktop => Box::new(SsCredential::new_with_target(None, SERVICE, identity)?),
            Store::Kernel => Box::new(KeyutilsCredential::new_with_target(
                None, SERVICE, identity,
            )?),
        };
        Ok(Entry::new_with_credential(credential))
    }

    #[cfg(not(target_os = "linux"))]
    fn entry(self, identity: &str) -> keyring::Result<Entry> {
        Entry::new(SERVICE, identity)
    }
}

/// An image opened with the keychain's help.
pub struct Opened {
    pub info: ImageInfo,
    /// The passphrase that opened it, for the session to keep.
    pub passphrase: Option<Arc<Passphrase>>,
    /// What the user should know: that the passphrase was remembered, or why it could not be.
    pub note: Option<String>,
}

/// Opens an image with `typed`, the passphrase the user just gave, else one the keychain
/// remembers for it. A typed one that works is remembered when `keep` says so; a remembered
/// one that no longer works (the image's passphrase changed) is forgotten, and the image asks
/// as if there were none.
pub fn open(path: &Path, typed: Option<Arc<Passphrase>>, keep: bool) -> dimg::Result<Opened> {
    let identity = ops::identity(path)?;
    let recalled = || identity.as_deref().and_then(recall).map(Arc::new);
    let passphrase = typed.clone().or_else(recalled);
    let info = match ops::info(path, passphrase.as_deref()) {
        Err(Error::WrongPassphrase { .. }) if typed.is_none() => {
            if let Some(id) = &identity {
                let _ = forget(id);
            }
            return Err(Error::PassphraseNeeded { path: path.into() });
        }
        other => other?,
    };
    let note = match (keep, &identity, &typed) {
        (true, Some(id), Some(p)) => {
            let secret = p.candidates().next().unwrap_or_default();
            let store = Store::current().describe();
            Some(match remember(id, secret) {
                Ok(()) => format!("Password remembered in {store}."),
                Err(e) => format!("The password could not be kept in {store}: {e}"),
            })
        }
        _ => None,
    };
    Ok(Opened {
        info,
        passphrase,
        note,
    })
}

/// Forgets the passphrase kept for the image at `path`; true when there was one (an image that
/// is not encrypted has none).
pub fn forget_image(path: &Path) -> dimg::Result<keyring::Result<bool>> {
    Ok(match ops::identity(path)? {
        Some(id) => forget(&id),
        None => Ok(false),
    })
}

fn remember(identity: &str, passphrase: &[u8]) -> keyring::Result<()> {
    Store::current().entry(identity)?.set_secret(passphrase)
}

/// The remembered passphrase, if there is one.
fn recall(identity: &str) -> Option<Passphrase> {
    let entry = Store::current().entry(identity).ok()?;
    let secret = Zeroizing::new(entry.get_secret().ok()?);
    Some(Passphrase::new(secret.to_vec()))
}

/// Forgets the passphrase kept for `identity`; true when there was one.
fn forget(identity: &str) -> keyring::Result<bool> {
    match Store::current().entry(identity)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(e),
    }
}

// Linux's two stores, each started for the test; macOS's Keychain is never run here.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::process::Command;

    const IN_SESSION: &str = "DIMG_TEST_IN_KEYRING_SESSION";

    /// Runs this test binary again, `test` alone, under `wrapper` (which sets up a keyring
    /// session), and asserts that it passed.
    fn rerun_inside(wrapper: &mut Command, test: &str) {
        let status = wrapper
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture"])
            .env(IN_SESSION, "1")
            .status()
            .expect("the keyring session starts");
        assert!(status.success(), "{test} inside its keyring session");
    }

    fn round_trip(identity: &str) {
        assert!(recall(identity).is_none());
        remember(identity, b"s3cret phrase").unwrap();
        let back = recall(identity).expect("stored");
        assert_eq!(back.candidates().next().unwrap(), b"s3cret phrase");
        assert!(
            recall(&format!("{identity}-other")).is_none(),
            "another identity gets nothing"
        );
        assert!(forget(identity).unwrap());
        assert!(recall(identity).is_none());
        assert!(!forget(identity).unwrap(), "nothing left to forget");
    }

    /// No session bus: the real kernel keyring, in a session keyring of the test's own
    /// (`keyctl session -`, from keyutils), as a login session would provide.
    #[test]
    fn without_a_secret_service_the_kernel_keyring_keeps_the_passphrase() {
        const NAME: &str =
            "keychain::tests::without_a_secret_service_the_kernel_keyring_keeps_the_passphrase";
        if std::env::var_os(IN_SESSION).is_none() {
            let mut keyctl = Command::new("keyctl");
            keyctl
                .args(["session", "-"])
                .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
            return rerun_inside(&mut keyctl, NAME);
        }
        assert_eq!(Store::current(), Store::Kernel);
        assert!(Store::current().describe().contains("kernel keyring"));
        round_trip(&format!("/tmp/test-{}.dmg#8a1e-uuid", std::process::id()));
    }

    /// A private session bus with GNOME Keyring's Secret Service on it, its login keyring
    /// unlocked in a home of its own; `secret-tool` (libsecret) sees what dimg stored.
    #[test]
    fn with_a_secret_service_the_desktop_keychain_keeps_the_passphrase() {
        const NAME: &str =
            "keychain::tests::with_a_secret_service_the_desktop_keychain_keeps_the_passphrase";
        if std::env::var_os(IN_SESSION).is_none() {
            let home = tempfile::tempdir().unwrap();
            let mut session = Command::new("dbus-run-session");
            session
                .args(["--", "sh", "-c"])
                .arg(r#"printf 'login' | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$@""#)
                .arg("sh")
                .env("HOME", home.path())
                .env("XDG_DATA_HOME", home.path().join("data"))
                .env_remove("XDG_RUNTIME_DIR");
            return rerun_inside(&mut session, NAME);
        }
        assert_eq!(Store::current(), Store::Desktop);
        let identity = "/tmp/in-the-desktop-keychain.dmg#8a1e-uuid";
        remember(identity, b"kept by gnome-keyring").unwrap();
        let looked_up = Command::new("secret-tool")
            .args(["lookup", "service", SERVICE, "username", identity])
            .output()
            .unwrap();
        assert_eq!(looked_up.stdout, b"kept by gnome-keyring");
        assert!(forget(identity).unwrap());
        round_trip(identity);
    }
}
