//! What the virtual machines' disk formats (qcow2, VMDK, VHD, VHDX, VDI, Parallels) share: a disk
//! cut into blocks of one size, each stored in the file — whole or compressed —, known to be
//! zeros, or absent (read from the backing disk, or zeros without one); and the backing disk,
//! opened by name beside the image.

use crate::error::FormatError;
use crate::io::{band_span, band_zeros_until, Patched, ReadAt};
use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where a block of the virtual disk is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Not in this image: the backing disk's, or zeros.
    Absent,
    /// Zeros, whatever a backing disk holds.
    Zero,
    /// Stored whole at this offset of the file.
    At(u64),
    /// Compressed at this offset of the file, `len` bytes long (0: the format's own record says).
    Compressed { at: u64, len: u64 },
}

/// A format's table of blocks, read into memory when the image is opened.
pub trait Blocks: Send + Sync {
    fn block_size(&self) -> u64;
    /// Where block `n` is; blocks past the table are absent.
    fn place(&self, n: u64) -> Place;
    /// Decodes the compressed block at `at` (`len` bytes, as [`Place::Compressed`] says) of
    /// `file` into `out`, a whole block.
    fn inflate(&self, _file: &dyn ReadAt, at: u64, _len: u64, _out: &mut [u8]) -> io::Result<()> {
        Err(FormatError::io(
            "block table",
            at,
            "a compressed block, which this format does not have",
        ))
    }
}

/// A format's writer. The disk's blocks that hold data are stored one after another in disk
/// order as they come, from `data_at` on, each after `gap` bytes of its own; the tables that
/// place them are made once the last has come.
pub trait BlockLayout {
    /// The block the disk is cut into, in bytes.
    fn block_size(&self) -> u64;
    /// Where the first block stored goes.
    fn data_at(&self) -> u64;
    /// The bytes before each block's data (a VHD block's sector bitmap).
    fn gap(&self) -> u64 {
        0
    }
    /// Every other piece of the file, each with where it goes, for the disk's blocks `stored`
    /// (their numbers, in the order stored).
    fn metadata(&self, stored: &[u64]) -> Vec<(u64, Vec<u8>)>;

    /// Where the data of the `k`th block stored goes.
    fn stored_at(&self, k: u64) -> u64 {
        self.data_at() + k * (self.gap() + self.block_size()) + self.gap()
    }

    /// Where `count` blocks stored end, the last one whole however little of it was written.
    fn data_end(&self, count: u64) -> u64 {
        self.data_at() + count * (self.gap() + self.block_size())
    }
}

/// Refuses a disk that is not whole 512-byte sectors, for a format that counts in them.
pub fn whole_sectors(format: &str, size: u64) -> Result<(), String> {
    match size % 512 {
        0 => Ok(()),
        _ => Err(format!(
            "a disk of {size} bytes: {format} holds whole 512-byte sectors"
        )),
    }
}

/// A virtual disk of `size` bytes whose blocks `blocks` places in `file`.
pub struct BlockDisk<B> {
    file: Arc<dyn ReadAt>,
    blocks: B,
    size: u64,
    backing: Option<Arc<dyn ReadAt>>,
    /// The last block decompressed: reads smaller than a block come one after another.
    inflated: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
}

impl<B: Blocks> BlockDisk<B> {
    /// A backing disk of another size is read as far as this disk goes, zeros past its end.
    pub fn new(
        file: Arc<dyn ReadAt>,
        blocks: B,
        size: u64,
        backing: Option<Arc<dyn ReadAt>>,
    ) -> Self {
        let backing = backing.map(|b| match b.size() == size {
            true => b,
            false => Arc::new(Patched::new(b, size)) as Arc<dyn ReadAt>,
        });
        BlockDisk {
            file,
            blocks,
            size,
            backing,
            inflated: Mutex::new(None),
        }
    }

    pub fn blocks(&self) -> &B {
        &self.blocks
    }

    /// Reads `buf.len()` bytes at `at` of the file, or says which block lies past its end.
    fn stored(&self, at: u64, block: u64, buf: &mut [u8]) -> io::Result<()> {
        if at.saturating_add(buf.len() as u64) > self.file.size() {
            return Err(FormatError::io(
                "block table",
                at,
                format!("block {block} lies past the end of the file"),
            ));
        }
        self.file.read_exact_at(at, buf)
    }

    fn inflated(&self, block: u64, at: u64, len: u64) -> io::Result<Arc<Vec<u8>>> {
        let cached = || self.inflated.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, data)) = &*cached() {
            if *n == block {
                return Ok(data.clone());
            }
        }
        // Decompressed outside the lock: readers on other threads decompress other blocks.
        let mut out = vec![0u8; self.blocks.block_size() as usize];
        self.blocks.inflate(&*self.file, at, len, &mut out)?;
        let out = Arc::new(out);
        *cached() = Some((block, out.clone()));
        Ok(out)
    }
}

/// A read this long or longer is cut into pieces read on all cores: compressed blocks
/// decompress in parallel, as UDIF chunks do.
const PARALLEL_PIECE: u64 = 1 << 20;

impl<B: Blocks> BlockDisk<B> {
    /// Fills `buf` from `offset` (which the caller keeps within the disk), block by block.
    fn read_span(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_blocks(offset, buf)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            offset += n as u64;
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// Reads from the block at `offset` (and the stored blocks right after it), at most
    /// `buf.len()` bytes; how many.
    fn read_blocks(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.blocks.block_size();
        let Some((block, within, mut n)) = band_span(offset, buf.len(), size, self.size) else {
            return Ok(0);
        };
        match self.blocks.place(block) {
            Place::At(at) => {
                // Blocks stored one after another are read at once.
                let mut next = block + 1;
                while n < buf.len()
                    && self.blocks.place(next) == Place::At(at + (next - block) * size)
                {
                    n = (n as u64 + size)
                        .min(buf.len() as u64)
                        .min(self.size - offset) as usize;
                    next += 1;
                }
                self.stored(at + within, block, &mut buf[..n])?;
            }
            Place::Compressed { at, len } => {
                let data = self.inflated(block, at, len)?;
                buf[..n].copy_from_slice(&data[within as usize..within as usize + n]);
            }
            Place::Absent => match &self.backing {
                Some(backing) => backing.read_exact_at(offset, &mut buf[..n])?,
                None => buf[..n].fill(0),
            },
            Place::Zero => buf[..n].fill(0),
        }
        Ok(n)
    }
}

impl<B: Blocks> ReadAt for BlockDisk<B> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use rayon::prelude::*;
        let n = (buf.len() as u64).min(self.size.saturating_sub(offset)) as usize;
        let piece = PARALLEL_PIECE.max(self.blocks.block_size()) as usize;
        if n < 2 * piece {
            return self.read_blocks(offset, &mut buf[..n]);
        }
        // Pieces start on block boundaries, so that no two decompress the same block.
        let first = (piece - (offset % piece as u64) as usize).min(n);
        let (head, rest) = buf[..n].split_at_mut(first);
        self.read_span(offset, head)?;
        let start = offset + first as u64;
        rest.par_chunks_mut(piece)
            .enumerate()
            .try_for_each(|(k, chunk)| self.read_span(start + (k * piece) as u64, chunk))?;
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.size
    }

    /// Blocks known to be zeros: absent ones too when nothing backs them.
    fn zeros_until(&self, offset: u64) -> u64 {
        let size = self.blocks.block_size();
        band_zeros_until(offset, size, self.size, |n| match self.blocks.place(n) {
            Place::Zero => 0,
            Place::Absent if self.backing.is_none() => 0,
            _ => size,
        })
    }
}

/// How many blocks of `size` bytes a table may list: one per block of the disk. A table that
/// claims more is refused before anything is allocated for it, as is one larger than `file`.
pub fn table_bytes(
    structure: &'static str,
    at: u64,
    entries: u64,
    entry_size: u64,
    file: &dyn ReadAt,
) -> io::Result<usize> {
    match entries.checked_mul(entry_size) {
        Some(len) if at.checked_add(len).is_some_and(|end| end <= file.size()) => Ok(len as usize),
        _ => Err(FormatError::io(
            structure,
            at,
            format!(
                "{entries} entries of {entry_size} bytes run past the end of the {}-byte file",
                file.size()
            ),
        )),
    }
}

/// Reads a table of `entries` entries of `entry_size` bytes at `at`, after checking that the file
/// holds it.
pub fn read_table(
    structure: &'static str,
    at: u64,
    entries: u64,
    entry_size: u64,
    file: &dyn ReadAt,
) -> io::Result<Vec<u8>> {
    let mut table = vec![0u8; table_bytes(structure, at, entries, entry_size, file)?];
    file.read_exact_at(at, &mut table)?;
    Ok(table)
}

/// Backing files inside backing files a chain may hold: qemu allows as many, no real chain more.
const MAX_CHAIN: usize = 16;

thread_local! {
    /// The images whose backing disks are being opened on this thread, outermost first.
    static OPENING: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
}

/// Opens the disk that `image` (at `path`) names as its backing file or parent, `name` relative
/// to the image's folder unless absolute. A chain that comes back to an image, or is longer than
/// [`MAX_CHAIN`], is refused.
pub fn open_backing(
    structure: &'static str,
    at: u64,
    path: Option<&Path>,
    name: &str,
) -> io::Result<Arc<dyn ReadAt>> {
    let bad = |problem: String| FormatError::io(structure, at, problem);
    let path = path.ok_or_else(|| {
        bad(format!(
            "the backing file {name:?} cannot be found without the image's own path"
        ))
    })?;
    let image = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let named = Path::new(name);
    let backing = match named.is_absolute() {
        true => named.to_path_buf(),
        false => image.parent().unwrap_or(Path::new("/")).join(named),
    };
    let backing = std::fs::canonicalize(&backing)
        .map_err(|e| bad(format!("the backing file {} ({e})", backing.display())))?;
    let depth = OPENING.with(|o| {
        let mut o = o.borrow_mut();
        o.push(image.clone());
        (o.contains(&backing), o.len())
    });
    let opened = match depth {
        (true, _) => Err(bad(format!(
            "the backing chain loops: {} comes back",
            backing.display()
        ))),
        (_, n) if n > MAX_CHAIN => Err(bad(format!(
            "the backing chain is more than {MAX_CHAIN} images long"
        ))),
        _ => super::open(&backing, None).map_err(|e| bad(format!("the backing file: {e}"))),
    };
    OPENING.with(|o| o.borrow_mut().pop());
    Ok(opened?.container.disk())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Table(Vec<Place>);

    impl Blocks for Table {
        fn block_size(&self) -> u64 {
            4
        }
        fn place(&self, n: u64) -> Place {
            self.0.get(n as usize).copied().unwrap_or(Place::Absent)
        }
    }

    #[test]
    fn blocks_read_from_the_file_the_backing_disk_or_zeros() {
        let file: Arc<dyn ReadAt> = Arc::new(b"abcdefgh".to_vec());
        let backing: Arc<dyn ReadAt> = Arc::new(b"0123456789ABCDEF".to_vec());
        let table = Table(vec![Place::At(4), Place::At(0), Place::Zero, Place::Absent]);
        let disk = BlockDisk::new(file.clone(), table, 16, Some(backing));
        let mut all = [0u8; 16];
        disk.read_exact_at(0, &mut all).unwrap();
        assert_eq!(&all, b"efghabcd\0\0\0\0CDEF");
        let alone = BlockDisk::new(file, Table(vec![Place::At(6)]), 8, None);
        assert!(alone.read_exact_at(0, &mut [0u8; 4]).is_err());
        assert_eq!(alone.zeros_until(4), 8);
        assert_eq!(alone.zeros_until(0), 0);
    }
}
