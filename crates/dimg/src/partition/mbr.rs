//! DOS partition table: four primary entries, and logical partitions in the chain of extended
//! boot records behind an extended entry.

use super::Partition;
use crate::bytes::le32;
use crate::io::ReadAt;
use std::collections::HashSet;
use std::io;

const MAX_LOGICAL: usize = 128;

struct Entry {
    kind: u8,
    start: u64,
    sectors: u64,
}

fn entries(sector: &[u8]) -> [Entry; 4] {
    std::array::from_fn(|i| {
        let e = &sector[446 + 16 * i..462 + 16 * i];
        Entry {
            kind: e[4],
            start: u64::from(le32(e, 8)),
            sectors: u64::from(le32(e, 12)),
        }
    })
}

fn is_extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0F | 0x85)
}

fn read_sector(disk: &dyn ReadAt, lba: u64) -> io::Result<Option<[u8; 512]>> {
    let mut b = [0u8; 512];
    match lba.checked_mul(512) {
        Some(at) if at + 512 <= disk.size() => {
            disk.read_exact_at(at, &mut b)?;
            Ok((b[510..512] == [0x55, 0xAA]).then_some(b))
        }
        _ => Ok(None),
    }
}

pub fn read(disk: &dyn ReadAt) -> io::Result<Option<Vec<Partition>>> {
    let Some(mbr) = read_sector(disk, 0)? else {
        return Ok(None);
    };
    // Status bytes other than 0x00/0x80 mean this is a boot sector, not a partition table.
    if (0..4).any(|i| !matches!(mbr[446 + 16 * i], 0x00 | 0x80)) {
        return Ok(None);
    }
    let primaries = entries(&mbr);
    if primaries.iter().all(|e| e.kind == 0 || e.sectors == 0) {
        return Ok(None);
    }
    let mut parts = Vec::new();
    for (i, e) in primaries.iter().enumerate() {
        if e.kind == 0 || e.sectors == 0 {
            continue;
        }
        parts.push(partition(i as u32 + 1, e.kind, e.start, e.sectors));
        if is_extended(e.kind) {
            logical(disk, e.start, &mut parts)?;
        }
    }
    Ok(Some(parts))
}

/// Walks the extended boot records: each holds one logical partition (relative to itself) and a
/// link to the next (relative to the extended partition). Loops and runaway chains stop.
fn logical(disk: &dyn ReadAt, extended: u64, parts: &mut Vec<Partition>) -> io::Result<()> {
    let mut seen = HashSet::new();
    let mut ebr = extended;
    let mut number = 5;
    while seen.insert(ebr) && seen.len() <= MAX_LOGICAL {
        let Some(sector) = read_sector(disk, ebr)? else {
            break;
        };
        let [this, next, ..] = entries(&sector);
        if this.kind != 0 && this.sectors != 0 {
            parts.push(partition(number, this.kind, ebr + this.start, this.sectors));
            number += 1;
        }
        if !is_extended(next.kind) || next.sectors == 0 {
            break;
        }
        ebr = extended + next.start;
    }
    Ok(())
}

fn partition(index: u32, kind: u8, start: u64, sectors: u64) -> Partition {
    Partition {
        index,
        name: String::new(),
        kind: type_name(kind),
        start: start * 512,
        size: sectors * 512,
    }
}

fn type_name(kind: u8) -> String {
    let name = match kind {
        0x01 => "FAT12",
        0x04 | 0x06 | 0x0E => "FAT16",
        0x05 | 0x0F | 0x85 => "Extended",
        0x07 => "NTFS/exFAT",
        0x0B | 0x0C => "FAT32",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0xA8 => "Apple_UFS",
        0xAB => "Apple_Boot",
        0xAF => "Apple_HFS",
        0xEE => "GPT protective",
        0xEF => "EFI",
        _ => return format!("0x{kind:02X}"),
    };
    name.to_string()
}

/// One MBR partition entry, CHS fields saying "use the LBA".
fn entry(kind: u8, first: u64, sectors: u64) -> [u8; 16] {
    let mut e = [0u8; 16];
    e[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[4] = kind;
    e[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&(first.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    e[12..16].copy_from_slice(&(sectors.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    e
}

/// A master boot record holding one partition of type `kind` (sectors of 512 bytes).
pub fn single(kind: u8, first: u64, sectors: u64) -> Vec<u8> {
    let mut m = vec![0u8; 512];
    m[446..462].copy_from_slice(&entry(kind, first, sectors));
    m[510..512].copy_from_slice(&[0x55, 0xAA]);
    m
}
