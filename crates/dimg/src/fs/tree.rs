//! The folder a new volume is built from (New Image › Image from Folder, `dimg create
//! -srcfolder`). The folder is read once into a [`Tree`]; each file system's writer lays out its
//! volume from the tree and hands back a virtual disk — its own metadata in memory, the files'
//! bytes read from the folder only when the disk is read — which the one convert pipeline turns
//! into any image format.

use crate::error::{Error, Result};
use crate::io::ReadAt;
use crate::wrapper::MacFile;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What one entry of the folder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    File { size: u64 },
    Directory { children: Vec<usize> },
    Symlink { target: String },
}

/// One file, folder or symlink of the source folder.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its name (the root's is empty).
    pub name: String,
    /// Where it is on disk, to read its contents.
    pub path: PathBuf,
    pub kind: NodeKind,
    /// Seconds since 1970.
    pub modified: i64,
    /// POSIX permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Its device and inode numbers: files that share them are hard links to one file.
    pub file_id: (u64, u64),
    pub times: Times,
    /// Its "user." extended attributes, without the prefix: what `dimg extract` makes of an HFS+
    /// file's attributes and resource fork ("com.apple.ResourceFork"), and what HFS+ takes back.
    pub streams: Vec<(String, Vec<u8>)>,
}

/// A node's times in nanoseconds since 1970, for file systems that keep them all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    /// When it was made, where the source's file system keeps that; else when it last changed.
    pub created: i64,
    pub modified: i64,
    /// When its inode last changed.
    pub changed: i64,
    pub accessed: i64,
}

impl Times {
    /// All four at `secs` seconds since 1970.
    pub fn at(secs: i64) -> Times {
        let ns = secs.saturating_mul(1_000_000_000);
        Times {
            created: ns,
            modified: ns,
            changed: ns,
            accessed: ns,
        }
    }

    /// None later than `secs` seconds since 1970.
    pub fn clamp_to(&mut self, secs: i64) {
        let ns = secs.saturating_mul(1_000_000_000);
        for t in [
            &mut self.created,
            &mut self.modified,
            &mut self.changed,
            &mut self.accessed,
        ] {
            *t = (*t).min(ns);
        }
    }

    fn of(meta: &std::fs::Metadata) -> Times {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        let changed = ns(meta.ctime(), meta.ctime_nsec());
        Times {
            created: meta
                .created()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(changed, |d| d.as_nanos() as i64),
            modified: ns(meta.mtime(), meta.mtime_nsec()),
            changed,
            accessed: ns(meta.atime(), meta.atime_nsec()),
        }
    }
}

/// The resource fork's name among extended attributes, as macOS and `dimg extract` call it.
pub const RESOURCE_FORK: &str = "com.apple.ResourceFork";

/// The Finder info's name among extended attributes (32 bytes: the Finder's flags, type and
/// creator, label colour), as macOS shows it; HFS+ keeps it in the catalog record itself.
pub const FINDER_INFO: &str = "com.apple.FinderInfo";

/// A resource fork's map addresses it with 24-bit offsets: 16 MiB is the most one can hold.
const MAX_RESOURCE_FORK: u64 = 16 << 20;

/// A path's "user." attributes, unprefixed (none where the file system keeps none).
fn user_streams(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let Ok(names) = xattr::list(path) else {
        return Ok(Vec::new());
    };
    let mut streams = Vec::new();
    for name in names {
        let Some(short) = name.to_str().and_then(|n| n.strip_prefix("user.")) else {
            continue;
        };
        if let Some(value) = xattr::get(path, &name).map_err(|e| Error::io(path, e))? {
            streams.push((short.to_string(), value));
        }
    }
    streams.sort();
    Ok(streams)
}

/// The source folder, read once: nodes in depth-first order, the root first.
#[derive(Debug)]
pub struct Tree {
    pub nodes: Vec<Node>,
    /// Devices, sockets and FIFOs left out, by path.
    pub skipped: Vec<String>,
    /// Whether an AppleDouble `._NAME` is read as NAME's resource fork (for a file system that
    /// keeps forks) rather than as a file.
    forks_beside: bool,
}

impl Tree {
    /// A tree of one empty root folder made at `now`: what a blank volume holds.
    pub fn empty(now: i64) -> Tree {
        Tree {
            nodes: vec![Node {
                name: String::new(),
                path: PathBuf::new(),
                kind: NodeKind::Directory {
                    children: Vec::new(),
                },
                modified: now,
                mode: 0o755,
                uid: 0,
                gid: 0,
                file_id: (0, 0),
                times: Times::at(now),
                streams: Vec::new(),
            }],
            skipped: Vec::new(),
            forks_beside: true,
        }
    }

    /// Reads `root`'s entries (not following symlinks). A name that is not UTF-8 cannot be
    /// written into any of the file systems and is refused by name; so is an unreadable entry.
    /// With `forks_beside`, an AppleDouble `._NAME` beside NAME is NAME's resource fork (what
    /// macOS writes on disks without forks, and `dimg extract` too), not a file of its own.
    pub fn scan(root: &Path, forks_beside: bool) -> Result<Tree> {
        let mut tree = Tree {
            nodes: Vec::new(),
            skipped: Vec::new(),
            forks_beside,
        };
        let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
        if !meta.is_dir() {
            return Err(Error::Refused {
                path: root.into(),
                reason: "is not a folder".into(),
            });
        }
        tree.add(root, String::new(), &meta)?;
        Ok(tree)
    }

    fn add(
        &mut self,
        path: &Path,
        name: String,
        meta: &std::fs::Metadata,
    ) -> Result<Option<usize>> {
        let kind = if meta.is_dir() {
            NodeKind::Directory {
                children: Vec::new(),
            }
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path).map_err(|e| Error::io(path, e))?;
            let target = target.to_str().ok_or_else(|| unrepresentable(path))?;
            NodeKind::Symlink {
                target: target.into(),
            }
        } else if meta.is_file() {
            // Refuse what cannot be read now rather than half-way through the image.
            File::open(path).map_err(|e| Error::io(path, e))?;
            NodeKind::File { size: meta.len() }
        } else {
            self.skipped.push(path.display().to_string());
            return Ok(None);
        };
        let index = self.nodes.len();
        self.nodes.push(Node {
            name,
            path: path.into(),
            kind,
            modified: meta.mtime(),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            file_id: (meta.dev(), meta.ino()),
            times: Times::of(meta),
            streams: match meta.file_type().is_symlink() {
                true => Vec::new(),
                false => user_streams(path)?,
            },
        });
        if meta.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| Error::io(path, e))?
                .collect::<io::Result<_>>()
                .map_err(|e| Error::io(path, e))?;
            entries.sort_by_key(|e| e.file_name());
            let mut doubles = match self.forks_beside {
                true => apple_doubles(&entries),
                false => HashMap::new(),
            };
            let mut children = Vec::new();
            for e in entries {
                let child = e.path();
                let name = e
                    .file_name()
                    .to_str()
                    .ok_or_else(|| unrepresentable(&child))?
                    .to_string();
                if name
                    .strip_prefix("._")
                    .is_some_and(|n| doubles.contains_key(n))
                {
                    continue;
                }
                let double = doubles.remove(&name);
                let meta = std::fs::symlink_metadata(&child).map_err(|e| Error::io(&child, e))?;
                if let Some(i) = self.add(&child, name, &meta)? {
                    if let Some((path, mac)) = double.filter(|_| meta.is_file()) {
                        self.take_fork(i, &path, &mac)?;
                    }
                    children.push(i);
                }
            }
            self.nodes[index].kind = NodeKind::Directory { children };
        }
        Ok(Some(index))
    }

    /// Node `i`'s resource fork from the AppleDouble file `double` beside it, unless it has one
    /// as an extended attribute already.
    fn take_fork(&mut self, i: usize, double: &Path, mac: &MacFile) -> Result<()> {
        let streams = &mut self.nodes[i].streams;
        let size = mac.resource.size();
        if size == 0 || streams.iter().any(|(name, _)| name == RESOURCE_FORK) {
            return Ok(());
        }
        if size > MAX_RESOURCE_FORK {
            return Err(Error::Refused {
                path: double.into(),
                reason: format!(
                    "its resource fork is {size} bytes, more than a Mac resource fork holds"
                ),
            });
        }
        let mut fork = vec![0u8; size as usize];
        mac.resource
            .read_exact_at(0, &mut fork)
            .map_err(|e| Error::io(double, e))?;
        streams.push((RESOURCE_FORK.to_string(), fork));
        streams.sort();
        Ok(())
    }

    pub fn children(&self, dir: usize) -> &[usize] {
        match &self.nodes[dir].kind {
            NodeKind::Directory { children } => children,
            _ => &[],
        }
    }

    /// Bytes of file contents in the tree.
    pub fn file_bytes(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| match n.kind {
                NodeKind::File { size } => size,
                _ => 0,
            })
            .sum()
    }
}

/// The AppleDouble `._NAME` files among a folder's `entries` that stand beside an entry NAME
/// (what macOS writes on disks without forks, and `dimg extract` too), by NAME.
fn apple_doubles(entries: &[std::fs::DirEntry]) -> HashMap<String, (PathBuf, MacFile)> {
    let names: Vec<_> = entries.iter().map(|e| e.file_name()).collect();
    entries
        .iter()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_prefix("._")?.to_string();
            names.iter().any(|n| *n == *name).then_some(())?;
            let mac = crate::wrapper::apple_double(&e.path())?;
            Some((name, (e.path(), mac)))
        })
        .collect()
}

fn unrepresentable(path: &Path) -> Error {
    Error::Refused {
        path: path.into(),
        reason: "its name is not valid UTF-8, so no image file system can hold it".into(),
    }
}

/// A file of the source folder, opened only while it is read (a tree may hold more files than a
/// process may keep open). It must still have the size it had when the folder was scanned.
pub struct SourceFile {
    path: PathBuf,
    size: u64,
}

impl SourceFile {
    pub fn new(path: PathBuf, size: u64) -> Self {
        SourceFile { path, size }
    }
}

impl ReadAt for SourceFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let named =
            |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.path.display()));
        if offset >= self.size {
            return Ok(0);
        }
        let n = buf.len().min((self.size - offset) as usize);
        let file = File::open(&self.path).map_err(named)?;
        let mut done = 0;
        while done < n {
            match file.read_at(&mut buf[done..n], offset + done as u64) {
                Ok(0) => {
                    return Err(named(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "changed while the image was being made (it is shorter now)",
                    )))
                }
                Ok(k) => done += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(named(e)),
            }
        }
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.size
    }
}
