//! Writing ISO 9660 with Rock Ridge and Joliet (ECMA-119, SUSP/RRIP 1.09, Joliet level 3;
//! formats.md §g). Layout: the system area, the primary and Joliet descriptors, the four path
//! tables, the primary directories (with Rock Ridge), the Joliet directories, the Rock Ridge
//! continuation areas, then every file's data. Rock Ridge carries full names, modes, times and
//! symlinks; Joliet names are cut at 64 UCS-2 characters (reported); primary names are 8.3-ish
//! d-characters, made unique. Deep folders are not relocated, as `mkisofs -D` does not: Linux,
//! 7-Zip, xorriso and libcdio read them in place. Files of 4 GiB and more are multi-extent.

use super::SECTOR;
use crate::error::Result;
use crate::fs::civil;
use crate::fs::tree::{NodeKind, SourceFile, Tree};
use crate::io::{Assembly, ReadAt};
use std::collections::HashSet;
use std::sync::Arc;

/// The largest extent one directory record can describe: 4 GiB less a sector.
const MAX_EXTENT: u64 = 0xFFFF_F800;
const JOLIET_MAX: usize = 64;

/// What the ISO writer needs beyond the tree.
pub struct Options {
    pub volume_name: String,
    /// Another file system's volume that holds the files (a hybrid's HFS+ side): it follows the
    /// ISO metadata, and the ISO tree points at its copy of each file instead of its own.
    pub shared: Option<Shared>,
}

/// A volume whose 2048-aligned file data the ISO tree shares.
pub struct Shared {
    pub volume: Arc<dyn ReadAt>,
    /// Where each node's data starts in `volume`, by node index.
    pub data_at: Vec<Option<u64>>,
}

/// A built volume and what the user should know about how it holds the folder.
pub struct Built {
    pub disk: Arc<dyn ReadAt>,
    pub notes: Vec<String>,
    /// Where the shared volume starts on the disc, in bytes.
    pub shared_at: Option<u64>,
}

fn both16(v: u16) -> [u8; 4] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], b[0], b[1]]
}

fn both32(v: u32) -> [u8; 8] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

/// The 7-byte recording time of a directory record, in UTC.
fn short_time(t: i64) -> [u8; 7] {
    let (y, m, d, h, mi, s) = civil(t);
    let year = (y - 1900).clamp(0, 255) as u8;
    [year, m as u8, d as u8, h as u8, mi as u8, s as u8, 0]
}

/// The 17-byte time of a volume descriptor.
fn long_time(t: i64) -> [u8; 17] {
    let (y, m, d, h, mi, s) = civil(t);
    let text = format!("{:04}{m:02}{d:02}{h:02}{mi:02}{s:02}00", y.clamp(0, 9999));
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(text.as_bytes());
    out
}

/// A d-character version of `s`: upper case, anything else as '_'.
fn d_chars(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| c.to_ascii_uppercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// Primary names ("NAME.EXT;1", folders "NAME"), unique within a folder.
fn primary_names(names: &[(&str, bool)]) -> Vec<String> {
    let mut taken = HashSet::new();
    // Where numbering resumes for a clashing name: thousands of files can share their first
    // eight characters (man pages), and counting from 1 for each would be quadratic.
    let mut next_number: std::collections::HashMap<String, usize> = Default::default();
    names
        .iter()
        .map(|&(name, is_dir)| {
            let (base, ext) = match name.rsplit_once('.') {
                Some((b, e)) if !is_dir && !b.is_empty() => (b, e),
                _ => (name, ""),
            };
            let (base, ext) = (d_chars(base, 8), d_chars(ext, 3));
            let shape = |base: &str| match (is_dir, ext.is_empty()) {
                (true, _) => base.to_string(),
                (false, true) => format!("{base}.;1"),
                (false, false) => format!("{base}.{ext};1"),
            };
            let mut candidate = shape(if base.is_empty() { "_" } else { &base });
            let n = next_number.entry(candidate.clone()).or_insert(1);
            while !taken.insert(candidate.clone()) {
                let tag = format!("_{n}");
                let keep = base.len().min(8 - tag.len());
                candidate = shape(&format!("{}{tag}", &base[..keep]));
                *n += 1;
            }
            candidate
        })
        .collect()
}

/// Joliet names: UCS-2, at most 64 characters, unique within a folder; what had to change is
/// said in `notes`.
fn joliet_names(names: &[&str], folder: &str, notes: &mut Vec<String>) -> Vec<Vec<u16>> {
    let mut taken = HashSet::new();
    names
        .iter()
        .map(|name| {
            let mut units: Vec<u16> = name
                .chars()
                .map(|c| if (c as u32) < 0x10000 && !matches!(c, '*' | '/' | ':' | ';' | '?' | '\\') { c as u32 as u16 } else { u16::from(b'_') })
                .collect();
            let changed = units.len() > JOLIET_MAX || String::from_utf16_lossy(&units) != *name;
            units.truncate(JOLIET_MAX);
            let mut n = 1;
            while !taken.insert(units.clone()) {
                let tag: Vec<u16> = format!("~{n}").encode_utf16().collect();
                units.truncate(JOLIET_MAX - tag.len());
                units.extend(tag);
                n += 1;
            }
            if changed {
                notes.push(format!(
                    "{folder}/{name}: Joliet (what Windows reads) shows it as \"{}\"; Rock Ridge keeps the full name",
                    String::from_utf16_lossy(&units)
                ));
            }
            units
        })
        .collect()
}

/// Rock Ridge entries of one node, in the order they are written.
fn rock_ridge(tree: &Tree, index: usize, name: Option<&str>, root_dot: bool) -> Vec<u8> {
    let node = &tree.nodes[index];
    let mut su = Vec::new();
    if root_dot {
        su.extend_from_slice(&[b'S', b'P', 7, 1, 0xBE, 0xEF, 0]);
    }
    let (kind_bits, links) = match &node.kind {
        NodeKind::Directory { children } => (0o040000, 2 + children.len() as u32),
        NodeKind::Symlink { .. } => (0o120000, 1),
        NodeKind::File { .. } => (0o100000, 1),
    };
    su.extend_from_slice(&[b'P', b'X', 36, 1]);
    for v in [kind_bits | node.mode, links, node.uid, node.gid] {
        su.extend_from_slice(&both32(v));
    }
    su.extend_from_slice(&[b'T', b'F', 12, 1, 0x02]);
    su.extend_from_slice(&short_time(node.modified));
    if let Some(name) = name {
        let bytes = name.as_bytes();
        let pieces: Vec<&[u8]> = bytes.chunks(250).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let more = u8::from(i + 1 < pieces.len());
            su.extend_from_slice(&[b'N', b'M', 5 + piece.len() as u8, 1, more]);
            su.extend_from_slice(piece);
        }
    }
    if let NodeKind::Symlink { target } = &node.kind {
        su.extend(symlink_entries(target));
    }
    if root_dot {
        let (id, des, src) = (&b"RRIP_1991A"[..], &b"ROCK RIDGE"[..], &b"DIMG"[..]);
        su.extend_from_slice(&[b'E', b'R', (8 + id.len() + des.len() + src.len()) as u8, 1]);
        su.extend_from_slice(&[id.len() as u8, des.len() as u8, src.len() as u8, 1]);
        su.extend_from_slice(id);
        su.extend_from_slice(des);
        su.extend_from_slice(src);
    }
    su
}

/// SL entries for a symlink target: its components, split over several entries (and long
/// components over several records) as each holds at most 255 bytes.
fn symlink_entries(target: &str) -> Vec<u8> {
    let mut records: Vec<Vec<u8>> = Vec::new();
    if target.starts_with('/') {
        records.push(vec![0x08, 0]);
    }
    for part in target.split('/').filter(|p| !p.is_empty()) {
        match part {
            "." => records.push(vec![0x02, 0]),
            ".." => records.push(vec![0x04, 0]),
            _ => {
                let pieces: Vec<&[u8]> = part.as_bytes().chunks(240).collect();
                for (i, piece) in pieces.iter().enumerate() {
                    let mut r = vec![u8::from(i + 1 < pieces.len()), piece.len() as u8];
                    r.extend_from_slice(piece);
                    records.push(r);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut entry: Vec<u8> = Vec::new();
    let flush = |entry: &mut Vec<u8>, out: &mut Vec<u8>, more: bool| {
        out.extend_from_slice(&[b'S', b'L', 5 + entry.len() as u8, 1, u8::from(more)]);
        out.append(entry);
    };
    for r in records {
        if 5 + entry.len() + r.len() > 255 {
            flush(&mut entry, &mut out, true);
        }
        entry.extend(r);
    }
    flush(&mut entry, &mut out, false);
    out
}

/// One directory record to be written: its name, what it points at, and its System Use.
struct Record {
    id: Vec<u8>,
    /// The node it describes, or the directory itself for "." and "..".
    node: usize,
    /// For a piece of a multi-extent file: which piece.
    piece: u64,
    last_piece: bool,
    system_use: Vec<u8>,
    /// Where the System Use went when it did not fit (CE): (continuation index).
    continuation: Option<usize>,
}

impl Record {
    fn len(&self) -> usize {
        let base = 33 + self.id.len() + (self.id.len() + 1) % 2;
        base + if self.continuation.is_some() {
            28
        } else {
            self.system_use.len()
        }
    }
}

/// A directory's records as laid out in its sectors; its size is whole sectors.
struct Directory {
    records: Vec<Record>,
    size: u64,
    lba: u32,
}

fn lay_out(records: &[Record]) -> u64 {
    let mut at = 0u64;
    for r in records {
        let len = r.len() as u64;
        if at % SECTOR + len > SECTOR {
            at = at.next_multiple_of(SECTOR);
        }
        at += len;
    }
    at.next_multiple_of(SECTOR).max(SECTOR)
}

/// Builds the volume for `tree`.
pub fn build(tree: &Tree, options: &Options, now: i64) -> Result<Built> {
    let mut notes = Vec::new();
    // Directories in breadth-first order: path table order, and the order they are laid out.
    let mut dirs = vec![0usize];
    let mut parent_of = vec![0usize];
    let mut i = 0;
    while i < dirs.len() {
        for &c in tree.children(dirs[i]) {
            if matches!(tree.nodes[c].kind, NodeKind::Directory { .. }) {
                dirs.push(c);
                parent_of.push(i);
            }
        }
        i += 1;
    }
    let dir_number: std::collections::HashMap<usize, usize> =
        dirs.iter().enumerate().map(|(n, &d)| (d, n)).collect();
    let path_of = |node: usize| tree.nodes[node].path.display().to_string();

    // Every file's extents, numbered in tree order.
    let file_pieces = |size: u64| size.div_ceil(MAX_EXTENT).max(1);

    // Records of both trees.
    let mut primary: Vec<Directory> = Vec::new();
    let mut joliet: Vec<Directory> = Vec::new();
    let mut primary_ids: Vec<Vec<u8>> = vec![vec![0]; dirs.len()];
    let mut joliet_ids: Vec<Vec<u8>> = vec![vec![0]; dirs.len()];
    for (n, &d) in dirs.iter().enumerate() {
        let children = tree.children(d);
        let described: Vec<(&str, bool)> = children
            .iter()
            .map(|&c| {
                let node = &tree.nodes[c];
                (
                    node.name.as_str(),
                    matches!(node.kind, NodeKind::Directory { .. }),
                )
            })
            .collect();
        let names = primary_names(&described);
        let plain: Vec<&str> = described.iter().map(|d| d.0).collect();
        let jnames = joliet_names(&plain, &path_of(d), &mut notes);
        let parent = dirs[parent_of[n]];
        let dot = |node: usize, id: u8, root_dot: bool| Record {
            id: vec![id],
            node,
            piece: 0,
            last_piece: true,
            system_use: rock_ridge(tree, node, None, root_dot),
            continuation: None,
        };
        let mut p_records = vec![dot(d, 0, n == 0), dot(parent, 1, false)];
        let mut j_records = vec![
            Record {
                system_use: Vec::new(),
                ..dot(d, 0, false)
            },
            Record {
                system_use: Vec::new(),
                ..dot(parent, 1, false)
            },
        ];
        let mut order: Vec<usize> = (0..children.len()).collect();
        order.sort_by(|&a, &b| names[a].cmp(&names[b]));
        for k in order {
            let c = children[k];
            let node = &tree.nodes[c];
            let is_dir = matches!(node.kind, NodeKind::Directory { .. });
            if is_dir {
                primary_ids[dir_number[&c]] = names[k].as_bytes().to_vec();
            }
            let pieces = match node.kind {
                NodeKind::File { size } => file_pieces(size),
                _ => 1,
            };
            for piece in 0..pieces {
                p_records.push(Record {
                    id: names[k].as_bytes().to_vec(),
                    node: c,
                    piece,
                    last_piece: piece + 1 == pieces,
                    system_use: rock_ridge(tree, c, Some(&node.name), false),
                    continuation: None,
                });
            }
        }
        let mut order: Vec<usize> = (0..children.len()).collect();
        order.sort_by(|&a, &b| jnames[a].cmp(&jnames[b]));
        for k in order {
            let c = children[k];
            let node = &tree.nodes[c];
            // Joliet has no symlinks: Windows sees them as empty files, as genisoimage writes.
            let is_dir = matches!(node.kind, NodeKind::Directory { .. });
            let id: Vec<u8> = jnames[k].iter().flat_map(|u| u.to_be_bytes()).collect();
            if is_dir {
                joliet_ids[dir_number[&c]] = id.clone();
            }
            let pieces = match node.kind {
                NodeKind::File { size } => file_pieces(size),
                _ => 1,
            };
            for piece in 0..pieces {
                j_records.push(Record {
                    id: id.clone(),
                    node: c,
                    piece,
                    last_piece: piece + 1 == pieces,
                    system_use: Vec::new(),
                    continuation: None,
                });
            }
        }
        primary.push(Directory {
            records: p_records,
            size: 0,
            lba: 0,
        });
        joliet.push(Directory {
            records: j_records,
            size: 0,
            lba: 0,
        });
    }

    // System Use that does not fit in its record moves to a continuation area (CE).
    let mut continuations: Vec<(Vec<u8>, u64)> = Vec::new(); // (bytes, offset in the CE region)
    let mut ce_at = 0u64;
    for dir in &mut primary {
        for r in &mut dir.records {
            if 33 + r.id.len() + (r.id.len() + 1) % 2 + r.system_use.len() > 255 {
                let len = r.system_use.len() as u64;
                if ce_at % SECTOR + len > SECTOR {
                    ce_at = ce_at.next_multiple_of(SECTOR);
                }
                continuations.push((std::mem::take(&mut r.system_use), ce_at));
                r.continuation = Some(continuations.len() - 1);
                ce_at += len;
            }
        }
    }
    let ce_size = ce_at.next_multiple_of(SECTOR);
    for dir in primary.iter_mut().chain(joliet.iter_mut()) {
        dir.size = lay_out(&dir.records);
    }

    // Path tables: (identifier, parent number) per directory; the extents come later.
    let table_size = |ids: &[Vec<u8>]| -> u64 {
        ids.iter()
            .map(|id| 8 + id.len() as u64 + (id.len() as u64 % 2))
            .sum()
    };
    let (p_table, j_table) = (table_size(&primary_ids), table_size(&joliet_ids));
    let sectors = |bytes: u64| bytes.div_ceil(SECTOR).max(1);

    // LBAs.
    let mut lba = 19u64; // 16 primary, 17 Joliet, 18 terminator
    let table_lbas = [
        lba,
        lba + sectors(p_table),
        lba + 2 * sectors(p_table),
        lba + 2 * sectors(p_table) + sectors(j_table),
    ];
    lba += 2 * sectors(p_table) + 2 * sectors(j_table);
    for dir in primary.iter_mut().chain(joliet.iter_mut()) {
        dir.lba = lba as u32;
        lba += dir.size / SECTOR;
    }
    let ce_lba = lba;
    lba += ce_size / SECTOR;
    let shared_lba = lba;
    let mut file_lba = vec![0u64; tree.nodes.len()];
    match &options.shared {
        Some(shared) => {
            for (i, at) in shared.data_at.iter().enumerate() {
                file_lba[i] = shared_lba + at.unwrap_or(0) / SECTOR;
            }
            lba += shared.volume.size().div_ceil(SECTOR);
        }
        None => {
            for (i, node) in tree.nodes.iter().enumerate() {
                file_lba[i] = lba;
                if let NodeKind::File { size } = node.kind {
                    lba += size.div_ceil(SECTOR);
                }
            }
        }
    }
    let total = lba;
    if total > u64::from(u32::MAX) {
        return Err(crate::error::Error::Refused {
            path: tree.nodes[0].path.clone(),
            reason: "holds more than an ISO 9660 volume can address (8 TiB)".into(),
        });
    }

    let dir_extent = |dirs: &[Directory], node: usize| {
        let d = &dirs[dir_number[&node]];
        (d.lba, d.size)
    };
    let record_bytes = |r: &Record, dirs: &[Directory]| -> Vec<u8> {
        let node = &tree.nodes[r.node];
        let is_dir = matches!(node.kind, NodeKind::Directory { .. });
        let (extent, size) = if is_dir {
            dir_extent(dirs, r.node)
        } else {
            match node.kind {
                NodeKind::File { size } => {
                    let start = r.piece * MAX_EXTENT;
                    let len = (size - start.min(size)).min(MAX_EXTENT);
                    let at = file_lba[r.node] + start / SECTOR;
                    // Empty files and symlinks point at the data area with no length.
                    ((if len == 0 { file_lba[r.node] } else { at }) as u32, len)
                }
                _ => (file_lba[r.node] as u32, 0),
            }
        };
        let mut b = Vec::with_capacity(r.len());
        b.push(r.len() as u8);
        b.push(0);
        b.extend_from_slice(&both32(extent));
        b.extend_from_slice(&both32(size as u32));
        b.extend_from_slice(&short_time(node.modified));
        let mut flags = if is_dir { 0x02 } else { 0 };
        if !r.last_piece {
            flags |= 0x80;
        }
        b.push(flags);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&both16(1));
        b.push(r.id.len() as u8);
        b.extend_from_slice(&r.id);
        if r.id.len().is_multiple_of(2) {
            b.push(0);
        }
        match r.continuation {
            Some(c) => {
                let (bytes, at) = &continuations[c];
                b.extend_from_slice(&[b'C', b'E', 28, 1]);
                b.extend_from_slice(&both32((ce_lba + at / SECTOR) as u32));
                b.extend_from_slice(&both32((at % SECTOR) as u32));
                b.extend_from_slice(&both32(bytes.len() as u32));
            }
            None => b.extend_from_slice(&r.system_use),
        }
        b
    };
    let directory_bytes = |dir: &Directory, dirs: &[Directory]| -> Vec<u8> {
        let mut out = Vec::with_capacity(dir.size as usize);
        for r in &dir.records {
            let bytes = record_bytes(r, dirs);
            if out.len() as u64 % SECTOR + bytes.len() as u64 > SECTOR {
                out.resize((out.len() as u64).next_multiple_of(SECTOR) as usize, 0);
            }
            out.extend(bytes);
        }
        out.resize(dir.size as usize, 0);
        out
    };
    let path_table = |ids: &[Vec<u8>], dirs: &[Directory], big: bool| -> Vec<u8> {
        let mut t = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            t.push(id.len() as u8);
            t.push(0);
            let (lba, parent) = (dirs[n].lba, parent_of[n] as u16 + 1);
            if big {
                t.extend_from_slice(&lba.to_be_bytes());
                t.extend_from_slice(&parent.to_be_bytes());
            } else {
                t.extend_from_slice(&lba.to_le_bytes());
                t.extend_from_slice(&parent.to_le_bytes());
            }
            t.extend_from_slice(id);
            if id.len() % 2 == 1 {
                t.push(0);
            }
        }
        t
    };

    let descriptor = |joliet_level: bool, root: &Directory, table_len: u64, tables: (u64, u64)| {
        let mut d = vec![0u8; SECTOR as usize];
        d[0] = if joliet_level { 2 } else { 1 };
        d[1..6].copy_from_slice(b"CD001");
        d[6] = 1;
        let text = |d: &mut [u8], at: usize, len: usize, s: &str| {
            if joliet_level {
                let padded = s.encode_utf16().chain(std::iter::repeat(u16::from(b' ')));
                let bytes: Vec<u8> = padded.flat_map(|u| u.to_be_bytes()).take(len).collect();
                d[at..at + len].copy_from_slice(&bytes);
            } else {
                d[at..at + len].fill(b' ');
                let b = s.as_bytes();
                d[at..at + b.len().min(len)].copy_from_slice(&b[..b.len().min(len)]);
            }
        };
        text(&mut d, 8, 32, "LINUX");
        let volume = if joliet_level {
            options.volume_name.clone()
        } else {
            d_chars(&options.volume_name, 32)
        };
        text(&mut d, 40, 32, &volume);
        d[80..88].copy_from_slice(&both32(total as u32));
        if joliet_level {
            d[88..91].copy_from_slice(b"%/E");
        }
        d[120..124].copy_from_slice(&both16(1));
        d[124..128].copy_from_slice(&both16(1));
        d[128..132].copy_from_slice(&both16(SECTOR as u16));
        d[132..140].copy_from_slice(&both32(table_len as u32));
        d[140..144].copy_from_slice(&(tables.0 as u32).to_le_bytes());
        d[148..152].copy_from_slice(&(tables.1 as u32).to_be_bytes());
        // The root's record, without System Use.
        let mut root_record = vec![34u8, 0];
        root_record.extend_from_slice(&both32(root.lba));
        root_record.extend_from_slice(&both32(root.size as u32));
        root_record.extend_from_slice(&short_time(tree.nodes[0].modified));
        root_record.extend_from_slice(&[0x02, 0, 0]);
        root_record.extend_from_slice(&both16(1));
        root_record.extend_from_slice(&[1, 0]);
        d[156..190].copy_from_slice(&root_record);
        for (at, len) in [
            (190, 128),
            (318, 128),
            (446, 128),
            (702, 37),
            (739, 37),
            (776, 37),
        ] {
            text(&mut d, at, len, "");
        }
        text(&mut d, 574, 128, "DIMG");
        for at in [813, 830] {
            d[at..at + 17].copy_from_slice(&long_time(now));
        }
        for at in [847, 864] {
            d[at..at + 16].fill(b'0');
        }
        d[881] = 1;
        d
    };

    let mut disk = Assembly::default();
    disk.push(Arc::new(crate::io::Zeros(16 * SECTOR)));
    disk.bytes(descriptor(
        false,
        &primary[0],
        p_table,
        (table_lbas[0], table_lbas[1]),
    ));
    disk.bytes(descriptor(
        true,
        &joliet[0],
        j_table,
        (table_lbas[2], table_lbas[3]),
    ));
    let mut terminator = vec![0u8; SECTOR as usize];
    terminator[0] = 255;
    terminator[1..6].copy_from_slice(b"CD001");
    terminator[6] = 1;
    disk.bytes(terminator);
    for (ids, dirs, big) in [
        (&primary_ids, &primary, false),
        (&primary_ids, &primary, true),
        (&joliet_ids, &joliet, false),
        (&joliet_ids, &joliet, true),
    ] {
        disk.bytes(path_table(ids, dirs, big));
        disk.pad_to(SECTOR);
    }
    for dir in &primary {
        disk.bytes(directory_bytes(dir, &primary));
    }
    for dir in &joliet {
        disk.bytes(directory_bytes(dir, &joliet));
    }
    let mut ce = vec![0u8; ce_size as usize];
    for (bytes, at) in &continuations {
        ce[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
    }
    disk.bytes(ce);
    match &options.shared {
        Some(shared) => {
            disk.push(shared.volume.clone());
            disk.pad_to(SECTOR);
        }
        None => {
            for node in &tree.nodes {
                if let NodeKind::File { size } = node.kind {
                    disk.push(Arc::new(SourceFile::new(node.path.clone(), size)));
                    disk.pad_to(SECTOR);
                }
            }
        }
    }
    debug_assert_eq!(disk.size(), total * SECTOR);
    Ok(Built {
        disk: disk.finish(),
        notes,
        shared_at: options.shared.as_ref().map(|_| shared_lba * SECTOR),
    })
}
