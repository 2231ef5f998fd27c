//! ext2, ext3 and ext4 (the Linux kernel's "ext4 Data Structures and Algorithms"): the
//! superblock and the features a reader must understand, which the reader (and a writer, later)
//! share.

mod read;

pub use read::Ext;

use crate::bytes::{crc32c, le16, le32};
use crate::error::FormatError;
use crate::io::ReadAt;
use std::io;

const SUPERBLOCK: u64 = 1024;
const MAGIC: u16 = 0xEF53;
const ROOT_INODE: u32 = 2;

// Incompatible features: a reader that does not know one must not read the volume.
const INCOMPAT_COMPRESSION: u32 = 0x1;
const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_MMP: u32 = 0x100;
const INCOMPAT_FLEX_BG: u32 = 0x200;
const INCOMPAT_EA_INODE: u32 = 0x400;
const INCOMPAT_DIRDATA: u32 = 0x1000;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const INCOMPAT_LARGEDIR: u32 = 0x4000;
const INCOMPAT_INLINE_DATA: u32 = 0x8000;
const INCOMPAT_ENCRYPT: u32 = 0x10000;
const INCOMPAT_CASEFOLD: u32 = 0x20000;
/// What this reader reads.
const INCOMPAT_KNOWN: u32 = INCOMPAT_FILETYPE
    | INCOMPAT_RECOVER
    | INCOMPAT_META_BG
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_MMP
    | INCOMPAT_FLEX_BG
    | INCOMPAT_EA_INODE
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR
    | INCOMPAT_INLINE_DATA
    | INCOMPAT_CASEFOLD;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const COMPAT_HAS_JOURNAL: u32 = 0x4;

// Inode flags.
const FLAG_EXTENTS: u32 = 0x8_0000;
const FLAG_INLINE_DATA: u32 = 0x1000_0000;
const FLAG_ENCRYPT: u32 = 0x800;
const FLAG_HUGE_FILE: u32 = 0x4_0000;

fn bad(structure: &'static str, at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(structure, at, problem)
}

/// The names of the incompatible features in `bits` that this reader does not read.
fn unsupported(bits: u32) -> Vec<String> {
    let names = [
        (INCOMPAT_COMPRESSION, "compression"),
        (
            INCOMPAT_JOURNAL_DEV,
            "journal_dev (an external journal, not a file system)",
        ),
        (INCOMPAT_DIRDATA, "dirdata"),
        (INCOMPAT_ENCRYPT, "encrypt"),
    ];
    let mut out: Vec<String> = names
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| name.to_string())
        .collect();
    let rest = bits & !INCOMPAT_KNOWN & !names.iter().fold(0, |all, (bit, _)| all | bit);
    if rest != 0 {
        out.push(format!("unknown features {rest:#x}"));
    }
    out
}

/// What the superblock says of the volume's layout.
#[derive(Clone, Debug)]
struct Super {
    block: u64,
    blocks: u64,
    free_blocks: u64,
    first_data_block: u64,
    blocks_per_group: u64,
    inodes_per_group: u64,
    inodes: u64,
    inode_size: u64,
    desc_size: u64,
    incompat: u32,
    ro_compat: u32,
    compat: u32,
    first_meta_bg: u64,
    label: String,
    state: u16,
    /// With metadata_csum: the seed of every checksum but the superblock's own.
    csum_seed: Option<u32>,
}

/// Where the superblock keeps its checksum (CRC-32C of what comes before it), and the seed
/// a volume with csum_seed keeps.
const SUPER_CSUM_AT: usize = 0x3FC;
const CSUM_SEED_AT: usize = 0x270;

impl Super {
    fn read(source: &dyn ReadAt) -> io::Result<Super> {
        let mut b = [0u8; 1024];
        source.read_exact_at(SUPERBLOCK, &mut b)?;
        let what = "ext superblock";
        if le16(&b, 56) != MAGIC {
            return Err(bad(what, SUPERBLOCK + 56, "no magic number 0xEF53"));
        }
        let log = le32(&b, 24);
        if log > 6 {
            return Err(bad(
                what,
                SUPERBLOCK + 24,
                format!("blocks of 1024 << {log} bytes"),
            ));
        }
        let block = 1024u64 << log;
        let rev = le32(&b, 76);
        let (inode_size, incompat, ro_compat, compat) = match rev {
            0 => (128, 0, 0, 0),
            _ => (
                u64::from(le16(&b, 88)),
                le32(&b, 96),
                le32(&b, 100),
                le32(&b, 92),
            ),
        };
        let wide = incompat & INCOMPAT_64BIT != 0;
        let hi = |at: usize| {
            if wide {
                u64::from(le32(&b, at)) << 32
            } else {
                0
            }
        };
        let blocks = u64::from(le32(&b, 4)) | hi(336);
        let free_blocks = u64::from(le32(&b, 12)) | hi(344);
        let desc_size = match (wide, le16(&b, 254)) {
            (false, _) => 32,
            (true, n) => u64::from(n),
        };
        let (per_group, inodes_per_group) = (u64::from(le32(&b, 32)), u64::from(le32(&b, 40)));
        let first_data_block = u64::from(le32(&b, 20));
        let inodes = u64::from(le32(&b, 0));
        let problems = [
            (inode_size < 128 || inode_size > block || !inode_size.is_power_of_two())
                .then(|| format!("inodes of {inode_size} bytes")),
            (!(32..=1024).contains(&desc_size) || !desc_size.is_power_of_two())
                .then(|| format!("group descriptors of {desc_size} bytes")),
            (per_group == 0 || per_group > block * 8)
                .then(|| format!("{per_group} blocks a group")),
            (inodes_per_group == 0 || inodes_per_group > block * 8)
                .then(|| format!("{inodes_per_group} inodes a group")),
            (first_data_block >= blocks || first_data_block > 1)
                .then(|| format!("{blocks} blocks, data from block {first_data_block}")),
        ];
        if let Some(p) = problems.into_iter().flatten().next() {
            return Err(bad(what, SUPERBLOCK, p));
        }
        let csum_seed = match ro_compat & RO_COMPAT_METADATA_CSUM {
            0 => None,
            _ => {
                let (sum, want) = (crc32c(!0, &b[..SUPER_CSUM_AT]), le32(&b, SUPER_CSUM_AT));
                if sum != want {
                    return Err(bad(
                        what,
                        SUPERBLOCK + SUPER_CSUM_AT as u64,
                        format!(
                            "its checksum is {sum:#010x}, it says {want:#010x} (metadata_csum)"
                        ),
                    ));
                }
                Some(match incompat & INCOMPAT_CSUM_SEED {
                    0 => crc32c(!0, &b[0x68..0x78]),
                    _ => le32(&b, CSUM_SEED_AT),
                })
            }
        };
        let groups = (blocks - first_data_block).div_ceil(per_group);
        if inodes > groups * inodes_per_group {
            return Err(bad(
                what,
                SUPERBLOCK,
                format!("{inodes} inodes in {groups} groups of {inodes_per_group}"),
            ));
        }
        Ok(Super {
            block,
            blocks,
            free_blocks,
            first_data_block,
            blocks_per_group: per_group,
            inodes_per_group,
            inodes,
            inode_size,
            desc_size,
            incompat,
            ro_compat,
            compat,
            first_meta_bg: u64::from(le32(&b, 260)),
            label: crate::fs::label_text(&String::from_utf8_lossy(&b[120..136])),
            state: le16(&b, 58),
            csum_seed,
        })
    }

    /// Whether group `g` keeps a copy of the superblock (every group, or with sparse_super
    /// groups 0, 1 and the powers of 3, 5 and 7).
    fn has_super(&self, g: u64) -> bool {
        let power_of = |mut n: u64, base: u64| {
            while n > 1 && n.is_multiple_of(base) {
                n /= base;
            }
            n == 1
        };
        self.ro_compat & RO_COMPAT_SPARSE_SUPER == 0
            || g <= 1
            || power_of(g, 3)
            || power_of(g, 5)
            || power_of(g, 7)
    }

    /// The block holding group `g`'s descriptor, and the descriptor's offset in it.
    fn descriptor_at(&self, g: u64) -> (u64, u64) {
        let per_block = self.block / self.desc_size;
        let (index, within) = (g / per_block, g % per_block);
        let block = if self.incompat & INCOMPAT_META_BG != 0 && index >= self.first_meta_bg {
            // meta_bg: each group of `per_block` groups keeps its descriptors in its first group.
            let first = index * per_block;
            self.first_data_block + first * self.blocks_per_group + u64::from(self.has_super(first))
        } else {
            self.first_data_block + 1 + index
        };
        (block, within * self.desc_size)
    }
}

/// A metadata_csum checksum over `parts` from `seed`, checked against `want` (the low 16 bits
/// where the structure keeps no more): a mismatch is an error naming the structure and whose
/// it is.
fn verify(
    (structure, at, whose): (&'static str, u64, &str),
    seed: u32,
    parts: &[&[u8]],
    want: u32,
    bits16: bool,
) -> io::Result<()> {
    let sum = parts.iter().fold(seed, |crc, p| crc32c(crc, p));
    let sum = if bits16 { sum & 0xFFFF } else { sum };
    match sum == want {
        true => Ok(()),
        false => Err(bad(
            structure,
            at,
            format!("{whose}: its checksum is {sum:#x}, it says {want:#x} (metadata_csum)"),
        )),
    }
}

/// A time of an inode: seconds (signed, 32 bits) and, where the inode is large enough, the
/// extra field's two epoch bits.
fn time(seconds: u32, extra: Option<u32>) -> i64 {
    let epoch = extra.map_or(0, |e| i64::from(e & 3));
    i64::from(seconds as i32) + (epoch << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_not_read_are_named() {
        assert!(unsupported(INCOMPAT_KNOWN).is_empty());
        assert_eq!(
            unsupported(INCOMPAT_ENCRYPT | INCOMPAT_FILETYPE),
            ["encrypt"]
        );
        assert_eq!(unsupported(0x8000_0000), ["unknown features 0x80000000"]);
    }

    #[test]
    fn times_past_2038_use_the_epoch_bits() {
        assert_eq!(time(0xFFFF_FFFF, None), -1);
        assert_eq!(time(0xFFFF_FFFF, Some(1)), (1 << 32) - 1);
        assert_eq!(time(5, Some(0xFFFF_FFFC)), 5, "nanoseconds are not seconds");
    }
}
