//! XAR archives: flat installer packages (`.pkg`, `.mpkg`) and `.xip` archives. A 28-byte header
//! (magic "xar!", its own size, the table of contents' compressed and plain lengths, the
//! checksum algorithm), the table of contents — zlib-compressed XML naming every file, where its
//! bytes are in the heap that follows, how they are encoded and their checksums — then the heap.
//!
//! Read as a volume ([`read`]): the archive's own files as stored, and beside each component's
//! `Payload`, `Scripts` (and a `.xip`'s `Content`) a folder `NAME.contents` holding what the
//! cpio archive inside installs — a payload under its install location.

pub mod read;
mod xml;

use crate::bytes::{be16, be32, be64, hasher, hex};
use crate::codec::stream::{Encoding, Forward};
use crate::codec::Codec;
use crate::container::Check;
use crate::error::FormatError;
use crate::fs::check::Watch;
use crate::io::{ReadAt, Reader, Slice};
pub use read::Xar;
use std::io;
use std::sync::Arc;
use xml::Element;

pub const MAGIC: &[u8; 4] = b"xar!";
const HEADER: usize = 28;
/// Tables of contents are kilobytes (Xcode's is under 100 KiB); larger is a crafted file.
const MAX_TOC: u64 = 64 << 20;
/// PackageInfo and Distribution are kilobytes too.
const MAX_DOCUMENT: u64 = 16 << 20;

/// How a file's bytes are kept in the heap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    As(Encoding),
    /// An encoding dimg does not decode, by its name.
    Unknown(String),
}

/// A checksum the table of contents keeps: its algorithm and value.
#[derive(Clone, Debug)]
pub struct Sum {
    pub style: String,
    pub value: String,
}

/// Where a file's bytes are in the heap.
#[derive(Clone, Debug)]
pub struct Data {
    pub offset: u64,
    /// Bytes in the heap.
    pub length: u64,
    /// Bytes once decoded.
    pub size: u64,
    pub encoding: Stored,
    pub archived: Option<Sum>,
    pub extracted: Option<Sum>,
}

/// What a table-of-contents entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    Symlink(String),
    /// A hard link to the file with this id, or "original" for the one holding the bytes.
    HardLink(String),
    Other(String),
}

/// One entry of the table of contents.
#[derive(Clone, Debug)]
pub struct Item {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    pub data: Option<Data>,
    pub mode: Option<u32>,
    pub owner: Option<(u32, u32)>,
    pub modified: Option<i64>,
    pub children: Vec<u32>,
}

/// An opened archive: its table of contents, as entries under a root (entry 0), and the heap.
pub struct Archive {
    source: Arc<dyn ReadAt>,
    heap: u64,
    toc: (u64, u64),
    /// The header's checksum algorithm, and where the table of contents says its value is.
    toc_sum: Option<(String, u64, u64)>,
    pub items: Vec<Item>,
    /// The signature's style and how many certificates come with it, when signed.
    pub signature: Option<(String, usize)>,
}

fn bad(structure: &'static str, at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(structure, at, problem)
}

/// "2021-03-04T05:06:07Z" as seconds since 1970.
fn iso_time(t: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<i64>().ok());
    let days = super::days_from_civil(n(0..4)?, n(5..7)?, n(8..10)?);
    Some(days * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?)
}

fn encoding(style: &str) -> Stored {
    match style {
        "application/octet-stream" => Stored::As(Encoding::Stored),
        // xar names zlib streams "gzip".
        "application/x-gzip" => Stored::As(Encoding::Zlib),
        "application/x-bzip2" => Stored::As(Encoding::Bzip2),
        "application/x-xz" => Stored::As(Encoding::Xz),
        other => Stored::Unknown(other.into()),
    }
}

fn sum(e: Option<&Element>) -> Option<Sum> {
    e.map(|e| Sum {
        style: e.attr("style").unwrap_or("").to_ascii_lowercase(),
        value: e.text.trim().to_ascii_lowercase(),
    })
}

impl Archive {
    pub fn open(source: Arc<dyn ReadAt>) -> io::Result<Archive> {
        let mut h = [0u8; HEADER];
        source.read_exact_at(0, &mut h)?;
        if &h[..4] != MAGIC {
            return Err(bad("XAR header", 0, "no xar! magic"));
        }
        let header_size = u64::from(be16(&h, 4));
        let (packed, plain) = (be64(&h, 8), be64(&h, 16));
        if header_size < HEADER as u64 || header_size > 4096 {
            return Err(bad(
                "XAR header",
                4,
                format!("a header of {header_size} bytes"),
            ));
        }
        if packed > MAX_TOC || plain > MAX_TOC || header_size + packed > source.size() {
            return Err(bad(
                "XAR header",
                8,
                format!(
                    "a table of contents of {packed} bytes ({plain} plain): more than dimg \
                     reads, or past the end of the file"
                ),
            ));
        }
        let algorithm = match be32(&h, 24) {
            0 => None,
            1 => Some("sha1".to_string()),
            2 => Some("md5".to_string()),
            3 => {
                let mut name = vec![0u8; (header_size - HEADER as u64) as usize];
                source.read_exact_at(HEADER as u64, &mut name)?;
                let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                Some(String::from_utf8_lossy(&name[..end]).to_ascii_lowercase())
            }
            n => return Err(bad("XAR header", 24, format!("checksum algorithm {n}"))),
        };
        let mut compressed = vec![0u8; packed as usize];
        source.read_exact_at(header_size, &mut compressed)?;
        let mut text = vec![0u8; plain as usize];
        Codec::Zlib
            .decompress(&compressed, &mut text)
            .map_err(|e| bad("XAR table of contents", header_size, e))?;
        let text = String::from_utf8(text)
            .map_err(|_| bad("XAR table of contents", header_size, "not UTF-8 text"))?;
        let doc = xml::parse(&text, "XAR table of contents")?;
        let toc = doc
            .child("toc")
            .filter(|_| doc.name == "xar")
            .ok_or_else(|| bad("XAR table of contents", header_size, "no <xar><toc>"))?;
        let number = |e: Option<&Element>, name: &str| {
            e.and_then(|e| e.text_of(name))
                .and_then(|t| t.parse::<u64>().ok())
        };
        let toc_sum = match (algorithm, toc.child("checksum")) {
            (Some(alg), Some(c)) => Some((
                alg,
                number(Some(c), "offset").unwrap_or(0),
                number(Some(c), "size").unwrap_or(0),
            )),
            _ => None,
        };
        let signature = toc.child("signature").map(|s| {
            let certificates = s
                .find("X509Data")
                .map_or(0, |d| d.all("X509Certificate").count());
            (s.attr("style").unwrap_or("").to_string(), certificates)
        });
        let mut archive = Archive {
            source,
            heap: header_size + packed,
            toc: (header_size, packed),
            toc_sum,
            items: vec![Item {
                id: String::new(),
                name: String::new(),
                kind: Kind::Directory,
                data: None,
                mode: None,
                owner: None,
                modified: None,
                children: Vec::new(),
            }],
            signature,
        };
        archive.add(0, toc)?;
        Ok(archive)
    }

    /// Adds the `<file>` elements of `parent` under entry `to`.
    fn add(&mut self, to: u32, parent: &Element) -> io::Result<()> {
        for f in parent.all("file") {
            let text = |name: &str| f.text_of(name).unwrap_or("");
            let raw = f.child("name").map_or("", |n| n.text.as_str());
            let name = match f.child("name").and_then(|n| n.attr("enctype")) {
                Some("base64") => {
                    use base64::Engine;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(raw.trim())
                        .map_err(|_| bad("XAR table of contents", 0, "a name not in base64"))?;
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                _ => raw.to_string(),
            };
            let kind_element = f.child("type");
            let kind = match text("type") {
                "file" => Kind::File,
                "directory" => Kind::Directory,
                "symlink" => {
                    Kind::Symlink(f.child("link").map(|l| l.text.clone()).unwrap_or_default())
                }
                "hardlink" => Kind::HardLink(
                    kind_element
                        .and_then(|k| k.attr("link"))
                        .unwrap_or("")
                        .to_string(),
                ),
                other => Kind::Other(other.to_string()),
            };
            let data = match f.child("data") {
                Some(d) => {
                    let n = |name: &str| d.text_of(name).and_then(|t| t.parse::<u64>().ok());
                    let (Some(offset), Some(length), Some(size)) =
                        (n("offset"), n("length"), n("size"))
                    else {
                        return Err(bad(
                            "XAR table of contents",
                            0,
                            format!("{name}: its data has no offset, length or size"),
                        ));
                    };
                    Some(Data {
                        offset,
                        length,
                        size,
                        encoding: d
                            .child("encoding")
                            .and_then(|e| e.attr("style"))
                            .map_or(Stored::As(Encoding::Stored), encoding),
                        archived: sum(d.child("archived-checksum")),
                        extracted: sum(d.child("extracted-checksum")),
                    })
                }
                None => None,
            };
            let id = u32::try_from(self.items.len()).expect("a table of contents of 64 MiB");
            self.items.push(Item {
                id: f.attr("id").unwrap_or("").to_string(),
                name,
                kind,
                data,
                mode: u32::from_str_radix(text("mode"), 8).ok(),
                owner: text("uid").parse().ok().zip(text("gid").parse().ok()),
                modified: iso_time(text("mtime")),
                children: Vec::new(),
            });
            self.items[to as usize].children.push(id);
            self.add(id, f)?;
        }
        Ok(())
    }

    /// The bytes entry `i` keeps, where a hard link keeps them elsewhere.
    pub fn data_of(&self, i: u32) -> Option<&Data> {
        let item = &self.items[i as usize];
        match (&item.data, &item.kind) {
            (Some(d), _) => Some(d),
            (None, Kind::HardLink(to)) => self
                .items
                .iter()
                .find(|o| &o.id == to && o.data.is_some())
                .and_then(|o| o.data.as_ref()),
            _ => None,
        }
    }

    /// A file's bytes as the heap keeps them.
    fn heap_bytes(&self, name: &str, d: &Data) -> io::Result<Arc<dyn ReadAt>> {
        let start = self.heap.checked_add(d.offset);
        match start.and_then(|s| s.checked_add(d.length)) {
            Some(end) if end <= self.source.size() => Ok(Arc::new(Slice::new(
                self.source.clone(),
                self.heap + d.offset,
                d.length,
            ))),
            _ => Err(bad(
                "XAR heap",
                d.offset,
                format!(
                    "{name}: {} bytes that run past the end of the file",
                    d.length
                ),
            )),
        }
    }

    /// A file's bytes, decoded as they are read.
    pub fn open_data(&self, name: &str, d: &Data) -> io::Result<Arc<dyn ReadAt>> {
        let stored = self.heap_bytes(name, d)?;
        match &d.encoding {
            Stored::As(Encoding::Stored) if d.length == d.size => Ok(stored),
            Stored::As(Encoding::Stored) => Err(bad(
                "XAR table of contents",
                d.offset,
                format!(
                    "{name}: stored as it is, yet {} bytes for {}",
                    d.length, d.size
                ),
            )),
            Stored::As(e) => {
                let e = *e;
                let reopen = move || Ok(e.decoder(Box::new(Reader::new(stored.clone()))));
                Ok(Arc::new(Forward::new(d.size, Box::new(reopen))))
            }
            Stored::Unknown(style) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{name}: encoded as {style}, which dimg does not decode"),
            )),
        }
    }

    /// A small file (PackageInfo, Distribution) as text.
    pub fn document(&self, i: u32) -> io::Result<String> {
        let item = &self.items[i as usize];
        let d = self.data_of(i).ok_or_else(|| {
            bad(
                "XAR table of contents",
                0,
                format!("{}: no data", item.name),
            )
        })?;
        if d.size > MAX_DOCUMENT {
            return Err(bad(
                "XAR table of contents",
                0,
                format!("{}: {} bytes, more than dimg reads", item.name, d.size),
            ));
        }
        let mut bytes = vec![0u8; d.size as usize];
        self.open_data(&item.name, d)?
            .read_exact_at(0, &mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The table of contents' checksum, and each file's checksums of its stored and its decoded
    /// bytes, recomputed.
    pub fn verify(&self, watch: &dyn Watch) -> io::Result<Vec<Check>> {
        let mut checks = Vec::new();
        if let Some((alg, offset, size)) = &self.toc_sum {
            let toc = Slice::new(self.source.clone(), self.toc.0, self.toc.1);
            let mut stored = vec![0u8; (*size).min(64) as usize];
            self.source.read_exact_at(self.heap + offset, &mut stored)?;
            checks.push(digest_check(
                "table of contents",
                alg,
                &hex(&stored),
                &toc,
                watch,
            )?);
        }
        let total = self
            .items
            .iter()
            .filter_map(|i| i.data.as_ref())
            .map(|d| d.length + d.size)
            .sum();
        watch.begin("Checking files", total);
        let mut done = 0;
        for (i, item) in self.items.iter().enumerate() {
            let Some(d) = &item.data else { continue };
            let path = self.path(i as u32);
            if let Some(s) = &d.archived {
                let stored = self.heap_bytes(&path, d)?;
                checks.push(digest_check(
                    &format!("{path} (stored)"),
                    &s.style,
                    &s.value,
                    &stored,
                    watch,
                )?);
            }
            // Stored as it is, the decoded bytes are the stored ones.
            let decoded = d.encoding != Stored::As(Encoding::Stored);
            if let Some(s) = d.extracted.as_ref().filter(|_| decoded) {
                let check = match self.open_data(&path, d) {
                    Ok(decoded) => digest_check(&path, &s.style, &s.value, &decoded, watch)?,
                    Err(e) => Check {
                        name: path.clone(),
                        ok: false,
                        stored: s.value.clone(),
                        computed: e.to_string(),
                    },
                };
                checks.push(check);
            }
            done += d.length + d.size;
            watch.advance(done);
        }
        Ok(checks)
    }

    /// Entry `i`'s path from the root.
    pub fn path(&self, i: u32) -> String {
        fn find(items: &[Item], at: u32, want: u32, path: &mut Vec<u32>) -> bool {
            if at == want {
                return true;
            }
            for &c in &items[at as usize].children {
                path.push(c);
                if find(items, c, want, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
        let mut path = Vec::new();
        find(&self.items, 0, i, &mut path);
        path.iter()
            .map(|&p| self.items[p as usize].name.as_str())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Whether `source` hashes under algorithm `alg` to `stored` (hex).
fn digest_check(
    name: &str,
    alg: &str,
    stored: &str,
    source: &dyn ReadAt,
    watch: &dyn Watch,
) -> io::Result<Check> {
    let Some(mut h) = hasher(alg) else {
        return Ok(Check {
            name: name.into(),
            ok: false,
            stored: stored.into(),
            computed: format!("a {alg} checksum, which dimg does not compute"),
        });
    };
    let (mut buf, mut at) = (vec![0u8; 1 << 20], 0u64);
    let computed = loop {
        if watch.cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        let n = (source.size() - at).min(buf.len() as u64) as usize;
        if n == 0 {
            break hex(&h.finalize_reset());
        }
        match source.read_exact_at(at, &mut buf[..n]) {
            Ok(()) => h.update(&buf[..n]),
            Err(e) => break format!("unreadable: {e}"),
        }
        at += n as u64;
    };
    Ok(Check {
        name: name.into(),
        ok: computed == stored,
        stored: stored.into(),
        computed,
    })
}
