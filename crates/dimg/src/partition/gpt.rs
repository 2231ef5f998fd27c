//! GUID partition table: header at LBA 1 (512- or 4096-byte sectors), CRC-checked, with the
//! backup header at the disk's last LBA used when the primary is damaged.

use crate::bytes::{le16, le32, le64};

use super::Partition;
use crate::io::ReadAt;
use std::io;

const MAX_TABLE_BYTES: u64 = 1 << 20;

struct Header {
    entries_lba: u64,
    count: u32,
    entry_size: u32,
    entries_crc: u32,
}

/// A header at `lba` whose signature, size and CRC are right.
fn header(disk: &dyn ReadAt, lba: u64, sector: u64) -> io::Result<Option<Header>> {
    let mut b = vec![0u8; sector as usize];
    if lba
        .checked_mul(sector)
        .is_none_or(|o| o + sector > disk.size())
    {
        return Ok(None);
    }
    disk.read_exact_at(lba * sector, &mut b)?;
    if &b[0..8] != b"EFI PART" {
        return Ok(None);
    }
    let size = le32(&b, 12) as usize;
    if !(92..=sector as usize).contains(&size) {
        return Ok(None);
    }
    let stored = le32(&b, 16);
    let mut copy = b[..size].to_vec();
    copy[16..20].fill(0);
    if crc32fast::hash(&copy) != stored {
        return Ok(None);
    }
    let h = Header {
        entries_lba: le64(&b, 72),
        count: le32(&b, 80),
        entry_size: le32(&b, 84),
        entries_crc: le32(&b, 88),
    };
    let bytes = u64::from(h.count) * u64::from(h.entry_size);
    if h.entry_size < 128 || !h.entry_size.is_multiple_of(8) || bytes > MAX_TABLE_BYTES {
        return Ok(None);
    }
    Ok(Some(h))
}

pub fn read(disk: &dyn ReadAt) -> io::Result<Option<Vec<Partition>>> {
    for sector in [512u64, 4096] {
        let last = (disk.size() / sector).saturating_sub(1);
        for lba in [1, last] {
            let Some(h) = header(disk, lba, sector)? else {
                continue;
            };
            if let Some(parts) = entries(disk, &h, sector)? {
                return Ok(Some(parts));
            }
        }
    }
    Ok(None)
}

fn entries(disk: &dyn ReadAt, h: &Header, sector: u64) -> io::Result<Option<Vec<Partition>>> {
    let len = u64::from(h.count) * u64::from(h.entry_size);
    let Some(at) = h
        .entries_lba
        .checked_mul(sector)
        .filter(|a| a + len <= disk.size())
    else {
        return Ok(None);
    };
    let mut table = vec![0u8; len as usize];
    disk.read_exact_at(at, &mut table)?;
    if crc32fast::hash(&table) != h.entries_crc {
        return Ok(None);
    }
    let mut parts = Vec::new();
    for (i, e) in table.chunks(h.entry_size as usize).enumerate() {
        let kind: [u8; 16] = e[0..16].try_into().expect("16 bytes");
        if kind == [0; 16] {
            continue;
        }
        let (first, last) = (le64(e, 32), le64(e, 40));
        if last < first {
            continue;
        }
        let units: Vec<u16> = e[56..128]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let name = String::from_utf16_lossy(&units)
            .trim_end_matches('\0')
            .to_string();
        parts.push(Partition {
            index: i as u32 + 1,
            name,
            kind: type_name(&kind),
            start: first.saturating_mul(sector),
            size: (last - first + 1).saturating_mul(sector),
        });
    }
    Ok(Some(parts))
}

/// A GUID as text: the first three fields are little-endian on disk.
pub fn guid_text(g: &[u8; 16]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}",
        le32(g, 0),
        le16(g, 4),
        le16(g, 6),
        g[8],
        g[9],
        g[10..16]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    )
}

fn type_name(g: &[u8; 16]) -> String {
    let text = guid_text(g);
    let known = match text.as_str() {
        "48465300-0000-11AA-AA11-00306543ECAC" => "Apple_HFS",
        "7C3457EF-0000-11AA-AA11-00306543ECAC" => "Apple_APFS",
        "426F6F74-0000-11AA-AA11-00306543ECAC" => "Apple_Boot",
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "EFI",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => "Microsoft Basic Data",
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "Linux filesystem",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "Linux swap",
        "21686148-6449-6E6F-744E-656564454649" => "BIOS boot",
        _ => return text,
    };
    known.to_string()
}
