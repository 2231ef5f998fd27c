//! A volume as a FUSE file system: the engine's [`Volume`] answers, this module only translates.
//! Entries get inode numbers as they are first listed and keep them for the mount's life; folders
//! and hard-linked files are numbered by the volume's own identity, so every link of a file shows
//! one inode and a folder reached twice is one folder.

use crate::handler::{
    self, answer, attr, errno, guarded, log_error, reply_sized, Handles, ATTR_TTL, XATTR_PREFIX,
};
use dimg::fs::{DirEntry, EntryKind, Volume};
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::SystemTime;

/// What macOS calls a resource fork when it shows it as an extended attribute.
const RESOURCE_FORK: &str = "com.apple.ResourceFork";
/// Linux's limit on one attribute's value.
const XATTR_MAX: u64 = 64 << 10;

struct Node {
    entry: DirEntry,
    parent: u64,
    /// A folder's entries, listed once.
    children: OnceLock<Result<Arc<Children>, i32>>,
}

/// (name, inode) by name, for a binary search: a folder of 100,000 entries costs 100,000 names
/// and numbers, nothing more.
#[derive(Default)]
struct Children(Vec<(Box<OsStr>, u64)>);

impl Children {
    fn get(&self, name: &OsStr) -> Option<u64> {
        let at = self.0.binary_search_by(|(n, _)| (**n).cmp(name)).ok()?;
        Some(self.0[at].1)
    }
}

#[derive(Default)]
struct Nodes {
    list: Vec<Arc<Node>>,
    /// Inodes of folders and hard-linked files, by the volume's identity for them.
    shared: HashMap<u64, u64>,
}

pub struct VolumeFs {
    volume: Box<dyn Volume>,
    /// Where the log names the volume: its image and partition.
    origin: String,
    /// The partition's size, for `statfs`.
    capacity: u64,
    /// Owner and time for entries whose volume keeps none: the mounting user, the image's time.
    fallback: (u32, u32, SystemTime),
    nodes: RwLock<Nodes>,
    files: Handles,
}

impl VolumeFs {
    pub fn new(
        volume: Box<dyn Volume>,
        origin: String,
        capacity: u64,
        image_time: SystemTime,
    ) -> Self {
        let root = volume.root();
        let (uid, gid) = handler::mounting_user();
        let nodes = Nodes {
            // Inode 0 does not exist in FUSE; 1 is the root.
            list: vec![Self::node(root.clone(), 1), Self::node(root.clone(), 1)],
            shared: HashMap::from([(root.inode, 1)]),
        };
        VolumeFs {
            volume,
            origin,
            capacity,
            fallback: (uid, gid, image_time),
            nodes: RwLock::new(nodes),
            files: Handles::default(),
        }
    }

    fn node(entry: DirEntry, parent: u64) -> Arc<Node> {
        Arc::new(Node {
            entry,
            parent,
            children: OnceLock::new(),
        })
    }

    fn get(&self, ino: INodeNo) -> Result<Arc<Node>, Errno> {
        let nodes = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        match usize::try_from(ino.0).ok().filter(|&i| i > 0) {
            Some(i) => nodes.list.get(i).cloned().ok_or(Errno::ENOENT),
            None => Err(Errno::ENOENT),
        }
    }

    /// What the volume could not do for `entry`: a line in the log, and the reader's errno.
    fn failed(&self, entry: &DirEntry, e: &std::io::Error) -> Errno {
        log_error(&self.origin, &entry.name, e);
        errno(e)
    }

    /// The folder's entries, listed from the volume the first time they are asked for.
    fn children(&self, ino: u64, node: &Node) -> Result<Arc<Children>, Errno> {
        if node.entry.kind != EntryKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        let listed = node.children.get_or_init(|| {
            let entries = self
                .volume
                .read_dir(&node.entry)
                .map_err(|e| self.failed(&node.entry, &e).code())?;
            let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
            let mut children = Children::default();
            for entry in entries {
                if !usable_name(&entry.name) {
                    continue;
                }
                let name: Box<OsStr> = OsStr::new(&entry.name).into();
                let shared = entry.kind == EntryKind::Directory || entry.links > 1;
                let known = shared.then(|| nodes.shared.get(&entry.inode).copied());
                let child = match known.flatten() {
                    Some(child) => child,
                    None => {
                        let child = nodes.list.len() as u64;
                        if shared {
                            nodes.shared.insert(entry.inode, child);
                        }
                        nodes.list.push(Self::node(entry, ino));
                        child
                    }
                };
                children.0.push((name, child));
            }
            children.0.sort_by(|a, b| a.0.cmp(&b.0));
            let before = children.0.len();
            children.0.dedup_by(|a, b| a.0 == b.0);
            if children.0.len() < before {
                let problem = "a second entry of the same name in one folder is not shown";
                log_error(&self.origin, &node.entry.name, &problem);
            }
            Ok(Arc::new(children))
        });
        listed.clone().map_err(Errno::from_i32)
    }

    fn attr(&self, ino: u64, e: &DirEntry) -> FileAttr {
        let (uid, gid, time) = self.fallback;
        let (kind, default_perm, size) = match &e.kind {
            EntryKind::Directory => (FileType::Directory, 0o555, 0),
            EntryKind::File => (FileType::RegularFile, 0o444, e.size),
            EntryKind::Symlink(target) => (FileType::Symlink, 0o777, target.len() as u64),
            EntryKind::Special(what) => (special_type(what), 0o444, 0),
        };
        let time = e.modified.map_or(time, |t| {
            let since = std::time::Duration::from_secs(t.unsigned_abs());
            match t >= 0 {
                true => SystemTime::UNIX_EPOCH + since,
                false => SystemTime::UNIX_EPOCH - since,
            }
        });
        let (uid, gid) = e.owner.unwrap_or((uid, gid));
        let perm = e.mode.filter(|&m| m != 0).unwrap_or(default_perm);
        let links = match kind {
            FileType::Directory => 2,
            _ => e.links.max(1),
        };
        attr(ino, kind, size, perm, links, (uid, gid), time)
    }

    /// The named stream behind an attribute name, if the entry has it.
    fn stream_for(e: &DirEntry, attribute: &OsStr) -> Option<String> {
        let name = attribute.to_str()?.strip_prefix(XATTR_PREFIX)?;
        // HFS+ calls its resource fork "rsrc"; APFS keeps it as the attribute itself.
        e.streams
            .iter()
            .find(|s| s.name == name || (name == RESOURCE_FORK && s.name == "rsrc"))
            .map(|s| s.name.clone())
    }
}

/// A name a folder can hold on Linux.
fn usable_name(name: &str) -> bool {
    !matches!(name, "" | "." | "..") && !name.contains(['/', '\0'])
}

fn special_type(what: &str) -> FileType {
    match what {
        "character device" => FileType::CharDevice,
        "block device" => FileType::BlockDevice,
        "socket" => FileType::Socket,
        _ => FileType::NamedPipe,
    }
}

impl Filesystem for VolumeFs {
    fn lookup(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        guarded(reply, |reply| {
            let node = self.get(parent)?;
            let children = self.children(parent.0, &node)?;
            let ino = children.get(name).ok_or(Errno::ENOENT)?;
            let child = self.get(INodeNo(ino))?;
            answer(reply).entry(&ATTR_TTL, &self.attr(ino, &child.entry), Generation(0));
            Ok(())
        })
    }

    fn getattr(&self, _: &Request, ino: INodeNo, _: Option<FileHandle>, reply: ReplyAttr) {
        guarded(reply, |reply| {
            let node = self.get(ino)?;
            answer(reply).attr(&ATTR_TTL, &self.attr(ino.0, &node.entry));
            Ok(())
        })
    }

    fn readlink(&self, _: &Request, ino: INodeNo, reply: ReplyData) {
        guarded(reply, |reply| match &self.get(ino)?.entry.kind {
            EntryKind::Symlink(target) => {
                answer(reply).data(target.as_bytes());
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        })
    }

    fn open(&self, _: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        guarded(reply, |reply| {
            if flags.acc_mode() != OpenAccMode::O_RDONLY {
                return Err(Errno::EROFS);
            }
            let node = self.get(ino)?;
            if node.entry.kind != EntryKind::File {
                return Err(Errno::EISDIR);
            }
            let data = self
                .volume
                .open(&node.entry)
                .map_err(|e| self.failed(&node.entry, &e))?;
            // The volume never changes under a read-only mount: the page cache stays valid.
            answer(reply).opened(self.files.insert(data), FopenFlags::FOPEN_KEEP_CACHE);
            Ok(())
        })
    }

    fn read(
        &self,
        _: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _: OpenFlags,
        _: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.files.answer_read(fh, (offset, size), reply, |e| {
            let name = self.get(ino).map(|n| n.entry.name.clone());
            log_error(&self.origin, &name.unwrap_or_default(), e);
        })
    }

    fn release(
        &self,
        _: &Request,
        _: INodeNo,
        fh: FileHandle,
        _: OpenFlags,
        _: Option<LockOwner>,
        _: bool,
        reply: ReplyEmpty,
    ) {
        self.files.remove(fh);
        reply.ok();
    }

    fn readdir(
        &self,
        _: &Request,
        ino: INodeNo,
        _: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        guarded(reply, |reply| {
            let node = self.get(ino)?;
            let children = self.children(ino.0, &node)?;
            let mut reply = answer(reply);
            let dots = [(OsStr::new("."), ino.0), (OsStr::new(".."), node.parent)];
            let all = dots
                .into_iter()
                .chain(children.0.iter().map(|(n, i)| (&**n, *i)));
            for (i, (name, child)) in all.enumerate().skip(offset as usize) {
                let kind = match i {
                    0 | 1 => FileType::Directory,
                    _ => self.attr(child, &self.get(INodeNo(child))?.entry).kind,
                };
                if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                    break;
                }
            }
            reply.ok();
            Ok(())
        })
    }

    fn statfs(&self, _: &Request, _: INodeNo, reply: ReplyStatfs) {
        guarded(reply, |reply| {
            const BLOCK: u64 = 4096;
            let used = self
                .volume
                .used()
                .unwrap_or(self.capacity)
                .min(self.capacity);
            let files = self.nodes.read().map_or(0, |n| n.list.len() as u64 - 1);
            let free = self
                .volume
                .available()
                .unwrap_or(self.capacity - used)
                .min(self.capacity);
            let (blocks, free) = (self.capacity / BLOCK, free / BLOCK);
            answer(reply).statfs(
                blocks,
                free,
                free,
                files,
                0,
                BLOCK as u32,
                255,
                BLOCK as u32,
            );
            Ok(())
        })
    }

    fn getxattr(&self, _: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        guarded(reply, |reply| {
            let node = self.get(ino)?;
            let stream = Self::stream_for(&node.entry, name).ok_or(Errno::NO_XATTR)?;
            let data = self
                .volume
                .open_stream(&node.entry, &stream)
                .map_err(|e| self.failed(&node.entry, &e))?;
            if data.size() > XATTR_MAX {
                return Err(Errno::E2BIG);
            }
            let mut value = vec![0; data.size() as usize];
            data.read_exact_at(0, &mut value)
                .map_err(|e| self.failed(&node.entry, &e))?;
            reply_sized(answer(reply), size, &value);
            Ok(())
        })
    }

    fn listxattr(&self, _: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        guarded(reply, |reply| {
            let node = self.get(ino)?;
            let mut names = Vec::new();
            for s in &node.entry.streams {
                let name = if s.name == "rsrc" {
                    RESOURCE_FORK
                } else {
                    &s.name
                };
                names.extend_from_slice(XATTR_PREFIX.as_bytes());
                names.extend_from_slice(name.as_bytes());
                names.push(0);
            }
            reply_sized(answer(reply), size, &names);
            Ok(())
        })
    }

    fn access(&self, _: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        guarded(reply, |reply| {
            self.get(ino)?;
            if mask.contains(AccessFlags::W_OK) {
                return Err(Errno::EROFS);
            }
            answer(reply).ok();
            Ok(())
        })
    }
}
