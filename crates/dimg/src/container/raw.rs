//! Raw images: the file is the disk (.img, .cdr/UDTO, .iso, UDRW .dmg). Claimed when the content
//! shows a partition map or file system and no container format wraps it; a file of whole
//! 512-byte sectors showing nothing is taken, least surely, as a blank or unformatted disk.

use super::{Check, Checksums, Container, Driver, Fact, Probe};
use crate::bytes::{be32, le16, le32};
use crate::io::{ReadAt, Slice, WriteAt};
use crate::magic::{Layer, Signature, Sniff};
use std::io;
use std::sync::Arc;

pub static DRIVER: Driver = Driver {
    name: "raw disk image",
    probe,
    open,
};

fn probe(p: &Probe) -> u8 {
    let (sniff, signatures) = (p.sniff, p.signatures);
    let wrapped = signatures.iter().any(|s| s.layer() == Layer::Container);
    let content = signatures.iter().any(|s| s.layer() != Layer::Container);
    match (wrapped, content) {
        (true, _) => 0,
        (false, true) => 10,
        (false, false) if sniff.size.is_multiple_of(512) => 1,
        (false, false) => 0,
    }
}

/// A XAR archive (an installer package, a .xip): its members are browsed as a volume's files
/// (fs/xar), but it is no disk, and `info` names it rather than calling it a raw disk image.
pub static ARCHIVE: Driver = Driver {
    name: "XAR archive (installer package or .xip)",
    probe: probe_archive,
    open: open_archive,
};

/// Surer than [`probe`], which takes the archive as content of a raw disk.
fn probe_archive(p: &Probe) -> u8 {
    match probe(p) > 0 && p.signatures.contains(&Signature::Xar) {
        true => 11,
        false => 0,
    }
}

fn open_archive(file: Arc<dyn ReadAt>, _: &Probe) -> io::Result<Box<dyn Container>> {
    Ok(Box::new(Raw {
        file,
        writable: None,
        cut: None,
        archive: true,
    }))
}

fn open(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let cut = cut_short(p.sniff, p.signatures);
    // A disc's file system is written once, as a whole: an ISO is attached read-only.
    let disc = p.signatures.contains(&Signature::Iso9660);
    let writable = p.writable.filter(|_| !disc).map(|file| {
        // The disk is the file as it is: it does not grow.
        Arc::new(Slice::new(file.clone(), 0, file.size())) as Arc<dyn WriteAt>
    });
    Ok(Box::new(Raw {
        file,
        writable,
        cut,
        archive: false,
    }))
}

/// Where a file system says it is longer than the file was cut short (an interrupted download or
/// copy, a carved partition): (what says so, where, the size it states). The image still opens,
/// so that what lies inside the file can be read; info warns and verify fails.
fn cut_short(sniff: &Sniff, signatures: &[Signature]) -> Option<(&'static str, u64, u64)> {
    let h = &sniff.head;
    signatures.iter().find_map(|sig| {
        let (structure, offset, claimed) = match sig {
            // Primary volume descriptor: volume space size (LE copy) × logical block size.
            Signature::Iso9660 => (
                "ISO 9660 primary volume descriptor",
                32768,
                u64::from(le32(h, 32768 + 80)) * u64::from(le16(h, 32768 + 128)),
            ),
            // Volume header: blockSize × totalBlocks.
            Signature::HfsPlus | Signature::Hfsx => (
                "HFS+ volume header",
                1024,
                u64::from(be32(h, 1024 + 40)) * u64::from(be32(h, 1024 + 44)),
            ),
            _ => return None,
        };
        (claimed > sniff.size).then_some((structure, offset, claimed))
    })
}

/// `file` as the disk it is, whatever it holds: a device imaged byte for byte.
pub(crate) fn whole(file: Arc<dyn ReadAt>) -> Box<dyn Container> {
    Box::new(Raw {
        file,
        writable: None,
        cut: None,
        archive: false,
    })
}

struct Raw {
    file: Arc<dyn ReadAt>,
    /// The file again, to be written, when opened so.
    writable: Option<Arc<dyn WriteAt>>,
    cut: Option<(&'static str, u64, u64)>,
    /// A XAR archive, which is not laid out as a disk.
    archive: bool,
}

impl Raw {
    fn cut_warning(&self) -> Option<String> {
        self.cut.map(|(structure, offset, claimed)| {
            format!(
                "the {structure} (at offset {offset}) says the volume is {claimed} bytes, but \
                 the file holds only {}: it was cut short (truncated?), and what lies past its \
                 end cannot be read",
                self.file.size()
            )
        })
    }
}

impl Container for Raw {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.file.clone()
    }
    fn writable(&self) -> Option<Arc<dyn WriteAt>> {
        self.writable.clone()
    }
    fn facts(&self) -> Vec<Fact> {
        let mut facts = Vec::new();
        if !self.archive {
            facts.push(Fact::new("Layout", "the file is the disk, byte for byte"));
        }
        facts.extend(self.cut_warning().map(|w| Fact::new("Warning", w)));
        facts
    }
    fn checksums(&self) -> Checksums {
        let checked = self.cut.map(|(structure, _, claimed)| Check {
            name: format!("volume size the {structure} states (the file is truncated)"),
            ok: false,
            stored: format!("{claimed} bytes"),
            computed: format!("{} bytes", self.file.size()),
        });
        Checksums {
            checked: checked.into_iter().collect(),
            ..Checksums::default()
        }
    }
}
