//! Partition maps: find the partitions of a virtual disk, each again a [`ReadAt`] slice, and
//! write the maps a new disk or a resized one needs.
//! Schemes are tried in [`SCHEMES`] order — GPT before MBR, since a GPT disk also carries a
//! protective MBR; the whole disk is the last resort, so every disk has at least one partition.
//! Every count and offset read from a map is bounded before use.

mod apm;
pub mod gpt;
mod layout;
mod mbr;

pub use apm::map as apple_partition_map;
pub use layout::{wrap, Layout, VolumeType};

use crate::io::{ReadAt, Slice};
use serde::Serialize;
use std::io;
use std::sync::Arc;

/// One partition: where it lies on the disk and what the map calls it.
#[derive(Clone, Debug, Serialize)]
pub struct Partition {
    pub index: u32,
    /// The map's name for it (GPT/APM name), or "whole disk".
    pub name: String,
    /// The map's type for it (a GPT type GUID's name, an APM type, an MBR type byte).
    pub kind: String,
    pub start: u64,
    pub size: u64,
}

impl Partition {
    /// The whole disk as one partition (index 0).
    pub fn whole(size: u64) -> Self {
        Partition {
            index: 0,
            name: "whole disk".into(),
            kind: String::new(),
            start: 0,
            size,
        }
    }

    pub fn open(&self, disk: Arc<dyn ReadAt>) -> Slice {
        Slice::new(disk, self.start, self.size)
    }
}

/// A partition-map reader: `None` when the disk does not carry this scheme.
pub struct Scheme {
    pub name: &'static str,
    pub read: fn(&dyn ReadAt) -> io::Result<Option<Vec<Partition>>>,
}

pub static SCHEMES: &[Scheme] = &[
    Scheme {
        name: "GUID partition table",
        read: gpt::read,
    },
    Scheme {
        name: "Apple partition map",
        read: apm::read,
    },
    Scheme {
        name: "MBR partition table",
        read: mbr::read,
    },
    Scheme {
        name: "none (whole disk)",
        read: whole_disk,
    },
];

fn whole_disk(disk: &dyn ReadAt) -> io::Result<Option<Vec<Partition>>> {
    Ok(Some(vec![Partition::whole(disk.size())]))
}

/// The first scheme that recognises the disk, and its partitions.
pub fn scan(disk: &dyn ReadAt) -> io::Result<(&'static str, Vec<Partition>)> {
    for scheme in SCHEMES {
        if let Some(parts) = (scheme.read)(disk)? {
            return Ok((scheme.name, parts));
        }
    }
    unreachable!("the whole-disk scheme always answers")
}
