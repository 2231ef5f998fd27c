//! Resizing read/write images (`hdiutil resize`): UDRW, sparse images and sparse bundles whose
//! disk is an HFS+ volume, bare or as the last partition of a GPT. The new disk is described as
//! the old one with a few structures rewritten — the GPT's headers and entries (the backup
//! moves to the new end), the volume's header and its alternate, the allocation bitmap — and
//! is written in the image's own format beside it, then renamed into place. With a shadow file
//! (`resize -shadow`), any image's disk as the shadow changed it is resized: the shadow takes
//! the new size and the rewritten structures, and the image is never opened for writing.

use super::convert::{write, ConvertOptions, OutputFormat};
use super::job::{Cancel, Progress};
use crate::container::{self, Container, Fact};
use crate::error::{Error, FormatError, Result};
use crate::fs::{self, hfsplus};
use crate::io::{Patched, ReadAt, Slice};
use crate::magic::Signature;
use crate::partition::gpt;
use crate::secret::Passphrase;
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SECTOR: u64 = 512;

/// The sizes an image can take (`resize -limits`): bytes of its disk.
#[derive(Debug, Serialize)]
pub struct Limits {
    pub path: PathBuf,
    /// Down to the volume's last used block.
    pub minimum: u64,
    pub current: u64,
    /// As far as HFS+ can count its blocks.
    pub maximum: u64,
}

#[derive(Debug, Serialize)]
pub struct ResizeReport {
    pub path: PathBuf,
    /// The format written: the image's own, or a shadow's (a sparse image).
    pub format: OutputFormat,
    /// The shadow file that took the change, when one did.
    pub shadow: Option<PathBuf>,
    pub old_size: u64,
    pub new_size: u64,
}

/// The smallest, current and largest sizes of the image's disk.
pub fn limits(path: &Path, passphrase: Option<&Passphrase>) -> Result<Limits> {
    let (_, disk) = open(path, passphrase)?;
    limits_of(path, &disk)
}

/// The smallest, current and largest sizes of the image's disk as the shadow file `shadow`
/// changed it.
pub fn limits_shadow(
    path: &Path,
    passphrase: Option<&Passphrase>,
    shadow: &Path,
) -> Result<Limits> {
    let image = container::open(path, passphrase)?.container.disk();
    let (disk, _) = container::shadow::read(image, shadow).map_err(|e| Error::io(shadow, e))?;
    limits_of(path, &disk)
}

fn limits_of(path: &Path, disk: &Arc<dyn ReadAt>) -> Result<Limits> {
    let plan = Plan::read(disk).map_err(|e| Error::io(path, e))?;
    Ok(Limits {
        path: path.into(),
        minimum: plan.minimum(),
        current: disk.size(),
        maximum: plan.maximum(),
    })
}

/// Gives the image's disk `size` bytes (whole sectors): the last partition and its HFS+ volume
/// grow or shrink with it.
pub fn resize(
    path: &Path,
    passphrase: Option<&Passphrase>,
    size: u64,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ResizeReport> {
    let (written, disk) = open(path, passphrase)?;
    let plan = Plan::read(&disk).map_err(|e| Error::io(path, e))?;
    let size = plan.check(path, size)?;
    let resized = Resized {
        disk: Arc::new(
            plan.apply(disk.clone(), size)
                .map_err(|e| Error::io(path, e))?,
        ),
    };
    // Written beside the image, then put in its place: the old one is read until then.
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let beside = path.with_file_name(format!(".dimg-resize-{}-{name}", std::process::id()));
    let mut options = ConvertOptions::new(written.format);
    options.sparse_band_sectors = written.band.map(|b| b / SECTOR);
    let io = |e: io::Error| Error::io(path, e);
    match write(path, &resized, &beside, &options, progress, cancel) {
        Ok(_) if path.is_dir() => {
            let aside = path.with_file_name(format!(".dimg-resized-{}-{name}", std::process::id()));
            std::fs::rename(path, &aside).map_err(io)?;
            std::fs::rename(&beside, path).map_err(io)?;
            std::fs::remove_dir_all(&aside).map_err(io)?;
        }
        Ok(_) => std::fs::rename(&beside, path).map_err(io)?,
        Err(e) => {
            let _ = std::fs::remove_file(&beside).or_else(|_| std::fs::remove_dir_all(&beside));
            return Err(e);
        }
    }
    Ok(ResizeReport {
        path: path.into(),
        format: written.format,
        shadow: None,
        old_size: disk.size(),
        new_size: size,
    })
}

/// Gives the disk of `path` as the shadow file `shadow` changed it `size` bytes (hdiutil's
/// `resize -shadow`): a new shadow holds what the old one did and the structures the resize
/// rewrites, with the new size, and takes the old one's place. The image may be of any format;
/// it is only read.
pub fn resize_shadow(
    path: &Path,
    passphrase: Option<&Passphrase>,
    shadow: &Path,
    size: u64,
    cancel: &Cancel,
) -> Result<ResizeReport> {
    let image = container::open(path, passphrase)?.container.disk();
    let in_shadow = |e: io::Error| Error::io(shadow, e);
    let (disk, held) = container::shadow::read(image.clone(), shadow).map_err(in_shadow)?;
    let plan = Plan::read(&disk).map_err(|e| Error::io(path, e))?;
    let size = plan.check(path, size)?;
    let changes = plan.changes(size).map_err(|e| Error::io(path, e))?;
    let mut ranges = held;
    ranges.extend(changes.iter().map(|(at, bytes)| (*at, bytes.len() as u64)));
    let resized = plan
        .apply(disk.clone(), size)
        .map_err(|e| Error::io(path, e))?;
    cancel.check()?;
    container::shadow::replace(shadow, image, &resized, &ranges).map_err(in_shadow)?;
    Ok(ResizeReport {
        path: path.into(),
        format: OutputFormat::Udsp,
        shadow: Some(shadow.into()),
        old_size: disk.size(),
        new_size: size,
    })
}

/// The image's format to write again (with its band size), and its disk; refused unless it is
/// read/write.
fn open(path: &Path, passphrase: Option<&Passphrase>) -> Result<(Written, Arc<dyn ReadAt>)> {
    let opened = container::open(path, passphrase)?;
    let refuse = |reason: String| Error::Refused {
        path: path.into(),
        reason,
    };
    let format = resized_format(opened.format, opened.container.read_write()).map_err(refuse)?;
    let written = Written {
        format,
        band: opened.container.band_size(),
    };
    Ok((written, opened.container.disk()))
}

/// The format an image of `format` is written again in when resized: its own, for the images
/// dimg resizes (unencrypted UDRW images, sparse images and bundles); else why not.
pub(crate) fn resized_format(
    format: &'static str,
    read_write: bool,
) -> std::result::Result<OutputFormat, String> {
    if !read_write {
        return Err(format!(
            "is a compressed or read-only {format}: convert it to a read/write format first \
             (UDRW, UDSP or UDSB)"
        ));
    }
    match format {
        "Apple UDIF disk image" => Ok(OutputFormat::Udrw),
        "Apple sparse disk image" => Ok(OutputFormat::Udsp),
        f if f == container::sparsebundle::FORMAT => Ok(OutputFormat::Udsb),
        other => Err(format!(
            "is an {other}: dimg resizes unencrypted UDRW images, sparse images and bundles"
        )),
    }
}

/// How a resized image is written: its own format, a sparse one with its own band size.
struct Written {
    format: OutputFormat,
    band: Option<u64>,
}

/// What a resize changes: the GPT around the volume, if any, and the HFS+ volume itself.
struct Plan {
    gpt: Option<gpt::Resizable>,
    /// Where the volume starts and how long it is.
    start: u64,
    length: u64,
    volume: hfsplus::Resizable,
    disk_size: u64,
}

impl Plan {
    fn read(disk: &Arc<dyn ReadAt>) -> io::Result<Plan> {
        let gpt = gpt::Resizable::read(&**disk)?;
        let (start, length) = gpt
            .as_ref()
            .map_or((0, disk.size()), gpt::Resizable::last_partition);
        let volume = Slice::new(disk.clone(), start, length);
        match fs::identify(&volume)? {
            Some(Signature::HfsPlus | Signature::Hfsx) => {}
            other => {
                return Err(FormatError::io(
                    "volume",
                    start,
                    format!(
                        "holds {}: dimg resizes HFS+ volumes",
                        other.map_or("no file system dimg knows", |s| s.name())
                    ),
                ))
            }
        }
        Ok(Plan {
            gpt,
            start,
            length,
            volume: hfsplus::Resizable::read(&volume, start)?,
            disk_size: disk.size(),
        })
    }

    /// The disk size that leaves the volume just its used blocks and its alternate header.
    fn minimum(&self) -> u64 {
        (self.disk_size - self.length + self.volume.minimum_length()).next_multiple_of(SECTOR)
    }

    /// The disk size at which HFS+ runs out of 32-bit block numbers.
    fn maximum(&self) -> u64 {
        self.disk_size - self.length + self.volume.maximum_length()
    }

    /// `size` rounded down to whole sectors, refused outside the limits.
    fn check(&self, path: &Path, size: u64) -> Result<u64> {
        let size = size / SECTOR * SECTOR;
        let (minimum, maximum) = (self.minimum(), self.maximum());
        if size < minimum || size > maximum {
            return Err(Error::Refused {
                path: path.into(),
                reason: format!(
                    "cannot be {size} bytes: from {minimum} (the volume's last used block) to \
                     {maximum} bytes (see resize -limits)"
                ),
            });
        }
        Ok(size)
    }

    /// The bytes the resize to `size` rewrites, at their offsets of the disk.
    fn changes(&self, size: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let volume = self.volume.resized(self.length + size - self.disk_size)?;
        Ok(volume
            .into_iter()
            .map(|(at, bytes)| (self.start + at, bytes))
            .chain(self.gpt.iter().flat_map(|g| g.resized(size)))
            .collect())
    }

    /// The disk as it is at `size` bytes.
    fn apply(&self, disk: Arc<dyn ReadAt>, size: u64) -> io::Result<Patched> {
        let mut p = Patched::new(disk, size);
        for (at, bytes) in self.changes(size)? {
            p.put(at, bytes);
        }
        Ok(p)
    }
}

/// The resized disk as a container to write.
struct Resized {
    disk: Arc<Patched>,
}

impl Container for Resized {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }
    fn facts(&self) -> Vec<Fact> {
        Vec::new()
    }
}
