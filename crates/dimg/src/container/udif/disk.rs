//! The virtual disk of a UDIF image as a [`ReadAt`]: one sorted run table over every block
//! table (binary search per read, like qemu), compressed chunks decompressed on demand — in
//! parallel when a read spans several — and a small cache for reads that touch part of a chunk.

use super::mish::{Chunk, ChunkKind};
use crate::error::FormatError;
use crate::io::ReadAt;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};

/// A decompressed chunk, or why it could not be: filled once, by the first reader that needs it,
/// while the others that need it too wait rather than decompress it again.
type Slot = Arc<OnceLock<Result<Arc<Vec<u8>>, (io::ErrorKind, String)>>>;

pub struct UdifDisk {
    file: Arc<dyn ReadAt>,
    size: u64,
    runs: Vec<Chunk>,
    cache: Mutex<VecDeque<(usize, Slot)>>,
}

/// Decompressed chunks kept for partial reads: 12 of hdiutil's 1 MiB chunks, enough for a
/// catalog walk and for several readers at once, within a mount server's 64 MiB.
const CACHE_CHUNKS: usize = 12;
const CACHE_BYTES: usize = 12 << 20;

fn start(c: &Chunk) -> u64 {
    c.first_sector * 512
}

fn end(c: &Chunk) -> u64 {
    (c.first_sector + c.sectors) * 512
}

impl UdifDisk {
    /// `runs` must lie inside the disk (`size` bytes); they are sorted here, and overlapping
    /// runs are refused: which one holds the data would be a guess.
    pub fn new(file: Arc<dyn ReadAt>, size: u64, mut runs: Vec<Chunk>) -> io::Result<Self> {
        runs.sort_by_key(|c| c.first_sector);
        for pair in runs.windows(2) {
            if end(&pair[0]) > start(&pair[1]) {
                return Err(FormatError::io(
                    "UDIF block tables",
                    0,
                    format!("two chunks both claim sector {}", pair[1].first_sector),
                ));
            }
        }
        Ok(UdifDisk {
            file,
            size,
            runs,
            cache: Mutex::new(VecDeque::new()),
        })
    }

    fn decompress(&self, run: &Chunk, out: &mut [u8]) -> io::Result<()> {
        let ChunkKind::Compressed(codec) = run.kind else {
            unreachable!("only compressed chunks are decompressed")
        };
        let mut input = vec![0; run.file_length as usize];
        self.file.read_exact_at(run.file_offset, &mut input)?;
        codec.decompress(&input, out).map_err(|problem| {
            FormatError::io(
                "UDIF chunk",
                run.file_offset,
                format!("sectors {}+{}: {problem}", run.first_sector, run.sectors),
            )
        })
    }

    fn cached(&self, index: usize) -> io::Result<Arc<Vec<u8>>> {
        let slot = {
            // Least recently used goes first: a B-tree walk keeps coming back to the same chunks.
            let mut cache = self.lock();
            match cache.iter().position(|(i, _)| *i == index) {
                Some(at) => {
                    let hit = cache.remove(at).expect("a position in the cache");
                    cache.push_front(hit.clone());
                    hit.1
                }
                None => {
                    let slot = Slot::default();
                    cache.push_front((index, slot.clone()));
                    let bytes = |c: &VecDeque<(usize, Slot)>| -> usize {
                        c.iter()
                            .filter_map(|(_, s)| s.get().and_then(|d| d.as_ref().ok()))
                            .map(|d| d.len())
                            .sum()
                    };
                    while cache.len() > CACHE_CHUNKS
                        || (cache.len() > 1 && bytes(&cache) > CACHE_BYTES)
                    {
                        cache.pop_back();
                    }
                    slot
                }
            }
        };
        let filled = slot.get_or_init(|| {
            let run = &self.runs[index];
            let mut data = vec![0; (run.sectors * 512) as usize];
            match self.decompress(run, &mut data) {
                Ok(()) => Ok(Arc::new(data)),
                Err(e) => Err((e.kind(), e.to_string())),
            }
        });
        filled
            .clone()
            .map_err(|(kind, problem)| io::Error::new(kind, problem))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(usize, Slot)>> {
        // A panic elsewhere cannot leave the cache inconsistent: entries are whole.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fills `out` with the bytes at `offset` into run `index` (or zeros for a gap).
    fn fill(&self, index: Option<usize>, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let Some(index) = index else {
            out.fill(0);
            return Ok(());
        };
        let run = &self.runs[index];
        match run.kind {
            ChunkKind::Zero | ChunkKind::Ignore => out.fill(0),
            ChunkKind::Raw => self.file.read_exact_at(run.file_offset + offset, out)?,
            ChunkKind::Compressed(_) if offset == 0 && out.len() as u64 == run.sectors * 512 => {
                self.decompress(run, out)?
            }
            ChunkKind::Compressed(_) => {
                let data = self.cached(index)?;
                out.copy_from_slice(&data[offset as usize..offset as usize + out.len()]);
            }
        }
        Ok(())
    }
}

impl ReadAt for UdifDisk {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = buf.len().min((self.size - offset) as usize);
        // Split the request at run boundaries: (run or gap, offset into it, its part of buf).
        let mut pieces = Vec::new();
        let mut rest = &mut buf[..n];
        let mut pos = offset;
        let mut i = self.runs.partition_point(|r| end(r) <= pos);
        while !rest.is_empty() {
            let (index, from, until) = match self.runs.get(i) {
                Some(r) if start(r) <= pos => {
                    i += 1;
                    (Some(i - 1), pos - start(r), end(r))
                }
                Some(r) => (None, 0, start(r)),
                None => (None, 0, u64::MAX),
            };
            let take = rest.len().min((until - pos) as usize);
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
            pieces.push((index, from, head));
            rest = tail;
            pos += take as u64;
        }
        let compressed = pieces
            .iter()
            .filter(|(i, _, _)| {
                i.is_some_and(|i| matches!(self.runs[i].kind, ChunkKind::Compressed(_)))
            })
            .count();
        if compressed > 1 {
            pieces
                .into_par_iter()
                .try_for_each(|(index, from, out)| self.fill(index, from, out))?;
        } else {
            for (index, from, out) in pieces {
                self.fill(index, from, out)?;
            }
        }
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.size
    }

    /// Zero-fill and ignore chunks, and gaps no chunk claims. A long run of them is followed
    /// a bounded way: a table of a million tiny chunks is not walked at every block.
    fn zeros_until(&self, offset: u64) -> u64 {
        const MOST: usize = 4096;
        let first = self.runs.partition_point(|r| end(r) <= offset);
        let mut pos = offset;
        for r in self.runs.iter().skip(first).take(MOST) {
            if start(r) > pos {
                // A gap before it, then the chunk.
                pos = start(r);
            }
            if !matches!(r.kind, ChunkKind::Zero | ChunkKind::Ignore) {
                return pos.min(self.size);
            }
            pos = end(r);
        }
        match self.runs.len() - first <= MOST {
            // Past the last chunk: a gap to the end.
            true => self.size.max(offset),
            false => pos.min(self.size).max(offset),
        }
    }
}
