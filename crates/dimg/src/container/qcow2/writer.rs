//! Writing qcow2 (version 3): the header in the first cluster, then the clusters that hold data
//! in disk order as they come, then the metadata that places them — L2 tables, the L1 table, and
//! the refcounts (16-bit) of every cluster the file uses, each 1.

use super::{COPIED, MAGIC};
use crate::container::blocks::BlockLayout;

/// qemu-img's default cluster: 64 KiB.
pub const CLUSTER: u64 = 1 << 16;
const BITS: u32 = 16;
/// Entries of an L2 table, or of a refcount block of 16-bit refcounts.
const L2_ENTRIES: u64 = CLUSTER / 8;
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER / 2;
const HEADER_LENGTH: u32 = 104;

/// A qcow2 file as its writer fills it: data clusters appended after the header.
pub struct Layout {
    size: u64,
}

impl Layout {
    pub fn new(size: u64) -> Layout {
        Layout { size }
    }
}

impl BlockLayout for Layout {
    fn block_size(&self) -> u64 {
        CLUSTER
    }

    /// Cluster 1 on: the header is cluster 0.
    fn data_at(&self) -> u64 {
        CLUSTER
    }

    /// The L2 tables, the L1 table, the refcount blocks and table after the data, and the
    /// header at 0. Pieces are whole clusters.
    fn metadata(&self, stored: &[u64]) -> Vec<(u64, Vec<u8>)> {
        let clusters = self.size.div_ceil(CLUSTER);
        let l1_entries = clusters.div_ceil(L2_ENTRIES);
        let mut next = 1 + stored.len() as u64;
        let mut pieces = Vec::new();
        // The L2 tables, one for each run of L2_ENTRIES disk clusters that holds data.
        let mut l1 = vec![0u8; (l1_entries * 8).next_multiple_of(CLUSTER).max(CLUSTER) as usize];
        let mut i = 0;
        while i < stored.len() {
            let table_number = stored[i] / L2_ENTRIES;
            let mut table = vec![0u8; CLUSTER as usize];
            while i < stored.len() && stored[i] / L2_ENTRIES == table_number {
                let entry = self.stored_at(i as u64) | COPIED;
                let slot = (stored[i] % L2_ENTRIES) as usize * 8;
                table[slot..slot + 8].copy_from_slice(&entry.to_be_bytes());
                i += 1;
            }
            let at = next * CLUSTER;
            let slot = table_number as usize * 8;
            l1[slot..slot + 8].copy_from_slice(&(at | COPIED).to_be_bytes());
            pieces.push((at, table));
            next += 1;
        }
        let l1_at = next * CLUSTER;
        next += l1.len() as u64 / CLUSTER;
        // Refcount blocks and the table that lists them count themselves: grown until they
        // cover every cluster the file has.
        let (mut blocks, mut table_clusters) = (1u64, 1u64);
        loop {
            let total = next + blocks + table_clusters;
            let need_blocks = total.div_ceil(REFCOUNTS_PER_BLOCK);
            let need_table = (need_blocks * 8).div_ceil(CLUSTER);
            if need_blocks == blocks && need_table == table_clusters {
                break;
            }
            (blocks, table_clusters) = (need_blocks, need_table);
        }
        let (table_at, blocks_at) = (next * CLUSTER, (next + table_clusters) * CLUSTER);
        let total = next + table_clusters + blocks;
        let mut table = vec![0u8; (table_clusters * CLUSTER) as usize];
        for b in 0..blocks {
            let block_at = blocks_at + b * CLUSTER;
            table[b as usize * 8..b as usize * 8 + 8].copy_from_slice(&block_at.to_be_bytes());
            let mut block = vec![0u8; CLUSTER as usize];
            let first = b * REFCOUNTS_PER_BLOCK;
            for c in first..total.min(first + REFCOUNTS_PER_BLOCK) {
                let slot = (c - first) as usize * 2;
                block[slot..slot + 2].copy_from_slice(&1u16.to_be_bytes());
            }
            pieces.push((block_at, block));
        }
        pieces.push((l1_at, l1));
        pieces.push((table_at, table));
        let mut header = vec![0u8; CLUSTER as usize];
        let mut put = |at: usize, bytes: &[u8]| header[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, MAGIC);
        put(4, &3u32.to_be_bytes());
        put(20, &BITS.to_be_bytes());
        put(24, &self.size.to_be_bytes());
        put(36, &(l1_entries as u32).to_be_bytes());
        put(40, &l1_at.to_be_bytes());
        put(48, &table_at.to_be_bytes());
        put(56, &(table_clusters as u32).to_be_bytes());
        // Refcount order 4: 16-bit refcounts. The header extensions end at once.
        put(96, &4u32.to_be_bytes());
        put(100, &HEADER_LENGTH.to_be_bytes());
        pieces.push((0, header));
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    /// More data clusters than one refcount block counts (32,768), over a 5 GiB disk with a
    /// cluster past its last whole one: written as a sparse file (the data clusters left as
    /// holes), qemu-img finds every refcount and table right.
    #[test]
    fn refcounts_span_several_blocks_and_qemu_img_checks_them() {
        let size = 5 << 30;
        let layout = Layout::new(size + 512);
        let stored: Vec<u64> = (0..40_000).map(|k| k * 2).chain([size / CLUSTER]).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.qcow2");
        let file = std::fs::File::create(&path).unwrap();
        for (at, piece) in layout.metadata(&stored) {
            file.write_all_at(&piece, at).unwrap();
        }
        let o = std::process::Command::new("qemu-img")
            .args(["check", "--output=json"])
            .arg(&path)
            .output()
            .expect("qemu-img runs");
        let report = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{report}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(report.contains("\"allocated-clusters\": 40001"), "{report}");
        // dimg places each cluster where the writer put it.
        let source: std::sync::Arc<dyn crate::io::ReadAt> =
            std::sync::Arc::new(crate::io::FileSource::open(&path).unwrap());
        let opened = crate::container::open_source(source, None, None).unwrap();
        assert_eq!(opened.container.disk().size(), size + 512);
        let disk = opened.container.disk();
        assert_eq!(disk.zeros_until(CLUSTER), 2 * CLUSTER);
    }
}
