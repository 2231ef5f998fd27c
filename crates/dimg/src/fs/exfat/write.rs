//! Writing exFAT volumes (Microsoft's exFAT specification), blank or from a folder, as a virtual
//! disk: the boot regions, FAT, allocation bitmap, up-case table and folders are built in memory,
//! the files' bytes read from the folder only when the disk is read. Everything is laid out in
//! tree order from cluster 2, each folder and file in one contiguous run ("NoFatChain"); only
//! the bitmap, up-case table and root are chained in the FAT, as they have no stream extension
//! to say they are contiguous. Times are written in UTC with the offset marked valid; what
//! exFAT cannot hold is refused by name (characters it forbids, names that differ only in
//! case) or, for symlinks, reported.

use super::{
    checksum16, expand_upcase, set_checksum, stamp, table_checksum, ATTR_DIRECTORY, ATTR_READ_ONLY,
    ENTRY, ENTRY_BITMAP, ENTRY_FILE, ENTRY_LABEL, ENTRY_NAME, ENTRY_STREAM, ENTRY_UPCASE,
    MAX_DIR_BYTES, NO_FAT_CHAIN,
};
use crate::error::{Error, Result};
use crate::fs::tree::{NodeKind, SourceFile, Tree};
use crate::io::{Assembly, ReadAt, Zeros};
use std::sync::Arc;

pub struct Options {
    pub volume_name: String,
    /// The volume's size; `None` sizes it from the tree with room to spare.
    pub size: Option<u64>,
}

/// A built volume and what the user should know about how it holds the folder.
pub struct Built {
    pub volume: Arc<dyn ReadAt>,
    pub notes: Vec<String>,
}

const SECTOR_SHIFT: u8 = 9;
const SECTOR: u64 = 1 << SECTOR_SHIFT;
/// The main boot region: boot sector, 8 extended boot sectors, OEM parameters, a reserved
/// sector and the checksum sector. The backup follows it.
const BOOT_SECTORS: usize = 12;
/// Where the FAT starts, in sectors: past both boot regions, on a 64 KiB boundary.
const FAT_OFFSET: u64 = 128;
const MIB: u64 = 1 << 20;
/// The specification's smallest volume.
const MIN_VOLUME: u64 = MIB;
const MAX_CLUSTERS: u64 = 0xFFFF_FFF5;
pub(super) const ATTR_ARCHIVE: u16 = 0x20;
const ALLOCATION_POSSIBLE: u8 = 0x01;
const NAME_UNITS_PER_ENTRY: usize = 15;
pub(super) const END_OF_CHAIN: u32 = 0xFFFF_FFFF;

/// The cluster size Windows and mkfs.exfat choose for a volume of `size` bytes.
fn cluster_for(size: u64) -> u64 {
    match size {
        0..=0x1000_0000 => 4 << 10,
        0x1000_0001..=0x8_0000_0000 => 32 << 10,
        _ => 128 << 10,
    }
}

/// Where a volume of a given size keeps its FAT and heap.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    sectors: u64,
    cluster: u64,
    fat_sectors: u64,
    /// The heap's first sector (on a cluster boundary).
    heap: u64,
    clusters: u64,
}

impl Geometry {
    fn of(size: u64) -> Geometry {
        let sectors = size / SECTOR;
        let cluster = cluster_for(size);
        let per_cluster = cluster / SECTOR;
        // A FAT for every cluster the volume could hold: a little more than the heap needs.
        let fat_sectors = ((sectors / per_cluster + 2) * 4).div_ceil(SECTOR);
        let heap = (FAT_OFFSET + fat_sectors).next_multiple_of(per_cluster);
        let clusters = (sectors.saturating_sub(heap) / per_cluster).min(MAX_CLUSTERS);
        Geometry {
            sectors,
            cluster,
            fat_sectors,
            heap,
            clusters,
        }
    }

    fn clusters_for(&self, bytes: u64) -> u64 {
        bytes.div_ceil(self.cluster)
    }
}

/// The up-case table: each UTF-16 unit's upper case where Unicode gives a single one in the
/// Basic Multilingual Plane, stored compressed (a run of units that map to themselves as 0xFFFF
/// and the run's length).
fn upcase_table() -> Vec<u8> {
    let upper = |u: u32| -> u32 {
        let mut up = char::from_u32(u).map(char::to_uppercase);
        match up.as_mut().map(|up| (up.next(), up.next())) {
            Some((Some(c), None)) if (c as u32) < 0x10000 => c as u32,
            _ => u,
        }
    };
    let mut units: Vec<u16> = Vec::new();
    let mut u = 0u32;
    while u < 0x10000 {
        let run = (u..0x10000)
            .take_while(|&v| upper(v) == v)
            .take(0xFFFF)
            .count() as u32;
        // A lone 0xFFFF is written as a run of one: as a unit it would read as the marker.
        if run > 2 || (run > 0 && u == 0xFFFF) {
            units.extend([0xFFFF, run as u16]);
            u += run;
        } else {
            units.push(upper(u) as u16);
            u += 1;
        }
    }
    units.iter().flat_map(|u| u.to_le_bytes()).collect()
}

/// A name's hash, over its up-cased UTF-16 units, as the stream extension keeps it.
fn name_hash(upper: &[u16]) -> u16 {
    checksum16(upper.iter().flat_map(|u| u.to_le_bytes()))
}

/// Where a node's data is: its first cluster (0 for an empty file) and its length in bytes.
#[derive(Clone, Copy, Default)]
pub(super) struct Placed {
    pub first: u32,
    pub len: u64,
}

/// One entry set: a file entry, its stream extension and its name entries.
pub(super) fn entry_set(
    name: &[u16],
    upcase: &[u16],
    attributes: u16,
    modified: i64,
    at: Placed,
) -> Vec<u8> {
    let mut head = [0u8; 2 * ENTRY];
    let (time, tens, offset) = stamp(modified);
    let file = &mut head[..ENTRY];
    file[0] = ENTRY_FILE;
    file[4..6].copy_from_slice(&attributes.to_le_bytes());
    // Made, modified and opened: the one time the folder gives.
    for at in [8, 12, 16] {
        file[at..at + 4].copy_from_slice(&time.to_le_bytes());
    }
    file[20] = tens;
    file[21] = tens;
    file[22..25].fill(offset);
    let stream = &mut head[ENTRY..];
    stream[0] = ENTRY_STREAM;
    stream[1] = match at.len {
        0 => ALLOCATION_POSSIBLE,
        _ => ALLOCATION_POSSIBLE | NO_FAT_CHAIN,
    };
    stream[8..16].copy_from_slice(&at.len.to_le_bytes());
    stream[20..24].copy_from_slice(&at.first.to_le_bytes());
    stream[24..32].copy_from_slice(&at.len.to_le_bytes());
    named(&head, name, upcase)
}

/// The entry set of the file entry and stream extension `head` (their name fields aside) under
/// `name`: its name entries, the name's length and hash, the count of entries and the checksum.
pub(super) fn named(head: &[u8], name: &[u16], upcase: &[u16]) -> Vec<u8> {
    let names = name.len().div_ceil(NAME_UNITS_PER_ENTRY);
    let mut set = head[..2 * ENTRY].to_vec();
    set.resize(ENTRY * (2 + names), 0);
    set[1] = (1 + names) as u8;
    set[ENTRY + 3] = name.len() as u8;
    let upper: Vec<u16> = name.iter().map(|&u| fold(upcase, u)).collect();
    set[ENTRY + 4..ENTRY + 6].copy_from_slice(&name_hash(&upper).to_le_bytes());
    for (i, chunk) in name.chunks(NAME_UNITS_PER_ENTRY).enumerate() {
        let entry = &mut set[(2 + i) * ENTRY..(3 + i) * ENTRY];
        entry[0] = ENTRY_NAME;
        for (k, u) in chunk.iter().enumerate() {
            entry[2 + 2 * k..4 + 2 * k].copy_from_slice(&u.to_le_bytes());
        }
    }
    seal(&mut set);
    set
}

/// Puts the set's checksum in its file entry.
pub(super) fn seal(set: &mut [u8]) {
    let checksum = set_checksum(set);
    set[2..4].copy_from_slice(&checksum.to_le_bytes());
}

fn fold(upcase: &[u16], u: u16) -> u16 {
    upcase.get(usize::from(u)).copied().unwrap_or(u)
}

/// Entries a folder's listing takes: an entry set per child that exFAT holds (symlinks are
/// left out), and the root's label, bitmap and up-case entries.
fn entries_of(tree: &Tree, dir: usize) -> u64 {
    let sets: u64 = tree
        .children(dir)
        .iter()
        .filter(|&&c| !matches!(tree.nodes[c].kind, NodeKind::Symlink { .. }))
        .map(|&c| {
            let units = tree.nodes[c].name.encode_utf16().count();
            2 + units.div_ceil(NAME_UNITS_PER_ENTRY) as u64
        })
        .sum();
    sets + if dir == 0 { 3 } else { 0 }
}

/// Clusters the tree's folders, files and up-case table take at `cluster` bytes each.
fn data_clusters(tree: &Tree, cluster: u64, upcase: u64) -> u64 {
    let nodes: u64 = (0..tree.nodes.len())
        .map(|i| match tree.nodes[i].kind {
            NodeKind::Directory { .. } => (entries_of(tree, i) * ENTRY as u64)
                .div_ceil(cluster)
                .max(1),
            NodeKind::File { size } => size.div_ceil(cluster),
            NodeKind::Symlink { .. } => 0,
        })
        .sum();
    nodes + upcase.div_ceil(cluster)
}

/// Room for the tree: its clusters and the bitmap's, a tenth more and a MiB for the FAT and
/// boot regions, in whole MiB.
pub fn size_for(tree: &Tree) -> u64 {
    let upcase = upcase_table().len() as u64;
    let mut size = MIN_VOLUME;
    // The cluster size grows with the volume; settle on one that is its own.
    for _ in 0..4 {
        let cluster = cluster_for(size);
        let clusters = data_clusters(tree, cluster, upcase);
        let bitmap = clusters.div_ceil(8 * cluster) + 1;
        let data = (clusters + bitmap) * cluster;
        let want = (data + data / 10 + MIB).next_multiple_of(MIB);
        if want <= size {
            break;
        }
        size = want;
    }
    size
}

/// Refuses, by path, the names exFAT cannot hold (as FAT's long names, with the up-case table
/// for case) and folders of more entries than it allows.
fn check_names(tree: &Tree, upcase: &[u16]) -> Result<()> {
    let upper = |name: &str| -> Vec<u16> { name.encode_utf16().map(|u| fold(upcase, u)).collect() };
    crate::fs::fat::check_names(tree, "exFAT", upper)?;
    for dir in 0..tree.nodes.len() {
        if entries_of(tree, dir) * ENTRY as u64 > MAX_DIR_BYTES {
            return Err(Error::Refused {
                path: tree.nodes[dir].path.clone(),
                reason: "holds more entries than an exFAT folder can (256 MiB of them)".into(),
            });
        }
    }
    Ok(())
}

/// The main boot sector.
fn boot_sector(g: &Geometry, root: u32, serial: u32, used: u64) -> Vec<u8> {
    let mut b = vec![0u8; SECTOR as usize];
    b[..3].copy_from_slice(&[0xEB, 0x76, 0x90]);
    b[3..11].copy_from_slice(b"EXFAT   ");
    b[72..80].copy_from_slice(&g.sectors.to_le_bytes());
    b[80..84].copy_from_slice(&(FAT_OFFSET as u32).to_le_bytes());
    b[84..88].copy_from_slice(&(g.fat_sectors as u32).to_le_bytes());
    b[88..92].copy_from_slice(&(g.heap as u32).to_le_bytes());
    b[92..96].copy_from_slice(&(g.clusters as u32).to_le_bytes());
    b[96..100].copy_from_slice(&root.to_le_bytes());
    b[100..104].copy_from_slice(&serial.to_le_bytes());
    // Revision 1.00.
    b[104..106].copy_from_slice(&[0x00, 0x01]);
    b[108] = SECTOR_SHIFT;
    b[109] = (g.cluster / SECTOR).trailing_zeros() as u8;
    b[110] = 1;
    b[111] = 0x80;
    b[112] = (used * 100 / g.clusters.max(1)) as u8;
    b[510..512].copy_from_slice(&[0x55, 0xAA]);
    b
}

/// The boot region: the boot sector, extended boot sectors, two empty sectors and the checksum
/// sector, whose checksum leaves out the flags and the percentage in use (they change).
fn boot_region(boot: Vec<u8>) -> Vec<u8> {
    let mut region = boot;
    let mut extended = vec![0u8; SECTOR as usize];
    extended[510..512].copy_from_slice(&[0x55, 0xAA]);
    for _ in 0..8 {
        region.extend_from_slice(&extended);
    }
    region.resize(11 * SECTOR as usize, 0);
    let checksum = region
        .iter()
        .enumerate()
        .fold(0u32, |sum, (i, &b)| match i {
            106 | 107 | 112 => sum,
            _ => sum.rotate_right(1).wrapping_add(u32::from(b)),
        });
    region.extend(checksum.to_le_bytes().repeat(SECTOR as usize / 4));
    debug_assert_eq!(region.len(), BOOT_SECTORS * SECTOR as usize);
    region
}

/// Builds an exFAT volume holding `tree` (or, without one, an empty volume).
pub fn build(tree: Option<&Tree>, options: &Options, now: i64) -> Result<Built> {
    let empty;
    let tree = match tree {
        Some(t) => t,
        None => {
            empty = Tree::empty(now);
            &empty
        }
    };
    let root_path = &tree.nodes[0].path;
    let table = upcase_table();
    let upcase = expand_upcase(&table);
    check_names(tree, &upcase)?;
    let notes: Vec<String> = tree
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Symlink { target } => Some(format!(
                "{}: a symlink to {target}, not kept (exFAT has no symbolic links)",
                n.path.display()
            )),
            _ => None,
        })
        .collect();

    let size = match (options.size, tree.nodes.len()) {
        (Some(size), _) => size,
        (None, 1) => 32 * MIB,
        (None, _) => size_for(tree),
    };
    let refuse = |reason: String| Error::Refused {
        path: root_path.clone(),
        reason,
    };
    if size < MIN_VOLUME {
        return Err(refuse(format!(
            "an exFAT volume needs at least {MIN_VOLUME} bytes, not {size}"
        )));
    }
    let g = Geometry::of(size);
    let bitmap_len = g.clusters.div_ceil(8);

    // Clusters in tree order from 2: bitmap, up-case table, root, then every folder and file.
    let mut next = 2u64;
    let mut take = |bytes: u64| {
        let first = next;
        next += g.clusters_for(bytes);
        Placed {
            first: if bytes == 0 { 0 } else { first as u32 },
            len: bytes,
        }
    };
    let bitmap = take(bitmap_len);
    let up = take(table.len() as u64);
    let mut placed = vec![Placed::default(); tree.nodes.len()];
    for (i, node) in tree.nodes.iter().enumerate() {
        placed[i] = match node.kind {
            NodeKind::Directory { .. } => {
                let bytes = (entries_of(tree, i) * ENTRY as u64).max(1);
                take(g.clusters_for(bytes) * g.cluster)
            }
            NodeKind::File { size } => take(size),
            NodeKind::Symlink { .. } => Placed::default(),
        };
    }
    let used = next - 2;
    if used > g.clusters {
        return Err(refuse(format!(
            "does not fit in an exFAT volume of {size} bytes: it needs about {}",
            size_for(tree)
        )));
    }
    let root = placed[0];

    // The FAT: its two reserved entries, then chains for what has no stream extension.
    let chained_end = u64::from(root.first) + g.clusters_for(root.len);
    let mut fat = vec![0u32; chained_end as usize];
    fat[0] = 0xFFFF_FFF8;
    fat[1] = END_OF_CHAIN;
    for run in [bitmap, up, root] {
        let (first, count) = (u64::from(run.first), g.clusters_for(run.len));
        for n in first..first + count {
            fat[n as usize] = match n + 1 == first + count {
                true => END_OF_CHAIN,
                false => n as u32 + 1,
            };
        }
    }

    let mut bitmap_bytes = vec![0u8; bitmap_len as usize];
    bitmap_bytes[..(used / 8) as usize].fill(0xFF);
    if !used.is_multiple_of(8) {
        bitmap_bytes[(used / 8) as usize] = (1u8 << (used % 8)) - 1;
    }

    let table_sum = table_checksum(&table);
    let listing = |dir: usize| -> Vec<u8> {
        let mut out = Vec::new();
        if dir == 0 {
            let mut label = [0u8; ENTRY];
            label[0] = ENTRY_LABEL;
            let units: Vec<u16> = options.volume_name.encode_utf16().take(11).collect();
            label[1] = units.len() as u8;
            for (k, u) in units.iter().enumerate() {
                label[2 + 2 * k..4 + 2 * k].copy_from_slice(&u.to_le_bytes());
            }
            let mut bits = [0u8; ENTRY];
            bits[0] = ENTRY_BITMAP;
            bits[20..24].copy_from_slice(&bitmap.first.to_le_bytes());
            bits[24..32].copy_from_slice(&bitmap.len.to_le_bytes());
            let mut table_entry = [0u8; ENTRY];
            table_entry[0] = ENTRY_UPCASE;
            table_entry[4..8].copy_from_slice(&table_sum.to_le_bytes());
            table_entry[20..24].copy_from_slice(&up.first.to_le_bytes());
            table_entry[24..32].copy_from_slice(&up.len.to_le_bytes());
            out.extend_from_slice(&label);
            out.extend_from_slice(&bits);
            out.extend_from_slice(&table_entry);
        }
        for &c in tree.children(dir) {
            let node = &tree.nodes[c];
            let attributes = match node.kind {
                NodeKind::Directory { .. } => ATTR_DIRECTORY,
                NodeKind::File { .. } if node.mode & 0o222 == 0 => ATTR_ARCHIVE | ATTR_READ_ONLY,
                NodeKind::File { .. } => ATTR_ARCHIVE,
                NodeKind::Symlink { .. } => continue,
            };
            let name: Vec<u16> = node.name.encode_utf16().collect();
            out.extend(entry_set(
                &name,
                &upcase,
                attributes,
                node.modified,
                placed[c],
            ));
        }
        out.resize(placed[dir].len as usize, 0);
        out
    };

    let serial = (now as u32) ^ (tree.nodes.len() as u32).rotate_left(16);
    let boot = boot_region(boot_sector(&g, root.first, serial, used));
    let mut disk = Assembly::default();
    disk.bytes(boot.clone());
    disk.bytes(boot);
    disk.push(Arc::new(Zeros(FAT_OFFSET * SECTOR - disk.size())));
    disk.bytes(fat.iter().flat_map(|e| e.to_le_bytes()).collect());
    disk.push(Arc::new(Zeros(g.heap * SECTOR - disk.size())));
    disk.bytes(bitmap_bytes);
    disk.pad_to(g.cluster);
    disk.bytes(table);
    disk.pad_to(g.cluster);
    for (i, node) in tree.nodes.iter().enumerate() {
        match node.kind {
            NodeKind::Directory { .. } => disk.bytes(listing(i)),
            NodeKind::File { size } => {
                disk.push(Arc::new(SourceFile::new(node.path.clone(), size)));
                disk.pad_to(g.cluster);
            }
            NodeKind::Symlink { .. } => {}
        }
    }
    debug_assert_eq!(disk.size(), g.heap * SECTOR + used * g.cluster);
    disk.push(Arc::new(Zeros(g.sectors * SECTOR - disk.size())));
    Ok(Built {
        volume: disk.finish(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upcase_table_maps_ascii_and_accents_and_keeps_the_rest() {
        let table = upcase_table();
        let map = expand_upcase(&table);
        assert_eq!(map.len(), 0x10000);
        assert_eq!(map[usize::from(b'a')], u16::from(b'A'));
        assert_eq!(map[usize::from(b'A')], u16::from(b'A'));
        assert_eq!(map[0xE9], 0xC9, "é");
        assert_eq!(map[0x3C9], 0x3A9, "ω");
        assert_eq!(map[0xDF], 0xDF, "ß has no single upper case");
        assert_eq!(map[0xD800], 0xD800, "surrogates map to themselves");
        // Compressed: identity runs take two units.
        assert!(table.len() < 12 << 10, "{} bytes", table.len());
    }

    #[test]
    fn name_hashes_are_over_the_upper_case() {
        let upcase = expand_upcase(&upcase_table());
        let upper = |s: &str| -> Vec<u16> { s.encode_utf16().map(|u| fold(&upcase, u)).collect() };
        assert_eq!(
            name_hash(&upper("Read me.txt")),
            name_hash(&upper("READ ME.TXT"))
        );
        assert_ne!(name_hash(&upper("a")), name_hash(&upper("b")));
    }

    #[test]
    fn geometry_keeps_the_fat_before_a_cluster_aligned_heap() {
        for size in [MIB, 40 * MIB, 300 * MIB, 40 << 30] {
            let g = Geometry::of(size);
            let per_cluster = g.cluster / SECTOR;
            assert_eq!(g.heap % per_cluster, 0);
            assert!(g.heap >= FAT_OFFSET + g.fat_sectors);
            assert!(g.fat_sectors * SECTOR >= (g.clusters + 2) * 4);
            assert!(g.heap + g.clusters * per_cluster <= g.sectors);
        }
    }
}
