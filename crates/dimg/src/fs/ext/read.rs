//! ext2/3/4, read-only: inodes through the group descriptors (32- or 64-byte), files through
//! extent trees (uninitialised extents read as zeros) or the old block maps (direct, indirect,
//! double and triple indirect), inline data, directories read linearly (an htree's index blocks
//! hide in entries of inode 0, so a linear read sees every name once), fast and slow symlinks,
//! extended attributes in the inode and in a block as streams. A file's map is walked for each
//! read rather than held, so a hostile map costs reads, never memory; every walk is bounded by
//! the tree's depth.

use super::{
    bad, time, unsupported, verify, Super, COMPAT_HAS_JOURNAL, FLAG_ENCRYPT, FLAG_EXTENTS,
    FLAG_HUGE_FILE, FLAG_INLINE_DATA, INCOMPAT_FILETYPE, INCOMPAT_RECOVER, ROOT_INODE,
};
use crate::bytes::{crc32c, le16, le32};
use crate::fs::runs::{Locate, Mapped};
use crate::fs::{DirEntry, EntryKind, Handle, Stream, Volume};
use crate::io::ReadAt;
use std::io;
use std::sync::Arc;

const EXTENT_MAGIC: u16 = 0xF30A;
const XATTR_MAGIC: u32 = 0xEA02_0000;
const MAX_EXTENT_DEPTH: u16 = 5;
/// An attribute value is at most 64 KiB on Linux; a symlink's target at most a block.
const MAX_XATTR_VALUE: u64 = 64 << 10;
const MAX_SYMLINK: u64 = 64 << 10;
/// Directories larger than this are refused (ext4's largedir reaches 4 GiB in theory).
const MAX_DIR_BYTES: u64 = 1 << 30;
/// The attribute that holds the rest of an inline file's data.
const INLINE_DATA: &str = "system.data";

pub struct Ext {
    source: Arc<dyn ReadAt>,
    sb: Super,
    warnings: Vec<String>,
}

/// An inode as read: the fields a listing shows and what locates its data.
struct Inode {
    number: u32,
    mode: u16,
    uid: u32,
    gid: u32,
    size: u64,
    links: u16,
    flags: u32,
    mtime: i64,
    /// The 60 bytes of `i_block`: block map, extent tree root, fast symlink or inline data.
    block: [u8; 60],
    /// The extended-attribute block, 0 for none.
    file_acl: u64,
    /// Blocks the inode holds, in 512-byte units (or blocks, for a huge file).
    sectors: u64,
    raw: Vec<u8>,
    /// With metadata_csum: the seed of the checksums of its blocks (its number and generation
    /// over the volume's seed).
    csum: Option<u32>,
}

/// What an entry's handle holds: its inode number.
#[derive(Clone, Copy)]
struct Ino(u32);

impl Ext {
    pub fn open(source: Arc<dyn ReadAt>) -> io::Result<Self> {
        let sb = Super::read(&*source)?;
        let refused = unsupported(sb.incompat);
        if !refused.is_empty() {
            return Err(bad(
                "ext superblock",
                1024 + 96,
                format!("dimg does not read the feature(s) {}", refused.join(", ")),
            ));
        }
        let mut warnings = Vec::new();
        if sb.incompat & INCOMPAT_RECOVER != 0 {
            warnings.push(
                "its journal holds changes not yet written to the volume (it needs recovery): \
                 what is shown is the volume as last written, and the newest changes may be \
                 missing"
                    .to_string(),
            );
        } else if sb.state & 1 == 0 && sb.compat & COMPAT_HAS_JOURNAL == 0 {
            warnings.push("the volume was not cleanly unmounted".to_string());
        }
        if sb.state & 2 != 0 {
            warnings
                .push("the volume is marked as having errors (e2fsck has not fixed them)".into());
        }
        let ext = Ext {
            source,
            sb,
            warnings,
        };
        let root = ext.inode(ROOT_INODE)?;
        if root.mode & 0xF000 != 0x4000 {
            return Err(bad("ext inode", 0, "inode 2, the root, is not a directory"));
        }
        Ok(ext)
    }

    fn block_bytes(&self, n: u64, what: &str) -> io::Result<Vec<u8>> {
        if n == 0 || n >= self.sb.blocks {
            return Err(bad(
                "ext block",
                n.saturating_mul(self.sb.block),
                format!(
                    "{what}: block {n} is not on the volume ({} blocks)",
                    self.sb.blocks
                ),
            ));
        }
        let mut b = vec![0u8; self.sb.block as usize];
        self.source.read_exact_at(n * self.sb.block, &mut b)?;
        Ok(b)
    }

    fn inode(&self, number: u32) -> io::Result<Inode> {
        let sb = &self.sb;
        let n = u64::from(number);
        if n == 0 || n > sb.inodes {
            return Err(bad(
                "ext inode",
                0,
                format!("inode {number} is not on the volume ({} inodes)", sb.inodes),
            ));
        }
        let (group, index) = ((n - 1) / sb.inodes_per_group, (n - 1) % sb.inodes_per_group);
        let (desc_block, within) = sb.descriptor_at(group);
        let mut d = vec![0u8; sb.desc_size as usize];
        let len = d.len().min(64);
        let desc_at = desc_block * sb.block + within;
        self.source.read_exact_at(desc_at, &mut d)?;
        if let Some(seed) = sb.csum_seed {
            let (head, tail) = (&d[..0x1E], &d[0x20..]);
            let group_le = (group as u32).to_le_bytes();
            let parts: [&[u8]; 4] = [&group_le, head, &[0, 0], tail];
            let whose = format!("group {group}");
            let want = u32::from(le16(&d, 0x1E));
            verify(
                ("ext group descriptor", desc_at, &whose),
                seed,
                &parts,
                want,
                true,
            )?;
        }
        let table = u64::from(le32(&d, 8))
            | if len >= 64 {
                u64::from(le32(&d, 40)) << 32
            } else {
                0
            };
        if table == 0 || table >= sb.blocks {
            return Err(bad(
                "ext group descriptor",
                desc_at,
                format!("group {group}'s inode table is at block {table}, not on the volume"),
            ));
        }
        let at = table * sb.block + index * sb.inode_size;
        let mut raw = vec![0u8; sb.inode_size as usize];
        self.source.read_exact_at(at, &mut raw)?;
        let extra = match sb.inode_size > 128 {
            true => u64::from(le16(&raw, 128)),
            false => 0,
        };
        let csum = sb
            .csum_seed
            .map(|seed| crc32c(crc32c(seed, &number.to_le_bytes()), &raw[100..104]));
        // An inode never written (all zeros) has no checksum to hold.
        if let Some(seed) = csum.filter(|_| raw.iter().any(|&b| b != 0)) {
            // The high half of the checksum is there when the extra part reaches it.
            let hi = extra >= 4;
            let mut zeroed = raw.clone();
            zeroed[124..126].fill(0);
            let mut want = u32::from(le16(&raw, 124));
            if hi {
                zeroed[130..132].fill(0);
                want |= u32::from(le16(&raw, 130)) << 16;
            }
            let whose = format!("inode {number}");
            verify(("ext inode", at, &whose), seed, &[&zeroed], want, !hi)?;
        }
        // A time's extra field is there when the inode's extra part reaches it.
        let extra_at = |at: usize| ((at + 4) as u64 <= 128 + extra).then(|| le32(&raw, at));
        let flags = le32(&raw, 32);
        let sectors = u64::from(le32(&raw, 28)) | u64::from(le16(&raw, 116)) << 32;
        let mut block = [0u8; 60];
        block.copy_from_slice(&raw[40..100]);
        Ok(Inode {
            number,
            mode: le16(&raw, 0),
            uid: u32::from(le16(&raw, 2)) | u32::from(le16(&raw, 120)) << 16,
            gid: u32::from(le16(&raw, 24)) | u32::from(le16(&raw, 122)) << 16,
            size: u64::from(le32(&raw, 4)) | u64::from(le32(&raw, 108)) << 32,
            links: le16(&raw, 26),
            flags,
            mtime: time(le32(&raw, 16), extra_at(136)),
            block,
            file_acl: u64::from(le32(&raw, 104)) | u64::from(le16(&raw, 118)) << 32,
            sectors: match flags & FLAG_HUGE_FILE {
                0 => sectors,
                _ => sectors * (self.sb.block / 512),
            },
            raw,
            csum,
        })
    }

    /// The inode's data, `i_size` bytes of it.
    fn data(&self, inode: &Inode) -> io::Result<Arc<dyn ReadAt>> {
        if inode.flags & FLAG_ENCRYPT != 0 {
            return Err(bad(
                "ext inode",
                0,
                format!("inode {} is encrypted (fscrypt)", inode.number),
            ));
        }
        if inode.flags & FLAG_INLINE_DATA != 0 {
            let mut bytes = inode.block.to_vec();
            if inode.size > 60 {
                let more = self
                    .xattrs(inode)?
                    .into_iter()
                    .find(|(name, _)| name == INLINE_DATA)
                    .map(|(_, v)| v)
                    .unwrap_or(Value::Bytes(Vec::new()));
                bytes.extend(self.xattr_value(&more)?);
            }
            if (bytes.len() as u64) < inode.size {
                return Err(bad(
                    "ext inline data",
                    0,
                    format!(
                        "inode {} holds {} of its {} bytes inline",
                        inode.number,
                        bytes.len(),
                        inode.size
                    ),
                ));
            }
            bytes.truncate(inode.size as usize);
            return Ok(Arc::new(bytes));
        }
        let size = inode.size;
        // What the map can reach: 2^32 blocks through extents; 12 direct blocks and three
        // levels of indirect blocks through a block map.
        let per = self.sb.block / 4;
        let reach = match inode.flags & FLAG_EXTENTS {
            0 => 12 + per + per * per + per * per * per,
            _ => 1 << 32,
        };
        if size.div_ceil(self.sb.block) > reach {
            return Err(bad(
                "ext inode",
                0,
                format!(
                    "inode {} is {size} bytes, more than its block map or extent tree can reach",
                    inode.number
                ),
            ));
        }
        Ok(Arc::new(Mapped {
            source: self.source.clone(),
            map: FileMap {
                source: self.source.clone(),
                block: self.sb.block,
                blocks: self.sb.blocks,
                root: inode.block,
                number: inode.number,
                extents: inode.flags & FLAG_EXTENTS != 0,
                csum: inode.csum,
            },
            block: self.sb.block,
            size,
        }))
    }

    /// The inode's extended attributes, in the inode and then in its block, as (name as Linux
    /// shows it, where the value is).
    fn xattrs(&self, inode: &Inode) -> io::Result<Vec<(String, Value)>> {
        let mut out = Vec::new();
        let raw = &inode.raw;
        if raw.len() > 128 {
            let start = 128 + usize::from(le16(raw, 128));
            if start + 4 <= raw.len() && le32(raw, start) == XATTR_MAGIC {
                let base = start + 4;
                entries(raw, base, base, &mut out);
            }
        }
        if inode.file_acl != 0 {
            let b = self.block_bytes(inode.file_acl, "an extended-attribute block")?;
            if le32(&b, 0) != XATTR_MAGIC {
                return Err(bad(
                    "ext extended-attribute block",
                    inode.file_acl * self.sb.block,
                    format!(
                        "inode {}'s attribute block has no magic number",
                        inode.number
                    ),
                ));
            }
            if let Some(seed) = self.sb.csum_seed {
                let mut zeroed = b.clone();
                zeroed[16..20].fill(0);
                let number = inode.file_acl.to_le_bytes();
                let at = inode.file_acl * self.sb.block;
                let whose = format!("inode {}'s attributes", inode.number);
                let place = ("ext extended-attribute block", at, whose.as_str());
                verify(place, seed, &[&number, &zeroed], le32(&b, 16), false)?;
            }
            entries(&b, 32, 0, &mut out);
        }
        Ok(out)
    }

    fn xattr_value(&self, value: &Value) -> io::Result<Vec<u8>> {
        match value {
            Value::Bytes(v) => Ok(v.clone()),
            Value::Inode(n, size) => {
                let inode = self.inode(*n)?;
                let data = self.data(&inode)?;
                let size = (*size).min(MAX_XATTR_VALUE).min(data.size());
                let mut v = vec![0u8; size as usize];
                data.read_exact_at(0, &mut v)?;
                Ok(v)
            }
        }
    }

    /// The names in a directory: (inode, name), "." and ".." left out.
    fn names(&self, inode: &Inode) -> io::Result<Vec<(u32, String)>> {
        let mut out = Vec::new();
        let typed = self.sb.incompat & INCOMPAT_FILETYPE != 0;
        if inode.flags & FLAG_INLINE_DATA != 0 {
            // The parent's number, then entries; the rest in the system.data attribute.
            let data = self.data(inode)?;
            let mut bytes = vec![0u8; data.size() as usize];
            data.read_exact_at(0, &mut bytes)?;
            let first = bytes.len().min(60);
            dir_block(&bytes[4.min(first)..first], typed, inode.number, &mut out)?;
            dir_block(&bytes[first..], typed, inode.number, &mut out)?;
            return Ok(out);
        }
        if inode.size > MAX_DIR_BYTES {
            return Err(bad(
                "ext directory",
                0,
                format!("directory inode {} is {} bytes", inode.number, inode.size),
            ));
        }
        let data = self.data(inode)?;
        let mut block = vec![0u8; self.sb.block as usize];
        let mut at = 0;
        while at < data.size() {
            let n = block.len().min((data.size() - at) as usize);
            data.read_exact_at(at, &mut block[..n])?;
            self.verify_dir_block(inode, at, &block[..n])?;
            dir_block(&block[..n], typed, inode.number, &mut out)?;
            at += n as u64;
        }
        Ok(out)
    }

    /// With metadata_csum, a directory's leaf block ends in a 12-byte entry of no inode and
    /// type 0xDE holding the checksum of what is before it; htree's index blocks, which have
    /// none, are not checked.
    fn verify_dir_block(&self, inode: &Inode, at: u64, b: &[u8]) -> io::Result<()> {
        let Some(seed) = inode.csum else {
            return Ok(());
        };
        let Some(tail) = b.len().checked_sub(12) else {
            return Ok(());
        };
        let is_tail = le32(b, tail) == 0 && le16(b, tail + 4) == 12 && b[tail + 6] == 0;
        if !is_tail || b[tail + 7] != 0xDE {
            return Ok(());
        }
        let whose = format!("directory inode {}, its block at byte {at}", inode.number);
        let place = ("ext directory block", 0, whose.as_str());
        verify(place, seed, &[&b[..tail]], le32(b, tail + 8), false)
    }

    fn entry(&self, name: String, inode: Inode) -> io::Result<DirEntry> {
        let kind = match inode.mode & 0xF000 {
            0x4000 => EntryKind::Directory,
            0x8000 => EntryKind::File,
            0xA000 => EntryKind::Symlink(self.link_target(&inode)?),
            0x2000 => EntryKind::Special("character device".into()),
            0x6000 => EntryKind::Special("block device".into()),
            0x1000 => EntryKind::Special("FIFO".into()),
            0xC000 => EntryKind::Special("socket".into()),
            other => {
                return Err(bad(
                    "ext inode",
                    0,
                    format!(
                        "{name} (inode {}) is of unknown type {other:#x}",
                        inode.number
                    ),
                ))
            }
        };
        let streams = self
            .xattrs(&inode)?
            .into_iter()
            .filter(|(n, _)| n != INLINE_DATA)
            .map(|(n, v)| Stream {
                name: stream_name(&n),
                size: v.size(),
            })
            .collect();
        Ok(DirEntry {
            size: match kind {
                EntryKind::File => inode.size,
                _ => 0,
            },
            kind,
            modified: Some(inode.mtime),
            mode: Some(u32::from(inode.mode & 0o7777)),
            owner: Some((inode.uid, inode.gid)),
            links: u32::from(inode.links),
            inode: u64::from(inode.number),
            streams,
            handle: Handle::new(Ino(inode.number)),
            name,
        })
    }

    /// A symlink's target: in `i_block` when it is short and holds no blocks ("fast"), else in
    /// its data.
    fn link_target(&self, inode: &Inode) -> io::Result<String> {
        if inode.size > MAX_SYMLINK {
            return Err(bad(
                "ext symlink",
                0,
                format!("inode {}'s target is {} bytes", inode.number, inode.size),
            ));
        }
        let xattr_sectors = match inode.file_acl {
            0 => 0,
            _ => self.sb.block / 512,
        };
        let fast = inode.flags & FLAG_INLINE_DATA == 0
            && inode.size < 60
            && inode.sectors.saturating_sub(xattr_sectors) == 0;
        let bytes = match fast {
            true => inode.block[..inode.size as usize].to_vec(),
            false => {
                let data = self.data(inode)?;
                let mut v = vec![0u8; data.size() as usize];
                data.read_exact_at(0, &mut v)?;
                v
            }
        };
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Where an attribute's value is: in the inode or block, or (ea_inode) in an inode of its own.
enum Value {
    Bytes(Vec<u8>),
    Inode(u32, u64),
}

impl Value {
    fn size(&self) -> u64 {
        match self {
            Value::Bytes(v) => v.len() as u64,
            Value::Inode(_, size) => *size,
        }
    }
}

/// A stream's name for an attribute: Linux's name, a "user." one without its prefix (extracting
/// it gives "user." back).
fn stream_name(name: &str) -> String {
    name.strip_prefix("user.").unwrap_or(name).to_string()
}

/// The attribute entries from `at` in `b`, their values at `base` + their offsets. Entries that
/// do not fit, or values outside `b`, end the list: the rest cannot be trusted.
fn entries(b: &[u8], mut at: usize, base: usize, out: &mut Vec<(String, Value)>) {
    while at + 16 <= b.len() && le32(b, at) != 0 {
        let (name_len, index) = (usize::from(b[at]), b[at + 1]);
        let (offset, inum, size) = (
            usize::from(le16(b, at + 2)),
            le32(b, at + 4),
            le32(b, at + 8) as usize,
        );
        let Some(name) = b.get(at + 16..at + 16 + name_len) else {
            return;
        };
        let prefix = match index {
            1 => "user.",
            2 => "system.posix_acl_access",
            3 => "system.posix_acl_default",
            4 => "trusted.",
            6 => "security.",
            7 => "system.",
            8 => "system.richacl",
            _ => "",
        };
        let name = format!("{prefix}{}", String::from_utf8_lossy(name));
        let value = match inum {
            0 => match b.get(base + offset..base + offset + size) {
                Some(v) => Value::Bytes(v.to_vec()),
                None => return,
            },
            n => Value::Inode(n, size as u64),
        };
        if !prefix.is_empty() {
            out.push((name, value));
        }
        at += (16 + name_len).next_multiple_of(4);
    }
}

/// The entries of one directory block (or inline region): (inode, name), "." and ".." left out.
fn dir_block(b: &[u8], typed: bool, dir: u32, out: &mut Vec<(u32, String)>) -> io::Result<()> {
    let mut at = 0;
    while at + 8 <= b.len() {
        let inode = le32(b, at);
        let rec_len = usize::from(le16(b, at + 4));
        let name_len = match typed {
            true => usize::from(b[at + 6]),
            false => usize::from(le16(b, at + 6)),
        };
        if rec_len < 8 || at + rec_len > b.len() || 8 + name_len > rec_len {
            // An inline directory's unused tail is zeros.
            if rec_len == 0 && inode == 0 && b[at..].iter().all(|&x| x == 0) && b.len() < 1024 {
                break;
            }
            return Err(bad(
                "ext directory entry",
                at as u64,
                format!(
                    "in directory inode {dir}: an entry of {rec_len} bytes with a name of \
                     {name_len} at {at} of a {}-byte block",
                    b.len()
                ),
            ));
        }
        let name = &b[at + 8..at + 8 + name_len];
        if inode != 0 && name != b"." && name != b".." {
            out.push((inode, String::from_utf8_lossy(name).into_owned()));
        }
        at += rec_len;
    }
    Ok(())
}

/// A file's map — an extent tree, or the block map of ext2/3 (12 direct blocks, then single,
/// double and triple indirect blocks) — walked from the inode's root for each run asked for.
struct FileMap {
    source: Arc<dyn ReadAt>,
    block: u64,
    blocks: u64,
    root: [u8; 60],
    number: u32,
    extents: bool,
    /// The inode's checksum seed, with metadata_csum.
    csum: Option<u32>,
}

impl Locate for FileMap {
    fn locate(&self, want: u64) -> io::Result<(u64, Option<u64>, u64)> {
        match self.extents {
            true => self.locate_extent(want),
            false => self.locate_block(want),
        }
    }
}

impl FileMap {
    fn problem(&self, p: String) -> io::Error {
        bad("ext extent tree", 0, format!("inode {}: {p}", self.number))
    }
}

impl FileMap {
    fn locate_extent(&self, want: u64) -> io::Result<(u64, Option<u64>, u64)> {
        let mut node = self.root.to_vec();
        // Where the run found may end at the latest: the next index entry's start.
        let mut limit = u64::from(u32::MAX) + 1;
        let mut depth = None;
        for _ in 0..=MAX_EXTENT_DEPTH {
            let (magic, count, level) =
                (le16(&node, 0), usize::from(le16(&node, 2)), le16(&node, 6));
            if magic != EXTENT_MAGIC || 12 + count * 12 > node.len() || level > MAX_EXTENT_DEPTH {
                return Err(self.problem(format!(
                    "a node with magic {magic:#06x}, {count} entries, depth {level}"
                )));
            }
            if depth.is_some_and(|d| d != level + 1) {
                return Err(self.problem(format!("a node of depth {level} under one of {depth:?}")));
            }
            depth = Some(level);
            let entry = |i: usize| &node[12 + i * 12..24 + i * 12];
            let starts = |i: usize| u64::from(le32(entry(i), 0));
            // The last entry starting at or before the block wanted.
            let found = (0..count).take_while(|&i| starts(i) <= want).last();
            let next = (0..count)
                .map(starts)
                .find(|&s| s > want)
                .unwrap_or(limit)
                .min(limit);
            if level == 0 {
                if let Some(i) = found {
                    let e = entry(i);
                    let raw_len = u64::from(le16(e, 4));
                    let (len, written) = match raw_len > 32768 {
                        true => (raw_len - 32768, false),
                        false => (raw_len, true),
                    };
                    let start = u64::from(le16(e, 6)) << 32 | u64::from(le32(e, 8));
                    if want < starts(i) + len {
                        if written && start.saturating_add(len) > self.blocks {
                            return Err(self.problem(format!(
                                "an extent of {len} blocks at block {start}, past the volume's end"
                            )));
                        }
                        return Ok((starts(i), written.then_some(start), len));
                    }
                }
                // A hole up to the next extent.
                return Ok((want, None, next - want));
            }
            let Some(i) = found else {
                return Ok((want, None, next.saturating_sub(want).max(1)));
            };
            let e = entry(i);
            let child = u64::from(le16(e, 8)) << 32 | u64::from(le32(e, 4));
            if child == 0 || child >= self.blocks {
                return Err(self.problem(format!("an index entry points at block {child}")));
            }
            limit = next;
            node = vec![0u8; self.block as usize];
            self.source.read_exact_at(child * self.block, &mut node)?;
            // A node's checksum follows its room for entries.
            let tail = 12 + usize::from(le16(&node, 4)) * 12;
            if let Some(seed) = self.csum.filter(|_| tail + 4 <= node.len()) {
                let whose = format!("inode {}, the node at block {child}", self.number);
                let want = le32(&node, tail);
                let place = ("ext extent tree", child * self.block, whose.as_str());
                verify(place, seed, &[&node[..tail]], want, false)?;
            }
        }
        Err(self.problem("the tree is deeper than 5 levels".into()))
    }
}

impl FileMap {
    /// The run starting at entry `i` of a list of block numbers: contiguous blocks, or holes.
    fn run(list: &[u8], i: usize, first: u64) -> (u64, Option<u64>, u64) {
        let ptr = |j: usize| u64::from(le32(list, j * 4));
        let p = ptr(i);
        let n = (i..list.len() / 4)
            .take_while(|&j| match p {
                0 => ptr(j) == 0,
                _ => ptr(j) == p + (j - i) as u64,
            })
            .count();
        (first, (p != 0).then_some(p), n as u64)
    }

    /// The run at `rel` blocks into the subtree of indirection `level` at block `at`, whose
    /// first block is logical block `first`.
    fn walk(
        &self,
        at: u64,
        level: u32,
        rel: u64,
        first: u64,
    ) -> io::Result<(u64, Option<u64>, u64)> {
        let per = self.block / 4;
        if at == 0 {
            return Ok((first, None, per.pow(level)));
        }
        if at >= self.blocks {
            return Err(bad(
                "ext block map",
                0,
                format!(
                    "inode {}: an indirect block at {at}, past the volume's end",
                    self.number
                ),
            ));
        }
        let mut list = vec![0u8; self.block as usize];
        self.source.read_exact_at(at * self.block, &mut list)?;
        let span = per.pow(level - 1);
        let i = (rel / span) as usize;
        match level {
            1 => Ok(Self::run(&list, i, first + rel)),
            _ => {
                let child = u64::from(le32(&list, i * 4));
                self.walk(child, level - 1, rel % span, first + i as u64 * span)
            }
        }
    }
}

impl FileMap {
    fn locate_block(&self, want: u64) -> io::Result<(u64, Option<u64>, u64)> {
        if want < 12 {
            return Ok(Self::run(&self.root[..48], want as usize, want));
        }
        let per = self.block / 4;
        let mut rel = want - 12;
        for level in 1..=3u32 {
            let span = per.pow(level);
            if rel < span {
                let at = u64::from(le32(&self.root, 44 + level as usize * 4));
                return self.walk(at, level, rel, want - rel);
            }
            rel -= span;
        }
        Err(bad(
            "ext block map",
            0,
            format!(
                "inode {}: block {want} is past what a block map reaches",
                self.number
            ),
        ))
    }
}

impl Volume for Ext {
    fn label(&self) -> String {
        self.sb.label.clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn used(&self) -> Option<u64> {
        Some(self.sb.blocks.saturating_sub(self.sb.free_blocks) * self.sb.block)
    }

    fn root(&self) -> DirEntry {
        DirEntry::root(u64::from(ROOT_INODE), 0, Handle::new(Ino(ROOT_INODE)))
    }

    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        let Ino(n) = *dir.handle.get::<Ino>()?;
        let inode = self.inode(n)?;
        self.names(&inode)?
            .into_iter()
            .map(|(number, name)| self.entry(name, self.inode(number)?))
            .collect()
    }

    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        let Ino(n) = *file.handle.get::<Ino>()?;
        self.data(&self.inode(n)?)
    }

    fn open_stream(&self, entry: &DirEntry, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        let Ino(n) = *entry.handle.get::<Ino>()?;
        let inode = self.inode(n)?;
        let value = self
            .xattrs(&inode)?
            .into_iter()
            .find(|(n, _)| n != INLINE_DATA && stream_name(n) == name)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: no stream {name}", entry.name),
                )
            })?;
        let bytes = self.xattr_value(&value.1)?;
        Ok(Arc::new(bytes))
    }
}
