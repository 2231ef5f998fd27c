//! Positional byte sources. Every layer reads through [`ReadAt`], which takes `&self` so that one
//! source can serve many threads at once (chunks decompress in parallel, a browser reads while a
//! verify runs).

use std::collections::BTreeMap;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A random-access, fixed-length byte source.
pub trait ReadAt: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`. Returns 0 only at or past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// Length in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` from `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(offset, buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("read past the end at offset {offset}"),
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: ReadAt + ?Sized> ReadAt for Arc<R> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
}

/// A file opened read-only: dimg never opens a source image for writing.
pub struct FileSource {
    file: File,
    size: u64,
}

impl FileSource {
    /// Opens a file or a disk. A FIFO, socket or character device is refused before it is
    /// opened: opening a FIFO waits for a writer that may never come, and none holds an image.
    pub fn open(path: &Path) -> io::Result<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            let kind = std::fs::metadata(path)?.file_type();
            let what = match () {
                _ if kind.is_fifo() => Some("a FIFO"),
                _ if kind.is_socket() => Some("a socket"),
                _ if kind.is_char_device() => Some("a character device"),
                _ => None,
            };
            if let Some(what) = what {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("is {what}, not an image file or a disk"),
                ));
            }
        }
        Self::from_file(File::open(path)?)
    }

    pub fn from_file(file: File) -> io::Result<Self> {
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory, not an image file",
            ));
        }
        // A block device (a disk, a partition, a loop device) says it is 0 bytes long; its end
        // is where a seek to the end lands.
        #[cfg(unix)]
        let size = match std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type()) {
            true => io::Seek::seek(&mut &file, io::SeekFrom::End(0))?,
            false => meta.len(),
        };
        #[cfg(not(unix))]
        let size = meta.len();
        Ok(FileSource { size, file })
    }
}

impl ReadAt for FileSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)
        }
    }
    fn size(&self) -> u64 {
        self.size
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

/// A window `[start, start + len)` of another source: a partition of a disk, a track of a CD.
pub struct Slice {
    inner: Arc<dyn ReadAt>,
    start: u64,
    len: u64,
}

impl Slice {
    /// The window is clipped to the inner source, so a partition table that claims more than the
    /// disk holds cannot make reads wander past it.
    pub fn new(inner: Arc<dyn ReadAt>, start: u64, len: u64) -> Self {
        let start = start.min(inner.size());
        let len = len.min(inner.size() - start);
        Slice { inner, start, len }
    }
}

impl ReadAt for Slice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf.len().min((self.len - offset) as usize);
        self.inner.read_at(self.start + offset, &mut buf[..n])
    }
    fn size(&self) -> u64 {
        self.len
    }
}

/// Sources one after another: the tracks of a disc as one stream.
pub struct Concat {
    parts: Vec<Arc<dyn ReadAt>>,
    /// Where each part starts: a read finds its part by binary search, so a volume built of
    /// 100,000 files reads as fast as one of ten.
    starts: Vec<u64>,
    size: u64,
}

impl Concat {
    pub fn new(parts: Vec<Arc<dyn ReadAt>>) -> Self {
        let mut starts = Vec::with_capacity(parts.len());
        let mut size = 0;
        for p in &parts {
            starts.push(size);
            size += p.size();
        }
        Concat {
            parts,
            starts,
            size,
        }
    }

    /// The extents `(offset, length)` of `source`, in order: a fragmented file.
    pub fn extents(source: &Arc<dyn ReadAt>, extents: &[(u64, u64)]) -> Self {
        let slice = |&(at, len): &(u64, u64)| {
            Arc::new(Slice::new(source.clone(), at, len)) as Arc<dyn ReadAt>
        };
        Concat::new(extents.iter().map(slice).collect())
    }
}

impl ReadAt for Concat {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        // The last part starting at or before the offset that is not empty.
        let mut i = self.starts.partition_point(|&s| s <= offset) - 1;
        while self.parts[i].size() == 0 || offset - self.starts[i] >= self.parts[i].size() {
            i += 1;
        }
        let (p, within) = (&self.parts[i], offset - self.starts[i]);
        let n = buf.len().min((p.size() - within) as usize);
        p.read_at(within, &mut buf[..n])
    }
    fn size(&self) -> u64 {
        self.size
    }
}

/// How each band of a [`BandFolder`] is seen: as it is, or decrypted.
pub type BandView = Box<dyn Fn(Arc<dyn ReadAt>) -> Arc<dyn ReadAt> + Send + Sync>;

/// A disk kept as a folder of band files (a sparse bundle's `bands/`): band `n` holds the disk's
/// bytes from `n × band_size`, in a file named `n` in lower-case hexadecimal. A missing band
/// reads as zeros, and so does the rest of a band shorter than the others.
pub struct BandFolder {
    dir: PathBuf,
    band_size: u64,
    size: u64,
    /// The bands present, with their lengths: checked once, when the folder is opened.
    present: HashMap<u64, u64>,
    view: BandView,
    /// The bands opened last: a few file handles, however many bands there are.
    open: Mutex<VecDeque<(u64, Arc<dyn ReadAt>)>>,
}

/// Band files kept open at once.
const OPEN_BANDS: usize = 16;

impl BandFolder {
    /// The folder `dir` as a disk of `size` bytes in bands of `band_size`. Every name in it must
    /// be a band number within the disk (hidden files aside), and no band longer than a band.
    pub fn open(dir: &Path, band_size: u64, size: u64, view: BandView) -> io::Result<Self> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        if band_size == 0 {
            return Err(bad("the band size is 0".into()));
        }
        let mut present = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let number = u64::from_str_radix(&name, 16)
                .ok()
                .filter(|_| {
                    name.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                })
                .ok_or_else(|| bad(format!("bands/{name}: not a band number (lower-case hex)")))?;
            if number
                .checked_mul(band_size)
                .is_none_or(|start| start >= size)
            {
                return Err(bad(format!(
                    "bands/{name}: band {number} lies past the disk's {size} bytes"
                )));
            }
            let len = entry.metadata()?.len();
            if len > band_size {
                return Err(bad(format!(
                    "bands/{name}: {len} bytes, more than the band size ({band_size})"
                )));
            }
            if present.insert(number, len).is_some() {
                return Err(bad(format!("bands/{name}: band {number} is there twice")));
            }
        }
        Ok(BandFolder {
            dir: dir.to_path_buf(),
            band_size,
            size,
            present,
            view,
            open: Mutex::new(VecDeque::new()),
        })
    }

    /// How many bands hold data, and their bytes.
    pub fn stored(&self) -> (usize, u64) {
        (self.present.len(), self.present.values().sum())
    }

    fn band(&self, number: u64) -> io::Result<Arc<dyn ReadAt>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, band)) = open.iter().find(|(n, _)| *n == number) {
            return Ok(band.clone());
        }
        let file = FileSource::open(&self.dir.join(format!("{number:x}")))?;
        let band = (self.view)(Arc::new(file));
        open.push_front((number, band.clone()));
        open.truncate(OPEN_BANDS);
        Ok(band)
    }
}

/// Where a read of up to `len` bytes at `offset` falls on a disk of `size` bytes kept in bands of
/// `band_size`: (band, offset within it, bytes to take from it); `None` at or past the end.
pub fn band_span(offset: u64, len: usize, band_size: u64, size: u64) -> Option<(u64, u64, usize)> {
    if offset >= size {
        return None;
    }
    let (band, within) = (offset / band_size, offset % band_size);
    let n = (len as u64).min(band_size - within).min(size - offset) as usize;
    Some((band, within, n))
}

impl ReadAt for BandFolder {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Some((number, within, n)) = band_span(offset, buf.len(), self.band_size, self.size)
        else {
            return Ok(0);
        };
        let stored = match self.present.get(&number) {
            Some(&len) if within < len => {
                let want = n.min((len - within) as usize);
                self.band(number)?.read_exact_at(within, &mut buf[..want])?;
                want
            }
            _ => 0,
        };
        buf[stored..n].fill(0);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.size
    }
}

/// Whether every byte is zero. Compared a block at a time against zeros (a memcmp), which is
/// fast in any build: images are mostly zeros, and every writer asks this of every block.
pub fn is_zero(bytes: &[u8]) -> bool {
    static ZEROS: [u8; 4096] = [0; 4096];
    bytes.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

/// `n` zero bytes, without holding them.
pub struct Zeros(pub u64);

impl ReadAt for Zeros {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.0.saturating_sub(offset) as usize);
        buf[..n].fill(0);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.0
    }
}

/// A buffer O_DIRECT accepts: 4096-byte aligned, a whole number of sectors.
pub(crate) struct Aligned {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

// SAFETY: it owns its memory alone, as a Vec does.
unsafe impl Send for Aligned {}

impl Aligned {
    pub(crate) fn new(len: usize) -> Aligned {
        let layout = std::alloc::Layout::from_size_align(len, 4096).expect("a valid layout");
        assert!(len > 0, "an empty aligned buffer");
        // SAFETY: len is non-zero.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory");
        Aligned { ptr, layout }
    }
    pub(crate) fn capacity(&self) -> usize {
        self.layout.size()
    }
    pub(crate) fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: ptr holds layout.size() initialised bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout in `new`.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// A virtual disk being put together in order: metadata blocks, files, padding.
#[derive(Default)]
pub struct Assembly {
    parts: Vec<Arc<dyn ReadAt>>,
    size: u64,
}

impl Assembly {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, part: Arc<dyn ReadAt>) {
        self.size += part.size();
        if part.size() > 0 {
            self.parts.push(part);
        }
    }

    pub fn bytes(&mut self, bytes: Vec<u8>) {
        self.push(Arc::new(bytes));
    }

    /// Zeros up to the next multiple of `unit`.
    pub fn pad_to(&mut self, unit: u64) {
        let pad = self.size.next_multiple_of(unit) - self.size;
        self.push(Arc::new(Zeros(pad)));
    }

    pub fn finish(self) -> Arc<dyn ReadAt> {
        Arc::new(Concat::new(self.parts))
    }
}

/// A disk with some of its bytes replaced, cut or extended with zeros to a new size.
pub struct Patched {
    disk: Arc<dyn ReadAt>,
    size: u64,
    /// Replacements by offset; later ones win where they overlap.
    patches: BTreeMap<u64, Vec<u8>>,
}

impl Patched {
    pub fn new(disk: Arc<dyn ReadAt>, size: u64) -> Self {
        Patched {
            disk,
            size,
            patches: BTreeMap::new(),
        }
    }

    /// Replaces the bytes at `at` (as far as the new size goes).
    pub fn put(&mut self, at: u64, bytes: Vec<u8>) {
        if at < self.size {
            let mut bytes = bytes;
            bytes.truncate((self.size - at) as usize);
            self.patches.insert(at, bytes);
        }
    }
}

impl ReadAt for Patched {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let mut n = buf.len().min((self.size - offset) as usize);
        // A patch covering the offset answers; otherwise the disk does, up to the next patch.
        if let Some((&at, bytes)) = self.patches.range(..=offset).next_back() {
            if offset < at + bytes.len() as u64 {
                let from = (offset - at) as usize;
                let n = n.min(bytes.len() - from);
                buf[..n].copy_from_slice(&bytes[from..from + n]);
                return Ok(n);
            }
        }
        if let Some((&next, _)) = self.patches.range(offset + 1..).next() {
            n = n.min((next - offset) as usize);
        }
        if offset >= self.disk.size() {
            buf[..n].fill(0);
            return Ok(n);
        }
        let n = n.min((self.disk.size() - offset) as usize);
        self.disk.read_at(offset, &mut buf[..n])
    }

    fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_folders_read_missing_and_short_bands_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0"), [1u8; 8]).unwrap();
        std::fs::write(dir.path().join("a"), [2u8; 3]).unwrap();
        let bands = BandFolder::open(dir.path(), 8, 8 * 11 - 4, Box::new(|b| b)).unwrap();
        let mut disk = vec![9u8; 84];
        bands.read_exact_at(0, &mut disk).unwrap();
        let mut want = vec![1u8; 8];
        want.resize(80, 0);
        want.extend([2, 2, 2, 0]);
        assert_eq!(disk, want);
        assert_eq!(bands.stored(), (2, 11));
        // Names that are not band numbers, bands past the end, and long bands are refused.
        for (name, len) in [("B", 1), ("0x1", 1), ("b", 1), ("1", 9)] {
            let bad = tempfile::tempdir().unwrap();
            std::fs::write(bad.path().join(name), vec![0u8; len]).unwrap();
            let e = BandFolder::open(bad.path(), 8, 88, Box::new(|b| b)).err();
            assert!(
                e.is_some_and(|e| e.to_string().contains(&format!("bands/{name}"))),
                "{name}"
            );
        }
    }

    #[test]
    fn slice_is_clipped_to_its_window_and_the_source() {
        let disk: Arc<dyn ReadAt> = Arc::new((0u8..100).collect::<Vec<u8>>());
        let part = Slice::new(disk.clone(), 90, 50);
        assert_eq!(part.size(), 10);
        let mut buf = [0u8; 16];
        assert_eq!(part.read_at(0, &mut buf).unwrap(), 10);
        assert_eq!(&buf[..10], &(90u8..100).collect::<Vec<u8>>()[..]);
        assert_eq!(part.read_at(10, &mut buf).unwrap(), 0);
        assert!(part.read_exact_at(5, &mut buf).is_err());
    }
}
