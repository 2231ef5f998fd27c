//! Disk Copy 4.2 images (`.image`, `.img`, `.dsk`): an 84-byte header — the disk's name, the
//! sizes of its data and of its tags (12 bytes per 512-byte sector on GCR floppies), a checksum
//! of each, the disk format — then the data, then the tags. The disk is the data; the tags are
//! checked, not shown (`convert -format DC42` keeps them). Real images carry stale checksums and
//! trailing bytes: `verify` reports the checksums and reading goes on. Written for the four
//! floppies Disk Copy 4.2 knows.

use super::{Check, Checksums, Container, Driver, Fact, Probe};
use crate::bytes::{be32, mac_roman};
use crate::error::FormatError;
use crate::io::{ReadAt, Slice, WriteAt};
use crate::magic::Signature;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub static DRIVER: Driver = Driver {
    name: "Disk Copy 4.2 image",
    probe,
    open,
};

const HEADER: u64 = 84;
/// Tag bytes the tag checksum leaves out: the first sector's, which Disk Copy never summed.
const UNSUMMED_TAGS: u64 = 12;

fn probe(p: &Probe) -> u8 {
    // Below the formats with a real magic number: the header has only a fixed word and sizes.
    match p.signatures.contains(&Signature::DiskCopy42) {
        true => 60,
        false => 0,
    }
}

struct DiskCopy42 {
    file: Arc<dyn ReadAt>,
    name: String,
    data: u64,
    tags: u64,
    data_sum: u32,
    tag_sum: u32,
    disk_format: u8,
    format_byte: u8,
    writable: Option<Arc<Floppy>>,
}

/// A Disk Copy 4.2 floppy changed in place: its data written through, its data checksum brought
/// up to date after the last write (the tags are not written, so theirs stands).
struct Floppy {
    data: Slice<dyn WriteAt>,
    file: Arc<dyn WriteAt>,
    written: AtomicBool,
}

impl ReadAt for Floppy {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.data.read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.data.size()
    }
}

impl WriteAt for Floppy {
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.written.store(true, Ordering::Relaxed);
        self.data.write_all_at(offset, buf)
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync()
    }
    fn finish(&self) -> io::Result<()> {
        if self.written.swap(false, Ordering::Relaxed) {
            let sum = checksum(&self.data, 0, self.data.size())?;
            self.file.write_all_at(DATA_SUM, &sum.to_be_bytes())?;
        }
        self.file.finish()
    }
}

/// Where the header keeps the data checksum.
const DATA_SUM: u64 = 0x48;

fn open(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let mut h = [0u8; HEADER as usize];
    file.read_exact_at(0, &mut h)?;
    let (data, tags) = (u64::from(be32(&h, 0x40)), u64::from(be32(&h, 0x44)));
    if HEADER + data + tags > file.size() {
        return Err(FormatError::io(
            "Disk Copy 4.2 header",
            0x40,
            format!(
                "{data} bytes of data and {tags} of tags do not fit in the file's {}",
                file.size()
            ),
        ));
    }
    let name = &h[1..1 + usize::from(h[0]).min(63)];
    let writable = p.writable.map(|file| {
        Arc::new(Floppy {
            data: Slice::new(file.clone(), HEADER, data),
            file: file.clone(),
            written: AtomicBool::new(false),
        })
    });
    Ok(Box::new(DiskCopy42 {
        file,
        name: mac_roman(name),
        data,
        tags,
        data_sum: be32(&h, DATA_SUM as usize),
        tag_sum: be32(&h, 0x4C),
        disk_format: h[0x50],
        format_byte: h[0x51],
        writable,
    }))
}

/// Disk Copy's checksum: each big-endian 16-bit word added, then the sum rotated right by one.
fn checksum(source: &dyn ReadAt, at: u64, len: u64) -> io::Result<u32> {
    let mut sum = 0u32;
    let mut buf = vec![0u8; 64 << 10];
    let mut done = 0;
    while done < len {
        let n = buf.len().min((len - done) as usize);
        source.read_exact_at(at + done, &mut buf[..n])?;
        for word in buf[..n].chunks_exact(2) {
            sum = sum
                .wrapping_add(u32::from(u16::from_be_bytes([word[0], word[1]])))
                .rotate_right(1);
        }
        done += n as u64;
    }
    Ok(sum)
}

impl Container for DiskCopy42 {
    fn disk(&self) -> Arc<dyn ReadAt> {
        Arc::new(Slice::new(self.file.clone(), HEADER, self.data))
    }

    fn writable(&self) -> Option<Arc<dyn WriteAt>> {
        self.writable.clone().map(|w| w as Arc<dyn WriteAt>)
    }

    fn tags(&self) -> Option<Arc<dyn ReadAt>> {
        (self.tags > 0).then(|| {
            Arc::new(Slice::new(self.file.clone(), HEADER + self.data, self.tags))
                as Arc<dyn ReadAt>
        })
    }

    fn facts(&self) -> Vec<Fact> {
        let kind = match self.disk_format {
            0 => "400K GCR",
            1 => "800K GCR",
            2 => "720K MFM",
            3 => "1440K MFM",
            _ => "other",
        };
        let named = (!self.name.is_empty()).then(|| Fact::new("Image name", self.name.clone()));
        let mut facts: Vec<Fact> = named.into_iter().collect();
        facts.extend([
            Fact::new(
                "Disk",
                format!("{kind} (format byte {:#04x})", self.format_byte),
            ),
            Fact::new("Tags", format!("{} bytes", self.tags)),
        ]);
        let trailing = self.file.size() - HEADER - self.data - self.tags;
        if trailing > 0 {
            facts.push(Fact::new(
                "Trailing bytes",
                format!("{trailing} after the tags (not part of the disk)"),
            ));
        }
        facts
    }

    /// Both checksums, computed when asked: a floppy's worth of data.
    fn checksums(&self) -> Checksums {
        let mut checked = Vec::new();
        let data = checksum(&*self.file, HEADER, self.data);
        let tags = checksum(
            &*self.file,
            HEADER + self.data + UNSUMMED_TAGS.min(self.tags),
            self.tags.saturating_sub(UNSUMMED_TAGS),
        );
        for (name, stored, computed) in [
            ("Disk Copy data checksum", self.data_sum, data),
            ("Disk Copy tag checksum", self.tag_sum, tags),
        ] {
            if let Ok(computed) = computed {
                checked.push(Check::new(name, stored, computed));
            }
        }
        Checksums {
            checked,
            ..Checksums::default()
        }
    }
}

/// A Disk Copy 4.2 image of `disk` (400K, 800K, 720K or 1440K), named `name`, with `tags` (12
/// bytes a sector) when the source kept them: header, data, tags, both checksums.
pub fn encode(disk: &dyn ReadAt, tags: Option<&dyn ReadAt>, name: &str) -> io::Result<Vec<u8>> {
    // (disk format, format byte): the byte as the GCR drive's format nibble (0x02 one side,
    // 0x22 two), which MAME's reader checks; Disk Copy 6 writes 0x02 for 1440K as well.
    let (format, format_byte) = match disk.size() {
        409_600 => (0u8, 0x02u8),
        819_200 => (1, 0x22),
        737_280 => (2, 0x22),
        1_474_560 => (3, 0x02),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "Disk Copy 4.2 holds 400K, 800K, 720K and 1440K floppies; this disk is {other} bytes"
                ),
            ))
        }
    };
    let tags = tags.filter(|t| t.size() == disk.size() / 512 * 12);
    let tag_size = tags.map_or(0, |t| t.size());
    let mut out = vec![0u8; (HEADER + disk.size() + tag_size) as usize];
    disk.read_exact_at(
        0,
        &mut out[HEADER as usize..(HEADER + disk.size()) as usize],
    )?;
    if let Some(t) = tags {
        t.read_exact_at(0, &mut out[(HEADER + disk.size()) as usize..])?;
    }
    let name: Vec<u8> = name
        .chars()
        .map(crate::bytes::to_mac_roman)
        .take(63)
        .collect();
    out[0] = name.len() as u8;
    out[1..1 + name.len()].copy_from_slice(&name);
    out[0x40..0x44].copy_from_slice(&(disk.size() as u32).to_be_bytes());
    out[0x44..0x48].copy_from_slice(&(tag_size as u32).to_be_bytes());
    let whole: &dyn ReadAt = &out;
    let data_sum = checksum(whole, HEADER, disk.size())?;
    let skipped = UNSUMMED_TAGS.min(tag_size);
    let tag_sum = checksum(whole, HEADER + disk.size() + skipped, tag_size - skipped)?;
    out[0x48..0x4C].copy_from_slice(&data_sum.to_be_bytes());
    out[0x4C..0x50].copy_from_slice(&tag_sum.to_be_bytes());
    out[0x50] = format;
    out[0x51] = format_byte;
    out[0x52..0x54].copy_from_slice(&0x0100u16.to_be_bytes());
    Ok(out)
}
