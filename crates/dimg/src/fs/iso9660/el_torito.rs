//! El Torito boot catalogs (formats.md §g.7): the images a bootable CD starts from. They are not
//! in the ISO 9660 volume's tree: `info` reports them and `extract -boot` takes them out, named
//! as 7-Zip names them in its `[BOOT]` folder.

use crate::bytes::{le16, le32};
use crate::error::FormatError;
use crate::io::ReadAt;
use serde::Serialize;
use std::io;

use super::SECTOR;

const STRUCTURE: &str = "El Torito boot catalog";

/// One boot image of the catalog.
#[derive(Clone, Debug, Serialize)]
pub struct BootImage {
    /// "x86 BIOS", "UEFI", "PowerPC", "Mac".
    pub platform: String,
    /// "no emulation", "1.2M floppy", "1.44M floppy", "2.88M floppy", "hard disk".
    pub emulation: &'static str,
    pub bootable: bool,
    /// 512-byte sectors the firmware loads (no emulation).
    pub load_sectors: u16,
    /// Where the image starts, in 2048-byte sectors.
    pub lba: u32,
    /// Bytes the image spans: the emulated medium, or what is loaded.
    pub size: u64,
}

impl BootImage {
    /// 7-Zip's name for the image, so both tools extract the same files.
    pub fn file_name(&self) -> &'static str {
        match self.emulation {
            "1.2M floppy" => "Boot-1.2M.img",
            "1.44M floppy" => "Boot-1.44M.img",
            "2.88M floppy" => "Boot-2.88M.img",
            "hard disk" => "Boot-HardDisk.img",
            _ => "Boot-NoEmul.img",
        }
    }
}

fn platform(id: u8) -> String {
    match id {
        0 => "x86 BIOS".into(),
        1 => "PowerPC".into(),
        2 => "Mac".into(),
        0xEF => "UEFI".into(),
        other => format!("platform 0x{other:02X}"),
    }
}

/// The catalog's sector, if the volume descriptors hold an El Torito boot record.
pub(super) fn catalog_sector(descriptor: &[u8]) -> Option<u32> {
    (descriptor[0] == 0 && descriptor[7..30] == *b"EL TORITO SPECIFICATION")
        .then(|| le32(descriptor, 0x47))
}

/// The boot images the catalog at `lba` lists; images running past the disk are cut at its end.
pub(super) fn read_catalog(disk: &dyn ReadAt, lba: u32) -> io::Result<Vec<BootImage>> {
    let at = u64::from(lba) * SECTOR;
    if at + SECTOR > disk.size() {
        return Err(FormatError::io(
            STRUCTURE,
            at,
            "is past the end of the disc",
        ));
    }
    let mut c = vec![0u8; SECTOR as usize];
    disk.read_exact_at(at, &mut c)?;
    let sum = (0..32)
        .step_by(2)
        .fold(0u16, |s, i| s.wrapping_add(le16(&c, i)));
    if c[0] != 1 || c[30..32] != [0x55, 0xAA] || sum != 0 {
        return Err(FormatError::io(
            STRUCTURE,
            at,
            "the validation entry is damaged (header, key bytes or checksum)",
        ));
    }
    let mut images = vec![image(disk, &c[32..64], c[1])?];
    // Sections follow the default entry: a header (0x90, or 0x91 for the last), then its entries.
    let mut i = 64;
    while i + 32 <= c.len() && matches!(c[i], 0x90 | 0x91) {
        let (last, id, count) = (c[i] == 0x91, c[i + 1], usize::from(le16(&c, i + 2)));
        i += 32;
        for _ in 0..count {
            if i + 32 > c.len() {
                break;
            }
            if matches!(c[i], 0x88 | 0x00) {
                images.push(image(disk, &c[i..i + 32], id)?);
            }
            i += 32;
        }
        if last {
            break;
        }
    }
    Ok(images)
}

fn image(disk: &dyn ReadAt, e: &[u8], platform_id: u8) -> io::Result<BootImage> {
    let (lba, load_sectors) = (le32(e, 8), le16(e, 6));
    let (emulation, size) = match e[1] & 0x0F {
        1 => ("1.2M floppy", 1_228_800),
        2 => ("1.44M floppy", 1_474_560),
        3 => ("2.88M floppy", 2_949_120),
        4 => ("hard disk", hard_disk_size(disk, lba)?),
        _ => ("no emulation", u64::from(load_sectors.max(1)) * 512),
    };
    let start = u64::from(lba) * SECTOR;
    Ok(BootImage {
        platform: platform(platform_id),
        emulation,
        bootable: e[0] == 0x88,
        load_sectors,
        lba,
        size: size.min(disk.size().saturating_sub(start)),
    })
}

/// An emulated hard disk ends where the furthest partition of its MBR ends.
fn hard_disk_size(disk: &dyn ReadAt, lba: u32) -> io::Result<u64> {
    let mut mbr = [0u8; 512];
    let at = u64::from(lba) * SECTOR;
    if at + 512 > disk.size() {
        return Ok(0);
    }
    disk.read_exact_at(at, &mut mbr)?;
    if mbr[510..] != [0x55, 0xAA] {
        return Ok(512);
    }
    Ok((0..4)
        .map(|p| {
            let e = 446 + 16 * p;
            (u64::from(le32(&mbr, e + 8)) + u64::from(le32(&mbr, e + 12))) * 512
        })
        .max()
        .unwrap_or(512)
        .max(512))
}
