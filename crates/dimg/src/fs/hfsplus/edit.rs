//! An HFS+ B-tree changed in place (TN1150, "B-Trees"): records inserted, replaced and removed
//! one at a time. A full node splits in two and its new sibling's first key goes up to its
//! parent, the root splitting last; a node left empty is freed and its index record removed,
//! and a root with one child gives way to it. Nodes are never merged (Apple's code does not
//! either). The tree file grows by whole clumps when no node is free, its node map by new map
//! nodes when the header node's map record and the map nodes so far do not reach its end.

use super::bitmap::Bitmap;
use super::read::Node;
use super::store::Store;
use super::write::node;
use super::{compare_names, extent_pieces, stored_units};
use crate::bytes::{be16, be32};
use crate::error::FormatError;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

const INDEX: i8 = 0;
const MAP: i8 = 2;
const LEAF: i8 = -1;
/// A map node's bytes outside its map record: the descriptor, the record's and the free-space
/// offsets, and the 2 bytes Apple leaves free (BTreeAllocate.c, mapNodeRecSize).
const MAP_NODE_SPARE: u64 = 14 + 6;
/// Deeper than any real tree: a loop in a damaged one ends here.
const MAX_DEPTH: usize = 16;
/// Parsed nodes kept: every lookup walks the same index nodes and often the same leaves.
const NODES_KEPT: usize = 1024;

/// How a tree's keys are ordered.
#[derive(Clone, Copy)]
pub(super) enum KeyOrder {
    /// (parent ID, name), names folded unless HFSX compares them as binary.
    Catalog { binary: bool },
    /// (file ID, fork type, first block).
    Extents,
    /// (file ID, name as binary, first block).
    Attributes,
}

/// A record's key, its length field included.
fn key(record: &[u8]) -> &[u8] {
    let len = 2 + usize::from(be16(record, 0));
    &record[..len.min(record.len())]
}

impl KeyOrder {
    fn compare(self, a: &[u8], b: &[u8]) -> Ordering {
        let u32_at = |k: &[u8], at: usize| k.get(at..at + 4).map_or(0, |_| be32(k, at));
        // A name's stored bytes, its length (in units) at `len_at`; big-endian units compare
        // as their bytes do.
        fn name(k: &[u8], len_at: usize) -> &[u8] {
            let len = k
                .get(len_at..len_at + 2)
                .map_or(0, |_| 2 * usize::from(be16(k, len_at)));
            k.get(len_at + 2..len_at + 2 + len).unwrap_or(&[])
        }
        match self {
            KeyOrder::Catalog { binary } => u32_at(a, 2).cmp(&u32_at(b, 2)).then_with(|| {
                let (a, b) = (stored_units(name(a, 6)), stored_units(name(b, 6)));
                compare_names(a, b, binary)
            }),
            KeyOrder::Extents => {
                (u32_at(a, 4), a.get(2), u32_at(a, 8)).cmp(&(u32_at(b, 4), b.get(2), u32_at(b, 8)))
            }
            KeyOrder::Attributes => (u32_at(a, 4), name(a, 12), u32_at(a, 8)).cmp(&(
                u32_at(b, 4),
                name(b, 12),
                u32_at(b, 8),
            )),
        }
    }
}

/// An index node on the way down from the root: its number, itself, and the record followed.
type Step = (u32, Arc<Node>, usize);

/// One B-tree file of the volume (catalog, extents overflow or attributes) and its header
/// record, kept here while the volume is changed and written back with every change.
pub(super) struct TreeFile {
    pub what: &'static str,
    /// The file's extents (start, blocks), all of them.
    pub extents: Vec<(u32, u32)>,
    /// Blocks the file grows by.
    clump: u32,
    node_size: u32,
    order: KeyOrder,
    depth: u16,
    root: u32,
    leaf_records: u32,
    first_leaf: u32,
    last_leaf: u32,
    max_key: u16,
    pub total: u32,
    free: u32,
    /// Index records carry keys as long as they are (else padded to the longest).
    variable_index: bool,
    /// Nodes as last read or written, by number; a write of their bytes drops them.
    parsed: RefCell<HashMap<u32, Arc<Node>>>,
}

fn bad(what: &'static str, problem: impl Into<String>) -> io::Error {
    FormatError::io(what, 0, problem)
}

impl TreeFile {
    /// The tree in `extents`, its header read from node 0; `clump` bytes to grow by.
    pub fn open(
        store: &mut Store,
        what: &'static str,
        extents: Vec<(u32, u32)>,
        clump: u64,
        order: KeyOrder,
    ) -> io::Result<TreeFile> {
        let mut tree = TreeFile {
            what,
            extents,
            clump: 0,
            node_size: 512,
            order,
            depth: 0,
            root: 0,
            leaf_records: 0,
            first_leaf: 0,
            last_leaf: 0,
            max_key: 0,
            total: 1,
            free: 0,
            variable_index: true,
            parsed: RefCell::new(HashMap::new()),
        };
        let mut h = [0u8; 14 + 106];
        tree.read_bytes(store, 0, &mut h)?;
        let r = &h[14..];
        let node_size = u32::from(be16(r, 18));
        if !(512..=32768).contains(&node_size) || !node_size.is_power_of_two() {
            return Err(bad(what, format!("node size {node_size}")));
        }
        let blocks: u64 = tree.extents.iter().map(|e| u64::from(e.1)).sum();
        let held = (blocks * store.block / u64::from(node_size)) as u32;
        tree.node_size = node_size;
        tree.depth = be16(r, 0);
        tree.root = be32(r, 2);
        tree.leaf_records = be32(r, 6);
        tree.first_leaf = be32(r, 10);
        tree.last_leaf = be32(r, 14);
        tree.max_key = be16(r, 20);
        tree.total = be32(r, 22);
        tree.free = be32(r, 26);
        tree.variable_index = be32(r, 38) & 4 != 0;
        if tree.total > held || tree.free > tree.total || tree.root >= tree.total {
            return Err(bad(
                what,
                format!(
                    "its header counts {} nodes ({} free, root {}) in a file of {held}",
                    tree.total, tree.free, tree.root
                ),
            ));
        }
        let unit = u64::from(node_size).div_ceil(store.block).max(1);
        tree.clump = (clump.div_ceil(store.block).max(unit)).next_multiple_of(unit) as u32;
        Ok(tree)
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        u64::from(self.total) * u64::from(self.node_size)
    }

    fn bytes_at(&self, store: &Store, offset: u64, len: u64) -> io::Result<Vec<(u64, u64)>> {
        extent_pieces(&self.extents, store.block, offset, len).ok_or_else(|| {
            bad(
                self.what,
                format!("byte {offset} is past the file's extents"),
            )
        })
    }

    fn read_bytes(&self, store: &mut Store, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0usize;
        for (at, len) in self.bytes_at(store, offset, buf.len() as u64)? {
            store.read(at, &mut buf[done..done + len as usize])?;
            done += len as usize;
        }
        Ok(())
    }

    fn write_bytes(&self, store: &mut Store, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let size = u64::from(self.node_size);
        let last = (offset + bytes.len().max(1) as u64 - 1) / size;
        let mut parsed = self.parsed.borrow_mut();
        for n in offset / size..=last {
            parsed.remove(&(n as u32));
        }
        drop(parsed);
        let mut done = 0usize;
        for (at, len) in self.bytes_at(store, offset, bytes.len() as u64)? {
            store.write(at, &bytes[done..done + len as usize])?;
            done += len as usize;
        }
        Ok(())
    }

    /// Node `n`, parsed (once while it is kept).
    fn node(&self, store: &mut Store, n: u32) -> io::Result<Arc<Node>> {
        if n == 0 || n >= self.total {
            return Err(bad(self.what, format!("node {n} is outside the tree")));
        }
        if let Some(nd) = self.parsed.borrow().get(&n) {
            return Ok(nd.clone());
        }
        let at = u64::from(n) * u64::from(self.node_size);
        let mut b = vec![0u8; self.node_size as usize];
        self.read_bytes(store, at, &mut b)?;
        let nd = Arc::new(Node::parse(&b, at)?);
        self.keep(n, nd.clone());
        Ok(nd)
    }

    fn keep(&self, n: u32, nd: Arc<Node>) {
        let mut parsed = self.parsed.borrow_mut();
        if parsed.len() >= NODES_KEPT {
            parsed.clear();
        }
        parsed.insert(n, nd);
    }

    /// Node `n`, to be changed.
    fn read_node(&self, store: &mut Store, n: u32) -> io::Result<Node> {
        self.node(store, n).map(Arc::unwrap_or_clone)
    }

    fn write_node(&self, store: &mut Store, n: u32, nd: &Node) -> io::Result<()> {
        let bytes = node(
            self.node_size as usize,
            nd.kind,
            nd.height,
            nd.next,
            nd.prev,
            &nd.records,
        );
        self.write_bytes(store, u64::from(n) * u64::from(self.node_size), &bytes)?;
        self.keep(n, Arc::new(nd.clone()));
        Ok(())
    }

    /// Whether the records fit the node with their offsets and the free-space offset.
    fn fits(&self, nd: &Node) -> bool {
        let used: usize = nd.records.iter().map(Vec::len).sum();
        14 + used + 2 * (nd.records.len() + 1) <= self.node_size as usize
    }

    /// The header record written back: the tree's shape and counts.
    fn write_header(&self, store: &mut Store) -> io::Result<()> {
        let mut r = [0u8; 30];
        r[0..2].copy_from_slice(&self.depth.to_be_bytes());
        r[2..6].copy_from_slice(&self.root.to_be_bytes());
        r[6..10].copy_from_slice(&self.leaf_records.to_be_bytes());
        r[10..14].copy_from_slice(&self.first_leaf.to_be_bytes());
        r[14..18].copy_from_slice(&self.last_leaf.to_be_bytes());
        r[18..20].copy_from_slice(&(self.node_size as u16).to_be_bytes());
        r[20..22].copy_from_slice(&self.max_key.to_be_bytes());
        r[22..26].copy_from_slice(&self.total.to_be_bytes());
        r[26..30].copy_from_slice(&self.free.to_be_bytes());
        self.write_bytes(store, 14, &r)
    }

    /// The node map's records: the header node's third record, then each map node's only one;
    /// (byte offset in the file, length).
    fn map_records(&self, store: &mut Store) -> io::Result<Vec<(u64, usize)>> {
        let size = self.node_size as usize;
        let mut records = Vec::new();
        let mut node_no = 0u32;
        let mut b = vec![0u8; size];
        for _ in 0..=self.total {
            let base = u64::from(node_no) * u64::from(self.node_size);
            self.read_bytes(store, base, &mut b)?;
            let record = match node_no {
                0 => 2,
                _ if b[8] as i8 == MAP => 0,
                m => return Err(bad(self.what, format!("node {m} is not a map node"))),
            };
            let start = usize::from(be16(&b, size - 2 * (record + 1)));
            let end = usize::from(be16(&b, size - 2 * (record + 2)));
            if end < start || end > size {
                return Err(bad(self.what, "a map record out of its node"));
            }
            records.push((base + start as u64, end - start));
            match be32(&b, 0) {
                0 => return Ok(records),
                next => node_no = next,
            }
        }
        Err(bad(self.what, "its map nodes link in a loop"))
    }

    /// Where node `n`'s bit is in the node map: (byte offset in the file, bit mask).
    fn map_bit(&self, store: &mut Store, n: u32) -> io::Result<(u64, u8)> {
        let mut first_bit = 0u64;
        for (at, len) in self.map_records(store)? {
            let bits = 8 * len as u64;
            if u64::from(n) < first_bit + bits {
                let bit = u64::from(n) - first_bit;
                return Ok((at + bit / 8, 0x80 >> (bit % 8)));
            }
            first_bit += bits;
        }
        Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!("the {} has more nodes than its map holds", self.what),
        ))
    }

    fn set_map_bit(&self, store: &mut Store, n: u32, used: bool) -> io::Result<bool> {
        let (at, mask) = self.map_bit(store, n)?;
        let mut b = [0u8];
        self.read_bytes(store, at, &mut b)?;
        let was = b[0] & mask != 0;
        b[0] = if used { b[0] | mask } else { b[0] & !mask };
        self.write_bytes(store, at, &b)?;
        Ok(was)
    }

    /// The first free node, marked used: each map record read once, whole bytes of used
    /// nodes skipped.
    fn allocate_node(&mut self, store: &mut Store, bitmap: &mut Bitmap) -> io::Result<u32> {
        if self.free == 0 {
            self.grow(store, bitmap, self.clump)?;
        }
        let mut first_bit = 0u64;
        for (at, len) in self.map_records(store)? {
            let mut map = vec![0u8; len];
            self.read_bytes(store, at, &mut map)?;
            for (i, byte) in map.iter().enumerate().filter(|(_, b)| **b != 0xFF) {
                let bit = byte.leading_ones() as u64;
                let n = first_bit + 8 * i as u64 + bit;
                if n == 0 || n >= u64::from(self.total) {
                    continue; // node 0 is the header's; past the file, nothing is free
                }
                self.write_bytes(store, at + i as u64, &[byte | (0x80 >> bit)])?;
                self.free -= 1;
                return Ok(n as u32);
            }
            first_bit += 8 * len as u64;
        }
        Err(bad(
            self.what,
            "its header counts free nodes its map does not have",
        ))
    }

    /// Node `n` given back: unmarked in the map and zeroed, as fsck_hfs wants an unused node.
    fn free_node(&mut self, store: &mut Store, n: u32) -> io::Result<()> {
        if self.set_map_bit(store, n, false)? {
            self.free += 1;
        }
        let size = u64::from(self.node_size);
        self.write_bytes(store, u64::from(n) * size, &vec![0u8; size as usize])
    }

    /// Grows the file until it has free nodes for the worst `inserts` inserts can need (each a
    /// split at every level, and a new root), so that an operation does not run out of nodes
    /// half done.
    pub fn reserve(
        &mut self,
        store: &mut Store,
        bitmap: &mut Bitmap,
        inserts: u32,
    ) -> io::Result<()> {
        let wanted = inserts * (u32::from(self.depth) + 1) + 1;
        while self.free < wanted {
            // A whole clump where there is room, else just the nodes wanted.
            let unit = u32::try_from(u64::from(self.node_size).div_ceil(store.block)).unwrap_or(1);
            // The file at least doubles each time, so that its eight extents hold a catalog
            // 256 times its first size however the volume's free space is broken up.
            let blocks: u64 = self.extents.iter().map(|e| u64::from(e.1)).sum();
            let step = u64::from(self.clump)
                .max(blocks)
                .min(u64::from(u32::MAX / 2)) as u32;
            match self.grow(store, bitmap, step) {
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    self.grow(store, bitmap, unit * (wanted - self.free))?
                }
                done => done?,
            }
        }
        Ok(())
    }

    /// `blocks` more: right after the file's last extent where it can, else a new extent.
    fn grow(&mut self, store: &mut Store, bitmap: &mut Bitmap, blocks: u32) -> io::Result<()> {
        let before = self.extents.clone();
        let after = self.extents.last().map(|&(s, c)| s + c);
        let runs = bitmap.allocate(blocks, after)?;
        let give_back = |bitmap: &mut Bitmap, runs: &[(u32, u32)]| {
            runs.iter().for_each(|&(s, c)| bitmap.release(s, c));
        };
        // Unused nodes are zeros (fsck_hfs takes old bytes in one for damage).
        for &(start, count) in &runs {
            if let Err(e) = store.zero(u64::from(start), u64::from(count)) {
                give_back(bitmap, &runs);
                return Err(e);
            }
        }
        for &(start, count) in &runs {
            let extents = self.extents.len();
            match self.extents.last_mut() {
                Some(last) if last.0 + last.1 == start => last.1 += count,
                _ if extents < 8 => self.extents.push((start, count)),
                _ => {
                    self.extents = before;
                    give_back(bitmap, &runs);
                    return Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        format!("the {} would need more than 8 extents", self.what),
                    ));
                }
            }
        }
        let blocks: u64 = self.extents.iter().map(|e| u64::from(e.1)).sum();
        let total = (blocks * store.block / u64::from(self.node_size)) as u32;
        // The map must reach the new nodes before they are counted.
        let map_nodes = match self.extend_map(store, total) {
            Ok(n) => n,
            Err(e) => {
                self.extents = before;
                give_back(bitmap, &runs);
                return Err(e);
            }
        };
        self.free += total - self.total - map_nodes;
        self.total = total;
        self.write_header(store)
    }

    /// Makes the node map reach `total` nodes (TN1150, "Map Nodes"), as Apple's ExtendBTree
    /// does: the first new nodes become map nodes (kind 2, height 0), chained by their fLinks
    /// from the last map node or the header node, each holding one map record from its
    /// descriptor to 6 bytes before its end and marked used. No more than needed: fsck_hfs
    /// takes a chain longer than its map must be for damage (E_MapLk). Returns how many.
    fn extend_map(&self, store: &mut Store, total: u32) -> io::Result<u32> {
        let records = self.map_records(store)?;
        let mapped: u64 = records.iter().map(|&(_, len)| 8 * len as u64).sum();
        let size = u64::from(self.node_size);
        let bits_per_map_node = 8 * (size - MAP_NODE_SPARE);
        let needed = u64::from(total)
            .saturating_sub(mapped)
            .div_ceil(bits_per_map_node) as u32;
        if needed == 0 {
            return Ok(0);
        }
        let first = self.total;
        // A map node's bit may lie in a new map node's record: the chain comes first.
        let last_map_node = records.last().map_or(0, |&(at, _)| at / size);
        self.write_bytes(store, last_map_node * size, &first.to_be_bytes())?;
        for n in first..first + needed {
            let next = if n + 1 < first + needed { n + 1 } else { 0 };
            let map = vec![0u8; (size - MAP_NODE_SPARE) as usize];
            let bytes = node(size as usize, MAP, 0, next, 0, &[map]);
            self.write_bytes(store, u64::from(n) * size, &bytes)?;
        }
        for n in first..first + needed {
            self.set_map_bit(store, n, true)?;
        }
        Ok(needed)
    }

    fn index_record(&self, key: &[u8], child: u32) -> Vec<u8> {
        let mut r = key.to_vec();
        if !self.variable_index {
            r.resize(2 + usize::from(self.max_key), 0);
            r[0..2].copy_from_slice(&self.max_key.to_be_bytes());
        }
        r.extend_from_slice(&child.to_be_bytes());
        r
    }

    fn child(&self, record: &[u8]) -> io::Result<u32> {
        let k = key(record).len();
        match record.get(k..k + 4) {
            Some(_) => Ok(be32(record, k)),
            None => Err(bad(self.what, "an index record without a child")),
        }
    }

    /// The path from the root to the leaf that holds (or would hold) `target`: each index
    /// node with the index of the record followed, then the leaf.
    fn descend(&self, store: &mut Store, target: &[u8]) -> io::Result<(Vec<Step>, u32, Arc<Node>)> {
        let mut path = Vec::new();
        let mut n = self.root;
        loop {
            let nd = self.node(store, n)?;
            match nd.kind {
                LEAF => return Ok((path, n, nd)),
                INDEX if !nd.records.is_empty() && path.len() < MAX_DEPTH => {
                    // The last record whose key is not past the target (the first if all are).
                    let i = nd
                        .records
                        .partition_point(|r| {
                            self.order.compare(key(r), target) != Ordering::Greater
                        })
                        .saturating_sub(1);
                    let child = self.child(&nd.records[i])?;
                    path.push((n, nd, i));
                    n = child;
                }
                kind => {
                    return Err(bad(
                        self.what,
                        format!("node {n} (kind {kind}) where an index or leaf node belongs"),
                    ))
                }
            }
        }
    }

    /// The leaf position of `target`: found, or where it would go.
    fn position(&self, leaf: &Node, target: &[u8]) -> Result<usize, usize> {
        leaf.records
            .binary_search_by(|r| self.order.compare(key(r), target))
    }

    /// The record with `target`'s key.
    pub fn get(&self, store: &mut Store, target: &[u8]) -> io::Result<Option<Vec<u8>>> {
        if self.root == 0 {
            return Ok(None);
        }
        let (_, _, leaf) = self.descend(store, target)?;
        Ok(self
            .position(&leaf, target)
            .ok()
            .map(|i| leaf.records[i].clone()))
    }

    /// Calls `each` with every record from the first whose key is not before `from`, in key
    /// order, while it returns true.
    pub fn scan(
        &self,
        store: &mut Store,
        from: &[u8],
        mut each: impl FnMut(&[u8]) -> bool,
    ) -> io::Result<()> {
        if self.root == 0 {
            return Ok(());
        }
        let (_, _, mut leaf) = self.descend(store, from)?;
        let mut i = self.position(&leaf, from).unwrap_or_else(|i| i);
        for _ in 0..self.total {
            for r in &leaf.records[i..] {
                if !each(r) {
                    return Ok(());
                }
            }
            if leaf.next == 0 {
                return Ok(());
            }
            let n = leaf.next;
            leaf = self.node(store, n)?;
            if leaf.kind != LEAF {
                return Err(bad(
                    self.what,
                    format!("node {n} in the leaf chain is no leaf"),
                ));
            }
            i = 0;
        }
        Err(bad(self.what, "its leaves link in a loop"))
    }

    /// Adds `record`; an error of kind AlreadyExists if its key is there.
    pub fn insert(
        &mut self,
        store: &mut Store,
        bitmap: &mut Bitmap,
        record: Vec<u8>,
    ) -> io::Result<()> {
        let target = key(&record).to_vec();
        if self.root == 0 {
            let n = self.allocate_node(store, bitmap)?;
            let leaf = Node {
                next: 0,
                prev: 0,
                kind: LEAF,
                height: 1,
                records: vec![record],
            };
            self.write_node(store, n, &leaf)?;
            (self.root, self.first_leaf, self.last_leaf, self.depth) = (n, n, n, 1);
            self.leaf_records = 1;
            return self.write_header(store);
        }
        let (mut path, mut n, nd) = self.descend(store, &target)?;
        let mut nd = Arc::unwrap_or_clone(nd);
        let at = match self.position(&nd, &target) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("the {} already has that key", self.what),
                ))
            }
            Err(at) => at,
        };
        nd.records.insert(at, record);
        self.leaf_records += 1;
        // A new first record: the index keys above that lead here are its key now.
        if at == 0 {
            for (pn, parent, i) in path.iter_mut().rev() {
                let child = self.child(&parent.records[*i])?;
                Arc::make_mut(parent).records[*i] = self.index_record(&target, child);
                self.write_node(store, *pn, parent)?;
                if *i != 0 {
                    break;
                }
            }
        }
        loop {
            if self.fits(&nd) {
                self.write_node(store, n, &nd)?;
                break;
            }
            let right_no = self.allocate_node(store, bitmap)?;
            let right = self.split(store, n, &mut nd, right_no)?;
            let right_key = key(&right.records[0]).to_vec();
            self.write_node(store, n, &nd)?;
            self.write_node(store, right_no, &right)?;
            let up = self.index_record(&right_key, right_no);
            match path.pop() {
                Some((pn, parent, i)) => {
                    let mut parent = Arc::unwrap_or_clone(parent);
                    parent.records.insert(i + 1, up);
                    (n, nd) = (pn, parent);
                }
                None => {
                    let root = self.allocate_node(store, bitmap)?;
                    let left_key = key(&nd.records[0]).to_vec();
                    let top = Node {
                        next: 0,
                        prev: 0,
                        kind: INDEX,
                        height: nd.height + 1,
                        records: vec![self.index_record(&left_key, n), up],
                    };
                    self.write_node(store, root, &top)?;
                    self.root = root;
                    self.depth += 1;
                    break;
                }
            }
        }
        self.write_header(store)
    }

    /// Moves the second half of `nd`'s records (by bytes) to a new right sibling `right_no`,
    /// linked between it and its old next node.
    fn split(
        &mut self,
        store: &mut Store,
        n: u32,
        nd: &mut Node,
        right_no: u32,
    ) -> io::Result<Node> {
        let total: usize = nd.records.iter().map(Vec::len).sum();
        let mut left_bytes = 0;
        let mut cut = 0;
        while cut < nd.records.len() - 1 && left_bytes + nd.records[cut].len() <= total / 2 {
            left_bytes += nd.records[cut].len();
            cut += 1;
        }
        let cut = cut.max(1);
        let right = Node {
            next: nd.next,
            prev: n,
            kind: nd.kind,
            height: nd.height,
            records: nd.records.split_off(cut),
        };
        if nd.next != 0 {
            let mut after = self.read_node(store, nd.next)?;
            after.prev = right_no;
            self.write_node(store, nd.next, &after)?;
        } else if nd.kind == LEAF {
            self.last_leaf = right_no;
        }
        nd.next = right_no;
        Ok(right)
    }

    /// Removes the record with `target`'s key and returns it; NotFound if there is none.
    pub fn remove(&mut self, store: &mut Store, target: &[u8]) -> io::Result<Vec<u8>> {
        let not_found = || io::Error::new(io::ErrorKind::NotFound, "no such record");
        if self.root == 0 {
            return Err(not_found());
        }
        let (mut path, mut n, nd) = self.descend(store, target)?;
        let mut nd = Arc::unwrap_or_clone(nd);
        let at = self.position(&nd, target).map_err(|_| not_found())?;
        let removed = nd.records.remove(at);
        self.leaf_records -= 1;
        loop {
            if !nd.records.is_empty() {
                self.write_node(store, n, &nd)?;
                break;
            }
            // An empty node leaves its level: its neighbours link past it.
            if nd.prev != 0 {
                let mut before = self.read_node(store, nd.prev)?;
                before.next = nd.next;
                self.write_node(store, nd.prev, &before)?;
            }
            if nd.next != 0 {
                let mut after = self.read_node(store, nd.next)?;
                after.prev = nd.prev;
                self.write_node(store, nd.next, &after)?;
            }
            if nd.kind == LEAF {
                if self.first_leaf == n {
                    self.first_leaf = nd.next;
                }
                if self.last_leaf == n {
                    self.last_leaf = nd.prev;
                }
            }
            self.free_node(store, n)?;
            match path.pop() {
                Some((pn, parent, i)) => {
                    let mut parent = Arc::unwrap_or_clone(parent);
                    parent.records.remove(i);
                    (n, nd) = (pn, parent);
                }
                None => {
                    (self.root, self.depth, self.first_leaf, self.last_leaf) = (0, 0, 0, 0);
                    break;
                }
            }
        }
        // A root index node with one child gives way to it.
        while self.root != 0 && self.depth > 1 {
            let top = self.node(store, self.root)?;
            if top.kind != INDEX || top.records.len() != 1 {
                break;
            }
            let child = self.child(&top.records[0])?;
            self.free_node(store, self.root)?;
            self.root = child;
            self.depth -= 1;
        }
        self.write_header(store)?;
        Ok(removed)
    }

    /// Puts `record` in place of the one with its key (which must be there).
    pub fn replace(
        &mut self,
        store: &mut Store,
        bitmap: &mut Bitmap,
        record: Vec<u8>,
    ) -> io::Result<()> {
        let target = key(&record).to_vec();
        let (_, n, nd) = self.descend(store, &target)?;
        let mut nd = Arc::unwrap_or_clone(nd);
        let at = self
            .position(&nd, &target)
            .map_err(|_| io::Error::new(io::ErrorKind::NotFound, "no such record"))?;
        let old = std::mem::replace(&mut nd.records[at], record);
        if self.fits(&nd) {
            return self.write_node(store, n, &nd);
        }
        let record = std::mem::replace(&mut nd.records[at], old);
        self.remove(store, &target)?;
        self.insert(store, bitmap, record)
    }
}

#[cfg(test)]
mod tests {
    use super::super::write::empty_tree;
    use super::*;
    use crate::io::{FileSource, WriteAt};

    const NODE: u64 = 512;
    /// Allocation blocks of a node each, the bitmap in blocks 0..BITMAP, the tree after it.
    const BLOCKS: u32 = 1 << 16;
    const BITMAP: u32 = BLOCKS / 8 / NODE as u32;

    /// An extents-overflow record of file `id`: its 12-byte key and 64 bytes of data.
    fn record(id: u32) -> Vec<u8> {
        let mut r = vec![0u8, 10, 0, 0];
        r.extend(id.to_be_bytes());
        r.extend(0u32.to_be_bytes());
        r.extend([id as u8; 64]);
        r
    }

    /// A disk of `BLOCKS` 512-byte blocks holding an empty tree of 512-byte nodes (2 of them)
    /// that grows by `clump` bytes, and its allocation bitmap; its free blocks hold old bytes,
    /// as on a volume in use.
    fn empty(clump: u64) -> (Arc<dyn WriteAt>, Store, Bitmap, TreeFile) {
        let file = tempfile::tempfile().unwrap();
        file.set_len(u64::from(BLOCKS) * NODE).unwrap();
        let disk: Arc<dyn WriteAt> = Arc::new(FileSource::from_file(file).unwrap());
        let old = vec![0xA5u8; 1 << 20];
        let mut at = u64::from(BITMAP + 2) * NODE;
        while at < u64::from(BLOCKS) * NODE {
            let n = old.len().min((u64::from(BLOCKS) * NODE - at) as usize);
            disk.write_all_at(at, &old[..n]).unwrap();
            at += n as u64;
        }
        // The bitmap's blocks and the tree's used.
        let mut bits = vec![0u8; BITMAP as usize * NODE as usize];
        (0..BITMAP + 2).for_each(|b| bits[b as usize / 8] |= 0x80 >> (b % 8));
        disk.write_all_at(0, &bits).unwrap();
        let tree = empty_tree(NODE as usize, 10, 2, 2);
        disk.write_all_at(u64::from(BITMAP) * NODE, &tree).unwrap();
        let mut store = Store::new(disk.clone(), NODE, None);
        let bitmap = Bitmap::read(&mut store, vec![(0, BITMAP)], BLOCKS).unwrap();
        let extents = vec![(BITMAP, 2)];
        let order = KeyOrder::Extents;
        let tree = TreeFile::open(&mut store, "test B-tree", extents, clump, order).unwrap();
        (disk, store, bitmap, tree)
    }

    /// The map nodes, chained from the header node.
    fn map_nodes(tree: &TreeFile, store: &mut Store) -> Vec<u32> {
        let records = tree.map_records(store).unwrap();
        records[1..]
            .iter()
            .map(|&(at, _)| (at / NODE) as u32)
            .collect()
    }

    /// The tree against what it should hold: `ids` in key order, found one by one; each map
    /// node laid out as Apple's ExtendBTree makes one, the chain no longer than the map must
    /// be; the map marking exactly the header, map, index and leaf nodes, the free count the
    /// rest.
    fn assert_sound(tree: &TreeFile, store: &mut Store, ids: &[u32]) {
        let mut found = Vec::new();
        tree.scan(store, &record(0)[..12], |r| {
            found.push(be32(r, 4));
            true
        })
        .unwrap();
        assert_eq!(found, ids, "the records in key order");
        for &id in ids.iter().step_by(7) {
            assert_eq!(
                tree.get(store, &record(id)[..12]).unwrap(),
                Some(record(id))
            );
        }
        let mut in_use = vec![0u32];
        for n in map_nodes(tree, store) {
            let mut b = vec![0u8; NODE as usize];
            tree.read_bytes(store, n as u64 * NODE, &mut b).unwrap();
            let descriptor = (be32(&b, 4), b[8] as i8, b[9], be16(&b, 10));
            assert_eq!(
                descriptor,
                (0, MAP, 0, 1),
                "node {n}: no back link, kind, height, records"
            );
            let offsets = (be16(&b, 510), be16(&b, 508));
            assert_eq!(
                offsets,
                (14, 506),
                "node {n}: its record fills it but for 2 bytes"
            );
            in_use.push(n);
        }
        let records = tree.map_records(store).unwrap();
        let bits: Vec<u64> = records.iter().map(|&(_, len)| 8 * len as u64).collect();
        let mapped: u64 = bits.iter().sum();
        assert!(mapped >= u64::from(tree.total), "the map covers every node");
        assert!(
            mapped - bits.last().unwrap() < u64::from(tree.total),
            "no map node past the last one needed"
        );
        let mut level = vec![tree.root];
        while tree.root != 0 && !level.is_empty() {
            in_use.extend(&level);
            let nodes: Vec<Arc<Node>> = level
                .iter()
                .map(|&n| tree.node(store, n).unwrap())
                .collect();
            level = match nodes[0].kind {
                INDEX => nodes
                    .iter()
                    .flat_map(|nd| nd.records.iter().map(|r| tree.child(r).unwrap()))
                    .collect(),
                _ => Vec::new(),
            };
        }
        let mut map = Vec::new();
        for (at, len) in records {
            let mut piece = vec![0u8; len];
            tree.read_bytes(store, at, &mut piece).unwrap();
            map.extend(piece);
        }
        let marked: Vec<u32> = (0..8 * map.len() as u32)
            .filter(|&n| map[n as usize / 8] & (0x80 >> (n % 8)) != 0)
            .collect();
        in_use.sort_unstable();
        assert_eq!(
            marked, in_use,
            "the map marks the nodes in use, and only them"
        );
        let mut b = vec![0u8; NODE as usize];
        for n in (1..tree.total).filter(|n| in_use.binary_search(n).is_err()) {
            tree.read_bytes(store, u64::from(n) * NODE, &mut b).unwrap();
            assert!(b.iter().all(|&x| x == 0), "unused node {n} is zeros");
        }
        assert_eq!(
            tree.free,
            tree.total - in_use.len() as u32,
            "the free count"
        );
    }

    /// A tree of 512-byte nodes (its header's map covers 2,048 of them) grows past its map:
    /// a map node chained from the header node, later ones from it, several in one growth;
    /// nodes allocated and freed in the map nodes' records, the map exact throughout, and
    /// read back the same from the disk.
    #[test]
    fn a_tree_outgrowing_its_header_map_gets_map_nodes() {
        // Grown a megabyte (2,048 nodes) at a time.
        let (disk, mut store, mut bitmap, mut tree) = empty(1 << 20);
        // File IDs in a scattered order, so that nodes split anywhere.
        let scattered = |from: u32, count: u32| (0..count).map(move |i| from + (i * 7919) % count);
        let mut ids: Vec<u32> = scattered(1, 9000).collect();
        for &id in &ids {
            tree.insert(&mut store, &mut bitmap, record(id)).unwrap();
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        // The first growth, from 2 nodes to 2,050, took node 2 for the map of nodes 2,048 on.
        let chain = map_nodes(&tree, &mut store);
        assert_eq!(chain, [2], "in {} nodes", tree.total);
        assert_sound(&tree, &mut store, &sorted);

        // Room for many inserts at once: the file doubles until it has, past several map
        // nodes' worth of nodes, taking two map nodes or more in one growth.
        tree.reserve(&mut store, &mut bitmap, 5000).unwrap();
        let chain = map_nodes(&tree, &mut store);
        assert!(chain.windows(2).any(|w| w[1] == w[0] + 1), "{chain:?}");
        assert_sound(&tree, &mut store, &sorted);

        // New nodes from the map nodes' records (past a map node), then half the records out.
        ids.extend(scattered(9001, 12000));
        for &id in &ids[9000..] {
            tree.insert(&mut store, &mut bitmap, record(id)).unwrap();
        }
        assert_eq!(map_nodes(&tree, &mut store), chain, "no growth");
        let (kept, removed) = ids.split_at(ids.len() / 2);
        for &id in removed {
            tree.remove(&mut store, &record(id)[..12]).unwrap();
        }
        let mut left = kept.to_vec();
        left.sort_unstable();
        assert_sound(&tree, &mut store, &left);
        store.commit().unwrap();
        let mut again = Store::new(disk, NODE, None);
        let order = KeyOrder::Extents;
        let reread =
            TreeFile::open(&mut again, "test B-tree", tree.extents.clone(), 0, order).unwrap();
        let shape = |t: &TreeFile| (t.total, t.free, t.root, t.depth, t.leaf_records);
        assert_eq!(shape(&reread), shape(&tree));
        assert_sound(&reread, &mut again, &left);
    }
}
