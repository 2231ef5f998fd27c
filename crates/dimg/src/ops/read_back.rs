//! Reading back what restore and burn wrote, past the page cache.

use super::job::{stream, Cancel, Progress};
use crate::bytes::hex;
use crate::error::{Error, Result};
use std::path::Path;

/// SHA-256 of the first `len` bytes of the file or device at `path` (all of it without `len`),
/// streamed with progress and cancel: how restore and burn read back what they wrote. Read past
/// the page cache where the device allows ([`crate::device::reader`]): what the device holds,
/// not the cache's copy of what was written.
pub(super) fn sha256_head(
    path: &Path,
    len: Option<u64>,
    phase: &str,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<String> {
    use sha2::Digest;
    let file = crate::device::reader(path)?;
    let whole = file.size();
    let len = len.unwrap_or(whole);
    if whole < len {
        return Err(Error::Refused {
            path: path.to_path_buf(),
            reason: format!("it holds {whole} bytes, less than the {len} written to it"),
        });
    }
    let mut sha = sha2::Sha256::new();
    let head = crate::io::Slice::new(file, 0, len);
    stream(path, phase, &head, progress, cancel, |_, block| {
        sha.update(block);
        Ok(())
    })?;
    Ok(hex(&sha.finalize()))
}
