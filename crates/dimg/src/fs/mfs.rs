//! MFS, the Macintosh File System of the first 400K floppies (Inside Macintosh II, "The File
//! Manager"), read-only: the master directory block at byte 1024 (signature 0xD2D7), its map of
//! 12-bit allocation block links right after it, and a flat file directory of variable-length
//! entries that never cross a 512-byte block. Every file is at the root: MFS has no folders (the
//! Finder drew them from each file's Finder info). Forks are chains through the block map.

use super::hfsplus::date;
use super::{DirEntry, EntryKind, Handle, Stream, Volume};
use crate::bytes::{be16, be32, mac_roman};
use crate::error::FormatError;
use crate::io::{Concat, ReadAt};
use std::io;
use std::sync::Arc;

const MDB_AT: u64 = 1024;
const MAP_AT: usize = 64;
const SECTOR: u64 = 512;
/// The fixed part of a directory entry, before its name.
const ENTRY_FIXED: usize = 50;

fn bad(at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io("MFS master directory block", at, problem)
}

/// A fork: its first allocation block (0 for none) and its length.
#[derive(Clone, Copy, Debug)]
struct Fork {
    start: u16,
    size: u64,
}

#[derive(Clone, Copy, Debug)]
struct File {
    data: Fork,
    resource: Fork,
}

pub struct Mfs {
    part: Arc<dyn ReadAt>,
    label: String,
    /// The allocation block map: the block after block n (n ≥ 2), 1 at a fork's end, 0 free.
    map: Vec<u16>,
    block: u64,
    /// Where allocation block 2 starts.
    first: u64,
    directory: (u64, u64),
}

impl Mfs {
    pub fn open(part: Arc<dyn ReadAt>) -> io::Result<Mfs> {
        let mut mdb = [0u8; MAP_AT];
        part.read_exact_at(MDB_AT, &mut mdb)?;
        let (dir_start, dir_blocks) = (u64::from(be16(&mdb, 14)), u64::from(be16(&mdb, 16)));
        let (count, block) = (usize::from(be16(&mdb, 18)), u64::from(be32(&mdb, 20)));
        let first = u64::from(be16(&mdb, 28)) * SECTOR;
        if block == 0 || block % SECTOR != 0 || block > 1 << 20 {
            return Err(bad(MDB_AT + 20, format!("allocation block size {block}")));
        }
        if first + count as u64 * block > part.size()
            || (dir_start + dir_blocks) * SECTOR > part.size()
        {
            return Err(bad(
                MDB_AT + 18,
                format!(
                    "{count} blocks of {block} bytes do not fit the volume's {} bytes",
                    part.size()
                ),
            ));
        }
        // Two 12-bit links in every three bytes, for blocks 2, 3, ...
        let mut packed = vec![0u8; (count * 3).div_ceil(2)];
        part.read_exact_at(MDB_AT + MAP_AT as u64, &mut packed)?;
        let map = (0..count)
            .map(|i| {
                let at = i * 3 / 2;
                let pair =
                    u16::from_be_bytes([packed[at], packed.get(at + 1).copied().unwrap_or(0)]);
                if i % 2 == 0 {
                    pair >> 4
                } else {
                    pair & 0xFFF
                }
            })
            .collect();
        Ok(Mfs {
            part,
            label: mac_roman(&mdb[37..37 + usize::from(mdb[36]).min(27)]),
            map,
            block,
            first,
            directory: (dir_start * SECTOR, dir_blocks * SECTOR),
        })
    }

    /// A fork's bytes: its chain of blocks through the map, at most as many as its length needs;
    /// a chain that ends early, loops or leaves the map is an error.
    fn fork(&self, fork: Fork) -> io::Result<Arc<dyn ReadAt>> {
        let needed = fork.size.div_ceil(self.block);
        let mut extents: Vec<(u64, u64)> = Vec::new();
        let mut n = fork.start;
        for k in 0..needed {
            let index = usize::from(n).wrapping_sub(2);
            if n < 2 || index >= self.map.len() {
                return Err(FormatError::io(
                    "MFS block map",
                    MDB_AT + MAP_AT as u64,
                    format!("a fork of {} bytes reaches block {n}, which is not on the volume (after {k} blocks)", fork.size),
                ));
            }
            let at = self.first + index as u64 * self.block;
            let len = self.block.min(fork.size - k * self.block);
            match extents.last_mut() {
                Some(last) if last.0 + last.1 == at => last.1 += len,
                _ => extents.push((at, len)),
            }
            n = self.map[index];
        }
        Ok(Arc::new(Concat::extents(&self.part, &extents)))
    }

    fn entries(&self) -> io::Result<Vec<DirEntry>> {
        let (at, len) = self.directory;
        let mut dir = vec![0u8; len as usize];
        self.part.read_exact_at(at, &mut dir)?;
        let mut out = Vec::new();
        for block in dir.chunks(SECTOR as usize) {
            let mut p = 0;
            // An entry in use has bit 7 of its flags set; the first that is not ends the block.
            while p + ENTRY_FIXED < block.len() && block[p] & 0x80 != 0 {
                let e = &block[p..];
                let name_len = usize::from(e[ENTRY_FIXED]);
                let Some(name) = e.get(ENTRY_FIXED + 1..ENTRY_FIXED + 1 + name_len) else {
                    break;
                };
                let file = File {
                    data: Fork {
                        start: be16(e, 22),
                        size: u64::from(be32(e, 24)),
                    },
                    resource: Fork {
                        start: be16(e, 32),
                        size: u64::from(be32(e, 34)),
                    },
                };
                out.push(DirEntry {
                    name: mac_roman(name).replace('/', ":"),
                    kind: EntryKind::File,
                    size: file.data.size,
                    modified: date(be32(e, 46)),
                    mode: None,
                    owner: None,
                    links: 1,
                    inode: u64::from(be32(e, 18)),
                    streams: (file.resource.size > 0)
                        .then(|| Stream {
                            name: "rsrc".into(),
                            size: file.resource.size,
                        })
                        .into_iter()
                        .collect(),
                    handle: Handle::new(file),
                });
                p += (ENTRY_FIXED + 1 + name_len).next_multiple_of(2);
            }
        }
        Ok(out)
    }
}

impl Volume for Mfs {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn case_sensitive(&self) -> bool {
        false
    }

    fn used(&self) -> Option<u64> {
        Some(self.map.iter().filter(|&&link| link != 0).count() as u64 * self.block)
    }

    fn root(&self) -> DirEntry {
        DirEntry::root(1, 0, Handle::new(()))
    }

    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        match dir.handle.get::<()>() {
            Ok(()) => self.entries(),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{}: not a folder", dir.name),
            )),
        }
    }

    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        self.fork(file.handle.get::<File>()?.data)
    }

    fn open_stream(&self, entry: &DirEntry, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        match name {
            "rsrc" => self.fork(entry.handle.get::<File>()?.resource),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no stream {name}", entry.name),
            )),
        }
    }
}
