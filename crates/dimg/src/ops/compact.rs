//! Compacting sparse images and bundles (`hdiutil compact`): the bands that the volumes inside
//! mark wholly free (HFS+'s allocation bitmap, the FAT, APFS's space manager) are given back. A
//! bundle loses those band files; a sparse image is rewritten without them and replaces itself
//! atomically. A band holding one used block is kept whole, so nothing a volume uses is ever
//! touched. With a shadow file (`compact -shadow`) it is the shadow that is compacted: the bands
//! it holds that the volumes, as it changed them, mark wholly free are left out of it, so that
//! the image (never opened for writing) answers there again — with bytes no volume uses.

use super::job::{Cancel, Progress};
use super::sparse::{write_image, SparseJob};
use crate::container::{self, shadow::Ranges};
use crate::error::{Error, FormatError, Result};
use crate::fs;
use crate::io::ReadAt;
use crate::secret::Passphrase;
use serde::Serialize;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Serialize)]
pub struct CompactReport {
    pub path: PathBuf,
    pub format: &'static str,
    /// Bytes of the disk its volumes mark free.
    pub free: u64,
    /// Bands given back: each wholly free.
    pub bands_dropped: u64,
    /// Bytes the image takes less on disk.
    pub reclaimed: u64,
}

/// Gives back the space of `path`'s wholly free bands.
pub fn compact(
    path: &Path,
    passphrase: Option<&Passphrase>,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<CompactReport> {
    let opened = container::open(path, passphrase)?;
    let refuse = |reason: String| Error::Refused {
        path: path.into(),
        reason,
    };
    let band = opened.container.band_size().ok_or_else(|| {
        refuse(format!(
            "is a {}: compact works on sparse disk images and sparse bundles",
            opened.format
        ))
    })?;
    let disk = opened.container.disk();
    let free = free_extents(path, &disk)?;
    let free_bytes = free.iter().map(|&(_, len)| len).sum();
    let bands = disk.size().div_ceil(band);
    let dropped: Vec<u64> = (0..bands)
        .filter(|&b| covered(&free, b * band, ((b + 1) * band).min(disk.size())))
        .collect();
    let mut report = CompactReport {
        path: path.into(),
        format: opened.format,
        free: free_bytes,
        bands_dropped: 0,
        reclaimed: 0,
    };
    if path.is_dir() {
        // A bundle: delete the band files. Each deletion leaves a whole image (a missing band
        // reads as zeros, which a free band may hold), so a cancel at any point is safe.
        let folder = path.join("bands");
        progress.begin("Compacting", dropped.len() as u64 * band);
        for (i, b) in dropped.iter().enumerate() {
            cancel.check()?;
            let file = folder.join(format!("{b:x}"));
            match std::fs::metadata(&file) {
                Ok(m) => {
                    std::fs::remove_file(&file).map_err(|e| Error::io(&file, e))?;
                    report.reclaimed += m.blocks() * 512;
                    report.bands_dropped += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&file, e)),
            }
            progress.advance((i as u64 + 1) * band);
        }
        std::fs::File::open(&folder)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(&folder, e))?;
        return Ok(report);
    }
    if opened.format != "Apple sparse disk image" {
        return Err(refuse(format!(
            "is an {} holding a sparse image: compact it after converting it to an \
             unencrypted sparse image, or convert it with -format UDSP again",
            opened.format
        )));
    }
    let before = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    report.bands_dropped = dropped
        .iter()
        .filter(|&&b| !is_hole(&*disk, b, band))
        .count() as u64;
    let masked = FreeBands {
        disk,
        band,
        dropped,
    };
    write_image(
        SparseJob {
            source: path,
            disk: &masked,
            output: path,
            band,
            overwrite: true,
            in_place: true,
            sealer: None,
            seed: None,
        },
        progress,
        cancel,
    )?;
    let after = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    report.reclaimed = (before.blocks() * 512).saturating_sub(after.blocks() * 512);
    Ok(report)
}

/// Gives back the bands of the shadow file `shadow` of `path`'s disk that the volumes, as the
/// shadow changed them, mark wholly free: the shadow is written again without them, beside, and
/// takes the old one's place. The image may be of any format; it is only read.
pub fn compact_shadow(
    path: &Path,
    passphrase: Option<&Passphrase>,
    shadow: &Path,
    cancel: &Cancel,
) -> Result<CompactReport> {
    if !shadow.exists() {
        return Err(Error::Refused {
            path: shadow.into(),
            reason: "does not exist: there is no shadow to compact".into(),
        });
    }
    let image = container::open(path, passphrase)?.container.disk();
    let in_shadow = |e: std::io::Error| Error::io(shadow, e);
    let (disk, held) = container::shadow::read(image.clone(), shadow).map_err(in_shadow)?;
    let free = free_extents(path, &disk)?;
    let (dropped, kept): (Ranges, Ranges) = held
        .into_iter()
        .partition(|&(at, len)| covered(&free, at, at + len));
    let before = std::fs::metadata(shadow).map_err(|e| Error::io(shadow, e))?;
    cancel.check()?;
    if !dropped.is_empty() {
        container::shadow::replace(shadow, image, &*disk, &kept).map_err(in_shadow)?;
    }
    let after = std::fs::metadata(shadow).map_err(|e| Error::io(shadow, e))?;
    Ok(CompactReport {
        path: shadow.into(),
        format: "shadow file",
        free: free.iter().map(|&(_, len)| len).sum(),
        bands_dropped: dropped.len() as u64,
        reclaimed: (before.blocks() * 512).saturating_sub(after.blocks() * 512),
    })
}

/// Whether band `b` reads as zeros only (not stored, or stored empty).
fn is_hole(disk: &dyn ReadAt, b: u64, band: u64) -> bool {
    let mut buf = vec![0u8; 64 << 10];
    let end = ((b + 1) * band).min(disk.size());
    let mut at = b * band;
    while at < end {
        let n = buf.len().min((end - at) as usize);
        if disk.read_exact_at(at, &mut buf[..n]).is_err() || !crate::io::is_zero(&buf[..n]) {
            return false;
        }
        at += n as u64;
    }
    true
}

/// Every range of the disk a volume marks free, as disk offsets, sorted.
fn free_extents(path: &Path, disk: &Arc<dyn ReadAt>) -> Result<Vec<(u64, u64)>> {
    let (_, partitions) = fs::places(&**disk).map_err(|e| Error::io(path, e))?;
    let mut free = Vec::new();
    let mut known = false;
    for p in partitions {
        let volumes = fs::mount(Arc::new(p.open(disk.clone())), None).unwrap_or_default();
        for v in volumes {
            if let Ok(extents) = v.free_extents() {
                known = true;
                free.extend(extents.into_iter().map(|(at, len)| (p.start + at, len)));
            }
        }
    }
    if !known {
        return Err(Error::io(
            path,
            FormatError::io(
                "volume",
                0,
                "holds no volume whose free space dimg reads (HFS+, FAT, APFS): nothing can be given back",
            ),
        ));
    }
    free.sort_unstable();
    // The volumes of an APFS container share its free space: each names it.
    free.dedup();
    Ok(free)
}

/// Whether the sorted, non-overlapping `free` ranges cover `[start, end)` entirely.
fn covered(free: &[(u64, u64)], start: u64, end: u64) -> bool {
    let mut at = start;
    let first = free.partition_point(|&(s, len)| s + len <= start);
    for &(s, len) in &free[first..] {
        if s > at || at >= end {
            break;
        }
        at = at.max(s + len);
    }
    at >= end
}

/// The disk with its dropped bands read as zeros.
struct FreeBands {
    disk: Arc<dyn ReadAt>,
    band: u64,
    dropped: Vec<u64>,
}

impl ReadAt for FreeBands {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let b = offset / self.band;
        let n = buf.len().min(((b + 1) * self.band - offset) as usize);
        if self.dropped.binary_search(&b).is_ok() {
            let n = n.min(self.disk.size().saturating_sub(offset) as usize);
            buf[..n].fill(0);
            return Ok(n);
        }
        self.disk.read_at(offset, &mut buf[..n])
    }
    fn size(&self) -> u64 {
        self.disk.size()
    }
    /// Dropped bands, and the disk's own zeros, a bounded number of bands on.
    fn zeros_until(&self, offset: u64) -> u64 {
        let size = self.size();
        let mut at = offset;
        for _ in 0..4096 {
            if at >= size {
                return size.max(offset);
            }
            let b = at / self.band;
            let band_end = ((b + 1) * self.band).min(size);
            if self.dropped.binary_search(&b).is_err() {
                let zeros = self.disk.zeros_until(at);
                if zeros < band_end {
                    return zeros;
                }
            }
            at = band_end;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::covered;

    #[test]
    fn a_band_is_free_only_when_every_byte_of_it_is() {
        let free = [(0, 10), (10, 5), (20, 100)];
        assert!(covered(&free, 0, 15));
        assert!(!covered(&free, 0, 16));
        assert!(!covered(&free, 14, 21));
        assert!(covered(&free, 20, 120));
        assert!(!covered(&free, 100, 121));
        assert!(!covered(&[], 0, 1));
    }
}
