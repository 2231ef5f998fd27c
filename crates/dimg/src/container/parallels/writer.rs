//! Writing a Parallels image (`.hds`, the expanding disk inside a Parallels Desktop `.hdd`
//! bundle): the 64-byte header (`WithouFreSpacExt`), the table of clusters after it, then each
//! 1 MiB cluster that holds data in disk order from the first cluster boundary on.

use super::MAGIC_CLUSTERS;
use crate::container::blocks::{whole_sectors, BlockLayout};

/// Parallels Desktop's and qemu's cluster: 1 MiB.
const CLUSTER: u64 = 1 << 20;
const TABLE_AT: u64 = 64;

pub struct Layout {
    size: u64,
}

impl Layout {
    pub fn new(size: u64) -> Result<Layout, String> {
        whole_sectors("a Parallels image", size)?;
        // Table entries and the data offset (in sectors) are 32-bit.
        let layout = Layout { size };
        match u32::try_from(layout.data_at() / 512 + layout.clusters()) {
            Ok(_) => Ok(layout),
            Err(_) => Err(format!(
                "a disk of {size} bytes: too large for a Parallels image"
            )),
        }
    }

    fn clusters(&self) -> u64 {
        self.size.div_ceil(CLUSTER)
    }

    fn header(&self) -> Vec<u8> {
        let sectors = self.size / 512;
        let mut h = vec![0u8; TABLE_AT as usize];
        let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, MAGIC_CLUSTERS);
        put(16, &2u32.to_le_bytes());
        // A geometry of 16 heads and 32 sectors a track, as qemu gives one.
        put(20, &16u32.to_le_bytes());
        put(24, &((sectors / (16 * 32)) as u32).to_le_bytes());
        put(28, &((CLUSTER / 512) as u32).to_le_bytes());
        put(32, &(self.clusters() as u32).to_le_bytes());
        put(36, &sectors.to_le_bytes());
        // In use: no (closed cleanly).
        put(48, &((self.data_at() / 512) as u32).to_le_bytes());
        h
    }
}

impl BlockLayout for Layout {
    fn block_size(&self) -> u64 {
        CLUSTER
    }

    fn data_at(&self) -> u64 {
        (TABLE_AT + 4 * self.clusters()).next_multiple_of(CLUSTER)
    }

    fn metadata(&self, stored: &[u64]) -> Vec<(u64, Vec<u8>)> {
        let mut table = vec![0u8; 4 * self.clusters() as usize];
        for (k, &number) in (0..).zip(stored) {
            let cluster = (self.stored_at(k) / CLUSTER) as u32;
            table[4 * number as usize..][..4].copy_from_slice(&cluster.to_le_bytes());
        }
        vec![(0, self.header()), (TABLE_AT, table)]
    }
}
