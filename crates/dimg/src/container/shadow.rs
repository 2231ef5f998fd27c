//! Shadow files (hdiutil's `-shadow`): what is written to an image that stays as it is, kept in
//! a sparse image of the same disk size beside it (`IMAGE.shadow` by default). The shadow's bands
//! hold the changed parts of the disk and the rest reads from the image, which is never opened
//! for writing; attached again with the same shadow, the changes are there, and `convert -shadow`
//! writes the changed disk as a new image.

use super::{sparseimage, Container, Fact, LayoutEntry};
use crate::io::{FileSource, ReadAt, WriteAt};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bands of a shadow dimg makes: 64 KiB, so that a small change copies little of the image.
const BAND: u64 = 64 << 10;

/// Where a shadow goes when none is named: beside the image, `.shadow` added to its name.
pub fn default_path(image: &Path) -> PathBuf {
    let mut name = image.file_name().unwrap_or_default().to_os_string();
    name.push(".shadow");
    image.with_file_name(name)
}

/// The disk `under` as the shadow file at `path` changes it, to be written; the shadow is made,
/// empty, when there is none yet.
pub fn open_writable(under: Arc<dyn ReadAt>, path: &Path) -> io::Result<Arc<dyn WriteAt>> {
    if !path.exists() {
        make(path, under.size())?;
    }
    sparseimage::over_writable(Arc::new(FileSource::open_writable(path)?), under)
}

/// The disk `under` as the shadow file at `path` changed it, to read.
pub fn open(under: Arc<dyn ReadAt>, path: &Path) -> io::Result<Arc<dyn ReadAt>> {
    sparseimage::over(Arc::new(FileSource::open(path)?), under)
}

/// Ranges of a disk, (offset, length) each.
pub type Ranges = Vec<(u64, u64)>;

/// The disk `under` as the shadow file at `path` changed it, and the ranges of it the shadow
/// holds; `under` itself and none when there is no shadow yet.
pub fn read(under: Arc<dyn ReadAt>, path: &Path) -> io::Result<(Arc<dyn ReadAt>, Ranges)> {
    if !path.exists() {
        return Ok((under, Vec::new()));
    }
    let file: Arc<dyn ReadAt> = Arc::new(FileSource::open(path)?);
    Ok((
        sparseimage::over(file.clone(), under)?,
        sparseimage::stored(file)?,
    ))
}

/// Puts at `path` a new shadow over `under` in which the disk reads as `disk` (of the size the
/// shadow takes) in the `ranges` (offset, length) given and as `under` elsewhere. It is written
/// beside and renamed into place, so that a crash leaves the old shadow or the new one whole.
pub fn replace(
    path: &Path,
    under: Arc<dyn ReadAt>,
    disk: &dyn ReadAt,
    ranges: &[(u64, u64)],
) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let beside = path.with_file_name(format!(".dimg-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&beside);
    let written = (|| {
        make(&beside, disk.size())?;
        let file = Arc::new(FileSource::open_writable(&beside)?);
        let shadow = sparseimage::over_writable(file, under)?;
        let mut piece = vec![0u8; 1 << 20];
        for &(start, len) in ranges {
            let end = (start + len).min(disk.size());
            let mut at = start;
            while at < end {
                let n = (end - at).min(piece.len() as u64) as usize;
                disk.read_exact_at(at, &mut piece[..n])?;
                shadow.write_all_at(at, &piece[..n])?;
                at += n as u64;
            }
        }
        shadow.sync()?;
        std::fs::rename(&beside, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&beside);
    }
    written
}

/// An empty sparse image of a disk of `size` bytes: its header node alone, made new.
fn make(path: &Path, size: u64) -> io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    for (_, node) in sparseimage::Index::new(BAND).nodes(size) {
        file.write_all(&node)?;
    }
    file.sync_all()
}

/// An image read as its shadow file changed it: its own checksums no longer apply.
pub struct Shadowed {
    inner: Box<dyn Container>,
    disk: Arc<dyn ReadAt>,
    path: PathBuf,
}

impl Shadowed {
    pub fn open(inner: Box<dyn Container>, path: &Path) -> io::Result<Shadowed> {
        Ok(Shadowed {
            disk: open(inner.disk(), path)?,
            inner,
            path: path.to_path_buf(),
        })
    }

    /// The image read through `disk`, a shadow of its disk opened to be written (its reads see
    /// its writes), from the shadow file at `path`.
    pub fn over(inner: Box<dyn Container>, disk: Arc<dyn WriteAt>, path: &Path) -> Shadowed {
        Shadowed {
            disk,
            inner,
            path: path.to_path_buf(),
        }
    }
}

impl Container for Shadowed {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }
    fn facts(&self) -> Vec<Fact> {
        let mut facts = self.inner.facts();
        facts.push(Fact::new("Shadow file", self.path.display()));
        facts
    }
    /// The image's own partition layout while the shadow keeps its disk's size; a disk
    /// `resize -shadow` resized is laid out anew from its partition map.
    fn layout(&self) -> Option<Vec<LayoutEntry>> {
        (self.disk.size() == self.inner.disk().size())
            .then(|| self.inner.layout())
            .flatten()
    }
    fn band_size(&self) -> Option<u64> {
        self.inner.band_size()
    }
}
