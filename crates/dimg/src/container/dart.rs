//! DART images (Apple's Disk Archival/Retrieval Tool 1.5): a header — compression, disk kind and
//! size, one length per chunk — then the chunks. A chunk is 40 sectors: their data, then on a
//! GCR floppy their 12-byte tags. Chunks are stored as they are (length 0xFFFF), run-length
//! coded ("fast": lengths in 16-bit words) or LZHUF-compressed ("best"). Floppies are small: the
//! disk is decoded whole when the image opens.

use super::{Container, Driver, Fact, Probe};
use crate::bytes::be16;
use crate::error::FormatError;
use crate::io::ReadAt;
use crate::magic::Sniff;
use std::io;
use std::sync::Arc;

pub static DRIVER: Driver = Driver {
    name: "DART image",
    probe,
    open,
};

const SECTORS_PER_CHUNK: u64 = 40;

fn probe(p: &Probe) -> u8 {
    match sniffed(p.sniff) {
        true => 60,
        false => 0,
    }
}

/// DART has no magic number. Its header:  a compression (0 fast, 1 best, 2 none), a disk of 400K, 720K, 800K or 1440K,
/// and a length for each chunk that, summed, is the rest of the file.
fn sniffed(s: &Sniff) -> bool {
    let h = &s.head;
    let Some(kb) = s.head_u16_be(2) else {
        return false;
    };
    if h[0] > 2 || !matches!(kb, 400 | 720 | 800 | 1440) {
        return false;
    }
    let entries = if kb == 1440 { 72 } else { 40 };
    let header = 4 + 2 * entries;
    let Some(lengths) = h.get(4..header) else {
        return false;
    };
    let chunk = chunk_size(kb);
    let stored: u64 = lengths
        .chunks_exact(2)
        .take(usize::from(kb) * 1024 / 20480)
        .map(|l| match (u16::from_be_bytes([l[0], l[1]]), h[0]) {
            (0xFFFF, _) => chunk,
            (n, 0) => 2 * u64::from(n),
            (n, _) => u64::from(n),
        })
        .sum();
    header as u64 + stored == s.size
}

fn bad(at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io("DART chunk", at, problem)
}

/// Bytes of a decoded chunk on a disk of `kb` KiB: 400K and 800K floppies are GCR, with tags.
fn chunk_size(kb: u16) -> u64 {
    let tags = if matches!(kb, 400 | 800) { 12 } else { 0 };
    SECTORS_PER_CHUNK * (512 + tags)
}

struct Dart {
    disk: Arc<Vec<u8>>,
    compression: &'static str,
    tags: Arc<Vec<u8>>,
}

fn open(file: Arc<dyn ReadAt>, _: &Probe) -> io::Result<Box<dyn Container>> {
    let mut head = [0u8; 4 + 2 * 72];
    file.read_exact_at(0, &mut head[..4])?;
    let (method, kb) = (head[0], be16(&head, 2));
    let entries = if kb == 1440 { 72 } else { 40 };
    file.read_exact_at(4, &mut head[4..4 + 2 * entries])?;
    let chunk = chunk_size(kb) as usize;
    let chunks = usize::from(kb) * 1024 / 20480;
    let mut disk = Vec::with_capacity(chunks * 20480);
    let mut tags = Vec::new();
    let mut at = 4 + 2 * entries as u64;
    for i in 0..chunks {
        let length = be16(&head, 4 + 2 * i);
        let stored = match (length, method) {
            (0xFFFF, _) => chunk as u64,
            (n, 0) => 2 * u64::from(n),
            (n, _) => u64::from(n),
        };
        let mut packed = vec![0u8; stored as usize];
        file.read_exact_at(at, &mut packed)?;
        let plain = match (length, method) {
            (0xFFFF, _) | (_, 2) => packed,
            (_, 0) => unrun(&packed, chunk).map_err(|e| bad(at, format!("chunk {i}: {e}")))?,
            _ => crate::codec::lzhuf::decompress(&packed, chunk)
                .map_err(|e| bad(at, format!("chunk {i}: {e}")))?,
        };
        if plain.len() != chunk {
            return Err(bad(
                at,
                format!("chunk {i} holds {} bytes, not {chunk}", plain.len()),
            ));
        }
        disk.extend_from_slice(&plain[..20480]);
        tags.extend_from_slice(&plain[20480..]);
        at += stored;
    }
    Ok(Box::new(Dart {
        disk: Arc::new(disk),
        compression: match method {
            0 => "fast (run-length)",
            1 => "best (LZHUF)",
            _ => "none",
        },
        tags: Arc::new(tags),
    }))
}

/// DART's run-length code (NDIF's too), in 16-bit words: a positive count copies that many words; a negative
/// one repeats the next word that many times.
pub(crate) fn unrun(packed: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(size);
    let mut i = 0;
    while out.len() < size {
        let count = packed
            .get(i..i + 2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .ok_or("the run-length code ends early")?;
        i += 2;
        let words = usize::from(count.unsigned_abs());
        if out.len() + 2 * words > size {
            return Err(format!("a run of {words} words past the chunk's end"));
        }
        if count >= 0 {
            let literal = packed
                .get(i..i + 2 * words)
                .ok_or("a literal run past the data")?;
            out.extend_from_slice(literal);
            i += 2 * words;
        } else {
            let word = packed.get(i..i + 2).ok_or("a repeat without its word")?;
            for _ in 0..words {
                out.extend_from_slice(word);
            }
            i += 2;
        }
    }
    Ok(out)
}

impl Container for Dart {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }

    fn tags(&self) -> Option<Arc<dyn ReadAt>> {
        (!self.tags.is_empty()).then(|| self.tags.clone() as Arc<dyn ReadAt>)
    }

    fn facts(&self) -> Vec<Fact> {
        vec![
            Fact::new("Compression", self.compression),
            Fact::new("Tags", format!("{} bytes", self.tags.len())),
        ]
    }
}
