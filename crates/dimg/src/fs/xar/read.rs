//! A XAR archive as a volume: its files as the table of contents names them, and beside each
//! payload (`Payload`, `Scripts`, a `.xip`'s `Content`) the folder `NAME.contents` with what its
//! cpio archive holds, a component's payload under the install location its PackageInfo names.
//! A payload is indexed the first time its folder is listed, not when the archive opens.

use super::{xml, Archive, Kind};
use crate::container::Fact;
use crate::fs::check::Watch;
use crate::fs::cpio::Cpio;
use crate::fs::{components, errno, DirEntry, EntryKind, Handle, Volume};
use crate::io::ReadAt;
use std::io;
use std::sync::{Arc, OnceLock};

/// Files that hold a cpio archive, as packages and `.xip` archives name them.
const PAYLOADS: &[&str] = &["Payload", "Scripts", "Content"];
const CONTENTS: &str = ".contents";

/// What a shown entry is.
enum What {
    Folder,
    /// An entry of the archive's table of contents.
    Item(u32),
    /// The folder a payload's archive is shown in: it lists the archive's top level.
    Contents(usize),
}

struct Node {
    name: String,
    kind: EntryKind,
    size: u64,
    modified: Option<i64>,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    children: Vec<u32>,
    what: What,
}

impl Node {
    fn folder(name: &str, what: What) -> Node {
        Node {
            name: name.into(),
            kind: EntryKind::Directory,
            size: 0,
            modified: None,
            mode: None,
            owner: None,
            children: Vec::new(),
            what,
        }
    }
}

/// A payload file, and its archive once indexed (or why it could not be).
struct Payload {
    item: u32,
    cpio: OnceLock<Result<Arc<Cpio>, String>>,
}

/// Where a handle points: a shown node, or an entry inside payload `n`.
enum Place {
    Node(u32),
    Inside(usize, Handle),
}

pub struct Xar {
    archive: Archive,
    nodes: Vec<Node>,
    payloads: Vec<Payload>,
    label: String,
    facts: Vec<Fact>,
    warnings: Vec<String>,
}

impl Xar {
    pub fn open(source: Arc<dyn ReadAt>) -> io::Result<Xar> {
        let archive = Archive::open(source)?;
        let mut xar = Xar {
            archive,
            nodes: vec![Node::folder("", What::Folder)],
            payloads: Vec::new(),
            label: String::new(),
            facts: Vec::new(),
            warnings: Vec::new(),
        };
        xar.add(0, 0);
        xar.describe();
        Ok(xar)
    }

    /// Shows the children of archive entry `item` under node `to`, and their payloads' folders.
    fn add(&mut self, to: u32, item: u32) {
        let children = self.archive.items[item as usize].children.clone();
        for c in children {
            let i = &self.archive.items[c as usize];
            let kind = match &i.kind {
                Kind::File | Kind::HardLink(_) => EntryKind::File,
                Kind::Directory => EntryKind::Directory,
                Kind::Symlink(target) => EntryKind::Symlink(target.clone()),
                Kind::Other(what) => EntryKind::Special(what.clone()),
            };
            let node = Node {
                name: i.name.clone(),
                size: match kind {
                    EntryKind::File => self.archive.data_of(c).map_or(0, |d| d.size),
                    _ => 0,
                },
                kind,
                modified: i.modified,
                mode: i.mode,
                owner: i.owner,
                children: Vec::new(),
                what: What::Item(c),
            };
            let n = self.push(to, node);
            if self.nodes[n as usize].kind == EntryKind::Directory {
                self.add(n, c);
            }
        }
        // Each payload's folder beside it, unless the archive has a file of that name.
        for name in PAYLOADS {
            let Some(&c) = self.archive.items[item as usize]
                .children
                .iter()
                .find(|&&c| {
                    let i = &self.archive.items[c as usize];
                    i.name == *name && i.kind == Kind::File && i.data.is_some()
                })
            else {
                continue;
            };
            let folder = format!("{name}{CONTENTS}");
            if self.child(to, &folder).is_some() {
                continue;
            }
            let location = match *name {
                "Payload" => self.install_location(item),
                _ => String::new(),
            };
            let p = self.payloads.len();
            self.payloads.push(Payload {
                item: c,
                cpio: OnceLock::new(),
            });
            let parts: Vec<String> = components(&location).map(String::from).collect();
            let mut at = self.push(to, Node::folder(&folder, What::Folder));
            for part in &parts {
                at = self.push(at, Node::folder(part, What::Folder));
            }
            self.nodes[at as usize].what = What::Contents(p);
        }
    }

    fn push(&mut self, to: u32, node: Node) -> u32 {
        let n = self.nodes.len() as u32;
        self.nodes.push(node);
        self.nodes[to as usize].children.push(n);
        n
    }

    fn child(&self, node: u32, name: &str) -> Option<u32> {
        self.nodes[node as usize]
            .children
            .iter()
            .copied()
            .find(|&c| self.nodes[c as usize].name == name)
    }

    /// The archive entry named `name` in folder entry `item`.
    fn item_named(&self, item: u32, name: &str) -> Option<u32> {
        self.archive.items[item as usize]
            .children
            .iter()
            .copied()
            .find(|&c| self.archive.items[c as usize].name == name)
    }

    /// Where the component in folder entry `item` installs, as its PackageInfo says ("/" when
    /// it says nothing).
    fn install_location(&self, item: u32) -> String {
        self.item_named(item, "PackageInfo")
            .and_then(|i| self.archive.document(i).ok())
            .and_then(|text| xml::parse(&text, "PackageInfo").ok())
            .and_then(|info| info.attr("install-location").map(String::from))
            .unwrap_or_else(|| "/".into())
    }

    /// What PackageInfo and Distribution say, and the signature: facts for `info`.
    fn describe(&mut self) {
        let mut facts = Vec::new();
        let mut identifiers = Vec::new();
        for (i, item) in self.archive.items.iter().enumerate() {
            if item.name != "PackageInfo" && item.name != "Distribution" {
                continue;
            }
            let parsed = self
                .archive
                .document(i as u32)
                .and_then(|text| xml::parse(&text, "package description"));
            let doc = match parsed {
                Ok(doc) => doc,
                Err(e) => {
                    let path = self.archive.path(i as u32);
                    self.warnings.push(format!("{path}: {e}"));
                    continue;
                }
            };
            if item.name == "PackageInfo" {
                let id = doc.attr("identifier").unwrap_or("?");
                identifiers.push(id.to_string());
                let mut said = format!("{id} {}", doc.attr("version").unwrap_or("?"));
                if let Some(at) = doc.attr("install-location") {
                    said.push_str(&format!(", installs at {at}"));
                }
                if let Some(p) = doc.child("payload") {
                    if let Some(n) = p.attr("numberOfFiles") {
                        said.push_str(&format!(", {n} files"));
                    }
                    if let Some(kb) = p.attr("installKBytes") {
                        said.push_str(&format!(", {kb} KB"));
                    }
                }
                facts.push(Fact::new("Package", said));
                continue;
            }
            if let Some(title) = doc.text_of("title").filter(|t| !t.is_empty()) {
                self.label = title.to_string();
                facts.push(Fact::new("Title", title));
            }
            if let Some(p) = doc.child("product") {
                let id = p.attr("id").unwrap_or("?");
                facts.push(Fact::new(
                    "Product",
                    format!("{id} {}", p.attr("version").unwrap_or("")),
                ));
            }
            if let Some(min) = doc.find("os-version").and_then(|o| o.attr("min")) {
                facts.push(Fact::new("Minimum macOS", min));
            }
            for r in doc.all("pkg-ref").filter(|r| r.attr("version").is_some()) {
                facts.push(Fact::new(
                    "Includes",
                    format!(
                        "{} {} ({})",
                        r.attr("id").unwrap_or("?"),
                        r.attr("version").unwrap_or(""),
                        r.text.trim()
                    ),
                ));
            }
        }
        if let Some((style, certificates)) = &self.archive.signature {
            facts.push(Fact::new(
                "Signature",
                format!("{style}, {certificates} certificates"),
            ));
        }
        if let Some((alg, _, _)) = &self.archive.toc_sum {
            facts.push(Fact::new("TOC checksum", alg));
        }
        if self.label.is_empty() {
            self.label = identifiers
                .first()
                .cloned()
                .unwrap_or_else(|| "XAR archive".into());
        }
        self.facts = facts;
    }

    /// Payload `p`'s archive, indexed on first use.
    fn payload(&self, p: usize) -> io::Result<Arc<Cpio>> {
        let payload = &self.payloads[p];
        let indexed = payload.cpio.get_or_init(|| {
            let item = payload.item;
            let path = self.archive.path(item);
            let data = self.archive.data_of(item).expect("a payload has data");
            self.archive
                .open_data(&path, data)
                .and_then(|source| Cpio::payload(source, &path))
                .map(Arc::new)
                .map_err(|e| format!("{path}: {e}"))
        });
        indexed
            .clone()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn entry(&self, n: u32) -> DirEntry {
        let node = &self.nodes[n as usize];
        DirEntry {
            name: node.name.clone(),
            kind: node.kind.clone(),
            size: node.size,
            modified: node.modified,
            mode: node.mode,
            owner: node.owner,
            links: 1,
            inode: u64::from(n) + 1,
            streams: Vec::new(),
            handle: Handle::new(Place::Node(n)),
        }
    }

    /// An entry of payload `p`'s archive as this volume shows it.
    fn inside(p: usize, e: DirEntry) -> DirEntry {
        DirEntry {
            inode: ((p as u64 + 1) << 40) | e.inode,
            handle: Handle::new(Place::Inside(p, e.handle.clone())),
            ..e
        }
    }

    /// Every checksum the archive keeps, recomputed.
    pub fn verify(&self, watch: &dyn Watch) -> io::Result<Vec<crate::container::Check>> {
        self.archive.verify(watch)
    }
}

impl Volume for Xar {
    fn label(&self) -> String {
        self.label.clone()
    }
    fn root(&self) -> DirEntry {
        self.entry(0)
    }
    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        match dir.handle.get::<Place>()? {
            Place::Node(n) => {
                let node = self
                    .nodes
                    .get(*n as usize)
                    .ok_or_else(|| errno(libc::ENOENT))?;
                match node.what {
                    What::Contents(p) => {
                        let cpio = self.payload(p)?;
                        let top = cpio.read_dir(&cpio.root())?;
                        Ok(top.into_iter().map(|e| Xar::inside(p, e)).collect())
                    }
                    _ => Ok(node.children.iter().map(|&c| self.entry(c)).collect()),
                }
            }
            Place::Inside(p, handle) => {
                let cpio = self.payload(*p)?;
                let inner = DirEntry {
                    handle: handle.clone(),
                    ..dir.clone()
                };
                let entries = cpio.read_dir(&inner)?;
                Ok(entries.into_iter().map(|e| Xar::inside(*p, e)).collect())
            }
        }
    }
    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        match file.handle.get::<Place>()? {
            Place::Node(n) => match self.nodes.get(*n as usize).map(|n| &n.what) {
                Some(What::Item(i)) => {
                    let data = self
                        .archive
                        .data_of(*i)
                        .ok_or_else(|| errno(libc::EISDIR))?;
                    self.archive.open_data(&self.archive.path(*i), data)
                }
                _ => Err(errno(libc::EISDIR)),
            },
            Place::Inside(p, handle) => self.payload(*p)?.open(&DirEntry {
                handle: handle.clone(),
                ..file.clone()
            }),
        }
    }
    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
    fn facts(&self) -> Vec<Fact> {
        self.facts.clone()
    }
}
