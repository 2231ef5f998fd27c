//! Writing a dynamic VHDX as Hyper-V lays one out: the file type identifier, two headers, two
//! region tables, an empty 1 MiB log, the metadata region and the block allocation table in the
//! first megabytes (their size known from the disk's), then each 32 MiB payload block that holds
//! data in disk order. Every structure carries its CRC-32C.

use super::{
    BAT, DISK_SIZE, FILE_PARAMETERS, FULLY_PRESENT, HEADERS, LOGICAL_SECTOR, METADATA,
    REGION_TABLES, REGION_TABLE_BYTES,
};
use crate::bytes::{crc32c, guid_bytes, uuid, Seed};
use crate::container::blocks::{whole_sectors, BlockLayout};

/// Hyper-V's block for a dynamic disk: 32 MiB.
const BLOCK: u64 = 32 << 20;
const MIB: u64 = 1 << 20;
const LOG_AT: u64 = MIB;
const METADATA_AT: u64 = 2 * MIB;
const BAT_AT: u64 = 3 * MIB;
/// Payload blocks a sector bitmap block covers, for 512-byte logical sectors.
const CHUNK_RATIO: u64 = (1 << 23) * 512 / BLOCK;
/// The specification's largest disk: 64 TiB.
const MAX_SIZE: u64 = 64 << 40;
const VIRTUAL_DISK_ID: &str = "BECA12AB-B2E6-4523-93EF-C309E000C746";
const PHYSICAL_SECTOR: &str = "CDA348C7-445D-4471-9CC9-E9885251C556";

pub struct Layout {
    size: u64,
    /// The file and data write GUIDs, and the disk's own.
    ids: [[u8; 16]; 3],
}

impl Layout {
    /// A disk of `size` bytes; its identifiers from `seed` when reproducible.
    pub fn new(size: u64, seed: Option<&Seed>) -> Result<Layout, String> {
        whole_sectors("a VHDX", size)?;
        if size > MAX_SIZE {
            return Err(format!(
                "a disk of {size} bytes: a VHDX holds at most {MAX_SIZE} bytes"
            ));
        }
        Ok(Layout {
            size,
            ids: ["VHDX file write", "VHDX data write", "VHDX disk"].map(|what| uuid(seed, what)),
        })
    }

    /// BAT entries: one per payload block, and after every chunk of them its bitmap's.
    fn entries(&self) -> u64 {
        let blocks = self.size.div_ceil(BLOCK);
        blocks + blocks.saturating_sub(1) / CHUNK_RATIO
    }

    fn bat_bytes(&self) -> u64 {
        (8 * self.entries()).next_multiple_of(MIB)
    }

    fn header(&self, sequence: u64) -> Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[0..4].copy_from_slice(b"head");
        h[8..16].copy_from_slice(&sequence.to_le_bytes());
        h[16..32].copy_from_slice(&self.ids[0]);
        h[32..48].copy_from_slice(&self.ids[1]);
        // No log GUID: the log holds nothing to replay.
        h[66..68].copy_from_slice(&1u16.to_le_bytes());
        h[68..72].copy_from_slice(&(MIB as u32).to_le_bytes());
        h[72..80].copy_from_slice(&LOG_AT.to_le_bytes());
        checksummed(h)
    }

    fn region_table(&self) -> Vec<u8> {
        let mut t = vec![0u8; REGION_TABLE_BYTES as usize];
        t[0..4].copy_from_slice(b"regi");
        t[8..12].copy_from_slice(&2u32.to_le_bytes());
        let regions = [
            (BAT, BAT_AT, self.bat_bytes()),
            (METADATA, METADATA_AT, MIB),
        ];
        for (k, (id, at, len)) in regions.into_iter().enumerate() {
            let e = &mut t[16 + 32 * k..48 + 32 * k];
            e[..16].copy_from_slice(&guid_bytes(id));
            e[16..24].copy_from_slice(&at.to_le_bytes());
            e[24..28].copy_from_slice(&(len as u32).to_le_bytes());
            // Required: a reader that does not know the region must not open the file.
            e[28..32].copy_from_slice(&1u32.to_le_bytes());
        }
        checksummed(t)
    }

    /// The metadata table and its items (16 bytes apart from 64 KiB on): the block size,
    /// the disk's size and ID, its logical and physical sector sizes.
    fn metadata_region(&self) -> Vec<u8> {
        let mut m = vec![0u8; (64 << 10) + 5 * 16];
        m[0..8].copy_from_slice(b"metadata");
        let items: [(&str, Vec<u8>, u32); 5] = [
            (
                FILE_PARAMETERS,
                [BLOCK as u32, 0].map(u32::to_le_bytes).concat(),
                4,
            ),
            (DISK_SIZE, self.size.to_le_bytes().to_vec(), 6),
            (VIRTUAL_DISK_ID, self.ids[2].to_vec(), 6),
            (LOGICAL_SECTOR, 512u32.to_le_bytes().to_vec(), 6),
            (PHYSICAL_SECTOR, 4096u32.to_le_bytes().to_vec(), 6),
        ];
        m[10..12].copy_from_slice(&(items.len() as u16).to_le_bytes());
        for (k, (id, value, flags)) in items.into_iter().enumerate() {
            let offset = (64 << 10) + 16 * k;
            m[offset..offset + value.len()].copy_from_slice(&value);
            let e = &mut m[32 + 32 * k..64 + 32 * k];
            e[..16].copy_from_slice(&guid_bytes(id));
            e[16..20].copy_from_slice(&(offset as u32).to_le_bytes());
            e[20..24].copy_from_slice(&(value.len() as u32).to_le_bytes());
            // Flags: a property of the virtual disk (2), required (4).
            e[24..28].copy_from_slice(&flags.to_le_bytes());
        }
        m
    }
}

/// `bytes` with its CRC-32C at 4, computed with that field zero.
fn checksummed(mut bytes: Vec<u8>) -> Vec<u8> {
    let sum = !crc32c(!0, &bytes);
    bytes[4..8].copy_from_slice(&sum.to_le_bytes());
    bytes
}

impl BlockLayout for Layout {
    fn block_size(&self) -> u64 {
        BLOCK
    }

    fn data_at(&self) -> u64 {
        BAT_AT + self.bat_bytes()
    }

    fn metadata(&self, stored: &[u64]) -> Vec<(u64, Vec<u8>)> {
        let mut bat = vec![0u8; self.bat_bytes() as usize];
        for (k, &number) in (0..).zip(stored) {
            let at = self.stored_at(k);
            let entry = number + number / CHUNK_RATIO;
            bat[8 * entry as usize..][..8].copy_from_slice(&(at | FULLY_PRESENT).to_le_bytes());
        }
        let mut identifier = vec![0u8; 64 << 10];
        identifier[..8].copy_from_slice(b"vhdxfile");
        for (k, unit) in "dimg".encode_utf16().enumerate() {
            identifier[8 + 2 * k..10 + 2 * k].copy_from_slice(&unit.to_le_bytes());
        }
        let mut pieces = vec![(0, identifier)];
        for (sequence, at) in (1..).zip(HEADERS) {
            pieces.push((at, self.header(sequence)));
        }
        for at in REGION_TABLES {
            pieces.push((at, self.region_table()));
        }
        pieces.push((METADATA_AT, self.metadata_region()));
        pieces.push((BAT_AT, bat));
        pieces
    }
}
