//! Wrappers that carry a Mac file — its data fork, resource fork, type and creator — through
//! systems that have one fork per file: MacBinary, BinHex 4.0 and AppleSingle, and AppleDouble's
//! `._NAME` beside a data fork. An image inside one opens by its outer file, as The Unarchiver
//! opens it.

mod applesingle;
pub(crate) mod binhex;
mod macbinary;

/// The CRC-16 MacBinary II and BinHex 4.0 keep: for tools and tests that make them.
pub use crate::bytes::crc16_xmodem;
use crate::io::{FileSource, ReadAt};
use crate::magic::Signature;
use std::io;
use std::path::{Path, PathBuf};
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
    pub fn description(&self) -> String {
        let code = |c: &[u8; 4]| crate::bytes::mac_roman(c);
        format!(
            "{}: “{}”, type {} creator {}, data fork {} bytes, resource fork {} bytes",
            self.wrapper,
            self.name,
            code(&self.file_type),
            code(&self.creator),
            self.data.size(),
            self.resource.size()
        )
    }
}

/// The resource fork of the file at `path`, where Linux keeps one beside it: an AppleDouble
/// `._NAME` (what macOS writes on foreign disks and archivers unpack), `NAME.rsrc`, or macOS's
/// own `NAME/..namedfork/rsrc`. None when there is none, or it is empty or unreadable.
pub fn fork_beside(path: &Path) -> Option<Arc<dyn ReadAt>> {
    let name = path.file_name()?.to_str()?;
    if let Some(mac) = apple_double(&path.with_file_name(format!("._{name}"))) {
        return (mac.resource.size() > 0).then_some(mac.resource);
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

/// The AppleDouble file at `path` (a `._NAME`), if that is what it is.
pub fn apple_double(path: &Path) -> Option<MacFile> {
    let file: Arc<dyn ReadAt> = Arc::new(FileSource::open(path).ok()?);
    let mut magic = [0u8; 4];
    file.read_exact_at(0, &mut magic).ok()?;
    if u32::from_be_bytes(magic) != applesingle::APPLE_DOUBLE {
        return None;
    }
    let mut mac = applesingle::open(&file).ok()?;
    mac.wrapper = "AppleDouble";
    Some(mac)
}

/// Writes `resource` into a new AppleDouble file `._NAME` beside `path` (NAME being its name),
/// as macOS keeps a resource fork on a disk whose file system has no place for one. An existing
/// file of that name is left alone: the error says so.
pub fn write_fork_beside(path: &Path, resource: &dyn ReadAt) -> io::Result<PathBuf> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let beside = path.with_file_name(format!("._{name}"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&beside)?;
    let written = applesingle::write_apple_double(&mut io::BufWriter::new(&file), resource);
    if let Err(e) = written.and_then(|()| file.sync_all()) {
        // Nothing half-written stays beside the file.
        let _ = std::fs::remove_file(&beside);
        return Err(e);
    }
    Ok(beside)
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
