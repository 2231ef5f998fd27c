//! Passphrases: held in memory that is wiped when dropped, never printed, never logged.

use zeroize::Zeroizing;

/// A passphrase as the bytes the user typed. `Debug` shows nothing of it.
pub struct Passphrase {
    candidates: Vec<Zeroizing<Vec<u8>>>,
}

impl Passphrase {
    pub fn new(bytes: Vec<u8>) -> Self {
        Passphrase {
            candidates: vec![Zeroizing::new(bytes)],
        }
    }

    /// What `-stdinpass` read. `echo pass | …` adds a newline that may or may not be part of the
    /// passphrase (hdiutil keys with everything it reads), so both are tried.
    pub fn from_stdin(bytes: Vec<u8>) -> Self {
        let bytes = Zeroizing::new(bytes);
        let mut candidates = vec![Zeroizing::new(bytes.to_vec())];
        let trimmed = bytes
            .strip_suffix(b"\r\n")
            .or_else(|| bytes.strip_suffix(b"\n"));
        if let Some(t) = trimmed {
            candidates.insert(0, Zeroizing::new(t.to_vec()));
        }
        Passphrase { candidates }
    }

    /// The byte strings to try, most likely first.
    pub fn candidates(&self) -> impl Iterator<Item = &[u8]> {
        self.candidates.iter().map(|c| c.as_slice())
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Why an encrypted image could not be unlocked; travels inside `io::Error` like `FormatError`.
#[derive(Debug, thiserror::Error)]
pub enum Locked {
    #[error("the image is encrypted: a passphrase is needed")]
    PassphraseNeeded,
    #[error("wrong passphrase")]
    WrongPassphrase,
}

impl Locked {
    pub fn io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, self)
    }

    /// What an error made by [`Locked::io`] carries.
    pub fn of(e: &std::io::Error) -> Option<&Locked> {
        e.get_ref().and_then(|e| e.downcast_ref::<Locked>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_passphrases_are_tried_without_then_with_the_newline_and_never_shown() {
        let p = Passphrase::from_stdin(b"hunter2\n".to_vec());
        let c: Vec<&[u8]> = p.candidates().collect();
        assert_eq!(c, [&b"hunter2"[..], &b"hunter2\n"[..]]);
        assert!(!format!("{p:?}").contains("hunter2"));
        assert_eq!(
            Passphrase::from_stdin(b"x".to_vec()).candidates().count(),
            1
        );
    }
}
