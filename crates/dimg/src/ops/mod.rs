//! Whole jobs built from the layers. Long jobs report to a [`Progress`] sink and poll a [`Cancel`]
//! token; front ends decide how to show progress and when to cancel.

mod info;
mod verify;

pub use info::{info, ImageInfo, PartitionInfo};
pub use verify::{verify, VerifyReport};

use crate::error::{Error, Result};
use crate::io::ReadAt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where a long job reports how far it has come. Implementations must be cheap: `advance` is
/// called once per block; front ends throttle what they show.
pub trait Progress: Send + Sync {
    /// A phase begins; `total` is its length in bytes.
    fn begin(&self, phase: &str, total: u64);
    /// `done` bytes of the current phase are finished.
    fn advance(&self, done: u64);
}

/// For callers that do not watch.
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// A cancel token shared between a job and whoever may stop it (Ctrl-C, a Cancel button).
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    /// `Err(Cancelled)` once cancelled: jobs call it between blocks.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

const STREAM_BLOCK: usize = 1 << 20;

/// Reads `src` front to back in 1 MiB blocks, handing each to `sink`; reports progress and stops
/// at the first block boundary after a cancel. Memory is one block, however large the source.
pub(crate) fn stream(
    path: &Path,
    phase: &str,
    src: &dyn ReadAt,
    progress: &dyn Progress,
    cancel: &Cancel,
    mut sink: impl FnMut(&[u8]),
) -> Result<()> {
    let size = src.size();
    progress.begin(phase, size);
    let mut buf = vec![0u8; STREAM_BLOCK];
    let mut offset = 0u64;
    while offset < size {
        cancel.check()?;
        let n = (size - offset).min(STREAM_BLOCK as u64) as usize;
        src.read_exact_at(offset, &mut buf[..n])
            .map_err(|e| Error::io(path, e))?;
        sink(&buf[..n]);
        offset += n as u64;
        progress.advance(offset);
    }
    Ok(())
}

/// Lower-case hexadecimal, for digests.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
