//! `hdiutil checksum`: a digest of an image's data — its virtual disk as it decodes, or for the
//! UDIF types, the data fork the image's own checksums cover.

use super::job::{stream, Cancel, Progress};
use crate::bytes::{hasher, hex};
use crate::error::{Error, Result};
use crate::io::{ReadAt, Slice};
use crate::secret::Passphrase;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The checksum types `hdiutil checksum -type` takes.
pub const TYPES: &[&str] = &[
    "UDIF-CRC32",
    "UDIF-MD5",
    "CRC32",
    "MD5",
    "SHA1",
    "SHA256",
    "SHA384",
    "SHA512",
];

#[derive(Debug, Serialize)]
pub struct ChecksumReport {
    pub path: PathBuf,
    /// The type, as given to `-type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Lower-case hexadecimal.
    pub checksum: String,
    /// Bytes summed.
    pub bytes: u64,
}

/// The checksum `kind` (one of [`TYPES`], any case) of the image at `path`.
pub fn checksum(
    path: &Path,
    passphrase: Option<&Passphrase>,
    kind: &str,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ChecksumReport> {
    let upper = kind.to_ascii_uppercase();
    let refuse = |reason: String| Error::Refused {
        path: path.into(),
        reason,
    };
    if !TYPES.contains(&upper.as_str()) {
        return Err(refuse(format!(
            "has no checksum of type {kind}; the types are {}",
            TYPES.join(", ")
        )));
    }
    let opened = super::browse::open_image(path, passphrase)?;
    let (source, algorithm): (Arc<dyn ReadAt>, &str) = match upper.strip_prefix("UDIF-") {
        Some(algorithm) => {
            let sums = opened.container.checksums();
            match (sums.file, sums.data_fork) {
                (Some(file), Some(fork)) => (
                    Arc::new(Slice::new(file, fork.start, fork.end - fork.start)),
                    algorithm,
                ),
                _ => {
                    return Err(refuse(format!(
                        "is a {}, not a UDIF image: it has no data fork for {upper}",
                        opened.format
                    )))
                }
            }
        }
        None => (opened.container.disk(), upper.as_str()),
    };
    let checksum = match algorithm {
        "CRC32" => {
            let mut crc = crc32fast::Hasher::new();
            stream(path, "Checksumming", &*source, progress, cancel, |_, b| {
                crc.update(b);
                Ok(())
            })?;
            format!("{:08x}", crc.finalize())
        }
        name => {
            let mut digest = hasher(name).expect("every type but CRC32 is a digest");
            stream(path, "Checksumming", &*source, progress, cancel, |_, b| {
                digest.update(b);
                Ok(())
            })?;
            hex(&digest.finalize())
        }
    };
    Ok(ChecksumReport {
        path: path.into(),
        kind: upper,
        checksum,
        bytes: source.size(),
    })
}
