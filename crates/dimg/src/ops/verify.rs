use super::{hex, stream, Cancel, Progress};
use crate::container;
use crate::error::Result;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What `verify` found: the virtual disk read end to end, with its digests.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub path: PathBuf,
    pub format: &'static str,
    /// Bytes of the virtual disk that were read and hashed.
    pub bytes: u64,
    /// CRC-32 (IEEE, as zlib and UDIF use) of the virtual disk, 8 hex digits.
    pub crc32: String,
    /// SHA-256 of the virtual disk, 64 hex digits.
    pub sha256: String,
}

/// Reads the whole virtual disk of `path`, computing its CRC-32 and SHA-256 in one streamed pass.
pub fn verify(path: &Path, progress: &dyn Progress, cancel: &Cancel) -> Result<VerifyReport> {
    let opened = container::open(path)?;
    let disk = opened.container.disk();
    let mut crc = crc32fast::Hasher::new();
    let mut sha = Sha256::new();
    stream(path, "Verifying", &*disk, progress, cancel, |block| {
        crc.update(block);
        sha.update(block);
    })?;
    Ok(VerifyReport {
        path: path.to_path_buf(),
        format: opened.driver.name,
        bytes: disk.size(),
        crc32: format!("{:08x}", crc.finalize()),
        sha256: hex(&sha.finalize()),
    })
}
