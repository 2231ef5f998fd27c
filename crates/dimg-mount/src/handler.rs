//! What every FUSE handler shares: a panic or an error becomes an errno for that one request and a
//! line in the server's log, never the end of the mount; open files; attributes.

use dimg::io::ReadAt;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, INodeNo, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr,
};
use std::collections::HashMap;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A read-only image never changes under its mount: the kernel may keep what it was told.
pub const ATTR_TTL: Duration = Duration::from_secs(3600);

/// A reply that can carry an error.
pub trait Failable {
    fn fail(self, errno: Errno);
}

macro_rules! failable {
    ($($reply:ty),*) => {$(
        impl Failable for $reply {
            fn fail(self, errno: Errno) {
                self.error(errno)
            }
        }
    )*};
}
failable!(
    ReplyAttr,
    ReplyCreate,
    ReplyData,
    ReplyDirectory,
    ReplyEmpty,
    ReplyEntry,
    ReplyOpen,
    ReplyStatfs,
    ReplyWrite,
    ReplyXattr
);

/// Runs one request's handler. The handler takes the reply out of its slot (with [`answer`]) when
/// it answers; if it returns an error first, that error is the answer; if it panics, the request
/// gets EIO (the panic message is in the log) and the mount stays up.
pub fn guarded<R: Failable>(reply: R, handler: impl FnOnce(&mut Option<R>) -> Result<(), Errno>) {
    let mut slot = Some(reply);
    let outcome = catch_unwind(AssertUnwindSafe(|| handler(&mut slot)));
    let errno = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(errno)) => errno,
        Err(_) => Errno::EIO,
    };
    if let Some(reply) = slot.take() {
        reply.fail(errno);
    }
}

/// The reply, to answer with.
pub fn answer<R>(slot: &mut Option<R>) -> R {
    slot.take().expect("a request is answered once")
}

/// The errno a reader gets for what the engine reported.
pub fn errno(e: &io::Error) -> Errno {
    match e.kind() {
        io::ErrorKind::NotFound => Errno::ENOENT,
        io::ErrorKind::NotADirectory => Errno::ENOTDIR,
        io::ErrorKind::IsADirectory => Errno::EISDIR,
        _ => e.raw_os_error().map_or(Errno::EIO, Errno::from_i32),
    }
}

/// One line in the server's log (its standard error).
/// Linux lets unprivileged programs keep only `user.` attributes: with the prefix, `cp -a` and
/// file managers carry them off the volume, and they read as `dimg extract` writes them.
pub const XATTR_PREFIX: &str = "user.";

/// Replies with the value, its size, or ERANGE, as getxattr and listxattr do.
pub fn reply_sized(reply: ReplyXattr, size: u32, value: &[u8]) {
    match size {
        0 => reply.size(value.len() as u32),
        n if (n as usize) < value.len() => reply.error(Errno::ERANGE),
        _ => reply.data(value),
    }
}

pub fn log_error(origin: &str, name: &str, problem: &dyn std::fmt::Display) {
    eprintln!("dimg mount: {origin}: {name}: {problem}");
}

pub fn mounting_user() -> (u32, u32) {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

pub fn attr(
    ino: u64,
    kind: FileType,
    size: u64,
    perm: u32,
    nlink: u32,
    (uid, gid): (u32, u32),
    time: SystemTime,
) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: time,
        mtime: time,
        ctime: time,
        crtime: time,
        kind,
        perm: (perm & 0o7777) as u16,
        nlink,
        uid,
        gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// Open files: each handle a byte source of the engine's.
#[derive(Default)]
pub struct Handles {
    open: Mutex<HashMap<u64, Arc<dyn ReadAt>>>,
    next: AtomicU64,
}

impl Handles {
    pub fn insert(&self, data: Arc<dyn ReadAt>) -> FileHandle {
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(fh, data);
        FileHandle(fh)
    }

    pub fn remove(&self, fh: FileHandle) {
        self.lock().remove(&fh.0);
    }

    /// Answers a read of an open file; `log` records what went wrong, when something does.
    pub fn answer_read(
        &self,
        fh: FileHandle,
        (offset, size): (u64, u32),
        reply: ReplyData,
        log: impl FnOnce(&io::Error),
    ) {
        guarded(reply, |reply| {
            let data = self.read(fh, offset, size).map_err(|e| {
                log(&e);
                errno(&e)
            })?;
            answer(reply).data(&data);
            Ok(())
        })
    }

    /// Up to `size` bytes at `offset`: fewer only at the end. The kernel bounds `size` (its
    /// largest read), so one request never costs more than that much decoding.
    fn read(&self, fh: FileHandle, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        let data = self.lock().get(&fh.0).cloned().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "a file that is not open")
        })?;
        let len = u64::from(size).min(data.size().saturating_sub(offset)) as usize;
        let mut buf = vec![0; len];
        data.read_exact_at(offset, &mut buf)?;
        Ok(buf)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<dyn ReadAt>>> {
        // Entries are whole: a panic elsewhere cannot leave the table half-changed.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}
