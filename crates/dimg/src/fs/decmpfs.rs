//! HFS+ compressed files (decmpfs, formats.md §h.1): the "com.apple.decmpfs" attribute starts
//! with "fpmc", a type and the file's size; small files keep their compressed bytes right after
//! it, larger ones in the resource fork as independent 64 KiB blocks. zlib, LZVN and LZFSE are
//! read, inline or in the fork; blocks are decompressed when read and the last one is kept.

use crate::bytes::{be32, le32, le64};
use crate::codec::Codec;
use crate::error::FormatError;
use crate::io::ReadAt;
use std::io;
use std::sync::{Arc, Mutex};

/// Blocks a compressed file may have: 8M of 64 KiB, a 512 GiB file, its table 64 MiB at most.
/// The count comes from the file's own header; an APFS fork of holes costs nothing to claim.
const MAX_BLOCKS: u64 = 8 << 20;
const STRUCTURE: &str = "HFS+ compressed file (decmpfs)";
const BLOCK: u64 = 64 << 10;
/// Inline data lives in one attribute record, so it is small; anything claiming more is damage.
const MAX_INLINE: u64 = 16 << 20;

fn bad(problem: impl Into<String>) -> io::Error {
    FormatError::io(STRUCTURE, 0, problem)
}

/// The uncompressed size the attribute states, if it is a decmpfs header.
pub(super) fn stated_size(attribute: &[u8]) -> Option<u64> {
    (attribute.len() >= 16 && &attribute[..4] == b"fpmc").then(|| le64(attribute, 8))
}

/// How a compressed file's blocks are compressed.
#[derive(Clone, Copy)]
enum Method {
    Zlib,
    Lzvn,
    Lzfse,
    /// Types 9 and 10: each block a marker byte, then the bytes as they are.
    Stored,
}

/// One block's bytes: compressed, or stored after a marker byte (always for types 9 and 10;
/// elsewhere when compressing did not pay).
fn inflate(method: Method, data: &[u8], out: &mut [u8]) -> io::Result<()> {
    let first = data.first().copied();
    let decoded = match method {
        Method::Zlib if first.is_some_and(|b| b & 0x0F != 0x0F) => deflate(data, out),
        // An LZFSE stream begins "bvx": a block that does not is stored after a marker (0x06
        // as dimg once wrote, 0xFF as dissect.apfs reads Apple's).
        Method::Lzfse if !matches!(first, Some(0x06 | 0xFF)) => Codec::Lzfse.decompress(data, out),
        Method::Lzvn if first != Some(0x06) => {
            crate::codec::lzvn::decompress(data, out).map_err(|e| format!("LZVN data: {e}"))
        }
        _ => match data.get(1..1 + out.len()) {
            Some(stored) => {
                out.copy_from_slice(stored);
                Ok(())
            }
            None => Err("a stored block is shorter than the file says".into()),
        },
    };
    decoded.map_err(bad)
}

/// A zlib block read as its deflate stream: macOS writes some without the Adler-32 trailer and
/// reads them back, so the trailer is not required.
fn deflate(zlib: &[u8], out: &mut [u8]) -> Result<(), String> {
    let stream = zlib.get(2..).ok_or("a zlib block without its header")?;
    match libdeflater::Decompressor::new().deflate_decompress(stream, out) {
        Ok(n) if n == out.len() => Ok(()),
        Ok(n) => Err(format!(
            "zlib data: {n} bytes where {} were expected",
            out.len()
        )),
        Err(e) => Err(format!("zlib data: corrupt stream ({e:?})")),
    }
}

/// The file's contents, from its decmpfs attribute and, for fork-stored types, its resource fork.
pub(super) fn open(
    attribute: &[u8],
    resource: impl FnOnce() -> io::Result<Arc<dyn ReadAt>>,
) -> io::Result<Arc<dyn ReadAt>> {
    let size = stated_size(attribute).ok_or_else(|| bad("the attribute has no fpmc header"))?;
    let kind = le32(attribute, 4);
    if kind == 1 {
        // Type 1: the bytes themselves, right after the header.
        return match attribute.get(16..).filter(|d| d.len() as u64 >= size) {
            Some(data) => Ok(Arc::new(data[..size as usize].to_vec())),
            None => Err(bad("the attribute is shorter than the file it holds")),
        };
    }
    let method = match kind {
        3 | 4 => Method::Zlib,
        9 | 10 => Method::Stored,
        7 | 8 => Method::Lzvn,
        11 | 12 => Method::Lzfse,
        13 | 14 => {
            return Err(bad(format!(
                "compression type {kind} (LZBITMAP) is not read yet"
            )))
        }
        other => return Err(bad(format!("compression type {other} is not read"))),
    };
    if matches!(kind, 3 | 7 | 9 | 11) {
        if size > MAX_INLINE {
            return Err(bad(format!("{size} bytes stored inline")));
        }
        let mut out = vec![0u8; size as usize];
        inflate(method, &attribute[16..], &mut out)?;
        return Ok(Arc::new(out));
    }
    let fork = resource()?;
    let blocks = size.div_ceil(BLOCK);
    let table = if kind == 4 {
        zlib_table(&*fork, blocks)?
    } else {
        offset_table(&*fork, blocks)?
    };
    Ok(Arc::new(Blocks {
        fork,
        method,
        size,
        table,
        last: Mutex::new(None),
    }))
}

/// Type 4: a classic resource fork whose one resource holds a count and (offset, length) pairs,
/// little-endian, offsets counted from just after the resource's length word.
fn zlib_table(fork: &dyn ReadAt, blocks: u64) -> io::Result<Vec<(u64, u64)>> {
    let mut head = [0u8; 16];
    if fork.size() < 16 {
        return Err(bad("the resource fork is too short"));
    }
    fork.read_exact_at(0, &mut head)?;
    let base = u64::from(be32(&head, 0)) + 4;
    let mut count = [0u8; 4];
    if base + 4 > fork.size() {
        return Err(bad("the resource fork's data is past its end"));
    }
    fork.read_exact_at(base, &mut count)?;
    let count = u64::from(le32(&count, 0));
    if blocks > MAX_BLOCKS || count < blocks || base + 4 + 8 * count > fork.size() {
        return Err(bad(format!(
            "{count} blocks listed where {blocks} are needed"
        )));
    }
    let mut raw = vec![0u8; 8 * blocks as usize];
    fork.read_exact_at(base + 4, &mut raw)?;
    Ok(raw
        .chunks_exact(8)
        .map(|e| (base + u64::from(le32(e, 0)), u64::from(le32(e, 4))))
        .collect())
}

/// Types 8 and 12: the fork opens with n+1 little-endian offsets that bound its n blocks.
fn offset_table(fork: &dyn ReadAt, blocks: u64) -> io::Result<Vec<(u64, u64)>> {
    if blocks > MAX_BLOCKS || 4 * (blocks + 1) > fork.size() {
        return Err(bad("the resource fork is too short for its block table"));
    }
    let mut raw = vec![0u8; 4 * (blocks as usize + 1)];
    fork.read_exact_at(0, &mut raw)?;
    let offsets: Vec<u64> = raw.chunks_exact(4).map(|o| u64::from(le32(o, 0))).collect();
    offsets
        .windows(2)
        .map(|w| {
            if w[0] > w[1] {
                Err(bad("block offsets go backwards"))
            } else {
                Ok((w[0], w[1] - w[0]))
            }
        })
        .collect()
}

struct Blocks {
    fork: Arc<dyn ReadAt>,
    method: Method,
    size: u64,
    /// (where in the fork, compressed length) of each 64 KiB block.
    table: Vec<(u64, u64)>,
    last: Mutex<Option<(usize, Arc<Vec<u8>>)>>,
}

impl Blocks {
    fn block(&self, n: usize) -> io::Result<Arc<Vec<u8>>> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, data)) = &*last {
            if *k == n {
                return Ok(data.clone());
            }
        }
        let (at, len) = self.table[n];
        if at + len > self.fork.size() || len > 2 * BLOCK {
            return Err(bad(format!("block {n} at {at}+{len} is outside the fork")));
        }
        let mut compressed = vec![0u8; len as usize];
        self.fork.read_exact_at(at, &mut compressed)?;
        let mut out = vec![0u8; (self.size - n as u64 * BLOCK).min(BLOCK) as usize];
        inflate(self.method, &compressed, &mut out)?;
        let out = Arc::new(out);
        *last = Some((n, out.clone()));
        Ok(out)
    }
}

impl ReadAt for Blocks {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let block = self.block((offset / BLOCK) as usize)?;
        let within = (offset % BLOCK) as usize;
        let n = buf.len().min(block.len() - within);
        buf[..n].copy_from_slice(&block[within..within + n]);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.size
    }
}

/// How a file is compressed when written: zlib (types 3 and 4) or LZFSE (types 11 and 12), as
/// `ditto --hfsCompression` and `afsctool` write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Zlib,
    Lzfse,
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "zlib" => Ok(Compression::Zlib),
            "lzfse" => Ok(Compression::Lzfse),
            _ => Err(format!("{s} is not a decmpfs compression (zlib, lzfse)")),
        }
    }
}

/// A compressed file as it is stored: its `com.apple.decmpfs` attribute, and its resource fork
/// when its blocks do not fit in the attribute.
pub struct Compressed {
    pub attribute: Vec<u8>,
    pub fork: Option<Vec<u8>>,
}

/// The zlib level files are compressed at (ditto's).
const ZLIB_LEVEL: u32 = 5;
/// The resource map after a type-4 fork's one resource: a 'cmpf' resource of id 1.
const CMPF_MAP_LEN: u32 = 50;

/// `data`, `size` bytes read from `file` 64 KiB at a time, compressed by `how`: in the attribute
/// after its header when that fits `inline_room` bytes, else in the resource fork; `None` when
/// compressing saves no space.
pub fn compress(
    file: &dyn ReadAt,
    how: Compression,
    inline_room: usize,
) -> io::Result<Option<Compressed>> {
    let size = file.size();
    let codec = match how {
        Compression::Zlib => Codec::Zlib,
        Compression::Lzfse => Codec::Lzfse,
    };
    // Each block compressed; a zlib block stored after a marker where that is no larger. An
    // LZFSE stream stores what does not compress in blocks of its own ("bvx-"), so it is
    // always written as it is: LZFSE has no agreed marker (dissect.apfs takes 0xFF, afsctool
    // and applesauce write none), and a reader that knows none decodes the stream.
    let mut blocks = Vec::with_capacity(size.div_ceil(BLOCK) as usize);
    let mut raw = vec![0u8; BLOCK as usize];
    for at in (0..size).step_by(BLOCK as usize) {
        let raw = &mut raw[..(size - at).min(BLOCK) as usize];
        file.read_exact_at(at, raw)?;
        let packed = codec.compress(raw, ZLIB_LEVEL);
        blocks.push(
            match how == Compression::Lzfse || packed.len() < raw.len() {
                true => packed,
                false => [&[0xFF][..], raw].concat(),
            },
        );
    }
    let header = |kind: u32| -> Vec<u8> {
        let mut h = b"fpmc".to_vec();
        h.extend(kind.to_le_bytes());
        h.extend(size.to_le_bytes());
        h
    };
    let stored: u64 = blocks.iter().map(|b| b.len() as u64).sum();
    if blocks.len() == 1 && 16 + blocks[0].len() <= inline_room {
        let kind = if how == Compression::Zlib { 3 } else { 11 };
        let attribute = [header(kind), blocks.remove(0)].concat();
        // Saved when the file's blocks are more than none.
        return Ok(Some(Compressed {
            attribute,
            fork: None,
        }));
    }
    // Worth it when the fork (blocks, their table) takes fewer 4 KiB blocks than the file.
    let fork_size = stored + 8 * blocks.len() as u64 + 0x100 + CMPF_MAP_LEN as u64;
    if fork_size.next_multiple_of(4096) >= size.next_multiple_of(4096) {
        return Ok(None);
    }
    let fork = match how {
        Compression::Lzfse => {
            // Type 12: n+1 offsets from the fork's start, then the blocks.
            let mut at = 4 * (blocks.len() as u32 + 1);
            let mut fork = Vec::with_capacity(at as usize + stored as usize);
            for b in &blocks {
                fork.extend(at.to_le_bytes());
                at += b.len() as u32;
            }
            fork.extend(at.to_le_bytes());
            blocks.iter().for_each(|b| fork.extend(b));
            (header(12), fork)
        }
        Compression::Zlib => (header(4), zlib_fork(&blocks)),
    };
    Ok(Some(Compressed {
        attribute: fork.0,
        fork: Some(fork.1),
    }))
}

/// Type 4's resource fork: a classic one (big-endian header, 256 bytes in all before the data)
/// whose one resource, 'cmpf' 1, holds a block count and each block's (offset, length),
/// little-endian and counted from the resource's start, then the blocks; its map after it.
fn zlib_fork(blocks: &[Vec<u8>]) -> Vec<u8> {
    let table = 4 + 8 * blocks.len() as u32;
    let mut resource = (blocks.len() as u32).to_le_bytes().to_vec();
    let mut at = table;
    for b in blocks {
        resource.extend(at.to_le_bytes());
        resource.extend((b.len() as u32).to_le_bytes());
        at += b.len() as u32;
    }
    blocks.iter().for_each(|b| resource.extend(b));
    let len = resource.len() as u32;
    let (data, map) = (0x100u32, 0x100 + 4 + len);
    let mut header = Vec::with_capacity(16);
    for v in [data, map, 4 + len, CMPF_MAP_LEN] {
        header.extend(v.to_be_bytes());
    }
    let mut fork = header.clone();
    fork.resize(data as usize, 0);
    fork.extend(len.to_be_bytes());
    fork.extend(resource);
    // The map: the header again, a handle, a file reference and attributes, where its type
    // list (28) and name list (50, none) are; one type, 'cmpf', with one reference at 10 bytes
    // into the type list: id 1, no name, data at 0.
    fork.extend(&header);
    fork.extend([0u8; 8]);
    fork.extend(28u16.to_be_bytes());
    fork.extend((CMPF_MAP_LEN as u16).to_be_bytes());
    fork.extend(0u16.to_be_bytes());
    fork.extend(b"cmpf");
    fork.extend(0u16.to_be_bytes());
    fork.extend(10u16.to_be_bytes());
    fork.extend(1u16.to_be_bytes());
    fork.extend(0xFFFFu16.to_be_bytes());
    fork.extend([0u8; 8]);
    fork
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u32, size: u64) -> Vec<u8> {
        let mut h = b"fpmc".to_vec();
        h.extend(kind.to_le_bytes());
        h.extend(size.to_le_bytes());
        h
    }

    fn read(file: &dyn ReadAt) -> Vec<u8> {
        let mut out = vec![0u8; file.size() as usize];
        file.read_exact_at(0, &mut out).unwrap();
        out
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n).map(|i| b"decmpfs block text "[i % 19]).collect()
    }

    #[test]
    fn inline_zlib_lzfse_and_stored() {
        let plain = text(5000);
        for (kind, codec) in [(3, Codec::Zlib), (11, Codec::Lzfse)] {
            let mut attr = header(kind, plain.len() as u64);
            attr.extend(codec.compress(&plain, 6));
            let file = open(&attr, || unreachable!("inline")).unwrap();
            assert_eq!(read(&*file), plain, "type {kind}");
        }
        let mut stored = header(3, 4);
        stored.extend(b"\xFFabcd");
        assert_eq!(read(&*open(&stored, || unreachable!()).unwrap()), b"abcd");
    }

    #[test]
    fn resource_fork_blocks_of_both_layouts() {
        let plain = text(150_000);
        let blocks: Vec<Vec<u8>> = plain.chunks(BLOCK as usize).map(|b| b.to_vec()).collect();
        // Type 12: offsets, then LZFSE blocks.
        let packed: Vec<Vec<u8>> = blocks.iter().map(|b| Codec::Lzfse.compress(b, 0)).collect();
        let mut fork = Vec::new();
        let mut at = 4 * (packed.len() as u32 + 1);
        for p in &packed {
            fork.extend(at.to_le_bytes());
            at += p.len() as u32;
        }
        fork.extend(at.to_le_bytes());
        packed.iter().for_each(|p| fork.extend(p));
        let fork: Arc<dyn ReadAt> = Arc::new(fork);
        let file = open(&header(12, plain.len() as u64), || Ok(fork)).unwrap();
        assert_eq!(read(&*file), plain);

        // Type 4: a resource fork header pointing at 0x100, the length word, the table, zlib blocks.
        let packed: Vec<Vec<u8>> = blocks.iter().map(|b| Codec::Zlib.compress(b, 6)).collect();
        let mut fork = vec![0u8; 0x100];
        fork[..4].copy_from_slice(&0x100u32.to_be_bytes());
        fork.extend(0u32.to_be_bytes());
        let mut table = (packed.len() as u32).to_le_bytes().to_vec();
        let mut at = 4 + 8 * packed.len() as u32;
        for p in &packed {
            table.extend(at.to_le_bytes());
            table.extend((p.len() as u32).to_le_bytes());
            at += p.len() as u32;
        }
        fork.extend(table);
        packed.iter().for_each(|p| fork.extend(p));
        let fork: Arc<dyn ReadAt> = Arc::new(fork);
        let file = open(&header(4, plain.len() as u64), || Ok(fork)).unwrap();
        assert_eq!(read(&*file), plain);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let fork: Arc<dyn ReadAt> = Arc::new(vec![0xFFu8; 12]);
        assert!(open(&header(12, 1 << 40), || Ok(fork.clone())).is_err());
        assert!(open(&header(4, 100), || Ok(fork.clone())).is_err());
        assert!(open(&header(3, u64::MAX), || unreachable!()).is_err());
        assert!(open(&header(7, 10), || unreachable!()).is_err());
        assert!(open(&header(5, 10), || unreachable!()).is_err());
        assert!(open(b"fpm", || unreachable!()).is_err());
    }
}
