//! First Aid for APFS (`dimg verify -fs`): the container at its checkpoint, every object of it
//! read with its checksum — object maps, volume superblocks, every node of every tree — the trees'
//! records in key order, the space manager's bitmaps against every block something uses, and
//! each volume's counts against the inodes its tree holds. It repairs nothing.

use super::block::{Blocks, FS, OMAP};
use super::btree::{node, Pointers};
use super::checkpoint::{bit, Container};
use super::{key_of, DIR_REC, FILE_EXTENT, INCOMPAT_CASE_INSENSITIVE, INODE, XATTR};
use super::{FS_UNENCRYPTED, INCOMPAT_NORMALIZATION_INSENSITIVE};
use crate::bytes::{le16, le32, le64};
use crate::error::FormatError;
use crate::fs::check::{go_on, Bits, Findings, Watch};
use crate::io::ReadAt;
use std::io;
use std::sync::Arc;

/// Problem lines of one kind, at most; the rest are counted in one more.
const MAX_LINES: usize = 20;
/// Record types of the file-system and extent-reference trees beside those the reader walks.
const PHYS_EXTENT: u8 = 2;
const SIBLING_LINK: u8 = 5;
/// Inode ids below this are the file system's own (the root and private folders).
const FIRST_USER_ID: u64 = 16;

/// What orders a tree's records: object id, type, a number (a transaction, a name's hash, an
/// offset, a sibling id) and a name.
type Order = (u64, u8, u64, Vec<u8>);

/// The order of a tree keyed by object id and type alone (extent references, snapshots).
fn by_id(k: &[u8]) -> Order {
    let (id, kind) = key_of(k);
    (id, kind, 0, Vec::new())
}

/// Checks the APFS container at the start of `part`.
pub fn check(part: Arc<dyn ReadAt>, watch: &dyn Watch) -> io::Result<Findings> {
    let container = Container::open(part)?;
    let blocks = &container.blocks;
    let held = blocks.disk().size() / blocks.size;
    let total = blocks.count.min(held);
    let mut c = Checker {
        container: &container,
        found: Findings::default(),
        used: Bits::new(total),
        total,
        outside: Vec::new(),
        nodes: 0,
    };
    if blocks.count > held {
        c.found.problem(
            "container superblock",
            format!("says {} blocks, the container holds {held}", blocks.count),
        );
    }
    c.container_areas();
    c.free_queues();
    watch.begin("Checking the container object map", 0);
    let omap_at = le64(&container.superblock, 160);
    c.object_map(omap_at, "container object map");
    for (i, &oid) in container.volume_oids.iter().enumerate() {
        go_on(watch)?;
        watch.begin(&format!("Checking volume {}", i + 1), 0);
        match container.omap.lookup(blocks, oid, container.xid) {
            Ok(Some(paddr)) => c.volume(paddr, i + 1),
            Ok(None) => c.found.problem(
                "container object map",
                format!("has no block for volume object {oid}"),
            ),
            Err(e) => c.found.failed("container object map", e),
        }
    }
    go_on(watch)?;
    watch.begin("Checking the space manager", 0);
    c.space();
    c.found.counted.insert("tree nodes", c.nodes);
    Ok(c.found)
}

struct Checker<'a> {
    container: &'a Container,
    found: Findings,
    /// Every block something in use holds.
    used: Bits,
    /// Blocks of the container the image holds.
    total: u64,
    /// Blocks named as in use that lie past the container's end: (by what, block).
    outside: Vec<(&'static str, u64)>,
    nodes: u64,
}

impl Checker<'_> {
    /// A structure that could not be read: what the reader found wrong with it, under `what`.
    fn failed(&mut self, what: &str, e: io::Error) {
        match e.get_ref().and_then(|i| i.downcast_ref::<FormatError>()) {
            Some(f) => self.found.problem(what, f.problem.clone()),
            None => self.found.failed(what, e),
        }
    }

    fn blocks(&self) -> &Blocks {
        &self.container.blocks
    }

    /// Marks `count` blocks from `start` as held by `what`.
    fn mark(&mut self, what: &'static str, start: u64, count: u64) {
        for b in start..start.saturating_add(count) {
            if b >= self.total {
                self.outside.push((what, b));
                return;
            }
            self.used.set(b);
        }
    }

    /// What the container itself keeps: block 0, the checkpoint areas, the internal pool and
    /// its bitmaps, the keybag.
    fn container_areas(&mut self) {
        let sb = self.container.superblock.clone();
        self.mark("container superblock", 0, 1);
        let (desc, data) = (le32(&sb, 104), le32(&sb, 108));
        // A checkpoint area kept as a tree of blocks (the high bit) is not checked here.
        if desc & (1 << 31) == 0 {
            self.mark("checkpoint descriptor area", le64(&sb, 112), desc.into());
        }
        if data & (1 << 31) == 0 {
            self.mark("checkpoint data area", le64(&sb, 120), data.into());
        }
        if let Some(sm) = self.container.space_manager().map(<[u8]>::to_vec) {
            self.mark("internal pool", le64(&sm, 176), le64(&sm, 152));
            self.mark(
                "internal pool bitmaps",
                le64(&sm, 168),
                le32(&sm, 164).into(),
            );
        }
        self.mark("container keybag", le64(&sb, 1296), le64(&sb, 1304));
        let c = self.container;
        for &(_, _, paddr) in &c.ephemeral {
            if let Err(e) = c.blocks.checked(paddr, "APFS checkpoint object") {
                self.failed("checkpoint", e);
            }
        }
    }

    /// The space manager's free queues: blocks freed whose bits are cleared only later, in
    /// use until then.
    fn free_queues(&mut self) {
        let Some(sm) = self.container.space_manager().map(<[u8]>::to_vec) else {
            return;
        };
        let placed = self.container.ephemeral.clone();
        for queue in 0..3 {
            let root = le64(&sm, 208 + 40 * queue);
            if root == 0 {
                continue;
            }
            let mut pending = Vec::new();
            self.tree(
                Pointers::Ephemeral(&placed),
                root,
                "free queue",
                &|k| (le64(k, 0), 0, le64(k, 8), Vec::new()),
                &mut |k, v| {
                    // A record without a value is a ghost: one block.
                    let count = if v.len() >= 8 { le64(v, 0) } else { 1 };
                    pending.push((le64(k, 8), count));
                },
            );
            for (block, count) in pending {
                self.mark("free queue", block, count);
            }
        }
    }

    /// An object map at block `paddr`: its object and tree, the tree's entries in order.
    /// Returns its entries' blocks: (object id, block, flags).
    fn object_map(&mut self, paddr: u64, what: &'static str) -> Vec<(u64, u64, u32)> {
        let omap = match self.blocks().object(paddr, OMAP, what) {
            Ok(b) => b,
            Err(e) => {
                self.failed(what, e);
                return Vec::new();
            }
        };
        self.mark(what, paddr, 1);
        let mut entries = Vec::new();
        self.tree(
            Pointers::Physical,
            le64(&omap, 48),
            what,
            &|k| (le64(k, 0), 0, le64(k, 8), Vec::new()),
            &mut |_, v| {
                if v.len() >= 16 {
                    entries.push((0, le64(v, 8), le32(v, 0)));
                }
            },
        );
        entries
    }

    /// Every node of the tree at `root`: read and checksummed, its block marked, its records
    /// in the order `order` gives them (strictly rising across the leaves); each leaf record is
    /// given to `each` with its key.
    fn tree(
        &mut self,
        pointers: Pointers,
        root: u64,
        what: &'static str,
        order: &dyn Fn(&[u8]) -> Order,
        each: &mut dyn FnMut(&[u8], &[u8]),
    ) {
        let blocks = &self.container.blocks;
        let mut last: Option<Order> = None;
        let mut disorder = 0usize;
        let mut stack = vec![(root, None::<u16>)];
        let mut visited = 0u64;
        while let Some((oid, level)) = stack.pop() {
            visited += 1;
            if visited > self.total {
                self.found.problem(
                    what,
                    "a walk of it met more nodes than the container has blocks",
                );
                return;
            }
            let read = pointers
                .resolve(blocks, oid, what)
                .and_then(|(paddr, key)| Ok((paddr, node(blocks, paddr, what, key)?)));
            let (paddr, n) = match read {
                Ok(found) => found,
                Err(e) => {
                    self.failed(what, e);
                    continue;
                }
            };
            self.nodes += 1;
            self.mark(what, paddr, 1);
            if level.is_none() && !n.root {
                self.found
                    .problem(what, format!("its root, block {paddr}, is not a root node"));
            }
            if level.is_some_and(|l| n.level + 1 != l) {
                self.found.problem(
                    what,
                    format!(
                        "node {paddr} is at level {} under a node at level {}",
                        n.level,
                        level.unwrap_or(0)
                    ),
                );
                continue;
            }
            let mut previous: Option<Order> = None;
            for i in 0..n.len() {
                let key = order(n.key(i));
                if previous.as_ref().is_some_and(|p| *p >= key) {
                    disorder += 1;
                    if disorder <= MAX_LINES {
                        self.found.problem(
                            what,
                            format!("node {paddr}: record {i} is out of key order"),
                        );
                    }
                }
                previous = Some(key.clone());
                if n.level == 0 {
                    if last.as_ref().is_some_and(|l| *l >= key) && i == 0 {
                        disorder += 1;
                        if disorder <= MAX_LINES {
                            self.found.problem(
                                what,
                                format!("node {paddr}: its first record is not after the last of the node before"),
                            );
                        }
                    }
                    each(n.key(i), n.value(i));
                    last = Some(key);
                }
            }
            // Children in reverse, so that the first is walked first and leaves come in order.
            if n.level > 0 {
                for i in (0..n.len()).rev() {
                    match n.child(i) {
                        Some(child) => stack.push((child, Some(n.level))),
                        None => self.found.problem(
                            what,
                            format!("node {paddr}: index record {i} names no child"),
                        ),
                    }
                }
            }
        }
        if disorder > MAX_LINES {
            self.found.problem(
                what,
                format!(
                    "and {} more records are out of key order",
                    disorder - MAX_LINES
                ),
            );
        }
    }

    /// Volume `number`, its superblock at block `paddr`.
    fn volume(&mut self, paddr: u64, number: usize) {
        let what = "volume superblock";
        let sb = match self.blocks().object(paddr, FS, what) {
            Ok(sb) => sb,
            Err(e) => {
                self.failed(what, e);
                return;
            }
        };
        self.mark(what, paddr, 1);
        let encrypted = le64(&sb, 264) & FS_UNENCRYPTED == 0;
        if encrypted {
            let uuid: [u8; 16] = sb[240..256].try_into().expect("16 bytes");
            let c = self.container;
            match c.keylocker.volume_keybag(&c.blocks, &uuid) {
                Ok((block, count)) => self.mark("volume keybag", block, count),
                Err(e) => self.failed("container keybag", e),
            }
        }
        let before = self.used_count();
        let mapped = self.object_map(le64(&sb, 128), "volume object map");
        // The objects the map names (the file-system tree's nodes) are the volume's, read or
        // not: an encrypted volume's cannot be without its password.
        for &(_, block, _) in &mapped {
            self.mark("volume object", block, 1);
        }
        let mut extents = Vec::new();
        self.tree(
            Pointers::Physical,
            le64(&sb, 144),
            "extent-reference tree",
            &by_id,
            &mut |k, v| {
                let (block, kind) = key_of(k);
                if kind == PHYS_EXTENT && v.len() >= 8 {
                    extents.push((block, le64(v, 0) & 0x0FFF_FFFF_FFFF_FFFF));
                }
            },
        );
        for (block, count) in extents {
            self.mark("file extent", block, count);
        }
        if le64(&sb, 152) != 0 {
            self.tree(
                Pointers::Physical,
                le64(&sb, 152),
                "snapshot metadata tree",
                &by_id,
                &mut |_, _| {},
            );
        }
        if !encrypted {
            self.file_system(&sb, number);
        } else {
            *self.found.counted.entry("locked volumes").or_default() += 1;
        }
        let stated = le64(&sb, 88);
        let counted = self.used_count() - before;
        if stated != counted {
            self.found.problem(
                format!("volume {number}"),
                format!("its superblock says it holds {stated} blocks, its structures and files hold {counted}"),
            );
        }
    }

    fn used_count(&self) -> u64 {
        (0..self.total).filter(|&b| self.used.get(b)).count() as u64
    }

    /// A readable volume's file-system tree: its records in order, its inodes counted against
    /// its superblock, its files' extents marked.
    fn file_system(&mut self, sb: &[u8], number: usize) {
        let omap = match super::btree::Omap::open(self.blocks(), le64(sb, 128), "volume object map")
        {
            Ok(m) => m,
            Err(e) => return self.failed("volume object map", e),
        };
        let incompat = le64(sb, 56);
        let hashed =
            incompat & (INCOMPAT_CASE_INSENSITIVE | INCOMPAT_NORMALIZATION_INSENSITIVE) != 0;
        let order = move |k: &[u8]| -> Order {
            let (id, kind) = key_of(k);
            let tail = k.get(8..).unwrap_or_default();
            let number = |at: usize| tail.get(at..at + 8).map_or(0, |b| le64(b, 0));
            match kind {
                DIR_REC if hashed => (
                    id,
                    kind,
                    u64::from(tail.get(..4).map_or(0, |b| le32(b, 0)) >> 10),
                    tail.get(4..).unwrap_or_default().to_vec(),
                ),
                DIR_REC | XATTR => (id, kind, 0, tail.get(2..).unwrap_or_default().to_vec()),
                FILE_EXTENT | SIBLING_LINK => (id, kind, number(0), Vec::new()),
                _ => (id, kind, 0, Vec::new()),
            }
        };
        let problems = self.found.problems.len();
        let mut counts = [0u64; 4];
        let mut extents = Vec::new();
        let size = self.blocks().size;
        self.tree(
            Pointers::Virtual(&omap, self.container.xid, None),
            le64(sb, 136),
            "file-system tree",
            &order,
            &mut |k, v| {
                let (id, kind) = key_of(k);
                if kind == INODE && v.len() >= 92 && id >= FIRST_USER_ID {
                    let slot = match le16(v, 80) & 0o170000 {
                        0o100000 => 0,
                        0o040000 => 1,
                        0o120000 => 2,
                        _ => 3,
                    };
                    counts[slot] += 1;
                }
                if kind == FILE_EXTENT && v.len() >= 16 && le64(v, 8) != 0 {
                    let len = le64(v, 0) & 0x00FF_FFFF_FFFF_FFFF;
                    extents.push((le64(v, 8), len.div_ceil(size)));
                }
            },
        );
        // Every block a file's extents name is in use: one the bitmaps call free is found when
        // they are compared.
        for (block, count) in extents {
            self.mark("file extent", block, count);
        }
        // A tree that could not be read whole has counts that say nothing more.
        let whole = self.found.problems.len() == problems;
        let names = ["files", "folders", "symlinks", "other files"];
        for (i, (&counted, name)) in counts.iter().zip(names).enumerate() {
            let stated = le64(sb, 184 + 8 * i);
            if counted > 0 || i < 2 {
                *self.found.counted.entry(name).or_default() += counted;
            }
            if whole && stated != counted {
                self.found.problem(
                    format!("volume {number}"),
                    format!("its superblock counts {stated} {name}, its tree holds {counted}"),
                );
            }
        }
    }

    /// The space manager's bitmaps and free counts against the blocks in use.
    fn space(&mut self) {
        let what = "space manager";
        for &(by, block) in self.outside.iter().take(MAX_LINES) {
            self.found.problem(
                what,
                format!(
                    "{by} names block {block}, past the container's {} blocks",
                    self.total
                ),
            );
        }
        let chunks = match self.container.chunks() {
            Ok(c) => c,
            Err(e) => return self.failed(what, e),
        };
        // The counts are held against the blocks in use, as the bitmaps are: a wrong bit and a
        // wrong count are each named once.
        let (mut marked_free, mut unowned) = (Vec::new(), Vec::new());
        let mut free_total = 0u64;
        for chunk in &chunks {
            let mut free = 0u64;
            for b in 0..chunk.blocks {
                let block = chunk.start + b;
                let allocated = chunk.bitmap.as_ref().is_some_and(|m| bit(m, b));
                let used = block < self.total && self.used.get(block);
                free += u64::from(!used);
                match (allocated, used) {
                    (false, true) => marked_free.push(block),
                    (true, false) => unowned.push(block),
                    _ => {}
                }
            }
            free_total += free;
            if free != chunk.free {
                self.found.problem(
                    what,
                    format!(
                        "the chunk at block {} counts {} free blocks, {free} are free",
                        chunk.start, chunk.free
                    ),
                );
            }
        }
        for (blocks, one, many) in [
            (
                &marked_free,
                "is in use but marked free",
                "are in use but marked free",
            ),
            (
                &unowned,
                "is marked in use but used by nothing",
                "are marked in use but used by nothing",
            ),
        ] {
            match blocks[..] {
                [] => {}
                [only] => self.found.problem(what, format!("block {only} {one}")),
                [first, ..] => self.found.problem(
                    what,
                    format!("{} blocks {many} (the first: block {first})", blocks.len()),
                ),
            }
        }
        let stated = self.container.free_blocks().unwrap_or(0);
        if stated != free_total {
            self.found.problem(
                what,
                format!("its free block count says {stated}, {free_total} blocks are free"),
            );
        }
        self.found
            .counted
            .insert("blocks in use", self.used_count());
    }
}
