//! Where jobs write. [`AtomicOutput`]: a temporary file beside the target, given the target's name
//! only when finished and fsynced; dropping an unfinished one removes it, so an error or a cancel
//! leaves nothing behind. On Linux the temporary file has no name at all (O_TMPFILE), so even a
//! killed process leaves nothing. Folders being made ([`staging`]) are named after the process,
//! and the next job beside them removes those of processes that are gone. [`Encrypting`]: an
//! output sealed in an encrypted image on the way.

use crate::container::encrypted::{self, Sealer};
use crate::error::{Error, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The folder `path` is in: its parent, or "." for a bare name (whose parent is "").
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// What staging names start with: ".dimg-PID-", so that a folder or file left by a killed job
/// can be told from one a running job is making.
fn staging_prefix() -> String {
    format!(".dimg-{}-", std::process::id())
}

/// Removes what jobs that are no longer running left in `dir` while making their output: a
/// killed process cannot clean up after itself. Best effort: what cannot be removed stays.
fn sweep_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(".dimg-")) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
        // SAFETY: kill with signal 0 sends nothing; it only asks whether the process exists.
        let gone = pid.is_some_and(|pid| {
            pid > 0
                && unsafe { libc::kill(pid, 0) } == -1
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        });
        if gone && name.to_string_lossy().ends_with(".partial") {
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
        }
    }
}

/// A hidden folder in `dir` to build an output folder in (an extraction, a sparse bundle),
/// renamed into place when complete and removed if dropped; folders that killed jobs left
/// there are removed first.
pub(crate) fn staging(dir: &Path) -> std::io::Result<tempfile::TempDir> {
    sweep_stale(dir);
    tempfile::Builder::new()
        .prefix(&staging_prefix())
        .suffix(".partial")
        .tempdir_in(dir)
}

/// The file an output is written to until it is finished.
enum Temp {
    /// Linux's O_TMPFILE: in the target's folder, without a name until it is linked there.
    #[cfg(target_os = "linux")]
    Unnamed(File),
    /// Elsewhere: a hidden name beside the target, removed if dropped.
    Named(tempfile::NamedTempFile),
}

impl Temp {
    fn in_dir(dir: &Path) -> std::io::Result<Temp> {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // An image is an ordinary file once named: 0666 less the umask.
            let unnamed = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .mode(0o666)
                .custom_flags(libc::O_TMPFILE)
                .open(dir);
            // Naming it goes through /proc; file systems without O_TMPFILE refuse it.
            if let (Ok(file), true) = (unnamed, Path::new("/proc/self/fd").is_dir()) {
                return Ok(Temp::Unnamed(file));
            }
        }
        sweep_stale(dir);
        let prefix = staging_prefix();
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".partial");
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        builder.tempfile_in(dir).map(Temp::Named)
    }

    fn as_file(&self) -> &File {
        match self {
            #[cfg(target_os = "linux")]
            Temp::Unnamed(file) => file,
            Temp::Named(temp) => temp.as_file(),
        }
    }

    /// Gives the finished file the name `target`: replacing what is there, or failing if
    /// something is and `overwrite` is false.
    fn persist(self, target: &Path, overwrite: bool) -> std::io::Result<()> {
        match self {
            Temp::Named(temp) if overwrite => temp.persist(target).map(drop).map_err(|e| e.error),
            Temp::Named(temp) => temp
                .persist_noclobber(target)
                .map(drop)
                .map_err(|e| e.error),
            #[cfg(target_os = "linux")]
            Temp::Unnamed(file) => {
                use std::os::fd::AsRawFd;
                let link = |to: &Path| -> std::io::Result<()> {
                    let from =
                        std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
                    let to = std::ffi::CString::new(to.as_os_str().as_encoded_bytes())?;
                    // SAFETY: both are NUL-terminated paths that live across the call.
                    let done = unsafe {
                        libc::linkat(
                            libc::AT_FDCWD,
                            from.as_ptr(),
                            libc::AT_FDCWD,
                            to.as_ptr(),
                            libc::AT_SYMLINK_FOLLOW,
                        )
                    };
                    match done {
                        0 => Ok(()),
                        _ => Err(std::io::Error::last_os_error()),
                    }
                };
                if !overwrite {
                    return link(target);
                }
                // Linked under a staging name first, then renamed over the target: the
                // target is the old file or the new one, never neither.
                let aside = folder_of(target).join(format!(
                    "{}{}.partial",
                    staging_prefix(),
                    file.as_raw_fd()
                ));
                link(&aside)?;
                std::fs::rename(&aside, target).inspect_err(|_| {
                    let _ = std::fs::remove_file(&aside);
                })
            }
        }
    }
}

pub struct AtomicOutput {
    temp: Temp,
    target: PathBuf,
    overwrite: bool,
    /// Where the next write goes; past the last write when it ended in a hole.
    position: u64,
}

/// An existing `target` is replaced only when asked to be.
pub fn refuse_existing(target: &Path, overwrite: bool) -> Result<()> {
    match target.exists() && !overwrite {
        true => Err(Error::Refused {
            path: target.to_path_buf(),
            reason: "already exists (use -ov to overwrite)".into(),
        }),
        false => Ok(()),
    }
}

/// Refuses a target that is the source itself (by path or by inode).
pub fn refuse_source(source: &Path, target: &Path) -> Result<()> {
    match same_file(source, target) {
        true => Err(Error::Refused {
            path: target.to_path_buf(),
            reason: "is the source image itself; choose another output".into(),
        }),
        false => Ok(()),
    }
}

impl AtomicOutput {
    /// Refuses a target that is the source itself (by path or by inode) or that exists without
    /// `overwrite`.
    pub fn create(source: &Path, target: &Path, overwrite: bool) -> Result<Self> {
        refuse_source(source, target)?;
        refuse_existing(target, overwrite)?;
        Self::beside(target, overwrite)
    }

    /// An output that will replace `target` itself when finished: an image rewritten in place
    /// (`compact`), read until then through the file it replaces.
    pub(crate) fn replacing(target: &Path) -> Result<Self> {
        Self::beside(target, true)
    }

    fn beside(target: &Path, overwrite: bool) -> Result<Self> {
        if crate::remote::is_url(target) {
            return Err(Error::Refused {
                path: target.into(),
                reason: "is on a server: dimg reads images there, and writes them to files".into(),
            });
        }
        let temp = Temp::in_dir(folder_of(target)).map_err(|e| Error::io(target, e))?;
        Ok(AtomicOutput {
            temp,
            target: target.to_path_buf(),
            overwrite,
            position: 0,
        })
    }

    pub(crate) fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.temp
            .as_file()
            .write_all_at(bytes, offset)
            .map_err(|e| Error::io(&self.target, e))?;
        self.position = self.position.max(offset + bytes.len() as u64);
        Ok(())
    }

    /// Writes `bytes` at `offset`, each zero 4 KiB piece left a hole (a run of pieces with data
    /// in one write).
    pub(crate) fn write_data_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        for (at, run) in crate::io::data_runs(bytes, 4096) {
            self.write_at(offset + at as u64, run)?;
        }
        Ok(())
    }

    /// Makes the file at least `len` bytes long when finished, what is not written a hole.
    pub(crate) fn extend_to(&mut self, len: u64) {
        self.position = self.position.max(len);
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let file = self.temp.as_file();
        file.write_all_at(bytes, self.position)
            .map_err(|e| Error::io(&self.target, e))?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// Like `write_all`, but an all-zero block becomes a hole: raw disks are mostly free space,
    /// and a sparse file reads back the same zeros without writing them.
    pub fn write_sparse(&mut self, bytes: &[u8]) -> Result<()> {
        if crate::io::is_zero(bytes) {
            self.position += bytes.len() as u64;
            Ok(())
        } else {
            self.write_all(bytes)
        }
    }

    /// Flushes to stable storage and renames into place; returns the file's size.
    pub fn finish(self) -> Result<u64> {
        let target = self.target;
        let file = self.temp.as_file();
        // A trailing hole is made real by the file's length.
        file.set_len(self.position)
            .map_err(|e| Error::io(&target, e))?;
        file.sync_all().map_err(|e| Error::io(&target, e))?;
        let size = file.metadata().map_err(|e| Error::io(&target, e))?.len();
        self.temp
            .persist(&target, self.overwrite)
            .map_err(|e| Error::io(&target, e))?;
        if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the rename itself durable; not every platform can open a directory.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(size)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) if a == b => return true,
        _ => {}
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (a.metadata(), b.metadata()) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    false
}

/// What an image's bytes are written to, in order.
pub trait Sink {
    fn write_all(&mut self, bytes: &[u8]) -> Result<()>;
    /// The same, where zeros need not be stored (raw disks: a hole).
    fn write_sparse(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_all(bytes)
    }
    /// `len` bytes known to be zeros, left a hole without looking where the sink can leave
    /// one: whether it did (if not, they are to be written as bytes).
    fn write_zeros(&mut self, len: u64) -> Result<bool> {
        let _ = len;
        Ok(false)
    }
}

impl Sink for AtomicOutput {
    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        AtomicOutput::write_all(self, bytes)
    }
    fn write_sparse(&mut self, bytes: &[u8]) -> Result<()> {
        AtomicOutput::write_sparse(self, bytes)
    }
    fn write_zeros(&mut self, len: u64) -> Result<bool> {
        self.position += len;
        Ok(true)
    }
}

/// Encrypts what is written to it into an `encrcdsa` image: ciphertext after the header space,
/// in batches of blocks encrypted on all cores; the header last, when the size is known.
pub struct Encrypting<'a> {
    out: &'a mut AtomicOutput,
    sealer: Sealer,
    pending: Vec<u8>,
    blocks_done: u64,
    plain_bytes: u64,
}

const ENCRYPT_BATCH: usize = 1 << 20;

impl<'a> Encrypting<'a> {
    pub fn new(out: &'a mut AtomicOutput, sealer: Sealer) -> Self {
        Encrypting {
            out,
            sealer,
            pending: Vec::with_capacity(2 * ENCRYPT_BATCH),
            blocks_done: 0,
            plain_bytes: 0,
        }
    }

    fn seal(&mut self, bytes: usize) -> Result<()> {
        let mut batch: Vec<u8> = self.pending.drain(..bytes).collect();
        self.sealer.encrypt(self.blocks_done, &mut batch);
        let at = encrypted::DATA_OFFSET + self.blocks_done * encrypted::BLOCK as u64;
        self.out.write_at(at, &batch)?;
        self.blocks_done += (batch.len() / encrypted::BLOCK) as u64;
        Ok(())
    }

    /// Seals the last partial block (zero-padded, as hdiutil does) and writes the header.
    pub fn finish(mut self) -> Result<()> {
        let tail = self.pending.len().next_multiple_of(encrypted::BLOCK);
        self.pending.resize(tail, 0);
        self.seal(tail)?;
        self.out.write_at(0, &self.sealer.header(self.plain_bytes))
    }
}

impl Sink for Encrypting<'_> {
    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.pending.extend_from_slice(bytes);
        self.plain_bytes += bytes.len() as u64;
        if self.pending.len() >= ENCRYPT_BATCH {
            let whole = self.pending.len() / encrypted::BLOCK * encrypted::BLOCK;
            self.seal(whole)?;
        }
        Ok(())
    }
}
