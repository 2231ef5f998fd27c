//! File systems: a partition mounted read-only as a [`Volume`]. Readers land one module per file
//! system; until then [`identify`] names what a partition holds.

use crate::io::ReadAt;
use crate::magic::{self, Layer, Signature, Sniff};
use std::io;

/// One directory entry.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
}

/// A mounted, read-only file system. Paths are '/'-separated from the volume root.
pub trait Volume: Send + Sync {
    fn label(&self) -> String;
    fn read_dir(&self, path: &str) -> io::Result<Vec<DirEntry>>;
    fn read_file(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// The file system at the start of `part`, if its magic number is known.
pub fn identify(part: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let sniff = Sniff::read(part)?;
    Ok(magic::identify(&sniff)
        .into_iter()
        .find(|s| s.layer() == Layer::FileSystem))
}
