//! APFS blocks (Apple File System Reference, "Objects"): every block starts with a Fletcher-64
//! checksum and its object's id, transaction and type; a container's blocks are read one
//! checked object at a time.

use super::xts::XtsKey;
use crate::bytes::{le32, le64};
use crate::error::FormatError;
use crate::io::ReadAt;
use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

pub(super) const NX_SUPERBLOCK: u32 = 0x01;
pub(super) const BTREE: u32 = 0x02;
pub(super) const BTREE_NODE: u32 = 0x03;
pub(super) const SPACEMAN: u32 = 0x05;
pub(super) const OMAP: u32 = 0x0B;
pub(super) const CHECKPOINT_MAP: u32 = 0x0C;
pub(super) const FS: u32 = 0x0D;

pub(super) fn bad(structure: &'static str, at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(structure, at, problem)
}

/// Fletcher-64 over a block's 32-bit words after the checksum field, as APFS stores it.
pub fn fletcher64(block: &[u8]) -> u64 {
    const MOD: u64 = 0xFFFF_FFFF;
    let (mut low, mut high) = (0u64, 0u64);
    for word in block[8..].chunks_exact(4) {
        low = (low + u64::from(le32(word, 0))) % MOD;
        high = (high + low) % MOD;
    }
    let c1 = MOD - (low + high) % MOD;
    let c2 = MOD - (low + c1) % MOD;
    (c2 << 32) | c1
}

/// Objects kept parsed: every B-tree walk starts at a root and most pass the same few index
/// nodes. 2,048 nodes of 4 KiB are 8 MiB.
const CACHED_OBJECTS: usize = 2048;

/// The blocks of a container: its image, which may hold fewer blocks than the superblock
/// declares (a carved or cut copy), read one checked object at a time.
pub(super) struct Blocks {
    disk: Arc<dyn ReadAt>,
    pub size: u64,
    /// Blocks the container declares.
    pub count: u64,
    /// Objects as their readers parsed them, by block.
    parsed: Mutex<HashMap<u64, Arc<dyn Any + Send + Sync>>>,
}

impl Blocks {
    pub fn new(disk: Arc<dyn ReadAt>, size: u64, count: u64) -> Blocks {
        Blocks {
            disk,
            size,
            count,
            parsed: Mutex::new(HashMap::new()),
        }
    }

    pub fn disk(&self) -> &Arc<dyn ReadAt> {
        &self.disk
    }

    /// Where block `paddr`'s bytes are, checked against the container and the image.
    pub fn span(&self, paddr: u64, blocks: u64, what: &'static str) -> io::Result<u64> {
        let end = paddr.checked_add(blocks);
        if end.is_none_or(|end| end > self.count) {
            return Err(bad(
                what,
                paddr.saturating_mul(self.size),
                format!(
                    "blocks {paddr}+{blocks} lie past the end of the container ({} blocks)",
                    self.count
                ),
            ));
        }
        let at = paddr * self.size;
        if at + blocks * self.size > self.disk.size() {
            return Err(bad(
                what,
                at,
                format!(
                    "block {paddr} is not in the image: it holds {} of the container's {} \
                     blocks (a cut or carved copy)",
                    self.disk.size() / self.size,
                    self.count
                ),
            ));
        }
        Ok(at)
    }

    /// Block `paddr` as it is: a bitmap, which has no object header.
    pub fn raw(&self, paddr: u64, what: &'static str) -> io::Result<Vec<u8>> {
        let at = self.span(paddr, 1, what)?;
        let mut block = vec![0u8; self.size as usize];
        self.disk.read_exact_at(at, &mut block)?;
        Ok(block)
    }

    /// Block `paddr` as an object, its checksum verified, with its object type.
    pub fn checked(&self, paddr: u64, what: &'static str) -> io::Result<(Vec<u8>, u32)> {
        self.checked_with(paddr, what, None)
    }

    /// [`Blocks::checked`], decrypted first with `key` where the object is encrypted (an
    /// encrypted volume's file-system tree nodes): its tweak is its block's first 512-byte unit.
    pub fn checked_with(
        &self,
        paddr: u64,
        what: &'static str,
        key: Option<&XtsKey>,
    ) -> io::Result<(Vec<u8>, u32)> {
        let mut block = self.raw(paddr, what)?;
        if let Some(key) = key {
            key.decrypt(&mut block, paddr * (self.size / 512));
        }
        if le64(&block, 0) != fletcher64(&block) {
            return Err(bad(
                what,
                paddr * self.size,
                format!("block {paddr} fails its Fletcher-64 checksum"),
            ));
        }
        let kind = le32(&block, 24) & 0xFFFF;
        Ok((block, kind))
    }

    /// Block `paddr` as an object of type `kind`, its checksum verified.
    pub fn object(&self, paddr: u64, kind: u32, what: &'static str) -> io::Result<Vec<u8>> {
        match self.checked(paddr, what)? {
            (block, found) if found == kind => Ok(block),
            (_, found) => Err(bad(
                what,
                paddr * self.size,
                format!("block {paddr} holds object type {found:#x}, not {kind:#x}"),
            )),
        }
    }

    /// Block `paddr` as `parse` makes it, parsed once while it stays in the cache.
    pub fn parsed<T: Any + Send + Sync>(
        &self,
        paddr: u64,
        parse: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<Arc<T>> {
        let lock = || self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Ok(hit)) = lock().get(&paddr).cloned().map(Arc::downcast::<T>) {
            return Ok(hit);
        }
        let fresh = Arc::new(parse()?);
        let mut parsed = lock();
        if parsed.len() >= CACHED_OBJECTS {
            parsed.clear();
        }
        parsed.insert(paddr, fresh.clone());
        Ok(fresh)
    }
}
