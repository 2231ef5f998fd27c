//! VHDX, Hyper-V's disk format (Microsoft's VHDX Format Specification 1.0, little-endian): two
//! headers (the one with the higher sequence number current), two region tables placing the
//! block allocation table and the metadata (block size, disk size, sector size), every structure
//! checked by CRC-32C. Each BAT entry places a payload block or says it is absent or zeros; after
//! every chunk of payload entries comes a sector bitmap entry, used only by differencing disks.

pub mod writer;

use super::blocks::{read_table, BlockDisk, Blocks, Place};
use super::{Container, Driver, Fact, Probe};
use crate::bytes::{guid_bytes, le16, le32, le64};
use crate::error::FormatError;
use crate::io::ReadAt;
use std::io;
use std::sync::Arc;

pub static DRIVER: Driver = Driver {
    name: "VHDX",
    probe,
    open,
};

fn probe(p: &Probe) -> u8 {
    match p.sniff.head.starts_with(b"vhdxfile") {
        true => 100,
        false => 0,
    }
}

const HEADERS: [u64; 2] = [64 << 10, 128 << 10];
const REGION_TABLES: [u64; 2] = [192 << 10, 256 << 10];
const REGION_TABLE_BYTES: u64 = 64 << 10;
const BAT: &str = "2DC27766-F623-4200-9D64-115E9BFD4A08";
const METADATA: &str = "8B7CA206-4790-4B9A-B8FE-575F050F886E";
const FILE_PARAMETERS: &str = "CAA16737-FA36-4D43-B3B6-33F0AA44E76B";
const DISK_SIZE: &str = "2FA54224-CD1B-4876-B211-5DBED83BF4B8";
const LOGICAL_SECTOR: &str = "8141BF1D-A96F-4709-BA47-F233A8FAAB5F";
/// File parameters' flag: the disk has a parent (a differencing disk).
const HAS_PARENT: u32 = 2;

/// Whether the structure's CRC-32C, at `at` within it, is right (computed with that field zero).
fn checksum_ok(bytes: &[u8], at: usize) -> bool {
    let mut copy = bytes.to_vec();
    copy[at..at + 4].fill(0);
    !crate::bytes::crc32c(!0, &copy) == le32(bytes, at)
}

/// BAT entry states; the rest (not present, partially present) read as absent.
const UNDEFINED: u64 = 1;
const ZERO: u64 = 2;
const UNMAPPED: u64 = 3;
const FULLY_PRESENT: u64 = 6;

struct Payload {
    block: u64,
    /// Payload blocks per sector bitmap block.
    chunk_ratio: u64,
    bat: Vec<u64>,
}

impl Blocks for Payload {
    fn block_size(&self) -> u64 {
        self.block
    }

    fn place(&self, n: u64) -> Place {
        let entry = self
            .bat
            .get((n + n / self.chunk_ratio) as usize)
            .copied()
            .unwrap_or(0);
        match entry & 7 {
            FULLY_PRESENT => Place::At(entry & !0xF_FFFF),
            ZERO | UNMAPPED | UNDEFINED => Place::Zero,
            _ => Place::Absent,
        }
    }
}

struct Vhdx {
    disk: Arc<BlockDisk<Payload>>,
    sector: u32,
    allocated: usize,
}

fn open(file: Arc<dyn ReadAt>, _: &Probe) -> io::Result<Box<dyn Container>> {
    let header = current_header(&*file)?;
    let (at, header) = header;
    if header[48..64].iter().any(|&b| b != 0) {
        return Err(FormatError::io(
            "VHDX header",
            at + 48,
            "the log holds writes not yet applied (the disk was not closed cleanly); \
             Hyper-V or qemu-img check -r all applies them",
        ));
    }
    let regions = region_table(&*file)?;
    let region = |id: &str| {
        regions
            .iter()
            .find(|r| r.0 == guid_bytes(id))
            .map(|r| (r.1, r.2))
            .ok_or_else(|| {
                FormatError::io(
                    "VHDX region table",
                    REGION_TABLES[0],
                    format!("no region {id}"),
                )
            })
    };
    let (metadata_at, metadata_len) = region(METADATA)?;
    let (bat_at, bat_len) = region(BAT)?;
    let metadata = read_table(
        "VHDX metadata region",
        metadata_at,
        u64::from(metadata_len),
        1,
        &*file,
    )?;
    let bad =
        |at: u64, problem: String| FormatError::io("VHDX metadata", metadata_at + at, problem);
    if metadata.len() < 32 || &metadata[..8] != b"metadata" {
        return Err(bad(0, "no metadata table signature".into()));
    }
    let count = le16(&metadata, 10) as usize;
    if count > 2047 || 32 + 32 * count > metadata.len() {
        return Err(bad(10, format!("{count} metadata entries")));
    }
    let item = |id: &str, len: usize| -> io::Result<&[u8]> {
        let id = guid_bytes(id);
        let entry = (0..count)
            .map(|k| &metadata[32 + 32 * k..64 + 32 * k])
            .find(|e| e[..16] == id)
            .ok_or_else(|| bad(0, "a required metadata item is missing".into()))?;
        let (offset, length) = (le32(entry, 16) as usize, le32(entry, 20) as usize);
        match offset.checked_add(len) {
            Some(end) if length >= len && end <= metadata.len() => Ok(&metadata[offset..end]),
            _ => Err(bad(
                offset as u64,
                "a metadata item past the region's end".into(),
            )),
        }
    };
    let parameters = item(FILE_PARAMETERS, 8)?;
    let (block, flags) = (u64::from(le32(parameters, 0)), le32(parameters, 4));
    let size = le64(item(DISK_SIZE, 8)?, 0);
    let sector = le32(item(LOGICAL_SECTOR, 4)?, 0);
    if !block.is_power_of_two() || !(1 << 20..=256 << 20).contains(&block) {
        return Err(bad(0, format!("blocks of {block} bytes")));
    }
    if sector != 512 && sector != 4096 {
        return Err(bad(0, format!("logical sectors of {sector} bytes")));
    }
    if size > 64 << 40 {
        return Err(bad(
            0,
            format!("a disk of {size} bytes, past VHDX's 64 TiB"),
        ));
    }
    if flags & HAS_PARENT != 0 {
        return Err(bad(
            0,
            "a differencing disk, whose parent dimg does not read yet".into(),
        ));
    }
    let chunk_ratio = (1u64 << 23) * u64::from(sector) / block;
    let payload_blocks = size.div_ceil(block);
    let entries = (payload_blocks + payload_blocks.saturating_sub(1) / chunk_ratio)
        .min(u64::from(bat_len) / 8);
    let table = read_table("VHDX block allocation table", bat_at, entries, 8, &*file)?;
    let bat: Vec<u64> = (0..entries as usize).map(|i| le64(&table, 8 * i)).collect();
    let allocated = bat
        .iter()
        .enumerate()
        .filter(|(i, &e)| {
            !(*i as u64 + 1).is_multiple_of(chunk_ratio + 1) && e & 7 == FULLY_PRESENT
        })
        .count();
    let payload = Payload {
        block,
        chunk_ratio,
        bat,
    };
    Ok(Box::new(Vhdx {
        disk: Arc::new(BlockDisk::new(file, payload, size, None)),
        sector,
        allocated,
    }))
}

/// The header with the higher sequence number of the two whose checksums hold, and where it is.
fn current_header(file: &dyn ReadAt) -> io::Result<(u64, Vec<u8>)> {
    let mut best: Option<(u64, u64, Vec<u8>)> = None;
    for at in HEADERS {
        let Ok(header) = read_table("VHDX header", at, 4096, 1, file) else {
            continue;
        };
        if &header[..4] != b"head" || !checksum_ok(&header, 4) {
            continue;
        }
        let sequence = le64(&header, 8);
        if best.as_ref().is_none_or(|b| sequence > b.0) {
            best = Some((sequence, at, header));
        }
    }
    best.map(|(_, at, h)| (at, h))
        .ok_or_else(|| FormatError::io("VHDX header", HEADERS[0], "neither header is intact"))
}

/// The first intact region table's entries: GUID, offset, length.
fn region_table(file: &dyn ReadAt) -> io::Result<Vec<([u8; 16], u64, u32)>> {
    for at in REGION_TABLES {
        let Ok(table) = read_table("VHDX region table", at, REGION_TABLE_BYTES, 1, file) else {
            continue;
        };
        if &table[..4] != b"regi" || !checksum_ok(&table, 4) {
            continue;
        }
        let count = le32(&table, 8) as usize;
        if count > 2047 {
            continue;
        }
        return Ok((0..count)
            .map(|k| {
                let e = &table[16 + 32 * k..48 + 32 * k];
                (
                    e[..16].try_into().expect("16 bytes"),
                    le64(e, 16),
                    le32(e, 24),
                )
            })
            .collect());
    }
    Err(FormatError::io(
        "VHDX region table",
        REGION_TABLES[0],
        "neither region table is intact",
    ))
}

impl Container for Vhdx {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }

    fn facts(&self) -> Vec<Fact> {
        let block = self.disk.blocks().block_size();
        vec![
            Fact::new("Block size", format!("{block} bytes")),
            Fact::new("Sector size", format!("{} bytes", self.sector)),
            Fact::new(
                "Allocated",
                format!(
                    "{} blocks ({} bytes)",
                    self.allocated,
                    self.allocated as u64 * block
                ),
            ),
        ]
    }
}
