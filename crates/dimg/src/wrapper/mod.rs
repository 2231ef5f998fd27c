//! Wrappers that carry a Mac file — its data fork, resource fork, type and creator — through
//! systems that have one fork per file: MacBinary, BinHex 4.0 and AppleSingle, and AppleDouble's
//! `._NAME` beside a data fork. An image inside one opens by its outer file, as The Unarchiver
//! opens it.

mod applesingle;
pub(crate) mod binhex;
mod macbinary;

/// The CRC-16 MacBinary II and BinHex 4.0 keep: for tools and tests that make them.
pub use crate::bytes::crc16_xmodem;
use crate::container::Fact;
use crate::io::{FileSource, ReadAt};
use crate::magic::Signature;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A Mac file as a wrapper carries it.
pub struct MacFile {
    /// The wrapper's name, e.g. "MacBinary II".
    pub wrapper: &'static str,
    pub name: String,
    pub file_type: [u8; 4],
    pub creator: [u8; 4],
    pub data: Arc<dyn ReadAt>,
    pub resource: Arc<dyn ReadAt>,
}

impl MacFile {
    /// What `info` says of the wrapper and the file in it.
    pub fn facts(&self) -> Vec<Fact> {
        let code = |c: &[u8; 4]| crate::bytes::mac_roman(c);
        vec![Fact::new(
            "Wrapper",
            format!(
                "{}: “{}”, type {} creator {}, data fork {} bytes, resource fork {} bytes",
                self.wrapper,
                self.name,
                code(&self.file_type),
                code(&self.creator),
                self.data.size(),
                self.resource.size()
            ),
        )]
    }
}

/// The resource fork of the file at `path`, where Linux keeps one beside it: an AppleDouble
/// `._NAME` (what macOS writes on foreign disks and archivers unpack), `NAME.rsrc`, or macOS's
/// own `NAME/..namedfork/rsrc`. None when there is none, or it is empty or unreadable.
pub fn fork_beside(path: &Path) -> Option<Arc<dyn ReadAt>> {
    let name = path.file_name()?.to_str()?;
    let double = path.with_file_name(format!("._{name}"));
    if let Ok(file) = FileSource::open(&double) {
        let file: Arc<dyn ReadAt> = Arc::new(file);
        if let Ok(mac) = applesingle::open(&file) {
            return (mac.resource.size() > 0).then_some(mac.resource);
        }
    }
    [
        path.with_file_name(format!("{name}.rsrc")),
        path.join("..namedfork/rsrc"),
    ]
    .iter()
    .filter_map(|p| FileSource::open(p).ok())
    .find(|f| f.size() > 0)
    .map(|f| Arc::new(f) as Arc<dyn ReadAt>)
}

/// The Mac file inside `source`, when the magic table saw a wrapper there.
pub fn unwrap(source: &Arc<dyn ReadAt>, signatures: &[Signature]) -> io::Result<Option<MacFile>> {
    if signatures.contains(&Signature::MacBinary) {
        return macbinary::open(source).map(Some);
    }
    if signatures.contains(&Signature::BinHex) {
        return binhex::open(&**source).map(Some);
    }
    if signatures.contains(&Signature::AppleSingle) {
        return applesingle::open(source).map(Some);
    }
    Ok(None)
}
