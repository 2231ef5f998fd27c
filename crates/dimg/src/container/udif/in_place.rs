//! A read/write UDIF image (UDRW) changed in place: its data fork is the disk, written through.
//! After the last write (a detach) the checksums over it — the data fork's in the trailer, each
//! block table's in the property list, and the master checksum over those — are brought up to
//! date where they stand, so the trailer keeps its length and every byte but the checksums.

use super::koly::Koly;
use crate::error::FormatError;
use crate::io::{ReadAt, Slice, WriteAt};
use base64::Engine;
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where the CRC-32 value sits in a checksum field (after its type and bit count).
const CRC_IN_CHECKSUM: u64 = 8;
/// Where each checksum field is: in the koly trailer, and in a block table (mish).
const DATA_FORK_CHECKSUM: u64 = 0x50;
const MASTER_CHECKSUM: u64 = 0x160;
const MISH_CHECKSUM: usize = 0x40;

/// A block table's CRC-32, kept only where the image keeps one: the disk ranges it covers.
pub(super) struct TableCrc {
    pub ranges: Vec<Range<u64>>,
}

pub(super) struct InPlace {
    /// The disk: the data fork, where it starts the file.
    disk: Slice<dyn WriteAt>,
    file: Arc<dyn WriteAt>,
    koly: Koly,
    koly_at: u64,
    /// Every block table in the property list's order; `None` for one without a CRC-32.
    tables: Vec<Option<TableCrc>>,
    written: AtomicBool,
}

impl InPlace {
    pub(super) fn new(
        file: Arc<dyn WriteAt>,
        koly: Koly,
        koly_at: u64,
        tables: Vec<Option<TableCrc>>,
    ) -> Self {
        InPlace {
            disk: Slice::new(file.clone(), 0, koly.sector_count * 512),
            file,
            koly,
            koly_at,
            tables,
            written: AtomicBool::new(false),
        }
    }

    fn crc(&self, ranges: &[Range<u64>]) -> io::Result<u32> {
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        for r in ranges {
            let mut at = r.start;
            while at < r.end {
                let n = (r.end - at).min(buf.len() as u64) as usize;
                self.file.read_exact_at(at, &mut buf[..n])?;
                hasher.update(&buf[..n]);
                at += n as u64;
            }
        }
        Ok(hasher.finalize())
    }

    /// Recomputes every CRC-32 the image keeps and writes each where it stands.
    fn refresh_checksums(&self) -> io::Result<()> {
        let k = &self.koly;
        let mut table_crcs = Vec::new();
        for table in &self.tables {
            table_crcs.push(match table {
                Some(t) => Some(self.crc(&t.ranges)?),
                None => None,
            });
        }
        self.patch_tables(&table_crcs)?;
        if k.data_fork_checksum.crc32().is_some() {
            let fork = k.data_fork_offset..k.data_fork_offset + k.data_fork_length;
            let crc = self.crc(&[fork])?;
            self.put_crc(self.koly_at + DATA_FORK_CHECKSUM + CRC_IN_CHECKSUM, crc)?;
        }
        if k.master_checksum.crc32().is_some() {
            // Over each table's checksum value, as stored: 4 bytes for a CRC-32.
            let mut master = crc32fast::Hasher::new();
            for crc in table_crcs.iter().flatten() {
                master.update(&crc.to_be_bytes());
            }
            let crc = master.finalize();
            self.put_crc(self.koly_at + MASTER_CHECKSUM + CRC_IN_CHECKSUM, crc)?;
        }
        Ok(())
    }

    fn put_crc(&self, at: u64, crc: u32) -> io::Result<()> {
        self.file.write_all_at(at, &crc.to_be_bytes())
    }

    /// Each block table's new CRC-32 into its base64 text in the property list, character for
    /// character: the text keeps its length and its line breaks.
    fn patch_tables(&self, crcs: &[Option<u32>]) -> io::Result<()> {
        let k = &self.koly;
        if crcs.iter().all(Option::is_none) {
            return Ok(());
        }
        let bad = |problem: &str| FormatError::io("UDIF property list", k.xml_offset, problem);
        if k.xml_length == 0 || k.xml_length > 64 << 20 {
            return Err(bad(
                "no property list whose block tables can be brought up to date",
            ));
        }
        let mut xml = vec![0u8; k.xml_length as usize];
        self.file.read_exact_at(k.xml_offset, &mut xml)?;
        let blkx = find(&xml, b"<key>blkx</key>", 0).ok_or_else(|| bad("no blkx"))?;
        let mut from = blkx;
        for crc in crcs {
            let open = find(&xml, b"<data>", from).ok_or_else(|| bad("a blkx without data"))?;
            let start = open + b"<data>".len();
            let end = find(&xml, b"</data>", start).ok_or_else(|| bad("unclosed <data>"))?;
            from = end;
            let Some(crc) = crc else { continue };
            let text = &mut xml[start..end];
            let places: Vec<usize> = (0..text.len())
                .filter(|&i| !text[i].is_ascii_whitespace())
                .collect();
            let encoded: Vec<u8> = places.iter().map(|&i| text[i]).collect();
            let engine = base64::engine::general_purpose::STANDARD;
            let mut mish = engine
                .decode(&encoded)
                .map_err(|_| bad("a blkx that is not base64"))?;
            let at = MISH_CHECKSUM + CRC_IN_CHECKSUM as usize;
            if mish.len() < at + 4 {
                return Err(bad("a blkx too short for its checksum"));
            }
            mish[at..at + 4].copy_from_slice(&crc.to_be_bytes());
            let again = engine.encode(&mish);
            for (&i, &c) in places.iter().zip(again.as_bytes()) {
                text[i] = c;
            }
        }
        self.file.write_all_at(k.xml_offset, &xml)
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

impl ReadAt for InPlace {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.disk.read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.disk.size()
    }
}

impl WriteAt for InPlace {
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.written.store(true, Ordering::Relaxed);
        self.disk.write_all_at(offset, buf)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync()
    }

    fn finish(&self) -> io::Result<()> {
        if self.written.swap(false, Ordering::Relaxed) {
            self.file.sync()?;
            self.refresh_checksums()?;
        }
        self.file.sync()
    }
}
