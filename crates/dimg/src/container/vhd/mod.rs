//! VHD, Virtual PC's and Hyper-V's first disk format (Microsoft's Virtual Hard Disk Image Format
//! Specification): a 512-byte big-endian footer (`conectix`) at the end of the file. A fixed disk
//! is the file before it; a dynamic one has a header (`cxsparse`) and a block allocation table,
//! each block a sector bitmap then its data; a differencing one reads the sectors its bitmaps
//! leave clear from its parent, which its parent locators name.

pub mod writer;

use super::blocks::{open_backing, read_table, BlockDisk, Blocks, Place};
use super::{Container, Driver, Fact, Probe};
use crate::bytes::{be32, be64, utf16_be, utf16_le};
use crate::error::FormatError;
use crate::io::{ReadAt, Slice};
use std::io;
use std::sync::Arc;

pub static DRIVER: Driver = Driver {
    name: "VHD",
    probe,
    open,
};

const COOKIE: &[u8; 8] = b"conectix";

/// Where the footer is: 512 bytes before the end, or 511 (some old writers), or — only its copy
/// left — at the start.
fn footer_at(sniff: &crate::magic::Sniff) -> Option<u64> {
    let tail = &sniff.tail;
    [512usize, 511]
        .into_iter()
        .find(|&back| tail.len() >= back && tail[tail.len() - back..].starts_with(COOKIE))
        .map(|back| sniff.size - back as u64)
        .or_else(|| sniff.head.starts_with(COOKIE).then_some(0))
}

/// A footer whose checksum holds and whose disk fits the file: a volume cut out of a fixed VHD
/// keeps its old footer's bytes near its end, and is a volume, not a VHD.
fn probe(p: &Probe) -> u8 {
    let Some(at) = footer_at(p.sniff) else {
        return 0;
    };
    let sniff = p.sniff;
    let footer = match at {
        0 => &sniff.head[..sniff.head.len().min(512)],
        _ => &sniff.tail[(sniff.tail.len() as u64 - (sniff.size - at)) as usize..],
    };
    if footer.len() < 68 {
        return 0;
    }
    let sum = footer
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |s, (_, &b)| s.wrapping_add(u32::from(b)));
    let fits = be32(footer, 60) != FIXED || be64(footer, 48) <= at;
    match !sum == be32(footer, 64) && fits {
        true => 100,
        false => 0,
    }
}

const FOOTER: &str = "VHD footer";
const HEADER: &str = "VHD dynamic disk header";
const FIXED: u32 = 2;
const DYNAMIC: u32 = 3;
const DIFFERENCING: u32 = 4;
const ABSENT: u32 = u32::MAX;

/// A dynamic or differencing disk's blocks. A differencing disk's are placed sector by sector,
/// as its bitmaps say which sectors it holds.
struct VhdBlocks {
    block: u64,
    bitmap_bytes: u64,
    bat: Vec<u32>,
    /// For a differencing disk, each allocated block's sector bitmap.
    bitmaps: Option<Vec<Option<Box<[u8]>>>>,
}

impl VhdBlocks {
    fn sectors_per_block(&self) -> u64 {
        self.block / 512
    }
}

impl Blocks for VhdBlocks {
    fn block_size(&self) -> u64 {
        match self.bitmaps {
            Some(_) => 512,
            None => self.block,
        }
    }

    fn place(&self, n: u64) -> Place {
        let (block, sector) = match self.bitmaps {
            Some(_) => (n / self.sectors_per_block(), n % self.sectors_per_block()),
            None => (n, 0),
        };
        let entry = self.bat.get(block as usize).copied().unwrap_or(ABSENT);
        if entry == ABSENT {
            return Place::Absent;
        }
        let data = u64::from(entry) * 512 + self.bitmap_bytes;
        match &self.bitmaps {
            None => Place::At(data),
            Some(bitmaps) => {
                let held = bitmaps[block as usize]
                    .as_ref()
                    .is_some_and(|b| b[(sector / 8) as usize] & (0x80 >> (sector % 8)) != 0);
                match held {
                    true => Place::At(data + sector * 512),
                    false => Place::Absent,
                }
            }
        }
    }
}

struct Vhd {
    disk: Arc<dyn ReadAt>,
    kind: u32,
    creator: String,
    block: Option<(u64, usize)>,
    parent: Option<String>,
}

fn open(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let at = footer_at(p.sniff).expect("the probe found the footer");
    let mut footer = [0u8; 512];
    let have = (file.size() - at).min(512) as usize;
    file.read_exact_at(at, &mut footer[..have])?;
    let bad = |at: u64, problem: String| FormatError::io(FOOTER, at, problem);
    let size = be64(&footer, 48);
    if size > 1 << 56 {
        return Err(bad(at + 48, format!("a disk of {size} bytes")));
    }
    let kind = be32(&footer, 60);
    let creator = String::from_utf8_lossy(&footer[28..32]).trim().to_string();
    if kind == FIXED {
        if size > at {
            return Err(bad(
                at + 48,
                format!("a fixed disk of {size} bytes in a file of {at} before its footer"),
            ));
        }
        return Ok(Box::new(Vhd {
            disk: Arc::new(Slice::new(file, 0, size)),
            kind,
            creator,
            block: None,
            parent: None,
        }));
    }
    if kind != DYNAMIC && kind != DIFFERENCING {
        return Err(bad(at + 60, format!("disk type {kind}")));
    }
    let header_at = be64(&footer, 16);
    let header = read_table(HEADER, header_at, 1024, 1, &*file)?;
    let bad = |offset: usize, problem: String| {
        FormatError::io(HEADER, header_at + offset as u64, problem)
    };
    if &header[..8] != b"cxsparse" {
        return Err(bad(0, "no cxsparse cookie".into()));
    }
    let bat_at = be64(&header, 16);
    let block = u64::from(be32(&header, 32));
    if !block.is_power_of_two() || !(512..=1 << 28).contains(&block) {
        return Err(bad(32, format!("blocks of {block} bytes")));
    }
    let entries = u64::from(be32(&header, 28)).min(size.div_ceil(block));
    let table = read_table("VHD block allocation table", bat_at, entries, 4, &*file)?;
    let bat: Vec<u32> = (0..entries as usize).map(|i| be32(&table, 4 * i)).collect();
    let bitmap_bytes = (block / 512).div_ceil(8).next_multiple_of(512);
    let allocated = bat.iter().filter(|&&e| e != ABSENT).count();
    let (bitmaps, parent, parent_disk) = match kind {
        DIFFERENCING => {
            // Blocks lie apart in a real file: bitmaps that add up to more than the file are
            // a damaged table's, refused before they are read.
            if (allocated as u64).saturating_mul(bitmap_bytes) > file.size() {
                return Err(bad(
                    16,
                    format!("{allocated} blocks' bitmaps add up to more than the file"),
                ));
            }
            let mut bitmaps = Vec::with_capacity(bat.len());
            for &entry in &bat {
                bitmaps.push(match entry {
                    ABSENT => None,
                    sector => Some(
                        read_table(
                            "VHD sector bitmap",
                            u64::from(sector) * 512,
                            bitmap_bytes,
                            1,
                            &*file,
                        )?
                        .into_boxed_slice(),
                    ),
                });
            }
            let name = parent_name(&*file, &header, header_at)?;
            let disk = open_backing(HEADER, header_at + 64, p.path, &name)?;
            (Some(bitmaps), Some(name), Some(disk))
        }
        _ => (None, None, None),
    };
    let blocks = VhdBlocks {
        block,
        bitmap_bytes,
        bat,
        bitmaps,
    };
    Ok(Box::new(Vhd {
        disk: Arc::new(BlockDisk::new(file, blocks, size, parent_disk)),
        kind,
        creator,
        block: Some((block, allocated)),
        parent,
    }))
}

/// The parent's path as the locators give it — relative (`W2ru`), absolute (`W2ku`), a Mac's
/// (`MacX`, a file URL) — or else the parent's name alone, beside the child.
fn parent_name(file: &dyn ReadAt, header: &[u8], header_at: u64) -> io::Result<String> {
    let mut found: Vec<(u8, String)> = Vec::new();
    for k in 0..8 {
        let entry = &header[576 + 24 * k..600 + 24 * k];
        let (code, len, at) = (&entry[..4], be32(entry, 8), be64(entry, 16));
        let rank = match code {
            b"W2ru" => 0,
            b"W2ku" => 1,
            b"MacX" => 2,
            _ => continue,
        };
        if len == 0 || len > 4096 {
            continue;
        }
        let data = read_table("VHD parent locator", at, u64::from(len), 1, file)?;
        let text = match rank {
            2 => {
                let url = String::from_utf8_lossy(&data).into_owned();
                match url.strip_prefix("file://") {
                    Some(rest) => rest.trim_start_matches("localhost").to_string(),
                    None => url,
                }
            }
            _ => utf16_le(&data).replace('\\', "/"),
        };
        let text = text.trim_end_matches('\0').to_string();
        // A Windows path with a drive letter means nothing here: its file name, beside the child.
        let text = match rank {
            1 => text.rsplit('/').next().unwrap_or_default().to_string(),
            _ => text,
        };
        found.push((rank, text));
    }
    found.sort();
    match found.into_iter().next() {
        Some((_, path)) => Ok(path),
        None => {
            let name = utf16_be(&header[64..576]);
            let name = name.trim_end_matches('\0');
            match name.is_empty() {
                true => Err(FormatError::io(
                    HEADER,
                    header_at + 64,
                    "a differencing disk that names no parent",
                )),
                false => Ok(name.to_string()),
            }
        }
    }
}

impl Container for Vhd {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }

    fn facts(&self) -> Vec<Fact> {
        let kind = match self.kind {
            FIXED => "fixed",
            DYNAMIC => "dynamic",
            _ => "differencing",
        };
        let mut facts = vec![
            Fact::new("VHD type", kind),
            Fact::new("Creator", &self.creator),
        ];
        if let Some((block, allocated)) = self.block {
            facts.push(Fact::new("Block size", format!("{block} bytes")));
            facts.push(Fact::new(
                "Allocated",
                format!("{allocated} blocks ({} bytes)", allocated as u64 * block),
            ));
        }
        if let Some(parent) = &self.parent {
            facts.push(Fact::new("Parent", parent));
        }
        facts
    }
}
