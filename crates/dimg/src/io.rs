//! Positional byte sources. Every layer reads through [`ReadAt`], which takes `&self` so that one
//! source can serve many threads at once (chunks decompress in parallel, a browser reads while a
//! verify runs).

use std::collections::{BTreeMap, BTreeSet};
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

    /// Where the run of bytes from `offset` known to be zeros ends, at most `size()`: `offset`
    /// itself where none are known to be (the default). Writers step over such runs — a blank
    /// volume's free space, a sparse file's holes — without reading them.
    fn zeros_until(&self, offset: u64) -> u64 {
        offset
    }

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
    fn zeros_until(&self, offset: u64) -> u64 {
        (**self).zeros_until(offset)
    }
}

/// Refuses a FIFO, socket or character device before it is opened: opening a FIFO waits for a
/// writer that may never come, and none holds an image.
fn refuse_special(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path)?.file_type();
    let what = match () {
        _ if kind.is_fifo() => "a FIFO",
        _ if kind.is_socket() => "a socket",
        _ if kind.is_char_device() => "a character device",
        _ => return Ok(()),
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {what}, not an image file or a disk"),
    ))
}

/// A byte store that can be changed in place: the disk a read/write attach serves, and the
/// file under it. Writes take `&self`, as reads do: a FUSE server writes from many threads.
pub trait WriteAt: ReadAt {
    /// Writes all of `buf` at `offset`. A disk keeps its size: a write past its end fails
    /// ([`past_end`]).
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Makes every write so far durable, with what the format keeps about them (a band's file,
    /// its index): a crash after it loses none of them.
    fn sync(&self) -> io::Result<()>;
    /// After the last write (a detach): brings up to date what the format keeps about the whole
    /// disk (checksums over it), then syncs.
    fn finish(&self) -> io::Result<()> {
        self.sync()
    }
}

impl<W: WriteAt + ?Sized> WriteAt for Arc<W> {
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        (**self).write_all_at(offset, buf)
    }
    fn sync(&self) -> io::Result<()> {
        (**self).sync()
    }
    fn finish(&self) -> io::Result<()> {
        (**self).finish()
    }
}

/// Refuses a write of `len` bytes at `offset` that runs past a disk of `size` bytes: the disk is
/// full there, as a device would say (ENOSPC); `resize` grows an image.
pub fn past_end(offset: u64, len: usize, size: u64) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!("a write of {len} bytes at offset {offset} runs past the disk's {size} bytes"),
        )),
    }
}

/// A file opened read-only, or read/write for a read/write attach (the only time dimg writes
/// into an image it did not make). A file written past its end grows (a sparse image takes its
/// new bands there); a block device keeps its size.
pub struct FileSource {
    file: File,
    size: std::sync::atomic::AtomicU64,
    device: bool,
}

impl FileSource {
    /// Opens a file or a disk.
    pub fn open(path: &Path) -> io::Result<Self> {
        refuse_special(path)?;
        Self::from_file(File::open(path)?)
    }

    /// Opens an image's file to be changed in place.
    pub fn open_writable(path: &Path) -> io::Result<Self> {
        refuse_special(path)?;
        Self::from_file(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)?,
        )
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
        let device = std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type());
        let size = match device {
            true => io::Seek::seek(&mut &file, io::SeekFrom::End(0))?,
            false => meta.len(),
        };
        Ok(FileSource {
            size: size.into(),
            file,
            device,
        })
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
        self.size.load(std::sync::atomic::Ordering::Acquire)
    }
    /// A regular file's holes, as the file system tells them (SEEK_DATA).
    #[cfg(unix)]
    fn zeros_until(&self, offset: u64) -> u64 {
        use std::os::fd::AsRawFd;
        let size = self.size();
        if self.device || offset >= size {
            return offset;
        }
        let Ok(at) = libc::off_t::try_from(offset) else {
            return offset;
        };
        // SAFETY: lseek on a descriptor this value owns; it moves no memory. The descriptor's
        // position is not used: every read and write says its offset.
        match unsafe { libc::lseek(self.file.as_raw_fd(), at, libc::SEEK_DATA) } {
            // No data from here on (ENXIO); any other failure knows nothing.
            -1 => match io::Error::last_os_error().raw_os_error() {
                Some(libc::ENXIO) => size,
                _ => offset,
            },
            data => (data as u64).clamp(offset, size),
        }
    }
}

impl WriteAt for FileSource {
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if self.device {
            past_end(offset, buf.len(), self.size())?;
        }
        std::os::unix::fs::FileExt::write_all_at(&self.file, buf, offset)?;
        let end = offset + buf.len() as u64;
        self.size
            .fetch_max(end, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
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
/// A window of a writable source is written through.
pub struct Slice<S: ReadAt + ?Sized = dyn ReadAt> {
    inner: Arc<S>,
    start: u64,
    len: u64,
}

impl<S: ReadAt + ?Sized> Slice<S> {
    /// The window is clipped to the inner source, so a partition table that claims more than the
    /// disk holds cannot make reads wander past it.
    pub fn new(inner: Arc<S>, start: u64, len: u64) -> Self {
        let start = start.min(inner.size());
        let len = len.min(inner.size() - start);
        Slice { inner, start, len }
    }
}

impl<S: ReadAt + ?Sized> ReadAt for Slice<S> {
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
    fn zeros_until(&self, offset: u64) -> u64 {
        match offset < self.len {
            true => {
                self.inner
                    .zeros_until(self.start + offset)
                    .min(self.start + self.len)
                    - self.start
            }
            false => offset,
        }
    }
}

impl<S: WriteAt + ?Sized> WriteAt for Slice<S> {
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        past_end(offset, buf.len(), self.len)?;
        self.inner.write_all_at(self.start + offset, buf)
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
    fn finish(&self) -> io::Result<()> {
        self.inner.finish()
    }
}

/// A source read in order from `at`, as a stream decoder wants it.
pub struct Reader {
    source: Arc<dyn ReadAt>,
    at: u64,
}

impl Reader {
    pub fn new(source: Arc<dyn ReadAt>) -> Self {
        Reader { source, at: 0 }
    }
}

impl io::Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.source.read_at(self.at, buf)?;
        self.at += n as u64;
        Ok(n)
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
    /// A run of zeros may go on through the parts after the one it starts in.
    fn zeros_until(&self, offset: u64) -> u64 {
        if offset >= self.size {
            return offset;
        }
        let mut i = self.starts.partition_point(|&s| s <= offset) - 1;
        let mut at = offset;
        while let Some(p) = self.parts.get(i) {
            let end = p.zeros_until(at - self.starts[i]).min(p.size());
            if end < p.size() {
                return self.starts[i] + end;
            }
            i += 1;
            at = self.starts.get(i).copied().unwrap_or(self.size);
        }
        self.size
    }
}

/// How an encrypted bundle's bands hold their bytes: each band sealed on its own, in blocks
/// numbered from 0 at its start.
pub trait BandCipher: Send + Sync {
    /// Bytes of one block: a band is read and written in whole blocks.
    fn block(&self) -> u64;
    /// Decrypts `data` in place, its first block being block `first` of its band.
    fn decrypt(&self, first: u64, data: &mut [u8]);
    /// Encrypts `data` in place, its first block being block `first` of its band.
    fn encrypt(&self, first: u64, data: &mut [u8]);
}

/// A disk kept as a folder of band files (a sparse bundle's `bands/`): band `n` holds the disk's
/// bytes from `n × band_size`, in a file named `n` in lower-case hexadecimal. A missing band
/// reads as zeros, and so does the rest of a band shorter than the others. Opened to be written,
/// a band's file is made when it is first written, and grows as far as it is written.
pub struct BandFolder {
    dir: PathBuf,
    band_size: u64,
    size: u64,
    cipher: Option<Arc<dyn BandCipher>>,
    writable: bool,
    /// The bands present, with the bytes each holds: read once when the folder is opened, kept
    /// up to date as bands are written.
    present: Mutex<HashMap<u64, u64>>,
    /// The bands opened last: a few file handles, however many bands there are.
    open: Mutex<VecDeque<(u64, Arc<File>)>>,
    /// Bands written since the last sync, and whether one was made (the folder then changed).
    unsynced: Mutex<(BTreeSet<u64>, bool)>,
}

/// Band files kept open at once.
const OPEN_BANDS: usize = 16;

impl BandFolder {
    /// The folder `dir` as a disk of `size` bytes in bands of `band_size`, read through
    /// `cipher` when the bands are encrypted, and to be written when `writable`. Every name in
    /// it must be a band number within the disk (hidden files aside), and no band longer than a
    /// band.
    pub fn open(
        dir: &Path,
        band_size: u64,
        size: u64,
        cipher: Option<Arc<dyn BandCipher>>,
        writable: bool,
    ) -> io::Result<Self> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        if band_size == 0
            || cipher
                .as_ref()
                .is_some_and(|c| !band_size.is_multiple_of(c.block()))
        {
            return Err(bad(format!("a band of {band_size} bytes")));
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
            // An encrypted band is read in whole blocks: a cut-off block is no data.
            let len = cipher.as_ref().map_or(len, |c| len / c.block() * c.block());
            if present.insert(number, len).is_some() {
                return Err(bad(format!("bands/{name}: band {number} is there twice")));
            }
        }
        Ok(BandFolder {
            dir: dir.to_path_buf(),
            band_size,
            size,
            cipher,
            writable,
            present: Mutex::new(present),
            open: Mutex::new(VecDeque::new()),
            unsynced: Mutex::new((BTreeSet::new(), false)),
        })
    }

    /// How many bands hold data, and their bytes.
    pub fn stored(&self) -> (usize, u64) {
        let present = lock(&self.present);
        (present.len(), present.values().sum())
    }

    /// Band `number`'s file, made (empty) when `make` and it is not there yet.
    fn band(&self, number: u64, make: bool) -> io::Result<Arc<File>> {
        let mut open = lock(&self.open);
        if let Some((_, band)) = open.iter().find(|(n, _)| *n == number) {
            return Ok(band.clone());
        }
        let path = self.dir.join(format!("{number:x}"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(self.writable)
            .create(make)
            .open(&path)?;
        let band = Arc::new(file);
        open.push_front((number, band.clone()));
        open.truncate(OPEN_BANDS);
        Ok(band)
    }

    /// Band `number`'s bytes from `within` into `buf`, decrypted; zeros past what it holds.
    fn read_band(&self, number: u64, within: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let stored = lock(&self.present).get(&number).copied().unwrap_or(0);
        let (start, end) = match &self.cipher {
            Some(c) => (
                within / c.block() * c.block(),
                (within + buf.len() as u64).next_multiple_of(c.block()),
            ),
            None => (within, within + buf.len() as u64),
        };
        let mut data = vec![0u8; (end - start) as usize];
        let have = stored.clamp(start, end) - start;
        if have > 0 {
            self.band(number, false)?
                .read_exact_at(&mut data[..have as usize], start)?;
        }
        if let Some(c) = &self.cipher {
            c.decrypt(start / c.block(), &mut data[..have as usize]);
        }
        let skip = (within - start) as usize;
        buf.copy_from_slice(&data[skip..skip + buf.len()]);
        Ok(())
    }
}

/// `data`, to be written at `offset`, widened to whole blocks of `block` bytes — the rest of its
/// first and last block as `read` finds them now, in the clear — so that the blocks can be sealed
/// whole: where they start, and their bytes.
pub fn whole_blocks(
    offset: u64,
    data: &[u8],
    block: u64,
    read: impl FnOnce(u64, &mut [u8]) -> io::Result<()>,
) -> io::Result<(u64, Vec<u8>)> {
    let start = offset / block * block;
    let end = (offset + data.len() as u64).next_multiple_of(block);
    let mut blocks = vec![0u8; (end - start) as usize];
    read(start, &mut blocks)?;
    let at = (offset - start) as usize;
    blocks[at..at + data.len()].copy_from_slice(data);
    Ok((start, blocks))
}

/// A lock whose holder panicked still guards consistent data: every update under it is whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

/// Where the zeros from `offset` end on a disk of `size` bytes kept in bands of `band_size`,
/// where band `n` holds `stored(n)` bytes (0 for a band not there) and reads as zeros past them.
/// A bounded number of bands is looked at: a terabyte of absent bands is not walked at every
/// block.
pub fn band_zeros_until(
    offset: u64,
    band_size: u64,
    size: u64,
    stored: impl Fn(u64) -> u64,
) -> u64 {
    const MOST: usize = 4096;
    let mut at = offset;
    for _ in 0..MOST {
        if at >= size {
            return size.max(offset);
        }
        let (band, within) = (at / band_size, at % band_size);
        if within < stored(band) {
            return at;
        }
        at = (band + 1) * band_size;
    }
    at.min(size)
}

impl ReadAt for BandFolder {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Some((number, within, n)) = band_span(offset, buf.len(), self.band_size, self.size)
        else {
            return Ok(0);
        };
        self.read_band(number, within, &mut buf[..n])?;
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn zeros_until(&self, offset: u64) -> u64 {
        let present = lock(&self.present);
        band_zeros_until(offset, self.band_size, self.size, |n| {
            present.get(&n).copied().unwrap_or(0)
        })
    }
}

impl WriteAt for BandFolder {
    fn write_all_at(&self, mut offset: u64, mut buf: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        past_end(offset, buf.len(), self.size)?;
        if !self.writable {
            return Err(io::Error::from(io::ErrorKind::ReadOnlyFilesystem));
        }
        while let Some((number, within, n)) =
            band_span(offset, buf.len(), self.band_size, self.size).filter(|_| !buf.is_empty())
        {
            let (start, data): (u64, std::borrow::Cow<[u8]>) = match &self.cipher {
                Some(c) => {
                    let (start, mut data) = whole_blocks(within, &buf[..n], c.block(), |at, b| {
                        self.read_band(number, at, b)
                    })?;
                    c.encrypt(start / c.block(), &mut data);
                    (start, data.into())
                }
                None => (within, buf[..n].into()),
            };
            let made = !lock(&self.present).contains_key(&number);
            self.band(number, made)?.write_all_at(&data, start)?;
            let end = start + data.len() as u64;
            {
                let mut present = lock(&self.present);
                let held = present.entry(number).or_insert(0);
                *held = (*held).max(end);
            }
            let mut unsynced = lock(&self.unsynced);
            unsynced.0.insert(number);
            unsynced.1 |= made;
            offset += n as u64;
            buf = &buf[n..];
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let (bands, made) = std::mem::take(&mut *lock(&self.unsynced));
        let synced = bands
            .iter()
            .try_for_each(|&number| self.band(number, false)?.sync_data())
            .and_then(|()| match made {
                true => File::open(&self.dir)?.sync_all(),
                false => Ok(()),
            });
        if synced.is_err() {
            // Tried again at the next sync.
            let mut unsynced = lock(&self.unsynced);
            unsynced.0.extend(bands);
            unsynced.1 |= made;
        }
        synced
    }
}

/// Whether every byte is zero. Compared a block at a time against zeros (a memcmp), which is
/// fast in any build: images are mostly zeros, and every writer asks this of every block.
pub fn is_zero(bytes: &[u8]) -> bool {
    static ZEROS: [u8; 4096] = [0; 4096];
    bytes.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

/// The runs of `bytes` to store when zero blocks of `block` bytes are left as holes: each run's
/// offset and bytes, neighbouring blocks with data joined so that each run is one write.
pub fn data_runs(bytes: &[u8], block: usize) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() && is_zero(&bytes[at..(at + block).min(bytes.len())]) {
            at += block;
        }
        let start = at.min(bytes.len());
        while at < bytes.len() && !is_zero(&bytes[at..(at + block).min(bytes.len())]) {
            at += block;
        }
        let end = at.min(bytes.len());
        (start < end).then(|| (start, &bytes[start..end]))
    })
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

    fn zeros_until(&self, offset: u64) -> u64 {
        offset.max(self.0)
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

    /// The disk's zeros, and those it is extended with, up to the next patch.
    fn zeros_until(&self, offset: u64) -> u64 {
        if offset >= self.size {
            return offset;
        }
        if let Some((&at, bytes)) = self.patches.range(..=offset).next_back() {
            if offset < at + bytes.len() as u64 {
                return offset;
            }
        }
        let limit = match self.patches.range(offset + 1..).next() {
            Some((&next, _)) => next,
            None => self.size,
        };
        let disk = self.disk.size();
        let end = match offset < disk {
            true => match self.disk.zeros_until(offset).min(disk) {
                end if end == disk => limit,
                end => end,
            },
            false => limit,
        };
        end.min(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_runs_join_neighbouring_blocks_with_data_and_skip_zero_blocks() {
        // Blocks of 4: data, data, zeros, data, zeros, then a short last block with data.
        let bytes = [[1u8, 0, 0, 0], [0, 0, 0, 2], [0; 4], [3; 4], [0; 4]].concat();
        let mut with_tail = bytes.clone();
        with_tail.extend([0, 4]);
        let runs: Vec<_> = data_runs(&with_tail, 4).collect();
        assert_eq!(
            runs,
            [
                (0, &with_tail[0..8]),
                (12, &with_tail[12..16]),
                (20, &with_tail[20..22])
            ]
        );
        assert_eq!(data_runs(&[0u8; 9], 4).count(), 0);
        assert_eq!(data_runs(&[], 4).count(), 0);
    }

    #[test]
    fn band_folders_read_missing_and_short_bands_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0"), [1u8; 8]).unwrap();
        std::fs::write(dir.path().join("a"), [2u8; 3]).unwrap();
        let bands = BandFolder::open(dir.path(), 8, 8 * 11 - 4, None, false).unwrap();
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
            let e = BandFolder::open(bad.path(), 8, 88, None, false).err();
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

    /// Known zeros run on through the parts of a built disk, stop at a patch or at bytes that
    /// are not known to be zeros, and never pass the end.
    #[test]
    fn known_zeros_run_through_parts_and_stop_at_data() {
        let parts: Vec<Arc<dyn ReadAt>> = vec![
            Arc::new(vec![1u8; 10]),
            Arc::new(Zeros(20)),
            Arc::new(Zeros(0)),
            Arc::new(Zeros(5)),
            Arc::new(vec![0u8; 3]),
            Arc::new(Zeros(7)),
        ];
        let disk: Arc<dyn ReadAt> = Arc::new(Concat::new(parts));
        assert_eq!(
            disk.zeros_until(0),
            0,
            "bytes are not known zeros, even zero bytes"
        );
        assert_eq!(disk.zeros_until(10), 35);
        assert_eq!(disk.zeros_until(12), 35);
        assert_eq!(disk.zeros_until(38), 45);
        assert_eq!(disk.zeros_until(45), 45, "at the end");
        let window = Slice::new(disk.clone(), 5, 20);
        assert_eq!(window.zeros_until(0), 0);
        assert_eq!(window.zeros_until(5), 20, "cut at the window's end");
        let mut patched = Patched::new(disk.clone(), 60);
        patched.put(15, vec![9; 2]);
        assert_eq!(patched.zeros_until(10), 15, "up to the patch");
        assert_eq!(patched.zeros_until(15), 15, "on it");
        assert_eq!(patched.zeros_until(17), 35);
        assert_eq!(
            patched.zeros_until(40),
            60,
            "the disk's zeros, then its extension"
        );
        assert_eq!(patched.zeros_until(50), 60);
    }

    /// A file's holes, as the file system tells them; a file without holes has none.
    #[test]
    fn a_sparse_files_holes_are_known_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holes");
        let file = File::create(&path).unwrap();
        let mib = 1u64 << 20;
        file.set_len(8 * mib).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[1; 4096], 4 * mib).unwrap();
        let source = FileSource::open(&path).unwrap();
        if source.zeros_until(0) == 0 {
            // A file system that keeps no holes (or does not say): nothing is known.
            return;
        }
        assert_eq!(source.zeros_until(0), 4 * mib);
        assert_eq!(source.zeros_until(4 * mib), 4 * mib);
        assert_eq!(source.zeros_until(5 * mib), 8 * mib, "a hole to the end");
        assert_eq!(source.zeros_until(8 * mib), 8 * mib);
        let full = dir.path().join("full");
        std::fs::write(&full, vec![0u8; 65536]).unwrap();
        assert_eq!(FileSource::open(&full).unwrap().zeros_until(0), 0);
    }

    #[test]
    fn absent_bands_and_the_ends_of_short_ones_are_known_zeros() {
        // Bands of 10 bytes on a 95-byte disk: band 1 holds 4 bytes, band 3 all of its 10.
        let stored = |n: u64| match n {
            1 => 4,
            3 => 10,
            _ => 0,
        };
        assert_eq!(band_zeros_until(0, 10, 95, stored), 10);
        assert_eq!(band_zeros_until(12, 10, 95, stored), 12);
        assert_eq!(band_zeros_until(14, 10, 95, stored), 30);
        assert_eq!(band_zeros_until(40, 10, 95, stored), 95);
        assert_eq!(band_zeros_until(95, 10, 95, stored), 95);
    }
}
