//! Writing a dynamic VHD: the footer's copy, the dynamic disk header and the block allocation
//! table first (their size known from the disk's), then each block that holds data — its sector
//! bitmap, every bit set, then its 2 MiB — in disk order, then the footer.

use super::{ABSENT, COOKIE, DYNAMIC};
use crate::bytes::{uuid, Seed};
use crate::container::blocks::{whole_sectors, BlockLayout};

/// The block Hyper-V, Virtual PC and qemu write: 2 MiB.
const BLOCK: u64 = 2 << 20;
/// A block's sector bitmap: a bit for each of its 4,096 sectors.
const BITMAP: u64 = 512;
const HEADER_AT: u64 = 512;
const TABLE_AT: u64 = HEADER_AT + 1024;
/// The largest disk a VHD describes: its sector counts are 32-bit, and the format's own limit
/// is 2,040 GiB.
const MAX_SIZE: u64 = 2040 << 30;
/// Seconds from the Unix epoch to the VHD's, 1 January 2000 (UTC).
const EPOCH_2000: u64 = 946_684_800;

pub struct Layout {
    size: u64,
    unique_id: [u8; 16],
    timestamp: u32,
}

impl Layout {
    /// A disk of `size` bytes; its identifier from `seed`, and its time 2000's start, when the
    /// image is to be reproducible.
    pub fn new(size: u64, seed: Option<&Seed>) -> Result<Layout, String> {
        whole_sectors("a VHD", size)?;
        if size > MAX_SIZE {
            return Err(format!(
                "a disk of {size} bytes: a VHD holds at most {MAX_SIZE} bytes (give VHDX)"
            ));
        }
        let timestamp = match seed {
            Some(_) => 0,
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs().saturating_sub(EPOCH_2000) as u32),
        };
        Ok(Layout {
            size,
            unique_id: uuid(seed, "VHD"),
            timestamp,
        })
    }

    fn entries(&self) -> u64 {
        self.size.div_ceil(BLOCK)
    }

    fn footer(&self) -> [u8; 512] {
        let mut f = [0u8; 512];
        let mut put = |at: usize, bytes: &[u8]| f[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, COOKIE);
        put(8, &2u32.to_be_bytes());
        put(12, &0x0001_0000u32.to_be_bytes());
        put(16, &HEADER_AT.to_be_bytes());
        put(24, &self.timestamp.to_be_bytes());
        // Not one of the creators whose readers size the disk by its geometry ("vpc ",
        // "qemu"): the size below is the disk's.
        put(28, b"dimg");
        put(32, &0x0001_0000u32.to_be_bytes());
        put(36, b"Wi2k");
        put(40, &self.size.to_be_bytes());
        put(48, &self.size.to_be_bytes());
        let (cylinders, heads, sectors) = geometry(self.size / 512);
        put(56, &cylinders.to_be_bytes());
        put(58, &[heads, sectors]);
        put(60, &DYNAMIC.to_be_bytes());
        put(68, &self.unique_id);
        let sum = !f.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
        f[64..68].copy_from_slice(&sum.to_be_bytes());
        f
    }

    fn header(&self) -> [u8; 1024] {
        let mut h = [0u8; 1024];
        h[0..8].copy_from_slice(b"cxsparse");
        h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        h[16..24].copy_from_slice(&TABLE_AT.to_be_bytes());
        h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        h[28..32].copy_from_slice(&(self.entries() as u32).to_be_bytes());
        h[32..36].copy_from_slice(&(BLOCK as u32).to_be_bytes());
        let sum = !h.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
        h[36..40].copy_from_slice(&sum.to_be_bytes());
        h
    }
}

/// The cylinders, heads and sectors per track the VHD specification's algorithm gives a disk of
/// `sectors` sectors (at most 65,535 × 16 × 255: larger disks are described by their size alone).
fn geometry(sectors: u64) -> (u16, u8, u8) {
    let total = sectors.min(65_535 * 16 * 255);
    let (per_track, heads, cylinder_heads) = if total >= 65_535 * 16 * 63 {
        (255, 16, total / 255)
    } else {
        let mut per_track = 17;
        let mut cylinder_heads = total / per_track;
        let mut heads = cylinder_heads.div_ceil(1024).max(4);
        if cylinder_heads >= heads * 1024 || heads > 16 {
            (per_track, heads) = (31, 16);
            cylinder_heads = total / per_track;
        }
        if cylinder_heads >= heads * 1024 {
            (per_track, heads) = (63, 16);
            cylinder_heads = total / per_track;
        }
        (per_track, heads, cylinder_heads)
    };
    (
        (cylinder_heads / heads) as u16,
        heads as u8,
        per_track as u8,
    )
}

impl BlockLayout for Layout {
    fn block_size(&self) -> u64 {
        BLOCK
    }

    fn data_at(&self) -> u64 {
        TABLE_AT + (4 * self.entries()).next_multiple_of(512)
    }

    fn gap(&self) -> u64 {
        BITMAP
    }

    fn metadata(&self, stored: &[u64]) -> Vec<(u64, Vec<u8>)> {
        let mut table = vec![0u8; (self.data_at() - TABLE_AT) as usize];
        for entry in table.chunks_mut(4) {
            entry.copy_from_slice(&ABSENT.to_be_bytes());
        }
        let mut pieces = Vec::with_capacity(stored.len() + 4);
        for (k, &number) in (0..).zip(stored) {
            let bitmap_at = self.stored_at(k) - BITMAP;
            let slot = 4 * number as usize;
            table[slot..slot + 4].copy_from_slice(&((bitmap_at / 512) as u32).to_be_bytes());
            pieces.push((bitmap_at, vec![0xFF; BITMAP as usize]));
        }
        let footer = self.footer();
        pieces.push((self.data_end(stored.len() as u64), footer.to_vec()));
        pieces.push((0, footer.to_vec()));
        pieces.push((HEADER_AT, self.header().to_vec()));
        pieces.push((TABLE_AT, table));
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_follows_the_specification() {
        // 1 GiB: 17 sectors a track do not reach, 31 do not, 63 do (2080 × 16 × 63 sectors).
        assert_eq!(geometry((1 << 30) / 512), (2080, 16, 63));
        // 20 MiB: 17 sectors a track and 4 heads suffice.
        assert_eq!(geometry(40_960), (602, 4, 17));
        // Past 127 GiB every disk has the largest geometry.
        assert_eq!(geometry(1 << 40), (65_535, 16, 255));
    }
}
