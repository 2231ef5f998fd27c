//! `attach -nomount`: the image's decoded disk as one file, `disk`, and each partition beside it
//! as `disks1`, `disks2`... (hdiutil's `/dev/disk4`, `/dev/disk4s1`). Any tool reads them — and
//! writes them, where the image can be written: mkfs, fsck, mtools, a loop device, fuse2fs.
//! Root can loop-attach `disk` so that Linux mounts the file systems its kernel knows. When the
//! mount goes, the image is brought up to date (its checksums) before the server ends.

use crate::handler::{answer, attr, errno, guarded, log_error, mounting_user, Handles, ATTR_TTL};
use dimg::io::{ReadAt, Slice, WriteAt};
use dimg::partition::Partition;
use fuser::{
    BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::SystemTime;

/// The disk an attach serves: its bytes, the same to write where the image can be written, and
/// its partitions.
pub struct ServedDisk {
    pub disk: Arc<dyn ReadAt>,
    pub writable: Option<Arc<dyn WriteAt>>,
    pub partitions: Vec<Partition>,
}

/// One file of the folder: its name, its bytes, and the same to write when they can be.
struct DiskFile {
    name: String,
    data: Arc<dyn ReadAt>,
    write: Option<Arc<dyn WriteAt>>,
}

pub struct DiskFs {
    origin: String,
    /// Inode = index + 2 (1 is the folder).
    files: Vec<DiskFile>,
    /// The whole disk, brought up to date when the mount goes.
    writable: Option<Arc<dyn WriteAt>>,
    time: SystemTime,
    open: Handles,
}

impl DiskFs {
    pub fn new(origin: String, served: ServedDisk, time: SystemTime) -> Self {
        let ServedDisk {
            disk,
            writable,
            partitions,
        } = served;
        let mut files = vec![DiskFile {
            name: "disk".into(),
            data: disk.clone(),
            write: writable.clone(),
        }];
        for p in partitions.iter().filter(|p| p.index > 0) {
            let (data, write): (Arc<dyn ReadAt>, _) = match &writable {
                Some(w) => {
                    let slice = Arc::new(Slice::new(w.clone(), p.start, p.size));
                    (slice.clone(), Some(slice as Arc<dyn WriteAt>))
                }
                None => (Arc::new(p.open(disk.clone())), None),
            };
            files.push(DiskFile {
                name: format!("disks{}", p.index),
                data,
                write,
            });
        }
        DiskFs {
            origin,
            files,
            writable,
            time,
            open: Handles::default(),
        }
    }

    /// The names this folder holds, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|f| f.name.as_str())
    }

    fn attr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let user = mounting_user();
        if ino == 1 {
            return Ok(attr(1, FileType::Directory, 0, 0o555, 2, user, self.time));
        }
        let file = self.file(ino)?;
        let size = file.data.size();
        Ok(attr(
            ino,
            FileType::RegularFile,
            size,
            if file.write.is_some() { 0o644 } else { 0o444 },
            1,
            user,
            self.time,
        ))
    }

    fn file(&self, ino: u64) -> Result<&DiskFile, Errno> {
        let index = ino.checked_sub(2).ok_or(Errno::ENOENT)?;
        self.files.get(index as usize).ok_or(Errno::ENOENT)
    }
}

impl Filesystem for DiskFs {
    fn lookup(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        guarded(reply, |reply| {
            let found = self.files.iter().position(|f| OsStr::new(&f.name) == name);
            let ino = match (parent.0, found) {
                (1, Some(i)) => i as u64 + 2,
                _ => return Err(Errno::ENOENT),
            };
            answer(reply).entry(&ATTR_TTL, &self.attr(ino)?, Generation(0));
            Ok(())
        })
    }

    fn getattr(&self, _: &Request, ino: INodeNo, _: Option<FileHandle>, reply: ReplyAttr) {
        guarded(reply, |reply| {
            answer(reply).attr(&ATTR_TTL, &self.attr(ino.0)?);
            Ok(())
        })
    }

    fn open(&self, _: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        guarded(reply, |reply| {
            let file = self.file(ino.0)?;
            if flags.acc_mode() != OpenAccMode::O_RDONLY && file.write.is_none() {
                return Err(Errno::EROFS);
            }
            let fh = self.open.insert(file.data.clone());
            answer(reply).opened(fh, FopenFlags::FOPEN_KEEP_CACHE);
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
        self.open.answer_read(fh, (offset, size), reply, |e| {
            let name = self.file(ino.0).map_or("?", |f| f.name.as_str());
            log_error(&self.origin, name, &format!("at byte {offset}: {e}"));
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
            let file = self.file(ino.0)?;
            let write = file.write.as_ref().ok_or(Errno::EROFS)?;
            write.write_all_at(offset, data).map_err(|e| {
                log_error(
                    &self.origin,
                    &file.name,
                    &format!("writing at byte {offset}: {e}"),
                );
                errno(&e)
            })?;
            answer(reply).written(data.len() as u32);
            Ok(())
        })
    }

    fn fsync(&self, _: &Request, ino: INodeNo, _: FileHandle, _: bool, reply: ReplyEmpty) {
        guarded(reply, |reply| {
            let file = self.file(ino.0)?;
            if let Some(write) = &file.write {
                write.sync().map_err(|e| {
                    log_error(&self.origin, &file.name, &format!("syncing: {e}"));
                    errno(&e)
                })?;
            }
            answer(reply).ok();
            Ok(())
        })
    }

    fn flush(&self, _: &Request, _: INodeNo, _: FileHandle, _: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    /// A disk keeps its size: only a truncation to the size it has (an `O_TRUNC` open of a
    /// tool that rewrites it whole, as dd without conv=notrunc) is taken, and changes nothing.
    fn setattr(
        &self,
        _: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _: Option<TimeOrNow>,
        _: Option<TimeOrNow>,
        _: Option<SystemTime>,
        _: Option<FileHandle>,
        _: Option<SystemTime>,
        _: Option<SystemTime>,
        _: Option<SystemTime>,
        _: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        guarded(reply, |reply| {
            let attr = self.attr(ino.0)?;
            if mode.is_some() || uid.is_some() || gid.is_some() {
                return Err(Errno::EPERM);
            }
            match size {
                Some(size) if size != attr.size => return Err(Errno::EPERM),
                Some(_) if self.file(ino.0)?.write.is_none() => return Err(Errno::EROFS),
                _ => {}
            }
            answer(reply).attr(&ATTR_TTL, &attr);
            Ok(())
        })
    }

    /// The mount is gone: what the image keeps about the whole disk is brought up to date.
    fn destroy(&mut self) {
        if let Some(disk) = &self.writable {
            if let Err(e) = disk.finish() {
                log_error(
                    &self.origin,
                    "disk",
                    &format!("bringing the image up to date: {e}"),
                );
                crate::registry::report_unsaved(&format!(
                    "the image could not be brought up to date: {e}"
                ));
            }
        }
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
        self.open.remove(fh);
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
            if ino.0 != 1 {
                return Err(Errno::ENOTDIR);
            }
            let mut reply = answer(reply);
            let dots = [
                (".", 1, FileType::Directory),
                ("..", 1, FileType::Directory),
            ];
            let files = self
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name.as_str(), i as u64 + 2, FileType::RegularFile));
            for (i, (name, child, kind)) in dots.into_iter().chain(files).enumerate() {
                if i as u64 >= offset && reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                    break;
                }
            }
            reply.ok();
            Ok(())
        })
    }

    fn statfs(&self, _: &Request, _: INodeNo, reply: ReplyStatfs) {
        guarded(reply, |reply| {
            let blocks = self.files[0].data.size().div_ceil(4096);
            answer(reply).statfs(blocks, 0, 0, self.files.len() as u64, 0, 4096, 255, 4096);
            Ok(())
        })
    }
}
