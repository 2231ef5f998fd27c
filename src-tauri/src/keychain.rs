//! Passphrases the user asked to remember, in the system keychain, under the image's identity:
//! its path and the UUID in its encryption header (readable without the key), so a different
//! image moved to the same path is not offered the passphrase.

use dimg::Passphrase;
use keyring::Entry;
use zeroize::Zeroizing;

const SERVICE: &str = "dimg disk image";

fn entry(identity: &str) -> keyring::Result<Entry> {
    Entry::new(SERVICE, identity)
}

pub fn remember(identity: &str, passphrase: &[u8]) -> keyring::Result<()> {
    entry(identity)?.set_secret(passphrase)
}

/// The remembered passphrase, if there is one.
pub fn recall(identity: &str) -> Option<Passphrase> {
    let secret = Zeroizing::new(entry(identity).ok()?.get_secret().ok()?);
    Some(Passphrase::new(secret.to_vec()))
}

pub fn forget(identity: &str) -> keyring::Result<()> {
    entry(identity)?.delete_credential()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IN_SESSION: &str = "DIMG_TEST_IN_KEYRING_SESSION";

    /// The real keyring crate and the real kernel keyring. The kernel keeps keys in a session
    /// keyring the process must possess, so the test runs itself again inside a fresh one
    /// (`keyctl session -`, from the keyutils package), as a login session would provide.
    #[test]
    fn stores_reads_back_and_deletes_a_passphrase() {
        if std::env::var_os(IN_SESSION).is_none() {
            let status = std::process::Command::new("keyctl")
                .args(["session", "-"])
                .arg(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "keychain::tests::stores_reads_back_and_deletes_a_passphrase",
                ])
                .env(IN_SESSION, "1")
                .status()
                .expect("keyctl (keyutils) runs");
            assert!(status.success());
            return;
        }
        let identity = format!("/tmp/test-{}.dmg#{}", std::process::id(), "8a1e-uuid");
        assert!(recall(&identity).is_none());
        remember(&identity, b"s3cret phrase").unwrap();
        let back = recall(&identity).expect("stored");
        assert_eq!(back.candidates().next().unwrap(), b"s3cret phrase");
        assert!(
            recall(&format!("{identity}-other")).is_none(),
            "another identity gets nothing"
        );
        forget(&identity).unwrap();
        assert!(recall(&identity).is_none());
    }
}
