//! Classic HFS ("Mac OS Standard", Inside Macintosh: Files, chapter 2), read-only: the master
//! directory block, the catalog and extents B-trees (512-byte nodes, the layout HFS+ kept, with
//! one-byte key lengths), forks of three 16-bit extents each, MacRoman names. A volume that wraps
//! an HFS+ volume (older Macs' startup disks) is opened as the HFS+ volume it holds.

use super::hfsplus::{date, more_extents, BTree, Fork, HfsPlus, Overflow};
use super::{Counts, DirEntry, EntryKind, Handle, Stream, Volume};
use crate::bytes::{be16, be32, mac_roman};
use crate::error::FormatError;
use crate::io::{ReadAt, Slice};
use std::io;
use std::sync::Arc;

const MDB_AT: u64 = 1024;
/// The Finder's desktop databases at the root (type and creator): metadata Mac OS rebuilds and
/// never shows, as HFS+ keeps its private folders out of sight.
const DESKTOP_FILES: [&[u8; 8]; 3] = [b"FNDRERIK", b"BTFLDMGR", b"DTFLDMGR"];
const ROOT_FOLDER: u32 = 2;
const CATALOG_FILE: u32 = 4;

fn bad(at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io("HFS master directory block", at, problem)
}

/// A classic key: a one-byte length, then the key, padded to an even size.
fn short_key(r: &[u8]) -> usize {
    (1 + usize::from(r.first().copied().unwrap_or(0))).next_multiple_of(2)
}

/// Three (start, count) extents of 16 bits each.
fn extents(b: &[u8]) -> Vec<(u32, u32)> {
    (0..3)
        .map(|i| (u32::from(be16(b, 4 * i)), u32::from(be16(b, 4 * i + 2))))
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// The volume inside `part`: an HFS volume, or the HFS+ volume an HFS wrapper holds.
pub fn open(part: Arc<dyn ReadAt>) -> io::Result<Box<dyn Volume>> {
    let mut mdb = [0u8; 162];
    part.read_exact_at(MDB_AT, &mut mdb)?;
    let (block, first) = (u64::from(be32(&mdb, 20)), u64::from(be16(&mdb, 28)) * 512);
    if block == 0 || block % 512 != 0 {
        return Err(bad(MDB_AT + 20, format!("allocation block size {block}")));
    }
    if &mdb[124..126] == b"H+" {
        let (start, count) = (u64::from(be16(&mdb, 126)), u64::from(be16(&mdb, 128)));
        let inner = Slice::new(part, first + start * block, count * block);
        return Ok(Box::new(HfsPlus::open(Arc::new(inner))?));
    }
    Ok(Box::new(Hfs::open(part, &mdb, block, first)?))
}

/// What an entry's handle holds.
#[derive(Clone, Debug)]
enum Item {
    Folder(u32),
    File { id: u32, data: Fork, resource: Fork },
}

pub struct Hfs {
    /// The allocation blocks, block 0 first.
    blocks: Arc<dyn ReadAt>,
    block: u64,
    catalog: BTree,
    /// Extents beyond a fork's first three, by (file ID, fork type: 0 data, 0xFF resource).
    overflow: Overflow,
    label: String,
    used_blocks: u64,
    /// The master directory block's drFilCnt and drDirCnt.
    counts: Counts,
}

impl Hfs {
    fn open(part: Arc<dyn ReadAt>, mdb: &[u8], block: u64, first: u64) -> io::Result<Hfs> {
        let count = u64::from(be16(mdb, 18));
        let blocks: Arc<dyn ReadAt> = Arc::new(Slice::new(part, first, count * block));
        let fork = |size_at: usize, extents_at: usize| Fork {
            size: u64::from(be32(mdb, size_at)),
            extents: extents(&mdb[extents_at..extents_at + 12]),
        };
        let tree = |fork: &Fork, more: &[(u32, u32)], what| {
            let file = HfsPlus::fork_bytes(&blocks, block, fork, more)?;
            BTree::open_keyed(file, what, short_key)
        };
        let extents_tree = tree(&fork(130, 134), &[], "HFS extents B-tree")?;
        let mut overflow = Overflow::new();
        let scan = match extents_tree.is_empty() {
            true => Ok(()),
            false => extents_tree.scan(
                |_| false,
                |_| true,
                |r| {
                    // Key: length, fork type, file ID, first block; then three extents.
                    if r.len() >= 8 + 12 && r[0] >= 7 {
                        let key = (be32(r, 2), r[1]);
                        overflow.entry(key).or_default().extend(extents(&r[8..20]));
                    }
                },
            ),
        };
        scan?;
        let more = more_extents(&overflow, CATALOG_FILE, 0);
        let catalog = tree(&fork(146, 150), more, "HFS catalog B-tree")?;
        let name = &mdb[37..37 + usize::from(mdb[36]).min(27)];
        Ok(Hfs {
            blocks,
            block,
            catalog,
            overflow,
            label: mac_roman(name),
            used_blocks: count.saturating_sub(u64::from(be16(mdb, 34))),
            counts: Counts {
                files: u64::from(be32(mdb, 84)),
                folders: u64::from(be32(mdb, 88)),
            },
        })
    }

    /// The records in folder `parent`: (name, record data), thread records left out.
    fn children(&self, parent: u32) -> io::Result<Vec<DirEntry>> {
        // Key: length, reserved, parent ID, then the name as a Pascal string.
        let key = |r: &[u8]| -> Option<(u32, usize)> {
            (r.len() >= 7).then(|| (be32(r, 2), usize::from(r[6])))
        };
        let mut out = Vec::new();
        self.catalog.scan(
            |r| key(r).is_some_and(|(p, n)| p < parent || (p == parent && n == 0)),
            |r| key(r).is_some_and(|(p, _)| p == parent),
            |r| {
                let Some((_, n)) = key(r) else { return };
                let (name, data) = (r.get(7..7 + n), r.get(short_key(r)..));
                let Some((name, data)) = name.zip(data) else {
                    return;
                };
                let desktop = data
                    .get(4..12)
                    .is_some_and(|t| DESKTOP_FILES.iter().any(|d| &d[..] == t));
                if !(parent == ROOT_FOLDER && data[0] == 2 && desktop) {
                    out.extend(self.entry(&mac_roman(name), data));
                }
            },
        )?;
        Ok(out)
    }

    fn entry(&self, name: &str, d: &[u8]) -> Option<DirEntry> {
        let (item, size, modified) = match d.first()? {
            1 if d.len() >= 70 => (Item::Folder(be32(d, 6)), 0, be32(d, 14)),
            2 if d.len() >= 102 => {
                let id = be32(d, 20);
                let data = Fork {
                    size: u64::from(be32(d, 26)),
                    extents: extents(&d[74..86]),
                };
                let resource = Fork {
                    size: u64::from(be32(d, 36)),
                    extents: extents(&d[86..98]),
                };
                let size = data.size;
                (Item::File { id, data, resource }, size, be32(d, 48))
            }
            _ => return None,
        };
        let (kind, inode, streams) = match &item {
            Item::Folder(id) => (EntryKind::Directory, *id, Vec::new()),
            Item::File { id, resource, .. } => {
                let streams = (resource.size > 0)
                    .then(|| Stream {
                        name: "rsrc".into(),
                        size: resource.size,
                    })
                    .into_iter()
                    .collect();
                (EntryKind::File, *id, streams)
            }
        };
        Some(DirEntry {
            name: name.replace('/', ":"),
            kind,
            size,
            modified: date(modified),
            mode: None,
            owner: None,
            links: 1,
            inode: u64::from(inode),
            streams,
            handle: Handle::new(item),
        })
    }

    fn fork(&self, item: &Item, kind: u8) -> io::Result<Arc<dyn ReadAt>> {
        let Item::File { id, data, resource } = item else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a folder has no forks",
            ));
        };
        let fork = if kind == 0 { data } else { resource };
        let more = more_extents(&self.overflow, *id, kind);
        HfsPlus::fork_bytes(&self.blocks, self.block, fork, more)
    }
}

fn item(entry: &DirEntry) -> io::Result<&Item> {
    entry.handle.get::<Item>()
}

impl Volume for Hfs {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn used(&self) -> Option<u64> {
        Some(self.used_blocks * self.block)
    }

    fn counts(&self) -> Option<Counts> {
        Some(self.counts)
    }

    fn case_sensitive(&self) -> bool {
        false
    }

    fn root(&self) -> DirEntry {
        DirEntry::root(
            u64::from(ROOT_FOLDER),
            0,
            Handle::new(Item::Folder(ROOT_FOLDER)),
        )
    }

    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        match item(dir)? {
            Item::Folder(id) => self.children(*id),
            Item::File { .. } => Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{}: not a folder", dir.name),
            )),
        }
    }

    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        self.fork(item(file)?, 0)
    }

    fn open_stream(&self, entry: &DirEntry, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        match name {
            "rsrc" => self.fork(item(entry)?, 0xFF),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no stream {name}", entry.name),
            )),
        }
    }
}
