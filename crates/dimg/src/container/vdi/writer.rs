//! Writing a dynamic VDI (header version 1.1): the header, the block map after it, then each
//! 1 MiB block that holds data in disk order from the first MiB boundary on. Blocks not stored
//! are free (read as zeros).

use super::{FREE, SIGNATURE};
use crate::bytes::{uuid, Seed};
use crate::container::blocks::{whole_sectors, BlockLayout};

/// VirtualBox's block, and the only one qemu reads: 1 MiB.
const BLOCK: u64 = 1 << 20;
const MAP_AT: u64 = 512;
/// VirtualBox's "normal" (dynamic) image.
const NORMAL: u32 = 1;
/// The header after the text and signature: version 1.1's 400 bytes.
const HEADER_SIZE: u32 = 400;

pub struct Layout {
    size: u64,
    ids: [[u8; 16]; 2],
}

impl Layout {
    /// A disk of `size` bytes; its identifiers from `seed` when reproducible.
    pub fn new(size: u64, seed: Option<&Seed>) -> Result<Layout, String> {
        whole_sectors("a VDI", size)?;
        let layout = Layout {
            size,
            ids: [uuid(seed, "VDI image"), uuid(seed, "VDI modification")],
        };
        // The data area's offset is 32-bit.
        match u32::try_from(layout.data_at()) {
            Ok(_) => Ok(layout),
            Err(_) => Err(format!("a disk of {size} bytes: too large for a VDI")),
        }
    }

    fn blocks(&self) -> u64 {
        self.size.div_ceil(BLOCK)
    }

    fn header(&self, allocated: usize) -> Vec<u8> {
        let mut h = vec![0u8; MAP_AT as usize];
        let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, b"<<< dimg Virtual Disk Image >>>\n");
        put(64, &SIGNATURE.to_le_bytes());
        put(68, &0x0001_0001u32.to_le_bytes());
        put(72, &HEADER_SIZE.to_le_bytes());
        put(76, &NORMAL.to_le_bytes());
        put(340, &(MAP_AT as u32).to_le_bytes());
        put(344, &(self.data_at() as u32).to_le_bytes());
        // The legacy geometry unset (VirtualBox works it out), but for its sector size.
        put(360, &512u32.to_le_bytes());
        put(368, &self.size.to_le_bytes());
        put(376, &(BLOCK as u32).to_le_bytes());
        put(384, &(self.blocks() as u32).to_le_bytes());
        put(388, &(allocated as u32).to_le_bytes());
        put(392, &self.ids[0]);
        put(408, &self.ids[1]);
        put(468, &512u32.to_le_bytes());
        h
    }
}

impl BlockLayout for Layout {
    fn block_size(&self) -> u64 {
        BLOCK
    }

    /// The data area starts at the first MiB boundary after the map, as VirtualBox aligns it.
    fn data_at(&self) -> u64 {
        (MAP_AT + 4 * self.blocks()).next_multiple_of(BLOCK)
    }

    fn metadata(&self, stored: &[u64]) -> Vec<(u64, Vec<u8>)> {
        let mut map = vec![0u8; 4 * self.blocks() as usize];
        for entry in map.chunks_mut(4) {
            entry.copy_from_slice(&FREE.to_le_bytes());
        }
        for (k, &number) in stored.iter().enumerate() {
            let slot = 4 * number as usize;
            map[slot..slot + 4].copy_from_slice(&(k as u32).to_le_bytes());
        }
        vec![(0, self.header(stored.len())), (MAP_AT, map)]
    }
}
