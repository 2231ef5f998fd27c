//! Writing a `.DS_Store`: the Finder's per-folder store of window and icon settings. The file is a
//! buddy allocator (blocks of powers of two, addressed from byte 4, a root block listing every
//! block, a table of contents and the free lists) holding one B-tree ("DSDB") of records keyed by
//! (file name, four-letter code), in 4 KiB pages; internal nodes hold records of their own between
//! their children's, as a classic B-tree does.

use std::cmp::Ordering;

/// A record's value, by its four-letter type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `long`: a 32-bit number.
    Long(u32),
    /// `bool`: one byte.
    Bool(bool),
    /// `blob`: bytes (a binary plist, an alias, a bookmark, an icon location).
    Blob(Vec<u8>),
    /// `type`: a four-letter code.
    Type([u8; 4]),
    /// `ustr`: a UTF-16 string.
    Text(String),
}

/// One record: what `code` says of the entry `name` ("." for the folder itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub code: [u8; 4],
    pub value: Value,
}

impl Record {
    fn encode(&self, out: &mut Vec<u8>) {
        let name: Vec<u16> = self.name.encode_utf16().collect();
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        name.iter()
            .for_each(|u| out.extend_from_slice(&u.to_be_bytes()));
        out.extend_from_slice(&self.code);
        match &self.value {
            Value::Long(n) => {
                out.extend_from_slice(b"long");
                out.extend_from_slice(&n.to_be_bytes());
            }
            Value::Bool(b) => {
                out.extend_from_slice(b"bool");
                out.push(u8::from(*b));
            }
            Value::Blob(bytes) => {
                out.extend_from_slice(b"blob");
                out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                out.extend_from_slice(bytes);
            }
            Value::Type(code) => {
                out.extend_from_slice(b"type");
                out.extend_from_slice(code);
            }
            Value::Text(text) => {
                let units: Vec<u16> = text.encode_utf16().collect();
                out.extend_from_slice(b"ustr");
                out.extend_from_slice(&(units.len() as u32).to_be_bytes());
                units
                    .iter()
                    .for_each(|u| out.extend_from_slice(&u.to_be_bytes()));
            }
        }
    }

    /// The Finder's order: names without case, then codes.
    fn order(&self, other: &Record) -> Ordering {
        let fold = |s: &str| s.to_lowercase();
        fold(&self.name)
            .cmp(&fold(&other.name))
            .then_with(|| self.code.cmp(&other.code))
    }
}

/// The Finder's icon location of an item: its centre in the window's content, in points.
pub fn icon_location(x: u32, y: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(16);
    b.extend_from_slice(&x.to_be_bytes());
    b.extend_from_slice(&y.to_be_bytes());
    // What the Finder writes after the point (no grid slot).
    b.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]);
    b
}

const PAGE: usize = 4096;
/// Node header: the rightmost child (0 in a leaf) and the record count.
const NODE_HEADER: usize = 8;

/// A B-tree node being built: its records, and for an internal node the child before each
/// record plus the rightmost child (as indices into the list of nodes).
struct Node {
    records: Vec<Vec<u8>>,
    children: Vec<usize>,
}

/// Packs `records` (encoded, in order) into nodes level by level: a record that does not fit a
/// node closes it and goes up as the separator between it and the next. Gives the nodes, the
/// root's index among them and how many internal levels are above the leaves.
fn build_tree(records: Vec<Vec<u8>>) -> (Vec<Node>, usize, u32) {
    let mut nodes: Vec<Node> = Vec::new();
    // The level being packed: (child node before the record, record), and its last child.
    let mut level: Vec<(Option<usize>, Vec<u8>)> = records.into_iter().map(|r| (None, r)).collect();
    let mut last_child: Option<usize> = None;
    let mut internal_levels = 0;
    loop {
        let pointer = if last_child.is_some() { 4 } else { 0 };
        let mut up: Vec<(Option<usize>, Vec<u8>)> = Vec::new();
        let empty = || Node {
            records: Vec::new(),
            children: Vec::new(),
        };
        let mut current = empty();
        let mut used = NODE_HEADER;
        for (child, record) in level {
            current.children.extend(child);
            if used + pointer + record.len() > PAGE && !current.records.is_empty() {
                // This record separates the full node from the next one.
                nodes.push(std::mem::replace(&mut current, empty()));
                up.push((Some(nodes.len() - 1), record));
                used = NODE_HEADER;
                continue;
            }
            used += pointer + record.len();
            current.records.push(record);
        }
        current.children.extend(last_child);
        nodes.push(current);
        if up.is_empty() {
            let root = nodes.len() - 1;
            return (nodes, root, internal_levels);
        }
        last_child = Some(nodes.len() - 1);
        level = up;
        internal_levels += 1;
    }
}

/// A buddy allocator over the file, from an empty 2 GiB space: blocks of 2^width bytes.
struct Buddy {
    free: [Vec<u32>; 32],
}

impl Buddy {
    fn new() -> Buddy {
        let mut free: [Vec<u32>; 32] = Default::default();
        free[31].push(0);
        Buddy { free }
    }

    fn allocate(&mut self, width: usize) -> u32 {
        let mut w = width;
        while self.free[w].is_empty() {
            w += 1;
        }
        while w > width {
            let offset = self.free[w].remove(0);
            w -= 1;
            self.free[w] = vec![offset, offset | (1 << w)];
        }
        self.free[width].remove(0)
    }
}

/// The width of the smallest block that holds `bytes`.
fn width_for(bytes: usize) -> usize {
    (bytes.next_power_of_two().trailing_zeros() as usize).max(5)
}

/// A `.DS_Store` holding `records` (any order; of records with the same name and code, the
/// first is kept). A record must fit in a page with its node's header and a child pointer.
pub fn write(mut records: Vec<Record>) -> Result<Vec<u8>, String> {
    records.sort_by(|a, b| a.order(b));
    records.dedup_by(|later, earlier| later.order(earlier) == Ordering::Equal);
    let count = records.len() as u32;
    let encoded: Vec<Vec<u8>> = records
        .iter()
        .map(|r| {
            let mut b = Vec::new();
            r.encode(&mut b);
            b
        })
        .collect();
    if let Some((r, _)) = records
        .iter()
        .zip(&encoded)
        .find(|(_, e)| NODE_HEADER + 4 + e.len() > PAGE)
    {
        return Err(format!(
            "the Finder's record {} of \"{}\" is larger than a .DS_Store page",
            String::from_utf8_lossy(&r.code),
            r.name
        ));
    }
    let (nodes, root, levels) = build_tree(encoded);

    // Blocks: 0 the allocator's root block, 1 the tree's header, then one per node. The root
    // block is sized for the block list, the table of contents and the free lists; its width is
    // tried upwards until what it must list fits.
    let blocks = 2 + nodes.len();
    for root_width in 11.. {
        let mut buddy = Buddy::new();
        buddy.allocate(5); // the file header
        let mut addresses = vec![0u32; blocks];
        addresses[0] = buddy.allocate(root_width) | root_width as u32;
        addresses[1] = buddy.allocate(5) | 5;
        for a in addresses.iter_mut().skip(2) {
            *a = buddy.allocate(width_for(PAGE)) | width_for(PAGE) as u32;
        }
        let mut root_block = Vec::new();
        root_block.extend_from_slice(&(blocks as u32).to_be_bytes());
        root_block.extend_from_slice(&0u32.to_be_bytes());
        for a in &addresses {
            root_block.extend_from_slice(&a.to_be_bytes());
        }
        root_block.resize(8 + 4 * blocks.next_multiple_of(256), 0);
        root_block.extend_from_slice(&1u32.to_be_bytes());
        root_block.push(4);
        root_block.extend_from_slice(b"DSDB");
        root_block.extend_from_slice(&1u32.to_be_bytes());
        for list in &buddy.free {
            root_block.extend_from_slice(&(list.len() as u32).to_be_bytes());
            list.iter()
                .for_each(|o| root_block.extend_from_slice(&o.to_be_bytes()));
        }
        if root_block.len() > 1 << root_width {
            continue;
        }

        let place = |file: &mut Vec<u8>, address: u32, bytes: &[u8]| {
            let at = 4 + (address & !0x1F) as usize;
            let size = 1usize << (address & 0x1F);
            if file.len() < at + size {
                file.resize(at + size, 0);
            }
            file[at..at + bytes.len()].copy_from_slice(bytes);
        };
        let mut file = Vec::new();
        let root_at = addresses[0] & !0x1F;
        let mut header = Vec::with_capacity(36);
        header.extend_from_slice(&1u32.to_be_bytes());
        header.extend_from_slice(b"Bud1");
        header.extend_from_slice(&root_at.to_be_bytes());
        header.extend_from_slice(&(1u32 << root_width).to_be_bytes());
        header.extend_from_slice(&root_at.to_be_bytes());
        // What the Finder writes in the header's last 16 bytes.
        header.extend_from_slice(&[
            0, 0, 0x10, 0x0C, 0, 0, 0, 0x87, 0, 0, 0x20, 0x0B, 0, 0, 0, 0,
        ]);
        file.extend_from_slice(&header);
        place(&mut file, addresses[0], &root_block);
        let mut tree_header = Vec::with_capacity(20);
        for n in [
            (2 + root) as u32,
            levels,
            count,
            nodes.len() as u32,
            PAGE as u32,
        ] {
            tree_header.extend_from_slice(&n.to_be_bytes());
        }
        place(&mut file, addresses[1], &tree_header);
        for (i, node) in nodes.iter().enumerate() {
            let block = |child: usize| (2 + child) as u32;
            let mut page = Vec::with_capacity(PAGE);
            let rightmost = match node.children.len() > node.records.len() {
                true => block(*node.children.last().expect("a child")),
                false => 0,
            };
            page.extend_from_slice(&rightmost.to_be_bytes());
            page.extend_from_slice(&(node.records.len() as u32).to_be_bytes());
            for (j, record) in node.records.iter().enumerate() {
                if rightmost != 0 {
                    page.extend_from_slice(&block(node.children[j]).to_be_bytes());
                }
                page.extend_from_slice(record);
            }
            place(&mut file, addresses[2 + i], &page);
        }
        return Ok(file);
    }
    unreachable!("a root block of 2^31 bytes lists any number of 4 KiB pages a file can hold")
}
