//! VMDK, VMware's virtual disk format (its Virtual Disk Format 5.0 specification): a text
//! descriptor lists extents — flat files, zeros, or hosted sparse extents (`KDMV`: a grain
//! directory of grain tables, each entry a grain's sector in the file). The descriptor is a file
//! of its own (monolithicFlat, twoGbMaxExtent*) or embedded in the one sparse extent
//! (monolithicSparse, streamOptimized, whose grains are deflated behind a marker and whose grain
//! directory the footer places). A child disk names its parent by `parentFileNameHint`.

pub mod writer;

use super::blocks::{open_backing, read_table, BlockDisk, Blocks, Place};
use super::{Container, Driver, Fact, Probe};
use crate::bytes::{le16, le32, le64};
use crate::error::FormatError;
use crate::io::{Concat, FileSource, ReadAt, Slice, Zeros};
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub static DRIVER: Driver = Driver {
    name: "VMDK",
    probe,
    open,
};

const SPARSE_MAGIC: &[u8; 4] = b"KDMV";
const DESCRIPTOR_MAGIC: &[u8] = b"# Disk DescriptorFile";

fn probe(p: &Probe) -> u8 {
    let head = &p.sniff.head;
    match head.starts_with(SPARSE_MAGIC) || head.starts_with(DESCRIPTOR_MAGIC) {
        true => 100,
        false => 0,
    }
}

const HEADER: &str = "VMDK sparse extent header";
const DESCRIPTOR: &str = "VMDK descriptor";

/// A descriptor larger than this is no VMware descriptor (they are a few hundred bytes).
const MAX_DESCRIPTOR: u64 = 1 << 20;
/// The grain directory's place when the footer (streamOptimized) says where it is.
const GD_AT_END: u64 = u64::MAX;
/// Header flags: zeroed-grain entries are used; grains are compressed; grains have markers.
const ZEROED_GRAIN_GTE: u32 = 1 << 2;
const COMPRESSED_GRAINS: u32 = 1 << 16;

/// One hosted sparse extent's grains.
struct Grains {
    grain: u64,
    per_table: u64,
    tables: Vec<Arc<[u32]>>,
    zeroed_grains: bool,
    compressed: bool,
}

impl Blocks for Grains {
    fn block_size(&self) -> u64 {
        self.grain
    }

    fn place(&self, n: u64) -> Place {
        let entry = self
            .tables
            .get((n / self.per_table) as usize)
            .and_then(|t| t.get((n % self.per_table) as usize))
            .copied()
            .unwrap_or(0);
        match entry {
            0 => Place::Absent,
            1 if self.zeroed_grains => Place::Zero,
            sector if self.compressed => Place::Compressed {
                at: u64::from(sector) * 512,
                len: 0,
            },
            sector => Place::At(u64::from(sector) * 512),
        }
    }

    /// A grain marker (the grain's sector, u64; its compressed size, u32), then a zlib stream.
    fn inflate(&self, file: &dyn ReadAt, at: u64, _: u64, out: &mut [u8]) -> io::Result<()> {
        let bad = |problem: String| FormatError::io("VMDK compressed grain", at, problem);
        let mut marker = [0u8; 12];
        file.read_exact_at(at, &mut marker)
            .map_err(|_| bad("its marker lies past the end of the file".into()))?;
        let len = u64::from(le32(&marker, 8));
        // A grain that compresses badly is stored a little larger than itself, never much more.
        if len == 0 || len > 2 * self.grain + 4096 {
            return Err(bad(format!(
                "{len} compressed bytes for a {}-byte grain",
                self.grain
            )));
        }
        let data = read_table("VMDK compressed grain", at + 12, len, 1, file)?;
        // The disk's last grain may hold less than a whole grain: the rest reads as zeros.
        let n = libdeflater::Decompressor::new()
            .zlib_decompress(&data, out)
            .map_err(|e| bad(format!("corrupt zlib data ({e:?})")))?;
        out[n..].fill(0);
        Ok(())
    }
}

/// A hosted sparse extent: its capacity in bytes, its grains, and its embedded descriptor.
struct SparseExtent {
    capacity: u64,
    grains: Grains,
    descriptor: Option<String>,
    allocated: u64,
}

fn read_sparse(file: &dyn ReadAt) -> io::Result<SparseExtent> {
    let bad = |at: u64, problem: String| FormatError::io(HEADER, at, problem);
    let mut header = [0u8; 512];
    if file.size() < 512 {
        return Err(bad(0, format!("{} bytes, less than a header", file.size())));
    }
    file.read_exact_at(0, &mut header)?;
    if le64(&header, 56) == GD_AT_END {
        // streamOptimized: the footer's copy of the header, 1024 bytes before the end, knows
        // where the grain directory went.
        file.read_exact_at(file.size() - 1024, &mut header)?;
        if &header[..4] != SPARSE_MAGIC {
            return Err(bad(
                file.size() - 1024,
                "the footer holds no copy of the header".into(),
            ));
        }
    }
    let version = le32(&header, 4);
    if !(1..=3).contains(&version) {
        return Err(bad(4, format!("version {version}")));
    }
    let flags = le32(&header, 8);
    let capacity = le64(&header, 12);
    let grain_sectors = le64(&header, 20);
    let per_table = u64::from(le32(&header, 44));
    let gd_at = le64(&header, 56);
    if !grain_sectors.is_power_of_two() || grain_sectors > 1 << 16 {
        return Err(bad(20, format!("a grain of {grain_sectors} sectors")));
    }
    // Every VMware writer uses 512; more would let overlapping tables multiply what is read.
    if per_table == 0 || per_table > 512 {
        return Err(bad(44, format!("{per_table} entries per grain table")));
    }
    let capacity = capacity
        .checked_mul(512)
        .filter(|&c| c <= 1 << 56)
        .ok_or_else(|| bad(12, format!("a capacity of {capacity} sectors")))?;
    let grain = grain_sectors * 512;
    let directory_entries = capacity.div_ceil(grain).div_ceil(per_table);
    let gd_at = gd_at
        .checked_mul(512)
        .ok_or_else(|| bad(56, "the grain directory's sector is out of range".into()))?;
    let directory = read_table("VMDK grain directory", gd_at, directory_entries, 4, file)?;
    let mut tables = Vec::new();
    let mut seen: HashMap<u32, Arc<[u32]>> = HashMap::new();
    let mut allocated = 0u64;
    for i in 0..directory_entries as usize {
        let sector = le32(&directory, 4 * i);
        if sector == 0 {
            tables.push(Arc::from([]));
            continue;
        }
        if let Some(table) = seen.get(&sector) {
            tables.push(table.clone());
            continue;
        }
        let at = u64::from(sector) * 512;
        let bytes = read_table("VMDK grain table", at, per_table, 4, file)?;
        let table: Arc<[u32]> = (0..per_table as usize)
            .map(|k| le32(&bytes, 4 * k))
            .collect();
        allocated += table.iter().filter(|&&e| e > 1).count() as u64;
        seen.insert(sector, table.clone());
        tables.push(table);
    }
    let (descriptor_at, descriptor_sectors) = (le64(&header, 28), le64(&header, 36));
    let descriptor = match descriptor_at {
        0 => None,
        at => {
            let text = read_table(
                HEADER,
                at.saturating_mul(512),
                descriptor_sectors.saturating_mul(512).min(MAX_DESCRIPTOR),
                1,
                file,
            )?;
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            Some(String::from_utf8_lossy(&text[..end]).into_owned())
        }
    };
    let compressed = flags & COMPRESSED_GRAINS != 0;
    if compressed && le16(&header, 77) != 1 {
        return Err(bad(
            77,
            format!("compression algorithm {}", le16(&header, 77)),
        ));
    }
    Ok(SparseExtent {
        capacity,
        grains: Grains {
            grain,
            per_table,
            tables,
            zeroed_grains: flags & ZEROED_GRAIN_GTE != 0,
            compressed,
        },
        descriptor,
        allocated,
    })
}

/// What a descriptor says: its keys, and its extents (sectors, kind, file, offset in sectors).
#[derive(Default)]
struct Descriptor {
    create_type: String,
    parent: Option<String>,
    extents: Vec<ExtentLine>,
}

struct ExtentLine {
    sectors: u64,
    kind: String,
    file: Option<String>,
    offset: u64,
}

fn parse_descriptor(text: &str) -> io::Result<Descriptor> {
    let mut d = Descriptor::default();
    let bad = |line: &str| {
        FormatError::io(
            DESCRIPTOR,
            0,
            format!("an extent line dimg cannot read: {line:?}"),
        )
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().trim_matches('"').to_string();
            match key.trim() {
                "createType" => d.create_type = value,
                "parentFileNameHint" => d.parent = Some(value),
                _ => {}
            }
            continue;
        }
        let mut words = line.splitn(3, char::is_whitespace);
        let access = words.next().unwrap_or_default();
        if !["RW", "RDONLY", "NOACCESS"].contains(&access) {
            continue;
        }
        let sectors = words
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(line))?;
        let rest = words.next().unwrap_or_default().trim();
        let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let rest = rest.trim();
        let (file, offset) = match rest.strip_prefix('"') {
            Some(quoted) => {
                let (name, after) = quoted.split_once('"').ok_or_else(|| bad(line))?;
                let offset = match after.trim() {
                    "" => 0,
                    n => n.parse().map_err(|_| bad(line))?,
                };
                (Some(name.to_string()), offset)
            }
            None => (None, 0),
        };
        d.extents.push(ExtentLine {
            sectors,
            kind: kind.to_string(),
            file,
            offset,
        });
    }
    Ok(d)
}

struct Vmdk {
    disk: Arc<dyn ReadAt>,
    create_type: String,
    extents: usize,
    grain: Option<u64>,
    allocated: u64,
    parent: Option<String>,
}

fn open(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    if p.sniff.head.starts_with(SPARSE_MAGIC) {
        let sparse = read_sparse(&*file)?;
        let descriptor = match &sparse.descriptor {
            Some(text) => parse_descriptor(text)?,
            None => Descriptor::default(),
        };
        let parent = parent_disk(&descriptor, p.path)?;
        let (grain, allocated, size) = (sparse.grains.grain, sparse.allocated, sparse.capacity);
        return Ok(Box::new(Vmdk {
            disk: Arc::new(BlockDisk::new(file, sparse.grains, size, parent)),
            create_type: descriptor.create_type,
            extents: 1,
            grain: Some(grain),
            allocated,
            parent: descriptor.parent,
        }));
    }
    if file.size() > MAX_DESCRIPTOR {
        return Err(FormatError::io(
            DESCRIPTOR,
            0,
            format!("{} bytes, too large for a descriptor", file.size()),
        ));
    }
    let mut text = vec![0u8; file.size() as usize];
    file.read_exact_at(0, &mut text)?;
    let descriptor = parse_descriptor(&String::from_utf8_lossy(&text))?;
    let parent = parent_disk(&descriptor, p.path)?;
    let folder = p.path.and_then(Path::parent);
    let (mut parts, mut at): (Vec<Arc<dyn ReadAt>>, u64) = (Vec::new(), 0);
    let (mut grain, mut allocated) = (None, 0);
    for extent in &descriptor.extents {
        let len = extent
            .sectors
            .checked_mul(512)
            .filter(|&l| l <= 1 << 56 && at + l <= 1 << 56)
            .ok_or_else(|| {
                FormatError::io(
                    DESCRIPTOR,
                    0,
                    format!("an extent of {} sectors", extent.sectors),
                )
            })?;
        let part: Arc<dyn ReadAt> = match extent.kind.as_str() {
            "ZERO" => Arc::new(Zeros(len)),
            "FLAT" | "VMFS" => {
                let data = extent_file(folder, extent)?;
                let start = extent.offset.saturating_mul(512);
                if start.saturating_add(len) > data.size() {
                    return Err(FormatError::io(
                        DESCRIPTOR,
                        0,
                        format!(
                            "the extent {:?} is {} bytes, shorter than the {len} bytes it lists",
                            extent.file.as_deref().unwrap_or_default(),
                            data.size()
                        ),
                    ));
                }
                Arc::new(Slice::new(data, start, len))
            }
            "SPARSE" => {
                let data = extent_file(folder, extent)?;
                let sparse = read_sparse(&*data)?;
                grain = Some(sparse.grains.grain);
                allocated += sparse.allocated;
                // The extent is as long as the descriptor lists; the parent shows through
                // its absent grains at the extent's place in the disk.
                let under = parent
                    .as_ref()
                    .map(|p| Arc::new(Slice::new(p.clone(), at, len)) as Arc<dyn ReadAt>);
                Arc::new(BlockDisk::new(data, sparse.grains, len, under))
            }
            other => {
                return Err(FormatError::io(
                    DESCRIPTOR,
                    0,
                    format!("an extent of type {other}, which dimg does not read"),
                ))
            }
        };
        at += len;
        parts.push(part);
    }
    if parts.is_empty() {
        return Err(FormatError::io(DESCRIPTOR, 0, "no extents"));
    }
    Ok(Box::new(Vmdk {
        disk: Arc::new(Concat::new(parts)),
        create_type: descriptor.create_type,
        extents: descriptor.extents.len(),
        grain,
        allocated,
        parent: descriptor.parent,
    }))
}

/// A file an extent line names, beside the descriptor.
fn extent_file(folder: Option<&Path>, extent: &ExtentLine) -> io::Result<Arc<dyn ReadAt>> {
    let name = extent.file.as_deref().ok_or_else(|| {
        FormatError::io(
            DESCRIPTOR,
            0,
            format!("a {} extent names no file", extent.kind),
        )
    })?;
    let folder = folder.ok_or_else(|| {
        FormatError::io(
            DESCRIPTOR,
            0,
            format!("the extent {name:?} cannot be found without the descriptor's path"),
        )
    })?;
    let path = folder.join(name);
    let file = FileSource::open(&path).map_err(|e| {
        FormatError::io(
            DESCRIPTOR,
            0,
            format!("the extent {} ({e})", path.display()),
        )
    })?;
    Ok(Arc::new(file))
}

/// The parent disk a child names, opened beside it.
fn parent_disk(d: &Descriptor, path: Option<&Path>) -> io::Result<Option<Arc<dyn ReadAt>>> {
    match &d.parent {
        Some(name) => Ok(Some(open_backing(DESCRIPTOR, 0, path, name)?)),
        None => Ok(None),
    }
}

impl Container for Vmdk {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }

    fn facts(&self) -> Vec<Fact> {
        let mut facts = vec![
            Fact::new(
                "VMDK type",
                match self.create_type.as_str() {
                    "" => "(no descriptor)",
                    t => t,
                },
            ),
            Fact::new("Extents", self.extents),
        ];
        if let Some(grain) = self.grain {
            facts.push(Fact::new("Grain size", format!("{grain} bytes")));
            facts.push(Fact::new(
                "Allocated",
                format!(
                    "{} grains ({} bytes)",
                    self.allocated,
                    self.allocated * grain
                ),
            ));
        }
        if let Some(parent) = &self.parent {
            facts.push(Fact::new("Parent", parent));
        }
        facts
    }
}
