//! Writing HFS+ and HFSX volumes (TN1150; formats.md §h.1), with an empty journal where asked.
//! The catalog B-tree is
//! bulk-loaded from every record sorted by key — leaves packed in order, index levels above them
//! until one root — so any number of files fits; the extents-overflow tree is empty because
//! every fork is one contiguous extent. Names are stored decomposed, as HFS+ requires, with ':'
//! stored as '/' (how macOS keeps a POSIX ':'); symlinks are "slnk"/"rhap" files holding their
//! target. File data is read from the folder when the volume is read.

use super::journal::JOURNALED;
use super::{compare_names, hfs_name, mac_date, FIRST_USER_ID, ROOT_FOLDER, ROOT_PARENT};
use crate::error::{Error, Result};
use crate::fs::tree::{NodeKind, SourceFile, Tree, FINDER_INFO, RESOURCE_FORK};
use crate::io::{Assembly, ReadAt, Zeros};
use std::cmp::Ordering;
use std::sync::Arc;

/// The allocation block size of a volume of its own; a hybrid CD's HFS+ side uses the CD's 2048.
pub const BLOCK: u64 = 4096;
const CATALOG_NODE: usize = 8192;
const EXTENTS_NODE: usize = 4096;
/// The largest attribute kept in its B-tree record (Apple's limit for 8 KiB nodes); larger ones
/// get allocation blocks of their own.
pub(super) const MAX_INLINE: usize = 3802;
/// Nodes one header node's map record can account for; beyond, map nodes would be needed.
const MAX_NODES: usize = (CATALOG_NODE - 14 - 106 - 128 - 8) * 8;

pub struct Options {
    pub volume_name: String,
    /// Allocation block size: [`BLOCK`], or 2048 to share a CD's sectors.
    pub block: u64,
    /// HFSX: names compare as binary, so "a" and "A" are different files.
    pub case_sensitive: bool,
    /// The volume's size; `None` sizes it from the tree with room to spare.
    pub size: Option<u64>,
    /// Without `size`: no room to spare (a hybrid disc's HFS+ side).
    pub tight: bool,
    /// With a journal (Mac OS Extended, Journaled: hdiutil's and Disk Utility's default).
    pub journaled: bool,
    /// A reproducible image's seed, which gives the volume's identifier (else random).
    pub seed: Option<crate::bytes::Seed>,
}

/// A catalog record: its key (parent, name) and its data.
struct Record {
    parent: u32,
    name: Vec<u16>,
    data: Vec<u8>,
}

impl Record {
    fn key(&self) -> Vec<u8> {
        catalog_key(self.parent, &self.name)
    }
}

/// A catalog key: its length, the parent's ID, the name.
pub(super) fn catalog_key(parent: u32, name: &[u16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + 2 * name.len());
    k.extend_from_slice(&((6 + 2 * name.len()) as u16).to_be_bytes());
    k.extend_from_slice(&parent.to_be_bytes());
    k.extend_from_slice(&(name.len() as u16).to_be_bytes());
    for u in name {
        k.extend_from_slice(&u.to_be_bytes());
    }
    k
}

/// BSD permissions (16 bytes).
fn permissions(uid: u32, gid: u32, mode: u32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0..4].copy_from_slice(&uid.to_be_bytes());
    p[4..8].copy_from_slice(&gid.to_be_bytes());
    p[10..12].copy_from_slice(&(mode as u16).to_be_bytes());
    p
}

/// A fork of one contiguous extent (80 bytes).
fn fork(size: u64, start: u32, blocks: u32) -> [u8; 80] {
    fork_data(size, blocks, &[(start, blocks)])
}

/// A fork record (80 bytes): its length, its blocks in all, and its first eight extents.
pub(super) fn fork_data(size: u64, blocks: u32, extents: &[(u32, u32)]) -> [u8; 80] {
    let mut f = [0u8; 80];
    f[0..8].copy_from_slice(&size.to_be_bytes());
    f[12..16].copy_from_slice(&blocks.to_be_bytes());
    for (i, &(start, count)) in extents.iter().filter(|e| e.1 > 0).take(8).enumerate() {
        f[16 + 8 * i..20 + 8 * i].copy_from_slice(&start.to_be_bytes());
        f[20 + 8 * i..24 + 8 * i].copy_from_slice(&count.to_be_bytes());
    }
    f
}

/// A folder record (88 bytes): its ID, how many entries it holds, its date and BSD owner and mode.
pub(super) fn folder_record(
    id: u32,
    valence: u32,
    date: u32,
    uid: u32,
    gid: u32,
    mode: u32,
) -> Vec<u8> {
    let mut d = Vec::with_capacity(88);
    d.extend_from_slice(&1u16.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(&valence.to_be_bytes());
    d.extend_from_slice(&id.to_be_bytes());
    for _ in 0..4 {
        d.extend_from_slice(&date.to_be_bytes());
    }
    d.extend_from_slice(&[0; 4]);
    d.extend_from_slice(&permissions(uid, gid, 0o040000 | mode));
    d.resize(88, 0);
    d
}

/// A file record (248 bytes) with empty forks: its ID, date, owner, full mode (type bits
/// included) and Finder type and creator.
pub(super) fn file_record(
    id: u32,
    date: u32,
    uid: u32,
    gid: u32,
    mode: u32,
    kind: Option<([u8; 4], [u8; 4])>,
) -> Vec<u8> {
    let mut d = Vec::with_capacity(248);
    d.extend_from_slice(&2u16.to_be_bytes());
    d.extend_from_slice(&0x0002u16.to_be_bytes()); // a thread record exists
    d.extend_from_slice(&[0; 4]);
    d.extend_from_slice(&id.to_be_bytes());
    for _ in 0..4 {
        d.extend_from_slice(&date.to_be_bytes());
    }
    d.extend_from_slice(&[0; 4]);
    d.extend_from_slice(&permissions(uid, gid, mode));
    let mut info = [0u8; 16];
    if let Some((file_type, creator)) = kind {
        info[0..4].copy_from_slice(&file_type);
        info[4..8].copy_from_slice(&creator);
    }
    d.extend_from_slice(&info);
    d.resize(248, 0);
    d
}

/// An attributes B-tree key: file `id`'s attribute `name`, the record mapping its value from
/// block `start` (0 for the attribute's first record; with no name, the smallest of its keys).
pub(super) fn attribute_key(id: u32, name: &[u16], start: u32) -> Vec<u8> {
    let mut k = ((12 + 2 * name.len()) as u16).to_be_bytes().to_vec();
    k.extend_from_slice(&[0, 0]);
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(&start.to_be_bytes());
    k.extend_from_slice(&(name.len() as u16).to_be_bytes());
    name.iter()
        .for_each(|u| k.extend_from_slice(&u.to_be_bytes()));
    k
}

/// An attribute record's data holding `value` itself (kHFSPlusAttrInlineData).
pub(super) fn inline_attribute(value: &[u8]) -> Vec<u8> {
    let mut data = 0x10u32.to_be_bytes().to_vec();
    data.extend_from_slice(&[0; 8]);
    data.extend_from_slice(&(value.len() as u32).to_be_bytes());
    data.extend_from_slice(value);
    data.resize(data.len().next_multiple_of(2), 0);
    data
}

/// Attribute records whose value is in blocks of its own: the first, with the value's fork
/// (kHFSPlusAttrForkData), and those with eight more of its extents (kHFSPlusAttrExtents).
pub(super) const ATTRIBUTE_FORK: u32 = 0x20;
pub(super) const ATTRIBUTE_EXTENTS: u32 = 0x30;

/// An attribute record's data pointing at its value's blocks: `kind` with `extents` (a fork, or
/// an extent record).
pub(super) fn attribute_in_blocks(kind: u32, extents: &[u8]) -> Vec<u8> {
    let mut data = kind.to_be_bytes().to_vec();
    data.extend_from_slice(&[0; 4]);
    data.extend_from_slice(extents);
    data
}

pub(super) fn thread(kind: u16, parent: u32, name: &[u16]) -> Vec<u8> {
    let mut t = Vec::with_capacity(10 + 2 * name.len());
    t.extend_from_slice(&kind.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&parent.to_be_bytes());
    t.extend_from_slice(&(name.len() as u16).to_be_bytes());
    for u in name {
        t.extend_from_slice(&u.to_be_bytes());
    }
    t
}

/// A B-tree node: descriptor, records, and their offsets from the end backwards.
pub(super) fn node(
    size: usize,
    kind: i8,
    height: u8,
    next: u32,
    prev: u32,
    records: &[Vec<u8>],
) -> Vec<u8> {
    let mut n = vec![0u8; size];
    n[0..4].copy_from_slice(&next.to_be_bytes());
    n[4..8].copy_from_slice(&prev.to_be_bytes());
    n[8] = kind as u8;
    n[9] = height;
    n[10..12].copy_from_slice(&(records.len() as u16).to_be_bytes());
    let mut at = 14;
    for (i, r) in records.iter().enumerate() {
        n[at..at + r.len()].copy_from_slice(r);
        n[size - 2 * (i + 1)..size - 2 * i].copy_from_slice(&(at as u16).to_be_bytes());
        at += r.len();
    }
    let i = records.len();
    n[size - 2 * (i + 1)..size - 2 * i].copy_from_slice(&(at as u16).to_be_bytes());
    n
}

/// Bytes a node's records may take: its size less the descriptor and one offset per record
/// plus the free-space offset.
fn fits(used: usize, count: usize, next: usize, size: usize) -> bool {
    14 + used + next + 2 * (count + 2) <= size
}

/// The header node: the header record, the empty user record, and the map of used nodes.
fn header_node(size: usize, header: &[u8], used_nodes: usize) -> Vec<u8> {
    let map_len = size - 14 - 106 - 128 - 8;
    let mut map = vec![0u8; map_len];
    for i in 0..used_nodes {
        map[i / 8] |= 0x80 >> (i % 8);
    }
    node(size, 1, 0, 0, 0, &[header.to_vec(), vec![0u8; 128], map])
}

#[allow(clippy::too_many_arguments)]
fn btree_header(
    depth: u16,
    root: u32,
    leaf_records: u32,
    first_leaf: u32,
    last_leaf: u32,
    node_size: usize,
    max_key: u16,
    total: u32,
    free: u32,
    compare: u8,
    attributes: u32,
) -> Vec<u8> {
    let mut h = vec![0u8; 106];
    h[0..2].copy_from_slice(&depth.to_be_bytes());
    h[2..6].copy_from_slice(&root.to_be_bytes());
    h[6..10].copy_from_slice(&leaf_records.to_be_bytes());
    h[10..14].copy_from_slice(&first_leaf.to_be_bytes());
    h[14..18].copy_from_slice(&last_leaf.to_be_bytes());
    h[18..20].copy_from_slice(&(node_size as u16).to_be_bytes());
    h[20..22].copy_from_slice(&max_key.to_be_bytes());
    h[22..26].copy_from_slice(&total.to_be_bytes());
    h[26..30].copy_from_slice(&free.to_be_bytes());
    h[32..36].copy_from_slice(&(node_size as u32).to_be_bytes());
    h[37] = compare;
    h[38..42].copy_from_slice(&attributes.to_be_bytes());
    h
}

/// One level of a B-tree being built: each node's first key and its records.
type Level = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

/// A B-tree file (catalog or attributes) bulk-loaded from `records` — (key, data), sorted —
/// with `spare` free nodes; `compare` and `max_key` go in its header.
fn bulk_tree(
    records: &[(Vec<u8>, Vec<u8>)],
    max_key: u16,
    compare: u8,
    spare: usize,
) -> Result<Vec<u8>> {
    // Leaves, packed in key order; node 0 is the header.
    let mut levels: Vec<Level> = Vec::new();
    let mut leaves: Level = Vec::new();
    let mut used = 0;
    for (key, data) in records {
        let mut bytes = key.clone();
        bytes.extend_from_slice(data);
        if leaves.is_empty()
            || !fits(
                used,
                leaves.last().unwrap().1.len(),
                bytes.len(),
                CATALOG_NODE,
            )
        {
            leaves.push((key.clone(), Vec::new()));
            used = 0;
        }
        used += bytes.len();
        leaves.last_mut().expect("a leaf").1.push(bytes);
    }
    levels.push(leaves);
    while levels.last().expect("a level").len() > 1 {
        let below = levels.last().expect("a level");
        let mut above: Level = Vec::new();
        let mut used = 0;
        for (i, (key, _)) in below.iter().enumerate() {
            // Child numbers are filled in once every node has its number.
            let mut record = key.clone();
            record.extend_from_slice(&(i as u32).to_be_bytes());
            if above.is_empty()
                || !fits(
                    used,
                    above.last().unwrap().1.len(),
                    record.len(),
                    CATALOG_NODE,
                )
            {
                above.push((key.clone(), Vec::new()));
                used = 0;
            }
            used += record.len();
            above.last_mut().expect("a node").1.push(record);
        }
        levels.push(above);
    }
    // Number the nodes: the header, then the leaves, then each index level up to the root.
    let mut first_number = Vec::new();
    let mut n = 1u32;
    for level in &levels {
        first_number.push(n);
        n += level.len() as u32;
    }
    let used_nodes = n as usize;
    let total = used_nodes + spare;
    if total > MAX_NODES {
        return Err(Error::Refused {
            path: std::path::PathBuf::new(),
            reason: format!(
                "needs a catalog of {total} nodes: more files than dimg's HFS+ writer holds yet"
            ),
        });
    }
    let depth = levels.len() as u16;
    let root = first_number[levels.len() - 1];
    let header = btree_header(
        depth,
        root,
        records.len() as u32,
        first_number[0],
        first_number[0] + levels[0].len() as u32 - 1,
        CATALOG_NODE,
        max_key,
        total as u32,
        spare as u32,
        compare,
        6, // big keys, variable-length index keys
    );
    let mut out = header_node(CATALOG_NODE, &header, used_nodes);
    for (height, level) in levels.iter().enumerate() {
        let first = first_number[height];
        let count = level.len() as u32;
        for (i, (_, records)) in level.iter().enumerate() {
            let i = i as u32;
            let (kind, records) = if height == 0 {
                (-1, records.clone())
            } else {
                // Point each index record at its child's real number.
                let below = first_number[height - 1];
                let fixed = records
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        let at = r.len() - 4;
                        let child = u32::from_be_bytes(r[at..].try_into().expect("4 bytes"));
                        r[at..].copy_from_slice(&(below + child).to_be_bytes());
                        r
                    })
                    .collect();
                (0, fixed)
            };
            let next = if i + 1 < count { first + i + 1 } else { 0 };
            let prev = if i > 0 { first + i - 1 } else { 0 };
            out.extend(node(
                CATALOG_NODE,
                kind,
                height as u8 + 1,
                next,
                prev,
                &records,
            ));
        }
    }
    out.resize(total * CATALOG_NODE, 0);
    Ok(out)
}

/// The catalog: keys as `Record::key` makes them; HFSX says how it compares (on HFS+ the field
/// is reserved: it always folds case).
fn catalog_tree(records: &[Record], case_sensitive: bool, spare: usize) -> Result<Vec<u8>> {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> =
        records.iter().map(|r| (r.key(), r.data.clone())).collect();
    bulk_tree(&pairs, 516, if case_sensitive { 0xBC } else { 0 }, spare)
}

/// An empty B-tree of `nodes` nodes: its header node, then free nodes. The extents-overflow tree
/// is always one; so is the attributes tree of a volume without attributes, since readers such
/// as libfshfs expect the attributes file newfs_hfs always makes.
pub(super) fn empty_tree(node_size: usize, max_key: u16, key_flags: u32, nodes: usize) -> Vec<u8> {
    let free = nodes as u32 - 1;
    let header = btree_header(
        0,
        0,
        0,
        0,
        0,
        node_size,
        max_key,
        nodes as u32,
        free,
        0,
        key_flags,
    );
    let mut out = header_node(node_size, &header, 1);
    out.resize(nodes * node_size, 0);
    out
}

/// The catalog node ID `build` gives the tree's node `node`: the root is 2, everything else from
/// 16 in tree order.
pub fn catalog_id(node: usize) -> u32 {
    match node {
        0 => ROOT_FOLDER,
        i => FIRST_USER_ID + i as u32 - 1,
    }
}

/// A node's Finder info (its `com.apple.FinderInfo` stream), which the catalog record holds.
fn finder_info(streams: &[(String, Vec<u8>)]) -> Option<&[u8]> {
    streams
        .iter()
        .find(|(name, value)| name == FINDER_INFO && value.len() == 32)
        .map(|(_, value)| &value[..])
}

/// A built volume and where each node's data starts in it (files and symlinks).
pub struct Built {
    pub volume: Arc<dyn ReadAt>,
    pub data_at: Vec<Option<u64>>,
}

/// Builds the volume for `tree` (or an empty one).
pub fn build(tree: Option<&Tree>, options: &Options, now: i64) -> Result<Built> {
    let block = options.block;
    let case_sensitive = options.case_sensitive;
    let volume_name = hfs_name(&options.volume_name);
    let empty = Tree::empty(now);
    let tree = tree.unwrap_or(&empty);
    let cnid = catalog_id;
    let data_blocks = |i: usize| -> u64 {
        match &tree.nodes[i].kind {
            NodeKind::File { size } => size.div_ceil(block),
            NodeKind::Symlink { target } => (target.len() as u64).div_ceil(block),
            NodeKind::Directory { .. } => 0,
        }
    };
    // A file's resource fork, and every node's extended attributes (from the folder's "user."
    // attributes, as `dimg extract` writes them).
    let resource = |i: usize| -> &[u8] {
        let n = &tree.nodes[i];
        match n.kind {
            NodeKind::File { .. } => n
                .streams
                .iter()
                .find(|(name, _)| name == RESOURCE_FORK)
                .map_or(&[][..], |(_, v)| v),
            _ => &[],
        }
    };
    let attributes = |i: usize| {
        let is_file = matches!(tree.nodes[i].kind, NodeKind::File { .. });
        tree.nodes[i]
            .streams
            .iter()
            .filter(move |(name, _)| !(is_file && name == RESOURCE_FORK) && name != FINDER_INFO)
    };
    // Attributes too large for a record of their own get blocks, after the node's forks.
    let big_blocks = |i: usize| -> u64 {
        attributes(i)
            .filter(|(_, v)| v.len() > MAX_INLINE)
            .map(|(_, v)| (v.len() as u64).div_ceil(block))
            .sum()
    };
    let resource_blocks = |i: usize| (resource(i).len() as u64).div_ceil(block);
    // Where each node's blocks start, counted from the first data block: its data fork, then
    // its resource fork, then its large attributes — the order the volume lays them out in.
    let mut plan = Vec::with_capacity(tree.nodes.len());
    let mut data_total = 0;
    for i in 0..tree.nodes.len() {
        plan.push(data_total);
        data_total += data_blocks(i) + resource_blocks(i) + big_blocks(i);
    }
    // The attributes B-tree's records, sorted, the large ones' blocks counted from `first_data`.
    let attribute_records = |first_data: u64| -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut records = Vec::new();
        for (i, &start) in plan.iter().enumerate() {
            let mut next = first_data + start + data_blocks(i) + resource_blocks(i);
            for (name, value) in attributes(i) {
                let units: Vec<u16> = name.encode_utf16().collect();
                let key = attribute_key(cnid(i), &units, 0);
                let data = if value.len() <= MAX_INLINE {
                    inline_attribute(value)
                } else {
                    let blocks = (value.len() as u64).div_ceil(block);
                    let value_fork = fork(value.len() as u64, next as u32, blocks as u32);
                    next += blocks;
                    attribute_in_blocks(ATTRIBUTE_FORK, &value_fork)
                };
                records.push((cnid(i), units, key, data));
            }
        }
        records.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        records.into_iter().map(|(_, _, k, d)| (k, d)).collect()
    };

    // Records without block numbers first, to size the catalog; the files' start blocks follow
    // the metadata, so they are written in a second pass once its size is known.
    // A journaled volume's two hidden files, after the tree's IDs: the journal info block and
    // the journal, the blocks from `journal_at` on.
    let journal_ids = FIRST_USER_ID + tree.nodes.len() as u32 - 1;
    let journal_files = |journal_at: u64, journal_len: u64| -> Vec<Record> {
        let files = [
            (".journal_info_block", journal_at, block),
            (".journal", journal_at + 1, journal_len),
        ];
        let mut records = Vec::new();
        for (i, (name, start, len)) in files.into_iter().enumerate() {
            let id = journal_ids + i as u32;
            let name = hfs_name(name);
            let mut d = file_record(
                id,
                mac_date(now),
                0,
                0,
                0o100400,
                Some((*b"jrnl", *b"hfs+")),
            );
            d[56..58].copy_from_slice(&0x5000u16.to_be_bytes()); // invisible, name locked
            let blocks = len / block;
            d[88..168].copy_from_slice(&fork(len, start as u32, blocks as u32));
            records.push(Record {
                parent: id,
                name: Vec::new(),
                data: thread(4, ROOT_FOLDER, &name),
            });
            records.push(Record {
                parent: ROOT_FOLDER,
                name,
                data: d,
            });
        }
        records
    };
    let records_for = |first_data: u64, journal: Option<(u64, u64)>| -> Vec<Record> {
        let mut records = Vec::with_capacity(2 * tree.nodes.len());
        let mut parent_of = vec![ROOT_PARENT; tree.nodes.len()];
        for (i, n) in tree.nodes.iter().enumerate() {
            if let NodeKind::Directory { children } = &n.kind {
                for &c in children {
                    parent_of[c] = cnid(i);
                }
            }
        }
        for (i, n) in tree.nodes.iter().enumerate() {
            let id = cnid(i);
            let name = if i == 0 {
                volume_name.clone()
            } else {
                hfs_name(&n.name)
            };
            let date = mac_date(n.modified);
            let mut d;
            match &n.kind {
                NodeKind::Directory { children } => {
                    let hidden = if i == 0 && journal.is_some() { 2 } else { 0 };
                    let valence = children.len() as u32 + hidden;
                    d = folder_record(id, valence, date, n.uid, n.gid, n.mode);
                    records.push(Record {
                        parent: id,
                        name: Vec::new(),
                        data: thread(3, parent_of[i], &name),
                    });
                }
                NodeKind::File { .. } | NodeKind::Symlink { .. } => {
                    let (size, mode, kind) = match &n.kind {
                        NodeKind::File { size } => (*size, 0o100000 | n.mode, None),
                        NodeKind::Symlink { target } => {
                            (target.len() as u64, 0o120755, Some((*b"slnk", *b"rhap")))
                        }
                        NodeKind::Directory { .. } => unreachable!("matched above"),
                    };
                    let blocks = data_blocks(i);
                    d = file_record(id, date, n.uid, n.gid, mode, kind);
                    let start = first_data + plan[i];
                    d[88..168].copy_from_slice(&fork(size, start as u32, blocks as u32));
                    let rsrc = resource(i).len() as u64;
                    let rsrc_start = (start + blocks) as u32;
                    let rsrc_blocks = resource_blocks(i) as u32;
                    d[168..248].copy_from_slice(&fork(rsrc, rsrc_start, rsrc_blocks));
                    records.push(Record {
                        parent: id,
                        name: Vec::new(),
                        data: thread(4, parent_of[i], &name),
                    });
                }
            }
            if let Some(info) = finder_info(&n.streams) {
                // A symlink keeps the type and creator that make it one.
                let from = if matches!(n.kind, NodeKind::Symlink { .. }) {
                    8
                } else {
                    0
                };
                d[48 + from..80].copy_from_slice(&info[from..]);
            }
            // When it was added to its folder, as macOS keeps it: in seconds since 1970 in the
            // extended Finder info (unless the Finder info given says), and a record flag
            // (kHFSHasDateAddedMask) saying it is there.
            if d[68..72] == [0; 4] {
                let added = u32::try_from(n.modified.max(1)).unwrap_or(u32::MAX);
                d[68..72].copy_from_slice(&added.to_be_bytes());
            }
            d[3] |= 0x80;
            records.push(Record {
                parent: parent_of[i],
                name,
                data: d,
            });
        }
        if let Some((at, len)) = journal {
            records.extend(journal_files(at, len));
        }
        records.sort_by(|a, b| {
            a.parent.cmp(&b.parent).then_with(|| {
                compare_names(
                    a.name.iter().copied(),
                    b.name.iter().copied(),
                    case_sensitive,
                )
            })
        });
        records
    };
    // Names that one volume cannot tell apart are refused by path.
    let journal_sizing = options.journaled.then_some((0, 0));
    let sorted = records_for(0, journal_sizing);
    for pair in sorted.windows(2) {
        if pair[0].parent == pair[1].parent
            && compare_names(
                pair[0].name.iter().copied(),
                pair[1].name.iter().copied(),
                case_sensitive,
            ) == Ordering::Equal
        {
            // The folder is the node whose catalog ID is the records' parent.
            let folder = match pair[1].parent {
                ROOT_FOLDER => 0,
                id => (id - FIRST_USER_ID + 1) as usize,
            };
            let name = |units: &[u16]| String::from_utf16_lossy(units);
            return Err(Error::Refused {
                path: tree.nodes[folder].path.join(name(&pair[1].name)),
                reason: format!(
                    "has a name this volume cannot tell from \"{}\" in the same folder \
                     (HFS+ ignores case and Unicode form; HFSX tells case apart)",
                    name(&pair[0].name)
                ),
            });
        }
    }
    let spare_nodes = 8 + tree.nodes.len() / 50;
    let catalog_len = catalog_tree(&sorted, case_sensitive, spare_nodes)?.len() as u64;
    let extents_nodes = 4;
    let extents_len = (extents_nodes * EXTENTS_NODE) as u64;

    // Blocks: 0 (boot + header), the bitmap, extents, catalog, file data, spare, the last block.
    let attributes_tree = |first_data: u64| -> Result<Vec<u8>> {
        let records = attribute_records(first_data);
        match records.is_empty() {
            // Big keys, variable-length index keys: as the catalog's.
            true => Ok(empty_tree(CATALOG_NODE, 266, 6, 2)),
            false => bulk_tree(&records, 266, 0, 2),
        }
    };
    let attributes_len = attributes_tree(0)?.len() as u64;
    let mut metadata = catalog_len / block + extents_len / block + attributes_len / block;
    // The journal: its info block, then its size as newfs_hfs sizes it for the volume.
    let journal_len = match options.journaled {
        true => super::journal::default_size(
            options.size.unwrap_or((2 + metadata + data_total) * block),
        ),
        false => 0,
    };
    let journal_blocks = match options.journaled {
        true => 1 + journal_len.div_ceil(block),
        false => 0,
    };
    metadata += journal_blocks;
    let wanted = match options.size {
        Some(size) => size / block,
        None => {
            let used = 2 + metadata + data_total;
            match options.tight {
                // A disc is written once: exactly its blocks and the bitmap that maps them.
                true => {
                    let mut blocks = used;
                    while used + blocks.div_ceil(8 * block) > blocks {
                        blocks = used + blocks.div_ceil(8 * block);
                    }
                    blocks
                }
                false => (used + used / 10 + (8 << 20) / block).next_multiple_of(256),
            }
        }
    };
    let bitmap_blocks = wanted.div_ceil(8 * block);
    let needed = 2 + bitmap_blocks + metadata + data_total;
    if wanted < needed {
        return Err(Error::Refused {
            path: tree.nodes[0].path.clone(),
            reason: format!(
                "does not fit in {} bytes: it needs about {}",
                wanted * block,
                needed * block
            ),
        });
    }
    let total_blocks = wanted;
    // The volume ends where it was asked to (its alternate header 1 KiB before that), which need
    // not be at a block boundary.
    let end = options.size.map_or(total_blocks * block, |s| s / 512 * 512);
    if total_blocks > u64::from(u32::MAX) {
        return Err(Error::Refused {
            path: tree.nodes[0].path.clone(),
            reason: "needs an HFS+ volume of more than 16 TiB".into(),
        });
    }
    let journal_at = 1 + bitmap_blocks;
    let extents_start = journal_at + journal_blocks;
    let catalog_start = extents_start + extents_len / block;
    let attributes_start = catalog_start + catalog_len / block;
    let data_start = attributes_start + attributes_len / block;
    let journal = options.journaled.then_some((journal_at, journal_len));
    let catalog = catalog_tree(
        &records_for(data_start, journal),
        case_sensitive,
        spare_nodes,
    )?;
    let attributes_file = attributes_tree(data_start)?;
    let used_blocks = data_start + data_total;

    let mut bitmap = vec![0u8; (bitmap_blocks * block) as usize];
    let mut mark = |b: u64| bitmap[(b / 8) as usize] |= 0x80 >> (b % 8);
    for b in 0..used_blocks {
        mark(b);
    }
    if end - 1024 < total_blocks * block {
        mark(total_blocks - 1); // the block holding the alternate header
    }

    let hidden_files = if options.journaled { 2 } else { 0 };
    let files = tree
        .nodes
        .iter()
        .filter(|n| !matches!(n.kind, NodeKind::Directory { .. }))
        .count()
        + hidden_files;
    let mut h = vec![0u8; 512];
    h[0..2].copy_from_slice(if case_sensitive { b"HX" } else { b"H+" });
    h[2..4].copy_from_slice(&(if case_sensitive { 5u16 } else { 4 }).to_be_bytes());
    if options.journaled {
        h[4..8].copy_from_slice(&(1u32 << 8 | JOURNALED).to_be_bytes()); // cleanly unmounted
        h[8..12].copy_from_slice(b"HFSJ");
        h[12..16].copy_from_slice(&(journal_at as u32).to_be_bytes());
    } else {
        h[4..8].copy_from_slice(&(1u32 << 8).to_be_bytes()); // cleanly unmounted
        h[8..12].copy_from_slice(b"10.0");
    }
    for at in [16, 20, 28] {
        h[at..at + 4].copy_from_slice(&mac_date(now).to_be_bytes());
    }
    h[32..36].copy_from_slice(&(files as u32).to_be_bytes());
    let folders = tree.nodes.len() + hidden_files - files - 1;
    h[36..40].copy_from_slice(&(folders as u32).to_be_bytes());
    h[40..44].copy_from_slice(&(block as u32).to_be_bytes());
    h[44..48].copy_from_slice(&(total_blocks as u32).to_be_bytes());
    let tail_block = u64::from(end - 1024 < total_blocks * block);
    h[48..52].copy_from_slice(&((total_blocks - used_blocks - tail_block) as u32).to_be_bytes());
    h[52..56].copy_from_slice(&(used_blocks as u32).to_be_bytes());
    h[56..60].copy_from_slice(&(block as u32 * 16).to_be_bytes());
    h[60..64].copy_from_slice(&(block as u32 * 16).to_be_bytes());
    let next_id = journal_ids + hidden_files as u32;
    h[64..68].copy_from_slice(&next_id.to_be_bytes());
    h[72..80].copy_from_slice(&1u64.to_be_bytes()); // MacRoman names seen
    let uuid = crate::bytes::uuid(options.seed.as_ref(), "HFS+ volume");
    h[104..112].copy_from_slice(&uuid[..8]);
    let fork_at = |h: &mut [u8], at: usize, bytes: u64, start: u64| {
        h[at..at + 80].copy_from_slice(&fork(bytes, start as u32, (bytes / block) as u32));
    };
    fork_at(&mut h, 112, bitmap_blocks * block, 1);
    fork_at(&mut h, 192, extents_len, extents_start);
    fork_at(&mut h, 272, catalog.len() as u64, catalog_start);
    fork_at(&mut h, 352, attributes_len, attributes_start);

    let mut disk = Assembly::default();
    let mut first = vec![0u8; block as usize];
    first[1024..1536].copy_from_slice(&h);
    disk.bytes(first);
    disk.bytes(bitmap);
    if options.journaled {
        let mut info = super::journal::info_block(block * (journal_at + 1), journal_len);
        info.resize(block as usize, 0);
        disk.bytes(info);
        let header = super::journal::fresh_header(journal_len);
        let rest = journal_len.div_ceil(block) * block - header.len() as u64;
        disk.bytes(header);
        disk.push(Arc::new(Zeros(rest)));
    }
    disk.bytes(empty_tree(EXTENTS_NODE, 10, 2, extents_nodes));
    disk.bytes(catalog);
    disk.bytes(attributes_file);
    for (i, n) in tree.nodes.iter().enumerate() {
        match &n.kind {
            NodeKind::File { size } => disk.push(Arc::new(SourceFile::new(n.path.clone(), *size))),
            NodeKind::Symlink { target } => disk.bytes(target.as_bytes().to_vec()),
            NodeKind::Directory { .. } => {}
        }
        disk.pad_to(block);
        disk.bytes(resource(i).to_vec());
        disk.pad_to(block);
        for (_, value) in attributes(i).filter(|(_, v)| v.len() > MAX_INLINE) {
            disk.bytes(value.clone());
            disk.pad_to(block);
        }
    }
    disk.push(Arc::new(Zeros(end - 1024 - disk.size())));
    let mut tail = h;
    tail.resize(1024, 0);
    disk.bytes(tail);
    debug_assert_eq!(disk.size(), end);
    let data_at = tree
        .nodes
        .iter()
        .zip(&plan)
        .map(|(n, at)| {
            let is_data = !matches!(n.kind, NodeKind::Directory { .. });
            is_data.then_some((data_start + at) * block)
        })
        .collect();
    Ok(Built {
        volume: disk.finish(),
        data_at,
    })
}
