//! FAT12/16/32 with long names, read-only (formats.md §i, Microsoft's FAT specification). dimg
//! reads FAT itself rather than through the `fatfs` crate it writes with: fatfs follows a
//! cluster chain for as long as it goes, and a damaged chain that loops goes for ever. Here every
//! chain is bounded — a file's by its size, a folder's by the clusters it may hold — and a loop
//! is an error.

use super::{
    bad, Layout, Root, ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_VOLUME_LABEL, ENTRY, MAX_DIR_BYTES,
};
use crate::fs::runs::{self, ChainError};
use crate::fs::{DirEntry, EntryKind, Handle, Volume};
use crate::io::{Concat, ReadAt, Slice};
use std::io;
use std::sync::Arc;

pub struct Fat {
    source: Arc<dyn ReadAt>,
    layout: Layout,
    label: String,
}

/// What an entry's handle holds: its first cluster, and for the root of FAT12/16 nothing.
#[derive(Clone, Copy)]
struct Start(Option<u32>);

impl Fat {
    /// Where the file or folder `entry` starts; None for one without clusters (an empty file).
    pub(super) fn first_cluster(&self, entry: &DirEntry) -> io::Result<Option<u32>> {
        Ok(entry.handle.get::<Start>()?.0)
    }

    pub fn open(source: Arc<dyn ReadAt>) -> io::Result<Self> {
        let layout = Layout::read(&*source)?;
        let mut boot = [0u8; 90];
        source.read_exact_at(0, &mut boot)?;
        let label_at = if layout.bits == 32 { 71 } else { 43 };
        let label = crate::fs::label_text(&String::from_utf8_lossy(&boot[label_at..label_at + 11]));
        Ok(Fat {
            source,
            layout,
            label,
        })
    }

    /// The clusters of the chain from `first`, at most `limit` of them; a chain that comes back
    /// to a cluster it passed, or leaves the volume, is an error.
    fn chain(&self, first: u32, limit: u64) -> io::Result<Vec<u32>> {
        let layout = &self.layout;
        let holds = |n: u32| n >= 2 && u64::from(n) < layout.clusters + 2;
        let next = |n: u32| -> io::Result<Option<u32>> {
            let (at, len) = layout.entry_at(u64::from(n));
            let mut bytes = [0u8; 4];
            self.source
                .read_exact_at(layout.fat + at, &mut bytes[..len])?;
            let next = layout.decode(u64::from(n), &bytes);
            Ok((!layout.ends_chain(next)).then_some(next))
        };
        runs::follow_chain(first, limit, holds, next).map_err(|e| {
            let problem = match e {
                ChainError::Io(e) => return e,
                ChainError::Outside(n) => format!("cluster {n} is not on the volume"),
                ChainError::Loop(n) => {
                    format!("the chain from cluster {first} loops back to cluster {n}")
                }
            };
            bad("FAT cluster chain", layout.fat, problem)
        })
    }

    /// The FAT32 root folder's clusters, each as where it starts on the volume; none for the
    /// fixed root of FAT12/16.
    pub(super) fn root_clusters(&self) -> io::Result<Vec<u64>> {
        let Root::Chain(first) = self.layout.root else {
            return Ok(Vec::new());
        };
        let clusters = self.chain(first, MAX_DIR_BYTES.div_ceil(self.layout.cluster))?;
        Ok(clusters
            .iter()
            .map(|&n| self.layout.span(u64::from(n), u64::from(n) + 1).0)
            .collect())
    }

    pub(super) fn cluster_bytes(&self) -> u64 {
        self.layout.cluster
    }

    /// The bytes of the chain from `first`, cut to `size`, as one source.
    fn chain_data(&self, first: u32, size: u64) -> io::Result<Arc<dyn ReadAt>> {
        let clusters = self.chain(first, size.div_ceil(self.layout.cluster))?;
        self.clusters_data(first, &clusters, size)
    }

    /// The bytes of `clusters` (the chain from `first`), cut to `size`, as one source.
    fn clusters_data(
        &self,
        first: u32,
        clusters: &[u32],
        size: u64,
    ) -> io::Result<Arc<dyn ReadAt>> {
        let mut extents: Vec<(u64, u64)> = Vec::new();
        for &c in clusters {
            let (at, len) = self.layout.span(u64::from(c), u64::from(c) + 1);
            match extents.last_mut() {
                Some(last) if last.0 + last.1 == at => last.1 += len,
                _ => extents.push((at, len)),
            }
        }
        let mut left = size;
        for e in &mut extents {
            e.1 = e.1.min(left);
            left -= e.1;
        }
        if left > 0
            || extents
                .iter()
                .any(|(at, len)| at + len > self.source.size())
        {
            return Err(bad(
                "FAT cluster chain",
                self.layout.fat,
                format!("the chain from cluster {first} holds less than its {size} bytes"),
            ));
        }
        Ok(Arc::new(Concat::extents(&self.source, &extents)))
    }

    /// A folder's raw entries.
    fn folder_bytes(&self, start: Start) -> io::Result<Vec<u8>> {
        let data: Arc<dyn ReadAt> = match (start.0, &self.layout.root) {
            (None, &Root::Fixed { at, size }) => {
                Arc::new(Slice::new(self.source.clone(), at, size))
            }
            (None, &Root::Chain(first)) | (Some(first), _) => {
                let clusters = self.chain(first, MAX_DIR_BYTES.div_ceil(self.layout.cluster))?;
                let size = clusters.len() as u64 * self.layout.cluster;
                self.clusters_data(first, &clusters, size)?
            }
        };
        let mut bytes = vec![0u8; data.size().min(MAX_DIR_BYTES) as usize];
        data.read_exact_at(0, &mut bytes)?;
        Ok(bytes)
    }
}

/// A long name's 13 UTF-16 units in one entry.
pub(super) fn long_name_units(e: &[u8]) -> impl Iterator<Item = u16> + '_ {
    [1..11, 14..26, 28..32]
        .into_iter()
        .flat_map(move |r| e[r].chunks_exact(2))
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
}

/// A long name from its pieces (checksum, units) as the entries hold them: stored last piece
/// first, the name ending at a NUL or at 0xFFFF padding.
pub(super) fn long_name(pieces: &[(u8, Vec<u16>)]) -> String {
    let units: Vec<u16> = pieces.iter().rev().flat_map(|p| p.1.clone()).collect();
    let end = units
        .iter()
        .position(|&u| u == 0 || u == 0xFFFF)
        .unwrap_or(units.len());
    String::from_utf16_lossy(&units[..end])
}

/// A short entry's first cluster: its high half (FAT32) and its low half.
pub(super) fn first_cluster(e: &[u8]) -> u32 {
    u32::from(u16::from_le_bytes([e[26], e[27]]))
        | u32::from(u16::from_le_bytes([e[20], e[21]])) << 16
}

/// The checksum of an 8.3 name that its long-name entries carry.
pub(super) fn short_name_checksum(name: &[u8]) -> u8 {
    name.iter()
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// An 8.3 name as Windows shows it: lower case where the NT flags (byte 12) say so.
pub(super) fn short_name(e: &[u8]) -> String {
    let mut raw = e[..11].to_vec();
    if raw[0] == 0x05 {
        raw[0] = 0xE5; // a first byte 0xE5 is stored as 0x05, 0xE5 marking deletion
    }
    let part = |bytes: &[u8], lower: bool| {
        let text: String = bytes
            .iter()
            .map(|&b| if b.is_ascii() { b as char } else { '\u{FFFD}' })
            .collect::<String>()
            .trim_end()
            .to_string();
        if lower {
            text.to_ascii_lowercase()
        } else {
            text
        }
    };
    let base = part(&raw[..8], e[12] & 0x08 != 0);
    let ext = part(&raw[8..], e[12] & 0x10 != 0);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

/// A FAT date and time (local time, no zone; shown as UTC, as 7-Zip and mtools do).
fn unix(date: u16, time: u16) -> Option<i64> {
    let (year, month, day) = (
        1980 + i64::from(date >> 9),
        i64::from((date >> 5) & 0x0F),
        i64::from(date & 0x1F),
    );
    (month >= 1 && day >= 1).then(|| {
        crate::fs::days_from_civil(year, month, day) * 86_400
            + i64::from(time >> 11) * 3600
            + i64::from((time >> 5) & 0x3F) * 60
            + i64::from(time & 0x1F) * 2
    })
}

impl Volume for Fat {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn case_sensitive(&self) -> bool {
        false
    }

    fn used(&self) -> Option<u64> {
        let free: u64 = self.free_extents().ok()?.iter().map(|e| e.1).sum();
        Some((self.layout.clusters * self.layout.cluster).saturating_sub(free))
    }

    fn free_extents(&self) -> io::Result<Vec<(u64, u64)>> {
        let layout = &self.layout;
        // The first FAT, read a megabyte at a time: a cluster is free when its entry is 0.
        const CHUNK: u64 = 1 << 20;
        let (mut free, mut run): (Vec<(u64, u64)>, Option<u64>) = (Vec::new(), None);
        let (mut chunk, mut chunk_at) = (Vec::new(), u64::MAX);
        let mut byte = |at: u64| -> io::Result<u8> {
            if at / CHUNK != chunk_at {
                chunk_at = at / CHUNK;
                let start = layout.fat + chunk_at * CHUNK;
                chunk.resize(
                    CHUNK.min(self.source.size().saturating_sub(start)) as usize,
                    0,
                );
                self.source.read_exact_at(start, &mut chunk)?;
            }
            chunk.get((at % CHUNK) as usize).copied().ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "the FAT runs past the volume")
            })
        };
        let last = layout.clusters + 2;
        for n in 2..last {
            let (at, len) = layout.entry_at(n);
            let mut bytes = [0u8; 4];
            for (i, b) in bytes[..len].iter_mut().enumerate() {
                *b = byte(at + i as u64)?;
            }
            match (layout.decode(n, &bytes) == 0, run) {
                (true, None) => run = Some(n),
                (false, Some(start)) => {
                    free.push(layout.span(start, n));
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(start) = run {
            free.push(layout.span(start, last));
        }
        Ok(free)
    }

    fn root(&self) -> DirEntry {
        let inode = match self.layout.root {
            Root::Chain(first) => u64::from(first),
            Root::Fixed { .. } => 0,
        };
        DirEntry::root(inode, 0, Handle::new(Start(None)))
    }

    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        let start = *dir.handle.get::<Start>()?;
        let bytes = self.folder_bytes(start)?;
        let mut out = Vec::new();
        // Long-name units gathered from the entries before a short one, with their checksum.
        let mut long: Vec<(u8, Vec<u16>)> = Vec::new();
        for e in bytes.chunks_exact(ENTRY) {
            match e[0] {
                0x00 => break,
                0xE5 => {
                    long.clear();
                    continue;
                }
                _ => {}
            }
            let attr = e[11];
            if attr & 0x3F == ATTR_LONG_NAME {
                if e[0] & 0x40 != 0 {
                    long.clear();
                }
                long.push((e[13], long_name_units(e).collect()));
                continue;
            }
            let pieces = std::mem::take(&mut long);
            if attr & ATTR_VOLUME_LABEL != 0 || e[0] == b'.' {
                continue;
            }
            let checksum = short_name_checksum(&e[..11]);
            let name = if !pieces.is_empty() && pieces.iter().all(|p| p.0 == checksum) {
                long_name(&pieces)
            } else {
                short_name(e)
            };
            let first = first_cluster(e);
            let is_dir = attr & ATTR_DIRECTORY != 0;
            out.push(DirEntry {
                kind: if is_dir {
                    EntryKind::Directory
                } else {
                    EntryKind::File
                },
                size: if is_dir {
                    0
                } else {
                    u64::from(u32::from_le_bytes([e[28], e[29], e[30], e[31]]))
                },
                modified: unix(
                    u16::from_le_bytes([e[24], e[25]]),
                    u16::from_le_bytes([e[22], e[23]]),
                ),
                mode: None,
                owner: None,
                links: 1,
                // A folder is its first cluster: a subfolder naming an ancestor's is a loop.
                inode: u64::from(first),
                streams: Vec::new(),
                handle: Handle::new(Start(Some(first))),
                name,
            });
        }
        Ok(out)
    }

    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        let Start(first) = *file.handle.get::<Start>()?;
        match first {
            _ if file.size == 0 => Ok(Arc::new(Vec::new())),
            Some(first) => self.chain_data(first, file.size),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the root is not a file",
            )),
        }
    }
}
