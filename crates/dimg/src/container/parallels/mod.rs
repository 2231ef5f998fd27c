//! Parallels disks (qemu's docs/interop/parallels.txt): an `.hds` image — a 64-byte little-endian
//! header (`WithoutFreeSpace`, or `WithouFreSpacExt` whose table counts in clusters), then a
//! table placing each cluster — and the `.hdd` bundle around it, a folder whose
//! `DiskDescriptor.xml` lists the images of each snapshot, each reading its parent's clusters
//! where it holds none.

mod bundle;
pub mod writer;

use super::blocks::{read_table, BlockDisk, Blocks, Place};
use super::{Container, Driver, Fact, Probe};
use crate::bytes::{le32, le64};
use crate::error::FormatError;
use crate::io::ReadAt;
use std::io;
use std::sync::Arc;

pub use bundle::{is_bundle, open_bundle};

pub static DRIVER: Driver = Driver {
    name: "Parallels disk",
    probe,
    open,
};

const MAGIC_SECTORS: &[u8; 16] = b"WithoutFreeSpace";
const MAGIC_CLUSTERS: &[u8; 16] = b"WithouFreSpacExt";

fn probe(p: &Probe) -> u8 {
    let head = &p.sniff.head;
    match head.starts_with(MAGIC_SECTORS) || head.starts_with(MAGIC_CLUSTERS) {
        true => 100,
        false => 0,
    }
}

const HEADER: &str = "Parallels header";

struct Clusters {
    cluster: u64,
    /// Each table entry's unit, in bytes.
    unit: u64,
    table: Vec<u32>,
}

impl Blocks for Clusters {
    fn block_size(&self) -> u64 {
        self.cluster
    }

    fn place(&self, n: u64) -> Place {
        match self.table.get(n as usize).copied().unwrap_or(0) {
            0 => Place::Absent,
            k => Place::At(u64::from(k) * self.unit),
        }
    }
}

struct Parallels {
    disk: Arc<dyn ReadAt>,
    cluster: u64,
    allocated: usize,
    /// For a bundle: its images, the current one first.
    images: Vec<String>,
}

/// The disk an `.hds` image holds, its absent clusters read from `parent` (zeros without one).
fn read_image(
    file: Arc<dyn ReadAt>,
    parent: Option<Arc<dyn ReadAt>>,
) -> io::Result<(Arc<BlockDisk<Clusters>>, usize)> {
    let header = read_table(HEADER, 0, 64, 1, &*file)?;
    let bad = |at: u64, problem: String| FormatError::io(HEADER, at, problem);
    if &header[..16] != MAGIC_SECTORS && &header[..16] != MAGIC_CLUSTERS {
        return Err(bad(0, "no Parallels signature".into()));
    }
    if le32(&header, 16) != 2 {
        return Err(bad(16, format!("version {}", le32(&header, 16))));
    }
    let sectors = u64::from(le32(&header, 28));
    if sectors == 0 || sectors > 1 << 16 {
        return Err(bad(28, format!("clusters of {sectors} sectors")));
    }
    let cluster = sectors * 512;
    let entries = u64::from(le32(&header, 32));
    // The older signature keeps a 32-bit sector count.
    let size = match &header[..16] == MAGIC_SECTORS {
        true => le64(&header, 36) & 0xFFFF_FFFF,
        false => le64(&header, 36),
    };
    let size = size
        .checked_mul(512)
        .filter(|&s| s <= 1 << 56)
        .ok_or_else(|| bad(36, format!("a disk of {size} sectors")))?;
    let unit = match &header[..16] == MAGIC_SECTORS {
        true => 512,
        false => cluster,
    };
    let bytes = read_table(
        "Parallels cluster table",
        64,
        entries.min(size.div_ceil(cluster)),
        4,
        &*file,
    )?;
    let table: Vec<u32> = (0..bytes.len() / 4).map(|i| le32(&bytes, 4 * i)).collect();
    let allocated = table.iter().filter(|&&e| e != 0).count();
    let clusters = Clusters {
        cluster,
        unit,
        table,
    };
    Ok((
        Arc::new(BlockDisk::new(file, clusters, size, parent)),
        allocated,
    ))
}

fn open(file: Arc<dyn ReadAt>, _: &Probe) -> io::Result<Box<dyn Container>> {
    let (disk, allocated) = read_image(file, None)?;
    Ok(Box::new(Parallels {
        cluster: disk.blocks().block_size(),
        disk,
        allocated,
        images: Vec::new(),
    }))
}

impl Container for Parallels {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }

    fn facts(&self) -> Vec<Fact> {
        let mut facts = vec![
            Fact::new("Cluster size", format!("{} bytes", self.cluster)),
            Fact::new(
                "Allocated",
                format!(
                    "{} clusters ({} bytes)",
                    self.allocated,
                    self.allocated as u64 * self.cluster
                ),
            ),
        ];
        facts.extend(self.images.iter().map(|i| Fact::new("Image", i)));
        facts
    }
}
