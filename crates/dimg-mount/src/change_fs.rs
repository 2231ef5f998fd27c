//! A volume mounted read/write: FUSE requests become the engine's [`VolumeMut`] changes, by path.
//! Inodes are numbered as paths are first looked up and follow them through renames; the paths
//! of one file (its hard links) share one inode. Every
//! change comes through this mount, so the kernel keeps entries and attributes for a second, as
//! it keeps them up to date itself; a path is not looked up again for every request.

use crate::handler::{
    answer, attr, errno, guarded, log_error, mounting_user, reply_sized, XATTR_PREFIX,
};
use dimg::fs::{Stat, VolumeMut};
use fuser::{
    BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TTL: Duration = Duration::from_secs(1);

/// An inode's paths (more than one for a file with hard links) and the volume's number for
/// its file, where the volume has one.
#[derive(Default)]
struct Node {
    paths: Vec<String>,
    file: Option<u64>,
}

/// Inodes by path and back, and by the volume's file number; the root is inode 1 and path "".
struct Inodes {
    nodes: HashMap<u64, Node>,
    numbers: HashMap<String, u64>,
    files: HashMap<u64, u64>,
    next: u64,
}

impl Inodes {
    /// The inode of `path`, whose file the volume numbers `file`: the one its other paths
    /// have, or a new one.
    fn number(&mut self, path: &str, file: Option<u64>) -> u64 {
        if let Some(&n) = self.numbers.get(path) {
            return n;
        }
        let n = match file.and_then(|f| self.files.get(&f)) {
            Some(&n) => n,
            None => {
                let n = self.next;
                self.next += 1;
                if let Some(f) = file {
                    self.files.insert(f, n);
                }
                self.nodes.insert(
                    n,
                    Node {
                        paths: Vec::new(),
                        file,
                    },
                );
                n
            }
        };
        self.nodes
            .entry(n)
            .or_default()
            .paths
            .push(path.to_string());
        self.numbers.insert(path.to_string(), n);
        n
    }

    /// `from` and everything under it are now under `to`.
    fn moved(&mut self, from: &str, to: &str) {
        self.forget(to);
        let under = format!("{from}/");
        let moving: Vec<(String, u64)> = self
            .numbers
            .iter()
            .filter(|(p, _)| *p == from || p.starts_with(&under))
            .map(|(p, &n)| (p.clone(), n))
            .collect();
        for (path, n) in moving {
            let new = format!("{to}{}", &path[from.len()..]);
            self.numbers.remove(&path);
            self.numbers.insert(new.clone(), n);
            if let Some(node) = self.nodes.get_mut(&n) {
                node.paths.retain(|p| *p != path);
                node.paths.push(new);
            }
        }
    }

    /// `path` is gone; its inode with it when it was the last path to its file.
    fn forget(&mut self, path: &str) {
        let Some(n) = self.numbers.remove(path) else {
            return;
        };
        let Some(node) = self.nodes.get_mut(&n) else {
            return;
        };
        node.paths.retain(|p| p != path);
        if node.paths.is_empty() {
            if let Some(f) = node.file {
                self.files.remove(&f);
            }
            self.nodes.remove(&n);
        }
    }
}

pub struct ChangeFs {
    volume: Arc<dyn VolumeMut>,
    origin: String,
    inodes: Mutex<Inodes>,
}

fn child(parent: &str, name: &OsStr) -> Result<String, Errno> {
    let name = name.to_str().ok_or(Errno::EINVAL)?;
    Ok(match parent {
        "" => name.to_string(),
        p => format!("{p}/{name}"),
    })
}

/// What the kernel is told an entry is.
fn file_type(stat: &Stat) -> FileType {
    match (stat.directory, stat.symlink) {
        (true, _) => FileType::Directory,
        (_, true) => FileType::Symlink,
        _ => FileType::RegularFile,
    }
}

/// An attribute's name on the volume: Linux's, without its `user.` namespace.
fn volume_name(name: &OsStr) -> Option<&str> {
    name.to_str()?.strip_prefix(XATTR_PREFIX)
}

fn time_of(t: TimeOrNow) -> i64 {
    let at = match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    };
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl ChangeFs {
    pub fn new(volume: Arc<dyn VolumeMut>, origin: String) -> Self {
        let mut inodes = Inodes {
            nodes: HashMap::new(),
            numbers: HashMap::new(),
            files: HashMap::new(),
            next: 1,
        };
        inodes.number("", None);
        ChangeFs {
            volume,
            origin,
            inodes: Mutex::new(inodes),
        }
    }

    fn inodes(&self) -> std::sync::MutexGuard<'_, Inodes> {
        self.inodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, ino: INodeNo) -> Result<String, Errno> {
        self.inodes()
            .nodes
            .get(&ino.0)
            .and_then(|node| node.paths.first().cloned())
            .ok_or(Errno::ENOENT)
    }

    /// What the engine said, as an errno, with a line in the server's log for what is not a
    /// plain answer (a missing name, a full disk).
    fn failed(&self, path: &str, e: io::Error) -> Errno {
        let plain = matches!(
            e.raw_os_error(),
            Some(
                libc::ENOENT
                    | libc::EEXIST
                    | libc::ENOTEMPTY
                    | libc::EISDIR
                    | libc::ENOTDIR
                    | libc::ENODATA
            )
        );
        if !plain {
            log_error(&self.origin, path, &e);
        }
        match e.kind() {
            io::ErrorKind::StorageFull => Errno::ENOSPC,
            _ => errno(&e),
        }
    }

    fn attr_of(&self, ino: u64, stat: &Stat) -> FileAttr {
        let time = stat
            .modified
            .and_then(|t| u64::try_from(t).ok())
            .map_or(UNIX_EPOCH, |t| UNIX_EPOCH + Duration::from_secs(t));
        let kind = file_type(stat);
        let (perm, links) = match kind {
            FileType::Directory => (0o755, 2),
            FileType::Symlink => (0o755, 1),
            _ => (0o644, 1),
        };
        // Owners are the mounting user's, as macOS ignores ownership on a disk image.
        let perm = stat.mode.unwrap_or(perm);
        let links = stat.links.unwrap_or(links);
        attr(ino, kind, stat.size, perm, links, mounting_user(), time)
    }

    /// The entry at `path` as the kernel sees it, numbered.
    fn entry(&self, path: &str) -> Result<FileAttr, Errno> {
        let stat = self.volume.stat(path).map_err(|e| self.failed(path, e))?;
        let ino = self.inodes().number(path, stat.file_id);
        Ok(self.attr_of(ino, &stat))
    }
}

impl Filesystem for ChangeFs {
    fn lookup(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        guarded(reply, |reply| {
            let parent = self.path(parent)?;
            let wanted = name.to_str().ok_or(Errno::ENOENT)?;
            // Numbered by the name as the volume stores it, however it was asked for.
            let (stored, stat) = self
                .volume
                .find(&parent, wanted)
                .map_err(|e| self.failed(&parent, e))?;
            let path = child(&parent, OsStr::new(&stored))?;
            let ino = self.inodes().number(&path, stat.file_id);
            answer(reply).entry(&TTL, &self.attr_of(ino, &stat), Generation(0));
            Ok(())
        })
    }

    fn getattr(&self, _: &Request, ino: INodeNo, _: Option<FileHandle>, reply: ReplyAttr) {
        guarded(reply, |reply| {
            let attr = self.entry(&self.path(ino)?)?;
            answer(reply).attr(&TTL, &attr);
            Ok(())
        })
    }

    fn setattr(
        &self,
        _: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _: Option<SystemTime>,
        _: Option<FileHandle>,
        _: Option<SystemTime>,
        _: Option<SystemTime>,
        _: Option<SystemTime>,
        _: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        guarded(reply, |reply| {
            let path = self.path(ino)?;
            if let Some(size) = size {
                self.volume
                    .set_len(&path, size)
                    .map_err(|e| self.failed(&path, e))?;
            }
            if let Some(t) = mtime {
                self.volume
                    .set_modified(&path, time_of(t))
                    .map_err(|e| self.failed(&path, e))?;
            }
            // Modes and owners: kept where the volume keeps them (HFS+), else nothing changes.
            if let Some(mode) = mode {
                self.volume
                    .set_mode(&path, mode)
                    .map_err(|e| self.failed(&path, e))?;
            }
            if uid.is_some() || gid.is_some() {
                self.volume
                    .set_owner(&path, uid, gid)
                    .map_err(|e| self.failed(&path, e))?;
            }
            answer(reply).attr(&TTL, &self.entry(&path)?);
            Ok(())
        })
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
            let path = self.path(ino)?;
            let listed = self.volume.list(&path).map_err(|e| self.failed(&path, e))?;
            let mut rows = vec![
                (ino.0, FileType::Directory, ".".to_string()),
                (ino.0, FileType::Directory, "..".to_string()),
            ];
            for (name, stat) in listed {
                let n = self
                    .inodes()
                    .number(&child(&path, OsStr::new(&name))?, stat.file_id);
                let kind = file_type(&stat);
                rows.push((n, kind, name));
            }
            let mut reply = answer(reply);
            for (i, (n, kind, name)) in rows.into_iter().enumerate().skip(offset as usize) {
                if reply.add(INodeNo(n), i as u64 + 1, kind, name) {
                    break;
                }
            }
            reply.ok();
            Ok(())
        })
    }

    fn open(&self, _: &Request, ino: INodeNo, _: OpenFlags, reply: ReplyOpen) {
        guarded(reply, |reply| {
            self.path(ino)?;
            answer(reply).opened(FileHandle(0), FopenFlags::empty());
            Ok(())
        })
    }

    fn read(
        &self,
        _: &Request,
        ino: INodeNo,
        _: FileHandle,
        offset: u64,
        size: u32,
        _: OpenFlags,
        _: Option<LockOwner>,
        reply: ReplyData,
    ) {
        guarded(reply, |reply| {
            let path = self.path(ino)?;
            let mut buf = vec![0u8; size.min(1 << 20) as usize];
            let n = self
                .volume
                .read(&path, offset, &mut buf)
                .map_err(|e| self.failed(&path, e))?;
            answer(reply).data(&buf[..n]);
            Ok(())
        })
    }

    fn write(
        &self,
        _: &Request,
        ino: INodeNo,
        _: FileHandle,
        offset: u64,
        data: &[u8],
        _: WriteFlags,
        _: OpenFlags,
        _: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        guarded(reply, |reply| {
            let path = self.path(ino)?;
            self.volume
                .write(&path, offset, data)
                .map_err(|e| self.failed(&path, e))?;
            answer(reply).written(data.len() as u32);
            Ok(())
        })
    }

    fn create(
        &self,
        _: &Request,
        parent: INodeNo,
        name: &OsStr,
        _: u32,
        _: u32,
        _: i32,
        reply: ReplyCreate,
    ) {
        guarded(reply, |reply| {
            let path = child(&self.path(parent)?, name)?;
            self.volume
                .create_file(&path)
                .map_err(|e| self.failed(&path, e))?;
            let attr = self.entry(&path)?;
            answer(reply).created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            );
            Ok(())
        })
    }

    fn mkdir(&self, _: &Request, parent: INodeNo, name: &OsStr, _: u32, _: u32, reply: ReplyEntry) {
        guarded(reply, |reply| {
            let path = child(&self.path(parent)?, name)?;
            self.volume
                .create_dir(&path)
                .map_err(|e| self.failed(&path, e))?;
            answer(reply).entry(&TTL, &self.entry(&path)?, Generation(0));
            Ok(())
        })
    }

    fn unlink(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, reply);
    }

    fn rmdir(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, reply);
    }

    fn rename(
        &self,
        _: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        guarded(reply, |reply| {
            if !flags.is_empty() {
                return Err(Errno::EINVAL);
            }
            let from = child(&self.path(parent)?, name)?;
            let to = child(&self.path(newparent)?, newname)?;
            self.volume
                .rename(&from, &to)
                .map_err(|e| self.failed(&from, e))?;
            self.inodes().moved(&from, &to);
            answer(reply).ok();
            Ok(())
        })
    }

    fn symlink(
        &self,
        _: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        guarded(reply, |reply| {
            let path = child(&self.path(parent)?, link_name)?;
            let target = target.to_str().ok_or(Errno::EINVAL)?;
            self.volume
                .symlink(&path, target)
                .map_err(|e| self.failed(&path, e))?;
            answer(reply).entry(&TTL, &self.entry(&path)?, Generation(0));
            Ok(())
        })
    }

    fn link(
        &self,
        _: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        guarded(reply, |reply| {
            let existing = self.path(ino)?;
            let path = child(&self.path(newparent)?, newname)?;
            self.volume
                .hard_link(&existing, &path)
                .map_err(|e| self.failed(&path, e))?;
            answer(reply).entry(&TTL, &self.entry(&path)?, Generation(0));
            Ok(())
        })
    }

    fn readlink(&self, _: &Request, ino: INodeNo, reply: ReplyData) {
        guarded(reply, |reply| {
            let path = self.path(ino)?;
            let target = self
                .volume
                .read_link(&path)
                .map_err(|e| self.failed(&path, e))?;
            answer(reply).data(target.as_bytes());
            Ok(())
        })
    }

    fn getxattr(&self, _: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        guarded(reply, |reply| {
            let path = self.path(ino)?;
            let name = volume_name(name).ok_or(Errno::NO_XATTR)?;
            let value = self
                .volume
                .xattr_get(&path, name)
                .map_err(|e| self.failed(&path, e))?;
            reply_sized(answer(reply), size, &value);
            Ok(())
        })
    }

    fn listxattr(&self, _: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        guarded(reply, |reply| {
            let path = self.path(ino)?;
            let mut names = Vec::new();
            for name in self
                .volume
                .xattr_names(&path)
                .map_err(|e| self.failed(&path, e))?
            {
                names.extend_from_slice(XATTR_PREFIX.as_bytes());
                names.extend_from_slice(name.as_bytes());
                names.push(0);
            }
            reply_sized(answer(reply), size, &names);
            Ok(())
        })
    }

    fn setxattr(
        &self,
        _: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _: u32,
        reply: ReplyEmpty,
    ) {
        guarded(reply, |reply| {
            let path = self.path(ino)?;
            let name = volume_name(name).ok_or(Errno::ENOTSUP)?;
            // XATTR_CREATE and XATTR_REPLACE ask that it be new, or that it be there.
            let there = || self.volume.xattr_get(&path, name).is_ok();
            if flags & libc::XATTR_CREATE != 0 && there() {
                return Err(Errno::EEXIST);
            }
            if flags & libc::XATTR_REPLACE != 0 && !there() {
                return Err(Errno::NO_XATTR);
            }
            self.volume
                .xattr_set(&path, name, value)
                .map_err(|e| self.failed(&path, e))?;
            answer(reply).ok();
            Ok(())
        })
    }

    fn removexattr(&self, _: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded(reply, |reply| {
            let path = self.path(ino)?;
            let name = volume_name(name).ok_or(Errno::NO_XATTR)?;
            self.volume
                .xattr_remove(&path, name)
                .map_err(|e| self.failed(&path, e))?;
            answer(reply).ok();
            Ok(())
        })
    }

    fn fsync(&self, _: &Request, _: INodeNo, _: FileHandle, _: bool, reply: ReplyEmpty) {
        guarded(reply, |reply| {
            self.volume.sync().map_err(|e| self.failed("", e))?;
            answer(reply).ok();
            Ok(())
        })
    }

    fn flush(&self, _: &Request, _: INodeNo, _: FileHandle, _: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _: &Request,
        _: INodeNo,
        _: FileHandle,
        _: OpenFlags,
        _: Option<LockOwner>,
        _: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _: &Request, _: INodeNo, reply: ReplyStatfs) {
        guarded(reply, |reply| {
            let (total, free, unit) = self.volume.space().map_err(|e| self.failed("", e))?;
            let unit = unit.max(512);
            let (blocks, free) = (total / unit, free / unit);
            answer(reply).statfs(blocks, free, free, 0, 0, unit as u32, 255, unit as u32);
            Ok(())
        })
    }

    /// The mount is gone: what the volume keeps in memory is written, then the disk is brought
    /// up to date.
    fn destroy(&mut self) {
        if let Err(e) = self.volume.close() {
            log_error(&self.origin, "volume", &format!("closing: {e}"));
            crate::registry::report_unsaved(&format!(
                "the volume's last changes could not be written: {e}"
            ));
        }
    }
}

impl ChangeFs {
    fn remove(&self, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded(reply, |reply| {
            let path = child(&self.path(parent)?, name)?;
            self.volume
                .remove(&path)
                .map_err(|e| self.failed(&path, e))?;
            self.inodes().forget(&path);
            answer(reply).ok();
            Ok(())
        })
    }
}
