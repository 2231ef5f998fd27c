//! Restore: the decoded disk of an image written onto a device (Disk Utility's Restore, GNOME
//! Disks' "Restore Disk Image"), then read back from the device and compared.

use super::job::{stream, Cancel, Progress};
use super::read_back::sha256_head;
use crate::bytes::hex;
use crate::device::{self, Device};
use crate::{container, Error, Passphrase, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub target: PathBuf,
    /// Bytes written: the image's disk, from the device's first byte.
    pub written: u64,
    /// SHA-256 of the image's disk, when it was read back to be compared.
    pub sha256: Option<String>,
    /// Whether the device was read back and found to hold exactly that.
    pub verified: bool,
}

/// Writes that bypass the page cache (O_DIRECT, as `dd oflag=direct`): on a disk the cache
/// would only hold a second copy of everything written, for fsync to write out at the end. The
/// blocks [`stream`] hands over are page-aligned memory, as O_DIRECT needs; a tail that is not
/// whole 4 KiB pages, or a device that refuses O_DIRECT, is written through the cache.
struct DirectWrites<'a> {
    device: &'a File,
    direct: bool,
}

const PAGE: usize = 4096;

impl<'a> DirectWrites<'a> {
    fn new(device: &'a File) -> Self {
        let direct = device::set_direct(device, true);
        DirectWrites { device, direct }
    }

    fn write_at(&mut self, block: &[u8], offset: u64) -> io::Result<()> {
        let aligned = offset.is_multiple_of(PAGE as u64) && block.as_ptr().align_offset(PAGE) == 0;
        let whole = match self.direct && aligned {
            true => block.len() / PAGE * PAGE,
            false => 0,
        };
        if whole > 0 {
            self.device.write_all_at(&block[..whole], offset)?;
        }
        if whole < block.len() {
            if self.direct {
                self.direct = !device::set_direct(self.device, false);
            }
            self.device
                .write_all_at(&block[whole..], offset + whole as u64)?;
        }
        Ok(())
    }
}

/// Why `target` must not be overwritten with `image`'s disk of `size` bytes, if it must not.
fn refusal(image: &Path, target: &Device, size: u64) -> Result<Option<String>> {
    if target.size < size {
        return Ok(Some(format!(
            "the image's disk is {size} bytes, more than its {} bytes",
            target.size
        )));
    }
    if let Some(on) = device::holding(image, target) {
        return Ok(Some(format!(
            "the image itself is stored on it ({})",
            on.display()
        )));
    }
    device::in_use(target)
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
    if let Some(reason) = refusal(image, &about, size)? {
        return Err(Error::Refused {
            path: target.to_path_buf(),
            reason,
        });
    }
    // Held exclusively: the kernel refuses while a file system or another program holds it,
    // even one mounted after the check above.
    let device = device::open(target, device::Access::Write)?;
    let mut writes = DirectWrites::new(&device);
    // Hashed only to be compared with what is read back.
    let mut sha = verify.then(Sha256::new);
    let mut written = 0u64;
    let wrote = stream(
        image,
        "Restoring",
        &*disk,
        progress,
        cancel,
        |offset, block| {
            // Hashed on another core while the device takes the block.
            let (wrote, ()) = rayon::join(
                || writes.write_at(block, offset),
                || {
                    if let Some(sha) = &mut sha {
                        sha.update(block);
                    }
                },
            );
            wrote.map_err(|e| Error::io(target, e))?;
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
    // Closed first: the read-back may need the device exclusively too (udisks2's OpenForBackup).
    drop(device);
    let sha256 = match sha {
        Some(sha) => {
            let sha256 = hex(&sha.finalize());
            let read = sha256_head(target, Some(size), "Verifying the disk", progress, cancel)?;
            if read != sha256 {
                return Err(Error::Refused {
                    path: target.to_path_buf(),
                    reason: format!(
                        "read back, it differs from the image (SHA-256 {read}, the image's {sha256})"
                    ),
                });
            }
            Some(sha256)
        }
        None => None,
    };
    Ok(RestoreReport {
        target: target.to_path_buf(),
        written,
        sha256,
        verified: verify,
    })
}
