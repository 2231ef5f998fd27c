//! APFS B-trees (Apple File System Reference, "B-Trees", "Object Maps"): one node per block, a
//! table of contents of key and value locations, keys growing down from the table and values up
//! from the end (a root keeps its `btree_info_t` there). Children are blocks in physical trees
//! (the object maps) and virtual ids in the file-system trees, found through the object map.
//! Every walk is bounded: a child must sit one level below its parent, so a node pointing at
//! itself or an ancestor is an error, and a walk visits at most [`MAX_NODES`] nodes.

use super::block::{bad, Blocks, BTREE, BTREE_NODE, OMAP};
use super::xts::XtsKey;
use crate::bytes::{le16, le32, le64};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

const ROOT: u16 = 0x1;
const LEAF: u16 = 0x2;
const FIXED_KV: u16 = 0x4;
/// The object subtype of a space manager free queue's nodes.
pub(super) const FREE_QUEUE: u32 = 0x09;
/// Deeper than any real tree (a billion records fit in 6 levels).
const MAX_LEVEL: u16 = 16;
/// Nodes one walk may visit: a directory of a million entries is ~40,000 nodes.
const MAX_NODES: usize = 1 << 18;
/// An object map entry of a deleted object.
const OMAP_VAL_DELETED: u32 = 0x1;
/// An object map entry of an object encrypted with its volume's key.
pub(super) const OMAP_VAL_ENCRYPTED: u32 = 0x4;

/// Where some bytes lie in a node's block: (offset, length).
type Span = (usize, usize);

/// What a walk calls with each record in range, (key, value); false stops the walk.
pub(super) type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> io::Result<bool>;

/// One parsed node: where each record's key and value (none for a ghost) lie in the block.
pub(super) struct Node {
    block: Vec<u8>,
    pub level: u16,
    pub root: bool,
    records: Vec<(Span, Option<Span>)>,
}

impl Node {
    pub fn parse(block: Vec<u8>, at: u64, what: &'static str) -> io::Result<Node> {
        let (flags, level, count) = (le16(&block, 32), le16(&block, 34), le32(&block, 36));
        let (root, leaf, fixed) = (flags & ROOT != 0, flags & LEAF != 0, flags & FIXED_KV != 0);
        if leaf != (level == 0) || level > MAX_LEVEL {
            return Err(bad(
                what,
                at,
                format!("a node at level {level} with flags {flags:#x}"),
            ));
        }
        let toc = 56 + usize::from(le16(&block, 40));
        let keys = toc + usize::from(le16(&block, 42));
        let values_end = block.len() - if root { 40 } else { 0 };
        let entry = if fixed { 4 } else { 8 };
        let count = count as usize;
        if keys > values_end || count > (keys - toc) / entry {
            return Err(bad(
                what,
                at,
                format!("a node claims {count} records its table of contents cannot hold"),
            ));
        }
        // Fixed-size records are object map entries (a 16-byte key, a 16-byte value in a leaf)
        // or free queue entries (a 16-byte key, an 8-byte block count); an index node's value is
        // an 8-byte child address.
        let value_len = if leaf && le32(&block, 28) != FREE_QUEUE {
            16
        } else {
            8
        };
        let mut records = Vec::with_capacity(count);
        for i in 0..count {
            let e = toc + i * entry;
            let (key, value) = if fixed {
                let (k, v) = (le16(&block, e), le16(&block, e + 2));
                ((usize::from(k), 16), (v, value_len))
            } else {
                let (k, kl, v, vl) = (
                    le16(&block, e),
                    le16(&block, e + 2),
                    le16(&block, e + 4),
                    le16(&block, e + 6),
                );
                ((usize::from(k), usize::from(kl)), (v, usize::from(vl)))
            };
            let key = (keys + key.0, key.1);
            if key.0 + key.1 > values_end {
                return Err(bad(
                    what,
                    at,
                    format!("record {i}'s key lies outside its node"),
                ));
            }
            let value = match value.0 {
                0xFFFF => None,
                v => {
                    let start = values_end.checked_sub(usize::from(v));
                    match start.filter(|&s| s >= keys && s + value.1 <= values_end) {
                        Some(s) => Some((s, value.1)),
                        None => {
                            return Err(bad(
                                what,
                                at,
                                format!("record {i}'s value lies outside its node"),
                            ))
                        }
                    }
                }
            };
            records.push((key, value));
        }
        Ok(Node {
            block,
            level,
            root,
            records,
        })
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn key(&self, i: usize) -> &[u8] {
        let (at, len) = self.records[i].0;
        &self.block[at..at + len]
    }

    pub fn value(&self, i: usize) -> &[u8] {
        match self.records[i].1 {
            Some((at, len)) => &self.block[at..at + len],
            None => &[],
        }
    }

    /// The child an index record points to.
    pub fn child(&self, i: usize) -> Option<u64> {
        let v = self.value(i);
        (v.len() >= 8).then(|| le64(v, 0))
    }
}

/// How a tree's child pointers are read: as block addresses, or as virtual object ids looked up
/// in an object map as of a transaction; the key decrypts the nodes the map marks encrypted.
#[derive(Clone, Copy)]
pub(super) enum Pointers<'a> {
    Physical,
    /// Ephemeral ids, placed by the checkpoint's maps: (id, type, block).
    Ephemeral(&'a [(u64, u32, u64)]),
    Virtual(&'a Omap, u64, Option<&'a XtsKey>),
}

impl<'a> Pointers<'a> {
    /// The block of node `oid`, and the key it is encrypted with.
    pub fn resolve(
        &self,
        blocks: &Blocks,
        oid: u64,
        what: &'static str,
    ) -> io::Result<(u64, Option<&'a XtsKey>)> {
        match *self {
            Pointers::Physical => Ok((oid, None)),
            Pointers::Ephemeral(placed) => match placed.iter().find(|e| e.0 == oid) {
                Some(&(_, _, paddr)) => Ok((paddr, None)),
                None => Err(bad(
                    what,
                    0,
                    format!("ephemeral object {oid} is in no checkpoint map"),
                )),
            },
            Pointers::Virtual(omap, xid, key) => match omap.lookup_flagged(blocks, oid, xid)? {
                Some((paddr, false)) => Ok((paddr, None)),
                Some((paddr, true)) => match key {
                    Some(key) => Ok((paddr, Some(key))),
                    None => Err(bad(
                        what,
                        paddr * blocks.size,
                        format!("node {oid} is encrypted and the volume is not unlocked"),
                    )),
                },
                None => Err(bad(
                    what,
                    0,
                    format!("the object map has no block for node {oid} as of transaction {xid}"),
                )),
            },
        }
    }
}

/// Calls `each(key, value)` for every leaf record whose key `range` says is in range
/// (`Ordering::Equal`), in key order; `each` returns false to stop. `range` is given each key and
/// says whether it is before, in or after the range, judging only by what orders the tree.
pub(super) fn scan(
    blocks: &Blocks,
    pointers: Pointers,
    root: u64,
    what: &'static str,
    range: &dyn Fn(&[u8]) -> Ordering,
    each: Visit,
) -> io::Result<()> {
    let (paddr, key) = pointers.resolve(blocks, root, what)?;
    let top = node(blocks, paddr, what, key)?;
    if !top.root {
        return Err(bad(
            what,
            paddr * blocks.size,
            format!("block {paddr} is not a tree's root"),
        ));
    }
    let mut visited = 1;
    descend(
        blocks,
        pointers,
        &top,
        paddr,
        what,
        range,
        each,
        &mut visited,
    )
    .map(|_| ())
}

#[allow(clippy::too_many_arguments)]
fn descend(
    blocks: &Blocks,
    pointers: Pointers,
    n: &Node,
    paddr: u64,
    what: &'static str,
    range: &dyn Fn(&[u8]) -> Ordering,
    each: Visit,
    visited: &mut usize,
) -> io::Result<bool> {
    let count = n.records.len();
    // Keys are in order: the records before the range are passed over by halving, not one by
    // one (a lookup in a node of hundreds of records compared every one of them). In an index
    // node, the child before the first key in range may hold the range's start.
    let (mut before, mut after) = (0, count);
    while before < after {
        let mid = (before + after) / 2;
        match range(n.key(mid)) {
            Ordering::Less => before = mid + 1,
            _ => after = mid,
        }
    }
    let start = match n.level {
        0 => before,
        _ => before.saturating_sub(1),
    };
    for i in start..count {
        let here = range(n.key(i));
        if here == Ordering::Greater {
            break;
        }
        if n.level == 0 {
            if here == Ordering::Equal && !each(n.key(i), n.value(i))? {
                return Ok(false);
            }
            continue;
        }
        // Child i holds keys from its own up to the next child's: skip it when the range
        // starts at or after the next one.
        if i + 1 < count && range(n.key(i + 1)) == Ordering::Less {
            continue;
        }
        *visited += 1;
        if *visited > MAX_NODES {
            return Err(bad(
                what,
                paddr * blocks.size,
                format!("a walk of the tree met more than {MAX_NODES} nodes"),
            ));
        }
        let oid = n
            .child(i)
            .ok_or_else(|| bad(what, paddr * blocks.size, "an index record without a child"))?;
        let (child_at, key) = pointers.resolve(blocks, oid, what)?;
        let child = node(blocks, child_at, what, key)?;
        if child.level + 1 != n.level {
            return Err(bad(
                what,
                child_at * blocks.size,
                format!(
                    "node {child_at} is at level {} below a node at level {} (a loop in the tree)",
                    child.level, n.level
                ),
            ));
        }
        if !descend(
            blocks, pointers, &child, child_at, what, range, each, visited,
        )? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Object map lookups remembered: a walk of the file-system tree looks up every node it visits.
const CACHED_LOOKUPS: usize = 8192;

/// An object map: virtual object ids to blocks, one entry per (id, transaction) that wrote it.
pub(super) struct Omap {
    tree: u64,
    /// Lookups made: (id, transaction) to the block and whether it is encrypted.
    found: Mutex<HashMap<(u64, u64), Option<Mapped>>>,
}

/// Where an object map puts an object: its block, and whether it is encrypted.
type Mapped = (u64, bool);

impl Omap {
    pub fn open(blocks: &Blocks, paddr: u64, what: &'static str) -> io::Result<Omap> {
        let omap = blocks.object(paddr, OMAP, what)?;
        let tree = le64(&omap, 48);
        let root = node(blocks, tree, what, None)?;
        if !root.root {
            return Err(bad(
                what,
                tree * blocks.size,
                "its tree does not start at a root node",
            ));
        }
        Ok(Omap {
            tree,
            found: Mutex::new(HashMap::new()),
        })
    }

    /// The block of object `oid` as of transaction `xid`: its newest entry not after it.
    pub fn lookup(&self, blocks: &Blocks, oid: u64, xid: u64) -> io::Result<Option<u64>> {
        Ok(self
            .lookup_flagged(blocks, oid, xid)?
            .map(|(paddr, _)| paddr))
    }

    /// [`Omap::lookup`], with whether the object is encrypted.
    pub fn lookup_flagged(
        &self,
        blocks: &Blocks,
        oid: u64,
        xid: u64,
    ) -> io::Result<Option<Mapped>> {
        let lock = || self.found.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&paddr) = lock().get(&(oid, xid)) {
            return Ok(paddr);
        }
        let paddr = self.search(blocks, oid, xid)?;
        let mut found = lock();
        if found.len() >= CACHED_LOOKUPS {
            found.clear();
        }
        found.insert((oid, xid), paddr);
        Ok(paddr)
    }

    fn search(&self, blocks: &Blocks, oid: u64, xid: u64) -> io::Result<Option<Mapped>> {
        let mut found: Option<(u64, u32, u64)> = None;
        scan(
            blocks,
            Pointers::Physical,
            self.tree,
            "APFS object map",
            &|k| le64(k, 0).cmp(&oid),
            &mut |k, v| {
                let written = le64(k, 8);
                if written <= xid && found.is_none_or(|(x, _, _)| written > x) && v.len() >= 16 {
                    found = Some((written, le32(v, 0), le64(v, 8)));
                }
                Ok(true)
            },
        )?;
        Ok(found
            .filter(|(_, flags, _)| flags & OMAP_VAL_DELETED == 0)
            .map(|(_, flags, paddr)| (paddr, flags & OMAP_VAL_ENCRYPTED != 0)))
    }
}

/// A checked node of a B-tree at `paddr`, decrypted with `key` where it is encrypted.
pub(super) fn node(
    blocks: &Blocks,
    paddr: u64,
    what: &'static str,
    key: Option<&XtsKey>,
) -> io::Result<Arc<Node>> {
    blocks.parsed(paddr, || read_node(blocks, paddr, what, key))
}

fn read_node(
    blocks: &Blocks,
    paddr: u64,
    what: &'static str,
    key: Option<&XtsKey>,
) -> io::Result<Node> {
    let at = paddr * blocks.size;
    match blocks.checked_with(paddr, what, key)? {
        (block, BTREE | BTREE_NODE) => Node::parse(block, at, what),
        (_, other) => Err(bad(
            what,
            at,
            format!("block {paddr} holds object type {other:#x}, not a B-tree node"),
        )),
    }
}
