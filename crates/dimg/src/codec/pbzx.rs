//! pbzx, Apple's payload compression (installer packages, `.xip`): "pbzx", the chunk size, then
//! chunks, each its decoded length and stored length (big-endian 64-bit) and an XZ stream of its
//! own — or the bytes as they are, where XZ would not shrink them. Every chunk but the last holds
//! the chunk size. Chunks decode on their own: a read decodes only those it touches, and a pass
//! through the whole stream decodes them on every core.

use super::Codec;
use crate::bytes::be64;
use crate::error::FormatError;
use crate::io::ReadAt;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

pub const MAGIC: &[u8; 4] = b"pbzx";
const XZ_MAGIC: &[u8; 6] = b"\xfd7zXZ\0";
/// Apple's chunks hold 16 MiB: a larger chunk is not one a Mac wrote, and would be held whole.
const MAX_CHUNK: u64 = 64 << 20;
/// XZ's own framing around bytes it cannot shrink.
const XZ_OVERHEAD: u64 = 64 << 10;
/// Decoded chunks kept for reads that come back to them (one that straddles two).
const KEPT: usize = 2;

/// A pbzx stream, read at any offset of what it decodes to.
pub struct Pbzx {
    source: Arc<dyn ReadAt>,
    chunk_size: u64,
    /// Where each chunk's header is in the source.
    chunks: Vec<u64>,
    size: u64,
    kept: Mutex<VecDeque<(usize, Arc<Vec<u8>>)>>,
}

fn bad(offset: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io("pbzx chunk", offset, problem)
}

impl Pbzx {
    /// Reads the chunk headers of `source`, which must begin with the magic.
    pub fn open(source: Arc<dyn ReadAt>) -> io::Result<Self> {
        let mut head = [0u8; 12];
        source.read_exact_at(0, &mut head)?;
        if &head[..4] != MAGIC {
            return Err(FormatError::io("pbzx header", 0, "no pbzx magic"));
        }
        let chunk_size = be64(&head, 4);
        if chunk_size == 0 || chunk_size > MAX_CHUNK {
            return Err(FormatError::io(
                "pbzx header",
                4,
                format!("chunks of {chunk_size} bytes (dimg reads up to {MAX_CHUNK})"),
            ));
        }
        let (mut chunks, mut size, mut at) = (Vec::new(), 0u64, 12u64);
        let mut last_short = false;
        while at < source.size() {
            let mut header = [0u8; 16];
            source.read_exact_at(at, &mut header)?;
            let (len, stored) = (be64(&header, 0), be64(&header, 8));
            if last_short || len == 0 || len > chunk_size {
                return Err(bad(
                    at,
                    format!("{len} bytes where every chunk but the last holds {chunk_size}"),
                ));
            }
            if stored == 0 || stored > len + XZ_OVERHEAD || stored > source.size() - at - 16 {
                return Err(bad(
                    at,
                    format!("{stored} bytes stored for {len}, or past the end"),
                ));
            }
            last_short = len < chunk_size;
            chunks.push(at);
            size += len;
            at += 16 + stored;
        }
        Ok(Pbzx {
            source,
            chunk_size,
            chunks,
            size,
            kept: Mutex::new(VecDeque::new()),
        })
    }

    /// Chunk `i`, decoded.
    fn decode(&self, i: usize) -> io::Result<Vec<u8>> {
        let at = self.chunks[i];
        let mut header = [0u8; 16];
        self.source.read_exact_at(at, &mut header)?;
        let (len, stored) = (be64(&header, 0), be64(&header, 8));
        let mut input = vec![0u8; stored as usize];
        self.source.read_exact_at(at + 16, &mut input)?;
        let mut out = vec![0u8; len as usize];
        if input.starts_with(XZ_MAGIC) {
            Codec::Xz
                .decompress(&input, &mut out)
                .map_err(|e| bad(at, e))?;
        } else if stored == len {
            out = input;
        } else {
            return Err(bad(at, "neither XZ nor stored as it is"));
        }
        Ok(out)
    }

    /// Chunk `i`, decoded or kept from before.
    fn chunk(&self, i: usize) -> io::Result<Arc<Vec<u8>>> {
        let kept = |k: &VecDeque<(usize, Arc<Vec<u8>>)>| {
            k.iter().find(|(n, _)| *n == i).map(|(_, c)| c.clone())
        };
        if let Some(c) = kept(&self.kept.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(c);
        }
        let chunk = Arc::new(self.decode(i)?);
        let mut k = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if k.len() == KEPT {
            k.pop_front();
        }
        k.push_back((i, chunk.clone()));
        Ok(chunk)
    }

    /// The whole decoded stream in order, its chunks decoded a batch at a time on every core.
    pub fn reader(self: Arc<Self>) -> impl Read + Send {
        InOrder {
            pbzx: self,
            next: 0,
            ready: VecDeque::new(),
            current: Vec::new(),
            within: 0,
        }
    }
}

impl ReadAt for Pbzx {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let i = (offset / self.chunk_size) as usize;
        let chunk = self.chunk(i)?;
        let within = (offset - i as u64 * self.chunk_size) as usize;
        let n = buf.len().min(chunk.len() - within);
        buf[..n].copy_from_slice(&chunk[within..within + n]);
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.size
    }
}

struct InOrder {
    pbzx: Arc<Pbzx>,
    next: usize,
    ready: VecDeque<Vec<u8>>,
    current: Vec<u8>,
    within: usize,
}

impl Read for InOrder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.within == self.current.len() {
            if self.ready.is_empty() {
                let end = (self.next + rayon::current_num_threads()).min(self.pbzx.chunks.len());
                if self.next == end {
                    return Ok(0);
                }
                let batch: Vec<Vec<u8>> = (self.next..end)
                    .into_par_iter()
                    .map(|i| self.pbzx.decode(i))
                    .collect::<io::Result<_>>()?;
                self.next = end;
                self.ready.extend(batch);
            }
            self.current = self.ready.pop_front().unwrap_or_default();
            self.within = 0;
        }
        let n = buf.len().min(self.current.len() - self.within);
        buf[..n].copy_from_slice(&self.current[self.within..self.within + n]);
        self.within += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pbzx stream of `data` in chunks of `chunk` bytes, each XZ or, where `stored` says,
    /// kept as it is.
    fn pbzx(data: &[u8], chunk: usize, stored: impl Fn(usize) -> bool) -> Vec<u8> {
        let mut out = b"pbzx".to_vec();
        out.extend((chunk as u64).to_be_bytes());
        for (i, plain) in data.chunks(chunk).enumerate() {
            let packed = match stored(i) {
                true => plain.to_vec(),
                false => Codec::Xz.compress(plain, 6),
            };
            out.extend((plain.len() as u64).to_be_bytes());
            out.extend((packed.len() as u64).to_be_bytes());
            out.extend(packed);
        }
        out
    }

    #[test]
    fn chunks_read_at_any_offset_and_in_order_on_every_core() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 / 3) as u8).collect();
        let stream = Arc::new(Pbzx::open(Arc::new(pbzx(&data, 65536, |i| i == 1))).unwrap());
        assert_eq!(stream.size(), data.len() as u64);
        let mut across = vec![0u8; 100_000];
        stream.read_exact_at(60_000, &mut across).unwrap();
        assert_eq!(across, data[60_000..160_000]);
        let mut all = Vec::new();
        stream.reader().read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
    }

    #[test]
    fn damaged_headers_are_refused_by_what_is_wrong() {
        let data = vec![5u8; 200_000];
        let good = pbzx(&data, 65536, |_| false);
        let mut short_middle = good.clone();
        // The first chunk claims fewer bytes than the chunk size, though another follows.
        short_middle[12..20].copy_from_slice(&1000u64.to_be_bytes());
        let mut past_end = good.clone();
        past_end[20..28].copy_from_slice(&u64::MAX.to_be_bytes());
        let mut huge = good.clone();
        huge[4..12].copy_from_slice(&(1u64 << 40).to_be_bytes());
        for bad in [short_middle, past_end, huge] {
            let e = Pbzx::open(Arc::new(bad)).err().expect("refused");
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        }
        let mut garbled = good;
        garbled[40] ^= 0xFF;
        let stream = Pbzx::open(Arc::new(garbled)).unwrap();
        assert!(stream.read_exact_at(0, &mut [0u8; 10]).is_err());
    }
}
