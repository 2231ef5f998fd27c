//! Containers turn an image file into a virtual disk. Each format is one driver — a probe that
//! scores how sure it is from content, and an open — registered once in [`DRIVERS`]; the generic
//! code here picks the driver, so adding a format touches nothing else.

pub mod asif;
pub mod blocks;
pub mod cue;
pub mod dart;
pub mod dc42;
pub mod encrypted;
pub mod ndif;
pub mod nrg;
pub mod optical;
pub mod parallels;
pub mod qcow2;
pub mod raw;
pub mod resource_fork;
pub mod sector;
pub mod shadow;
pub mod sparsebundle;
pub mod sparseimage;
pub mod udif;
pub mod vdi;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;

use crate::error::{Error, FormatError, Result};
use crate::io::{FileSource, ReadAt, WriteAt};
use crate::magic::{self, Layer, Signature, Sniff};
use crate::secret::Passphrase;
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
    /// The bytes `of_file` ranges refer to: the container's own file (for an encrypted image,
    /// the decrypted one).
    pub file: Option<Arc<dyn ReadAt>>,
    /// Over ranges of that file (UDIF data fork).
    pub of_file: Vec<StoredCrc>,
    /// Over ranges of the virtual disk (UDIF per-partition checksums).
    pub of_disk: Vec<StoredCrc>,
    /// Already decided without reading data (UDIF master checksum).
    pub checked: Vec<Check>,
    /// The bytes of that file a UDIF image's own checksums cover (its data fork), what
    /// `hdiutil checksum -type UDIF-CRC32` sums.
    pub data_fork: Option<Range<u64>>,
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
    /// The licence agreement macOS shows before attaching (a UDIF image's `LPic` resources).
    fn agreement(&self) -> Option<udif::licence::Agreement> {
        None
    }
    /// The tracks of a disc image (cue/bin, NRG); `None` for everything else.
    fn tracks(&self) -> Option<Vec<optical::Track>> {
        None
    }
    /// The tags a classic Mac floppy image keeps beside its sectors (12 bytes each), if any.
    fn tags(&self) -> Option<Arc<dyn ReadAt>> {
        None
    }
    /// The band size of a sparse image or bundle, in bytes; `None` for everything else.
    fn band_size(&self) -> Option<u64> {
        None
    }
    /// The AES key size (128 or 256) of an encrypted image: its own header's or, for a sparse
    /// bundle, its token's.
    fn key_bits(&self) -> Option<u32> {
        None
    }
    /// Whether the image keeps its disk as it is, to be changed (UDRW, sparse images and
    /// bundles), rather than compressed or sealed read-only.
    fn read_write(&self) -> bool {
        false
    }
    /// The disk to change in place, when the image was opened to be written
    /// ([`open_writable`]) and its format keeps the disk as it is; `None` for the rest.
    fn writable(&self) -> Option<Arc<dyn WriteAt>> {
        None
    }
}

/// What a driver is shown: the bytes sniffed, the signatures found in them, and the passphrase
/// the user gave, if any (for encrypted images).
pub struct Probe<'a> {
    pub sniff: &'a Sniff,
    pub signatures: &'a [Signature],
    pub passphrase: Option<&'a Passphrase>,
    /// The file the source is, when it is one: a cue sheet names its BIN files relative to it.
    pub path: Option<&'a Path>,
    /// The resources of the file's resource fork, where one came with it (a wrapper's, or a
    /// file beside it): an NDIF image's map is there.
    pub resources: &'a [resource_fork::Resource],
    /// The same bytes as the source, to be changed in place, when the image is opened to be
    /// written.
    pub writable: Option<&'a Arc<dyn WriteAt>>,
}

impl Probe<'_> {
    /// Full confidence when the magic table found `signature`: for formats that a signature
    /// alone identifies.
    pub fn certain_if(&self, signature: Signature) -> u8 {
        if self.signatures.contains(&signature) {
            100
        } else {
            0
        }
    }
}

/// Opens a source the driver's probe claimed.
pub type OpenFn = fn(Arc<dyn ReadAt>, &Probe) -> io::Result<Box<dyn Container>>;

/// One format's entry in the registry.
pub struct Driver {
    /// The format as users know it, e.g. "raw disk image".
    pub name: &'static str,
    /// 0 = not mine; higher = surer. Sees only content, never the file name.
    pub probe: fn(&Probe) -> u8,
    pub open: OpenFn,
}

/// Every container format dimg can open.
pub static DRIVERS: &[&Driver] = &[
    &cue::DRIVER,
    &nrg::DRIVER,
    &encrypted::DRIVER,
    &encrypted::DRIVER_V1,
    &sparseimage::DRIVER,
    &asif::DRIVER,
    &udif::DRIVER,
    &dc42::DRIVER,
    &dart::DRIVER,
    &ndif::DRIVER,
    &qcow2::DRIVER,
    &vmdk::DRIVER,
    &vhd::DRIVER,
    &vhdx::DRIVER,
    &vdi::DRIVER,
    &parallels::DRIVER,
    &raw::ARCHIVE,
    &raw::DRIVER,
];

/// An opened image: a byte source opened by the driver that claimed it, or a sparse bundle.
pub struct Opened {
    /// The container format, as users know it.
    pub format: &'static str,
    pub container: Box<dyn Container>,
    /// Signatures seen in the source itself.
    pub signatures: Vec<Signature>,
    pub file_size: u64,
}

/// Why a source could not be opened, before a path is known to name it.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not a disk image I know ({0})")]
    Unrecognized(&'static str),
    #[error("recognised as {0}, which dimg cannot open yet")]
    Unsupported(&'static str),
}

/// Opens any byte source — a file, or the decrypted contents of one — with the driver that
/// scores highest on its content.
pub fn open_source(
    source: Arc<dyn ReadAt>,
    path: Option<&Path>,
    passphrase: Option<&Passphrase>,
) -> Result<Opened, OpenError> {
    open_nested(source, None, path, passphrase, None, 0)
}

/// [`open_source`] of a source that can be written: the container offers its disk to change
/// where its format allows ([`Container::writable`]).
pub fn open_writable_source(source: Arc<dyn WriteAt>) -> Result<Opened, OpenError> {
    open_nested(source.clone(), Some(source), None, None, None, 0)
}

/// Resource forks larger than this are not read: an NDIF map of a 2 GB disk is 1 MiB.
const MAX_RESOURCE_FORK: u64 = 16 << 20;

/// The resources of `fork`; none when it is empty, and an error when it is damaged or too large.
fn resources_of(fork: Option<&Arc<dyn ReadAt>>) -> io::Result<Vec<resource_fork::Resource>> {
    let Some(fork) = fork.filter(|f| f.size() > 0) else {
        return Ok(Vec::new());
    };
    if fork.size() > MAX_RESOURCE_FORK {
        return Err(FormatError::io(
            "resource fork",
            0,
            format!("{} bytes, more than dimg reads", fork.size()),
        ));
    }
    let mut bytes = vec![0u8; fork.size() as usize];
    fork.read_exact_at(0, &mut bytes)?;
    resource_fork::parse(&bytes, 0, "resource fork")
}

/// Wrappers inside wrappers a file may hold: any more is a crafted file, not a Mac's.
const MAX_WRAPPERS: usize = 4;

fn open_nested(
    source: Arc<dyn ReadAt>,
    writable: Option<Arc<dyn WriteAt>>,
    path: Option<&Path>,
    passphrase: Option<&Passphrase>,
    fork: Option<Arc<dyn ReadAt>>,
    depth: usize,
) -> Result<Opened, OpenError> {
    let file_size = source.size();
    if file_size == 0 {
        return Err(OpenError::Unrecognized("the file is empty"));
    }
    let sniff = Sniff::read(&*source)?;
    let signatures = magic::identify(&sniff);
    if let Some(mac) = crate::wrapper::unwrap(&source, &signatures)? {
        if depth == MAX_WRAPPERS {
            return Err(OpenError::Unrecognized(
                "wrappers inside wrappers, too many to open",
            ));
        }
        // An image inside a wrapper is read only: the wrapper holds it, not the disk.
        let inner = open_nested(
            mac.data.clone(),
            None,
            path,
            passphrase,
            Some(mac.resource.clone()),
            depth + 1,
        )?;
        return Ok(Opened {
            format: inner.format,
            container: Box::new(Wrapped {
                facts: vec![Fact::new("Wrapper", mac.description())],
                inner: inner.container,
            }),
            signatures: signatures.into_iter().chain(inner.signatures).collect(),
            file_size,
        });
    }
    // A damaged fork matters only to the formats that need one (NDIF): a disk beside a broken
    // `._` file still opens, and the fork's fault is the error when nothing else claims the file.
    let (resources, fork_fault) = match resources_of(fork.as_ref()) {
        Ok(resources) => (resources, None),
        Err(fault) => (Vec::new(), Some(fault)),
    };
    let probe = Probe {
        sniff: &sniff,
        signatures: &signatures,
        passphrase,
        path,
        resources: &resources,
        writable: writable.as_ref(),
    };
    let best = DRIVERS
        .iter()
        .map(|d| ((d.probe)(&probe), *d))
        .filter(|(score, _)| *score > 0)
        .max_by_key(|(score, _)| *score);
    let Some((_, driver)) = best else {
        if let Some(fault) = fork_fault {
            return Err(fault.into());
        }
        return Err(match signatures.iter().find(|s| s.layer() == Layer::Container) {
            Some(sig) => OpenError::Unsupported(sig.name()),
            None => OpenError::Unrecognized(
                "no known magic number in its first 64 KiB or last 1 KiB, and not whole 512-byte sectors",
            ),
        });
    };
    let container = (driver.open)(source, &probe)?;
    Ok(Opened {
        format: driver.name,
        container,
        signatures,
        file_size,
    })
}

/// An image inside a wrapper (MacBinary, BinHex): the image, with what the wrapper says.
struct Wrapped {
    facts: Vec<Fact>,
    inner: Box<dyn Container>,
}

impl Container for Wrapped {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.inner.disk()
    }
    fn facts(&self) -> Vec<Fact> {
        self.facts
            .iter()
            .cloned()
            .chain(self.inner.facts())
            .collect()
    }
    fn checksums(&self) -> Checksums {
        self.inner.checksums()
    }
    fn layout(&self) -> Option<Vec<LayoutEntry>> {
        self.inner.layout()
    }
    fn tracks(&self) -> Option<Vec<optical::Track>> {
        self.inner.tracks()
    }
    fn tags(&self) -> Option<Arc<dyn ReadAt>> {
        self.inner.tags()
    }
}

/// The file that holds an image's encryption header: the image itself, or a sparse bundle's
/// `token`.
pub fn key_file(path: &Path) -> std::path::PathBuf {
    match path.is_dir() {
        true => path.join("token"),
        false => path.to_path_buf(),
    }
}

/// Opens the image at `path`, read-only: a file, or a sparse bundle's folder.
pub fn open(path: &Path, passphrase: Option<&Passphrase>) -> Result<Opened> {
    open_as(path, passphrase, false)
}

/// Opens the image at `path` to be changed in place (a read/write attach): where its format
/// allows, [`Container::writable`] is its disk, written through to the file. The file is
/// opened for writing only here.
pub fn open_writable(path: &Path, passphrase: Option<&Passphrase>) -> Result<Opened> {
    open_as(path, passphrase, true)
}

fn open_as(path: &Path, passphrase: Option<&Passphrase>, write: bool) -> Result<Opened> {
    if parallels::is_bundle(path) {
        let (container, stored) = parallels::open_bundle(path).map_err(|e| Error::io(path, e))?;
        return Ok(Opened {
            format: parallels::DRIVER.name,
            container,
            signatures: Vec::new(),
            file_size: stored,
        });
    }
    if path.is_dir() {
        let (container, stored) =
            sparsebundle::open(path, passphrase, write).map_err(|e| Error::io(path, e))?;
        return Ok(Opened {
            format: sparsebundle::FORMAT,
            container,
            signatures: Vec::new(),
            file_size: stored,
        });
    }
    // An image at a URL is read where it lives; it has no folder to find files beside it in.
    let remote = crate::remote::is_url(path);
    let (file, writable): (Arc<dyn ReadAt>, Option<Arc<dyn WriteAt>>) = match write {
        true if remote => {
            return Err(Error::Refused {
                path: path.into(),
                reason: "is on a server: an image there is only read".into(),
            })
        }
        true => {
            let file = Arc::new(FileSource::open_writable(path).map_err(|e| Error::io(path, e))?);
            (file.clone(), Some(file))
        }
        false => (
            crate::remote::open_source(path).map_err(|e| Error::io(path, e))?,
            None,
        ),
    };
    let local = (!remote).then_some(path);
    let fork = local.and_then(crate::wrapper::fork_beside);
    // An NDIF data fork without its resource fork is chunks, compressed ones unrecognisable.
    // (Where its chunks are raw, it is the disk and opens as one.)
    let ndif_alone = fork.is_none()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["img", "smi"].contains(&e.to_lowercase().as_str()));
    open_nested(file, writable, local, passphrase, fork, 0).map_err(|e| match e {
        OpenError::Io(e) => Error::io(path, e),
        OpenError::Unrecognized(detail) => Error::Unrecognized {
            path: path.into(),
            detail: match ndif_alone {
                true => format!(
                    "{detail}; if it is a Disk Copy 6 (NDIF) image, this is its data fork alone \
                     and its resource fork is missing: keep the two together in a MacBinary \
                     (.bin) or BinHex (.hqx) file, or beside it as ._NAME (AppleDouble) or \
                     NAME.rsrc"
                ),
                false => detail.into(),
            },
        },
        OpenError::Unsupported(format) => Error::Unsupported {
            path: path.into(),
            format,
        },
    })
}
