//! Restore: the decoded disk of an image written onto a device (Disk Utility's Restore, GNOME
//! Disks' "Restore Disk Image"), then read back from the device and compared.

use super::{hex, sha256_head, stream, Cancel, Progress};
use crate::device::{self, Device};
use crate::{container, Error, Passphrase, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub target: PathBuf,
    /// Bytes written: the image's disk, from the device's first byte.
    pub written: u64,
    /// SHA-256 of the image's disk.
    pub sha256: String,
    /// Whether the device was read back and found to hold exactly that.
    pub verified: bool,
}

/// Why `target` must not be overwritten with `image`'s disk of `size` bytes, if it must not.
fn refusal(image: &Path, target: &Device, size: u64) -> Option<String> {
    if target.size < size {
        return Some(format!(
            "the image's disk is {size} bytes, more than its {} bytes",
            target.size
        ));
    }
    if let Some(on) = device::holding(image, target) {
        return Some(format!(
            "the image itself is stored on it ({})",
            on.display()
        ));
    }
    target
        .mounted_at()
        .first()
        .map(|point| match *point == Path::new("/") {
            true => "it holds the running system".into(),
            false => format!("it is mounted at {}: eject it first", point.display()),
        })
}

/// Writes the disk of `image` onto the device `target` (its size, mounts and the image's own
/// place checked first), then, with `verify`, reads that many bytes back from the device and
/// compares their SHA-256. A cancel stops at the next block and says how much was written.
pub fn restore(
    image: &Path,
    passphrase: Option<&Passphrase>,
    target: &Path,
    verify: bool,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<RestoreReport> {
    let about = device::describe(target)?;
    let opened = container::open(image, passphrase)?;
    let disk = opened.container.disk();
    let size = disk.size();
    if let Some(reason) = refusal(image, &about, size) {
        return Err(Error::Refused {
            path: target.to_path_buf(),
            reason,
        });
    }
    // Held exclusively: the kernel refuses while a file system or another program holds it,
    // even one mounted after the check above.
    let device = device::open(target, device::Access::Write)?;
    let mut sha = Sha256::new();
    let mut written = 0u64;
    let wrote = stream(
        image,
        "Restoring",
        &*disk,
        progress,
        cancel,
        |offset, block| {
            device
                .write_all_at(block, offset)
                .map_err(|e| Error::io(target, e))?;
            sha.update(block);
            written = offset + block.len() as u64;
            Ok(())
        },
    );
    match wrote {
        Err(Error::Cancelled) => {
            return Err(Error::CancelledPartway {
                path: target.to_path_buf(),
                written,
            })
        }
        other => other?,
    }
    device.sync_all().map_err(|e| Error::io(target, e))?;
    let sha256 = hex(&sha.finalize());
    // What the device holds is read back, not what the page cache kept of the writes.
    // SAFETY: a plain advisory call on an open descriptor.
    unsafe {
        use std::os::fd::AsRawFd;
        libc::posix_fadvise(device.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    // Closed first: the read-back may need the device exclusively too (udisks2's OpenForBackup).
    drop(device);
    if verify {
        let read = sha256_head(target, Some(size), "Verifying the disk", progress, cancel)?;
        if read != sha256 {
            return Err(Error::Refused {
                path: target.to_path_buf(),
                reason: format!(
                    "read back, it differs from the image (SHA-256 {read}, the image's {sha256})"
                ),
            });
        }
    }
    Ok(RestoreReport {
        target: target.to_path_buf(),
        written,
        sha256,
        verified: verify,
    })
}
