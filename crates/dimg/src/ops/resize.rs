//! Resizing read/write images (`hdiutil resize`): UDRW, sparse images and sparse bundles whose
//! disk is an HFS+ volume, bare or as the last partition of a GPT. The new disk is described as
//! the old one with a few structures rewritten — the GPT's headers and entries (the backup
//! moves to the new end), the volume's header and its alternate, the allocation bitmap — and
//! is written in the image's own format beside it, then renamed into place.

use super::convert::{write, ConvertOptions, OutputFormat};
use super::{Cancel, Progress};
use crate::bytes::{be32, be64, le32, le64};
use crate::container::{self, Container, Fact};
use crate::error::{Error, FormatError, Result};
use crate::io::ReadAt;
use crate::magic::Signature;
use crate::secret::Passphrase;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SECTOR: u64 = 512;
const HEADER_AT: u64 = 1024;
/// The GPT's entry array: 32 sectors at each end of the disk.
const TABLE_SECTORS: u64 = 32;

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
    pub format: OutputFormat,
    pub old_size: u64,
    pub new_size: u64,
}

fn bad(what: &'static str, at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(what, at, problem)
}

/// The smallest, current and largest sizes of the image's disk.
pub fn limits(path: &Path, passphrase: Option<&Passphrase>) -> Result<Limits> {
    let (_, disk) = open(path, passphrase)?;
    let plan = Plan::read(&disk).map_err(|e| Error::io(path, e))?;
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
    let size = size / SECTOR * SECTOR;
    let (minimum, maximum) = (plan.minimum(), plan.maximum());
    if size < minimum || size > maximum {
        return Err(Error::Refused {
            path: path.into(),
            reason: format!(
                "cannot be {size} bytes: from {minimum} (the volume's last used block) to \
                 {maximum} bytes (see resize -limits)"
            ),
        });
    }
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
    if !opened.container.read_write() {
        return Err(refuse(format!(
            "is a compressed or read-only {}: convert it to a read/write format first \
             (UDRW, UDSP or UDSB)",
            opened.format
        )));
    }
    let format = match opened.format {
        "Apple UDIF disk image" => OutputFormat::Udrw,
        "Apple sparse disk image" => OutputFormat::Udsp,
        f if f == container::sparsebundle::FORMAT => OutputFormat::Udsb,
        other => {
            return Err(refuse(format!(
                "is an {other}: dimg resizes unencrypted UDRW images, sparse images and bundles"
            )))
        }
    };
    let written = Written {
        format,
        band: opened.container.band_size(),
    };
    Ok((written, opened.container.disk()))
}

/// How a resized image is written: its own format, a sparse one with its own band size.
struct Written {
    format: OutputFormat,
    band: Option<u64>,
}

/// A GPT around the volume: where its pieces are.
struct Gpt {
    primary: Vec<u8>,
    entries: Vec<u8>,
    /// The volume's entry in the array.
    entry: usize,
    /// The disk's last sector, where the backup header is.
    last: u64,
}

/// What a resize changes: the map around the volume, if any, and the HFS+ volume itself.
struct Plan {
    gpt: Option<Gpt>,
    /// Where the volume starts and how long it is.
    start: u64,
    length: u64,
    header: Vec<u8>,
    block: u64,
    total: u64,
    /// The allocation bitmap, as stored, and where each of its extents lies (bytes).
    bitmap: Vec<u8>,
    bitmap_extents: Vec<(u64, u64)>,
    /// The last block in use, the alternate header's own block aside.
    last_used: u64,
    disk_size: u64,
}

impl Plan {
    fn read(disk: &Arc<dyn ReadAt>) -> io::Result<Plan> {
        let mut sector = vec![0u8; 2 * SECTOR as usize];
        disk.read_exact_at(0, &mut sector)?;
        let gpt = match &sector[512..520] == b"EFI PART" {
            true => Some(Self::gpt(&**disk, &sector[512..])?),
            false => None,
        };
        let (start, length) = match &gpt {
            Some(g) => {
                let e = &g.entries[g.entry * 128..];
                let (first, end) = (le64(e, 32), le64(e, 40));
                (first * SECTOR, (end + 1 - first) * SECTOR)
            }
            None => (0, disk.size()),
        };
        let volume = crate::io::Slice::new(disk.clone(), start, length);
        match crate::fs::identify(&volume)? {
            Some(Signature::HfsPlus | Signature::Hfsx) => {}
            other => {
                return Err(bad(
                    "volume",
                    start,
                    format!(
                        "holds {}: dimg resizes HFS+ volumes",
                        other.map_or("no file system dimg knows", |s| s.name())
                    ),
                ))
            }
        }
        let mut header = vec![0u8; 512];
        volume.read_exact_at(HEADER_AT, &mut header)?;
        let (block, total) = (u64::from(be32(&header, 40)), u64::from(be32(&header, 44)));
        if !block.is_power_of_two() || !(512..=1 << 20).contains(&block) || total * block > length {
            return Err(bad(
                "HFS+ volume header",
                start + HEADER_AT + 40,
                format!("{total} blocks of {block} bytes do not fit its {length}-byte partition"),
            ));
        }
        if be32(&header, 4) & (1 << 13) != 0 {
            return Err(bad(
                "HFS+ volume header",
                start + HEADER_AT,
                "the volume is journaled: dimg resizes unjournaled volumes",
            ));
        }
        let bitmap_extents: Vec<(u64, u64)> = (0..8)
            .map(|i| (be32(&header, 128 + 8 * i), be32(&header, 132 + 8 * i)))
            .filter(|&(_, n)| n > 0)
            .map(|(at, n)| (u64::from(at) * block, u64::from(n) * block))
            .collect();
        let stored: u64 = bitmap_extents.iter().map(|e| e.1).sum();
        // A bitmap larger than the volume is damage, and must not size an allocation.
        if stored > length || be64(&header, 112) > stored || stored < total.div_ceil(8) {
            return Err(bad(
                "HFS+ allocation file",
                start + HEADER_AT + 112,
                "its extents do not hold the bitmap (more lie in the extents B-tree)",
            ));
        }
        let mut bitmap = vec![0u8; stored as usize];
        let mut at = 0;
        for &(offset, len) in &bitmap_extents {
            volume.read_exact_at(offset, &mut bitmap[at..at + len as usize])?;
            at += len as usize;
        }
        let alternate = alternate_block(length, block, total);
        let used = |b: u64| bitmap[(b / 8) as usize] & (0x80 >> (b % 8)) != 0;
        let last_used = (0..total)
            .rev()
            .find(|&b| used(b) && Some(b) != alternate)
            .unwrap_or(0);
        Ok(Plan {
            gpt,
            start,
            length,
            header,
            block,
            total,
            bitmap,
            bitmap_extents,
            last_used,
            disk_size: disk.size(),
        })
    }

    fn gpt(disk: &dyn ReadAt, h: &[u8]) -> io::Result<Gpt> {
        let (table, count, size) = (le64(h, 72), le32(h, 80) as usize, le32(h, 84) as usize);
        if size != 128 || count * size != (TABLE_SECTORS * SECTOR) as usize {
            return Err(bad(
                "GPT header",
                SECTOR,
                format!("{count} entries of {size} bytes: dimg resizes the usual 128 × 128"),
            ));
        }
        let mut entries = vec![0u8; count * size];
        disk.read_exact_at(table * SECTOR, &mut entries)?;
        let used: Vec<usize> = (0..count)
            .filter(|&i| entries[i * 128..i * 128 + 16].iter().any(|&b| b != 0))
            .collect();
        let entry = *used
            .iter()
            .max_by_key(|&&i| le64(&entries, i * 128 + 32))
            .ok_or_else(|| bad("GPT", SECTOR, "has no partition"))?;
        Ok(Gpt {
            primary: h[..SECTOR as usize].to_vec(),
            entries,
            entry,
            last: le64(h, 32),
        })
    }

    /// The disk size that leaves the volume just its used blocks and its alternate header.
    fn minimum(&self) -> u64 {
        let blocks = self.last_used + 2;
        let volume = blocks * self.block;
        (self.disk_size - self.length + volume).next_multiple_of(SECTOR)
    }

    /// The disk size at which HFS+ runs out of 32-bit block numbers.
    fn maximum(&self) -> u64 {
        let volume = u64::from(u32::MAX) * self.block;
        self.disk_size - self.length + volume
    }

    /// The disk as it is at `size` bytes.
    fn apply(&self, disk: Arc<dyn ReadAt>, size: u64) -> io::Result<Patched> {
        let mut p = Patched::new(disk, size);
        let length = self.length + size - self.disk_size;
        let (start, block) = (self.start, self.block);
        let total = (length / block).min(u64::from(u32::MAX));
        let mut h = self.header.clone();
        // The bitmap: bits for blocks past the old end are free; more room where needed, in
        // the first blocks the growth adds.
        let mut bitmap = self.bitmap.clone();
        for b in self.total.min(total)..(bitmap.len() as u64 * 8) {
            bitmap[(b / 8) as usize] &= !(0x80 >> (b % 8));
        }
        let mut extents = self.bitmap_extents.clone();
        let needed = total.div_ceil(8).next_multiple_of(block);
        let mut added = 0;
        if needed > bitmap.len() as u64 {
            added = (needed - bitmap.len() as u64) / block;
            if extents.len() == 8 {
                return Err(bad(
                    "HFS+ allocation file",
                    start + HEADER_AT + 112,
                    "has no extent left to grow into",
                ));
            }
            bitmap.resize(needed as usize, 0);
            // The first free run that holds the new part, so that the volume can shrink again
            // down to its data.
            let used = |b: u64| bitmap[(b / 8) as usize] & (0x80 >> (b % 8)) != 0;
            let last = alternate_block(length, block, total).unwrap_or(total);
            let mut run = 0;
            let at = (1..last).find(|&b| {
                run = if used(b) { 0 } else { run + 1 };
                run == added
            });
            let Some(end) = at else {
                return Err(bad(
                    "HFS+ allocation file",
                    start + HEADER_AT + 112,
                    "needs more room than the volume has free",
                ));
            };
            extents.push(((end + 1 - added) * block, added * block));
        }
        let mut mark = |b: u64, used: bool| {
            let (byte, bit) = ((b / 8) as usize, 0x80u8 >> (b % 8));
            match used {
                true => bitmap[byte] |= bit,
                false => bitmap[byte] &= !bit,
            }
        };
        if let Some(old) = alternate_block(self.length, block, self.total) {
            if old < total {
                mark(old, false);
            }
        }
        if added > 0 {
            let (at, len) = extents[extents.len() - 1];
            for b in at / block..(at + len) / block {
                mark(b, true);
            }
        }
        if let Some(new) = alternate_block(length, block, total) {
            mark(new, true);
        }
        let used = (0..total)
            .filter(|&b| bitmap[(b / 8) as usize] & (0x80 >> (b % 8)) != 0)
            .count() as u64;
        h[44..48].copy_from_slice(&(total as u32).to_be_bytes());
        h[48..52].copy_from_slice(&((total - used) as u32).to_be_bytes());
        h[112..120].copy_from_slice(&(bitmap.len() as u64).to_be_bytes());
        h[124..128].copy_from_slice(&((bitmap.len() as u64 / block) as u32).to_be_bytes());
        for (i, &(at, len)) in extents.iter().enumerate() {
            h[128 + 8 * i..132 + 8 * i].copy_from_slice(&((at / block) as u32).to_be_bytes());
            h[132 + 8 * i..136 + 8 * i].copy_from_slice(&((len / block) as u32).to_be_bytes());
        }
        let mut from = 0;
        for &(at, len) in &extents {
            p.put(start + at, bitmap[from..from + len as usize].to_vec());
            from += len as usize;
        }
        p.put(start + HEADER_AT, h.clone());
        if self.length - 1024 + 512 <= length {
            p.put(start + self.length - 1024, vec![0u8; 512]);
        }
        p.put(start + length - 1024, h);
        if let Some(g) = &self.gpt {
            self.move_gpt(g, &mut p, size);
        }
        Ok(p)
    }

    /// The GPT at the new size: the volume's partition resized, the backup at the new end.
    fn move_gpt(&self, g: &Gpt, p: &mut Patched, size: u64) {
        let last = size / SECTOR - 1;
        let mut entries = g.entries.clone();
        let e = g.entry * 128;
        let end = le64(&entries, e + 40) + last - g.last;
        entries[e + 40..e + 48].copy_from_slice(&end.to_le_bytes());
        let entries_crc = crc32fast::hash(&entries);
        let header = |at: u64, other: u64, table: u64| {
            let mut h = g.primary.clone();
            h[24..32].copy_from_slice(&at.to_le_bytes());
            h[32..40].copy_from_slice(&other.to_le_bytes());
            h[48..56].copy_from_slice(&(last - 1 - TABLE_SECTORS).to_le_bytes());
            h[72..80].copy_from_slice(&table.to_le_bytes());
            h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
            h[16..20].fill(0);
            let crc = crc32fast::hash(&h[..92]);
            h[16..20].copy_from_slice(&crc.to_le_bytes());
            h
        };
        // The protective MBR covers the disk (as far as 32 bits count).
        p.put(
            446 + 12,
            (last.min(u64::from(u32::MAX)) as u32)
                .to_le_bytes()
                .to_vec(),
        );
        p.put(SECTOR, header(1, last, 2));
        p.put(2 * SECTOR, entries.clone());
        let old_backup = (g.last - TABLE_SECTORS) * SECTOR;
        if old_backup + (TABLE_SECTORS + 1) * SECTOR <= size && g.last != last {
            p.put(
                old_backup,
                vec![0u8; ((TABLE_SECTORS + 1) * SECTOR) as usize],
            );
        }
        p.put((last - TABLE_SECTORS) * SECTOR, entries);
        p.put(last * SECTOR, header(last, 1, last - TABLE_SECTORS));
    }
}

/// The allocation block that holds a volume's alternate header (1 KiB before its end), when it
/// falls inside the volume's counted blocks.
fn alternate_block(length: u64, block: u64, total: u64) -> Option<u64> {
    let b = (length - 1024) / block;
    (b < total).then_some(b)
}

/// A disk with some of its bytes replaced, cut or extended with zeros to a new size.
struct Patched {
    disk: Arc<dyn ReadAt>,
    size: u64,
    /// Replacements by offset; later ones win where they overlap.
    patches: BTreeMap<u64, Vec<u8>>,
}

impl Patched {
    fn new(disk: Arc<dyn ReadAt>, size: u64) -> Self {
        Patched {
            disk,
            size,
            patches: BTreeMap::new(),
        }
    }

    fn put(&mut self, at: u64, bytes: Vec<u8>) {
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
