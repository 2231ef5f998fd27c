//! FAT12/16/32 with long names (formats.md §i, Microsoft's FAT specification): the boot
//! sector's layout and the directory entry's constants, which the reader and the writer share.

mod change;
mod check;
mod read;
mod write;

pub use change::FatChange;
pub use check::check;
pub use read::Fat;
pub(crate) use write::{check_names, forbidden};
pub use write::{size_for, write, Options};

use crate::error::FormatError;
use crate::io::ReadAt;
use std::io;

/// The specification's limit on a folder: 65,536 entries of 32 bytes.
const MAX_DIR_BYTES: u64 = 65_536 * 32;
const ENTRY: usize = 32;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_VOLUME_LABEL: u8 = 0x08;
const ATTR_LONG_NAME: u8 = 0x0F;

fn bad(structure: &'static str, at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(structure, at, problem)
}

/// Where a FAT volume keeps its table and its clusters (the boot sector's BPB).
struct Layout {
    /// The first FAT's offset.
    fat: u64,
    /// Where cluster 2 starts.
    data: u64,
    cluster: u64,
    clusters: u64,
    bits: u32,
    root: Root,
    /// How many FATs there are, and the bytes each takes.
    fats: u64,
    fat_bytes: u64,
    /// Whether every FAT is kept the same (FAT32 may keep only one up to date).
    mirrored: bool,
    /// FAT32's FSInfo sector, where it keeps its free cluster count.
    fs_info: Option<u64>,
}

/// FAT12 and FAT16 keep the root folder in a fixed region; FAT32 in a cluster chain.
enum Root {
    Fixed { at: u64, size: u64 },
    Chain(u32),
}

impl Layout {
    fn read(source: &dyn ReadAt) -> io::Result<Layout> {
        let mut b = [0u8; 64];
        source.read_exact_at(0, &mut b)?;
        let u16_at = |i: usize| u64::from(u16::from_le_bytes([b[i], b[i + 1]]));
        let u32_at = |i: usize| u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
        let (sector, per_cluster) = (u16_at(11), u64::from(b[13]));
        let (reserved, fats, root_entries) = (u16_at(14), u64::from(b[16]), u16_at(17));
        let total = match u16_at(19) {
            0 => u32_at(32),
            n => n,
        };
        let fat_sectors = match u16_at(22) {
            0 => u32_at(36),
            n => n,
        };
        if !sector.is_power_of_two() || !(512..=4096).contains(&sector) || per_cluster == 0 {
            return Err(bad(
                "FAT boot sector",
                11,
                format!("{sector}-byte sectors, {per_cluster} a cluster"),
            ));
        }
        let root_sectors = (root_entries * 32).div_ceil(sector);
        let first_data = reserved + fats * fat_sectors + root_sectors;
        let clusters = total.saturating_sub(first_data) / per_cluster;
        let bits = match clusters {
            0..4085 => 12,
            4085..65525 => 16,
            _ => 32,
        };
        let root = match bits {
            32 => Root::Chain(u32_at(44) as u32),
            _ => Root::Fixed {
                at: (reserved + fats * fat_sectors) * sector,
                size: root_entries * 32,
            },
        };
        // FAT32's extended flags: bit 7 set means only the FAT bits 0-3 name is kept up to date.
        let mirrored = bits != 32 || u16_at(40) & 0x80 == 0;
        let fs_info =
            (bits == 32 && !matches!(u16_at(48), 0 | 0xFFFF)).then(|| u16_at(48) * sector);
        Ok(Layout {
            fats,
            fat_bytes: fat_sectors * sector,
            mirrored,
            fs_info,
            fat: reserved * sector,
            data: first_data * sector,
            cluster: per_cluster * sector,
            clusters,
            bits,
            root,
        })
    }

    /// Clusters `[start, end)` as bytes of the volume.
    fn span(&self, start: u64, end: u64) -> (u64, u64) {
        (
            self.data + (start - 2) * self.cluster,
            (end - start) * self.cluster,
        )
    }

    /// Where cluster `n`'s entry is in the FAT, and how many bytes to read for it.
    fn entry_at(&self, n: u64) -> (u64, usize) {
        match self.bits {
            12 => (n * 3 / 2, 2),
            16 => (n * 2, 2),
            _ => (n * 4, 4),
        }
    }

    /// Cluster `n`'s entry from the bytes at `entry_at(n)`.
    fn decode(&self, n: u64, bytes: &[u8]) -> u32 {
        match self.bits {
            12 => {
                let pair = u16::from_le_bytes([bytes[0], bytes[1]]);
                u32::from(if n.is_multiple_of(2) {
                    pair & 0xFFF
                } else {
                    pair >> 4
                })
            }
            16 => u32::from(u16::from_le_bytes([bytes[0], bytes[1]])),
            _ => u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) & 0x0FFF_FFFF,
        }
    }

    /// Whether `value` ends a chain (or marks a bad cluster, which ends it too).
    fn ends_chain(&self, value: u32) -> bool {
        value
            >= match self.bits {
                12 => 0xFF7,
                16 => 0xFFF7,
                _ => 0x0FFF_FFF7,
            }
    }
}
