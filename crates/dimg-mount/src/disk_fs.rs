//! `attach -nomount`: the image's decoded disk as one file, `disk`, and each partition beside it
//! as `disks1`, `disks2`... (hdiutil's `/dev/disk4`, `/dev/disk4s1`). Any tool reads them; root
//! can loop-attach `disk` so that Linux mounts the file systems its kernel knows.

use crate::handler::{answer, attr, guarded, log_error, mounting_user, Handles, ATTR_TTL};
use dimg::io::ReadAt;
use dimg::partition::Partition;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, Request,
};
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::SystemTime;

pub struct DiskFs {
    origin: String,
    /// (name, bytes); inode = index + 2 (1 is the folder).
    files: Vec<(String, Arc<dyn ReadAt>)>,
    time: SystemTime,
    open: Handles,
}

impl DiskFs {
    pub fn new(
        origin: String,
        disk: Arc<dyn ReadAt>,
        partitions: &[Partition],
        time: SystemTime,
    ) -> Self {
        let mut files = vec![("disk".to_string(), disk.clone())];
        for p in partitions.iter().filter(|p| p.index > 0) {
            let slice: Arc<dyn ReadAt> = Arc::new(p.open(disk.clone()));
            files.push((format!("disks{}", p.index), slice));
        }
        DiskFs {
            origin,
            files,
            time,
            open: Handles::default(),
        }
    }

    /// The names this folder holds, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|(n, _)| n.as_str())
    }

    fn attr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let user = mounting_user();
        if ino == 1 {
            return Ok(attr(1, FileType::Directory, 0, 0o555, 2, user, self.time));
        }
        let (_, data) = self.file(ino)?;
        let size = data.size();
        Ok(attr(
            ino,
            FileType::RegularFile,
            size,
            0o444,
            1,
            user,
            self.time,
        ))
    }

    fn file(&self, ino: u64) -> Result<&(String, Arc<dyn ReadAt>), Errno> {
        let index = ino.checked_sub(2).ok_or(Errno::ENOENT)?;
        self.files.get(index as usize).ok_or(Errno::ENOENT)
    }
}

impl Filesystem for DiskFs {
    fn lookup(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        guarded(reply, |reply| {
            let found = self.files.iter().position(|(n, _)| OsStr::new(n) == name);
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
            if flags.acc_mode() != OpenAccMode::O_RDONLY {
                return Err(Errno::EROFS);
            }
            let (_, data) = self.file(ino.0)?;
            let fh = self.open.insert(data.clone());
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
            let name = self.file(ino.0).map_or("?", |(n, _)| n.as_str());
            log_error(&self.origin, name, &format!("at byte {offset}: {e}"));
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
                .map(|(i, (n, _))| (n.as_str(), i as u64 + 2, FileType::RegularFile));
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
            let blocks = self.files[0].1.size().div_ceil(4096);
            answer(reply).statfs(blocks, 0, 0, self.files.len() as u64, 0, 4096, 255, 4096);
            Ok(())
        })
    }
}
