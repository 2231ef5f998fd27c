//! Apple partition map: a driver descriptor ('ER') in block 0 giving the block size, then one
//! 'PM' entry per block, each saying how many entries the map has.

use crate::bytes::{be16, be32};

use super::Partition;
use crate::io::ReadAt;
use std::io;

const MAX_ENTRIES: u32 = 256;

/// A name or type field: MacRoman, up to its first NUL.
fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    crate::bytes::mac_roman(&b[..end])
}

pub fn read(disk: &dyn ReadAt) -> io::Result<Option<Vec<Partition>>> {
    let mut ddm = [0u8; 512];
    if disk.size() < 1024 {
        return Ok(None);
    }
    disk.read_exact_at(0, &mut ddm)?;
    if &ddm[0..2] != b"ER" {
        return Ok(None);
    }
    // The entries are 512-byte records at the device's block size (2048 on CD hybrids); when
    // the DDM's size is unusable, 512 is what the entries themselves use.
    let declared = u64::from(be16(&ddm, 2));
    let mut parts = Vec::new();
    for block in [declared, 512] {
        if ![512, 1024, 2048, 4096].contains(&block) {
            continue;
        }
        let mut entry = [0u8; 512];
        let mut count = 1;
        let mut i = 1;
        while i <= count && i <= MAX_ENTRIES {
            let at = u64::from(i) * block;
            if at + 512 > disk.size() {
                break;
            }
            disk.read_exact_at(at, &mut entry)?;
            if &entry[0..2] != b"PM" {
                break;
            }
            count = be32(&entry, 4);
            parts.push(Partition {
                index: i,
                name: text(&entry[16..48]),
                kind: text(&entry[48..80]),
                start: u64::from(be32(&entry, 8)) * block,
                size: u64::from(be32(&entry, 12)) * block,
            });
            i += 1;
        }
        if !parts.is_empty() {
            return Ok(Some(parts));
        }
    }
    Ok(None)
}

/// Blocks of the maps dimg writes.
const BLOCK: u64 = 512;

/// An Apple partition map in the first 32 KiB of a disk (a hybrid CD's system area): the map
/// itself and one partition of type `kind` at `at` of `size` bytes, in 512-byte blocks.
pub fn map(disk_size: u64, at: u64, size: u64, name: &str, kind: &str) -> Vec<u8> {
    let mut area = vec![0u8; 32 << 10];
    area[0..2].copy_from_slice(b"ER");
    area[2..4].copy_from_slice(&(BLOCK as u16).to_be_bytes());
    area[4..8].copy_from_slice(&((disk_size / BLOCK) as u32).to_be_bytes());
    let entries = [
        ("Apple", "Apple_partition_map", 1, 63, 0x37u32),
        (name, kind, at / BLOCK, size / BLOCK, 0x4000_0033),
    ];
    for (i, (pname, kind, start, count, status)) in entries.iter().enumerate() {
        let e = &mut area[(i + 1) * BLOCK as usize..(i + 2) * BLOCK as usize];
        e[0..2].copy_from_slice(b"PM");
        e[4..8].copy_from_slice(&(entries.len() as u32).to_be_bytes());
        e[8..12].copy_from_slice(&(*start as u32).to_be_bytes());
        e[12..16].copy_from_slice(&(*count as u32).to_be_bytes());
        let n = pname.len().min(31);
        e[16..16 + n].copy_from_slice(&pname.as_bytes()[..n]);
        e[48..48 + kind.len()].copy_from_slice(kind.as_bytes());
        e[84..88].copy_from_slice(&(*count as u32).to_be_bytes());
        e[88..92].copy_from_slice(&status.to_be_bytes());
    }
    area
}

#[cfg(test)]
mod tests {
    /// Partition names and types are MacRoman, as classic Mac OS wrote them.
    #[test]
    fn names_are_mac_roman() {
        let mut disk = vec![0u8; 4096];
        disk[0..2].copy_from_slice(b"ER");
        disk[2..4].copy_from_slice(&512u16.to_be_bytes());
        let entry = &mut disk[512..1024];
        entry[0..2].copy_from_slice(b"PM");
        entry[4..8].copy_from_slice(&1u32.to_be_bytes());
        entry[8..12].copy_from_slice(&2u32.to_be_bytes());
        entry[12..16].copy_from_slice(&4u32.to_be_bytes());
        entry[16..28].copy_from_slice(b"Caf\x8E \xA5 Disk\xAA");
        entry[48..57].copy_from_slice(b"Apple_HFS");
        let parts = super::read(&disk).unwrap().unwrap();
        assert_eq!(parts[0].name, "Café • Disk™");
        assert_eq!(parts[0].kind, "Apple_HFS");
    }
}
