//! The 512-byte 'koly' trailer (UDIFResourceFile), every field. Big-endian.

use crate::bytes::{be32, be64};

use crate::error::FormatError;
use std::io;

pub const SIZE: usize = 512;
const STRUCTURE: &str = "UDIF koly trailer";

/// A checksum as UDIF stores it: a type, a bit count and up to 128 bytes of value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    pub kind: u32,
    pub bits: u32,
    pub data: [u8; 128],
}

pub const CHECKSUM_CRC32: u32 = 2;

impl Checksum {
    pub fn parse(b: &[u8]) -> Self {
        Checksum {
            kind: be32(b, 0),
            bits: be32(b, 4),
            data: b[8..136].try_into().expect("136-byte checksum field"),
        }
    }

    /// The CRC-32 value, when this is a CRC-32 checksum.
    pub fn crc32(&self) -> Option<u32> {
        (self.kind == CHECKSUM_CRC32 && self.bits == 32).then(|| be32(&self.data, 0))
    }

    /// The value's bytes as stored (Bits / 8 of them), as the master checksum consumes them.
    pub fn value_bytes(&self) -> &[u8] {
        &self.data[..(self.bits as usize / 8).min(128)]
    }
}

#[derive(Clone, Debug)]
pub struct Koly {
    pub version: u32,
    pub flags: u32,
    pub running_data_fork_offset: u64,
    pub data_fork_offset: u64,
    pub data_fork_length: u64,
    pub rsrc_fork_offset: u64,
    pub rsrc_fork_length: u64,
    pub segment_number: u32,
    pub segment_count: u32,
    pub segment_id: [u8; 16],
    pub data_fork_checksum: Checksum,
    pub xml_offset: u64,
    pub xml_length: u64,
    pub code_signature_offset: u64,
    pub code_signature_length: u64,
    pub master_checksum: Checksum,
    pub image_variant: u32,
    pub sector_count: u64,
}

impl Koly {
    /// Parses the trailer found at `offset` of a file of `file_size` bytes and checks that every
    /// region it points at lies inside the file.
    pub fn parse(b: &[u8; SIZE], offset: u64, file_size: u64) -> io::Result<Koly> {
        let bad = |problem: String| FormatError::io(STRUCTURE, offset, problem);
        if &b[0..4] != b"koly" {
            return Err(bad("no 'koly' signature".into()));
        }
        let koly = Koly {
            version: be32(b, 0x04),
            flags: be32(b, 0x0C),
            running_data_fork_offset: be64(b, 0x10),
            data_fork_offset: be64(b, 0x18),
            data_fork_length: be64(b, 0x20),
            rsrc_fork_offset: be64(b, 0x28),
            rsrc_fork_length: be64(b, 0x30),
            segment_number: be32(b, 0x38),
            segment_count: be32(b, 0x3C),
            segment_id: b[0x40..0x50].try_into().expect("16 bytes"),
            data_fork_checksum: Checksum::parse(&b[0x50..0xD8]),
            xml_offset: be64(b, 0xD8),
            xml_length: be64(b, 0xE0),
            code_signature_offset: be64(b, 0x128),
            code_signature_length: be64(b, 0x130),
            master_checksum: Checksum::parse(&b[0x160..0x1E8]),
            image_variant: be32(b, 0x1E8),
            sector_count: be64(b, 0x1EC),
        };
        if koly.version != 4 {
            return Err(bad(format!("version {} (expected 4)", koly.version)));
        }
        let header_size = be32(b, 0x08);
        if header_size != SIZE as u32 {
            return Err(bad(format!("header size {header_size} (expected 512)")));
        }
        let inside = |start: u64, len: u64| start.checked_add(len).is_some_and(|end| end <= offset);
        if !inside(koly.data_fork_offset, koly.data_fork_length) {
            return Err(bad(format!(
                "data fork [{}, +{}) runs past the trailer at {offset} (file of {file_size} bytes truncated?)",
                koly.data_fork_offset, koly.data_fork_length
            )));
        }
        if !inside(koly.xml_offset, koly.xml_length) {
            return Err(bad(format!(
                "property list [{}, +{}) runs past the trailer at {offset}",
                koly.xml_offset, koly.xml_length
            )));
        }
        if !inside(koly.rsrc_fork_offset, koly.rsrc_fork_length) {
            return Err(bad(format!(
                "resource fork [{}, +{}) runs past the trailer at {offset}",
                koly.rsrc_fork_offset, koly.rsrc_fork_length
            )));
        }
        if koly.xml_length == 0 && koly.rsrc_fork_length == 0 {
            return Err(bad(
                "neither a property list nor a resource fork describes the chunks".into(),
            ));
        }
        if koly.sector_count > u64::MAX / 512 {
            return Err(bad(format!("sector count {} is absurd", koly.sector_count)));
        }
        Ok(koly)
    }
}
