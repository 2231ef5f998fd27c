//! Writing APFS containers (Apple File System Reference): one volume, laid out as one
//! checkpoint of transaction [`XID`]. Block 0 and the checkpoint descriptor area hold the
//! container superblock and its checkpoint map; the data area the ephemeral objects (reaper,
//! space manager, its two free queues); then the internal pool's bitmaps. From block 1024 (the
//! ids below are reserved, and a physical object's id is its block) come the internal pool with
//! the chunk bitmaps and chunk-info blocks, the object maps, the volume superblock and its trees,
//! bulk-loaded from records sorted by key, and the files' bytes: one extent per run of data,
//! holes left unallocated, read from the folder only when the container is read. Those two
//! stretches are allocated; the rest of the container is free.

use super::block::{
    fletcher64, BTREE, BTREE_NODE, CHECKPOINT_MAP, FS, NX_SUPERBLOCK, OMAP, SPACEMAN,
};
use super::btree::{FREE_QUEUE, OMAP_VAL_ENCRYPTED};
use super::crypto::{new_keys, Ciphered, NX_CRYPTO_SW};
use super::{
    name_hash, DECMPFS, DIR_REC, FILE_EXTENT, FS_ONEKEY, FS_UNENCRYPTED, INCOMPAT_CASE_INSENSITIVE,
    INCOMPAT_NORMALIZATION_INSENSITIVE, INODE, INO_EXT_TYPE_DSTREAM, RESOURCE_FORK, ROOT_DIR,
    SYMLINK, UF_COMPRESSED, XATTR, XATTR_DATA_EMBEDDED, XATTR_DATA_STREAM,
};
use crate::error::{Error, Result};
use crate::fs::decmpfs::{self, Compression};
use crate::fs::tree::{NodeKind, SourceFile, Tree};
use crate::io::{Assembly, Patched, ReadAt, Slice, Zeros};
use crate::secret::Passphrase;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub const BLOCK: u64 = 4096;
const BS: usize = BLOCK as usize;
/// The one transaction everything is written in.
const XID: u64 = 1;

const OBJ_EPHEMERAL: u32 = 0x8000_0000;
const OBJ_PHYSICAL: u32 = 0x4000_0000;
const SPACEMAN_CIB: u32 = 0x07;
const FSTREE: u32 = 0x0E;
const BLOCKREFTREE: u32 = 0x0F;
const SNAPMETATREE: u32 = 0x10;
const NX_REAPER: u32 = 0x11;

/// `btree_info_t.bt_flags`.
const BT_EPHEMERAL_GHOSTS: u32 = 0x8 | 0x4;
const BT_PHYSICAL: u32 = 0x10;
const BT_KV_NONALIGNED: u32 = 0x40;

/// File-system record types beside those the reader walks.
const PHYS_EXTENT: u8 = 2;
const SIBLING_LINK: u8 = 5;
const DSTREAM_ID: u8 = 6;
const SIBLING_MAP: u8 = 12;

const PRIVATE_DIR: u64 = 3;
const ROOT_PARENT: u64 = 1;
const FIRST_USER_ID: u64 = 16;
/// Object ids below this are reserved; the ephemeral objects take the first ones after.
const FIRST_OID: u64 = 1024;
const SPACEMAN_OID: u64 = FIRST_OID;
const REAPER_OID: u64 = FIRST_OID + 1;
const IP_QUEUE_OID: u64 = FIRST_OID + 2;
const MAIN_QUEUE_OID: u64 = FIRST_OID + 3;
const VOLUME_OID: u64 = FIRST_OID + 4;
/// The file-system tree's nodes are virtual objects numbered from here.
const FIRST_NODE_OID: u64 = FIRST_OID + 5;

/// The checkpoint areas: descriptor blocks (a map and a superblock) and data blocks (the four
/// ephemeral objects), each with room for later checkpoints.
const DESC_BASE: u64 = 1;
const DESC_BLOCKS: u64 = 8;
const DATA_BASE: u64 = DESC_BASE + DESC_BLOCKS;
const DATA_BLOCKS: u64 = 32;
/// The internal pool's bitmaps: 16 blocks, the current one the first.
const IP_BITMAP_BASE: u64 = DATA_BASE + DATA_BLOCKS;
const IP_BITMAPS: u64 = 16;
/// The first blocks in use end here; the blocks from here to [`IP_BASE`] are free.
const HEAD_END: u64 = IP_BITMAP_BASE + IP_BITMAPS;
/// The internal pool, and every object after it: a physical object's id is its block, and ids
/// below [`FIRST_OID`] are reserved.
const IP_BASE: u64 = FIRST_OID;

const BLOCKS_PER_CHUNK: u64 = 8 * BLOCK;
const CHUNKS_PER_CIB: u64 = (BLOCK - 40) / 32;
/// Where the space manager keeps its variable fields (`sm_ip_bm_xid_offset` and on), and the
/// chunk-info block addresses after them: as many as fit in its block.
const SM_IP_XID_AT: usize = 0x150;
const SM_IP_BITMAP_AT: usize = 0x158;
const SM_IP_FREE_NEXT_AT: usize = 0x160;
const SM_CIB_ADDRESSES_AT: usize = 0x180;
const MAX_CIBS: u64 = (BLOCK - SM_CIB_ADDRESSES_AT as u64) / 8;

/// Inline attributes: at most this many bytes (Apple's limit), the rest in a data stream.
const MAX_INLINE_XATTR: usize = 3804;
/// A node's room for records: a block without its header, and a root without its footer too.
const NODE_ROOM: usize = BS - 56;
const ROOT_ROOM: usize = NODE_ROOM - 40;

/// `j_inode_val_t.internal_flags`.
const INODE_IS_SPARSE: u64 = 0x200;
const INODE_HAS_RSRC_FORK: u64 = 0x4000;
/// `uncompressed_size` holds a compressed file's size, as macOS writes it (and 7-Zip reads).
const INODE_HAS_UNCOMPRESSED_SIZE: u64 = 0x4_0000;
/// Extended fields: the primary name, the sparse byte count, and the flags each must carry.
const INO_EXT_TYPE_NAME: u8 = 4;
const INO_EXT_TYPE_SPARSE_BYTES: u8 = 13;
const XF_DO_NOT_COPY: u8 = 0x02;
const XF_CHILDREN_INHERIT: u8 = 0x08;
const XF_SYSTEM_FIELD: u8 = 0x20;
const DREC_EXT_TYPE_SIBLING_ID: u8 = 1;
const XATTR_FILE_SYSTEM_OWNED: u16 = 0x4;

pub struct Options {
    /// Files compressed with decmpfs, as `ditto --hfsCompression` leaves them.
    pub compression: Option<Compression>,
    pub volume_name: String,
    /// Case-sensitive APFS: names compare as they are (still normalization-insensitive).
    pub case_sensitive: bool,
    /// The container's size; `None` sizes it from the tree with room to spare.
    pub size: Option<u64>,
    /// Encrypt the volume as macOS does, opened by this passphrase (its first candidate).
    pub encryption: Option<Arc<Passphrase>>,
}

/// 512-byte units, which AES-XTS tweaks count, in a block.
const UNITS: u64 = BLOCK / 512;

/// A B-tree to build: its node subtype, how its nodes are addressed, and its footer's flags.
#[derive(Clone, Copy)]
struct Kind {
    subtype: u32,
    /// Nodes are found by block (object maps, extent references); else through an object map.
    physical: bool,
    /// Fixed-size keys and values (object maps, free queues): (key, leaf value) sizes.
    fixed: Option<(usize, usize)>,
    flags: u32,
}

const OMAP_TREE: Kind = Kind {
    subtype: OMAP,
    physical: true,
    fixed: Some((16, 16)),
    flags: BT_PHYSICAL,
};
const FREE_QUEUE_TREE: Kind = Kind {
    subtype: FREE_QUEUE,
    physical: false,
    fixed: Some((16, 8)),
    flags: BT_EPHEMERAL_GHOSTS,
};
const FS_TREE: Kind = Kind {
    subtype: FSTREE,
    physical: false,
    fixed: None,
    flags: BT_KV_NONALIGNED,
};
const EXTENTREF_TREE: Kind = Kind {
    subtype: BLOCKREFTREE,
    physical: true,
    fixed: None,
    flags: BT_PHYSICAL | BT_KV_NONALIGNED,
};
const SNAPMETA_TREE: Kind = Kind {
    subtype: SNAPMETATREE,
    physical: true,
    fixed: None,
    flags: BT_PHYSICAL | BT_KV_NONALIGNED,
};

type Record = (Vec<u8>, Vec<u8>);
/// What orders file-system records: object id, type, then a number (a name's hash, an offset, a
/// sibling id) and a name.
type Order = (u64, u8, u64, Vec<u8>);

/// An object's header and checksum on `block`.
fn seal(block: &mut [u8], oid: u64, kind: u32, subtype: u32) {
    put64(block, 8, oid);
    put64(block, 16, XID);
    put32(block, 24, kind);
    put32(block, 28, subtype);
    let sum = fletcher64(block);
    put64(block, 0, sum);
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A file-system record key's first field: object id and record type.
fn j_key(id: u64, kind: u8) -> Vec<u8> {
    (id | u64::from(kind) << 60).to_le_bytes().to_vec()
}

/// The bytes of a node's table of contents for `count` records at `level`: a tree of fixed-size
/// records has a table for as many as the node could hold (as macOS and apfsck expect); one of
/// variable-size records room for a few more.
fn toc_len(kind: Kind, level: u16, count: usize) -> usize {
    match kind.fixed {
        Some((key, value)) => {
            let value = if level == 0 { value } else { 8 };
            NODE_ROOM / (key + value + 4) * 4
        }
        None => 8 * count.next_multiple_of(8).max(8),
    }
}

/// Whether `records` fit in one node at `level` with `room` bytes.
fn fits(kind: Kind, level: u16, records: &[(&[u8], &[u8])], room: usize) -> bool {
    let data: usize = records.iter().map(|(k, v)| k.len() + v.len()).sum();
    let toc = toc_len(kind, level, records.len());
    data + toc <= room && toc >= records.len() * if kind.fixed.is_some() { 4 } else { 8 }
}

/// One B-tree node's block: `records` in order, at `level`, sealed as `oid`; a root carries
/// `info` (the tree's footer).
fn node_block(
    kind: Kind,
    level: u16,
    oid: u64,
    records: &[(&[u8], &[u8])],
    info: Option<&[u8]>,
) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    let entry = if kind.fixed.is_some() { 4 } else { 8 };
    let toc_len = toc_len(kind, level, records.len());
    let mut flags = 0u16;
    if info.is_some() {
        flags |= 0x1;
    }
    if level == 0 {
        flags |= 0x2;
    }
    if kind.fixed.is_some() {
        flags |= 0x4;
    }
    put16(&mut b, 32, flags);
    put16(&mut b, 34, level);
    put32(&mut b, 36, records.len() as u32);
    put16(&mut b, 42, toc_len as u16);
    let keys_at = 56 + toc_len;
    let values_end = BS - if info.is_some() { 40 } else { 0 };
    let (mut key_off, mut value_off) = (0usize, 0usize);
    for (i, &(k, v)) in records.iter().enumerate() {
        b[keys_at + key_off..keys_at + key_off + k.len()].copy_from_slice(k);
        value_off += v.len();
        b[values_end - value_off..values_end - value_off + v.len()].copy_from_slice(v);
        let e = 56 + i * entry;
        if kind.fixed.is_some() {
            put16(&mut b, e, key_off as u16);
            put16(&mut b, e + 2, value_off as u16);
        } else {
            put16(&mut b, e, key_off as u16);
            put16(&mut b, e + 2, k.len() as u16);
            put16(&mut b, e + 4, value_off as u16);
            put16(&mut b, e + 6, v.len() as u16);
        }
        key_off += k.len();
    }
    put16(&mut b, 44, key_off as u16);
    put16(
        &mut b,
        46,
        (values_end - value_off - keys_at - key_off) as u16,
    );
    put16(&mut b, 48, 0xFFFF);
    put16(&mut b, 52, 0xFFFF);
    if let Some(info) = info {
        b[BS - 40..].copy_from_slice(info);
    }
    let (root, physical) = (info.is_some(), kind.physical);
    let mut object = if root { BTREE } else { BTREE_NODE };
    if physical {
        object |= OBJ_PHYSICAL;
    } else if kind.subtype == FREE_QUEUE {
        object |= OBJ_EPHEMERAL;
    }
    seal(&mut b, oid, object, kind.subtype);
    b
}

/// A bulk-loaded B-tree: its nodes, the root last, each with its id (its block when physical).
struct BuiltTree {
    /// (id, block).
    nodes: Vec<(u64, Vec<u8>)>,
}

impl BuiltTree {
    fn root(&self) -> u64 {
        self.nodes.last().map_or(0, |(id, _)| *id)
    }
}

/// Builds a tree of `kind` from `records` sorted by key; node `i` (in the order written, the
/// root last) gets id `first_id + i`. Leaves are filled in order, then index levels above them
/// until one node holds the rest as the root.
fn build_tree(kind: Kind, records: &[Record], first_id: u64) -> BuiltTree {
    let mut nodes: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut level_records: Vec<Record>;
    let mut level = 0u16;
    // Each level: (records of the level below, by reference) grouped into nodes.
    let mut current: Vec<(&[u8], &[u8])> = records.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    let (longest_key, longest_value) = records
        .iter()
        .fold((0, 0), |(k, v), r| (k.max(r.0.len()), v.max(r.1.len())));
    loop {
        if fits(kind, level, &current, ROOT_ROOM) || current.is_empty() {
            let mut info = vec![0u8; 40];
            put32(&mut info, 0, kind.flags);
            put32(&mut info, 4, BLOCK as u32);
            let (fixed_key, fixed_value) = kind.fixed.unwrap_or((0, 0));
            put32(&mut info, 8, fixed_key as u32);
            put32(&mut info, 12, fixed_value as u32);
            let (longest_key, longest_value) = match kind.fixed {
                Some(f) => f,
                None => (longest_key, longest_value),
            };
            put32(&mut info, 16, longest_key as u32);
            put32(&mut info, 20, longest_value as u32);
            put64(&mut info, 24, records.len() as u64);
            put64(&mut info, 32, nodes.len() as u64 + 1);
            let id = first_id + nodes.len() as u64;
            let block = node_block(kind, level, id, &current, Some(&info));
            nodes.push((id, block));
            return BuiltTree { nodes };
        }
        let mut groups: Vec<Vec<(&[u8], &[u8])>> = vec![Vec::new()];
        for &r in &current {
            let group = groups.last_mut().expect("one group");
            group.push(r);
            if !fits(kind, level, group, NODE_ROOM) {
                group.pop();
                groups.push(vec![r]);
            }
        }
        let mut index = Vec::with_capacity(groups.len());
        for group in &groups {
            let id = first_id + nodes.len() as u64;
            nodes.push((id, node_block(kind, level, id, group, None)));
            index.push((group[0].0.to_vec(), id.to_le_bytes().to_vec()));
        }
        level_records = index;
        current = level_records
            .iter()
            .map(|(k, v)| (&k[..], &v[..]))
            .collect();
        level += 1;
    }
}

/// Where a data stream's bytes are: its runs of data (logical offset, length, from where),
/// each put at a block when the container is laid out.
struct Stream {
    id: u64,
    size: u64,
    /// (logical offset, length, source); the rest is holes.
    runs: Vec<(u64, u64, Arc<dyn ReadAt>)>,
}

impl Stream {
    fn allocated(&self) -> u64 {
        self.runs.iter().map(|r| r.1.div_ceil(BLOCK)).sum()
    }
    /// Bytes the extents cover: the size rounded up to blocks.
    fn extent_bytes(&self) -> u64 {
        self.size.next_multiple_of(BLOCK)
    }
    fn sparse_bytes(&self) -> u64 {
        self.extent_bytes() - self.allocated() * BLOCK
    }
}

/// The runs of data in a file of `size` bytes, block-aligned: where holes are, the file system
/// it lies on says (SEEK_DATA/SEEK_HOLE); without that the whole file is data.
fn data_runs(path: &Path, size: u64) -> std::io::Result<Vec<(u64, u64)>> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path)?;
    let fd = file.as_raw_fd();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut at = 0u64;
    while at < size {
        // SAFETY: lseek on a descriptor this function owns; no memory is passed.
        let start = unsafe { libc::lseek(fd, at as libc::off_t, libc::SEEK_DATA) };
        if start < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENXIO) => Ok(runs),
                _ if runs.is_empty() && at == 0 => Ok(vec![(0, size)]),
                _ => Err(e),
            };
        }
        // SAFETY: as above.
        let end = unsafe { libc::lseek(fd, start, libc::SEEK_HOLE) };
        let (start, end) = (start as u64, (end.max(start) as u64).min(size));
        let start = start / BLOCK * BLOCK;
        let end = end.next_multiple_of(BLOCK).min(size);
        match runs.last_mut() {
            Some(last) if last.0 + last.1 >= start => last.1 = last.1.max(end - last.0),
            _ if end > start => runs.push((start, end - start)),
            _ => {}
        }
        at = end.max(at + 1);
    }
    Ok(runs)
}

/// An inode to write.
struct Inode {
    id: u64,
    parent: u64,
    name: String,
    mode: u16,
    uid: u32,
    gid: u32,
    times: crate::fs::tree::Times,
    /// Children for a folder, links for a file.
    count: u32,
    stream: Option<usize>,
    xattrs: Vec<(String, XattrValue)>,
    flags: u64,
    /// Compressed (decmpfs): its size uncompressed.
    compressed: Option<u64>,
}

enum XattrValue {
    Inline(Vec<u8>),
    Stream(usize),
}

/// A directory entry to write.
struct Dentry {
    parent: u64,
    name: String,
    id: u64,
    kind: u16,
    added: i64,
    /// The link's own id, when its file has more than one.
    sibling: Option<u64>,
}

/// The volume's contents as records: inodes, names and streams, numbered.
struct Contents {
    inodes: Vec<Inode>,
    dentries: Vec<Dentry>,
    streams: Vec<Stream>,
    next_id: u64,
    files: u64,
    directories: u64,
    symlinks: u64,
}

/// A name as the volume compares it: decomposed, and folded where case is ignored.
fn compared(name: &str, fold_case: bool) -> String {
    use unicode_normalization::UnicodeNormalization;
    match fold_case {
        true => name.nfd().flat_map(char::to_lowercase).collect(),
        false => name.nfd().collect(),
    }
}

fn contents(tree: &Tree, options: &Options) -> Result<Contents> {
    let case_sensitive = options.case_sensitive;
    let mut c = Contents {
        inodes: Vec::new(),
        dentries: Vec::new(),
        streams: Vec::new(),
        next_id: FIRST_USER_ID,
        files: 0,
        directories: 0,
        symlinks: 0,
    };
    let root = &tree.nodes[0];
    let private = Inode {
        id: PRIVATE_DIR,
        parent: ROOT_PARENT,
        name: "private-dir".into(),
        mode: 0o040755,
        uid: root.uid,
        gid: root.gid,
        times: root.times,
        count: 0,
        stream: None,
        xattrs: Vec::new(),
        flags: 0,
        compressed: None,
    };
    for (id, name) in [(ROOT_DIR, "root"), (PRIVATE_DIR, "private-dir")] {
        c.dentries.push(Dentry {
            parent: ROOT_PARENT,
            name: name.into(),
            id,
            kind: 4,
            added: root.times.created,
            sibling: None,
        });
    }
    c.inodes.push(private);
    // Hard links: the inode each file id got, and its links (the first is the primary).
    let mut linked: HashMap<(u64, u64), usize> = HashMap::new();
    let mut stack = vec![(0usize, ROOT_DIR, ROOT_PARENT)];
    while let Some((index, id, parent)) = stack.pop() {
        let node = &tree.nodes[index];
        let children = tree.children(index);
        let mut inode = Inode {
            id,
            parent,
            name: if index == 0 {
                "root".into()
            } else {
                node.name.clone()
            },
            mode: (node.mode & 0o7777) as u16,
            uid: node.uid,
            gid: node.gid,
            times: node.times,
            count: children.len() as u32,
            stream: None,
            xattrs: Vec::new(),
            flags: 0,
            compressed: None,
        };
        inode.mode |= 0o040000;
        c.add_attributes(&mut inode, node);
        c.inodes.push(inode);
        let mut names = std::collections::HashSet::new();
        for &child in children {
            let n = &tree.nodes[child];
            if !names.insert(compared(&n.name, !case_sensitive)) {
                return Err(Error::Refused {
                    path: n.path.clone(),
                    reason: "another name in its folder is the same to the volume (APFS ignores \
                             Unicode normalization, and case unless case-sensitive)"
                        .into(),
                });
            }
            let kind = match n.kind {
                NodeKind::Directory { .. } => 4,
                NodeKind::File { .. } => 8,
                NodeKind::Symlink { .. } => 10,
            };
            if let (NodeKind::File { .. }, Some(&at)) = (&n.kind, linked.get(&n.file_id)) {
                // Another link to a file already written: a name more.
                let inode = &mut c.inodes[at];
                inode.count += 1;
                c.dentries.push(Dentry {
                    parent: id,
                    name: n.name.clone(),
                    id: inode.id,
                    kind,
                    added: n.times.created,
                    sibling: None,
                });
                continue;
            }
            let child_id = c.next_id;
            c.next_id += 1;
            c.dentries.push(Dentry {
                parent: id,
                name: n.name.clone(),
                id: child_id,
                kind,
                added: n.times.created,
                sibling: None,
            });
            match &n.kind {
                NodeKind::Directory { .. } => {
                    c.directories += 1;
                    stack.push((child, child_id, id));
                }
                NodeKind::File { size } => {
                    c.files += 1;
                    let mut inode = leaf_inode(n, child_id, id, 0o100000);
                    c.add_attributes(&mut inode, n);
                    if *size > 0 {
                        let runs = data_runs(&n.path, *size).map_err(|e| Error::io(&n.path, e))?;
                        let source: Arc<dyn ReadAt> =
                            Arc::new(SourceFile::new(n.path.clone(), *size));
                        // A file with holes, or a fork of its own, keeps its data stream.
                        let whole = runs == [(0, *size)];
                        let fork = inode.flags & INODE_HAS_RSRC_FORK != 0;
                        let compressed = match options.compression {
                            Some(how) if whole && !fork => {
                                decmpfs::compress(&*source, how, MAX_INLINE_XATTR)
                                    .map_err(|e| Error::io(&n.path, e))?
                            }
                            _ => None,
                        };
                        match compressed {
                            Some(packed) => c.add_compressed(&mut inode, packed, *size),
                            None => {
                                let stream = Stream {
                                    id: child_id,
                                    size: *size,
                                    runs: runs
                                        .into_iter()
                                        .map(|(at, len)| (at, len, source.clone()))
                                        .collect(),
                                };
                                if stream.sparse_bytes() > 0 {
                                    inode.flags |= INODE_IS_SPARSE;
                                }
                                c.streams.push(stream);
                                inode.stream = Some(c.streams.len() - 1);
                            }
                        }
                    }
                    linked.insert(n.file_id, c.inodes.len());
                    c.inodes.push(inode);
                }
                NodeKind::Symlink { target } => {
                    c.symlinks += 1;
                    let mut inode = leaf_inode(n, child_id, id, 0o120000);
                    let mut value = target.as_bytes().to_vec();
                    value.push(0);
                    inode
                        .xattrs
                        .push((SYMLINK.into(), XattrValue::Inline(value)));
                    c.inodes.push(inode);
                }
            }
        }
    }
    // Every name of a file with more than one has a sibling id; the first, the lowest, is the
    // primary link, whose name and parent its inode keeps.
    let shared: std::collections::HashSet<u64> = c
        .inodes
        .iter()
        .filter(|i| i.mode & 0o170000 != 0o040000 && i.count > 1)
        .map(|i| i.id)
        .collect();
    for d in c.dentries.iter_mut().filter(|d| shared.contains(&d.id)) {
        d.sibling = Some(c.next_id);
        c.next_id += 1;
    }
    Ok(c)
}

fn leaf_inode(n: &crate::fs::tree::Node, id: u64, parent: u64, kind: u16) -> Inode {
    Inode {
        id,
        parent,
        name: n.name.clone(),
        mode: kind | (n.mode & 0o7777) as u16,
        uid: n.uid,
        gid: n.gid,
        times: n.times,
        count: 1,
        stream: None,
        xattrs: Vec::new(),
        flags: 0,
        compressed: None,
    }
}

impl Contents {
    /// A file's data as decmpfs keeps it: its attribute, and its resource fork if it has one.
    fn add_compressed(&mut self, inode: &mut Inode, packed: decmpfs::Compressed, size: u64) {
        let attribute = self.xattr_value(DECMPFS, packed.attribute);
        inode.xattrs.push((DECMPFS.into(), attribute));
        if let Some(fork) = packed.fork {
            let fork = self.xattr_value(RESOURCE_FORK, fork);
            inode.xattrs.push((RESOURCE_FORK.into(), fork));
            inode.flags |= INODE_HAS_RSRC_FORK;
        }
        inode.compressed = Some(size);
        inode.flags |= INODE_HAS_UNCOMPRESSED_SIZE;
    }

    /// `node`'s extended attributes, onto `inode`; a resource fork among them is flagged.
    fn add_attributes(&mut self, inode: &mut Inode, node: &crate::fs::tree::Node) {
        for (name, value) in &node.streams {
            let value = self.xattr_value(name, value.clone());
            inode.xattrs.push((name.clone(), value));
        }
        if inode.xattrs.iter().any(|(n, _)| n == RESOURCE_FORK) {
            inode.flags |= INODE_HAS_RSRC_FORK;
        }
    }

    /// An attribute's value: in its record when small, else a data stream of its own.
    fn xattr_value(&mut self, name: &str, value: Vec<u8>) -> XattrValue {
        // Inline only where the record, with a root's smallest table of contents, fits one node.
        let record = xattr_key(0, name).len() + 4 + value.len();
        if value.len() <= MAX_INLINE_XATTR && record + 8 * 8 <= ROOT_ROOM {
            return XattrValue::Inline(value);
        }
        let id = self.next_id;
        self.next_id += 1;
        let size = value.len() as u64;
        self.streams.push(Stream {
            id,
            size,
            runs: vec![(0, size, Arc::new(value))],
        });
        XattrValue::Stream(self.streams.len() - 1)
    }
}

fn xattr_key(id: u64, name: &str) -> Vec<u8> {
    let mut k = j_key(id, XATTR);
    k.extend_from_slice(&(name.len() as u16 + 1).to_le_bytes());
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

/// A data stream's description (`j_dstream_t`): size, bytes allocated (holes included).
fn dstream(s: &Stream) -> Vec<u8> {
    let mut d = vec![0u8; 40];
    put64(&mut d, 0, s.size);
    put64(&mut d, 8, s.extent_bytes());
    d
}

/// Extended fields (`xf_blob_t`): the headers, then each (type, flags, value)'s value padded to
/// a multiple of 8 bytes.
fn xfields(fields: &[(u8, u8, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    let used: usize = fields.iter().map(|f| f.2.len().next_multiple_of(8)).sum();
    b.extend_from_slice(&(fields.len() as u16).to_le_bytes());
    b.extend_from_slice(&(used as u16).to_le_bytes());
    for (kind, flags, value) in fields {
        b.extend_from_slice(&[*kind, *flags]);
        b.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    for (_, _, value) in fields {
        b.extend_from_slice(value);
        b.extend(std::iter::repeat_n(
            0,
            value.len().next_multiple_of(8) - value.len(),
        ));
    }
    b
}

/// The physical blocks of each stream's runs, from `data_base` on in stream order.
fn place(streams: &[Stream], data_base: u64) -> Vec<Vec<u64>> {
    let mut at = data_base;
    streams
        .iter()
        .map(|s| {
            s.runs
                .iter()
                .map(|r| {
                    let start = at;
                    at += r.1.div_ceil(BLOCK);
                    start
                })
                .collect()
        })
        .collect()
}

/// The file-system tree's records, and the extent-reference tree's, in key order.
/// An encrypted volume's extents name where they were written (`crypto_id`): their tweak.
fn records(
    c: &Contents,
    placed: &[Vec<u64>],
    case_sensitive: bool,
    encrypted: bool,
) -> (Vec<Record>, Vec<Record>) {
    let mut fs: Vec<(Order, Record)> = Vec::new();
    let mut add = |id: u64, kind: u8, number: u64, name: &[u8], key: Vec<u8>, value: Vec<u8>| {
        fs.push(((id, kind, number, name.to_vec()), (key, value)));
    };
    for d in &c.dentries {
        let hash = name_hash(&d.name, !case_sensitive);
        let mut key = j_key(d.parent, DIR_REC);
        let len = d.name.len() as u32 + 1;
        key.extend_from_slice(&((hash << 10) | len).to_le_bytes());
        key.extend_from_slice(d.name.as_bytes());
        key.push(0);
        let mut value = Vec::with_capacity(18);
        value.extend_from_slice(&d.id.to_le_bytes());
        value.extend_from_slice(&(d.added as u64).to_le_bytes());
        value.extend_from_slice(&d.kind.to_le_bytes());
        if let Some(sibling) = d.sibling {
            value.extend(xfields(&[(
                DREC_EXT_TYPE_SIBLING_ID,
                0,
                sibling.to_le_bytes().to_vec(),
            )]));
        }
        add(
            d.parent,
            DIR_REC,
            u64::from(hash),
            d.name.as_bytes(),
            key,
            value,
        );
    }
    // Sibling links and maps for files of more than one name: the primary link is the first.
    let mut links: HashMap<u64, Vec<&Dentry>> = HashMap::new();
    for d in c.dentries.iter().filter(|d| d.sibling.is_some()) {
        links.entry(d.id).or_default().push(d);
    }
    for inode in &c.inodes {
        let mut value = vec![0u8; 92];
        put64(&mut value, 0, inode.parent);
        put64(&mut value, 8, inode.id);
        let t = inode.times;
        for (at, ns) in [
            (16, t.created),
            (24, t.modified),
            (32, t.changed),
            (40, t.accessed),
        ] {
            put64(&mut value, at, ns.max(0) as u64);
        }
        put64(&mut value, 48, inode.flags);
        if let Some(size) = inode.compressed {
            put32(&mut value, 68, UF_COMPRESSED);
            put64(&mut value, 84, size);
        }
        put32(&mut value, 56, inode.count);
        put32(&mut value, 72, inode.uid);
        put32(&mut value, 76, inode.gid);
        put16(&mut value, 80, inode.mode);
        let mut name = inode.name.as_bytes().to_vec();
        name.push(0);
        let mut fields = vec![(INO_EXT_TYPE_NAME, XF_DO_NOT_COPY, name)];
        if let Some(s) = inode.stream.map(|i| &c.streams[i]) {
            fields.push((INO_EXT_TYPE_DSTREAM, XF_SYSTEM_FIELD, dstream(s)));
            if s.sparse_bytes() > 0 {
                fields.push((
                    INO_EXT_TYPE_SPARSE_BYTES,
                    XF_SYSTEM_FIELD | XF_CHILDREN_INHERIT,
                    s.sparse_bytes().to_le_bytes().to_vec(),
                ));
            }
            let mut refs = j_key(s.id, DSTREAM_ID);
            refs.truncate(8);
            add(s.id, DSTREAM_ID, 0, &[], refs, 1u32.to_le_bytes().to_vec());
        }
        value.extend(xfields(&fields));
        add(inode.id, INODE, 0, &[], j_key(inode.id, INODE), value);
        for (name, x) in &inode.xattrs {
            let mut value = Vec::new();
            let system = name == SYMLINK;
            let owned = if system { XATTR_FILE_SYSTEM_OWNED } else { 0 };
            match x {
                XattrValue::Inline(bytes) => {
                    value.extend_from_slice(&(XATTR_DATA_EMBEDDED | owned).to_le_bytes());
                    value.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
                    value.extend_from_slice(bytes);
                }
                XattrValue::Stream(i) => {
                    let s = &c.streams[*i];
                    value.extend_from_slice(&(XATTR_DATA_STREAM | owned).to_le_bytes());
                    value.extend_from_slice(&48u16.to_le_bytes());
                    value.extend_from_slice(&s.id.to_le_bytes());
                    value.extend(dstream(s));
                }
            }
            add(
                inode.id,
                XATTR,
                0,
                name.as_bytes(),
                xattr_key(inode.id, name),
                value,
            );
        }
        if let Some(names) = links.get(&inode.id) {
            for d in names {
                let sibling = d.sibling.expect("a link");
                let mut key = j_key(inode.id, SIBLING_LINK);
                key.extend_from_slice(&sibling.to_le_bytes());
                let mut value = d.parent.to_le_bytes().to_vec();
                value.extend_from_slice(&(d.name.len() as u16 + 1).to_le_bytes());
                value.extend_from_slice(d.name.as_bytes());
                value.push(0);
                add(inode.id, SIBLING_LINK, sibling, &[], key, value);
                add(
                    sibling,
                    SIBLING_MAP,
                    0,
                    &[],
                    j_key(sibling, SIBLING_MAP),
                    inode.id.to_le_bytes().to_vec(),
                );
            }
        }
    }
    let mut extents: Vec<Record> = Vec::new();
    for (s, blocks) in c.streams.iter().zip(placed) {
        // Runs and the holes between them, as extents covering the whole stream.
        let mut at = 0u64;
        let mut extent = |logical: u64, len: u64, paddr: u64| {
            let mut key = j_key(s.id, FILE_EXTENT);
            key.extend_from_slice(&logical.to_le_bytes());
            let mut value = len.to_le_bytes().to_vec();
            value.extend_from_slice(&paddr.to_le_bytes());
            let crypto_id = if encrypted { paddr } else { 0 };
            value.extend_from_slice(&crypto_id.to_le_bytes());
            add(s.id, FILE_EXTENT, logical, &[], key, value);
        };
        for (run, &paddr) in s.runs.iter().zip(blocks) {
            if run.0 > at {
                extent(at, run.0 - at, 0);
            }
            let len = run.1.next_multiple_of(BLOCK);
            extent(run.0, len, paddr);
            at = run.0 + len;
            let mut value = ((len / BLOCK) | (1 << 60)).to_le_bytes().to_vec();
            value.extend_from_slice(&s.id.to_le_bytes());
            value.extend_from_slice(&1u32.to_le_bytes());
            extents.push((j_key(paddr, PHYS_EXTENT), value));
        }
        if at < s.extent_bytes() {
            extent(at, s.extent_bytes() - at, 0);
        }
    }
    fs.sort_by(|a, b| a.0.cmp(&b.0));
    extents.sort_by_key(|(k, _)| super::key_of(k).0);
    (fs.into_iter().map(|(_, r)| r).collect(), extents)
}

/// What the space manager's layout comes to for a container of `blocks` blocks.
struct Space {
    chunks: u64,
    cibs: u64,
    ip_blocks: u64,
}

impl Space {
    fn of(blocks: u64) -> Space {
        let chunks = blocks.div_ceil(BLOCKS_PER_CHUNK);
        let cibs = chunks.div_ceil(CHUNKS_PER_CIB);
        Space {
            chunks,
            cibs,
            ip_blocks: (chunks + cibs) * 3,
        }
    }

    /// The first block after the internal pool.
    fn end(&self) -> u64 {
        IP_BASE + self.ip_blocks
    }
}

/// Nodes the internal-pool free queue may grow to, from the container's chunks (as apfsprogs
/// and macOS size it).
fn ip_queue_limit(chunks: u64) -> u16 {
    match (3 * (chunks + 751) / 1127).saturating_sub(1) as u16 {
        2 => 3,
        n => n,
    }
}

/// Nodes the main free queue may grow to, from the container's blocks.
fn main_queue_limit(blocks: u64) -> u16 {
    let n = if blocks < 0x40000 {
        1 + (blocks - 1) / 4544
    } else if blocks < 0x10_0000 {
        116 + (blocks - 261_281) / 2272
    } else {
        512
    };
    match n as u16 {
        2 => 3,
        n => n,
    }
}

/// The metadata blocks laid out after the internal pool: (where each part starts).
struct Layout {
    container_omap: u64,
    volume: u64,
    volume_omap: u64,
    extentref: u64,
    snapmeta: u64,
    /// The container keybag, and the volume keybag after it, when the volume is encrypted.
    keybags: u64,
    fs: u64,
    data: u64,
}

impl Layout {
    fn new(
        space: &Space,
        volume_omap_nodes: u64,
        extentref_nodes: u64,
        fs_nodes: u64,
        encrypted: bool,
    ) -> Layout {
        let container_omap = space.end();
        let volume = container_omap + 2;
        let volume_omap = volume + 1;
        let extentref = volume_omap + 1 + volume_omap_nodes;
        let snapmeta = extentref + extentref_nodes;
        let keybags = snapmeta + 1;
        let fs = keybags + if encrypted { 2 } else { 0 };
        Layout {
            container_omap,
            volume,
            volume_omap,
            extentref,
            snapmeta,
            keybags,
            fs,
            data: fs + fs_nodes,
        }
    }
}

/// Object map records of (object id, block), each with `flags`.
fn omap_records(entries: impl Iterator<Item = (u64, u64)>, flags: u32) -> Vec<Record> {
    entries
        .map(|(oid, paddr)| {
            let mut key = oid.to_le_bytes().to_vec();
            key.extend_from_slice(&XID.to_le_bytes());
            let mut value = flags.to_le_bytes().to_vec();
            value.extend_from_slice(&(BLOCK as u32).to_le_bytes());
            value.extend_from_slice(&paddr.to_le_bytes());
            (key, value)
        })
        .collect()
}

/// An object map (`omap_phys_t`) at `paddr` whose tree's root is `root`.
fn omap_object(paddr: u64, root: u64, manually_managed: bool) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    put32(&mut b, 32, u32::from(manually_managed));
    put32(&mut b, 40, BTREE | OBJ_PHYSICAL);
    put32(&mut b, 44, BTREE | OBJ_PHYSICAL);
    put64(&mut b, 48, root);
    seal(&mut b, paddr, OBJ_PHYSICAL | OMAP, 0);
    b
}

/// The container `tree` makes: its blocks, the files' bytes read from the folder when read.
pub fn build(tree: &Tree, options: &Options, now: i64) -> Result<Arc<dyn ReadAt>> {
    let refuse = |reason: String| Error::Refused {
        path: tree.nodes[0].path.clone(),
        reason,
    };
    if options.volume_name.len() > 255 {
        return Err(refuse("an APFS volume name is at most 255 bytes".into()));
    }
    let cs = options.case_sensitive;
    let encrypted = options.encryption.is_some();
    let c = contents(tree, options)?;
    // The trees' shapes depend on their records' sizes, not on where the data goes.
    let (fs_records, extent_records) = records(&c, &place(&c.streams, 0), cs, encrypted);
    let fs_nodes = build_tree(FS_TREE, &fs_records, 0).nodes.len() as u64;
    let extentref_nodes = build_tree(EXTENTREF_TREE, &extent_records, 0).nodes.len() as u64;
    let volume_omap_nodes = build_tree(
        OMAP_TREE,
        &omap_records((0..fs_nodes).map(|i| (i, i)), 0),
        0,
    )
    .nodes
    .len() as u64;
    let data_blocks: u64 = c.streams.iter().map(Stream::allocated).sum();
    let used = |space: &Space| {
        Layout::new(
            space,
            volume_omap_nodes,
            extentref_nodes,
            fs_nodes,
            encrypted,
        )
        .data
            + data_blocks
    };
    let blocks = match options.size {
        Some(size) => size / BLOCK,
        None => {
            // The tree with an eighth more and 8 MiB to spare, as the layout for that size needs.
            let mut blocks = 0;
            loop {
                let need = used(&Space::of(blocks));
                let want = need + need / 8 + 2048;
                if blocks >= want {
                    break blocks;
                }
                blocks = want;
            }
        }
    };
    let space = Space::of(blocks);
    let used_end = used(&space);
    if used_end > blocks {
        return Err(refuse(format!(
            "does not fit in {} bytes: it needs about {}",
            blocks * BLOCK,
            used_end * BLOCK
        )));
    }
    if space.cibs > MAX_CIBS {
        return Err(refuse(format!(
            "an APFS container of {} bytes is larger than dimg makes",
            blocks * BLOCK
        )));
    }
    let layout = Layout::new(
        &space,
        volume_omap_nodes,
        extentref_nodes,
        fs_nodes,
        encrypted,
    );
    let placed = place(&c.streams, layout.data);
    let (fs_records, extent_records) = records(&c, &placed, cs, encrypted);
    let mut meta: Vec<(u64, Vec<u8>)> = Vec::new();
    let (container_uuid, volume_uuid) = (
        crate::bytes::uuid(None, "container"),
        crate::bytes::uuid(None, "volume"),
    );

    // An encrypted volume's keys: the keybags, and the VEK for its tree nodes and data.
    let vek = options.encryption.as_ref().map(|pass| {
        let password = pass
            .candidates()
            .next()
            .expect("a passphrase has a candidate");
        let keys = new_keys(
            password,
            &container_uuid,
            &volume_uuid,
            (layout.keybags, layout.keybags + 1),
            XID,
            BS,
        );
        meta.push((layout.keybags, keys.container_bag));
        meta.push((layout.keybags + 1, keys.volume_bag));
        Arc::new(keys.vek)
    });

    // The volume's trees and object map.
    let fs_tree = build_tree(FS_TREE, &fs_records, FIRST_NODE_OID);
    let fs_root = fs_tree.root();
    let mut mappings = Vec::new();
    for (i, (oid, mut block)) in fs_tree.nodes.into_iter().enumerate() {
        let paddr = layout.fs + i as u64;
        if let Some(vek) = &vek {
            vek.encrypt(&mut block, paddr * UNITS);
        }
        mappings.push((oid, paddr));
        meta.push((paddr, block));
    }
    let node_flags = if encrypted { OMAP_VAL_ENCRYPTED } else { 0 };
    let volume_omap_tree = build_tree(
        OMAP_TREE,
        &omap_records(mappings.into_iter(), node_flags),
        layout.volume_omap + 1,
    );
    meta.push((
        layout.volume_omap,
        omap_object(layout.volume_omap, volume_omap_tree.root(), false),
    ));
    meta.extend(volume_omap_tree.nodes);
    let extentref = build_tree(EXTENTREF_TREE, &extent_records, layout.extentref);
    let extentref_root = extentref.root();
    meta.extend(extentref.nodes);
    meta.extend(build_tree(SNAPMETA_TREE, &[], layout.snapmeta).nodes);
    let volume_blocks = 1 + volume_omap_nodes + extentref_nodes + 1 + fs_nodes + data_blocks;

    // The volume superblock.
    let now_ns = (now.max(0) as u64).saturating_mul(1_000_000_000);
    let mut v = vec![0u8; BS];
    v[32..36].copy_from_slice(b"APSB");
    put64(&mut v, 40, 0x2); // hard-link map records
    put64(
        &mut v,
        56,
        if cs {
            INCOMPAT_NORMALIZATION_INSENSITIVE
        } else {
            INCOMPAT_CASE_INSENSITIVE
        },
    );
    put64(&mut v, 64, now_ns);
    put64(&mut v, 88, volume_blocks);
    // Metadata crypto state of an unencrypted volume: version 5.0, class F, key revision 1.
    put16(&mut v, 96, 5);
    put32(&mut v, 104, 6);
    put16(&mut v, 112, 1);
    put32(&mut v, 116, BTREE);
    put32(&mut v, 120, BTREE | OBJ_PHYSICAL);
    put32(&mut v, 124, BTREE | OBJ_PHYSICAL);
    put64(&mut v, 128, layout.volume_omap);
    put64(&mut v, 136, fs_root);
    put64(&mut v, 144, extentref_root);
    put64(&mut v, 152, layout.snapmeta);
    put64(&mut v, 176, c.next_id);
    put64(&mut v, 184, c.files);
    put64(&mut v, 192, c.directories);
    put64(&mut v, 200, c.symlinks);
    put64(&mut v, 224, volume_blocks);
    v[240..256].copy_from_slice(&volume_uuid);
    put64(&mut v, 256, now_ns);
    // One key (the VEK) for the whole volume, as software encryption has it.
    put64(
        &mut v,
        264,
        if encrypted { FS_ONEKEY } else { FS_UNENCRYPTED },
    );
    let made_by = concat!("dimg ", env!("CARGO_PKG_VERSION"));
    v[272..272 + made_by.len()].copy_from_slice(made_by.as_bytes());
    put64(&mut v, 304, now_ns);
    put64(&mut v, 312, XID);
    v[704..704 + options.volume_name.len()].copy_from_slice(options.volume_name.as_bytes());
    put32(&mut v, 960, 3); // the first document id not reserved
    seal(&mut v, VOLUME_OID, FS, 0);
    meta.push((layout.volume, v));

    // The container's object map: the one volume.
    let container_omap_tree = build_tree(
        OMAP_TREE,
        &omap_records(std::iter::once((VOLUME_OID, layout.volume)), 0),
        layout.container_omap + 1,
    );
    meta.push((
        layout.container_omap,
        omap_object(layout.container_omap, container_omap_tree.root(), true),
    ));
    meta.extend(container_omap_tree.nodes);

    // The space manager: the blocks before `HEAD_END` and from `IP_BASE` to `used_end` are in
    // use, no others.
    let in_use = [(0, HEAD_END), (IP_BASE, used_end)];
    let used_in = |start: u64, end: u64| -> u64 {
        in_use
            .iter()
            .map(|&(a, b)| b.min(end).saturating_sub(a.max(start)))
            .sum()
    };
    let used_chunks = used_end.div_ceil(BLOCKS_PER_CHUNK);
    for chunk in 0..used_chunks {
        let mut bitmap = vec![0u8; BS];
        let start = chunk * BLOCKS_PER_CHUNK;
        for b in 0..BLOCKS_PER_CHUNK {
            if used_in(start + b, start + b + 1) > 0 {
                bitmap[(b / 8) as usize] |= 1 << (b % 8);
            }
        }
        meta.push((IP_BASE + chunk, bitmap));
    }
    let first_cib = IP_BASE + used_chunks;
    for cib in 0..space.cibs {
        let mut b = vec![0u8; BS];
        put32(&mut b, 32, cib as u32);
        let first = cib * CHUNKS_PER_CIB;
        let chunks = (first..space.chunks.min(first + CHUNKS_PER_CIB)).collect::<Vec<_>>();
        put32(&mut b, 36, chunks.len() as u32);
        for (i, &chunk) in chunks.iter().enumerate() {
            let at = 40 + 32 * i;
            let start = chunk * BLOCKS_PER_CHUNK;
            let count = (blocks - start).min(BLOCKS_PER_CHUNK);
            put64(&mut b, at, XID);
            put64(&mut b, at + 8, start);
            put32(&mut b, at + 16, count as u32);
            put32(
                &mut b,
                at + 20,
                (count - used_in(start, start + count)) as u32,
            );
            if chunk < used_chunks {
                put64(&mut b, at + 24, IP_BASE + chunk);
            }
        }
        seal(&mut b, first_cib + cib, OBJ_PHYSICAL | SPACEMAN_CIB, 0);
        meta.push((first_cib + cib, b));
    }
    // The internal pool's current bitmap: its chunk bitmaps and chunk-info blocks.
    let mut ip_bitmap = vec![0u8; BS];
    for b in 0..used_chunks + space.cibs {
        ip_bitmap[(b / 8) as usize] |= 1 << (b % 8);
    }
    meta.push((IP_BITMAP_BASE, ip_bitmap));
    let mut sm = vec![0u8; BS];
    put32(&mut sm, 32, BLOCK as u32);
    put32(&mut sm, 36, BLOCKS_PER_CHUNK as u32);
    put32(&mut sm, 40, CHUNKS_PER_CIB as u32);
    put32(&mut sm, 44, ((BLOCK - 40) / 8) as u32);
    put64(&mut sm, 48, blocks);
    put64(&mut sm, 56, space.chunks);
    put32(&mut sm, 64, space.cibs as u32);
    put64(&mut sm, 72, blocks - used_in(0, blocks));
    put32(&mut sm, 80, SM_CIB_ADDRESSES_AT as u32);
    // The second (fusion) device has none, its addresses after the first's.
    put32(
        &mut sm,
        128,
        (SM_CIB_ADDRESSES_AT + 8 * space.cibs as usize) as u32,
    );
    put32(&mut sm, 148, 16); // internal-pool bitmap transaction multiplier
    put64(&mut sm, 152, space.ip_blocks);
    put32(&mut sm, 160, 1);
    put32(&mut sm, 164, IP_BITMAPS as u32);
    put64(&mut sm, 168, IP_BITMAP_BASE);
    put64(&mut sm, 176, IP_BASE);
    put64(&mut sm, 208, IP_QUEUE_OID);
    put16(&mut sm, 224, ip_queue_limit(space.chunks));
    put64(&mut sm, 248, MAIN_QUEUE_OID);
    put16(&mut sm, 264, main_queue_limit(blocks));
    // The internal pool's bitmaps: the first current, the next one in use too, the other 14 a
    // free ring (each naming the next).
    put16(&mut sm, 320, 1);
    put16(&mut sm, 322, (IP_BITMAPS - 1) as u16);
    put32(&mut sm, 324, SM_IP_XID_AT as u32);
    put32(&mut sm, 328, SM_IP_BITMAP_AT as u32);
    put32(&mut sm, 332, SM_IP_FREE_NEXT_AT as u32);
    for i in 0..IP_BITMAPS as usize {
        let next = if (1..IP_BITMAPS as usize - 1).contains(&i) {
            i as u16 + 1
        } else {
            0xFFFF
        };
        put16(&mut sm, SM_IP_FREE_NEXT_AT + 2 * i, next);
    }
    for cib in 0..space.cibs as usize {
        put64(
            &mut sm,
            SM_CIB_ADDRESSES_AT + 8 * cib,
            first_cib + cib as u64,
        );
    }
    seal(&mut sm, SPACEMAN_OID, OBJ_EPHEMERAL | SPACEMAN, 0);

    // The checkpoint's ephemeral objects: reaper, space manager, free queues.
    let mut reaper = vec![0u8; BS];
    put64(&mut reaper, 32, 1);
    put32(&mut reaper, 64, 1);
    put32(&mut reaper, 108, (BLOCK - 112) as u32);
    seal(&mut reaper, REAPER_OID, OBJ_EPHEMERAL | NX_REAPER, 0);
    let ephemeral = [
        (OBJ_EPHEMERAL | NX_REAPER, 0, REAPER_OID, reaper),
        (OBJ_EPHEMERAL | SPACEMAN, 0, SPACEMAN_OID, sm),
        (
            OBJ_EPHEMERAL | BTREE,
            FREE_QUEUE,
            IP_QUEUE_OID,
            build_tree(FREE_QUEUE_TREE, &[], IP_QUEUE_OID)
                .nodes
                .remove(0)
                .1,
        ),
        (
            OBJ_EPHEMERAL | BTREE,
            FREE_QUEUE,
            MAIN_QUEUE_OID,
            build_tree(FREE_QUEUE_TREE, &[], MAIN_QUEUE_OID)
                .nodes
                .remove(0)
                .1,
        ),
    ];
    let mut map = vec![0u8; BS];
    put32(&mut map, 32, 1); // the last map of the checkpoint
    put32(&mut map, 36, ephemeral.len() as u32);
    for (i, (kind, subtype, oid, block)) in ephemeral.into_iter().enumerate() {
        let at = 40 + 40 * i;
        let paddr = DATA_BASE + i as u64;
        put32(&mut map, at, kind);
        put32(&mut map, at + 4, subtype);
        put32(&mut map, at + 8, BLOCK as u32);
        put64(&mut map, at + 24, oid);
        put64(&mut map, at + 32, paddr);
        meta.push((paddr, block));
    }
    seal(&mut map, DESC_BASE, OBJ_PHYSICAL | CHECKPOINT_MAP, 0);
    meta.push((DESC_BASE, map));

    // The container superblock, at block 0 and in the checkpoint.
    let mut nx = vec![0u8; BS];
    nx[32..36].copy_from_slice(b"NXSB");
    put32(&mut nx, 36, BLOCK as u32);
    put64(&mut nx, 40, blocks);
    put64(&mut nx, 64, 0x2); // version 2
    nx[72..88].copy_from_slice(&container_uuid);
    put64(&mut nx, 88, FIRST_NODE_OID + fs_nodes);
    put64(&mut nx, 96, XID + 1);
    put32(&mut nx, 104, DESC_BLOCKS as u32);
    put32(&mut nx, 108, DATA_BLOCKS as u32);
    put64(&mut nx, 112, DESC_BASE);
    put64(&mut nx, 120, DATA_BASE);
    put32(&mut nx, 128, 2);
    put32(&mut nx, 132, 4);
    put32(&mut nx, 140, 2);
    put32(&mut nx, 148, 4);
    put64(&mut nx, 152, SPACEMAN_OID);
    put64(&mut nx, 160, layout.container_omap);
    put64(&mut nx, 168, REAPER_OID);
    put32(
        &mut nx,
        180,
        (blocks * BLOCK).div_ceil(512 << 20).clamp(1, 100) as u32,
    );
    put64(&mut nx, 184, VOLUME_OID);
    if encrypted {
        put64(&mut nx, 1264, NX_CRYPTO_SW);
        put64(&mut nx, 1296, layout.keybags);
        put64(&mut nx, 1304, 1);
    }
    // Ephemeral info, version 1: a minimum of 8 blocks and 4 structures per volume.
    put64(&mut nx, 1312, (8 << 32) | (4 << 16) | 1);
    seal(&mut nx, 1, OBJ_EPHEMERAL | NX_SUPERBLOCK, 0);
    meta.push((DESC_BASE + 1, nx.clone()));
    meta.push((0, nx));

    // The disk: zeros for the metadata's blocks, then each run of data, then free space; the
    // metadata written over the zeros.
    let mut disk = Assembly::default();
    disk.push(Arc::new(Zeros(layout.data * BLOCK)));
    for (s, blocks) in c.streams.iter().zip(&placed) {
        for ((at, len, source), &paddr) in s.runs.iter().zip(blocks) {
            let mut run = Assembly::default();
            run.push(Arc::new(Slice::new(source.clone(), *at, *len)));
            run.pad_to(BLOCK);
            let run = run.finish();
            disk.push(match &vek {
                // Encrypted where it lies: its tweak is its first block's (its crypto_id).
                Some(key) => Arc::new(Ciphered {
                    len: run.size(),
                    disk: run,
                    start: 0,
                    tweak: paddr * UNITS,
                    key: key.clone(),
                    encrypt: true,
                }),
                None => run,
            });
        }
    }
    debug_assert_eq!(disk.size(), used_end * BLOCK);
    disk.push(Arc::new(Zeros((blocks - used_end) * BLOCK)));
    let mut patched = Patched::new(disk.finish(), blocks * BLOCK);
    for (paddr, block) in meta {
        patched.put(paddr * BLOCK, block);
    }
    Ok(Arc::new(patched))
}
