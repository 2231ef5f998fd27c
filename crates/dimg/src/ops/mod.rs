//! Whole jobs built from the layers. Long jobs report to a [`Progress`] sink and poll a [`Cancel`]
//! token; front ends decide how to show progress and when to cancel.

mod browse;
mod burn;
mod compact;
mod convert;
mod create;
mod disc;
mod encryption;
mod image_device;
mod info;
mod output;
mod resize;
mod restore;
mod sparse;
mod verify;

pub use crate::build::layout::Layout;
pub use crate::container::Check;
pub use browse::{
    extract, extract_boot, list, list_tree, snapshot_named, snapshots, volumes, ExtractReport,
    FoundVolume, ImageVolumes, Listing, VolumeId,
};
pub use burn::{burn, BurnOptions, BurnReport, Burner};
pub use compact::{compact, CompactReport};
pub use convert::{convert, ConvertOptions, ConvertReport, Encryption, OutputFormat};
pub use create::{create, CreateOptions, CreateReport, FileSystem};
pub use encryption::{chpass, identity, is_encrypted};
pub use image_device::{image_device, image_partition};
pub use info::{info, ImageInfo, PartitionInfo, VolumeInfo};
pub use resize::{limits, resize, Limits, ResizeReport};
pub use restore::{restore, RestoreReport};
pub use verify::{verify, VerifyReport};

use crate::error::{Error, Result};
use crate::io::{Aligned, ReadAt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

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

/// 4 MiB: four hdiutil chunks, so a block's chunks decompress on all cores at once.
const STREAM_BLOCK: usize = 4 << 20;
/// Blocks read ahead of the consumer. Memory is (this + 2) blocks, however large the source.
const READ_AHEAD: usize = 2;

/// Reads `src` front to back in blocks, handing each to `sink` with its offset. A reader thread
/// stays ahead of the sink, so decompression overlaps hashing or writing. Reports progress and
/// stops at the next block after a cancel. Read errors are reported against `path`. Blocks are
/// page-aligned memory, which a sink writing with O_DIRECT can hand to the kernel as it is.
pub(crate) fn stream(
    path: &Path,
    phase: &str,
    src: &dyn ReadAt,
    progress: &dyn Progress,
    cancel: &Cancel,
    mut sink: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let size = src.size();
    progress.begin(phase, size);
    std::thread::scope(|scope| {
        type Block = (u64, usize, Aligned);
        let (full_tx, full_rx) = mpsc::sync_channel::<std::io::Result<Block>>(READ_AHEAD);
        let (empty_tx, empty_rx) = mpsc::channel::<Aligned>();
        scope.spawn(move || {
            let mut offset = 0u64;
            while offset < size && !cancel.is_cancelled() {
                let n = (size - offset).min(STREAM_BLOCK as u64) as usize;
                let mut buf = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| Aligned::new(STREAM_BLOCK));
                let read = src
                    .read_exact_at(offset, &mut buf.bytes()[..n])
                    .map(|()| (offset, n, buf));
                let failed = read.is_err();
                if full_tx.send(read).is_err() || failed {
                    return;
                }
                offset += n as u64;
            }
        });
        let mut done = 0u64;
        while done < size {
            cancel.check()?;
            let Ok(block) = full_rx.recv() else {
                // The reader stopped without an error: it saw the cancel.
                return cancel.check();
            };
            let (offset, n, mut buf) = block.map_err(|e| Error::io(path, e))?;
            sink(offset, &buf.bytes()[..n])?;
            done = offset + n as u64;
            progress.advance(done);
            let _ = empty_tx.send(buf);
        }
        Ok(())
    })
}

/// A 16-byte identifier in the usual 8-4-4-4-12 form.
pub fn uuid_text(id: &[u8; 16]) -> String {
    let h = hex(id);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// SHA-256 of the first `len` bytes of the file or device at `path` (all of it without `len`),
/// streamed with progress and cancel: how restore and burn read back what they wrote. Read past
/// the page cache where the device allows ([`crate::device::reader`]): what the device holds,
/// not the cache's copy of what was written.
pub(crate) fn sha256_head(
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

/// Lower-case hexadecimal, for digests.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
