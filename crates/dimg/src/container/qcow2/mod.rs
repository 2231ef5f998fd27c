//! qcow2, QEMU's image format (versions 2 and 3, qemu's docs/interop/qcow2.txt): a big-endian
//! header, an L1 table of L2 tables whose entries place each cluster — in the file, compressed
//! (deflate or zstd), reading as zeros, or absent and so the backing file's. Internal snapshots
//! are listed; the disk is the image's current state.

pub mod writer;

use super::blocks::{open_backing, read_table, BlockDisk, Blocks, Place};
use super::{Container, Driver, Fact, Probe};
use crate::bytes::{be16, be32, be64};
use crate::error::FormatError;
use crate::io::ReadAt;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

pub static DRIVER: Driver = Driver {
    name: "qcow2",
    probe,
    open,
};

const MAGIC: &[u8; 4] = b"QFI\xfb";

fn probe(p: &Probe) -> u8 {
    let head = &p.sniff.head;
    match head.len() >= 8 && &head[..4] == MAGIC && matches!(be32(head, 4), 2 | 3) {
        true => 100,
        false => 0,
    }
}

const STRUCTURE: &str = "qcow2 header";

fn bad(at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(STRUCTURE, at, problem)
}

/// Bits 9–55 of an L1 or standard L2 entry: a cluster's offset in the file.
const OFFSET_MASK: u64 = 0x00FF_FFFF_FFFF_FE00;
const COMPRESSED: u64 = 1 << 62;
/// An L1 or L2 entry's bit 63: the cluster's refcount is 1, so it is written in place.
const COPIED: u64 = 1 << 63;
/// A standard L2 entry's bit 0 (version 3): the cluster reads as zeros.
const ZERO: u64 = 1;

/// Incompatible features dimg reads: dirty (bit 0, a refcount matter) and the compression type
/// field (bit 3). Corrupt (1), an external data file (2) and extended L2 entries (4) are not.
const KNOWN_INCOMPATIBLE: u64 = 0b1001;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Compression {
    Deflate,
    Zstd,
}

struct Clusters {
    bits: u32,
    /// Each L1 entry's L2 table, empty where none is allocated; entries naming one table share it.
    l2: Vec<Arc<[u64]>>,
    compression: Compression,
    version: u32,
}

impl Clusters {
    fn l2_entries(&self) -> u64 {
        1 << (self.bits - 3)
    }
}

impl Blocks for Clusters {
    fn block_size(&self) -> u64 {
        1 << self.bits
    }

    fn place(&self, n: u64) -> Place {
        let per = self.l2_entries();
        let Some(entry) = self
            .l2
            .get((n / per) as usize)
            .and_then(|t| t.get((n % per) as usize))
            .copied()
        else {
            return Place::Absent;
        };
        if entry & COMPRESSED != 0 {
            // The offset takes the low 62 - (bits - 8) bits; above them, the sectors it spans
            // after its first, up to bit 61.
            let shift = 62 - (self.bits - 8);
            let at = entry & ((1 << shift) - 1);
            let sectors = ((entry & ((1 << 62) - 1)) >> shift) + 1;
            return Place::Compressed {
                at,
                len: sectors * 512 - (at & 511),
            };
        }
        match (entry & OFFSET_MASK, self.version >= 3 && entry & ZERO != 0) {
            (_, true) => Place::Zero,
            (0, false) => Place::Absent,
            (at, false) => Place::At(at),
        }
    }

    fn inflate(&self, file: &dyn ReadAt, at: u64, len: u64, out: &mut [u8]) -> io::Result<()> {
        // The last compressed cluster's sectors may run past the end of the file.
        let len = len.min(file.size().saturating_sub(at));
        let mut data = vec![0u8; len as usize];
        file.read_exact_at(at, &mut data)?;
        let bad = |e: String| FormatError::io("qcow2 compressed cluster", at, e);
        match self.compression {
            Compression::Deflate => {
                let n = libdeflater::Decompressor::new()
                    .deflate_decompress(&data, out)
                    .map_err(|e| bad(format!("corrupt deflate data ({e:?})")))?;
                match n == out.len() {
                    true => Ok(()),
                    false => Err(bad(format!("decompressed to {n} bytes, not a cluster"))),
                }
            }
            Compression::Zstd => {
                let mut input = &data[..];
                let mut decoder = ruzstd::decoding::StreamingDecoder::new(&mut input)
                    .map_err(|e| bad(format!("corrupt zstd data ({e})")))?;
                let got = crate::codec::stream::read_full(&mut decoder, out)
                    .map_err(|e| bad(format!("corrupt zstd data ({e})")))?;
                match got == out.len() {
                    true => Ok(()),
                    false => Err(bad(format!("decompressed to {got} bytes, not a cluster"))),
                }
            }
        }
    }
}

struct Snapshot {
    id: String,
    name: String,
}

struct Qcow2 {
    disk: Arc<BlockDisk<Clusters>>,
    version: u32,
    allocated: u64,
    backing: Option<String>,
    snapshots: Vec<Snapshot>,
}

fn open(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let mut header = [0u8; 112];
    let have = file.size().min(header.len() as u64) as usize;
    file.read_exact_at(0, &mut header[..have])?;
    if have < 72 {
        return Err(bad(0, format!("{have} bytes, less than a header")));
    }
    let version = be32(&header, 4);
    let bits = be32(&header, 20);
    if !(9..=21).contains(&bits) {
        return Err(bad(20, format!("cluster bits {bits}, not 9 to 21")));
    }
    let size = be64(&header, 24);
    if size > 1 << 56 {
        return Err(bad(24, format!("a disk of {size} bytes")));
    }
    if be32(&header, 32) != 0 {
        return Err(bad(32, "the image is encrypted, which dimg does not read"));
    }
    let (mut compression, mut extensions_at) = (Compression::Deflate, 72u64);
    if version >= 3 {
        if have < 104 {
            return Err(bad(
                0,
                format!("{have} bytes, less than a version 3 header"),
            ));
        }
        let incompatible = be64(&header, 72);
        if incompatible & !KNOWN_INCOMPATIBLE != 0 {
            return Err(bad(
                72,
                format!(
                    "incompatible features {incompatible:#x} (corrupt, external data file or \
                     extended L2 entries), which dimg does not read"
                ),
            ));
        }
        let length = u64::from(be32(&header, 100));
        if !(104..=1 << 16).contains(&length) {
            return Err(bad(100, format!("a header of {length} bytes")));
        }
        if length > 104 && have > 104 {
            compression = match header[104] {
                0 => Compression::Deflate,
                1 => Compression::Zstd,
                other => return Err(bad(104, format!("compression type {other}"))),
            };
        }
        extensions_at = length;
    }
    let cluster = 1u64 << bits;
    let l1_entries = u64::from(be32(&header, 36));
    let per_l2 = cluster / 8;
    // The L1 table need list no more L2 tables than the disk needs.
    let needed = size.div_ceil(cluster).div_ceil(per_l2);
    let l1_at = be64(&header, 40);
    let l1 = read_table("qcow2 L1 table", l1_at, l1_entries, 8, &*file)?;
    let mut l2 = Vec::new();
    let mut tables: HashMap<u64, Arc<[u64]>> = HashMap::new();
    let mut allocated = 0u64;
    for i in 0..l1_entries.min(needed) as usize {
        let at = be64(&l1, 8 * i) & OFFSET_MASK;
        if at == 0 {
            l2.push(Arc::from([]));
            continue;
        }
        if let Some(table) = tables.get(&at) {
            l2.push(table.clone());
            continue;
        }
        if !at.is_multiple_of(cluster) {
            return Err(FormatError::io(
                "qcow2 L1 table",
                l1_at + 8 * i as u64,
                format!("L2 table at {at}, not on a cluster boundary"),
            ));
        }
        let table = read_table("qcow2 L2 table", at, per_l2, 8, &*file)?;
        let entries: Arc<[u64]> = (0..per_l2 as usize).map(|k| be64(&table, 8 * k)).collect();
        allocated += entries
            .iter()
            .filter(|&&e| e & COMPRESSED != 0 || e & OFFSET_MASK != 0)
            .count() as u64;
        tables.insert(at, entries.clone());
        l2.push(entries);
    }
    let backing = backing_name(&*file, &header)?;
    let backing_disk = match &backing {
        Some(name) => Some(open_backing(STRUCTURE, 8, p.path, name)?),
        None => None,
    };
    check_extensions(&*file, extensions_at, cluster)?;
    let snapshots = snapshots(&*file, &header)?;
    let clusters = Clusters {
        bits,
        l2,
        compression,
        version,
    };
    Ok(Box::new(Qcow2 {
        disk: Arc::new(BlockDisk::new(file, clusters, size, backing_disk)),
        version,
        allocated,
        backing,
        snapshots,
    }))
}

/// The backing file's name, which the header places in the file's first cluster.
fn backing_name(file: &dyn ReadAt, header: &[u8]) -> io::Result<Option<String>> {
    let (at, len) = (be64(header, 8), be32(header, 16));
    if at == 0 {
        return Ok(None);
    }
    if len == 0 || len > 1023 {
        return Err(bad(16, format!("a backing file name of {len} bytes")));
    }
    let name = read_table(STRUCTURE, at, u64::from(len), 1, file)?;
    String::from_utf8(name)
        .map(Some)
        .map_err(|_| bad(at, "the backing file name is not UTF-8"))
}

/// Header extensions: walked to their end marker within the first cluster, so that a damaged
/// chain is an error. An external data file (which the incompatible bit 2 also announces) is
/// refused there.
fn check_extensions(file: &dyn ReadAt, mut at: u64, cluster: u64) -> io::Result<()> {
    let mut head = [0u8; 8];
    while at + 8 <= cluster.min(file.size()) {
        file.read_exact_at(at, &mut head)?;
        let (kind, len) = (be32(&head, 0), u64::from(be32(&head, 4)));
        match kind {
            0 => return Ok(()),
            0x4441_5441 => return Err(bad(at, "an external data file, which dimg does not read")),
            _ => {}
        }
        at += 8 + len.next_multiple_of(8);
    }
    Err(bad(at, "the header extensions run past the first cluster"))
}

/// The internal snapshots' IDs and names.
fn snapshots(file: &dyn ReadAt, header: &[u8]) -> io::Result<Vec<Snapshot>> {
    let (count, mut at) = (be32(header, 60), be64(header, 64));
    // Each entry is at least 40 bytes: a count the file cannot hold is damage.
    super::blocks::table_bytes("qcow2 snapshot table", at, u64::from(count), 40, file)?;
    let mut found = Vec::new();
    for _ in 0..count {
        let mut entry = [0u8; 40];
        file.read_exact_at(at, &mut entry)?;
        let (id_len, name_len) = (be16(&entry, 12), be16(&entry, 14));
        let extra = u64::from(be32(&entry, 36));
        if extra > 1 << 16 {
            return Err(FormatError::io(
                "qcow2 snapshot table",
                at,
                format!("{extra} bytes of extra data"),
            ));
        }
        let text_at = at + 40 + extra;
        let text = read_table(
            "qcow2 snapshot table",
            text_at,
            u64::from(id_len) + u64::from(name_len),
            1,
            file,
        )?;
        let (id, name) = text.split_at(id_len as usize);
        found.push(Snapshot {
            id: String::from_utf8_lossy(id).into_owned(),
            name: String::from_utf8_lossy(name).into_owned(),
        });
        at = (text_at + text.len() as u64).next_multiple_of(8);
    }
    Ok(found)
}

impl Container for Qcow2 {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }

    fn facts(&self) -> Vec<Fact> {
        let clusters = self.disk.blocks();
        let mut facts = vec![
            Fact::new(
                "qcow2 version",
                match self.version {
                    2 => "2 (compat 0.10)".to_string(),
                    v => format!("{v} (compat 1.1)"),
                },
            ),
            Fact::new("Cluster size", format!("{} bytes", clusters.block_size())),
            Fact::new(
                "Allocated",
                format!(
                    "{} clusters ({} bytes)",
                    self.allocated,
                    self.allocated * clusters.block_size()
                ),
            ),
            Fact::new(
                "Compression",
                match clusters.compression {
                    Compression::Deflate => "deflate (zlib)",
                    Compression::Zstd => "zstd",
                },
            ),
        ];
        if let Some(backing) = &self.backing {
            facts.push(Fact::new("Backing file", backing));
        }
        for s in &self.snapshots {
            facts.push(Fact::new("Snapshot", format!("{} (ID {})", s.name, s.id)));
        }
        facts
    }
}
