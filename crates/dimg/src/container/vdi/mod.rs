//! VDI, VirtualBox's disk format (version 1.1 header, little-endian): a text line, the signature
//! 0xBEDA107F at 64, then the header: where the block map and the data start, the disk and block
//! sizes. Each map entry is a block's number in the data area, or says it is absent or zeros.

pub mod writer;

use super::blocks::{read_table, BlockDisk, Blocks, Place};
use super::{Container, Driver, Fact, Probe};
use crate::bytes::{le32, le64};
use crate::error::FormatError;
use crate::io::ReadAt;
use std::io;
use std::sync::Arc;

pub static DRIVER: Driver = Driver {
    name: "VDI",
    probe,
    open,
};

const SIGNATURE: u32 = 0xBEDA_107F;

fn probe(p: &Probe) -> u8 {
    let head = &p.sniff.head;
    match head.len() >= 72 && le32(head, 64) == SIGNATURE && le32(head, 68) >> 16 == 1 {
        true => 100,
        false => 0,
    }
}

const HEADER: &str = "VDI header";
const FREE: u32 = u32::MAX;
const ZERO: u32 = u32::MAX - 1;
/// Image types: a normal (dynamic) image, a fixed one, and a differencing one.
const DIFFERENCING: u32 = 4;

struct VdiBlocks {
    block: u64,
    data_at: u64,
    /// The bytes before each block's data (`cbBlockExtra`), within its stride.
    extra: u64,
    map: Vec<u32>,
}

impl Blocks for VdiBlocks {
    fn block_size(&self) -> u64 {
        self.block
    }

    fn place(&self, n: u64) -> Place {
        match self.map.get(n as usize).copied().unwrap_or(FREE) {
            FREE => Place::Absent,
            ZERO => Place::Zero,
            k => Place::At(self.data_at + u64::from(k) * (self.block + self.extra) + self.extra),
        }
    }
}

struct Vdi {
    disk: Arc<BlockDisk<VdiBlocks>>,
    kind: u32,
    allocated: usize,
}

fn open(file: Arc<dyn ReadAt>, _: &Probe) -> io::Result<Box<dyn Container>> {
    let header = read_table(HEADER, 0, 456, 1, &*file)?;
    let bad = |at: usize, problem: String| FormatError::io(HEADER, at as u64, problem);
    let kind = le32(&header, 76);
    if kind == DIFFERENCING {
        return Err(bad(
            76,
            "a differencing image, whose parent VirtualBox finds by UUID in its media registry"
                .into(),
        ));
    }
    let (map_at, data_at) = (u64::from(le32(&header, 340)), u64::from(le32(&header, 344)));
    let size = le64(&header, 368);
    let block = u64::from(le32(&header, 376));
    let extra = u64::from(le32(&header, 380));
    let blocks = u64::from(le32(&header, 384));
    if size > 1 << 56 {
        return Err(bad(368, format!("a disk of {size} bytes")));
    }
    if !block.is_power_of_two() || !(512..=1 << 28).contains(&block) {
        return Err(bad(376, format!("blocks of {block} bytes")));
    }
    if extra > 1 << 20 {
        return Err(bad(380, format!("{extra} extra bytes a block")));
    }
    let entries = blocks.min(size.div_ceil(block));
    let table = read_table("VDI block map", map_at, entries, 4, &*file)?;
    let map: Vec<u32> = (0..entries as usize).map(|i| le32(&table, 4 * i)).collect();
    let allocated = map.iter().filter(|&&e| e < ZERO).count();
    let blocks = VdiBlocks {
        block,
        data_at,
        extra,
        map,
    };
    Ok(Box::new(Vdi {
        disk: Arc::new(BlockDisk::new(file, blocks, size, None)),
        kind,
        allocated,
    }))
}

impl Container for Vdi {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }

    fn facts(&self) -> Vec<Fact> {
        let block = self.disk.blocks().block_size();
        vec![
            Fact::new(
                "VDI type",
                match self.kind {
                    2 => "fixed",
                    _ => "dynamic",
                },
            ),
            Fact::new("Block size", format!("{block} bytes")),
            Fact::new(
                "Allocated",
                format!(
                    "{} blocks ({} bytes)",
                    self.allocated,
                    self.allocated as u64 * block
                ),
            ),
        ]
    }
}
