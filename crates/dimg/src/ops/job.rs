//! What every long job shares: the [`Progress`] sink it reports to, the [`Cancel`] token it obeys,
//! and [`stream`], which reads a source front to back in blocks with both.

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

/// What [`stream_blocks`] hands a source's blocks to.
pub(crate) trait BlockSink {
    /// The block at `offset`.
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()>;
    /// `len` bytes at `offset` the source knows to be zeros, not read: whether the sink took
    /// them whole (a hole). One that needs the bytes (the default) is given them as blocks of
    /// zeros through `data`.
    fn zeros(&mut self, offset: u64, len: u64) -> Result<bool> {
        let _ = (offset, len);
        Ok(false)
    }
}

/// The most known zeros one message of [`stream_blocks`] covers: 1 GiB, so that a sink that
/// takes them as bytes still sees a cancel soon, and a terabyte is a thousand messages.
const ZEROS_AT_ONCE: u64 = 1 << 30;

/// A closure that takes every block's bytes.
struct Bytes<F>(F);

impl<F: FnMut(u64, &[u8]) -> Result<()>> BlockSink for Bytes<F> {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        (self.0)(offset, bytes)
    }
}

/// Reads `src` front to back in blocks, handing each to `sink` with its offset: [`stream_blocks`]
/// for a sink that wants every byte.
pub(crate) fn stream(
    path: &Path,
    phase: &str,
    src: &dyn ReadAt,
    progress: &dyn Progress,
    cancel: &Cancel,
    sink: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    stream_blocks(path, phase, src, progress, cancel, &mut Bytes(sink))
}

/// Reads `src` front to back in blocks, handing each to `sink` with its offset. A reader thread
/// stays ahead of the sink, so decompression overlaps hashing or writing; a block the source
/// knows to be zeros is not read at all (a terabyte of free space costs nothing). Reports
/// progress and stops at the next block after a cancel. Read errors are reported against
/// `path`. Blocks are page-aligned memory, which a sink writing with O_DIRECT can hand to the
/// kernel as it is.
pub(crate) fn stream_blocks(
    path: &Path,
    phase: &str,
    src: &dyn ReadAt,
    progress: &dyn Progress,
    cancel: &Cancel,
    sink: &mut dyn BlockSink,
) -> Result<()> {
    let size = src.size();
    progress.begin(phase, size);
    std::thread::scope(|scope| {
        // A block read, or (no buffer) a run of blocks known to be zeros.
        type Block = (u64, u64, Option<Aligned>);
        let (full_tx, full_rx) = mpsc::sync_channel::<std::io::Result<Block>>(READ_AHEAD);
        let (empty_tx, empty_rx) = mpsc::channel::<Aligned>();
        scope.spawn(move || {
            let mut offset = 0u64;
            while offset < size && !cancel.is_cancelled() {
                let n = (size - offset).min(STREAM_BLOCK as u64);
                let zeros = src.zeros_until(offset).min(size);
                let read = match zeros >= offset + n {
                    // Whole blocks of them, or to the end.
                    true => {
                        let run = match zeros == size {
                            true => size - offset,
                            false => (zeros - offset) / n * n,
                        };
                        Ok((offset, run.min(ZEROS_AT_ONCE), None))
                    }
                    false => {
                        let mut buf = empty_rx
                            .try_recv()
                            .unwrap_or_else(|_| Aligned::new(STREAM_BLOCK));
                        src.read_exact_at(offset, &mut buf.bytes()[..n as usize])
                            .map(|()| (offset, n, Some(buf)))
                    }
                };
                let len = read.as_ref().map_or(0, |&(_, len, _)| len);
                let failed = read.is_err();
                if full_tx.send(read).is_err() || failed {
                    return;
                }
                offset += len;
            }
        });
        // Made the first time a sink asks for zeros it was spared reading.
        let mut zeros: Option<Aligned> = None;
        let mut done = 0u64;
        while done < size {
            cancel.check()?;
            let Ok(block) = full_rx.recv() else {
                // The reader stopped without an error: it saw the cancel.
                return cancel.check();
            };
            let (offset, n, buf) = block.map_err(|e| Error::io(path, e))?;
            match buf {
                Some(mut buf) => {
                    sink.data(offset, &buf.bytes()[..n as usize])?;
                    let _ = empty_tx.send(buf);
                }
                None if sink.zeros(offset, n)? => {}
                None => {
                    // As if read: a block at a time, with its progress and a cancel between.
                    let zeros = zeros.get_or_insert_with(|| Aligned::new(STREAM_BLOCK));
                    let mut at = offset;
                    while at < offset + n {
                        cancel.check()?;
                        let piece = (offset + n - at).min(STREAM_BLOCK as u64) as usize;
                        sink.data(at, &zeros.bytes()[..piece])?;
                        at += piece as u64;
                        progress.advance(at);
                    }
                }
            }
            done = offset + n;
            progress.advance(done);
        }
        Ok(())
    })
}
