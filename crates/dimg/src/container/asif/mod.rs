//! ASIF, the Apple Sparse Image Format of macOS 26: a `shdw` header names two
//! directories, the one of the higher version in force (a writer updates the other and then
//! raises its version, so that a crash leaves the older valid). A directory lists, for each table,
//! the chunk that holds it; a table is groups of `4 × block size` chunk entries each followed by
//! the entry of a bitmap chunk. An entry's low 55 bits are a chunk number in the file, its top two
//! bits its state; a chunk no entry names reads as zeros. A metadata chunk near the top of the
//! address space (past the disk's end, within its maximum size) holds a `meta` header and a
//! property list. Big-endian.

mod in_place;
pub mod writer;

use super::{Container, Driver, Fact, Probe};
use crate::bytes::{be16, be32, be64};
use crate::error::FormatError;
use crate::io::{band_span, band_zeros_until, ReadAt};
use crate::magic::Signature;
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, RwLock};

pub static DRIVER: Driver = Driver {
    name: "Apple sparse image format (ASIF)",
    probe,
    open,
};

fn probe(p: &Probe) -> u8 {
    p.certain_if(Signature::Asif)
}

const STRUCTURE: &str = "ASIF header";

fn bad(at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(STRUCTURE, at, problem)
}

/// The header's fields, at their offsets.
const VERSION: usize = 0x04;
const HEADER_SIZE: usize = 0x08;
const DIRECTORIES: usize = 0x10;
const UUID: usize = 0x20;
const SECTORS: usize = 0x30;
const MAX_SECTORS: usize = 0x38;
const CHUNK_SIZE: usize = 0x40;
const BLOCK_SIZE: usize = 0x44;
const METADATA_CHUNK: usize = 0x48;
/// The header as read and written: one 512-byte block.
const HEADER_BYTES: usize = 512;

/// An entry's chunk number, and its state: 01 every block written, 11 some (the rest zeros).
const CHUNK_NUMBER: u64 = (1 << 55) - 1;
const WRITTEN: u64 = 1 << 62;

/// Largest chunk dimg reads or writes: tables and metadata are read whole.
const MAX_CHUNK: u64 = 64 << 20;
/// Most tables a directory may list (a 32 MiB directory): 4 PiB in 1 MiB chunks takes 33,289.
const MAX_TABLES: u64 = 1 << 22;
/// The address space macOS gives an image: 4 PiB, the last chunk its metadata.
pub const MAX_SIZE: u64 = 4 << 50;
/// macOS's chunk: 1 MiB.
pub const CHUNK: u64 = 1 << 20;
/// The metadata header and its property list's largest size dimg reads.
const META_HEADER: usize = 0x1C;
const MAX_PLIST: u64 = 1 << 20;

/// How an image's address space is cut into chunks, tables and directories: from its chunk and
/// block sizes and its maximum size.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    pub chunk: u64,
    pub block: u64,
    pub max_size: u64,
}

impl Geometry {
    /// Data chunks per group, one bitmap entry after them: 2 bits for each block of the group.
    fn per_group(&self) -> u64 {
        4 * self.block
    }

    fn groups(&self) -> u64 {
        self.chunk / (8 * (self.per_group() + 1))
    }

    /// Data chunks one table maps.
    fn chunks_per_table(&self) -> u64 {
        self.groups() * self.per_group()
    }

    /// A table's entries, bitmap entries among them.
    fn table_entries(&self) -> usize {
        (self.groups() * (self.per_group() + 1)) as usize
    }

    fn table_bytes(&self) -> u64 {
        8 * self.table_entries() as u64
    }

    /// Tables in a directory: as many as cover the maximum size.
    fn tables(&self) -> u64 {
        self.max_size.div_ceil(self.chunks_per_table() * self.chunk)
    }

    /// A directory: its version, then a chunk number for each table.
    fn directory_bytes(&self) -> u64 {
        8 + 8 * self.tables()
    }

    /// The table, and the entry in it, that map logical chunk `chunk`.
    fn slot(&self, chunk: u64) -> (u64, usize) {
        let (per_table, per_group) = (self.chunks_per_table(), self.per_group());
        let within = chunk % per_table;
        let entry = within / per_group * (per_group + 1) + within % per_group;
        (chunk / per_table, entry as usize)
    }

    /// The logical chunk entry `entry` of table `table` maps; `None` for a bitmap entry.
    fn chunk_of(&self, table: u64, entry: usize) -> Option<u64> {
        let per_group = self.per_group();
        let (group, within) = (
            entry as u64 / (per_group + 1),
            entry as u64 % (per_group + 1),
        );
        (within < per_group).then(|| table * self.chunks_per_table() + group * per_group + within)
    }

    /// Checks a chunk size for blocks of `block` bytes: a power of two from the smallest that
    /// holds a group's entries to 64 MiB.
    fn check_chunk(chunk: u64, block: u64) -> Result<(), String> {
        let least = (8 * (4 * block + 1)).next_power_of_two();
        match chunk.is_power_of_two() && (least..=MAX_CHUNK).contains(&chunk) {
            true => Ok(()),
            false => Err(format!(
                "a chunk of {chunk} bytes: a power of two from {least} to {MAX_CHUNK} bytes, for \
                 {block}-byte blocks"
            )),
        }
    }
}

/// The header's facts.
struct Header {
    geometry: Geometry,
    directories: [u64; 2],
    uuid: [u8; 16],
    size: u64,
    metadata_chunk: u64,
}

impl Header {
    fn read(file: &dyn ReadAt) -> io::Result<Header> {
        if file.size() < HEADER_BYTES as u64 {
            return Err(bad(
                0,
                format!("{} bytes, less than its 512-byte header", file.size()),
            ));
        }
        let mut h = [0u8; HEADER_BYTES];
        file.read_exact_at(0, &mut h)?;
        if &h[..4] != b"shdw" {
            return Err(bad(0, "no 'shdw' signature"));
        }
        let version = be32(&h, VERSION);
        if version != 1 {
            return Err(bad(
                VERSION as u64,
                format!("version {version}; dimg reads 1"),
            ));
        }
        let header_size = u64::from(be32(&h, HEADER_SIZE));
        let block = u64::from(be16(&h, BLOCK_SIZE));
        if !block.is_power_of_two() || block < 512 {
            return Err(bad(BLOCK_SIZE as u64, format!("blocks of {block} bytes")));
        }
        let chunk = u64::from(be32(&h, CHUNK_SIZE));
        Geometry::check_chunk(chunk, block).map_err(|e| bad(CHUNK_SIZE as u64, e))?;
        if !(0x50..=chunk).contains(&header_size) {
            return Err(bad(
                HEADER_SIZE as u64,
                format!("a header of {header_size} bytes"),
            ));
        }
        let (sectors, max_sectors) = (be64(&h, SECTORS), be64(&h, MAX_SECTORS));
        let max_size = max_sectors
            .checked_mul(block)
            .filter(|&m| m <= 1 << 60)
            .ok_or_else(|| bad(MAX_SECTORS as u64, format!("{max_sectors} blocks at most")))?;
        if sectors > max_sectors {
            return Err(bad(
                SECTORS as u64,
                format!("{sectors} blocks, more than its maximum of {max_sectors}"),
            ));
        }
        let geometry = Geometry {
            chunk,
            block,
            max_size,
        };
        if geometry.tables() > MAX_TABLES {
            return Err(bad(
                MAX_SECTORS as u64,
                format!("{} tables, more than dimg reads", geometry.tables()),
            ));
        }
        let directories = [be64(&h, DIRECTORIES), be64(&h, DIRECTORIES + 8)];
        for (i, &at) in directories.iter().enumerate() {
            if at < header_size
                || at
                    .checked_add(geometry.directory_bytes())
                    .is_none_or(|end| end > file.size())
            {
                return Err(bad(
                    (DIRECTORIES + 8 * i) as u64,
                    format!("directory {i} at {at} lies outside the file"),
                ));
            }
        }
        let metadata_chunk = be64(&h, METADATA_CHUNK);
        if metadata_chunk >= max_size / chunk {
            return Err(bad(
                METADATA_CHUNK as u64,
                format!("metadata in chunk {metadata_chunk}, past the maximum size"),
            ));
        }
        Ok(Header {
            geometry,
            directories,
            uuid: h[UUID..UUID + 16].try_into().expect("16 bytes"),
            size: sectors * block,
            metadata_chunk,
        })
    }
}

/// One of the two directories: where it is, its version and its tables' chunk numbers.
struct Directory {
    at: u64,
    version: u64,
    tables: Vec<u64>,
}

fn read_directory(file: &dyn ReadAt, at: u64, g: &Geometry) -> io::Result<Directory> {
    let mut bytes = vec![0u8; g.directory_bytes() as usize];
    file.read_exact_at(at, &mut bytes)?;
    Ok(Directory {
        at,
        version: be64(&bytes, 0),
        tables: bytes[8..].chunks(8).map(|e| be64(e, 0)).collect(),
    })
}

/// The virtual disk, and the address space past it up to the maximum size: each logical chunk
/// where its entry puts it in the file, or zeros.
struct Chunks {
    file: Arc<dyn ReadAt>,
    geometry: Geometry,
    size: u64,
    at: RwLock<HashMap<u64, u64>>,
}

impl Chunks {
    fn offset_of(&self, chunk: u64) -> Option<u64> {
        self.at
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&chunk)
            .copied()
    }

    /// Reads from the whole address space: the metadata chunk lies past the disk's end.
    fn read_space(&self, offset: u64, buf: &mut [u8], end: u64) -> io::Result<usize> {
        let Some((chunk, within, n)) = band_span(offset, buf.len(), self.geometry.chunk, end)
        else {
            return Ok(0);
        };
        // A chunk the file ends within reads as zeros past its end, as a sparse file's hole.
        let stored = match self.offset_of(chunk) {
            Some(start) => {
                let from = start + within;
                let have = (self.file.size().saturating_sub(from)).min(n as u64) as usize;
                self.file.read_exact_at(from, &mut buf[..have])?;
                have
            }
            None => 0,
        };
        buf[stored..n].fill(0);
        Ok(n)
    }
}

impl ReadAt for Chunks {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.read_space(offset, buf, self.size)
    }

    fn size(&self) -> u64 {
        self.size
    }

    /// Chunks no entry names.
    fn zeros_until(&self, offset: u64) -> u64 {
        let at = self.at.read().unwrap_or_else(|p| p.into_inner());
        band_zeros_until(offset, self.geometry.chunk, self.size, |n| {
            match at.contains_key(&n) {
                true => self.geometry.chunk,
                false => 0,
            }
        })
    }
}

/// An image as read: its header, the directory in force and the chunks its tables map.
struct Read {
    header: Header,
    directory: Directory,
    /// The other directory: where a writer puts the next version.
    spare: Directory,
    chunks: Arc<Chunks>,
    /// The first chunk of the file no structure uses.
    end_chunk: u64,
}

fn read_image(file: Arc<dyn ReadAt>) -> io::Result<Read> {
    let header = Header::read(&*file)?;
    let g = header.geometry;
    let [first, second] = header.directories.map(|at| read_directory(&*file, at, &g));
    let (directory, spare) = match (first?, second?) {
        (a, b) if a.version >= b.version => (a, b),
        (a, b) => (b, a),
    };
    let chunk_at = |number: u64, at: u64, what: &str| -> io::Result<u64> {
        let start = number
            .checked_mul(g.chunk)
            .filter(|&s| s >= g.chunk && s < file.size())
            .ok_or_else(|| bad(at, format!("{what} in chunk {number}, outside the file")))?;
        Ok(start)
    };
    let mut at = HashMap::new();
    let mut used = HashSet::new();
    let mut entries = Vec::new();
    for (t, &table) in directory.tables.iter().enumerate() {
        if table == 0 {
            continue;
        }
        let slot_at = directory.at + 8 + 8 * t as u64;
        let start = chunk_at(table, slot_at, "a table")?;
        if start + g.table_bytes() > file.size() || !used.insert(table) {
            return Err(bad(
                slot_at,
                format!("table {t} in chunk {table} runs past the file's end or is listed twice"),
            ));
        }
        entries.resize(g.table_bytes() as usize, 0);
        file.read_exact_at(start, &mut entries)?;
        for (e, raw) in entries.chunks(8).enumerate() {
            let entry = be64(raw, 0);
            let number = entry & CHUNK_NUMBER;
            if number == 0 {
                continue;
            }
            let entry_at = start + 8 * e as u64;
            let offset = chunk_at(number, entry_at, "an entry's data")?;
            if !used.insert(number) {
                return Err(bad(entry_at, format!("chunk {number} is listed twice")));
            }
            if let Some(logical) = g.chunk_of(t as u64, e) {
                at.insert(logical, offset);
            }
        }
    }
    let directories_end = header
        .directories
        .iter()
        .map(|d| d + g.directory_bytes())
        .max()
        .expect("two directories");
    // Chunks the spare directory's tables take are kept too: a crash may yet fall back on it.
    let end_chunk = used
        .iter()
        .chain(spare.tables.iter())
        .map(|n| n + 1)
        .chain([directories_end.div_ceil(g.chunk)])
        .max()
        .expect("at least the directories");
    let chunks = Arc::new(Chunks {
        file,
        geometry: g,
        size: header.size,
        at: RwLock::new(at),
    });
    Ok(Read {
        header,
        directory,
        spare,
        chunks,
        end_chunk,
    })
}

/// The metadata chunk's property list: its stable UUID (or why it cannot be read).
fn stable_uuid(read: &Read) -> Result<Option<String>, String> {
    let h = &read.header;
    if h.metadata_chunk == 0 {
        return Ok(None);
    }
    let chunks = &read.chunks;
    let space = h.geometry.max_size;
    let at = h.metadata_chunk * h.geometry.chunk;
    if chunks.offset_of(h.metadata_chunk).is_none() {
        return Ok(None);
    }
    let read_at = |offset: u64, buf: &mut [u8]| -> Result<(), String> {
        let mut done = 0;
        while done < buf.len() {
            match chunks.read_space(offset + done as u64, &mut buf[done..], space) {
                Ok(0) => return Err("it runs past the maximum size".into()),
                Ok(n) => done += n,
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    };
    let mut head = [0u8; META_HEADER];
    read_at(at, &mut head)?;
    if &head[..4] != b"meta" {
        return Err("no 'meta' signature".into());
    }
    let (header_size, length) = (u64::from(be32(&head, 8)), be64(&head, 0x0C));
    if header_size + length.min(MAX_PLIST) > h.geometry.chunk || length > MAX_PLIST {
        return Err(format!(
            "a {header_size}-byte header and {length} bytes of property list, more than its chunk"
        ));
    }
    let mut list = vec![0u8; length as usize];
    read_at(at + header_size, &mut list)?;
    let end = list.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let value = plist::Value::from_reader(io::Cursor::new(&list[..end]))
        .map_err(|e| format!("its property list: {e}"))?;
    Ok(value
        .as_dictionary()
        .and_then(|d| d.get("internal metadata"))
        .and_then(|m| m.as_dictionary())
        .and_then(|m| m.get("stable uuid"))
        .and_then(|u| u.as_string())
        .map(String::from))
}

struct Asif {
    chunks: Arc<Chunks>,
    facts: Vec<Fact>,
    writable: Option<Arc<in_place::Growing>>,
}

fn open(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let read = read_image(file)?;
    let (h, g) = (&read.header, read.header.geometry);
    let disk_chunks = h.size.div_ceil(g.chunk);
    let stored = (read.chunks.at.read().unwrap_or_else(|p| p.into_inner()))
        .keys()
        .filter(|&&n| n < disk_chunks)
        .count();
    let mut facts = vec![
        Fact::new("Image UUID", crate::bytes::uuid_text(&h.uuid)),
        Fact::new("Maximum size", format!("{} bytes", g.max_size)),
        Fact::new("Chunk size", format!("{} bytes", g.chunk)),
        Fact::new("Block size", format!("{} bytes", g.block)),
        Fact::new(
            "Chunks stored",
            format!("{stored} (directory version {})", read.directory.version),
        ),
    ];
    match stable_uuid(&read) {
        Ok(Some(uuid)) => facts.insert(0, Fact::new("Stable UUID", uuid)),
        Ok(None) => {}
        Err(problem) => facts.push(Fact::new("Metadata", format!("unreadable: {problem}"))),
    }
    let writable = p
        .writable
        .map(|file| Arc::new(in_place::Growing::new(file.clone(), &read)));
    Ok(Box::new(Asif {
        chunks: read.chunks,
        facts,
        writable,
    }))
}

impl Container for Asif {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.chunks.clone()
    }

    fn facts(&self) -> Vec<Fact> {
        self.facts.clone()
    }

    fn read_write(&self) -> bool {
        true
    }

    fn writable(&self) -> Option<Arc<dyn crate::io::WriteAt>> {
        self.writable
            .clone()
            .map(|w| w as Arc<dyn crate::io::WriteAt>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// macOS's geometry, as dissect.hypervisor and the published description derive it: groups
    /// of 2,048 data entries and a bitmap entry, 63 groups a table (126 GiB), 33,289 tables for
    /// 4 PiB; the metadata chunk, the last, in the last table's eighth group.
    #[test]
    fn macos_geometry() {
        let g = Geometry {
            chunk: CHUNK,
            block: 512,
            max_size: MAX_SIZE,
        };
        assert_eq!(g.chunks_per_table(), 63 * 2048);
        assert_eq!(g.table_bytes(), 63 * 2049 * 8);
        assert_eq!(g.tables(), 33_289);
        let last = MAX_SIZE / CHUNK - 1;
        assert_eq!(g.slot(last), (33_288, 7 * 2049 + 2047));
        assert_eq!(g.chunk_of(33_288, 7 * 2049 + 2047), Some(last));
        assert_eq!(g.slot(2048), (0, 2049));
        assert_eq!(g.chunk_of(0, 2048), None, "a bitmap entry");
    }
}
