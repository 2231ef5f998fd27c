//! UDF (ECMA-167 3rd edition, OSTA UDF 1.02 to 2.60): the descriptors' tags and the shapes the
//! reader and the writer share — tag identifiers, the tag checksum and CRC, OSTA CS0
//! names, timestamps with their time zone, allocation descriptors and the ICB's file types.

mod read;
mod write;

pub use read::Udf;
pub use write::{build, Built, Options, Revision};

use crate::bytes::{le16, le32, utf16_be};
use crate::error::FormatError;
use std::io;

/// Descriptor tag identifiers (ECMA-167 3/7.2.1, 4/7.2.1).
pub(crate) const TAG_PVD: u16 = 1;
pub(crate) const TAG_AVDP: u16 = 2;
pub(crate) const TAG_VDP: u16 = 3;
pub(crate) const TAG_PD: u16 = 5;
pub(crate) const TAG_LVD: u16 = 6;
pub(crate) const TAG_TD: u16 = 8;
pub(crate) const TAG_LVID: u16 = 9;
pub(crate) const TAG_FSD: u16 = 256;
pub(crate) const TAG_FID: u16 = 257;
pub(crate) const TAG_AED: u16 = 258;
pub(crate) const TAG_IE: u16 = 259;
pub(crate) const TAG_TE: u16 = 260;
pub(crate) const TAG_FE: u16 = 261;
pub(crate) const TAG_EFE: u16 = 266;

/// ICB file types (ECMA-167 4/14.6.6, UDF 2.60 2.3.5.2).
pub(crate) const FT_DIRECTORY: u8 = 4;
pub(crate) const FT_FILE: u8 = 5;
pub(crate) const FT_BLOCK: u8 = 6;
pub(crate) const FT_CHAR: u8 = 7;
pub(crate) const FT_FIFO: u8 = 9;
pub(crate) const FT_SOCKET: u8 = 10;
pub(crate) const FT_SYMLINK: u8 = 12;
pub(crate) const FT_STREAM_DIR: u8 = 13;
pub(crate) const FT_VAT20: u8 = 248;
pub(crate) const FT_REALTIME: u8 = 249;
pub(crate) const FT_METADATA: u8 = 250;
pub(crate) const FT_METADATA_MIRROR: u8 = 251;

/// File characteristics of a file identifier descriptor (ECMA-167 4/14.4.3).
pub(crate) const FID_DELETED: u8 = 0x04;
pub(crate) const FID_PARENT: u8 = 0x08;

pub(crate) fn bad(structure: &'static str, at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(structure, at, problem)
}

/// A descriptor tag's checksum: the sum of its 16 bytes but the checksum's own (byte 4).
pub(crate) fn tag_checksum(b: &[u8]) -> u8 {
    b[..16]
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 4)
        .fold(0u8, |sum, (_, &v)| sum.wrapping_add(v))
}

/// Makes the tag at the start of `descriptor` whole for what the descriptor now holds: its CRC
/// over the length the tag gives, then its checksum.
pub fn seal_tag(descriptor: &mut [u8]) {
    let crc_len = usize::from(le16(descriptor, 10));
    let crc = crate::bytes::crc16_xmodem(&descriptor[16..16 + crc_len]);
    descriptor[8..10].copy_from_slice(&crc.to_le_bytes());
    descriptor[4] = tag_checksum(descriptor);
}

/// Checks the tag at the start of `b` (the descriptor as read): an identifier among `want`, its
/// checksum, its CRC where the descriptor's CRC length lies within `b`, and its location where
/// `location` is known. The identifier.
pub(crate) fn check_tag(
    b: &[u8],
    want: &[u16],
    location: Option<u32>,
    structure: &'static str,
    at: u64,
) -> io::Result<u16> {
    if b.len() < 16 {
        return Err(bad(structure, at, "shorter than a descriptor tag"));
    }
    let id = le16(b, 0);
    if !want.contains(&id) {
        return Err(bad(
            structure,
            at,
            format!("a descriptor tag of identifier {id}, not {want:?}"),
        ));
    }
    if tag_checksum(b) != b[4] {
        return Err(bad(
            structure,
            at,
            format!(
                "its tag's checksum is {:#04x}, the tag says {:#04x}",
                tag_checksum(b),
                b[4]
            ),
        ));
    }
    let crc_len = usize::from(le16(b, 10));
    if let Some(body) = b.get(16..16 + crc_len) {
        let crc = crate::bytes::crc16_xmodem(body);
        if crc != le16(b, 8) {
            return Err(bad(
                structure,
                at,
                format!(
                    "its CRC is {crc:#06x} over {crc_len} bytes, the tag says {:#06x}",
                    le16(b, 8)
                ),
            ));
        }
    }
    if let Some(want) = location {
        if le32(b, 12) != want {
            return Err(bad(
                structure,
                at,
                format!(
                    "its tag says it is at block {}, it was read at block {want}",
                    le32(b, 12)
                ),
            ));
        }
    }
    Ok(id)
}

/// OSTA Compressed Unicode (UDF 2.60 2.1.1): a compression ID, 8 (one byte a character) or 16
/// (big-endian UTF-16), then the characters; 254 and 255 are 8 and 16 for deleted names.
pub(crate) fn cs0(b: &[u8]) -> String {
    match b.split_first() {
        Some((8 | 254, rest)) => rest.iter().map(|&c| char::from(c)).collect(),
        Some((16 | 255, rest)) => utf16_be(&rest[..rest.len() & !1]),
        _ => String::new(),
    }
}

/// A dstring: a fixed field of CS0 whose last byte is the length used.
pub(crate) fn dstring(field: &[u8]) -> String {
    let Some((&used, body)) = field.split_last() else {
        return String::new();
    };
    cs0(&body[..usize::from(used).min(body.len())])
}

/// A timestamp (ECMA-167 1/7.3) as seconds since 1970 UTC: local time with its offset from UTC
/// in minutes, where one is given.
pub(crate) fn timestamp(b: &[u8]) -> Option<i64> {
    let type_zone = le16(b, 0);
    let year = i64::from(le16(b, 2) as i16);
    let (month, day, hour, minute, second) = (b[4], b[5], b[6], b[7], b[8]);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || !(1..=9999).contains(&year)
    {
        return None;
    }
    let local = crate::fs::days_from_civil(year, i64::from(month), i64::from(day)) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second);
    // A 12-bit two's complement offset; -2047 is "not specified".
    let offset = i64::from(((type_zone << 4) as i16) >> 4);
    let east = match type_zone >> 12 {
        1 if offset != -2047 && offset.abs() <= 1440 => offset * 60,
        _ => 0,
    };
    Some(local - east)
}

/// UDF permissions (ECMA-167 4/14.9.5: execute, write, read, change attributes, delete for
/// other, group and owner, five bits each) and the ICB's setuid, setgid and sticky flags, as a
/// POSIX mode's permission bits.
pub(crate) fn mode(permissions: u32, icb_flags: u16) -> u32 {
    let three = |shift: u32| (permissions >> shift) & 7;
    let mut mode = three(0) | (three(5) << 3) | (three(10) << 6);
    for (flag, bit) in [(0x40u16, 0o4000u32), (0x80, 0o2000), (0x100, 0o1000)] {
        if icb_flags & flag != 0 {
            mode |= bit;
        }
    }
    mode
}

/// An address in the logical volume: a block of the partition a partition map names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Lb {
    pub block: u32,
    pub part: u16,
}

impl Lb {
    pub(crate) fn read(b: &[u8], at: usize) -> Lb {
        Lb {
            block: le32(b, at),
            part: le16(b, at + 4),
        }
    }

    /// A number no other ICB of the volume has.
    pub(crate) fn id(self) -> u64 {
        (u64::from(self.part) << 32) | u64::from(self.block)
    }
}

/// How an extent is recorded (ECMA-167 4/14.14.1.1): the top two bits of its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Extent {
    Recorded,
    /// Allocated and not recorded, or neither: zeros to a reader.
    Zeros,
    /// The next extent of allocation descriptors.
    Continue,
}

/// An allocation descriptor: an extent of `len` bytes at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ad {
    pub kind: Extent,
    pub len: u32,
    pub at: Lb,
}

/// The ICB's allocation descriptor types (ECMA-167 4/14.6.8).
pub(crate) const AD_SHORT: u16 = 0;
pub(crate) const AD_LONG: u16 = 1;
pub(crate) const AD_EXTENDED: u16 = 2;
pub(crate) const AD_EMBEDDED: u16 = 3;

/// The allocation descriptors in `area`, of type `ad_type` (short ones lie in `part`), up to
/// the first of length zero.
pub(crate) fn parse_ads(area: &[u8], ad_type: u16, part: u16) -> Vec<Ad> {
    let size = match ad_type {
        AD_SHORT => 8,
        AD_LONG => 16,
        AD_EXTENDED => 20,
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    for d in area.chunks_exact(size) {
        let raw = le32(d, 0);
        let len = raw & 0x3FFF_FFFF;
        if len == 0 {
            break;
        }
        let at = match ad_type {
            AD_SHORT => Lb {
                block: le32(d, 4),
                part,
            },
            AD_LONG => Lb::read(d, 4),
            _ => Lb::read(d, 12),
        };
        let kind = match raw >> 30 {
            0 => Extent::Recorded,
            3 => Extent::Continue,
            _ => Extent::Zeros,
        };
        out.push(Ad { kind, len, at });
    }
    out
}

/// A symbolic link's target from its path components (ECMA-167 4/14.16.1).
pub(crate) fn symlink_target(b: &[u8]) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut absolute = false;
    let mut at = 0;
    while at < b.len() {
        let head = b.get(at..at + 4)?;
        let len = usize::from(head[1]);
        let name = b.get(at + 4..at + 4 + len)?;
        match head[0] {
            // The root, or the root of the file system this link is on.
            1 | 2 => {
                parts.clear();
                absolute = true;
            }
            3 => parts.push("..".into()),
            4 => parts.push(".".into()),
            5 => parts.push(cs0(name)),
            _ => return None,
        }
        at += 4 + len;
    }
    let joined = parts.join("/");
    Some(match absolute {
        true => format!("/{joined}"),
        false => joined,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cs0_names_in_8_and_16_bits() {
        assert_eq!(cs0(b"\x08Caf\xe9"), "Café");
        assert_eq!(
            cs0(&[16, 0x00, 0x41, 0x26, 0x03, 0xD8, 0x3D, 0xDE, 0x00]),
            "A☃😀"
        );
        assert_eq!(cs0(&[16, 0, 0x41, 0x42]), "A", "an odd byte is left out");
        assert_eq!(cs0(&[]), "");
        let mut field = [0u8; 32];
        field[..4].copy_from_slice(b"\x08abc");
        field[31] = 4;
        assert_eq!(dstring(&field), "abc");
        field[31] = 200;
        assert_eq!(
            dstring(&field),
            "abc\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
        );
    }

    #[test]
    fn timestamps_take_their_time_zone() {
        // 2020-02-29 12:34:56 local, UTC+02:00 (120 minutes east), type 1.
        let mut t = [0u8; 12];
        t[0..2].copy_from_slice(&(0x1000u16 | 120).to_le_bytes());
        t[2..4].copy_from_slice(&2020u16.to_le_bytes());
        t[4..9].copy_from_slice(&[2, 29, 12, 34, 56]);
        let utc = crate::fs::days_from_civil(2020, 2, 29) * 86_400 + 12 * 3600 + 34 * 60 + 56;
        assert_eq!(timestamp(&t), Some(utc - 7200));
        // UTC-05:00 in 12 bits.
        t[0..2].copy_from_slice(&(0x1000u16 | (0x1000 - 300)).to_le_bytes());
        assert_eq!(timestamp(&t), Some(utc + 5 * 3600));
        // Not specified: -2047.
        t[0..2].copy_from_slice(&(0x1000u16 | (0x1000 - 2047)).to_le_bytes());
        assert_eq!(timestamp(&t), Some(utc));
        t[4] = 13;
        assert_eq!(timestamp(&t), None);
    }

    #[test]
    fn permissions_become_modes() {
        // Owner rwx (0x1C00 with delete and chattr bits too), group r-x, other r--.
        let p = 0x7C00 | (0x05 << 5) | 0x04;
        assert_eq!(mode(p, 0), 0o754);
        assert_eq!(mode(p, 0x40 | 0x100), 0o5754);
    }

    #[test]
    fn symlink_components_join_into_a_path() {
        let mut b = vec![2, 0, 0, 0];
        b.extend([5, 4, 0, 0, 8, b'u', b's', b'r']);
        b.extend([3, 0, 0, 0]);
        b.extend([5, 3, 0, 0, 8, b'b', b'n']);
        assert_eq!(symlink_target(&b).as_deref(), Some("/usr/../bn"));
        assert_eq!(symlink_target(&[4, 0, 0, 0]).as_deref(), Some("."));
        assert_eq!(symlink_target(&[5, 9, 0, 0, 8]), None, "cut short");
    }

    #[test]
    fn tags_are_checked() {
        let mut d = vec![0u8; 64];
        d[0..2].copy_from_slice(&TAG_FID.to_le_bytes());
        d[12..16].copy_from_slice(&7u32.to_le_bytes());
        d[10..12].copy_from_slice(&48u16.to_le_bytes());
        d[20] = 0x5A;
        seal_tag(&mut d);
        assert_eq!(check_tag(&d, &[TAG_FID], Some(7), "t", 0).unwrap(), TAG_FID);
        assert!(check_tag(&d, &[TAG_FID], Some(8), "t", 0).is_err());
        assert!(check_tag(&d, &[TAG_FE], None, "t", 0).is_err());
        d[30] ^= 1;
        assert!(check_tag(&d, &[TAG_FID], None, "t", 0).is_err(), "CRC");
        d[30] ^= 1;
        d[5] ^= 1;
        assert!(check_tag(&d, &[TAG_FID], None, "t", 0).is_err(), "checksum");
    }
}
