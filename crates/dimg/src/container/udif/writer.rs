//! Writing UDIF the way hdiutil does (formats.md §a.10): each partition of the layout becomes a
//! `blkx` block table of chunks of at most 1 MiB; all-zero runs become ignore chunks; chunks that
//! do not shrink are stored raw. Then come the XML property list and the 'koly' trailer, with
//! the per-partition, data-fork and master CRC-32s.
//!
//! This module is the format only: which chunks to make ([`plan`]), how one chunk is encoded
//! ([`encode`], run on many threads), and the metadata at the end ([`Tables`]). The convert
//! pipeline in `ops` moves the bytes.

use super::koly::{self, CHECKSUM_CRC32};
use super::licence::Resource;
use super::mish::ChunkKind;
use crate::bytes::Seed;
use crate::codec::Codec;
use crate::container::LayoutEntry;

/// The UDIF variants dimg writes: uncompressed (UDRO, UDRW) or compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Udro,
    /// Read/write: every chunk stored raw, zeros too, so that the data fork is the disk itself
    /// (written sparse) and hdiutil can write into it in place.
    Udrw,
    Compressed(Codec),
}

impl Variant {
    fn buffers_needed(self) -> u32 {
        // Sectors of scratch space a reader needs: one chunk and a little (as hdiutil writes).
        match self {
            Variant::Udro | Variant::Udrw => 0,
            Variant::Compressed(_) => CHUNK_SECTORS as u32 + 8,
        }
    }
}

/// Completes a layout so that its entries cover sectors `[0, total)` exactly, in order: gaps
/// become entries of their own and anything past the disk is cut off.
pub fn complete(mut entries: Vec<LayoutEntry>, total: u64) -> Vec<LayoutEntry> {
    entries.sort_by_key(|e| e.first_sector);
    let mut out: Vec<LayoutEntry> = Vec::new();
    let mut at = 0;
    let mut next_id = entries.iter().map(|e| e.id + 1).max().unwrap_or(0);
    let mut gap = |from: u64, to: u64, out: &mut Vec<LayoutEntry>| {
        out.push(LayoutEntry {
            id: next_id,
            name: format!(" (Apple_Free : {next_id})"),
            first_sector: from,
            sectors: to - from,
        });
        next_id += 1;
    };
    for e in entries {
        let start = e.first_sector.max(at);
        let end = (e.first_sector + e.sectors).min(total);
        if start >= end {
            continue;
        }
        if start > at {
            gap(at, start, &mut out);
        }
        out.push(LayoutEntry {
            first_sector: start,
            sectors: end - start,
            ..e
        });
        at = end;
    }
    if at < total {
        gap(at, total, &mut out);
    }
    out
}

/// hdiutil's chunk size: 2048 sectors, 1 MiB.
pub const CHUNK_SECTORS: u64 = 2048;
/// The longest run of raw chunks one entry of a read/write image holds: 32 MiB, half of the
/// 64 MiB qemu takes at most.
const MAX_RAW_RUN_SECTORS: u64 = 32 * CHUNK_SECTORS;

/// A piece of work: `sectors` sectors from `first_sector`, belonging to layout entry `entry`.
#[derive(Clone, Copy, Debug)]
pub struct ChunkJob {
    pub entry: usize,
    pub first_sector: u64,
    pub sectors: u64,
}

/// Cuts every layout entry into chunk jobs, in disk order, as they are needed: a disk may claim
/// more chunks than memory could list.
pub fn plan(layout: &[LayoutEntry]) -> impl Iterator<Item = ChunkJob> + '_ {
    layout.iter().enumerate().flat_map(|(entry, e)| {
        (0..e.sectors.div_ceil(CHUNK_SECTORS)).map(move |k| {
            let s = k * CHUNK_SECTORS;
            ChunkJob {
                entry,
                first_sector: e.first_sector + s,
                sectors: (e.sectors - s).min(CHUNK_SECTORS),
            }
        })
    })
}

/// How many jobs `plan` gives.
pub fn plan_len(layout: &[LayoutEntry]) -> u64 {
    layout
        .iter()
        .map(|e| e.sectors.div_ceil(CHUNK_SECTORS))
        .sum()
}

/// A chunk ready to be written: its kind, its stored bytes (none for ignore chunks), and the
/// CRC-32 of its uncompressed bytes (for the partition checksum; ignore chunks contribute none).
pub struct Encoded {
    pub kind: ChunkKind,
    pub bytes: Vec<u8>,
    /// Zeros stored after `bytes`, not held: a read/write image's chunk the disk knows to be
    /// zeros, left a hole. `crc` is theirs.
    pub hole: u64,
    pub crc: crc32fast::Hasher,
}

impl Encoded {
    fn ignored() -> Encoded {
        Encoded {
            kind: ChunkKind::Ignore,
            bytes: Vec::new(),
            hole: 0,
            crc: crc32fast::Hasher::new(),
        }
    }

    /// A chunk of `len` bytes the disk knows to be zeros, not read: ignored, or in a read/write
    /// image stored as a hole whose CRC-32 is `crc` (`len` zeros').
    pub fn known_zeros(variant: Variant, len: u64, crc: crc32fast::Hasher) -> Encoded {
        match variant {
            Variant::Udrw => Encoded {
                kind: ChunkKind::Raw,
                bytes: Vec::new(),
                hole: len,
                crc,
            },
            _ => Encoded::ignored(),
        }
    }

    /// The bytes the chunk takes in the data fork.
    pub fn stored(&self) -> u64 {
        self.bytes.len() as u64 + self.hole
    }
}

/// Encodes one chunk's uncompressed sectors.
pub fn encode(variant: Variant, level: u32, data: Vec<u8>) -> Encoded {
    if variant != Variant::Udrw && crate::io::is_zero(&data) {
        return Encoded::ignored();
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&data);
    if let Variant::Compressed(codec) = variant {
        let packed = codec.compress(&data, level);
        if packed.len() < data.len() {
            return Encoded {
                kind: ChunkKind::Compressed(codec),
                bytes: packed,
                hole: 0,
                crc,
            };
        }
    }
    Encoded {
        kind: ChunkKind::Raw,
        bytes: data,
        hole: 0,
        crc,
    }
}

fn chunk_type(kind: ChunkKind) -> u32 {
    match kind {
        ChunkKind::Zero => 0,
        ChunkKind::Raw => 1,
        ChunkKind::Ignore => 2,
        ChunkKind::Compressed(Codec::Adc) => 0x8000_0004,
        ChunkKind::Compressed(Codec::Zlib) => 0x8000_0005,
        ChunkKind::Compressed(Codec::Bzip2) => 0x8000_0006,
        ChunkKind::Compressed(Codec::Lzfse) => 0x8000_0007,
        ChunkKind::Compressed(Codec::Xz) => 0x8000_0008,
    }
}

struct Entry {
    kind: ChunkKind,
    sector_start: u64,
    sectors: u64,
    offset: u64,
    length: u64,
}

struct Table {
    entries: Vec<Entry>,
    crc: crc32fast::Hasher,
}

/// The block tables, filled chunk by chunk in disk order as chunks are written.
pub struct Tables {
    variant: Variant,
    layout: Vec<LayoutEntry>,
    tables: Vec<Table>,
}

impl Tables {
    pub fn new(variant: Variant, layout: Vec<LayoutEntry>) -> Self {
        let tables = layout
            .iter()
            .map(|_| Table {
                entries: Vec::new(),
                crc: crc32fast::Hasher::new(),
            })
            .collect();
        Tables {
            variant,
            layout,
            tables,
        }
    }

    /// Records a chunk that was written at data-fork offset `offset`. Consecutive ignore chunks
    /// merge into one, as hdiutil's free-space runs do.
    pub fn add(&mut self, job: ChunkJob, chunk: &Encoded, offset: u64) {
        let table = &mut self.tables[job.entry];
        table.crc.combine(&chunk.crc);
        let sector_start = job.first_sector - self.layout[job.entry].first_sector;
        if let Some(last) = table.entries.last_mut() {
            if chunk.kind == ChunkKind::Ignore && last.kind == ChunkKind::Ignore {
                last.sectors += job.sectors;
                return;
            }
            // A read/write image's raw chunks follow each other in its fork: one entry for a
            // run of them, as hdiutil keeps raw runs whole, up to what every reader takes — a
            // terabyte is then 32,768 entries, not a million.
            let contiguous = last.offset + last.length == offset;
            if self.variant == Variant::Udrw
                && chunk.kind == ChunkKind::Raw
                && last.kind == ChunkKind::Raw
                && contiguous
                && last.sectors + job.sectors <= MAX_RAW_RUN_SECTORS
            {
                last.sectors += job.sectors;
                last.length += chunk.stored();
                return;
            }
        }
        table.entries.push(Entry {
            kind: chunk.kind,
            sector_start,
            sectors: job.sectors,
            offset: if chunk.stored() == 0 { 0 } else { offset },
            length: chunk.stored(),
        });
    }

    /// The property list and trailer that follow a data fork of `data_fork_length` bytes
    /// whose CRC-32 is `data_fork_crc`, with `extra` resources (a licence agreement's) beside
    /// the block tables; a reproducible image's `seed` gives its segment ID.
    pub fn finish(
        self,
        data_fork_length: u64,
        data_fork_crc: u32,
        extra: &[Resource],
        seed: Option<&Seed>,
    ) -> Vec<u8> {
        let mut checksums = Vec::new();
        let mut blkx = Vec::new();
        for (entry, table) in self.layout.iter().zip(self.tables) {
            let crc = table.crc.finalize();
            checksums.extend_from_slice(&crc.to_be_bytes());
            let data = mish(self.variant, entry, &table.entries, crc, data_fork_length);
            blkx.push(resource(entry.id, &entry.name, data));
        }
        let mut fork = plist::Dictionary::new();
        fork.insert("blkx".into(), plist::Value::Array(blkx));
        fork.insert(
            "plst".into(),
            plist::Value::Array(vec![resource(0, "", vec![0; 1032])]),
        );
        for r in extra {
            // As udifrez writes them: no CFName, no attributes.
            let mut d = plist::Dictionary::new();
            d.insert("Attributes".into(), "0x0000".into());
            d.insert("Data".into(), plist::Value::Data(r.data.clone()));
            d.insert("ID".into(), r.id.to_string().into());
            d.insert("Name".into(), r.name.clone().into());
            if !fork.contains_key(r.kind) {
                fork.insert(r.kind.into(), plist::Value::Array(Vec::new()));
            }
            if let Some(plist::Value::Array(list)) = fork.get_mut(r.kind) {
                list.push(plist::Value::Dictionary(d));
            }
        }
        let mut root = plist::Dictionary::new();
        root.insert("resource-fork".into(), plist::Value::Dictionary(fork));
        let mut out = Vec::new();
        plist::Value::Dictionary(root)
            .to_writer_xml(&mut out)
            .expect("writing to memory cannot fail");
        let xml_length = out.len() as u64;
        let sector_count = self.layout.iter().map(|e| e.sectors).sum();
        out.extend_from_slice(&trailer(
            data_fork_length,
            data_fork_crc,
            xml_length,
            crc32fast::hash(&checksums),
            sector_count,
            crate::bytes::uuid(seed, "UDIF segment"),
        ));
        out
    }
}

fn resource(id: i64, name: &str, data: Vec<u8>) -> plist::Value {
    let mut d = plist::Dictionary::new();
    d.insert("Attributes".into(), "0x0050".into());
    d.insert("CFName".into(), name.into());
    d.insert("Data".into(), plist::Value::Data(data));
    d.insert("ID".into(), id.to_string().into());
    d.insert("Name".into(), name.into());
    plist::Value::Dictionary(d)
}

fn checksum_field(crc: u32) -> [u8; 136] {
    let mut c = [0u8; 136];
    c[0..4].copy_from_slice(&CHECKSUM_CRC32.to_be_bytes());
    c[4..8].copy_from_slice(&32u32.to_be_bytes());
    c[8..12].copy_from_slice(&crc.to_be_bytes());
    c
}

fn mish(
    variant: Variant,
    entry: &LayoutEntry,
    entries: &[Entry],
    crc: u32,
    data_end: u64,
) -> Vec<u8> {
    let mut t = Vec::with_capacity(204 + 40 * (entries.len() + 1));
    t.extend_from_slice(b"mish");
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&entry.first_sector.to_be_bytes());
    t.extend_from_slice(&entry.sectors.to_be_bytes());
    t.extend_from_slice(&0u64.to_be_bytes()); // DataOffset
    t.extend_from_slice(&variant.buffers_needed().to_be_bytes());
    t.extend_from_slice(&((entry.id + 1) as u32).to_be_bytes()); // BlocksDescriptor
    t.extend_from_slice(&[0; 24]);
    t.extend_from_slice(&checksum_field(crc));
    t.extend_from_slice(&(entries.len() as u32 + 1).to_be_bytes());
    let push = |t: &mut Vec<u8>, kind: u32, start: u64, count: u64, offset: u64, length: u64| {
        t.extend_from_slice(&kind.to_be_bytes());
        t.extend_from_slice(&0u32.to_be_bytes());
        for v in [start, count, offset, length] {
            t.extend_from_slice(&v.to_be_bytes());
        }
    };
    for e in entries {
        push(
            &mut t,
            chunk_type(e.kind),
            e.sector_start,
            e.sectors,
            e.offset,
            e.length,
        );
    }
    push(&mut t, 0xFFFF_FFFF, entry.sectors, 0, data_end, 0);
    t
}

fn trailer(
    data_length: u64,
    data_crc: u32,
    xml_length: u64,
    master_crc: u32,
    sectors: u64,
    segment_id: [u8; 16],
) -> [u8; koly::SIZE] {
    let mut k = [0u8; koly::SIZE];
    let mut put = |at: usize, bytes: &[u8]| k[at..at + bytes.len()].copy_from_slice(bytes);
    put(0x00, b"koly");
    put(0x04, &4u32.to_be_bytes());
    put(0x08, &(koly::SIZE as u32).to_be_bytes());
    put(0x0C, &1u32.to_be_bytes()); // flattened
    put(0x20, &data_length.to_be_bytes());
    put(0x38, &1u32.to_be_bytes());
    put(0x3C, &1u32.to_be_bytes());
    put(0x40, &segment_id);
    put(0x50, &checksum_field(data_crc));
    put(0xD8, &data_length.to_be_bytes()); // the property list follows the data fork
    put(0xE0, &xml_length.to_be_bytes());
    put(0x160, &checksum_field(master_crc));
    put(0x1E8, &1u32.to_be_bytes()); // device image
    put(0x1EC, &sectors.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: i64, first_sector: u64, sectors: u64) -> LayoutEntry {
        LayoutEntry {
            id,
            name: format!("p{id}"),
            first_sector,
            sectors,
        }
    }

    #[test]
    fn a_layout_is_completed_to_cover_the_disk_exactly() {
        let done = complete(vec![e(1, 40, 10), e(0, 0, 1)], 60);
        let spans: Vec<(u64, u64)> = done.iter().map(|x| (x.first_sector, x.sectors)).collect();
        assert_eq!(spans, [(0, 1), (1, 39), (40, 10), (50, 10)]);
        assert_eq!(done[1].name, " (Apple_Free : 2)");
        let clipped = complete(vec![e(0, 0, 100)], 10);
        assert_eq!(clipped, [e(0, 0, 10)]);
    }

    #[test]
    fn plan_cuts_entries_into_chunks_of_at_most_one_mebibyte() {
        let layout = [e(0, 0, 1), e(1, 1, 5000)];
        let spans: Vec<(usize, u64, u64)> = plan(&layout)
            .map(|j| (j.entry, j.first_sector, j.sectors))
            .collect();
        assert_eq!(plan_len(&layout), 4);
        assert_eq!(
            spans,
            [(0, 0, 1), (1, 1, 2048), (1, 2049, 2048), (1, 4097, 904)]
        );
    }
}
