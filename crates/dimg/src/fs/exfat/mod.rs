//! exFAT (formats.md §i, Microsoft's exFAT file system specification): the boot sector's layout
//! and the directory entries' constants, which the reader and the writer share.

mod change;
mod read;
mod write;

pub use change::ExFatChange;
pub use read::ExFat;
pub use write::{build, size_for, Built, Options};

use crate::bytes::{le32, le64};
use crate::error::FormatError;
use crate::io::ReadAt;
use std::io;

const ENTRY: usize = 32;
/// The specification's limit on a directory: 256 MiB.
const MAX_DIR_BYTES: u64 = 256 << 20;
const ENTRY_BITMAP: u8 = 0x81;
const ENTRY_UPCASE: u8 = 0x82;
const ENTRY_LABEL: u8 = 0x83;
/// The volume GUID: a benign primary entry of the root, a set of its own (read, not written:
/// Debian 12's fsck.exfat takes it for an unknown entry).
const ENTRY_GUID: u8 = 0xA0;
const ENTRY_FILE: u8 = 0x85;
const ENTRY_STREAM: u8 = 0xC0;
const ENTRY_NAME: u8 = 0xC1;
const ATTR_READ_ONLY: u16 = 0x01;
const ATTR_DIRECTORY: u16 = 0x10;
/// The stream extension's flag: the clusters are contiguous and the FAT does not chain them.
const NO_FAT_CHAIN: u8 = 0x02;
const VOLUME_DIRTY: u16 = 0x02;

fn bad(structure: &'static str, at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(structure, at, problem)
}

/// Where an exFAT volume keeps its FAT and its cluster heap (the main boot sector).
#[derive(Clone, Debug)]
struct Layout {
    /// The active FAT's offset, and its length in bytes.
    fat: u64,
    fat_bytes: u64,
    /// Where cluster 2 starts.
    heap: u64,
    cluster: u64,
    clusters: u64,
    root: u32,
    flags: u16,
    /// Whether the second FAT and allocation bitmap are the active ones.
    second: bool,
}

impl Layout {
    fn read(source: &dyn ReadAt) -> io::Result<Layout> {
        let mut b = [0u8; 512];
        source.read_exact_at(0, &mut b)?;
        let what = "exFAT boot sector";
        if &b[3..11] != b"EXFAT   " || b[510..512] != [0x55, 0xAA] {
            return Err(bad(what, 3, "no EXFAT signature and 55 AA"));
        }
        let (sector_shift, cluster_shift) = (u32::from(b[108]), u32::from(b[109]));
        if !(9..=12).contains(&sector_shift) || sector_shift + cluster_shift > 25 {
            return Err(bad(
                what,
                108,
                format!("sectors of 2^{sector_shift} bytes, clusters of 2^{cluster_shift} sectors"),
            ));
        }
        let sector = 1u64 << sector_shift;
        let (fat_at, fat_len) = (u64::from(le32(&b, 80)), u64::from(le32(&b, 84)));
        let (heap, clusters, root) = (
            u64::from(le32(&b, 88)),
            u64::from(le32(&b, 92)),
            le32(&b, 96),
        );
        let volume = le64(&b, 72);
        let (fats, flags) = (b[110], crate::bytes::le16(&b, 106));
        if !(1..=2).contains(&fats) || clusters > 0xFFFF_FFF5 || fat_at == 0 || heap == 0 {
            return Err(bad(
                what,
                80,
                format!("{fats} FATs at sector {fat_at}, a heap of {clusters} clusters at sector {heap}"),
            ));
        }
        let cluster = sector << cluster_shift;
        let heap_end = heap * sector + clusters * cluster;
        if fat_len * sector < (clusters + 2) * 4 || heap_end > volume.saturating_mul(sector) {
            return Err(bad(
                what,
                84,
                format!(
                    "a FAT of {fat_len} sectors for {clusters} clusters, a heap ending at byte \
                     {heap_end} of a volume of {volume} sectors"
                ),
            ));
        }
        // The second FAT is in use when there are two and the flags say so.
        let second = fats == 2 && flags & 1 != 0;
        let active = u64::from(second);
        Ok(Layout {
            fat: (fat_at + active * fat_len) * sector,
            fat_bytes: fat_len * sector,
            heap: heap * sector,
            cluster,
            clusters,
            root,
            flags,
            second,
        })
    }

    /// Whether cluster `n` is in the heap.
    fn holds(&self, n: u32) -> bool {
        n >= 2 && u64::from(n) < self.clusters + 2
    }

    /// Where cluster `n` starts.
    fn at(&self, n: u32) -> u64 {
        self.heap + (u64::from(n) - 2) * self.cluster
    }
}

/// exFAT's 16-bit rotating sum, of entry sets and of names (their hash).
fn checksum16(bytes: impl IntoIterator<Item = u8>) -> u16 {
    bytes.into_iter().fold(0u16, |sum, b| {
        sum.rotate_right(1).wrapping_add(u16::from(b))
    })
}

/// The checksum of a directory entry set, bytes 2 and 3 (where it is kept) left out.
fn set_checksum(set: &[u8]) -> u16 {
    checksum16(
        set.iter()
            .enumerate()
            .filter(|&(i, _)| !matches!(i, 2 | 3))
            .map(|(_, &b)| b),
    )
}

/// The up-case table's checksum.
fn table_checksum(table: &[u8]) -> u32 {
    table.iter().fold(0u32, |sum, &b| {
        sum.rotate_right(1).wrapping_add(u32::from(b))
    })
}

/// The up-case table as stored: UTF-16 units, where 0xFFFF followed by a count stands for that
/// many characters that map to themselves. Characters past the table map to themselves.
fn expand_upcase(table: &[u8]) -> Vec<u16> {
    let units = table
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    let mut map: Vec<u16> = Vec::new();
    let mut units = units.peekable();
    while let Some(u) = units.next() {
        if map.len() >= 0x10000 {
            break;
        }
        if u == 0xFFFF {
            if let Some(count) = units.next() {
                let from = map.len();
                let to = (from + usize::from(count)).min(0x10000);
                map.extend((from..to).map(|c| c as u16));
                continue;
            }
        }
        map.push(u);
    }
    map
}

/// A date and time as exFAT keeps them (local time, 2-second steps), with its 10 ms increment
/// and UTC offset, as seconds since 1970 UTC (local time taken as UTC when no offset is given).
fn unix(stamp: u32, tens: u8, offset: u8) -> Option<i64> {
    let (year, month, day) = (
        1980 + i64::from(stamp >> 25),
        i64::from((stamp >> 21) & 0x0F),
        i64::from((stamp >> 16) & 0x1F),
    );
    let (hour, minute, second) = (
        i64::from((stamp >> 11) & 0x1F),
        i64::from((stamp >> 5) & 0x3F),
        i64::from(stamp & 0x1F) * 2,
    );
    if !(1..=12).contains(&month) || day == 0 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let local = crate::fs::days_from_civil(year, month, day) * 86_400
        + hour * 3600
        + minute * 60
        + second
        + i64::from(tens.min(199)) / 100;
    // Bit 7: the offset is valid; bits 0-6: a signed count of 15-minute steps east of UTC.
    let east = match offset & 0x80 {
        0 => 0,
        _ => i64::from(((offset << 1) as i8) >> 1) * 15 * 60,
    };
    Some(local - east)
}

/// Seconds since 1970 as exFAT keeps a time: the stamp (in UTC, 2-second steps from 1980 to
/// 2107), its 10 ms increment (the odd second) and its UTC offset (zero, marked valid).
fn stamp(t: i64) -> (u32, u8, u8) {
    let (y, m, d, h, mi, s) = crate::fs::civil(t.clamp(315_532_800, 4_354_819_199));
    let stamp =
        (((y - 1980) as u32) << 25) | (m << 21) | (d << 16) | (h << 11) | (mi << 5) | (s / 2);
    (stamp, (s % 2 * 100) as u8, 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_take_the_increment_and_the_utc_offset() {
        // 2021-03-04 05:06:08, local, +1 s from the 10 ms field, at UTC+01:00 (4 steps east).
        let stamp = (41 << 25) | (3 << 21) | (4 << 16) | (5 << 11) | (6 << 5) | 4;
        let base = crate::fs::days_from_civil(2021, 3, 4) * 86_400 + 5 * 3600 + 6 * 60 + 8;
        assert_eq!(unix(stamp, 0, 0), Some(base));
        assert_eq!(unix(stamp, 150, 0), Some(base + 1));
        assert_eq!(unix(stamp, 0, 0x80 | 4), Some(base - 3600));
        // UTC-05:00: -20 steps in 7 bits.
        assert_eq!(unix(stamp, 0, 0x80 | (0x80 - 20)), Some(base + 5 * 3600));
        assert_eq!(unix(0, 0, 0), None, "month 0 is no date");
        for t in [base, base + 1, 315_532_800] {
            let (s, tens, offset) = super::stamp(t);
            assert_eq!(unix(s, tens, offset), Some(t), "{t} and back");
        }
    }

    #[test]
    fn the_upcase_table_expands_its_identity_runs() {
        let mut t = Vec::new();
        for u in [0xFFFFu16, 0x61, 0x41, 0x42, 0xFFFF, 2] {
            t.extend(u.to_le_bytes());
        }
        let map = expand_upcase(&t);
        assert_eq!(map.len(), 0x61 + 2 + 2);
        assert_eq!(map[0x60], 0x60);
        assert_eq!((map[0x61], map[0x62]), (0x41, 0x42));
        assert_eq!(map[0x64], 0x64);
    }
}
