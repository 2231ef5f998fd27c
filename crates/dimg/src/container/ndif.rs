//! NDIF images (Disk Copy 6 `.img`, `.smi`): the data fork holds the disk's sectors in chunks,
//! and the resource fork's 'bcem' resource maps them — a 128-byte header (version, image name,
//! sector count, the largest chunk, a checksum, the entry count) and 12-byte entries: a 24-bit
//! start sector, a type, and the chunk's offset and length in the data fork. A chunk runs to the
//! next entry's start; type 0xFF ends the map. Read only, as Aaru and ndif2raw read the layout.

use super::dart::unrun;
use super::resource_fork::Resource;
use super::{Container, Driver, Fact, Probe};
use crate::bytes::{be16, be32, mac_roman};
use crate::codec::Codec;
use crate::error::FormatError;
use crate::io::ReadAt;
use std::io;
use std::sync::{Arc, Mutex};

pub static DRIVER: Driver = Driver {
    name: "NDIF image (Disk Copy 6)",
    probe,
    open,
};

const HEADER: usize = 128;
const ENTRY: usize = 12;
const SECTOR: u64 = 512;
/// The largest chunk believed: Disk Copy writes 20,960-byte chunks; this is 16 MiB.
const MAX_CHUNK_SECTORS: u64 = 32_768;

fn probe(p: &Probe) -> u8 {
    match bcem(p.resources) {
        Some(_) => 100,
        None => 0,
    }
}

fn bcem(resources: &[Resource]) -> Option<&Resource> {
    resources.iter().find(|r| &r.kind == b"bcem")
}

fn bad(at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io("NDIF block map ('bcem')", at, problem)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Zero,
    Raw,
    KenCode,
    Rle,
    Lzh,
    Adc,
    StuffIt,
}

impl Kind {
    fn of(code: u8) -> Option<Kind> {
        Some(match code {
            0x00 => Kind::Zero,
            0x02 => Kind::Raw,
            0x80 => Kind::KenCode,
            0x81 => Kind::Rle,
            0x82 => Kind::Lzh,
            0x83 => Kind::Adc,
            0xF0 => Kind::StuffIt,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Zero => "zero",
            Kind::Raw => "raw",
            Kind::KenCode => "KenCode",
            Kind::Rle => "run-length",
            Kind::Lzh => "LZH",
            Kind::Adc => "ADC",
            Kind::StuffIt => "StuffIt",
        }
    }
}

/// One chunk: sectors `[first, first + sectors)`, stored at `offset` for `length` bytes.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    kind: Kind,
    first: u64,
    sectors: u64,
    offset: u64,
    length: u64,
}

struct Ndif {
    name: String,
    version: u16,
    checksum: u32,
    disk: Arc<NdifDisk>,
}

fn open(data: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let map = &bcem(p.resources).expect("the probe saw it").data;
    if map.len() < HEADER {
        return Err(bad(
            0,
            format!("{} bytes, shorter than its header", map.len()),
        ));
    }
    let (version, sectors) = (be16(map, 0), u64::from(be32(map, 68)));
    let (data_offset, checksum, count) = (
        u64::from(be32(map, 76)),
        be32(map, 80),
        be32(map, 124) as usize,
    );
    if be32(map, 116) != 0 {
        return Err(bad(
            116,
            "the image is encrypted (ShrinkWrap), which dimg does not read",
        ));
    }
    if count < 1 || map.len() != HEADER + count * ENTRY {
        return Err(bad(
            124,
            format!("{count} entries in a map of {} bytes", map.len()),
        ));
    }
    let entries: Vec<(u64, u8, u64, u64)> = map[HEADER..]
        .chunks_exact(ENTRY)
        .map(|e| {
            let start = u64::from(be32(e, 0) >> 8);
            (start, e[3], u64::from(be32(e, 4)), u64::from(be32(e, 8)))
        })
        .collect();
    let mut chunks = Vec::with_capacity(count);
    for (i, pair) in entries.windows(2).enumerate() {
        let ((first, code, offset, length), (next, ..)) = (pair[0], pair[1]);
        let at = (HEADER + i * ENTRY) as u64;
        let kind = Kind::of(code)
            .ok_or_else(|| bad(at, format!("chunk {i} of unknown type 0x{code:02X}")))?;
        let span = next
            .checked_sub(first)
            .filter(|&n| n <= MAX_CHUNK_SECTORS)
            .ok_or_else(|| bad(at, format!("chunk {i} runs from sector {first} to {next}")))?;
        // Compressed chunks are found past the map's data offset (Aaru); raw ones too.
        let offset = if kind == Kind::Zero {
            0
        } else {
            offset + data_offset
        };
        if kind != Kind::Zero && offset + length > data.size() {
            return Err(bad(
                at,
                format!("chunk {i} ({length} bytes at {offset}) lies past the data fork's end"),
            ));
        }
        chunks.push(Chunk {
            kind,
            first,
            sectors: span,
            offset,
            length,
        });
    }
    let (end, code, ..) = entries[count - 1];
    if code != 0xFF || end != sectors || chunks.first().is_some_and(|c| c.first != 0) {
        return Err(bad(
            (HEADER + (count - 1) * ENTRY) as u64,
            format!("the map covers sectors up to {end}, ends with type 0x{code:02X}, for a disk of {sectors}"),
        ));
    }
    Ok(Box::new(Ndif {
        name: mac_roman(&map[5..5 + usize::from(map[4]).min(63)]),
        version,
        checksum,
        disk: Arc::new(NdifDisk {
            data,
            chunks,
            size: sectors * SECTOR,
            cached: Mutex::new(None),
        }),
    }))
}

/// The disk an NDIF map describes, decoded chunk by chunk as it is read.
struct NdifDisk {
    data: Arc<dyn ReadAt>,
    chunks: Vec<Chunk>,
    size: u64,
    /// The last chunk decoded: reads come in runs within a chunk.
    cached: Mutex<Option<(usize, Arc<Vec<u8>>)>>,
}

impl NdifDisk {
    fn decoded(&self, index: usize) -> io::Result<Arc<Vec<u8>>> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((i, bytes)) = &*cached {
            if *i == index {
                return Ok(bytes.clone());
            }
        }
        let c = self.chunks[index];
        let size = (c.sectors * SECTOR) as usize;
        let stored = || -> io::Result<Vec<u8>> {
            let mut b = vec![0u8; c.length.min(2 * size as u64 + 64) as usize];
            self.data.read_exact_at(c.offset, &mut b)?;
            Ok(b)
        };
        let failed = |e: String| {
            FormatError::io(
                "NDIF chunk",
                c.offset,
                format!("chunk {index} ({}): {e}", c.kind.name()),
            )
        };
        let bytes = match c.kind {
            Kind::Zero => vec![0u8; size],
            Kind::Raw if c.length == size as u64 => stored()?,
            Kind::Raw => return Err(failed(format!("{} bytes stored for {size}", c.length))),
            Kind::Adc => {
                let mut out = vec![0u8; size];
                Codec::Adc
                    .decompress(&stored()?, &mut out)
                    .map_err(failed)?;
                out
            }
            Kind::Rle => unrun(&stored()?, size).map_err(failed)?,
            Kind::KenCode | Kind::Lzh | Kind::StuffIt => {
                return Err(failed(
                    "a compression no published description documents; dimg does not read it"
                        .into(),
                ))
            }
        };
        let bytes = Arc::new(bytes);
        *cached = Some((index, bytes.clone()));
        Ok(bytes)
    }
}

impl ReadAt for NdifDisk {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let sector = offset / SECTOR;
        let index = self
            .chunks
            .partition_point(|c| c.first + c.sectors <= sector);
        let c = self.chunks[index];
        let bytes = self.decoded(index)?;
        let within = (offset - c.first * SECTOR) as usize;
        let n = buf
            .len()
            .min(bytes.len() - within)
            .min((self.size - offset) as usize);
        buf[..n].copy_from_slice(&bytes[within..within + n]);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.size
    }
}

impl Container for Ndif {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }

    fn facts(&self) -> Vec<Fact> {
        let mut kinds: Vec<(&str, usize)> = Vec::new();
        for c in &self.disk.chunks {
            match kinds.iter_mut().find(|(k, _)| *k == c.kind.name()) {
                Some((_, n)) => *n += 1,
                None => kinds.push((c.kind.name(), 1)),
            }
        }
        let chunks = kinds
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        vec![
            Fact::new("Image name", self.name.clone()),
            Fact::new("NDIF version", self.version.to_string()),
            Fact::new("Chunks", chunks),
            Fact::new(
                "Checksum",
                format!("{:08X} (stored; not checked)", self.checksum),
            ),
        ]
    }
}
