//! Raw images: the file is the disk (.img, .cdr/UDTO, .iso, UDRW .dmg). Claimed when the content
//! shows a partition map or file system and no container format wraps it; a file of whole
//! 512-byte sectors showing nothing is taken, least surely, as a blank or unformatted disk.

use super::{Container, Driver, Fact, Probe};
use crate::bytes::{be32, le16, le32};
use crate::error::FormatError;
use crate::io::ReadAt;
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

fn open(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    check_not_truncated(p.sniff, p.signatures)?;
    Ok(Box::new(Raw { file }))
}

/// A file system that says it is longer than the file was cut short (an interrupted download or
/// copy): say so now rather than fail later on a read past the end.
fn check_not_truncated(sniff: &Sniff, signatures: &[Signature]) -> io::Result<()> {
    let h = &sniff.head;
    for sig in signatures {
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
            _ => continue,
        };
        if claimed > sniff.size {
            return Err(FormatError::io(
                structure,
                offset,
                format!(
                    "the volume is {claimed} bytes but the file holds only {} (truncated?)",
                    sniff.size
                ),
            ));
        }
    }
    Ok(())
}

struct Raw {
    file: Arc<dyn ReadAt>,
}

impl Container for Raw {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.file.clone()
    }
    fn facts(&self) -> Vec<Fact> {
        vec![Fact::new("Layout", "the file is the disk, byte for byte")]
    }
}
