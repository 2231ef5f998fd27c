//! Containers turn an image file into a virtual disk. Each format is one driver — a probe that
//! scores how sure it is from content, and an open — registered once in [`DRIVERS`]; the generic
//! code here picks the driver, so adding a format touches nothing else.

pub mod raw;
pub mod udif;

use crate::error::{Error, Result};
use crate::io::{FileSource, ReadAt};
use crate::magic::{self, Layer, Signature, Sniff};
use serde::Serialize;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// A fact about an opened container, for `info` (label and value, in display order).
#[derive(Clone, Debug, Serialize)]
pub struct Fact {
    pub label: &'static str,
    pub value: String,
}

impl Fact {
    pub fn new(label: &'static str, value: impl ToString) -> Self {
        Fact {
            label,
            value: value.to_string(),
        }
    }
}

/// A CRC-32 a format stores over some ranges of its file or of its virtual disk, to be checked
/// by reading them. Ranges are in order and do not overlap.
#[derive(Clone, Debug)]
pub struct StoredCrc {
    pub name: String,
    pub ranges: Vec<Range<u64>>,
    pub stored: u32,
}

/// Everything a container can check about itself.
#[derive(Default)]
pub struct Checksums {
    /// Over ranges of the image file (UDIF data fork).
    pub of_file: Vec<StoredCrc>,
    /// Over ranges of the virtual disk (UDIF per-partition checksums).
    pub of_disk: Vec<StoredCrc>,
    /// Already decided without reading data (UDIF master checksum).
    pub checked: Vec<Check>,
}

/// The outcome of one integrity check.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub stored: String,
    pub computed: String,
}

impl Check {
    pub fn new(name: impl Into<String>, stored: u32, computed: u32) -> Self {
        Check {
            name: name.into(),
            ok: stored == computed,
            stored: format!("{stored:08x}"),
            computed: format!("{computed:08x}"),
        }
    }
}

/// A named run of sectors of the virtual disk, as UDIF block tables describe a disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutEntry {
    pub id: i64,
    pub name: String,
    pub first_sector: u64,
    pub sectors: u64,
}

/// An opened image file.
pub trait Container: Send + Sync {
    /// The virtual disk: what a Mac would attach, byte for byte.
    fn disk(&self) -> Arc<dyn ReadAt>;
    /// What the container says about itself beyond the disk (compression, checksums, ...).
    fn facts(&self) -> Vec<Fact>;
    /// The checksums it carries; raw images carry none.
    fn checksums(&self) -> Checksums {
        Checksums::default()
    }
    /// How the container divides the disk, when it says (UDIF block tables). A writer keeps it.
    fn layout(&self) -> Option<Vec<LayoutEntry>> {
        None
    }
}

/// Opens a file the driver's probe claimed, given what the probe saw.
pub type OpenFn = fn(Arc<dyn ReadAt>, &Sniff, &[Signature]) -> io::Result<Box<dyn Container>>;

/// One format's entry in the registry.
pub struct Driver {
    /// The format as users know it, e.g. "raw disk image".
    pub name: &'static str,
    /// 0 = not mine; higher = surer. Sees only content, never the file name.
    pub probe: fn(&Sniff, &[Signature]) -> u8,
    pub open: OpenFn,
}

/// Every container format dimg can open.
pub static DRIVERS: &[&Driver] = &[&udif::DRIVER, &raw::DRIVER];

/// An image file opened by the driver that claimed it.
pub struct Opened {
    pub driver: &'static Driver,
    pub container: Box<dyn Container>,
    /// Signatures seen in the file itself.
    pub signatures: Vec<Signature>,
    /// The image file, read-only.
    pub file: Arc<dyn ReadAt>,
    pub file_size: u64,
}

/// Opens `path` read-only with the driver that scores highest on its content.
pub fn open(path: &Path) -> Result<Opened> {
    let file = FileSource::open(path).map_err(|e| Error::io(path, e))?;
    let file_size = file.size();
    if file_size == 0 {
        return Err(Error::Unrecognized {
            path: path.into(),
            detail: "the file is empty".into(),
        });
    }
    let sniff = Sniff::read(&file).map_err(|e| Error::io(path, e))?;
    let signatures = magic::identify(&sniff);
    let best = DRIVERS
        .iter()
        .map(|d| ((d.probe)(&sniff, &signatures), *d))
        .filter(|(score, _)| *score > 0)
        .max_by_key(|(score, _)| *score);
    let Some((_, driver)) = best else {
        return Err(
            match signatures.iter().find(|s| s.layer() == Layer::Container) {
                Some(sig) => Error::Unsupported {
                    path: path.into(),
                    format: sig.name(),
                },
                None => Error::Unrecognized {
                    path: path.into(),
                    detail: "no known magic number in its first 64 KiB or last 1 KiB, and not whole 512-byte sectors"
                    .into(),
                },
            },
        );
    };
    let file: Arc<dyn ReadAt> = Arc::new(file);
    let container =
        (driver.open)(file.clone(), &sniff, &signatures).map_err(|e| Error::io(path, e))?;
    Ok(Opened {
        driver,
        container,
        signatures,
        file,
        file_size,
    })
}
