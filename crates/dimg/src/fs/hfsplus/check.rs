//! First Aid for HFS+ and HFSX (`dimg verify -fs`; TN1150, and what Apple's fsck_hfs checks):
//! each B-tree's header, node links, key order, node map and counts; the catalog's thread
//! records, folder valences, file and folder counts and next CNID; file and folder hard links
//! against their iNodes (link counts, the chain of links); every fork's extents against the
//! volume, each other and the allocation bitmap; the journal. Read-only: the repairs that are
//! safe (counts, valences, link counts, the bitmap, the next CNID) come back as bytes to write,
//! those of thread records (an orphaned one taken out, a missing one put in) as an edit of the
//! catalog through the B-tree editor HFS+ writing uses, through the journal on a journaled
//! volume.

use super::bitmap::Bitmap;
use super::edit::{self, TreeFile};
use super::journal::{Journal, JOURNALED};
use super::read::{attribute_key, catalog_key, BTree, Fork, Node, PRIVATE_DATA};
use super::store::Store;
use super::write::{self, thread};
use super::{
    compare_names, extent_pieces, units, HfsPlus, Overflow, ALLOCATION_FORK, ALLOCATION_ID,
    ATTRIBUTES_FORK, ATTRIBUTES_ID, CATALOG_FORK, CATALOG_ID, EXTENTS_FORK, EXTENTS_ID,
    FIRST_USER_ID, HEADER_AT, ROOT_FOLDER, ROOT_PARENT,
};
use crate::bytes::{be16, be32, be64, utf16_be};
use crate::fs::check::{go_on, Bits, Edit, Findings, Repair, Watch};
use crate::io::ReadAt;
use std::cmp::Ordering;
use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io;
use std::sync::Arc;

/// The largest allocation bitmap checked: 256 MiB maps 2^31 blocks (8 TiB of 4 KiB blocks).
const MAX_BITMAP: u64 = 256 << 20;
/// Lines of one kind (damaged nodes of a tree, overlapping extents) given before the rest are
/// only counted.
const MAX_LINES: usize = 20;
/// The bitmap is compared, and rewritten, a piece at a time.
const PIECE: u64 = 4096;

const BAD_BLOCKS_ID: u32 = 5;
const STARTUP_ID: u32 = 7;
/// Where the volume header keeps the startup file's fork.
const STARTUP_FORK: usize = 432;
/// Volume header fields a repair may rewrite.
const FILE_COUNT: usize = 32;
const FOLDER_COUNT: usize = 36;
const FREE_BLOCKS: usize = 48;
const NEXT_CATALOG_ID: usize = 64;
/// Volume attributes: CNIDs have wrapped round and are reused.
const CNIDS_REUSED: u32 = 1 << 12;
/// A folder record's flag: it keeps a count of its subfolders (HFSX with folder hard links).
const HAS_FOLDER_COUNT: u16 = 0x10;

/// Hard links (TN1150 "Hard Links"; xnu's hfs_format.h). A file hard link is a file record of
/// type `hlnk` and creator `hfs+`, a folder hard link one of type `fdrp` and creator `MACS`;
/// the BSD `special` field of a link holds its iNode's number, that of an iNode its link count.
/// A file's iNode is the file `iNode<n>` in the private data folder, a folder's the folder
/// `dir_<CNID>` in the private directory data folder. Since Mac OS X 10.5 the links of an iNode
/// form a chain, flagged in every record of it: a file iNode names its first link in
/// `reserved1` (`hl_firstLinkID`), a folder iNode in its attribute
/// `com.apple.system.hfs.firstlink` (the CNID in decimal digits, NUL-ended), and each link names
/// the links before and after it in the BSD owner and group fields (`hl_prevLinkID`,
/// `hl_nextLinkID`).
const FILE_LINK: &[u8] = b"hlnkhfs+";
const FOLDER_LINK: &[u8] = b"fdrpMACS";
const FIRST_LINK: usize = 4;
const PREV_LINK: usize = 32;
const NEXT_LINK: usize = 36;
const SPECIAL: usize = 44;
const HAS_LINK_CHAIN: u16 = 0x20;
const FIRST_LINK_ATTRIBUTE: &str = "com.apple.system.hfs.firstlink";
const PRIVATE_DIRECTORY_DATA: &str = ".HFS+ Private Directory Data\r";

/// Checks the HFS+ or HFSX volume `volume` (its bytes, from its first).
pub fn check(volume: Arc<dyn ReadAt>, watch: &dyn Watch) -> io::Result<Findings> {
    let mut c = Checker::open(volume)?;
    c.run(watch)?;
    Ok(c.found)
}

/// Whose blocks an extent holds.
#[derive(Clone, Copy, Debug)]
enum Owner {
    /// A file's data (0) or resource (0xFF) fork; the special files by their CNIDs.
    Fork(u32, u8),
    /// A fork of one of a file's extended attributes.
    Attribute(u32),
    /// The boot blocks and volume header, or the alternate header.
    Reserved,
}

/// A run of allocation blocks some owner holds.
struct Extent {
    start: u64,
    count: u64,
    owner: Owner,
}

/// A file or folder record, as the catalog walk keeps it.
struct Record {
    parent: u32,
    /// A hash of its name as stored, to compare with its thread's.
    name: u64,
    folder: bool,
    valence: u32,
    /// A folder's count of its subfolders, where its flags say it keeps one.
    folder_count: Option<u32>,
    /// Its node and place in the node, to name it and to repair it.
    at: (u32, usize),
}

/// A thread record: the parent and name it gives its file or folder.
struct Thread {
    parent: u32,
    name: u64,
    folder: bool,
}

/// A hard link's record: a file or a folder hard link, the iNode it names, its flags and its
/// neighbours in its iNode's chain.
struct HardLink {
    folder: bool,
    inode: u32,
    flags: u16,
    prev: u32,
    next: u32,
}

/// A record named as an iNode is (`iNode<n>`, `dir_<n>`), wherever it is: those in a private
/// folder are the iNodes.
struct INode {
    id: u32,
    parent: u32,
    folder: bool,
    /// The number its links name it by: a file iNode's from its name, a folder iNode's CNID.
    number: u32,
    flags: u16,
    /// A file iNode's first link (a folder iNode's is in an attribute).
    first: u32,
    links: u32,
    at: (u32, usize),
}

/// What the volume header says of a B-tree (its header record).
struct TreeHeader {
    depth: u32,
    root: u32,
    leaf_records: u32,
    first_leaf: u32,
    last_leaf: u32,
    node_size: u64,
    total: u32,
    free: u32,
}

impl TreeHeader {
    fn parse(r: &[u8]) -> TreeHeader {
        TreeHeader {
            depth: u32::from(be16(r, 0)),
            root: be32(r, 2),
            leaf_records: be32(r, 6),
            first_leaf: be32(r, 10),
            last_leaf: be32(r, 14),
            node_size: u64::from(be16(r, 18)),
            total: be32(r, 22),
            free: be32(r, 26),
        }
    }
}

/// The order of a tree's keys; `None` when a key is too short to compare.
type KeyOrder<'a> = &'a dyn Fn(&[u8], &[u8]) -> Option<Ordering>;
/// What the walk does with each leaf record: (node, index in it, record).
type LeafVisit<'a> = &'a mut dyn FnMut(&mut Checker, u32, usize, &[u8]);

/// A fork's extents, which turn writes to the fork into writes to the volume.
struct ForkMap {
    block: u64,
    extents: Vec<(u32, u32)>,
}

impl ForkMap {
    fn new(block: u64, extents: &[(u32, u32)]) -> Self {
        ForkMap {
            block,
            extents: extents.to_vec(),
        }
    }

    /// `bytes` written at `offset` of the fork, as writes at offsets of the volume; none when
    /// they run past the fork's extents.
    fn writes(&self, offset: u64, bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let pieces = extent_pieces(&self.extents, self.block, offset, bytes.len() as u64);
        let mut done = 0usize;
        pieces
            .unwrap_or_default()
            .into_iter()
            .map(|(at, len)| {
                let piece = bytes[done..done + len as usize].to_vec();
                done += len as usize;
                (at, piece)
            })
            .collect()
    }
}

struct Checker {
    volume: Arc<dyn ReadAt>,
    header: Vec<u8>,
    block: u64,
    total: u64,
    found: Findings,
    /// Extents overflow records by (file, fork), and the fork block the first of each starts at.
    overflow: Overflow,
    overflow_start: HashMap<(u32, u8), u32>,
    extents: Vec<Extent>,
    /// The special files' forks, with all their extents.
    special: HashMap<u32, Fork>,
    catalog: Option<Arc<BTree>>,
    /// The catalog file's bytes and node size, where a valence repair is written.
    catalog_bytes: Option<(Arc<dyn ReadAt>, u64, ForkMap)>,
    records: HashMap<u32, Record>,
    threads: HashMap<u32, Thread>,
    /// Hard links by CNID, the records named as iNodes are, and each folder iNode's first link
    /// as its attribute gives it.
    links: HashMap<u32, HardLink>,
    inodes: Vec<INode>,
    first_links: HashMap<u32, u32>,
    /// Each folder's records, and how many of them are folders.
    children: HashMap<u32, (u32, u32)>,
    files: u64,
    folders: u64,
    largest_id: u32,
    /// Changes in the journal not yet written to the volume: no repair is safe then.
    unreplayed: u64,
    /// The catalog compares names as binary (HFSX that says so), not case-folded.
    binary_names: bool,
}

impl Checker {
    fn open(volume: Arc<dyn ReadAt>) -> io::Result<Checker> {
        let mut header = vec![0u8; 512];
        volume.read_exact_at(HEADER_AT, &mut header)?;
        let (block, total) = (u64::from(be32(&header, 40)), u64::from(be32(&header, 44)));
        if !(512..=1 << 20).contains(&block) || !block.is_power_of_two() {
            return Err(crate::error::FormatError::io(
                "HFS+ volume header",
                HEADER_AT + 40,
                format!("block size {block}"),
            ));
        }
        Ok(Checker {
            volume,
            header,
            block,
            total,
            found: Findings::default(),
            overflow: Overflow::new(),
            overflow_start: HashMap::new(),
            extents: Vec::new(),
            special: HashMap::new(),
            catalog: None,
            catalog_bytes: None,
            records: HashMap::new(),
            threads: HashMap::new(),
            links: HashMap::new(),
            inodes: Vec::new(),
            first_links: HashMap::new(),
            children: HashMap::new(),
            files: 0,
            folders: 0,
            largest_id: 0,
            unreplayed: 0,
            binary_names: false,
        })
    }

    fn run(&mut self, watch: &dyn Watch) -> io::Result<()> {
        let blocks_held = self.volume.size() / self.block;
        if self.total > blocks_held {
            self.found.problem(
                "volume header",
                format!(
                    "says {} blocks of {} bytes, the volume holds {blocks_held}",
                    self.total, self.block
                ),
            );
            self.total = blocks_held;
        }
        self.journal();
        let h = self.header.clone();
        // The extents overflow file first (it has no overflow extents itself): the other
        // special files' forks may continue there.
        self.special_fork(EXTENTS_ID, EXTENTS_FORK);
        if let Some(tree) = self.special_tree(EXTENTS_ID, EXTENTS_FORK) {
            let order = |a: &[u8], b: &[u8]| extents_key(a)?.partial_cmp(&extents_key(b)?);
            self.walk(
                "extents overflow file",
                &tree,
                &order,
                watch,
                &mut |c, _, _, r| c.overflow_record(r),
            )?;
        }
        for (id, at) in [
            (ALLOCATION_ID, ALLOCATION_FORK),
            (CATALOG_ID, CATALOG_FORK),
            (ATTRIBUTES_ID, ATTRIBUTES_FORK),
            (STARTUP_ID, STARTUP_FORK),
        ] {
            self.special_fork(id, at);
        }
        let bad_blocks = self.claim_overflow(BAD_BLOCKS_ID, 0);
        self.add_extents(Owner::Fork(BAD_BLOCKS_ID, 0), &bad_blocks);
        if let Some(tree) = self.special_tree(CATALOG_ID, CATALOG_FORK) {
            let tree = Arc::new(tree);
            self.catalog = Some(tree.clone());
            // HFSX says in its catalog's header whether names compare as binary; HFS+ folds case.
            let binary = be16(&h, 0) == 0x4858 && tree_compare_type(&tree) == Some(0xBC);
            self.binary_names = binary;
            let order =
                move |a: &[u8], b: &[u8]| {
                    let ((pa, na), (pb, nb)) = (catalog_name(a)?, catalog_name(b)?);
                    Some(pa.cmp(&pb).then_with(|| {
                        compare_names(na.iter().copied(), nb.iter().copied(), binary)
                    }))
                };
            self.walk("catalog file", &tree, &order, watch, &mut |c, n, i, r| {
                c.catalog_record(n, i, r)
            })?;
            self.catalog_totals();
        }
        if let Some(tree) = self.special_tree(ATTRIBUTES_ID, ATTRIBUTES_FORK) {
            let order = |a: &[u8], b: &[u8]| attributes_key(a)?.partial_cmp(&attributes_key(b)?);
            self.walk(
                "attributes file",
                &tree,
                &order,
                watch,
                &mut |c, _, _, r| c.attribute_record(r),
            )?;
        }
        if self.catalog.is_some() {
            self.hard_links();
        }
        let mut left: Vec<(u32, u8)> = self.overflow.keys().copied().collect();
        left.sort_unstable();
        for (id, fork) in left {
            let owner = self.name(Owner::Fork(id, fork));
            self.found.problem(
                "extents overflow file",
                format!("holds extents of {owner}, which has no such fork"),
            );
        }
        self.allocation(watch)?;
        if self.unreplayed > 0 {
            self.found.repairs.clear();
            self.found.edit = None;
        }
        Ok(())
    }

    fn journal(&mut self) {
        if be32(&self.header, 4) & JOURNALED == 0 {
            return;
        }
        // A journal on another device has nothing here to check; a damaged header is named.
        match Journal::open(&*self.volume, self.block, be32(&self.header, 12)) {
            Ok(Some(journal)) if journal.pending() > 0 => {
                let n = journal.pending();
                self.unreplayed = n;
                self.found.problem(
                    "journal",
                    format!(
                        "holds {n} bytes not replayed (a read/write attach replays them; until \
                         then First Aid repairs nothing on this volume)"
                    ),
                );
            }
            Ok(_) => {}
            Err(e) => self.found.failed("journal", e),
        }
    }

    /// A special file's fork (at `at` of the volume header), checked and kept with all its
    /// extents.
    fn special_fork(&mut self, id: u32, at: usize) {
        let raw = self.header[at..at + 80].to_vec();
        let extents = self.fork(Owner::Fork(id, 0), &raw);
        self.special.insert(
            id,
            Fork {
                size: be64(&raw, 0),
                extents,
            },
        );
    }

    /// The bytes of special file `id`, through all its extents.
    fn special_bytes(&self, id: u32) -> io::Result<(Arc<dyn ReadAt>, ForkMap)> {
        let fork = &self.special[&id];
        let bytes = HfsPlus::fork_bytes(&self.volume, self.block, fork, &[])?;
        Ok((bytes, ForkMap::new(self.block, &fork.extents)))
    }

    /// A special file's B-tree, read through its fork; `None` (and a problem) when it cannot
    /// be, or when the volume has none (an attributes file is optional).
    fn special_tree(&mut self, id: u32, at: usize) -> Option<BTree> {
        if be64(&self.header, at) == 0 && id == ATTRIBUTES_ID {
            return None;
        }
        let name = special_name(id);
        let opened = self
            .special_bytes(id)
            .and_then(|(file, map)| Ok((BTree::open(file.clone(), name)?, file, map)));
        match opened {
            Ok((tree, file, map)) => {
                if id == CATALOG_ID {
                    let node_size = tree_node_size(&tree).unwrap_or(0);
                    self.catalog_bytes = Some((file, node_size, map));
                }
                Some(tree)
            }
            Err(e) => {
                self.found.failed(name, e);
                None
            }
        }
    }

    /// Walks a B-tree from its root, level by level: every node reached once at its height,
    /// keys in order along each level, sibling links along each level, the header's counts and
    /// first and last leaves, and the node map. `leaf` sees each leaf record in key order.
    fn walk(
        &mut self,
        name: &str,
        tree: &BTree,
        order: KeyOrder,
        watch: &dyn Watch,
        leaf: LeafVisit,
    ) -> io::Result<()> {
        let before = self.found.problems.len();
        let head = match tree.read_node(0) {
            Ok(n) if n.kind == 1 && n.records.len() >= 3 && n.records[0].len() >= 106 => n,
            Ok(n) => {
                let count = n.records.len();
                self.found.problem(
                    name,
                    format!(
                        "node 0 is not a header node (kind {}, {count} records)",
                        n.kind
                    ),
                );
                return Ok(());
            }
            Err(e) => {
                self.found.failed(name, e);
                return Ok(());
            }
        };
        let h = TreeHeader::parse(&head.records[0]);
        let held = tree_fork_nodes(tree, h.node_size);
        if u64::from(h.total) > held {
            self.found.problem(
                name,
                format!("its header says {} nodes, its fork holds {held}", h.total),
            );
        }
        let total = u64::from(h.total).min(held);
        watch.begin(&format!("Checking the {name}"), total);
        let mut used = Bits::new(total);
        used.set(0);
        // The node map: the header node's map record, then the map nodes chained from it, no
        // more of them than the map needs (fsck_hfs's E_MapLk).
        let mut map = head.records[2].clone();
        let mut m = head.next;
        while m != 0 {
            if map.len() as u64 * 8 >= total {
                self.found.problem(
                    name,
                    format!("its map node chain goes on to node {m}, past the map it needs"),
                );
                break;
            }
            if u64::from(m) >= total || used.set(u64::from(m)) {
                self.found.problem(
                    name,
                    format!("its map node chain leads to node {m} twice or outside the tree"),
                );
                break;
            }
            match tree.read_node(m) {
                Ok(node) if node.kind == 2 && node.height == 0 && node.records.len() == 1 => {
                    map.extend_from_slice(&node.records[0]);
                    m = node.next;
                }
                Ok(node) => {
                    self.found.problem(
                        name,
                        format!(
                            "node {m} is in its map chain but is no map node (kind {}, height {}, {} records)",
                            node.kind,
                            node.height,
                            node.records.len()
                        ),
                    );
                    break;
                }
                Err(e) => {
                    self.found.failed(name, e);
                    break;
                }
            }
        }
        let mut leaf_records = 0u64;
        let mut leaves: Vec<u32> = Vec::new();
        if h.root == 0 {
            if h.depth != 0 || h.leaf_records != 0 || h.first_leaf != 0 || h.last_leaf != 0 {
                self.found.problem(
                    name,
                    "its header names no root, yet gives it a depth, leaves or records",
                );
            }
        } else {
            // One level at a time, with the key each node's parent gave it.
            let mut level: Vec<(u32, Option<Vec<u8>>)> = vec![(h.root, None)];
            let mut height = h.depth;
            let mut visited = 0u64;
            while !level.is_empty() {
                go_on(watch)?;
                if height == 0 {
                    self.found.problem(
                        name,
                        format!("its index goes deeper than its depth of {}", h.depth),
                    );
                    break;
                }
                let mut below = Vec::new();
                let mut last_key: Option<Vec<u8>> = None;
                let mut previous = 0;
                for (i, (n, parent_key)) in level.iter().enumerate() {
                    let n = *n;
                    if n == 0 || u64::from(n) >= total {
                        self.found.problem(
                            name,
                            format!("an index record points to node {n}, outside the tree"),
                        );
                        continue;
                    }
                    if used.set(u64::from(n)) {
                        self.found
                            .problem(name, format!("node {n} is reached twice"));
                        continue;
                    }
                    visited += 1;
                    watch.advance(visited);
                    let node = match tree.read_node(n) {
                        Ok(node) => node,
                        Err(e) => {
                            self.found.failed(name, e);
                            continue;
                        }
                    };
                    let next = level.get(i + 1).map_or(0, |e| e.0);
                    self.node_shape(name, n, &node, height, previous, next);
                    previous = n;
                    if node.records.is_empty() {
                        self.found
                            .problem(name, format!("node {n} holds no record"));
                        continue;
                    }
                    if let Some(k) = parent_key {
                        if order(k, &node.records[0]) == Some(Ordering::Greater) {
                            self.found.problem(
                                name,
                                format!("node {n}'s first key sorts before its index record's"),
                            );
                        }
                    }
                    for (j, r) in node.records.iter().enumerate() {
                        if order(r, r).is_none() {
                            self.found
                                .problem(name, format!("record {j} of node {n} has a damaged key"));
                            continue;
                        }
                        if last_key
                            .as_deref()
                            .is_some_and(|k| order(k, r) != Some(Ordering::Less))
                        {
                            self.found.problem(
                                name,
                                format!("record {j} of node {n} is out of key order"),
                            );
                        }
                        last_key = Some(r.clone());
                        match node.kind {
                            -1 => {
                                leaf_records += 1;
                                leaf(self, n, j, r);
                            }
                            _ => {
                                let key_len = 2 + usize::from(be16(r, 0));
                                match r.get(key_len..key_len + 4) {
                                    Some(child) => {
                                        below.push((be32(child, 0), Some(r[..key_len].to_vec())))
                                    }
                                    None => self.found.problem(
                                        name,
                                        format!("index record {j} of node {n} has no child"),
                                    ),
                                }
                            }
                        }
                    }
                    if node.kind == -1 {
                        leaves.push(n);
                    }
                }
                level = below;
                height -= 1;
            }
            if h.first_leaf != leaves.first().copied().unwrap_or(0)
                || h.last_leaf != leaves.last().copied().unwrap_or(0)
            {
                self.found.problem(
                    name,
                    format!(
                        "its header says the leaves run from node {} to node {}, they run from {} to {}",
                        h.first_leaf,
                        h.last_leaf,
                        leaves.first().copied().unwrap_or(0),
                        leaves.last().copied().unwrap_or(0)
                    ),
                );
            }
        }
        if u64::from(h.leaf_records) != leaf_records {
            self.found.problem(
                name,
                format!(
                    "its header counts {} leaf records, its leaves hold {leaf_records}",
                    h.leaf_records
                ),
            );
        }
        self.node_map(name, &map, &used, total, &h);
        let lines = self.found.problems.len() - before;
        if lines > MAX_LINES {
            self.found.problems.truncate(before + MAX_LINES);
            self.found.problem(
                name,
                format!("and {} more problems in its nodes", lines - MAX_LINES),
            );
        }
        self.found
            .counted
            .insert(tree_count_name(name), leaves.len() as u64);
        Ok(())
    }

    /// A node's descriptor against where the walk found it: its kind at its height, and its
    /// links to the nodes before and after it on its level.
    fn node_shape(
        &mut self,
        name: &str,
        n: u32,
        node: &Node,
        height: u32,
        previous: u32,
        next: u32,
    ) {
        let kind_ok = match node.kind {
            -1 => height == 1,
            0 => height > 1,
            _ => false,
        };
        if !kind_ok || u32::from(node.height) != height {
            self.found.problem(
                name,
                format!(
                    "node {n} is of kind {} at height {}, where the walk expects {} at height {height}",
                    node.kind,
                    node.height,
                    if height == 1 { "a leaf" } else { "an index node" }
                ),
            );
        }
        if node.prev != previous || node.next != next {
            self.found.problem(
                name,
                format!(
                    "node {n} links to nodes {} (before) and {} (after), its neighbours are {previous} and {next}",
                    node.prev, node.next
                ),
            );
        }
    }

    /// The node map against the nodes in use, and the header's free count.
    fn node_map(&mut self, name: &str, map: &[u8], used: &Bits, total: u64, h: &TreeHeader) {
        if (map.len() as u64) * 8 < total {
            self.found.problem(
                name,
                format!("its node map covers {} of its {total} nodes", map.len() * 8),
            );
        }
        let mapped = |n: u64| {
            map.get((n / 8) as usize)
                .is_some_and(|b| b & (0x80 >> (n % 8)) != 0)
        };
        let (mut unmarked, mut stray) = ((0u64, 0u64), (0u64, 0u64));
        let mut in_use = 0u64;
        for n in 0..total {
            match (used.get(n), mapped(n)) {
                (true, false) => {
                    unmarked = (unmarked.0 + 1, if unmarked.0 == 0 { n } else { unmarked.1 });
                }
                (false, true) => stray = (stray.0 + 1, if stray.0 == 0 { n } else { stray.1 }),
                _ => {}
            }
            in_use += u64::from(used.get(n));
        }
        if unmarked.0 > 0 {
            self.found.problem(
                name,
                format!(
                    "its node map marks {} nodes in use free (the first: node {})",
                    unmarked.0, unmarked.1
                ),
            );
        }
        if stray.0 > 0 {
            self.found.problem(
                name,
                format!(
                    "its node map marks {} unused nodes in use (the first: node {})",
                    stray.0, stray.1
                ),
            );
        }
        let free = u64::from(h.total).saturating_sub(in_use);
        if u64::from(h.free) != free {
            self.found.problem(
                name,
                format!("its header counts {} free nodes, {free} are free", h.free),
            );
        }
    }

    fn overflow_record(&mut self, r: &[u8]) {
        let data = 2 + usize::from(be16(r, 0));
        let (Some((id, fork, start)), Some(d)) = (extents_key(r), r.get(data..data + 64)) else {
            self.found
                .problem("extents overflow file", "a leaf record is too short");
            return;
        };
        let fork = fork as u8;
        let list = self.overflow.entry((id, fork)).or_default();
        let held: u64 = list.iter().map(|e| u64::from(e.1)).sum();
        if list.is_empty() {
            self.overflow_start.insert((id, fork), start);
        } else if held + u64::from(*self.overflow_start.get(&(id, fork)).unwrap_or(&0))
            != u64::from(start)
        {
            self.found.problem(
                "extents overflow file",
                format!("a record of CNID {id} starts at fork block {start}, where the one before it ends elsewhere"),
            );
        }
        list.extend(
            (0..8)
                .map(|i| (be32(d, 8 * i), be32(d, 4 + 8 * i)))
                .filter(|&(_, n)| n > 0),
        );
    }

    /// The extents overflow records of a fork, taken: what is left at the end belongs to none.
    fn claim_overflow(&mut self, id: u32, fork: u8) -> Vec<(u32, u32)> {
        self.overflow.remove(&(id, fork)).unwrap_or_default()
    }

    /// A fork's extents (its record's and its overflow records') checked against the fork's
    /// block count and size and the volume, and kept for the bitmap; all of them.
    fn fork(&mut self, owner: Owner, raw: &[u8]) -> Vec<(u32, u32)> {
        let Owner::Fork(id, kind) = owner else {
            return Vec::new();
        };
        let own = Fork::parse(raw);
        let own_blocks: u64 = own.extents.iter().map(|e| u64::from(e.1)).sum();
        let start = self.overflow_start.get(&(id, kind)).copied();
        let more = self.claim_overflow(id, kind);
        if let Some(start) = start.filter(|&s| u64::from(s) != own_blocks) {
            let who = self.name(owner);
            self.found.problem(
                who,
                format!("its overflow extents start at fork block {start}, its record's end at {own_blocks}"),
            );
        }
        let all: Vec<(u32, u32)> = own.extents.iter().chain(&more).copied().collect();
        let held: u64 = all.iter().map(|e| u64::from(e.1)).sum();
        let stated = u64::from(be32(raw, 12));
        if held != stated {
            let who = self.name(owner);
            self.found.problem(
                who,
                format!("its extents hold {held} blocks, its record says {stated}"),
            );
        }
        if be64(raw, 0) > stated * self.block {
            let who = self.name(owner);
            self.found.problem(
                who,
                format!("its {} bytes do not fit its {stated} blocks", be64(raw, 0)),
            );
        }
        self.add_extents(owner, &all);
        all
    }

    fn add_extents(&mut self, owner: Owner, extents: &[(u32, u32)]) {
        for &(start, count) in extents {
            let (start, count) = (u64::from(start), u64::from(count));
            if start + count > self.total {
                let who = self.name(owner);
                self.found.problem(
                    who,
                    format!(
                        "an extent of {count} blocks at block {start} runs past the volume's {} blocks",
                        self.total
                    ),
                );
            }
            let count = count.min(self.total.saturating_sub(start));
            if count > 0 {
                self.extents.push(Extent {
                    start,
                    count,
                    owner,
                });
            }
        }
    }

    fn catalog_record(&mut self, node: u32, index: usize, r: &[u8]) {
        let Some((parent, name, d)) = catalog_key(r) else {
            self.found.problem(
                "catalog file",
                format!("record {index} of node {node} has a damaged key"),
            );
            return;
        };
        let kind = if d.len() >= 2 { be16(d, 0) } else { 0 };
        let short = |need: usize| d.len() < need;
        let name_hash = hash(name);
        match kind {
            1 | 2 if short(if kind == 1 { 88 } else { 248 }) => self.found.problem(
                "catalog file",
                format!("record {index} of node {node} is too short for its kind"),
            ),
            1 | 2 => {
                let (id, folder) = (be32(d, 8), kind == 1);
                let folder_count =
                    (folder && be16(d, 2) & HAS_FOLDER_COUNT != 0).then(|| be32(d, 84));
                let record = Record {
                    parent,
                    name: name_hash,
                    folder,
                    valence: if folder { be32(d, 4) } else { 0 },
                    folder_count,
                    at: (node, index),
                };
                if id < FIRST_USER_ID && id != ROOT_FOLDER {
                    self.found.problem(
                        "catalog file",
                        format!("record {index} of node {node} uses the reserved CNID {id}"),
                    );
                }
                match self.records.entry(id) {
                    Entry::Occupied(_) => {
                        self.found.problem(
                            "catalog file",
                            format!("CNID {id} is used again by record {index} of node {node}"),
                        );
                        return;
                    }
                    Entry::Vacant(v) => {
                        v.insert(record);
                    }
                }
                let c = self.children.entry(parent).or_default();
                c.0 += 1;
                c.1 += u32::from(folder);
                self.largest_id = self.largest_id.max(id);
                self.hard_link_record(id, parent, name, d, (node, index));
                match folder {
                    true if id != ROOT_FOLDER => self.folders += 1,
                    true => {}
                    false => {
                        self.files += 1;
                        self.fork(Owner::Fork(id, 0), &d[88..168]);
                        self.fork(Owner::Fork(id, 0xFF), &d[168..248]);
                    }
                }
            }
            3 | 4 => {
                let len = if d.len() >= 10 {
                    2 * usize::from(be16(d, 8))
                } else {
                    usize::MAX
                };
                let thread_name = d.get(10..10usize.saturating_add(len));
                let (Some(thread_name), true) = (thread_name, name.is_empty()) else {
                    self.found.problem(
                        "catalog file",
                        format!("thread record {index} of node {node} is damaged"),
                    );
                    return;
                };
                let thread = Thread {
                    parent: be32(d, 4),
                    name: hash(thread_name),
                    folder: kind == 3,
                };
                self.largest_id = self.largest_id.max(parent);
                if self.threads.insert(parent, thread).is_some() {
                    self.found.problem(
                        "catalog file",
                        format!("CNID {parent} has two thread records"),
                    );
                }
            }
            _ => self.found.problem(
                "catalog file",
                format!("record {index} of node {node} is of unknown kind {kind}"),
            ),
        }
    }

    /// After the catalog walk: threads against records, valences, the header's counts and
    /// next CNID.
    fn catalog_totals(&mut self) {
        match self.records.get(&ROOT_FOLDER) {
            Some(r) if r.folder && r.parent == ROOT_PARENT => {}
            _ => self
                .found
                .problem("catalog file", "has no root folder (CNID 2 in CNID 1)"),
        }
        let mut ids: Vec<u32> = self.records.keys().copied().collect();
        ids.sort_unstable();
        let mut valences = Vec::new();
        let mut missing = Vec::new();
        for &id in &ids {
            let r = &self.records[&id];
            let thread = self.threads.get(&id);
            let problem = match thread {
                None => {
                    missing.push(id);
                    Some("has no thread record".to_string())
                }
                Some(t) if t.folder != r.folder => {
                    Some("has a thread record of the other kind".into())
                }
                Some(t) if t.parent != r.parent || t.name != r.name => Some(format!(
                    "its thread record names another place (parent CNID {}, the record is in {})",
                    t.parent, r.parent
                )),
                Some(_) => None,
            };
            if let Some(what) = problem {
                let who = self.name(Owner::Fork(id, 0));
                self.found.problem(who, what);
            }
            if r.folder {
                let (all, folders) = self.children.get(&id).copied().unwrap_or_default();
                let wrong_count = r.folder_count.is_some_and(|c| c != folders);
                if r.valence != all || wrong_count {
                    valences.push((id, all, folders));
                }
            }
        }
        for (id, all, folders) in valences {
            let r = &self.records[&id];
            let (valence, count, at) = (r.valence, r.folder_count, r.at);
            let who = self.name(Owner::Fork(id, 0));
            let mut changes = Vec::new();
            if valence != all {
                self.found.problem(
                    &who,
                    format!("its valence says {valence} items, it holds {all}"),
                );
                changes.push((4, all, format!("{who}: valence {valence} → {all}")));
            }
            if let Some(c) = count.filter(|&c| c != folders) {
                self.found.problem(
                    &who,
                    format!("its folder count says {c}, it holds {folders} folders"),
                );
                changes.push((84, folders, format!("{who}: folder count {c} → {folders}")));
            }
            for (field, value, what) in changes {
                if let Some(writes) = self.record_field(at, field, value) {
                    self.found.repairs.push(Repair { what, writes });
                }
            }
        }
        let mut orphans: Vec<u32> = self
            .threads
            .keys()
            .filter(|id| !self.records.contains_key(id))
            .copied()
            .collect();
        orphans.sort_unstable();
        for id in &orphans {
            self.found.problem(
                "catalog file",
                format!(
                    "the thread record of CNID {id} has no file or folder (an orphaned thread)"
                ),
            );
        }
        self.thread_repair(orphans, missing);
        self.found.counted.insert("files", self.files);
        self.found.counted.insert("folders", self.folders);
        let h = self.header.clone();
        for (field, counted, what) in [
            (FILE_COUNT, self.files, "file count"),
            (FOLDER_COUNT, self.folders, "folder count"),
        ] {
            let stated = be32(&h, field);
            if u64::from(stated) != counted {
                self.found.problem(
                    "volume header",
                    format!("its {what} says {stated}, the catalog holds {counted}"),
                );
                self.header_repair(
                    field,
                    counted as u32,
                    format!("volume header: {what} {stated} → {counted}"),
                );
            }
        }
        let next = be32(&h, NEXT_CATALOG_ID);
        if be32(&h, 4) & CNIDS_REUSED == 0 && next <= self.largest_id {
            self.found.problem(
                "volume header",
                format!(
                    "its next CNID is {next}, the catalog uses CNID {}",
                    self.largest_id
                ),
            );
            let new = self.largest_id.saturating_add(1);
            self.header_repair(
                NEXT_CATALOG_ID,
                new,
                format!("volume header: next CNID {next} → {new}"),
            );
        }
    }

    /// The edit that takes the `orphans`' thread records out of the catalog and puts in those
    /// of the records `missing` one, through the B-tree editor and (on a journaled volume) the
    /// journal, as one transaction. The catalog file is not grown: a missing thread is put in
    /// only while the tree's free nodes cover the most an insert can take (a split at every
    /// level and a new root), else it stays a problem.
    fn thread_repair(&mut self, orphans: Vec<u32>, missing: Vec<u32>) {
        let Some(head) = self.catalog.as_deref().and_then(tree_header) else {
            return;
        };
        let (depth, free) = (u32::from(be16(&head, 0)), be32(&head, 26));
        let room = (free / (depth + 2)) as usize;
        let threads: Vec<(String, Vec<u8>)> = missing
            .into_iter()
            .take(room)
            .filter_map(|id| {
                let r = &self.records[&id];
                let name = self.record_units(r.at)?;
                let mut record = write::catalog_key(id, &[]);
                record.extend(thread(if r.folder { 3 } else { 4 }, r.parent, &name));
                Some((self.name(Owner::Fork(id, 0)), record))
            })
            .collect();
        if orphans.is_empty() && threads.is_empty() {
            return;
        }
        let h = &self.header;
        let block = self.block;
        let journal = (be32(h, 4) & JOURNALED != 0 && be32(h, 12) != 0).then(|| be32(h, 12));
        let catalog = self.special[&CATALOG_ID].extents.clone();
        let allocation = self.special[&ALLOCATION_ID].extents.clone();
        let clump = u64::from(be32(h, CATALOG_FORK + 8));
        let (total, binary) = (self.total as u32, self.binary_names);
        self.found.edit = Some(Edit(Box::new(move |volume| {
            let journal = match journal {
                Some(info) => {
                    let mut j = Journal::open(&*volume, block, info)?;
                    if let Some(j) = &mut j {
                        j.initialize(&*volume, u64::from(info) * block)?;
                    }
                    j
                }
                None => None,
            };
            let mut store = Store::new(volume, block, journal);
            let order = edit::KeyOrder::Catalog { binary };
            let what = "HFS+ catalog B-tree";
            let mut tree = TreeFile::open(&mut store, what, catalog, clump, order)?;
            let mut done = Vec::new();
            for id in orphans {
                tree.remove(&mut store, &write::catalog_key(id, &[]))?;
                done.push(format!(
                    "catalog file: removed the orphaned thread record of CNID {id}"
                ));
            }
            if !threads.is_empty() {
                // Only read: the free nodes counted above keep the catalog from growing.
                let mut bitmap = Bitmap::read(&mut store, allocation, total)?;
                for (who, record) in threads {
                    tree.insert(&mut store, &mut bitmap, record)?;
                    done.push(format!("{who}: thread record written"));
                }
            }
            store.commit()?;
            Ok(done)
        })));
    }

    /// Keeps what the hard link check needs of a file or folder record `id` (its data `d`):
    /// a link's iNode and chain, or an iNode's number, link count and first link.
    fn hard_link_record(&mut self, id: u32, parent: u32, name: &[u8], d: &[u8], at: (u32, usize)) {
        let folder = be16(d, 0) == 1;
        let flags = be16(d, 2);
        let link = match (folder, &d[48..56]) {
            (false, FILE_LINK) => Some(false),
            (false, FOLDER_LINK) => Some(true),
            _ => None,
        };
        if let Some(folder) = link {
            let link = HardLink {
                folder,
                inode: be32(d, SPECIAL),
                flags,
                prev: be32(d, PREV_LINK),
                next: be32(d, NEXT_LINK),
            };
            self.links.insert(id, link);
            return;
        }
        let name = utf16_be(name);
        let prefix = if folder { "dir_" } else { "iNode" };
        let Some(n) = name
            .strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok())
        else {
            return;
        };
        self.inodes.push(INode {
            id,
            parent,
            folder,
            number: if folder { id } else { n },
            flags,
            first: if folder { 0 } else { be32(d, FIRST_LINK) },
            links: be32(d, SPECIAL),
            at,
        });
    }

    /// A folder iNode's first link, as its attribute gives it: inline, decimal digits, NUL-ended.
    fn first_link_attribute(&mut self, id: u32, d: &[u8]) {
        let size = d.get(12..16).map_or(0, |s| be32(s, 0) as usize);
        let digits = match (d.get(..4).map(|k| be32(k, 0)), d.get(16..16 + size)) {
            (Some(0x10), Some([digits @ .., 0])) => std::str::from_utf8(digits).ok(),
            _ => None,
        };
        match digits.and_then(|s| s.parse::<u32>().ok()) {
            Some(first) => {
                self.first_links.insert(id, first);
            }
            None => self.found.problem(
                "attributes file",
                format!("attribute {FIRST_LINK_ATTRIBUTE} of CNID {id} holds no link's CNID"),
            ),
        }
    }

    /// The CNID of the private folder `name` at the root, if the volume has one.
    fn private_folder(&self, name: &str) -> Option<u32> {
        let stored: Vec<u8> = name.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let name = hash(&stored);
        self.records
            .iter()
            .find(|(_, r)| r.folder && r.parent == ROOT_FOLDER && r.name == name)
            .map(|(&id, _)| id)
    }

    /// Every hard link against the iNodes (fsck_hfs's checks): each link names an iNode there
    /// is; each iNode's link count is the number of links that name it, and no iNode is named
    /// by none; where the links form a chain, the iNode's first link starts it, each link's
    /// previous link is the one before it, and it takes in every link of the iNode. Links made
    /// before Mac OS X 10.5 have no chain: only their counts are checked.
    fn hard_links(&mut self) {
        let places = [
            self.private_folder(PRIVATE_DATA),
            self.private_folder(PRIVATE_DIRECTORY_DATA),
        ];
        let mut inodes: Vec<INode> = std::mem::take(&mut self.inodes)
            .into_iter()
            .filter(|i| Some(i.parent) == places[usize::from(i.folder)])
            .collect();
        inodes.sort_unstable_by_key(|i| i.id);
        self.found
            .counted
            .insert("hard links", self.links.len() as u64);
        let mut named: HashMap<(bool, u32), Vec<u32>> = HashMap::new();
        let mut ids: Vec<u32> = self.links.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let (folder, number) = (self.links[&id].folder, self.links[&id].inode);
            if inodes
                .iter()
                .any(|i| (i.folder, i.number) == (folder, number))
            {
                named.entry((folder, number)).or_default().push(id);
                continue;
            }
            let (kind, inode) = match folder {
                true => ("folder", format!("folder CNID {number}")),
                false => ("file", format!("iNode{number}")),
            };
            let who = self.name(Owner::Fork(id, 0));
            self.found.problem(
                who,
                format!("is a {kind} hard link to {inode}, which is not in its private folder"),
            );
        }
        for inode in &inodes {
            let links = named
                .remove(&(inode.folder, inode.number))
                .unwrap_or_default();
            let who = self.name(Owner::Fork(inode.id, 0));
            if links.is_empty() {
                self.found
                    .problem(who, "no hard link names it (an orphaned iNode)");
                continue;
            }
            let counted = links.len() as u32;
            if inode.links != counted {
                self.found.problem(
                    &who,
                    format!(
                        "its link count says {}, {counted} hard link{} name{} it",
                        inode.links,
                        if counted == 1 { "" } else { "s" },
                        if counted == 1 { "s" } else { "" }
                    ),
                );
                if let Some(writes) = self.record_field(inode.at, SPECIAL, counted) {
                    let what = format!("{who}: link count {} → {counted}", inode.links);
                    self.found.repairs.push(Repair { what, writes });
                }
            }
            self.link_chain(inode, &who, &links);
        }
    }

    /// The chain of `inode`'s `links` (named `who`), where it has one.
    fn link_chain(&mut self, inode: &INode, who: &str, links: &[u32]) {
        let first = match inode.folder {
            true => self.first_links.get(&inode.id).copied().unwrap_or(0),
            false => inode.first,
        };
        let flagged = |flags: u16| flags & HAS_LINK_CHAIN != 0;
        let chained = flagged(inode.flags)
            || first != 0
            || links.iter().any(|l| {
                let l = &self.links[l];
                flagged(l.flags) || l.prev != 0 || l.next != 0
            });
        if !chained {
            return;
        }
        if !flagged(inode.flags) {
            self.found.problem(
                who,
                "has a chain of hard links but not the flag that says so",
            );
        }
        let mut seen = HashSet::new();
        let (mut before, mut at) = (0u32, first);
        while at != 0 {
            let Some(link) = self.links.get(&at).filter(|_| links.contains(&at)) else {
                self.found.problem(
                    who,
                    format!("its chain of hard links leads to CNID {at}, which is not one of them"),
                );
                break;
            };
            let (prev, next, flags) = (link.prev, link.next, link.flags);
            if !seen.insert(at) {
                let again = self.name(Owner::Fork(at, 0));
                self.found.problem(
                    who,
                    format!("its chain of hard links comes back to {again}"),
                );
                break;
            }
            let here = self.name(Owner::Fork(at, 0));
            if prev != before {
                self.found.problem(
                    &here,
                    format!(
                        "its previous hard link says CNID {prev}, where the chain of {who} has {}",
                        match before {
                            0 => "it first".to_string(),
                            b => format!("CNID {b} before it"),
                        }
                    ),
                );
            }
            if !flagged(flags) {
                self.found.problem(
                    &here,
                    "is in a chain of hard links but lacks the flag that says so",
                );
            }
            (before, at) = (at, next);
        }
        let left_out: Vec<u32> = links
            .iter()
            .filter(|l| !seen.contains(l))
            .copied()
            .collect();
        if let Some(&one) = left_out.first().filter(|_| seen.len() < links.len()) {
            let name = self.name(Owner::Fork(one, 0));
            let more = match left_out.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            self.found.problem(
                who,
                format!("its chain of hard links leaves out {name}{more}"),
            );
        }
    }

    /// Writes putting `value` at `field` of the data of the catalog record at `at`.
    fn record_field(
        &self,
        at: (u32, usize),
        field: usize,
        value: u32,
    ) -> Option<Vec<(u64, Vec<u8>)>> {
        let (file, node_size, map) = self.catalog_bytes.as_ref()?;
        let mut node = vec![0u8; *node_size as usize];
        let node_at = u64::from(at.0) * node_size;
        file.read_exact_at(node_at, &mut node).ok()?;
        let offset_at = node.len().checked_sub(2 * (at.1 + 1))?;
        let start = usize::from(be16(&node, offset_at));
        let data = start + 2 + usize::from(be16(node.get(start..start + 2)?, 0));
        (data + field + 4 <= node.len())
            .then(|| map.writes(node_at + (data + field) as u64, &value.to_be_bytes()))
    }

    /// A repair of one field of the volume header, in it and in its alternate.
    fn header_repair(&mut self, field: usize, value: u32, what: String) {
        let mut writes = vec![(HEADER_AT + field as u64, value.to_be_bytes().to_vec())];
        let size = self.volume.size();
        let mut alternate = [0u8; 2];
        if size >= 1024 + 512
            && self
                .volume
                .read_exact_at(size - 1024, &mut alternate)
                .is_ok()
            && alternate == self.header[..2]
        {
            writes.push((size - 1024 + field as u64, value.to_be_bytes().to_vec()));
        }
        self.found.repairs.push(Repair { what, writes });
    }

    fn attribute_record(&mut self, r: &[u8]) {
        let Some((id, name, d)) = attribute_key(r) else {
            self.found
                .problem("attributes file", "a leaf record has a damaged key");
            return;
        };
        if !self.records.contains_key(&id) && self.catalog.is_some() {
            self.found.problem(
                "attributes file",
                format!("attribute {name} belongs to CNID {id}, which the catalog does not hold"),
            );
        }
        if name == FIRST_LINK_ATTRIBUTE {
            self.first_link_attribute(id, d);
        }
        let extents: Vec<(u32, u32)> = match (d.get(..4).map(|k| be32(k, 0)), d.len()) {
            (Some(0x20), 88..) => Fork::parse(&d[8..88]).extents,
            (Some(0x30), 72..) => (0..8)
                .map(|i| (be32(d, 8 + 8 * i), be32(d, 12 + 8 * i)))
                .filter(|&(_, n)| n > 0)
                .collect(),
            (Some(0x10), _) => Vec::new(),
            _ => {
                self.found.problem(
                    "attributes file",
                    format!("attribute {name} of CNID {id} is of an unknown kind or too short"),
                );
                Vec::new()
            }
        };
        self.add_extents(Owner::Attribute(id), &extents);
    }

    /// Every extent against the others, and the bitmap against them all.
    fn allocation(&mut self, watch: &dyn Watch) -> io::Result<()> {
        let (block, total) = (self.block, self.total);
        if total.div_ceil(8) > MAX_BITMAP {
            self.found.problem(
                "allocation file",
                format!("maps {total} blocks, more than dimg checks"),
            );
            return Ok(());
        }
        // Apple keeps the boot blocks and header (the first 1,536 bytes) and the alternate
        // header (1,024 bytes before the volume's end) allocated.
        self.extents.push(Extent {
            start: 0,
            count: 1535 / block + 1,
            owner: Owner::Reserved,
        });
        let alternate = self.volume.size().saturating_sub(1024) / block;
        if alternate < total {
            self.extents.push(Extent {
                start: alternate,
                count: 1,
                owner: Owner::Reserved,
            });
        }
        self.extents.sort_by_key(|e| (e.start, e.count));
        let mut expected = Bits::new(total);
        let mut overlaps = Vec::new();
        let mut reach: Option<(u64, usize)> = None; // the furthest end so far, and whose
        for (i, e) in self.extents.iter().enumerate() {
            if let Some((end, j)) = reach.filter(|&(end, _)| e.start < end) {
                overlaps.push((j, i, e.start, end.min(e.start + e.count)));
            }
            if reach.is_none_or(|(end, _)| e.start + e.count > end) {
                reach = Some((e.start + e.count, i));
            }
            for b in e.start..(e.start + e.count).min(total) {
                expected.set(b);
            }
        }
        for &(a, b, from, to) in overlaps.iter().take(MAX_LINES) {
            let (a, b) = (
                self.name(self.extents[a].owner),
                self.name(self.extents[b].owner),
            );
            self.found.problem(
                "allocation",
                format!("{a} and {b} both hold blocks {from} to {}", to - 1),
            );
        }
        if overlaps.len() > MAX_LINES {
            self.found.problem(
                "allocation",
                format!("and {} more extents overlap", overlaps.len() - MAX_LINES),
            );
        }
        let used = (0..total).filter(|&b| expected.get(b)).count() as u64;
        self.found.counted.insert("blocks in use", used);
        self.found
            .counted
            .insert("extents", self.extents.len() as u64);
        let free = total - used;
        let stated_free = be32(&self.header, FREE_BLOCKS);
        if u64::from(stated_free) != free {
            self.found.problem(
                "volume header",
                format!("its free block count says {stated_free}, {free} blocks are free"),
            );
            self.header_repair(
                FREE_BLOCKS,
                free as u32,
                format!("volume header: free blocks {stated_free} → {free}"),
            );
        }
        self.bitmap(&expected, watch)
    }

    /// The stored bitmap against the blocks the extents hold, a piece at a time; a piece that
    /// differs is rewritten with the bits past the last block kept as they are.
    fn bitmap(&mut self, expected: &Bits, watch: &dyn Watch) -> io::Result<()> {
        let total = self.total;
        let (bitmap, map) = match self.special_bytes(ALLOCATION_ID) {
            Ok((b, map)) if b.size() >= total.div_ceil(8) => (b, map),
            Ok((b, _)) => {
                self.found.problem(
                    "allocation file",
                    format!(
                        "its {} bytes map fewer than the volume's {total} blocks",
                        b.size()
                    ),
                );
                return Ok(());
            }
            Err(e) => {
                self.found.failed("allocation file", e);
                return Ok(());
            }
        };
        let bytes = total.div_ceil(8);
        watch.begin("Checking the allocation bitmap", bytes);
        let (mut unmarked, mut stray) = ((0u64, 0u64), (0u64, 0u64));
        let mut writes = Vec::new();
        let mut piece = vec![0u8; PIECE as usize];
        for at in (0..bytes).step_by(PIECE as usize) {
            go_on(watch)?;
            let n = PIECE.min(bytes - at) as usize;
            bitmap.read_exact_at(at, &mut piece[..n])?;
            let mut fixed = piece[..n].to_vec();
            for b in at * 8..((at + n as u64) * 8).min(total) {
                let (byte, bit) = ((b / 8 - at) as usize, 0x80u8 >> (b % 8));
                let stored = fixed[byte] & bit != 0;
                match (expected.get(b), stored) {
                    (true, false) => {
                        unmarked = (unmarked.0 + 1, if unmarked.0 == 0 { b } else { unmarked.1 });
                        fixed[byte] |= bit;
                    }
                    (false, true) => {
                        stray = (stray.0 + 1, if stray.0 == 0 { b } else { stray.1 });
                        fixed[byte] &= !bit;
                    }
                    _ => {}
                }
            }
            if fixed != piece[..n] {
                writes.extend(map.writes(at, &fixed));
            }
            watch.advance(at + n as u64);
        }
        if unmarked.0 > 0 {
            let who = self.owner_of(unmarked.1);
            self.found.problem(
                "allocation file",
                format!(
                    "marks {} blocks in use free (the first: block {}, of {who})",
                    unmarked.0, unmarked.1
                ),
            );
        }
        if stray.0 > 0 {
            self.found.problem(
                "allocation file",
                format!(
                    "marks {} free blocks in use (the first: block {})",
                    stray.0, stray.1
                ),
            );
        }
        if !writes.is_empty() {
            let what = format!(
                "allocation file: {} blocks marked in use, {} marked free",
                unmarked.0, stray.0
            );
            self.found.repairs.push(Repair { what, writes });
        }
        Ok(())
    }

    /// Who holds block `b`, by the extents kept.
    fn owner_of(&self, b: u64) -> String {
        self.extents
            .iter()
            .find(|e| e.start <= b && b < e.start + e.count)
            .map_or_else(|| "nothing".into(), |e| self.name(e.owner))
    }

    /// A file or folder's path, or a special file's name, for a problem's line.
    fn name(&self, owner: Owner) -> String {
        let (id, suffix) = match owner {
            Owner::Reserved => return "the boot blocks and volume headers".into(),
            Owner::Attribute(id) => (id, " (an attribute's fork)"),
            Owner::Fork(id, 0xFF) => (id, " (resource fork)"),
            Owner::Fork(id, _) => (id, ""),
        };
        if id < FIRST_USER_ID && id != ROOT_FOLDER && id != ROOT_PARENT {
            return special_name(id).to_string();
        }
        format!("{}{suffix}", self.path(id))
    }

    /// `/`-separated names from the root to CNID `id`, through its records (or its threads
    /// where a record is missing); "CNID n" where neither leads to the root.
    fn path(&self, id: u32) -> String {
        let mut parts = Vec::new();
        let mut at = id;
        while at != ROOT_FOLDER {
            let step = match self.records.get(&at) {
                Some(r) => self.record_name(r.at).map(|name| (r.parent, name)),
                None => self.thread_of(at),
            };
            match step {
                Some((parent, name)) if parts.len() < 256 => {
                    // The private folders' NULs and carriage return, shown as escapes.
                    let shown: String = name
                        .chars()
                        .map(|c| match c {
                            '/' => ":".to_string(),
                            c if c.is_control() => c.escape_default().to_string(),
                            c => c.to_string(),
                        })
                        .collect();
                    parts.push(shown);
                    at = parent;
                }
                _ => return format!("CNID {id}"),
            }
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// The name in the key of the catalog record at `at`.
    fn record_name(&self, at: (u32, usize)) -> Option<String> {
        self.record_units(at).map(|u| String::from_utf16_lossy(&u))
    }

    /// The name in the key of the catalog record at `at`, as stored.
    fn record_units(&self, at: (u32, usize)) -> Option<Vec<u16>> {
        let node = self.catalog.as_ref()?.read_node(at.0).ok()?;
        let r = node.records.get(at.1)?;
        catalog_key(r).map(|(_, name, _)| units(name))
    }

    /// The parent and name CNID `id`'s thread record gives.
    fn thread_of(&self, id: u32) -> Option<(u32, String)> {
        let mut found = None;
        self.catalog
            .as_ref()?
            .scan(
                |r| catalog_key(r).is_some_and(|(p, _, _)| p < id),
                |r| catalog_key(r).is_some_and(|(p, n, _)| p == id && n.is_empty()),
                |r| {
                    let t = catalog_key(r).map(|(_, _, t)| t).unwrap_or_default();
                    if t.len() >= 10 {
                        let len = 2 * usize::from(be16(t, 8));
                        found = t.get(10..10 + len).map(|n| (be32(t, 4), utf16_be(n)));
                    }
                },
            )
            .ok()?;
        found
    }
}

fn special_name(id: u32) -> &'static str {
    match id {
        EXTENTS_ID => "extents overflow file",
        CATALOG_ID => "catalog file",
        BAD_BLOCKS_ID => "bad blocks file",
        ALLOCATION_ID => "allocation file",
        STARTUP_ID => "startup file",
        ATTRIBUTES_ID => "attributes file",
        _ => "a reserved CNID",
    }
}

/// What `counted` calls a tree's leaves.
fn tree_count_name(tree: &str) -> &'static str {
    match tree {
        "catalog file" => "catalog leaf nodes",
        "extents overflow file" => "extents leaf nodes",
        _ => "attributes leaf nodes",
    }
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// A tree's header record (in node 0), when it can be read.
fn tree_header(tree: &BTree) -> Option<Vec<u8>> {
    let head = tree.read_node(0).ok()?;
    head.records.first().filter(|r| r.len() >= 106).cloned()
}

fn tree_node_size(tree: &BTree) -> Option<u64> {
    tree_header(tree).map(|r| u64::from(be16(&r, 18)))
}

/// The catalog's key compare type: 0xBC binary, 0xCF case-folding (HFSX).
fn tree_compare_type(tree: &BTree) -> Option<u8> {
    tree_header(tree).map(|r| r[37])
}

/// Nodes of `node_size` the tree's fork holds.
fn tree_fork_nodes(tree: &BTree, node_size: u64) -> u64 {
    tree.fork_size() / node_size.max(1)
}

/// An extents key's order: (file ID, fork type, start block).
fn extents_key(r: &[u8]) -> Option<(u32, u32, u32)> {
    (r.len() >= 12 && be16(r, 0) >= 10).then(|| (be32(r, 4), u32::from(r[2]), be32(r, 8)))
}

/// An attribute key's order: (file ID, name as stored, start block).
fn attributes_key(r: &[u8]) -> Option<(u32, Vec<u16>, u32)> {
    let key_len = usize::from(be16(r.get(..2)?, 0));
    if key_len < 12 || r.len() < 2 + key_len {
        return None;
    }
    let name = r.get(14..14 + 2 * usize::from(be16(r, 12)))?;
    Some((be32(r, 4), units(name), be32(r, 8)))
}

/// A catalog key's (parent, name) for ordering.
fn catalog_name(r: &[u8]) -> Option<(u32, Vec<u16>)> {
    let (parent, name, _) = catalog_key(r)?;
    Some((parent, units(name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::check::Unwatched;
    use crate::io::{FileSource, WriteAt};

    #[test]
    fn a_write_to_a_fork_is_split_where_its_extents_are() {
        // Two one-block extents of 512 bytes, at blocks 10 and 3.
        let map = ForkMap::new(512, &[(10, 1), (3, 1)]);
        let writes = map.writes(510, &[1, 2, 3, 4]);
        assert_eq!(writes, vec![(5630, vec![1, 2]), (1536, vec![3, 4])]);
        assert!(map.writes(1024, &[1]).is_empty(), "past the fork's end");
    }

    fn problems(volume: &Arc<dyn WriteAt>) -> Vec<String> {
        let found = check(volume.clone(), &Unwatched).unwrap();
        found.problems.iter().map(|p| p.to_string()).collect()
    }

    /// A catalog grown past the 63,488 nodes of 8 KiB its header's map covers (a 496 MiB
    /// catalog) through the B-tree editor gets a map node: the volume checks clean and
    /// fshfsinfo and 7-Zip read it; a bit set in the map node's record for a free node is named.
    #[test]
    fn a_catalog_grown_past_its_header_map_checks_clean() {
        let options = write::Options {
            volume_name: "Mapped".into(),
            block: write::BLOCK,
            case_sensitive: false,
            size: Some(600 << 20),
            tight: false,
            journaled: false,
            seed: None,
        };
        let built = write::build(None, &options, 0).unwrap().volume;
        let image = tempfile::NamedTempFile::new().unwrap();
        image.as_file().set_len(built.size()).unwrap();
        let volume: Arc<dyn WriteAt> = Arc::new(FileSource::open_writable(image.path()).unwrap());
        let mut chunk = vec![0u8; 1 << 20];
        for at in (0..built.size()).step_by(chunk.len()) {
            built.read_exact_at(at, &mut chunk).unwrap();
            if chunk.iter().any(|&b| b != 0) {
                volume.write_all_at(at, &chunk).unwrap();
            }
        }

        let mut header = vec![0u8; 512];
        volume.read_exact_at(HEADER_AT, &mut header).unwrap();
        let fork = |at: usize| vec![(be32(&header, at + 16), be32(&header, at + 20))];
        let block = write::BLOCK;
        let mut store = Store::new(volume.clone(), block, None);
        let blocks = be32(&header, 44);
        let mut bitmap = Bitmap::read(&mut store, fork(ALLOCATION_FORK), blocks).unwrap();
        let order = edit::KeyOrder::Catalog { binary: false };
        let what = "HFS+ catalog B-tree";
        let mut catalog =
            TreeFile::open(&mut store, what, fork(CATALOG_FORK), 512 << 20, order).unwrap();
        catalog.reserve(&mut store, &mut bitmap, 10_000).unwrap();
        let total = u64::from(catalog.total);
        assert!(total > 63_488, "{total} nodes");
        bitmap.write(&mut store).unwrap();
        let held = catalog.extents.iter().map(|e| e.1).sum();
        let f = write::fork_data(catalog.size(), held, &catalog.extents);
        header[CATALOG_FORK..CATALOG_FORK + 8].copy_from_slice(&f[..8]);
        header[CATALOG_FORK + 12..CATALOG_FORK + 80].copy_from_slice(&f[12..]);
        header[48..52].copy_from_slice(&bitmap.free().to_be_bytes());
        store.write(HEADER_AT, &header).unwrap();
        store.commit().unwrap();
        assert_eq!(problems(&volume), Vec::<String>::new());
        let path = image.path().to_str().unwrap();
        for (tool, args) in [("fshfsinfo", ["-H", path]), ("7zz", ["l", path])] {
            let run = dimg_e2e::run_with_input(&dimg_e2e::program(tool), &args, &[]);
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert!(run.status.success(), "{tool}: {stderr}");
        }

        // The map node the header node links to maps nodes 63,488 on; the last is free.
        let catalog_at =
            |offset: u64| extent_pieces(&catalog.extents, block, offset, 1).unwrap()[0].0;
        let mut link = [0u8; 4];
        volume.read_exact_at(catalog_at(0), &mut link).unwrap();
        let map_node = u64::from(be32(&link, 0));
        let bit = total - 1 - 63_488;
        let at = catalog_at(map_node * 8192 + 14 + bit / 8);
        volume.write_all_at(at, &[0x80 >> (bit % 8)]).unwrap();
        let want = format!(
            "marks 1 unused nodes in use (the first: node {})",
            total - 1
        );
        let found = problems(&volume);
        assert!(found.len() == 1 && found[0].contains(&want), "{found:?}");
    }
}
