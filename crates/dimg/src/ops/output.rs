//! Atomic output: a job writes into a temporary file beside the target, and only a finished,
//! fsynced file is renamed into place. Dropping an unfinished output removes it, so an error or
//! a cancel leaves nothing behind.

use crate::error::{Error, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub struct AtomicOutput {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
    overwrite: bool,
    /// Where the next write goes; past the last write when it ended in a hole.
    position: u64,
}

impl AtomicOutput {
    /// Refuses a target that is the source itself (by path or by inode) or that exists without
    /// `overwrite`.
    pub fn create(source: &Path, target: &Path, overwrite: bool) -> Result<Self> {
        let refuse = |reason: &str| Error::Refused {
            path: target.to_path_buf(),
            reason: reason.into(),
        };
        if same_file(source, target) {
            return Err(refuse("is the source image itself; choose another output"));
        }
        if target.exists() && !overwrite {
            return Err(refuse("already exists (use -ov to overwrite)"));
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".dimg-").suffix(".partial");
        // An image is an ordinary file once renamed: 0666 less the umask, not a temp file's 0600.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let temp = builder.tempfile_in(dir).map_err(|e| Error::io(target, e))?;
        Ok(AtomicOutput {
            temp,
            target: target.to_path_buf(),
            overwrite,
            position: 0,
        })
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
        if bytes.iter().all(|&b| b == 0) {
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
        let persisted = if self.overwrite {
            self.temp.persist(&target)
        } else {
            self.temp.persist_noclobber(&target)
        };
        persisted.map_err(|e| Error::io(&target, e.error))?;
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
