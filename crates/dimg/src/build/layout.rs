//! Partition maps around a new volume, as `hdiutil create -layout` writes them: GPT (GPTSPUD:
//! protective MBR, header and entries at both ends, the volume at sector 40), MBR (MBRSPUD: the
//! volume at 1 MiB) or none. Each map is built in memory; the volume is read in place.

use super::{Assembly, Zeros};
use crate::io::ReadAt;
use std::sync::Arc;

const SECTOR: u64 = 512;
const GPT_ENTRIES: usize = 128;
const GPT_ENTRY: usize = 128;
/// Sectors the GPT entry array takes: 128 entries of 128 bytes.
const GPT_TABLE_SECTORS: u64 = (GPT_ENTRIES * GPT_ENTRY) as u64 / SECTOR;
/// Where hdiutil puts the one partition of a GPTSPUD disk.
const GPT_FIRST: u64 = 40;
const MBR_FIRST: u64 = 2048;
/// Where an APM's volume starts: after the map's 64 blocks, as on a CD's system area.
const APM_AREA: u64 = 32 << 10;

/// A partition map, by hdiutil's `-layout` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    None,
    Gpt,
    Mbr,
    /// Apple partition map (hdiutil's SPUD): the volume after a 32 KiB map.
    Apm,
}

impl Layout {
    /// Bytes the map takes around its volume.
    pub fn overhead(self) -> u64 {
        match self {
            Layout::None => 0,
            Layout::Gpt => (GPT_FIRST + GPT_TABLE_SECTORS + 1) * SECTOR,
            Layout::Mbr => MBR_FIRST * SECTOR,
            Layout::Apm => APM_AREA,
        }
    }

    pub fn parse(s: &str) -> Option<Layout> {
        Some(match s.to_ascii_uppercase().as_str() {
            "NONE" => Layout::None,
            "GPTSPUD" | "GPT" => Layout::Gpt,
            "MBRSPUD" | "MBR" => Layout::Mbr,
            "SPUD" | "APM" => Layout::Apm,
            _ => return None,
        })
    }
}

/// What the map says the volume is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeType {
    HfsPlus,
    Fat,
    /// No file system yet: a blank partition.
    Blank,
}

impl VolumeType {
    fn gpt_guid(self) -> &'static str {
        match self {
            VolumeType::HfsPlus => "48465300-0000-11AA-AA11-00306543ECAC",
            VolumeType::Fat | VolumeType::Blank => "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
        }
    }

    fn apm_type(self) -> &'static str {
        match self {
            VolumeType::HfsPlus => "Apple_HFS",
            VolumeType::Fat => "DOS_FAT_32",
            VolumeType::Blank => "Apple_Free",
        }
    }

    fn mbr_type(self) -> u8 {
        match self {
            VolumeType::HfsPlus => 0xAF,
            VolumeType::Fat | VolumeType::Blank => 0x0C,
        }
    }
}

/// GUID text as GPT stores it: the first three fields little-endian.
fn guid_bytes(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("a GUID constant");
    }
    b[..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

fn random_guid() -> [u8; 16] {
    let mut g = [0u8; 16];
    getrandom::fill(&mut g).expect("the system's random source");
    g[7] = (g[7] & 0x0F) | 0x40; // version 4 (stored little-endian)
    g[8] = (g[8] & 0x3F) | 0x80;
    g
}

/// One MBR partition entry, CHS fields saying "use the LBA".
fn mbr_entry(kind: u8, first: u64, sectors: u64) -> [u8; 16] {
    let mut e = [0u8; 16];
    e[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[4] = kind;
    e[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&(first.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    e[12..16].copy_from_slice(&(sectors.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    e
}

fn mbr(entry: [u8; 16]) -> Vec<u8> {
    let mut m = vec![0u8; SECTOR as usize];
    m[446..462].copy_from_slice(&entry);
    m[510..512].copy_from_slice(&[0x55, 0xAA]);
    m
}

/// An Apple partition map in the first 32 KiB of a disk (a hybrid CD's system area): the map
/// itself and one partition of type `kind` at `at` of `size` bytes, in 512-byte blocks.
pub fn apm(disk_size: u64, at: u64, size: u64, name: &str, kind: &str) -> Vec<u8> {
    let mut area = vec![0u8; 32 << 10];
    area[0..2].copy_from_slice(b"ER");
    area[2..4].copy_from_slice(&(SECTOR as u16).to_be_bytes());
    area[4..8].copy_from_slice(&((disk_size / SECTOR) as u32).to_be_bytes());
    let entries = [
        ("Apple", "Apple_partition_map", 1, 63, 0x37u32),
        (name, kind, at / SECTOR, size / SECTOR, 0x4000_0033),
    ];
    for (i, (pname, kind, start, count, status)) in entries.iter().enumerate() {
        let e = &mut area[(i + 1) * SECTOR as usize..(i + 2) * SECTOR as usize];
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

/// The volume inside the chosen map; the volume's size is whole sectors.
pub fn wrap(
    volume: Arc<dyn ReadAt>,
    layout: Layout,
    kind: VolumeType,
    name: &str,
) -> Arc<dyn ReadAt> {
    let sectors = volume.size().div_ceil(SECTOR);
    let mut disk = Assembly::default();
    match layout {
        Layout::None => return volume,
        Layout::Apm => {
            let size = sectors * SECTOR;
            disk.bytes(apm(APM_AREA + size, APM_AREA, size, name, kind.apm_type()));
            disk.push(volume);
            disk.pad_to(SECTOR);
        }
        Layout::Mbr => {
            disk.bytes(mbr(mbr_entry(kind.mbr_type(), MBR_FIRST, sectors)));
            disk.push(Arc::new(Zeros((MBR_FIRST - 1) * SECTOR)));
            disk.push(volume);
            disk.pad_to(SECTOR);
        }
        Layout::Gpt => {
            let last = GPT_FIRST + sectors + GPT_TABLE_SECTORS; // the backup header
            let mut entries = vec![0u8; GPT_ENTRIES * GPT_ENTRY];
            entries[..16].copy_from_slice(&guid_bytes(kind.gpt_guid()));
            entries[16..32].copy_from_slice(&random_guid());
            entries[32..40].copy_from_slice(&GPT_FIRST.to_le_bytes());
            entries[40..48].copy_from_slice(&(GPT_FIRST + sectors - 1).to_le_bytes());
            for (i, unit) in name.encode_utf16().take(36).enumerate() {
                entries[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
            }
            let entries_crc = crc32fast::hash(&entries);
            let disk_guid = random_guid();
            let header = |at: u64, other: u64, table: u64| {
                let mut h = vec![0u8; SECTOR as usize];
                h[..8].copy_from_slice(b"EFI PART");
                h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
                h[12..16].copy_from_slice(&92u32.to_le_bytes());
                h[24..32].copy_from_slice(&at.to_le_bytes());
                h[32..40].copy_from_slice(&other.to_le_bytes());
                h[40..48].copy_from_slice(&(2 + GPT_TABLE_SECTORS).to_le_bytes());
                h[48..56].copy_from_slice(&(last - 1 - GPT_TABLE_SECTORS).to_le_bytes());
                h[56..72].copy_from_slice(&disk_guid);
                h[72..80].copy_from_slice(&table.to_le_bytes());
                h[80..84].copy_from_slice(&(GPT_ENTRIES as u32).to_le_bytes());
                h[84..88].copy_from_slice(&(GPT_ENTRY as u32).to_le_bytes());
                h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
                let crc = crc32fast::hash(&h[..92]);
                h[16..20].copy_from_slice(&crc.to_le_bytes());
                h
            };
            disk.bytes(mbr(mbr_entry(0xEE, 1, last)));
            disk.bytes(header(1, last, 2));
            disk.bytes(entries.clone());
            disk.push(Arc::new(Zeros(
                (GPT_FIRST - 2 - GPT_TABLE_SECTORS) * SECTOR,
            )));
            disk.push(volume);
            disk.pad_to(SECTOR);
            disk.bytes(entries);
            disk.bytes(header(last, 1, last - GPT_TABLE_SECTORS));
        }
    }
    disk.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stored_mixed_endian() {
        let g = guid_bytes("48465300-0000-11AA-AA11-00306543ECAC");
        assert_eq!(
            crate::partition::gpt::guid_text(&g),
            "48465300-0000-11AA-AA11-00306543ECAC"
        );
    }
}
