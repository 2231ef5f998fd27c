//! Errors. The layers below [`crate::ops`] read through [`crate::io::ReadAt`], which speaks
//! `std::io::Error`; they describe a damaged structure with a [`FormatError`] carried inside it.
//! [`crate::ops`] adds the one thing those layers do not know, the file's path, and returns [`Error`].

use std::io;
use std::path::{Path, PathBuf};

/// A structure inside an image is not what its format says it must be.
#[derive(Debug, thiserror::Error)]
#[error("{structure} at offset {offset}: {problem}")]
pub struct FormatError {
    /// The structure as the format's documentation names it, e.g. "UDIF koly trailer".
    pub structure: &'static str,
    /// Byte offset of the structure in the source it was read from.
    pub offset: u64,
    /// What is wrong, including what was expected.
    pub problem: String,
}

impl FormatError {
    /// A `FormatError` wrapped as an `io::Error` of kind `InvalidData`, so that it can travel
    /// through `ReadAt` and `?` unchanged.
    pub fn io(structure: &'static str, offset: u64, problem: impl Into<String>) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            FormatError {
                structure,
                offset,
                problem: problem.into(),
            },
        )
    }
}

/// An error of a whole operation on one image file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, writing or decoding failed; `source` says which structure when the file is damaged.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// No magic number of any format dimg knows was found.
    #[error("{}: not a disk image I know ({detail})", path.display())]
    Unrecognized { path: PathBuf, detail: String },
    /// The format was recognised by its magic number, but dimg cannot read it yet.
    #[error("{}: recognised as {format}, which dimg cannot open yet", path.display())]
    Unsupported { path: PathBuf, format: &'static str },
    /// The request cannot be carried out as asked (an output that is the input, or exists).
    #[error("{}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    /// The image is encrypted and no passphrase was given.
    #[error("{}: the image is encrypted: a passphrase is needed", path.display())]
    PassphraseNeeded { path: PathBuf },
    /// The passphrase does not unlock the image (the file itself is fine).
    #[error("{}: wrong passphrase", path.display())]
    WrongPassphrase { path: PathBuf },
    /// The user cancelled the operation; nothing was left behind.
    #[error("cancelled")]
    Cancelled,
    /// The user cancelled a restore partway: the device holds the first `written` bytes.
    #[error(
        "{}: cancelled after {written} bytes were written: the disk now holds part of the image and \
         cannot be used until it is restored or erased",
        path.display()
    )]
    CancelledPartway { path: PathBuf, written: u64 },
}

impl Error {
    /// Wraps an I/O or format error with the path of the file it concerns. A locked encrypted
    /// image becomes its own error, so front ends can ask for a passphrase.
    pub fn io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match crate::secret::Locked::of(&source) {
            Some(crate::secret::Locked::PassphraseNeeded) => Error::PassphraseNeeded { path },
            Some(crate::secret::Locked::WrongPassphrase) => Error::WrongPassphrase { path },
            None => Error::Io { path, source },
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
