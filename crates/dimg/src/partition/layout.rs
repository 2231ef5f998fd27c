//! Partition maps around a new volume, as `hdiutil create -layout` writes them: GPT (GPTSPUD:
//! protective MBR, header and entries at both ends, the volume at sector 40), MBR (MBRSPUD: the
//! volume at 1 MiB) or none. Each map is built in memory; the volume is read in place.

use super::{apm, gpt, mbr};
use crate::io::{Assembly, ReadAt, Zeros};
use std::sync::Arc;

const SECTOR: u64 = 512;
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
            Layout::Gpt => (GPT_FIRST + gpt::TABLE_SECTORS + 1) * SECTOR,
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
    /// An APFS container.
    Apfs,
    Fat,
    ExFat,
    /// No file system yet: a blank partition.
    Blank,
}

impl VolumeType {
    fn gpt_guid(self) -> &'static str {
        match self {
            VolumeType::HfsPlus => "48465300-0000-11AA-AA11-00306543ECAC",
            VolumeType::Apfs => "7C3457EF-0000-11AA-AA11-00306543ECAC",
            VolumeType::Fat | VolumeType::ExFat | VolumeType::Blank => {
                "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
            }
        }
    }

    fn apm_type(self) -> &'static str {
        match self {
            VolumeType::HfsPlus => "Apple_HFS",
            VolumeType::Apfs => "Apple_APFS",
            VolumeType::Fat => "DOS_FAT_32",
            VolumeType::ExFat => "Windows_NTFS",
            VolumeType::Blank => "Apple_Free",
        }
    }

    fn mbr_type(self) -> u8 {
        match self {
            VolumeType::HfsPlus | VolumeType::Apfs => 0xAF,
            VolumeType::Fat | VolumeType::Blank => 0x0C,
            // exFAT shares NTFS's type, as Windows writes it.
            VolumeType::ExFat => 0x07,
        }
    }
}

/// The volume inside the chosen map; the volume's size is whole sectors. A reproducible image's
/// `seed` gives the map's identifiers.
pub fn wrap(
    volume: Arc<dyn ReadAt>,
    layout: Layout,
    kind: VolumeType,
    name: &str,
    seed: Option<&crate::bytes::Seed>,
) -> Arc<dyn ReadAt> {
    let sectors = volume.size().div_ceil(SECTOR);
    let mut disk = Assembly::default();
    match layout {
        Layout::None => return volume,
        Layout::Apm => {
            let size = sectors * SECTOR;
            disk.bytes(apm::map(
                APM_AREA + size,
                APM_AREA,
                size,
                name,
                kind.apm_type(),
            ));
            disk.push(volume);
            disk.pad_to(SECTOR);
        }
        Layout::Mbr => {
            disk.bytes(mbr::single(kind.mbr_type(), MBR_FIRST, sectors));
            disk.push(Arc::new(Zeros((MBR_FIRST - 1) * SECTOR)));
            disk.push(volume);
            disk.pad_to(SECTOR);
        }
        Layout::Gpt => {
            let (head, tail) = gpt::single(kind.gpt_guid(), GPT_FIRST, sectors, name, seed);
            disk.bytes(head);
            disk.push(volume);
            disk.pad_to(SECTOR);
            disk.bytes(tail);
        }
    }
    disk.finish()
}
