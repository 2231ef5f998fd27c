//! Writing FAT volumes (FAT12/16 for small sizes, FAT32 otherwise or when asked) with long names,
//! through the `fatfs` crate, into a file: fatfs needs a read-write device. Times are kept (FAT
//! counts two-second steps from 1980); what FAT cannot hold is refused by name (characters it
//! forbids, names that differ only in case) or, for symlinks, reported.

use super::{Layout, Root, ATTR_DIRECTORY, ATTR_LONG_NAME, ENTRY};
use crate::error::{Error, Result};
use crate::fs::civil;
use crate::fs::tree::{NodeKind, Tree};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

pub struct Options {
    pub volume_name: String,
    /// Force FAT32; otherwise the size decides, as mkfs.fat does.
    pub fat32: bool,
    /// The volume's size; `None` sizes it from the tree with room to spare.
    pub size: Option<u64>,
}

const MIB: u64 = 1 << 20;
/// FAT32 needs 65,525 clusters: at 512 bytes each, about 33 MiB.
const FAT32_MIN: u64 = 34 * MIB;

/// Room for the tree: every file rounded up to 4 KiB clusters, a cluster per folder, a tenth
/// more, and a MiB for the tables.
pub fn size_for(tree: &Tree, fat32: bool) -> u64 {
    let data: u64 = tree
        .nodes
        .iter()
        .map(|n| match n.kind {
            NodeKind::File { size } => size.next_multiple_of(4096).max(4096),
            _ => 4096,
        })
        .sum();
    let size = (data + data / 10 + 2 * MIB).next_multiple_of(MIB);
    size.max(if fat32 { FAT32_MIN } else { 2 * MIB })
}

pub(super) fn fat_time(t: i64) -> fatfs::DateTime {
    let (y, m, d, h, mi, s) = civil(t.clamp(315_532_800, 4_354_819_198));
    fatfs::DateTime {
        date: fatfs::Date {
            year: y as u16,
            month: m as u16,
            day: d as u16,
        },
        time: fatfs::Time {
            hour: h as u16,
            min: mi as u16,
            sec: s as u16,
            millis: 0,
        },
    }
}

/// The 11-byte label: upper case, what FAT forbids as '_'.
fn label(name: &str) -> [u8; 11] {
    let mut out = [b' '; 11];
    for (o, c) in out.iter_mut().zip(name.chars()) {
        let c = c.to_ascii_uppercase();
        *o = if c.is_ascii_alphanumeric() || " !#$%&'()-@^_`{}~".contains(c) {
            c as u8
        } else {
            b'_'
        };
    }
    out
}

/// Writes a FAT volume holding `tree` (or, without one, an empty volume) into `file`, which
/// must be empty. Returns what the user should know.
pub fn write(file: &mut File, tree: Option<&Tree>, options: &Options) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    if let Some(tree) = tree {
        check_names(tree, "FAT", str::to_lowercase)?;
    }
    let size = match (options.size, tree) {
        (Some(size), _) => size,
        (None, Some(tree)) => size_for(tree, options.fat32),
        (None, None) => 32 * MIB,
    };
    let here = Path::new("the new volume");
    file.set_len(size).map_err(|e| Error::io(here, e))?;
    let mut format = fatfs::FormatVolumeOptions::new().volume_label(label(&options.volume_name));
    if options.fat32 {
        format = format.fat_type(fatfs::FatType::Fat32);
    }
    fatfs::format_volume(&mut *file, format).map_err(|e| Error::Refused {
        path: here.into(),
        reason: format!("cannot be formatted as FAT at {size} bytes: {e}"),
    })?;
    if let Some(tree) = tree {
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(0))
            .map_err(|e| Error::io(here, e))?;
        let fs = fatfs::FileSystem::new(&mut *file, fatfs::FsOptions::new())
            .map_err(|e| Error::io(here, e))?;
        write_tree(&fs, tree, size, &mut notes)?;
        fs.unmount().map_err(|e| Error::io(here, e))?;
        fix_dot_entries(file).map_err(|e| Error::io(here, e))?;
    }
    Ok(notes)
}

/// fatfs 0.3 writes a long-name entry before each new folder's "." and "..", so they are not the
/// folder's first two entries as FAT requires (fsck.fat moves them, some systems reject the
/// folder). Every folder's first four slots become ".", "..", and two deleted entries.
fn fix_dot_entries(file: &File) -> io::Result<()> {
    use crate::bytes::le16;
    use std::os::unix::fs::FileExt;
    let mut boot = vec![0u8; 64];
    file.read_exact_at(&mut boot, 0)?;
    let layout = Layout::read(&boot)?;
    // The next cluster after `n`, or None where its chain ends.
    let next = |n: u64| -> io::Result<Option<u64>> {
        let (at, len) = layout.entry_at(n);
        let mut bytes = [0u8; 4];
        file.read_exact_at(&mut bytes[..len], layout.fat + at)?;
        let value = layout.decode(n, &bytes);
        Ok((value >= 2 && !layout.ends_chain(value)).then_some(u64::from(value)))
    };
    // A folder's bytes, cluster by cluster (a bounded walk: chains cannot loop it).
    let read_chain = |first: u64| -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut n = Some(first);
        for _ in 0..layout.clusters {
            let Some(c) = n else { break };
            let (at, len) = layout.span(c, c + 1);
            let mut bytes = vec![0u8; len as usize];
            file.read_exact_at(&mut bytes, at)?;
            out.extend(bytes);
            n = next(c)?;
        }
        Ok(out)
    };
    let root = match layout.root {
        Root::Chain(first) => read_chain(u64::from(first))?,
        Root::Fixed { at, size } => {
            let mut bytes = vec![0u8; size as usize];
            file.read_exact_at(&mut bytes, at)?;
            bytes
        }
    };
    // (folder's first cluster, its entries, whether its parent is the root)
    let mut todo: Vec<(u64, Vec<u8>, bool)> = vec![(0, root, false)];
    let mut seen = std::collections::HashSet::new();
    while let Some((first, mut dir, under_root)) = todo.pop() {
        if let Some(fixed) = (first >= 2).then(|| dots_first(&dir, under_root)).flatten() {
            file.write_all_at(&fixed, layout.span(first, first + 1).0)?;
            dir[..4 * ENTRY].copy_from_slice(&fixed);
        }
        for e in dir.chunks_exact(ENTRY) {
            if e[0] == 0 {
                break;
            }
            if e[11] & ATTR_DIRECTORY != 0
                && e[11] != ATTR_LONG_NAME
                && e[0] != 0xE5
                && e[0] != b'.'
            {
                let child = (u64::from(le16(e, 20)) << 16) | u64::from(le16(e, 26));
                if child >= 2 && seen.insert(child) {
                    todo.push((child, read_chain(child)?, first == 0));
                }
            }
        }
    }
    Ok(())
}

/// A new folder's first four slots as fatfs 0.3 writes them — a long name, ".", a long name,
/// ".." — put right: ".", "..", two deleted entries (".." naming cluster 0 in a folder of the
/// root, whatever the root's cluster). None when the folder does not begin that way.
pub(super) fn dots_first(dir: &[u8], under_root: bool) -> Option<Vec<u8>> {
    let slot = |i: usize| dir[ENTRY * i..ENTRY * (i + 1)].to_vec();
    let as_fatfs_wrote = dir.len() >= 4 * ENTRY
        && dir[11] == ATTR_LONG_NAME
        && dir[32..43] == *b".          "
        && dir[64 + 11] == ATTR_LONG_NAME
        && dir[96..107] == *b"..         ";
    if !as_fatfs_wrote {
        return None;
    }
    let mut dotdot = slot(3);
    if under_root {
        dotdot[20..22].fill(0);
        dotdot[26..28].fill(0);
    }
    let mut fixed = slot(1);
    fixed.extend(dotdot);
    fixed.extend([[0xE5u8].as_slice(), &[0u8; ENTRY - 1]].concat().repeat(2));
    Some(fixed)
}

/// Every folder, file and (reported) symlink of the tree into the mounted volume.
fn write_tree<T: fatfs::ReadWriteSeek>(
    fs: &fatfs::FileSystem<T>,
    tree: &Tree,
    size: u64,
    notes: &mut Vec<String>,
) -> Result<()> {
    let full = |e: io::Error, path: &Path| match e.kind() {
        io::ErrorKind::Other if e.to_string().contains("No space") => Error::Refused {
            path: path.into(),
            reason: format!("does not fit: the volume ({size} bytes) is too small for the folder"),
        },
        _ => Error::io(path, e),
    };
    // Folders are opened again by path when their turn comes: a `Dir` kept from `create_dir`
    // writes its first entries over "." and "..".
    let mut stack = vec![(0usize, String::new())];
    while let Some((index, path)) = stack.pop() {
        let dir = match path.as_str() {
            "" => fs.root_dir(),
            _ => fs
                .root_dir()
                .open_dir(&path)
                .map_err(|e| Error::io(&tree.nodes[index].path, e))?,
        };
        for &c in tree.children(index) {
            let node = &tree.nodes[c];
            match &node.kind {
                NodeKind::Directory { .. } => {
                    dir.create_dir(&node.name)
                        .map_err(|e| full(e, &node.path))?;
                    let under = match path.as_str() {
                        "" => node.name.clone(),
                        _ => format!("{path}/{}", node.name),
                    };
                    stack.push((c, under));
                }
                NodeKind::File { .. } => {
                    let mut out = dir
                        .create_file(&node.name)
                        .map_err(|e| full(e, &node.path))?;
                    let mut src = File::open(&node.path).map_err(|e| Error::io(&node.path, e))?;
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let n = src.read(&mut buf).map_err(|e| Error::io(&node.path, e))?;
                        if n == 0 {
                            break;
                        }
                        out.write_all(&buf[..n]).map_err(|e| full(e, &node.path))?;
                    }
                    // fatfs deprecates this for a clock-wide TimeProvider, which cannot
                    // give each file its own time; after the last write it holds.
                    #[allow(deprecated)]
                    out.set_modified(fat_time(node.modified));
                    out.flush().map_err(|e| full(e, &node.path))?;
                }
                NodeKind::Symlink { target } => notes.push(format!(
                    "{}: a symlink to {target}, not kept (FAT has no symbolic links)",
                    node.path.display()
                )),
            }
        }
    }
    Ok(())
}

/// Long names (FAT's and exFAT's) forbid some characters, hold at most 255 UTF-16 units and
/// ignore case: refuse, by name, what `what` cannot hold. `fold` gives a name as it compares.
/// Whether a long name (FAT's, exFAT's) cannot hold `ch`: control characters and the ones
/// Windows keeps for paths.
pub(crate) fn forbidden(ch: char) -> bool {
    ch < ' ' || "\"*/:<>?\\|".contains(ch)
}

pub(crate) fn check_names<K: Eq + std::hash::Hash>(
    tree: &Tree,
    what: &str,
    fold: impl Fn(&str) -> K,
) -> Result<()> {
    for index in 0..tree.nodes.len() {
        let mut seen = std::collections::HashMap::new();
        for &c in tree.children(index) {
            let child = &tree.nodes[c];
            let refuse = |reason: String| Error::Refused {
                path: child.path.clone(),
                reason,
            };
            if let Some(bad) = child.name.chars().find(|&ch| forbidden(ch)) {
                return Err(refuse(format!(
                    "its name holds {bad:?}, which {what} names cannot"
                )));
            }
            if child.name.encode_utf16().count() > 255 {
                return Err(refuse(format!(
                    "its name is longer than {what}'s 255 UTF-16 characters"
                )));
            }
            if let Some(other) = seen.insert(fold(&child.name), child.name.clone()) {
                return Err(refuse(format!(
                    "differs from \"{other}\" only in case, which {what} does not tell apart"
                )));
            }
        }
    }
    Ok(())
}
