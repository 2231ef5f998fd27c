//! `.sparsebundle` (UDSB, formats.md §c.2): a folder, not a file. `Info.plist` gives the band
//! size and the disk's size, `bands/` holds the disk in band files (see [`BandFolder`]), and
//! `token` is empty or, for an encrypted bundle, the encrcdsa header whose key decrypts every
//! band on its own.

use super::encrypted::BandKey;
use super::{Container, Fact};
use crate::error::FormatError;
use crate::io::{BandCipher, BandFolder, FileSource, ReadAt, WriteAt};
use crate::secret::Passphrase;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The sparse bundle that `path`, a file inside it (its Info.plist, a band), belongs to: a file
/// dialog opens folders rather than choosing them, so a bundle is chosen by what it holds.
pub fn bundle_of(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .take(2)
        .find(|a| {
            a.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("sparsebundle"))
                && a.join("Info.plist").is_file()
        })
        .map(PathBuf::from)
}

pub const FORMAT: &str = "Apple sparse bundle disk image";
const BUNDLE_TYPE: &str = "com.apple.diskimage.sparsebundle";
/// hdiutil's largest band is far smaller; a bigger one is damage (or a typo).
pub const MAX_BAND: u64 = 1 << 30;

fn bad(what: &'static str, problem: impl Into<String>) -> io::Error {
    FormatError::io(what, 0, problem)
}

struct SparseBundle {
    disk: Arc<BandFolder>,
    band_size: u64,
    version: u64,
    key: Option<Arc<BandKey>>,
    writable: bool,
}

/// Opens the bundle folder `dir`, to be written when `writable`; the bytes it keeps on disk are
/// returned with it.
pub fn open(
    dir: &Path,
    passphrase: Option<&Passphrase>,
    writable: bool,
) -> io::Result<(Box<dyn Container>, u64)> {
    let info_path = dir.join("Info.plist");
    let info: plist::Value = match plist::Value::from_file(&info_path) {
        Ok(v) => v,
        Err(e) if !info_path.exists() => {
            return Err(bad(
                "sparse bundle",
                format!("Info.plist is missing ({e}): a folder, not a disk image"),
            ))
        }
        Err(e) => return Err(bad("Info.plist", e.to_string())),
    };
    let dict = info
        .as_dictionary()
        .ok_or_else(|| bad("Info.plist", "not a dictionary"))?;
    let kind = dict
        .get("diskimage-bundle-type")
        .and_then(|v| v.as_string());
    if kind != Some(BUNDLE_TYPE) {
        return Err(bad(
            "Info.plist",
            format!("bundle type {kind:?}, not {BUNDLE_TYPE}"),
        ));
    }
    let number = |key: &str| {
        dict.get(key)
            .and_then(|v| v.as_unsigned_integer())
            .ok_or_else(|| bad("Info.plist", format!("no {key}")))
    };
    let (band_size, size) = (number("band-size")?, number("size")?);
    if band_size == 0 || band_size > MAX_BAND || band_size % 512 != 0 {
        return Err(bad("Info.plist", format!("band size {band_size}")));
    }
    let version = number("bundle-backingstore-version").unwrap_or(1);
    let token = dir.join("token");
    let key = match std::fs::metadata(&token) {
        Ok(m) if m.len() > 0 => Some(Arc::new(BandKey::unlock(
            &FileSource::open(&token)?,
            passphrase,
        )?)),
        _ => None,
    };
    let cipher = key.clone().map(|k| k as Arc<dyn BandCipher>);
    let bands = BandFolder::open(&dir.join("bands"), band_size, size, cipher, writable)
        .map_err(|e| bad("sparse bundle bands", e.to_string()))?;
    let stored = bands.stored().1;
    Ok((
        Box::new(SparseBundle {
            disk: Arc::new(bands),
            band_size,
            version,
            key,
            writable,
        }),
        stored,
    ))
}

impl Container for SparseBundle {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }

    fn band_size(&self) -> Option<u64> {
        Some(self.band_size)
    }

    fn read_write(&self) -> bool {
        true
    }

    fn writable(&self) -> Option<Arc<dyn WriteAt>> {
        self.writable.then(|| self.disk.clone() as Arc<dyn WriteAt>)
    }

    fn key_bits(&self) -> Option<u32> {
        self.key.as_ref().map(|k| k.key_bits())
    }
    fn facts(&self) -> Vec<Fact> {
        let (bands, bytes) = self.disk.stored();
        let mut facts = vec![
            Fact::new("Band size", format!("{} bytes", self.band_size)),
            Fact::new("Bands stored", format!("{bands} ({bytes} bytes)")),
            Fact::new("Bundle version", self.version),
        ];
        facts.extend(self.key.iter().flat_map(|k| k.facts()));
        facts
    }
}

/// hdiutil's band in a sparse bundle: 8 MiB.
pub const BAND: u64 = 8 << 20;
/// dimg's band in an encrypted bundle, whose bands are written whole: 1 MiB.
pub const ENCRYPTED_BAND: u64 = 1 << 20;

/// The bundle's Info.plist, as hdiutil writes it.
pub fn info_plist(band: u64, size: u64) -> Vec<u8> {
    let mut dict = plist::Dictionary::new();
    dict.insert("CFBundleInfoDictionaryVersion".into(), "6.0".into());
    dict.insert("band-size".into(), band.into());
    dict.insert("bundle-backingstore-version".into(), 1u64.into());
    dict.insert("diskimage-bundle-type".into(), BUNDLE_TYPE.into());
    dict.insert("size".into(), size.into());
    let mut out = Vec::new();
    plist::Value::Dictionary(dict)
        .to_writer_xml(&mut out)
        .expect("a dictionary serializes");
    out
}
