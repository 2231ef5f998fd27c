//! The 'mish' block table of one `blkx` resource: a 204-byte header and 40-byte chunk entries.

use super::koly::Checksum;
use crate::bytes::{be32, be64};
use crate::codec::Codec;
use crate::error::FormatError;
use std::io;

/// What a chunk's sectors hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkKind {
    /// Read as zeros; counted in the partition checksum.
    Zero,
    /// Stored as-is.
    Raw,
    /// Read as zeros; free space, left out of the partition checksum.
    Ignore,
    Compressed(Codec),
}

impl ChunkKind {
    fn from_type(t: u32) -> Option<Option<Self>> {
        Some(Some(match t {
            0x0000_0000 => ChunkKind::Zero,
            0x0000_0001 => ChunkKind::Raw,
            0x0000_0002 => ChunkKind::Ignore,
            0x8000_0004 => ChunkKind::Compressed(Codec::Adc),
            0x8000_0005 => ChunkKind::Compressed(Codec::Zlib),
            0x8000_0006 => ChunkKind::Compressed(Codec::Bzip2),
            0x8000_0007 => ChunkKind::Compressed(Codec::Lzfse),
            0x8000_0008 => ChunkKind::Compressed(Codec::Xz),
            // Comments ('+beg'/'+end') and the terminator describe no sectors.
            0x7FFF_FFFE | 0xFFFF_FFFF => return Some(None),
            _ => return None,
        }))
    }

    pub fn name(self) -> &'static str {
        match self {
            ChunkKind::Zero => "zero-fill",
            ChunkKind::Raw => "raw",
            ChunkKind::Ignore => "ignore (free)",
            ChunkKind::Compressed(c) => c.name(),
        }
    }
}

/// One chunk, in absolute terms: disk sectors and file bytes.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub kind: ChunkKind,
    pub first_sector: u64,
    pub sectors: u64,
    pub file_offset: u64,
    pub file_length: u64,
}

pub struct BlockTable {
    pub first_sector: u64,
    pub sectors: u64,
    pub checksum: Checksum,
    pub chunks: Vec<Chunk>,
}

impl BlockTable {
    /// The disk ranges its checksum covers: every chunk but ignored (free) ones, in disk order,
    /// runs that touch merged.
    pub fn crc_ranges(&self) -> Vec<std::ops::Range<u64>> {
        let mut chunks: Vec<&Chunk> = self
            .chunks
            .iter()
            .filter(|c| c.kind != ChunkKind::Ignore)
            .collect();
        chunks.sort_by_key(|c| c.first_sector);
        let mut ranges: Vec<std::ops::Range<u64>> = Vec::new();
        for c in chunks {
            let r = c.first_sector * 512..(c.first_sector + c.sectors) * 512;
            match ranges.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => ranges.push(r),
            }
        }
        ranges
    }
}

const HEADER: usize = 204;
const ENTRY: usize = 40;
const STRUCTURE: &str = "UDIF mish block table";

/// Compressed chunks larger than this are refused (qemu: 64 MiB); hdiutil writes 1 MiB.
pub const MAX_COMPRESSED_CHUNK_SECTORS: u64 = (64 << 20) / 512;

/// Parses a block table. `data_base` is the file offset chunk offsets are relative to
/// (DataForkOffset); `data_end` is where chunk data must end (the data fork's end).
pub fn parse(name: &str, b: &[u8], data_base: u64, data_end: u64) -> io::Result<BlockTable> {
    let bad = |p: String| FormatError::io(STRUCTURE, 0, format!("'{name}': {p}"));
    if b.len() < HEADER || &b[0..4] != b"mish" {
        return Err(bad("no 'mish' signature".into()));
    }
    if be32(b, 4) != 1 {
        return Err(bad(format!("version {} (expected 1)", be32(b, 4))));
    }
    let first_sector = be64(b, 0x08);
    let sectors = be64(b, 0x10);
    let data_offset = be64(b, 0x18);
    let count = be32(b, 0xC8) as usize;
    if b.len() != HEADER + ENTRY * count {
        return Err(bad(format!(
            "{} bytes for {count} chunks (expected {})",
            b.len(),
            HEADER + ENTRY * count
        )));
    }
    let base = data_base
        .checked_add(data_offset)
        .ok_or_else(|| bad(format!("data offset {data_offset} is absurd")))?;
    let mut chunks = Vec::with_capacity(count);
    for n in 0..count {
        let e = &b[HEADER + n * ENTRY..HEADER + (n + 1) * ENTRY];
        let t = be32(e, 0);
        let kind = match ChunkKind::from_type(t) {
            Some(Some(kind)) => kind,
            Some(None) => continue,
            None => return Err(bad(format!("chunk {n} has unknown type 0x{t:08X}"))),
        };
        let (start, count_s, offset, length) = (be64(e, 8), be64(e, 16), be64(e, 24), be64(e, 32));
        if count_s == 0 {
            continue;
        }
        let end_sector = start.checked_add(count_s).filter(|&e| e <= sectors);
        if end_sector.is_none() {
            return Err(bad(format!(
                "chunk {n} (sectors {start}+{count_s}) runs past the table's {sectors} sectors"
            )));
        }
        let file_offset = base.checked_add(offset);
        let stored = matches!(kind, ChunkKind::Raw | ChunkKind::Compressed(_));
        if stored {
            let end = file_offset.and_then(|o| o.checked_add(length));
            if end.is_none_or(|end| end > data_end) {
                return Err(bad(format!(
                    "chunk {n} ({} bytes at {}) points past the end of the data fork at {data_end}",
                    length,
                    base.saturating_add(offset)
                )));
            }
        }
        if kind == ChunkKind::Raw && length != count_s * 512 {
            return Err(bad(format!(
                "raw chunk {n} stores {length} bytes for {count_s} sectors"
            )));
        }
        if matches!(kind, ChunkKind::Compressed(_))
            && (count_s > MAX_COMPRESSED_CHUNK_SECTORS || length > 64 << 20)
        {
            return Err(bad(format!(
                "compressed chunk {n} of {count_s} sectors / {length} bytes is larger than 64 MiB"
            )));
        }
        chunks.push(Chunk {
            kind,
            first_sector: first_sector
                .checked_add(start)
                .ok_or_else(|| bad(format!("chunk {n} start is absurd")))?,
            sectors: count_s,
            file_offset: if stored { file_offset.unwrap_or(0) } else { 0 },
            file_length: if stored { length } else { 0 },
        });
    }
    Ok(BlockTable {
        first_sector,
        sectors,
        checksum: Checksum::parse(&b[0x40..0xC8]),
        chunks,
    })
}
