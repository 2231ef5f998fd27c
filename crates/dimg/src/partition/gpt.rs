//! GUID partition table: header at LBA 1 (512- or 4096-byte sectors), CRC-checked, with the
//! backup header at the disk's last LBA used when the primary is damaged.

use crate::bytes::Seed;
use crate::bytes::{guid_bytes, le16, le32, le64};

use super::Partition;
use crate::error::FormatError;
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

// Writing, as hdiutil does: 512-byte sectors, 128 entries of 128 bytes at each end of the disk.
const SECTOR: u64 = 512;
const ENTRY_COUNT: usize = 128;
const ENTRY_SIZE: usize = 128;
/// Sectors the entry array takes.
pub const TABLE_SECTORS: u64 = (ENTRY_COUNT * ENTRY_SIZE) as u64 / SECTOR;

/// A version 4 GUID in GPT's byte order (its first three fields little-endian): random, or
/// derived from a reproducible image's `seed`.
fn new_guid(seed: Option<&Seed>, what: &str) -> [u8; 16] {
    let mut g = crate::bytes::uuid(seed, what);
    g[..4].reverse();
    g[4..6].reverse();
    g[6..8].reverse();
    g
}

/// Fills in what differs between the primary header and the backup — where it is, where the
/// other is, where its entry array is — and both CRCs. `last` is the disk's last sector.
fn seal(h: &mut [u8], at: u64, other: u64, last: u64, table: u64, entries: &[u8]) {
    h[24..32].copy_from_slice(&at.to_le_bytes());
    h[32..40].copy_from_slice(&other.to_le_bytes());
    h[48..56].copy_from_slice(&(last - 1 - TABLE_SECTORS).to_le_bytes());
    h[72..80].copy_from_slice(&table.to_le_bytes());
    h[88..92].copy_from_slice(&crc32fast::hash(entries).to_le_bytes());
    h[16..20].fill(0);
    let crc = crc32fast::hash(&h[..92]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
}

/// A GPT of one partition of type `kind` from sector `first`, `sectors` long: what goes before it
/// (protective MBR, primary header, entries, padding) and what goes after it (the backup
/// entries and header). A reproducible image's `seed` gives its GUIDs.
pub fn single(
    kind: &str,
    first: u64,
    sectors: u64,
    name: &str,
    seed: Option<&Seed>,
) -> (Vec<u8>, Vec<u8>) {
    let last = first + sectors + TABLE_SECTORS; // the backup header
    let mut entries = vec![0u8; ENTRY_COUNT * ENTRY_SIZE];
    entries[..16].copy_from_slice(&guid_bytes(kind));
    entries[16..32].copy_from_slice(&new_guid(seed, "GPT partition"));
    entries[32..40].copy_from_slice(&first.to_le_bytes());
    entries[40..48].copy_from_slice(&(first + sectors - 1).to_le_bytes());
    for (i, unit) in name.encode_utf16().take(36).enumerate() {
        entries[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
    }
    let mut template = vec![0u8; SECTOR as usize];
    template[..8].copy_from_slice(b"EFI PART");
    template[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    template[12..16].copy_from_slice(&92u32.to_le_bytes());
    template[40..48].copy_from_slice(&(2 + TABLE_SECTORS).to_le_bytes());
    template[56..72].copy_from_slice(&new_guid(seed, "GPT disk"));
    template[80..84].copy_from_slice(&(ENTRY_COUNT as u32).to_le_bytes());
    template[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
    let (mut primary, mut backup) = (template.clone(), template);
    seal(&mut primary, 1, last, last, 2, &entries);
    seal(&mut backup, last, 1, last, last - TABLE_SECTORS, &entries);
    let mut head = super::mbr::single(0xEE, 1, last);
    head.extend(primary);
    head.extend(&entries);
    head.resize((first * SECTOR) as usize, 0);
    let mut tail = entries;
    tail.extend(backup);
    (head, tail)
}

/// A disk's GPT as `resize` changes it: the disk grows or shrinks at its end, and so does its
/// last partition.
pub struct Resizable {
    primary: Vec<u8>,
    entries: Vec<u8>,
    /// The last partition's entry in the array.
    entry: usize,
    /// The disk's last sector, where the backup header is.
    last: u64,
}

impl Resizable {
    /// The GPT of `disk`, if it has one in the usual shape (its primary header at sector 1).
    pub fn read(disk: &dyn ReadAt) -> io::Result<Option<Resizable>> {
        let mut h = vec![0u8; SECTOR as usize];
        disk.read_exact_at(SECTOR, &mut h)?;
        if &h[..8] != b"EFI PART" {
            return Ok(None);
        }
        let (table, count, size) = (le64(&h, 72), le32(&h, 80) as usize, le32(&h, 84) as usize);
        if size != ENTRY_SIZE || count * size != (TABLE_SECTORS * SECTOR) as usize {
            return Err(FormatError::io(
                "GPT header",
                SECTOR,
                format!("{count} entries of {size} bytes: dimg resizes the usual 128 × 128"),
            ));
        }
        let mut entries = vec![0u8; count * size];
        disk.read_exact_at(table * SECTOR, &mut entries)?;
        let used = (0..count).filter(|&i| entries[i * size..i * size + 16].iter().any(|&b| b != 0));
        let entry = used
            .max_by_key(|&i| le64(&entries, i * size + 32))
            .ok_or_else(|| FormatError::io("GPT", SECTOR, "has no partition"))?;
        Ok(Some(Resizable {
            last: le64(&h, 32),
            primary: h,
            entries,
            entry,
        }))
    }

    /// Where the last partition starts and how long it is, in bytes.
    pub fn last_partition(&self) -> (u64, u64) {
        let e = &self.entries[self.entry * ENTRY_SIZE..];
        let (first, end) = (le64(e, 32), le64(e, 40));
        (first * SECTOR, (end + 1 - first) * SECTOR)
    }

    /// What to write for a disk of `size` bytes, each piece at its offset: the last partition
    /// resized, the backup moved to the new end (the old one cleared), the protective MBR's
    /// size (as far as 32 bits count).
    pub fn resized(&self, size: u64) -> Vec<(u64, Vec<u8>)> {
        let last = size / SECTOR - 1;
        let mut entries = self.entries.clone();
        let e = self.entry * ENTRY_SIZE;
        let end = le64(&entries, e + 40) + last - self.last;
        entries[e + 40..e + 48].copy_from_slice(&end.to_le_bytes());
        let (mut primary, mut backup) = (self.primary.clone(), self.primary.clone());
        seal(&mut primary, 1, last, last, 2, &entries);
        seal(&mut backup, last, 1, last, last - TABLE_SECTORS, &entries);
        let protective = (last.min(u64::from(u32::MAX)) as u32)
            .to_le_bytes()
            .to_vec();
        let mut writes = vec![
            (446 + 12, protective),
            (SECTOR, primary),
            (2 * SECTOR, entries.clone()),
        ];
        let old_backup = (self.last - TABLE_SECTORS) * SECTOR;
        if old_backup + (TABLE_SECTORS + 1) * SECTOR <= size && self.last != last {
            writes.push((
                old_backup,
                vec![0u8; ((TABLE_SECTORS + 1) * SECTOR) as usize],
            ));
        }
        writes.push(((last - TABLE_SECTORS) * SECTOR, entries));
        writes.push((last * SECTOR, backup));
        writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stored_mixed_endian() {
        let g = guid_bytes("48465300-0000-11AA-AA11-00306543ECAC");
        assert_eq!(guid_text(&g), "48465300-0000-11AA-AA11-00306543ECAC");
    }
}
