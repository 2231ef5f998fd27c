//! An ASIF image as convert and create write it: the header and its two directories in the first
//! chunks, the metadata chunk, the disk's chunks that hold data in disk order, then the tables
//! that map them. Every chunk written is whole (its state 01).

use super::{Geometry, CHUNK, CHUNK_NUMBER, HEADER_BYTES, MAX_CHUNK, MAX_SIZE, WRITTEN};
use crate::bytes::{uuid, uuid_text, Seed};

/// The block size dimg writes: 512 bytes, as macOS does.
const BLOCK: u64 = 512;
/// The metadata header's size, before its property list.
const META_HEADER_SIZE: u64 = 0x200;

/// Checks a chunk size asked for (`-imagekey asif-chunk-size=BYTES`): a power of two from
/// macOS's 1 MiB up. (Smaller chunks are readable, but a directory of 4 PiB in them runs to
/// megabytes.)
pub fn chunk_size(bytes: u64) -> Result<u64, String> {
    match bytes.is_power_of_two() && (CHUNK..=MAX_CHUNK).contains(&bytes) {
        true => Ok(bytes),
        false => Err(format!(
            "a chunk of {bytes} bytes: give a power of two from {CHUNK} to {MAX_CHUNK} bytes"
        )),
    }
}

/// A directory as stored: its version, then each table's chunk number.
pub(super) fn directory(version: u64, tables: &[u64]) -> Vec<u8> {
    std::iter::once(version)
        .chain(tables.iter().copied())
        .flat_map(u64::to_be_bytes)
        .collect()
}

/// An entry for a chunk all of whose blocks are written, at chunk `number` of the file.
pub(super) fn entry(number: u64) -> [u8; 8] {
    (WRITTEN | (number & CHUNK_NUMBER)).to_be_bytes()
}

/// Where the chunks of a new image go, as they are appended.
pub struct Layout {
    geometry: Geometry,
    size: u64,
    directories: [u64; 2],
    uuid: [u8; 16],
    stable_uuid: [u8; 16],
    /// The chunk in the file that holds the metadata.
    metadata: u64,
    /// Each logical chunk stored and its chunk in the file, in disk order.
    chunks: Vec<(u64, u64)>,
    next: u64,
}

impl Layout {
    /// The layout of a disk of `size` bytes in chunks of `chunk` bytes (checked by
    /// [`chunk_size`]), its identifiers from `seed` or random; why not when the disk is larger
    /// than an ASIF image holds.
    pub fn new(chunk: u64, size: u64, seed: Option<&Seed>) -> Result<Layout, String> {
        let geometry = Geometry {
            chunk,
            block: BLOCK,
            max_size: MAX_SIZE,
        };
        if size.div_ceil(BLOCK) * BLOCK > MAX_SIZE - chunk {
            return Err(format!(
                "a disk of {size} bytes: an ASIF image holds at most {} bytes",
                MAX_SIZE - chunk
            ));
        }
        let first = HEADER_BYTES as u64;
        let second = (first + geometry.directory_bytes()).next_multiple_of(BLOCK);
        let metadata = (second + geometry.directory_bytes()).div_ceil(chunk);
        Ok(Layout {
            geometry,
            size,
            directories: [first, second],
            uuid: uuid(seed, "ASIF image"),
            stable_uuid: uuid(seed, "ASIF stable"),
            metadata,
            chunks: Vec::new(),
            next: metadata + 1,
        })
    }

    /// Stores logical chunk `logical` (after every one appended before it): where its bytes go.
    pub fn append(&mut self, logical: u64) -> u64 {
        let number = self.next;
        self.next += 1;
        self.chunks.push((logical, number));
        number * self.geometry.chunk
    }

    /// Hands `each` every structure with where it goes: the tables after the last chunk
    /// appended, one at a time, then the metadata, the directories and the header last.
    pub fn finish<E>(self, mut each: impl FnMut(u64, &[u8]) -> Result<(), E>) -> Result<(), E> {
        let g = self.geometry;
        let mut tables = vec![0u64; g.tables() as usize];
        let metadata_logical = g.max_size / g.chunk - 1;
        let all = self
            .chunks
            .iter()
            .copied()
            .chain([(metadata_logical, self.metadata)]);
        let mut next = self.next;
        let mut table: Option<(u64, Vec<u8>)> = None;
        let mut flush = |table: Option<(u64, Vec<u8>)>, next: &mut u64| -> Result<(), E> {
            if let Some((t, bytes)) = table {
                tables[t as usize] = *next;
                each(*next * g.chunk, &bytes)?;
                *next += 1;
            }
            Ok(())
        };
        for (logical, number) in all {
            let (t, e) = g.slot(logical);
            if table.as_ref().is_none_or(|(open, _)| *open != t) {
                flush(table.take(), &mut next)?;
                table = Some((t, vec![0u8; g.table_bytes() as usize]));
            }
            let bytes = &mut table.as_mut().expect("a table is open").1;
            bytes[8 * e..8 * e + 8].copy_from_slice(&entry(number));
        }
        flush(table.take(), &mut next)?;
        each(self.metadata * g.chunk, &self.metadata_chunk())?;
        // Both directories the same, the second in force; a writer in place takes the first.
        for (version, at) in [1, 2].into_iter().zip(self.directories) {
            each(at, &directory(version, &tables))?;
        }
        each(0, &self.header(metadata_logical))
    }

    fn header(&self, metadata_logical: u64) -> [u8; HEADER_BYTES] {
        let g = &self.geometry;
        let mut h = [0u8; HEADER_BYTES];
        h[0..4].copy_from_slice(b"shdw");
        h[super::VERSION..][..4].copy_from_slice(&1u32.to_be_bytes());
        h[super::HEADER_SIZE..][..4].copy_from_slice(&(HEADER_BYTES as u32).to_be_bytes());
        for (i, at) in self.directories.iter().enumerate() {
            h[super::DIRECTORIES + 8 * i..][..8].copy_from_slice(&at.to_be_bytes());
        }
        h[super::UUID..][..16].copy_from_slice(&self.uuid);
        let sectors = self.size.div_ceil(g.block);
        h[super::SECTORS..][..8].copy_from_slice(&sectors.to_be_bytes());
        h[super::MAX_SECTORS..][..8].copy_from_slice(&(g.max_size / g.block).to_be_bytes());
        h[super::CHUNK_SIZE..][..4].copy_from_slice(&(g.chunk as u32).to_be_bytes());
        h[super::BLOCK_SIZE..][..2].copy_from_slice(&(g.block as u16).to_be_bytes());
        h[super::METADATA_CHUNK..][..8].copy_from_slice(&metadata_logical.to_be_bytes());
        h
    }

    /// The `meta` header and the property list macOS keeps: the stable UUID, no user metadata.
    fn metadata_chunk(&self) -> Vec<u8> {
        let mut internal = plist::Dictionary::new();
        internal.insert("stable uuid".into(), uuid_text(&self.stable_uuid).into());
        let mut dict = plist::Dictionary::new();
        dict.insert("internal metadata".into(), internal.into());
        dict.insert("user metadata".into(), plist::Dictionary::new().into());
        let mut list = Vec::new();
        plist::Value::Dictionary(dict)
            .to_writer_xml(&mut list)
            .expect("a dictionary serializes");
        let mut chunk = vec![0u8; META_HEADER_SIZE as usize];
        chunk[0..4].copy_from_slice(b"meta");
        chunk[4..8].copy_from_slice(&1u32.to_be_bytes());
        chunk[8..12].copy_from_slice(&(META_HEADER_SIZE as u32).to_be_bytes());
        chunk[12..20].copy_from_slice(&(list.len() as u64).to_be_bytes());
        chunk.extend_from_slice(&list);
        chunk
    }
}
