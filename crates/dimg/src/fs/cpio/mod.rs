//! cpio archives as installer payloads carry them: "odc" (magic 070707, octal fields) and "newc"
//! (070701, or 070702 with checksums; hex fields, names and data padded to four bytes), on their
//! own or in gzip or pbzx. One pass through the decoded stream indexes the archive — names,
//! kinds, where each file's bytes start — and the archive is then a volume whose files are
//! windows of that stream: nothing is held but the index, however large the payload.

use super::{DirEntry, EntryKind, Handle, Volume};
use crate::codec::pbzx::{self, Pbzx};
use crate::codec::stream::{read_full, skip, Encoding, Forward};
use crate::error::FormatError;
use crate::io::{ReadAt, Reader, Slice};
use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;

const ODC: &[u8; 6] = b"070707";
const NEWC: &[u8; 6] = b"070701";
const NEWC_CRC: &[u8; 6] = b"070702";
const TRAILER: &str = "TRAILER!!!";
const GZIP: &[u8; 2] = b"\x1f\x8b";
/// Longer names are no path a system could create.
const MAX_NAME: u64 = 4096;
/// More entries than any Mac install holds: the index of a crafted payload stays bounded.
const MAX_ENTRIES: usize = 4_000_000;

/// One entry of the archive, and what it holds when it is a folder.
struct Node {
    name: String,
    kind: EntryKind,
    size: u64,
    /// Where its bytes start in the decoded stream.
    data: u64,
    modified: Option<i64>,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    links: u32,
    children: Vec<u32>,
}

impl Node {
    fn folder(name: &str) -> Node {
        Node {
            name: name.into(),
            kind: EntryKind::Directory,
            size: 0,
            data: 0,
            modified: None,
            mode: None,
            owner: None,
            links: 1,
            children: Vec::new(),
        }
    }
}

/// A cpio archive read as a volume.
pub struct Cpio {
    stream: Arc<dyn ReadAt>,
    nodes: Vec<Node>,
    label: String,
}

/// An entry's header fields, whichever format wrote them.
struct Header {
    ino: (u64, u64),
    mode: u32,
    uid: u32,
    gid: u32,
    links: u32,
    mtime: i64,
    name_size: u64,
    file_size: u64,
    /// Names and data are padded to this (1 for odc, 4 for newc).
    align: u64,
}

/// The decoded stream being indexed, and how far into it the pass is.
struct Pass<'a> {
    input: &'a mut dyn Read,
    at: u64,
}

impl Pass<'_> {
    fn bad(&self, problem: impl Into<String>) -> io::Error {
        FormatError::io("cpio archive", self.at, problem)
    }

    fn exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let n = read_full(self.input, buf)?;
        self.at += n as u64;
        match n == buf.len() {
            true => Ok(()),
            false => Err(self.bad("the archive ends in the middle of an entry")),
        }
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let skipped = skip(self.input, n)?;
        self.at += skipped;
        match skipped == n {
            true => Ok(()),
            false => Err(self.bad("the archive ends in the middle of a file's data")),
        }
    }

    fn pad(&mut self, align: u64) -> io::Result<()> {
        self.skip(self.at.next_multiple_of(align) - self.at)
    }

    fn header(&mut self) -> io::Result<Header> {
        let mut magic = [0u8; 6];
        self.exact(&mut magic)?;
        let field = |bytes: &[u8], radix: u32| {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| u64::from_str_radix(t, radix).ok())
        };
        let (fields, radix, widths, align): (usize, u32, &[usize], u64) = match &magic {
            m if m == ODC => (70, 8, &[6, 6, 6, 6, 6, 6, 6, 11, 6, 11], 1),
            m if m == NEWC || m == NEWC_CRC => (104, 16, &[8; 13], 4),
            _ => return Err(self.bad("no cpio header where the next entry should start")),
        };
        let mut rest = vec![0u8; fields];
        self.exact(&mut rest)?;
        let mut values = Vec::with_capacity(widths.len());
        let mut from = 0;
        for w in widths {
            let v = field(&rest[from..from + w], radix)
                .ok_or_else(|| self.bad("a header field that is not a number"))?;
            values.push(v);
            from += w;
        }
        let small = |v: u64| v as u32;
        Ok(match align {
            // dev ino mode uid gid nlink rdev mtime namesize filesize
            1 => Header {
                ino: (values[0], values[1]),
                mode: small(values[2]),
                uid: small(values[3]),
                gid: small(values[4]),
                links: small(values[5]),
                mtime: values[7] as i64,
                name_size: values[8],
                file_size: values[9],
                align,
            },
            // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor
            // namesize check
            _ => Header {
                ino: (values[7] << 32 | values[8], values[0]),
                mode: small(values[1]),
                uid: small(values[2]),
                gid: small(values[3]),
                links: small(values[4]),
                mtime: values[5] as i64,
                name_size: values[11],
                file_size: values[6],
                align,
            },
        })
    }
}

/// What `mode` says an entry is, when it is not a file, folder or link.
fn special(mode: u32) -> Option<&'static str> {
    match mode & 0o170000 {
        0o020000 => Some("character device"),
        0o060000 => Some("block device"),
        0o010000 => Some("FIFO"),
        0o140000 => Some("socket"),
        _ => None,
    }
}

impl Cpio {
    /// Indexes the archive that `pass` reads from its start; `stream` then serves its files'
    /// bytes, given the length the pass found.
    pub fn index(
        pass: &mut dyn Read,
        stream: impl FnOnce(u64) -> Arc<dyn ReadAt>,
        label: &str,
    ) -> io::Result<Cpio> {
        let mut nodes = vec![Node::folder("")];
        let mut by_name: HashMap<(u32, String), u32> = HashMap::new();
        let mut linked: HashMap<(u64, u64), Vec<u32>> = HashMap::new();
        let mut pass = Pass { input: pass, at: 0 };
        loop {
            let h = pass.header()?;
            if h.name_size == 0 || h.name_size > MAX_NAME {
                return Err(pass.bad(format!("a name of {} bytes", h.name_size)));
            }
            let mut name = vec![0u8; h.name_size as usize];
            pass.exact(&mut name)?;
            pass.pad(h.align)?;
            let name =
                String::from_utf8_lossy(name.strip_suffix(b"\0").unwrap_or(&name)).into_owned();
            if name == TRAILER {
                break;
            }
            let data = pass.at;
            let kind = match h.mode & 0o170000 {
                0o040000 => EntryKind::Directory,
                0o120000 => {
                    if h.file_size > MAX_NAME {
                        return Err(pass.bad(format!("a link of {} bytes", h.file_size)));
                    }
                    let mut target = vec![0u8; h.file_size as usize];
                    pass.exact(&mut target)?;
                    EntryKind::Symlink(String::from_utf8_lossy(&target).into_owned())
                }
                mode => match special(mode) {
                    Some(what) => EntryKind::Special(what.into()),
                    None => EntryKind::File,
                },
            };
            if !matches!(kind, EntryKind::Symlink(_)) {
                pass.skip(h.file_size)?;
            }
            pass.pad(h.align)?;
            let parts: Vec<&str> = super::components(&name).collect();
            let Some((last, folders)) = parts.split_last() else {
                // "." is the root itself.
                if kind == EntryKind::Directory {
                    nodes[0].modified = Some(h.mtime);
                    nodes[0].mode = Some(h.mode & 0o7777);
                }
                continue;
            };
            if nodes.len() + parts.len() > MAX_ENTRIES {
                return Err(pass.bad(format!("more than {MAX_ENTRIES} entries")));
            }
            let mut parent = 0u32;
            for folder in folders {
                parent = match by_name.get(&(parent, folder.to_string())) {
                    Some(&i) if nodes[i as usize].kind == EntryKind::Directory => i,
                    _ => {
                        let i = nodes.len() as u32;
                        nodes.push(Node::folder(folder));
                        nodes[parent as usize].children.push(i);
                        by_name.insert((parent, folder.to_string()), i);
                        i
                    }
                };
            }
            let node = Node {
                name: last.to_string(),
                size: match kind {
                    EntryKind::File => h.file_size,
                    _ => 0,
                },
                kind,
                data,
                modified: Some(h.mtime),
                mode: Some(h.mode & 0o7777),
                owner: Some((h.uid, h.gid)),
                links: h.links.max(1),
                children: Vec::new(),
            };
            // A later entry of the same name replaces an earlier one, as extracting both would;
            // a folder keeps what was found inside it.
            let i = match by_name.get(&(parent, last.to_string())) {
                Some(&i) => {
                    let old = std::mem::replace(&mut nodes[i as usize], node);
                    if nodes[i as usize].kind == EntryKind::Directory {
                        nodes[i as usize].children = old.children;
                    }
                    i
                }
                None => {
                    let i = nodes.len() as u32;
                    nodes.push(node);
                    nodes[parent as usize].children.push(i);
                    by_name.insert((parent, last.to_string()), i);
                    i
                }
            };
            if h.links > 1 && nodes[i as usize].kind == EntryKind::File {
                linked.entry(h.ino).or_default().push(i);
            }
        }
        // newc stores a hard-linked file's bytes once, with one of its names (the last); the
        // others are empty.
        for names in linked.values() {
            if let Some(&full) = names.iter().find(|&&i| nodes[i as usize].size > 0) {
                let (size, data) = (nodes[full as usize].size, nodes[full as usize].data);
                for &i in names {
                    if nodes[i as usize].size == 0 {
                        nodes[i as usize].size = size;
                        nodes[i as usize].data = data;
                    }
                }
            }
        }
        Ok(Cpio {
            stream: stream(pass.at),
            nodes,
            label: label.into(),
        })
    }

    /// A payload as installer packages carry it: a cpio archive, alone or in gzip or pbzx.
    pub fn payload(source: Arc<dyn ReadAt>, label: &str) -> io::Result<Cpio> {
        let mut head = [0u8; 6];
        let n = source.read_at(0, &mut head)?;
        let head = &head[..n];
        if head.starts_with(pbzx::MAGIC) {
            let pbzx = Arc::new(Pbzx::open(source)?);
            let mut pass = pbzx.clone().reader();
            return Cpio::index(&mut pass, |_| pbzx, label);
        }
        if head.starts_with(GZIP) {
            let open = move || Ok(Encoding::Gzip.decoder(Box::new(Reader::new(source.clone()))));
            let mut pass = open()?;
            return Cpio::index(
                &mut pass,
                |size| Arc::new(Forward::new(size, Box::new(open))),
                label,
            );
        }
        if crate::magic::CPIO.iter().any(|m| head.starts_with(m)) {
            let mut pass = Reader::new(source.clone());
            return Cpio::index(&mut pass, |_| source, label);
        }
        Err(FormatError::io(
            "payload",
            0,
            "neither a cpio archive nor one in gzip or pbzx",
        ))
    }

    fn entry(&self, i: u32) -> DirEntry {
        let n = &self.nodes[i as usize];
        DirEntry {
            name: n.name.clone(),
            kind: n.kind.clone(),
            size: n.size,
            modified: n.modified,
            mode: n.mode,
            owner: n.owner,
            links: n.links,
            inode: u64::from(i) + 1,
            streams: Vec::new(),
            handle: Handle::new(i),
        }
    }
}

impl Volume for Cpio {
    fn label(&self) -> String {
        self.label.clone()
    }
    fn root(&self) -> DirEntry {
        DirEntry {
            name: String::new(),
            ..self.entry(0)
        }
    }
    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        let i = *dir.handle.get::<u32>()?;
        let node = self
            .nodes
            .get(i as usize)
            .ok_or_else(|| super::errno(libc::ENOENT))?;
        Ok(node.children.iter().map(|&c| self.entry(c)).collect())
    }
    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        let i = *file.handle.get::<u32>()?;
        let node = self
            .nodes
            .get(i as usize)
            .ok_or_else(|| super::errno(libc::ENOENT))?;
        Ok(Arc::new(Slice::new(
            self.stream.clone(),
            node.data,
            node.size,
        )))
    }
}
