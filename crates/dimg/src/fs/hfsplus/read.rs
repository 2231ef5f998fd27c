//! HFS+ and HFSX (formats.md §h.1, TN1150), read-only: the catalog B-tree for folders and files,
//! forks with the extents-overflow B-tree, hard links (through the private data folder) and
//! symlinks. Names are kept as stored (Apple's decomposed Unicode), with '/' shown as ':' as
//! macOS shows it. B-tree walks are bounded by the tree's node count and cannot loop.

use crate::bytes::{be16, be32, be64, utf16_be};

use super::journal::{Journal, JOURNALED};
use super::{date, HEADER_AT, ROOT_FOLDER, ROOT_PARENT};
use crate::error::FormatError;
use crate::fs::{decmpfs, Counts, DirEntry, EntryKind, Handle, Stream, Volume};
use crate::io::{Concat, ReadAt};
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;

const DECMPFS: &str = "com.apple.decmpfs";
/// Attribute records the index keeps in memory at most; beyond, streams go unlisted.
const MAX_ATTRIBUTES: usize = 1 << 20;
pub(super) const PRIVATE_DATA: &str = "\0\0\0\0HFS+ Private Data";
/// Metadata folders and files macOS keeps out of sight at the root.
pub(super) const HIDDEN_AT_ROOT: &[&str] = &[
    PRIVATE_DATA,
    ".HFS+ Private Directory Data\r",
    ".journal",
    ".journal_info_block",
];

fn bad(structure: &'static str, at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(structure, at, problem)
}

/// A fork: its length and the allocation-block extents the record itself holds.
#[derive(Clone, Debug)]
pub(in crate::fs) struct Fork {
    pub size: u64,
    pub extents: Vec<(u32, u32)>,
}

impl Fork {
    pub(super) fn parse(b: &[u8]) -> Fork {
        let extents = (0..8)
            .map(|i| (be32(b, 16 + 8 * i), be32(b, 20 + 8 * i)))
            .filter(|&(_, n)| n > 0)
            .collect();
        Fork {
            size: be64(b, 0),
            extents,
        }
    }
}

/// A B-tree file: its nodes, read from its fork. HFS+ and classic HFS share the layout; their
/// keys differ in how their length is stored.
pub(in crate::fs) struct BTree {
    file: Arc<dyn ReadAt>,
    /// Bytes a record's key takes, its length field included: where its data starts.
    key_len: fn(&[u8]) -> usize,
    /// Keys compare as binary (HFSX case-sensitive) rather than case-folded.
    binary_keys: bool,
    node_size: u64,
    root: u32,
    first_leaf: u32,
    nodes: u32,
}

/// An HFS+ key: a 16-bit length, then the key.
fn long_key(r: &[u8]) -> usize {
    2 + usize::from(be16(r, 0))
}

#[derive(Clone)]
pub(in crate::fs) struct Node {
    pub(super) kind: i8,
    /// Its level: 1 for leaves, counting up to the root (0 for header and map nodes).
    pub(super) height: u8,
    pub(super) next: u32,
    pub(super) prev: u32,
    pub(super) records: Vec<Vec<u8>>,
}

impl Node {
    /// A node from its bytes (at offset `at` of its tree, for errors): the descriptor, and each
    /// record where the offsets at its end say, each checked to lie among the records.
    pub(super) fn parse(b: &[u8], at: u64) -> io::Result<Node> {
        let count = usize::from(be16(b, 10));
        let size = b.len();
        if 2 * (count + 1) + 14 > size {
            return Err(bad(
                "HFS+ B-tree node",
                at,
                format!("{count} records do not fit"),
            ));
        }
        let offset = |i: usize| usize::from(be16(b, size - 2 * (i + 1)));
        let mut records = Vec::with_capacity(count);
        for i in 0..count {
            let (start, end) = (offset(i), offset(i + 1));
            if start < 14 || end < start || end > size - 2 * (count + 1) {
                return Err(bad(
                    "HFS+ B-tree node",
                    at,
                    format!("record {i} at {start}..{end}"),
                ));
            }
            records.push(b[start..end].to_vec());
        }
        Ok(Node {
            kind: b[8] as i8,
            height: b[9],
            next: be32(b, 0),
            prev: be32(b, 4),
            records,
        })
    }
}

impl BTree {
    pub(super) fn open(file: Arc<dyn ReadAt>, what: &'static str) -> io::Result<BTree> {
        Self::open_keyed(file, what, long_key)
    }

    /// A tree whose keys measure themselves with `key_len`.
    /// Whether the tree holds no record (TN1150: a root node number of 0), as an extents
    /// B-tree does on a volume no file of which has more extents than its record holds.
    pub(in crate::fs) fn is_empty(&self) -> bool {
        self.root == 0
    }

    pub(in crate::fs) fn open_keyed(
        file: Arc<dyn ReadAt>,
        what: &'static str,
        key_len: fn(&[u8]) -> usize,
    ) -> io::Result<BTree> {
        let mut h = [0u8; 14 + 106];
        if file.size() < h.len() as u64 {
            return Err(bad(what, 0, "shorter than its header node"));
        }
        file.read_exact_at(0, &mut h)?;
        let r = &h[14..];
        let node_size = u64::from(be16(r, 18));
        if !(512..=32768).contains(&node_size) || !node_size.is_power_of_two() {
            return Err(bad(what, 32, format!("node size {node_size}")));
        }
        let nodes = be32(r, 22).min((file.size() / node_size) as u32);
        Ok(BTree {
            file,
            key_len,
            binary_keys: r[37] == 0xBC,
            node_size,
            root: be32(r, 2),
            first_leaf: be32(r, 10),
            nodes,
        })
    }

    fn node(&self, n: u32) -> io::Result<Node> {
        // Node 0 is the header node: no index record or sibling link leads there.
        if n == 0 {
            return Err(bad("HFS+ B-tree", 0, "node 0 is outside the tree"));
        }
        self.read_node(n)
    }

    /// The bytes of the tree's fork.
    pub(super) fn fork_size(&self) -> u64 {
        self.file.size()
    }

    /// Node `n`, the header node (0) included.
    pub(super) fn read_node(&self, n: u32) -> io::Result<Node> {
        if n >= self.nodes {
            return Err(bad(
                "HFS+ B-tree",
                u64::from(n) * self.node_size,
                format!("node {n} is outside the tree"),
            ));
        }
        let mut b = vec![0u8; self.node_size as usize];
        self.file
            .read_exact_at(u64::from(n) * self.node_size, &mut b)?;
        Node::parse(&b, u64::from(n) * self.node_size)
    }

    /// Leaf records from the first one `before(key)` does not hold for, in key order, until
    /// `more(key)` is false. `before` orders by the search key only; the index is descended by it.
    pub(in crate::fs) fn scan(
        &self,
        before: impl Fn(&[u8]) -> bool,
        more: impl Fn(&[u8]) -> bool,
        mut each: impl FnMut(&[u8]),
    ) -> io::Result<()> {
        let mut seen = HashSet::new();
        let mut n = self.root;
        // Descend: in each index node, follow the last record whose key comes before the target.
        loop {
            if !seen.insert(n) {
                return Err(bad("HFS+ B-tree", 0, "index nodes loop"));
            }
            let node = self.node(n)?;
            match node.kind {
                -1 => break,
                0 => {
                    let pick = node
                        .records
                        .iter()
                        .rev()
                        .find(|r| before(r))
                        .or(node.records.first());
                    let r = pick.ok_or_else(|| bad("HFS+ B-tree", 0, "an empty index node"))?;
                    let key_len = (self.key_len)(r);
                    if r.len() < key_len + 4 {
                        return Err(bad("HFS+ B-tree", 0, "index record without a child"));
                    }
                    n = be32(r, key_len);
                }
                k => {
                    return Err(bad(
                        "HFS+ B-tree",
                        0,
                        format!("node of kind {k} where an index or leaf was expected"),
                    ))
                }
            }
        }
        // Walk the leaves from here.
        let mut seen = HashSet::new();
        while n != 0 && seen.insert(n) {
            let node = self.node(n)?;
            for r in &node.records {
                if before(r) {
                    continue;
                }
                if !more(r) {
                    return Ok(());
                }
                each(r);
            }
            n = node.next;
        }
        Ok(())
    }
}

/// A catalog record's key: (parent ID, name as stored).
pub(super) fn catalog_key(r: &[u8]) -> Option<(u32, &[u8], &[u8])> {
    let key_len = usize::from(be16(r, 0));
    if r.len() < 2 + key_len || key_len < 6 {
        return None;
    }
    let name_len = 2 * usize::from(be16(r, 6));
    let name = r.get(8..8 + name_len)?;
    Some((be32(r, 2), name, &r[2 + key_len..]))
}

/// Overflow extents by (file ID, fork type: 0 data, 0xFF resource).
pub(in crate::fs) type Overflow = HashMap<(u32, u8), Vec<(u32, u32)>>;

/// The extents of file `id`'s fork `kind` beyond the ones its record holds (HFS and HFS+ alike).
pub(in crate::fs) fn more_extents(overflow: &Overflow, id: u32, kind: u8) -> &[(u32, u32)] {
    overflow.get(&(id, kind)).map(Vec::as_slice).unwrap_or(&[])
}

/// A catalog file record's forks as an item, and its data fork's size; `None` for other records.
fn file_item(d: &[u8]) -> Option<(Item, u64)> {
    if d.len() < 248 || be16(d, 0) != 2 {
        return None;
    }
    let data = Fork::parse(&d[88..168]);
    let size = data.size;
    // ownerFlags UF_COMPRESSED: the data is in the decmpfs attribute, not the data fork.
    let compressed = d[41] & 0x20 != 0;
    Some((
        Item::File {
            id: be32(d, 8),
            data,
            resource: Fork::parse(&d[168..248]),
            compressed,
        },
        size,
    ))
}

/// An attribute record's key: (file ID, name); its data follows the key.
pub(super) fn attribute_key(r: &[u8]) -> Option<(u32, String, &[u8])> {
    let key_len = usize::from(be16(r, 0));
    if r.len() < 2 + key_len || key_len < 12 {
        return None;
    }
    let name = r.get(14..14 + 2 * usize::from(be16(r, 12)))?;
    Some((be32(r, 4), utf16_be(name), &r[2 + key_len..]))
}

/// Where an attribute's value is: inline in its record, or in a fork of its own.
enum AttributeValue<'a> {
    Inline(&'a [u8]),
    Fork(Fork),
}

fn attribute_value(d: &[u8]) -> Option<AttributeValue<'_>> {
    match be32(d.get(..4)?, 0) {
        0x10 => {
            let size = be32(d.get(..16)?, 12) as usize;
            Some(AttributeValue::Inline(d.get(16..16 + size)?))
        }
        0x20 => Some(AttributeValue::Fork(Fork::parse(d.get(8..88)?))),
        _ => None,
    }
}

/// What the attributes B-tree says of one file.
#[derive(Default)]
struct Attributes {
    /// Its extended attributes, decmpfs's own excepted.
    streams: Vec<Stream>,
    /// The size a compressed file's decmpfs header states.
    uncompressed: Option<u64>,
}

/// What an entry's handle holds.
#[derive(Clone, Debug)]
enum Item {
    Folder(u32),
    File {
        id: u32,
        data: Fork,
        resource: Fork,
        compressed: bool,
    },
}

pub struct HfsPlus {
    disk: Arc<dyn ReadAt>,
    block: u64,
    catalog: BTree,
    /// Overflow extents, by (file ID, fork type): only a few files ever have them.
    overflow: Overflow,
    label: String,
    /// Allocation blocks in use: total less free, from the volume header.
    used_blocks: u64,
    /// The header's fileCount and folderCount.
    counts: Counts,
    /// Bytes of journal transactions not yet written to the volume (a dirty journal).
    unreplayed: u64,
    /// The file records hard links stand for, by inode number: "iNode<n>" in the private data
    /// folder. The record, not the link's, holds the file's owner, mode, times and link count.
    inodes: HashMap<u32, Vec<u8>>,
    /// The attributes B-tree, when the volume has one.
    attributes_tree: Option<BTree>,
    /// The allocation file: a bit per allocation block, set when it is in use.
    allocation: Fork,
    total_blocks: u64,
    /// Its records indexed once by file ID: only files with attributes appear.
    attributes: HashMap<u32, Attributes>,
}

impl HfsPlus {
    pub fn open(disk: Arc<dyn ReadAt>) -> io::Result<Self> {
        let mut h = [0u8; 512];
        disk.read_exact_at(HEADER_AT, &mut h)?;
        let block = u64::from(be32(&h, 40));
        if !(512..=1 << 20).contains(&block) || !block.is_power_of_two() {
            return Err(bad(
                "HFS+ volume header",
                HEADER_AT + 40,
                format!("block size {block}"),
            ));
        }
        let unreplayed = pending_journal(&disk, &h, block)?;
        let extents_fork = Fork::parse(&h[192..272]);
        let catalog_fork = Fork::parse(&h[272..352]);
        let bytes =
            |f: &Fork| -> io::Result<Arc<dyn ReadAt>> { Self::fork_bytes(&disk, block, f, &[]) };
        let overflow = match extents_fork.size {
            0 => HashMap::new(),
            _ => Self::read_overflow(&BTree::open(bytes(&extents_fork)?, "HFS+ extents B-tree")?)?,
        };
        let catalog = BTree::open(
            Self::fork_bytes(&disk, block, &catalog_fork, more_extents(&overflow, 4, 0))?,
            "HFS+ catalog B-tree",
        )?;
        let attributes_fork = Fork::parse(&h[352..432]);
        let attributes_tree = match attributes_fork.size {
            0 => None,
            _ => {
                let more = more_extents(&overflow, 8, 0);
                let file = Self::fork_bytes(&disk, block, &attributes_fork, more)?;
                Some(BTree::open(file, "HFS+ attributes B-tree")?)
            }
        };
        let mut volume = HfsPlus {
            disk,
            block,
            catalog,
            overflow,
            label: String::new(),
            used_blocks: u64::from(be32(&h, 44).saturating_sub(be32(&h, 48))),
            counts: Counts {
                files: u64::from(be32(&h, 32)),
                folders: u64::from(be32(&h, 36)),
            },
            unreplayed,
            inodes: HashMap::new(),
            attributes: match &attributes_tree {
                Some(tree) => Self::index_attributes(tree)?,
                None => HashMap::new(),
            },
            attributes_tree,
            allocation: Fork::parse(&h[112..192]),
            total_blocks: u64::from(be32(&h, 44)),
        };
        for (name, item, _) in volume.children(ROOT_PARENT)? {
            if matches!(item, Item::Folder(ROOT_FOLDER)) {
                volume.label = name;
            }
        }
        // Hard links point into the private data folder: index its "iNode<n>" files once, from
        // the raw records (listing the root would resolve links that cannot resolve yet).
        let mut private = None;
        volume.folder_records(ROOT_FOLDER, |name, d| {
            if name == PRIVATE_DATA && d.len() >= 12 && be16(d, 0) == 1 {
                private = Some(be32(d, 8));
            }
        })?;
        if let Some(private) = private {
            let mut inodes = HashMap::new();
            volume.folder_records(private, |name, d| {
                let n = name
                    .strip_prefix("iNode")
                    .and_then(|n| n.parse::<u32>().ok());
                if let (Some(n), true) = (n, file_item(d).is_some()) {
                    inodes.insert(n, d.to_vec());
                }
            })?;
            volume.inodes = inodes;
        }
        Ok(volume)
    }

    /// Every attribute's name and size, by file, from one walk of the leaves.
    fn index_attributes(tree: &BTree) -> io::Result<HashMap<u32, Attributes>> {
        let mut map: HashMap<u32, Attributes> = HashMap::new();
        let (mut seen, mut records) = (HashSet::new(), 0);
        let mut n = tree.first_leaf;
        while n != 0 && seen.insert(n) && records < MAX_ATTRIBUTES {
            let node = tree.node(n)?;
            for r in &node.records {
                records += 1;
                let Some((id, name, d)) = attribute_key(r) else {
                    continue;
                };
                let attrs = map.entry(id).or_default();
                match (name.as_str(), attribute_value(d)) {
                    (DECMPFS, Some(AttributeValue::Inline(v))) => {
                        attrs.uncompressed = decmpfs::stated_size(v)
                    }
                    (_, Some(AttributeValue::Inline(v))) => attrs.streams.push(Stream {
                        name,
                        size: v.len() as u64,
                    }),
                    (_, Some(AttributeValue::Fork(f))) => {
                        attrs.streams.push(Stream { name, size: f.size })
                    }
                    (_, None) => {}
                }
            }
            n = node.next;
        }
        Ok(map)
    }

    /// The value of attribute `name` of file `id`.
    fn attribute(&self, id: u32, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        let missing = || io::Error::new(io::ErrorKind::NotFound, format!("no attribute {name}"));
        let tree = self.attributes_tree.as_ref().ok_or_else(missing)?;
        let mut found: Option<io::Result<Arc<dyn ReadAt>>> = None;
        tree.scan(
            |r| attribute_key(r).is_some_and(|(i, n, _)| i < id || (i == id && n.as_str() < name)),
            |r| attribute_key(r).is_some_and(|(i, n, _)| i == id && n == name),
            |r| {
                let value = attribute_key(r).and_then(|(_, _, d)| attribute_value(d));
                found = found.take().or(match value {
                    Some(AttributeValue::Inline(v)) => Some(Ok(Arc::new(v.to_vec()))),
                    Some(AttributeValue::Fork(f)) => {
                        Some(Self::fork_bytes(&self.disk, self.block, &f, &[]))
                    }
                    None => None,
                });
            },
        )?;
        found.ok_or_else(missing)?
    }

    /// Every overflow extent record, gathered once: the extents tree is small.
    pub(super) fn read_overflow(tree: &BTree) -> io::Result<Overflow> {
        let mut map = Overflow::new();
        let mut seen = HashSet::new();
        let mut n = tree.first_leaf;
        while n != 0 && seen.insert(n) {
            let node = tree.node(n)?;
            for r in node.records.iter().filter(|r| r.len() >= 12 + 64) {
                let (fork, id) = (r[2], be32(r, 4));
                let list = map.entry((id, fork)).or_default();
                list.extend(
                    (0..8)
                        .map(|i| (be32(r, 12 + 8 * i), be32(r, 16 + 8 * i)))
                        .filter(|&(_, c)| c > 0),
                );
            }
            n = node.next;
        }
        Ok(map)
    }

    /// A fork's bytes: its own extents and then overflow ones, cut at its logical size, each
    /// checked against the volume.
    pub(in crate::fs) fn fork_bytes(
        disk: &Arc<dyn ReadAt>,
        block: u64,
        fork: &Fork,
        more: &[(u32, u32)],
    ) -> io::Result<Arc<dyn ReadAt>> {
        let mut left = fork.size;
        let mut extents = Vec::new();
        for &(start, count) in fork.extents.iter().chain(more) {
            if left == 0 {
                break;
            }
            let at = u64::from(start) * block;
            let len = (u64::from(count) * block).min(left);
            if at + len > disk.size() {
                return Err(bad(
                    "HFS+ fork extent",
                    at,
                    format!("{len} bytes run past the end of the volume"),
                ));
            }
            extents.push((at, len));
            left -= len;
        }
        if left > 0 {
            return Err(bad(
                "HFS+ fork",
                0,
                format!(
                    "its extents hold {} of {} bytes",
                    fork.size - left,
                    fork.size
                ),
            ));
        }
        Ok(Arc::new(Concat::extents(disk, &extents)))
    }

    /// Calls `each(name, record data)` for every catalog record in folder `parent`.
    fn folder_records(&self, parent: u32, mut each: impl FnMut(String, &[u8])) -> io::Result<()> {
        self.catalog.scan(
            |r| {
                catalog_key(r)
                    .is_some_and(|(p, name, _)| p < parent || (p == parent && name.is_empty()))
            },
            |r| catalog_key(r).is_some_and(|(p, _, _)| p == parent),
            |r| {
                if let Some((_, name, data)) = catalog_key(r) {
                    each(utf16_be(name), data);
                }
            },
        )
    }

    /// The record of folder `id`, found through its thread record (which names its parent and
    /// name); read raw, so that a folder linked inside itself cannot recurse here.
    fn folder_record(&self, id: u32) -> io::Result<Option<Vec<u8>>> {
        let mut thread = None;
        self.catalog.scan(
            |r| catalog_key(r).is_some_and(|(p, _, _)| p < id),
            |r| catalog_key(r).is_some_and(|(p, name, _)| p == id && name.is_empty()),
            |r| thread = catalog_key(r).map(|(_, _, data)| data.to_vec()),
        )?;
        // A folder thread record: type 3, then the parent's ID and the folder's name.
        let Some(t) = thread.filter(|t| t.len() >= 10 && be16(t, 0) == 3) else {
            return Ok(None);
        };
        let (parent, len) = (be32(&t, 4), 2 * usize::from(be16(&t, 8)));
        let Some(name) = t.get(10..10 + len).map(utf16_be) else {
            return Ok(None);
        };
        let mut found = None;
        self.folder_records(parent, |n, d| {
            if n == name && d.len() >= 12 && be16(d, 0) == 1 && be32(d, 8) == id {
                found = Some(d.to_vec());
            }
        })?;
        Ok(found)
    }

    /// The folders and files directly in folder `parent`: (name as stored, item, entry).
    fn children(&self, parent: u32) -> io::Result<Vec<(String, Item, DirEntry)>> {
        let mut out = Vec::new();
        let mut problem = None;
        self.folder_records(parent, |name, data| match self.entry(&name, data) {
            Ok(Some(e)) => out.push(e),
            Ok(None) => {}
            Err(e) => problem = problem.take().or(Some(e)),
        })?;
        match problem {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn entry(&self, name: &str, d: &[u8]) -> io::Result<Option<(String, Item, DirEntry)>> {
        if d.len() < 2 {
            return Ok(None);
        }
        // A folder hard link (Time Machine's) stands for the folder it names: that folder, with
        // everything in it, at every link.
        let linked_folder = match (be16(d, 0), d.get(48..56)) {
            (2, Some(b"fdrpMACS")) => self.folder_record(be32(d, 44))?,
            _ => None,
        };
        let d = linked_folder.as_deref().unwrap_or(d);
        // A hard link stands for its iNode file: that record is the file, at every link.
        let link_target = match (be16(d, 0), d.get(48..56)) {
            (2, Some(b"hlnkhfs+")) => self.inodes.get(&be32(d, 44)),
            _ => None,
        };
        let d = link_target.map_or(d, |record| record.as_slice());
        let links = match link_target {
            Some(_) => be32(d, 44).max(1),
            None => 1,
        };
        let (item, mut size, kind, cnid) = match be16(d, 0) {
            1 if d.len() >= 88 => (
                Item::Folder(be32(d, 8)),
                0,
                EntryKind::Directory,
                be32(d, 8),
            ),
            2 if d.len() >= 248 => {
                let (item, size) = file_item(d).expect("a file record of full length");
                let mut kind = EntryKind::File;
                if &d[48..56] == b"slnkrhap" {
                    let target = self.read_all(&item)?;
                    kind = EntryKind::Symlink(String::from_utf8_lossy(&target).into_owned());
                }
                (item, size, kind, be32(d, 8))
            }
            _ => return Ok(None), // thread records
        };
        let mode = be16(d, 42);
        let kind = match (kind, u32::from(mode) & 0o170000) {
            (EntryKind::File, 0o020000) => EntryKind::Special("character device".into()),
            (EntryKind::File, 0o060000) => EntryKind::Special("block device".into()),
            (EntryKind::File, 0o010000) => EntryKind::Special("FIFO".into()),
            (EntryKind::File, 0o140000) => EntryKind::Special("socket".into()),
            (k, _) => k,
        };
        let (Item::File { id, .. } | Item::Folder(id)) = &item;
        let attrs = self.attributes.get(id);
        let mut streams = attrs.map(|a| a.streams.clone()).unwrap_or_default();
        if let Item::File {
            resource,
            compressed,
            ..
        } = &item
        {
            if *compressed {
                size = attrs.and_then(|a| a.uncompressed).unwrap_or(size);
            } else if resource.size > 0 {
                // A compressed file's resource fork is its data, not a stream of its own.
                streams.push(Stream {
                    name: "rsrc".into(),
                    size: resource.size,
                });
            }
        }
        let entry = DirEntry {
            name: name.replace('/', ":"),
            kind,
            size,
            streams,
            modified: date(be32(d, 16)),
            mode: (mode != 0).then_some(u32::from(mode) & 0o7777),
            // BSD info is set when the mode is: the owner and group beside it.
            owner: (mode != 0).then(|| (be32(d, 32), be32(d, 36))),
            links,
            inode: u64::from(cnid),
            handle: Handle::new(item.clone()),
        };
        Ok(Some((name.to_string(), item, entry)))
    }

    fn data(&self, item: &Item) -> io::Result<Arc<dyn ReadAt>> {
        match item {
            Item::File {
                id,
                compressed: true,
                ..
            } => {
                let header = self.attribute(*id, DECMPFS)?;
                let mut attribute = vec![0u8; header.size().min(1 << 16) as usize];
                header.read_exact_at(0, &mut attribute)?;
                decmpfs::open(&attribute, || self.fork(item, 0xFF))
            }
            Item::File { .. } => self.fork(item, 0),
            Item::Folder(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a folder has no data",
            )),
        }
    }

    /// A file's data (0) or resource (0xFF) fork.
    fn fork(&self, item: &Item, kind: u8) -> io::Result<Arc<dyn ReadAt>> {
        let Item::File {
            id, data, resource, ..
        } = item
        else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a folder has no forks",
            ));
        };
        let fork = if kind == 0 { data } else { resource };
        let more = more_extents(&self.overflow, *id, kind);
        Self::fork_bytes(&self.disk, self.block, fork, more)
    }

    /// A small fork whole (symlink targets); bounded.
    fn read_all(&self, item: &Item) -> io::Result<Vec<u8>> {
        let data = self.data(item)?;
        let mut b = vec![0u8; data.size().min(4096) as usize];
        data.read_exact_at(0, &mut b)?;
        Ok(b)
    }
}

/// Bytes between the start and end of a journaled volume's journal: transactions macOS wrote
/// there but not yet to the volume (it replays them on the next mount). 0 when clean or
/// unjournaled (TN1150, "Journal").
fn pending_journal(disk: &Arc<dyn ReadAt>, h: &[u8], block: u64) -> io::Result<u64> {
    if be32(h, 4) & JOURNALED == 0 || be32(h, 12) == 0 {
        return Ok(0);
    }
    // A journal on another device: nothing here to judge. One whose header is damaged does not
    // keep the volume from being read (First Aid names it).
    match Journal::open(&**disk, block, be32(h, 12)) {
        Ok(journal) => Ok(journal.map_or(0, |j| j.pending())),
        Err(_) => Ok(0),
    }
}

fn item(entry: &DirEntry) -> io::Result<&Item> {
    entry.handle.get::<Item>()
}

impl Volume for HfsPlus {
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
        self.catalog.binary_keys
    }

    fn free_extents(&self) -> io::Result<Vec<(u64, u64)>> {
        let more = more_extents(&self.overflow, 6, 0);
        let bitmap = Self::fork_bytes(&self.disk, self.block, &self.allocation, more)?;
        // The runs found are bounded by the blocks the disk really holds, not by the header's
        // claim; a bitmap fork's extents may overlap and so seem larger than the disk.
        if self.total_blocks.saturating_mul(self.block) > self.disk.size()
            || bitmap.size() < self.total_blocks.div_ceil(8)
        {
            return Err(bad(
                "HFS+ allocation file",
                0,
                format!(
                    "{} bytes map fewer than {} blocks",
                    bitmap.size(),
                    self.total_blocks
                ),
            ));
        }
        // Read a megabyte at a time: a 2 TB volume's bitmap is 64 MiB.
        const CHUNK: u64 = 1 << 20;
        let (mut free, mut run): (Vec<(u64, u64)>, Option<u64>) = (Vec::new(), None);
        let mut chunk = Vec::new();
        for n in 0..self.total_blocks {
            let byte = n / 8;
            if byte % CHUNK == 0 && n % 8 == 0 {
                chunk.resize(CHUNK.min(bitmap.size() - byte) as usize, 0);
                bitmap.read_exact_at(byte, &mut chunk)?;
            }
            let used = chunk[(byte % CHUNK) as usize] & (0x80 >> (n % 8)) != 0;
            match (used, run) {
                (false, None) => run = Some(n),
                (true, Some(start)) => {
                    free.push((start * self.block, (n - start) * self.block));
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(start) = run {
            free.push((start * self.block, (self.total_blocks - start) * self.block));
        }
        Ok(free)
    }

    fn warnings(&self) -> Vec<String> {
        match self.unreplayed {
            0 => Vec::new(),
            n => vec![format!(
                "its journal holds {n} bytes of changes not yet written to the volume (a \
                 read/write attach replays them): what is shown is the volume as last \
                 written, and the newest changes may be missing"
            )],
        }
    }

    fn root(&self) -> DirEntry {
        DirEntry::root(
            u64::from(ROOT_FOLDER),
            0,
            Handle::new(Item::Folder(ROOT_FOLDER)),
        )
    }

    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        let Item::Folder(id) = item(dir)? else {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{}: not a folder", dir.name),
            ));
        };
        Ok(self
            .children(*id)?
            .into_iter()
            .filter(|(name, _, _)| !(*id == ROOT_FOLDER && HIDDEN_AT_ROOT.contains(&name.as_str())))
            .map(|(_, _, e)| e)
            .collect())
    }

    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        self.data(item(file)?)
    }

    fn open_stream(&self, entry: &DirEntry, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        let item = item(entry)?;
        match item {
            Item::File { .. } if name == "rsrc" => self.fork(item, 0xFF),
            Item::File { id, .. } | Item::Folder(id) if name != DECMPFS => {
                self.attribute(*id, name)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no stream {name}", entry.name),
            )),
        }
    }
}
