//! A Parallels `.hdd` bundle: a folder whose `DiskDescriptor.xml` cuts the disk into storages
//! (sector ranges), each with one image per snapshot, and lists the snapshots with their
//! parents. The disk is the current snapshot's: the one no other names as its parent.

use super::{read_image, Parallels};
use crate::container::blocks::Blocks;
use crate::container::Container;
use crate::error::FormatError;
use crate::io::{Concat, FileSource, ReadAt, Slice};
use quick_xml::events::Event;
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

const DESCRIPTOR: &str = "DiskDescriptor.xml";
/// Descriptors are a few KiB; one past this is no Parallels bundle's.
const MAX_DESCRIPTOR: u64 = 1 << 20;
/// The GUID that stands for "no parent".
const NO_PARENT: &str = "{00000000-0000-0000-0000-000000000000}";

/// Whether `path` is a bundle's folder.
pub fn is_bundle(path: &Path) -> bool {
    path.is_dir() && path.join(DESCRIPTOR).is_file()
}

#[derive(Default)]
struct Storage {
    start: u64,
    end: u64,
    /// GUID → (type, file).
    images: HashMap<String, (String, String)>,
}

#[derive(Default)]
struct Descriptor {
    storages: Vec<Storage>,
    /// Snapshot GUID → its parent's.
    parents: HashMap<String, String>,
}

fn bad(problem: impl Into<String>) -> io::Error {
    FormatError::io("Parallels DiskDescriptor.xml", 0, problem)
}

fn parse(xml: &str) -> io::Result<Descriptor> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut d, mut path) = (Descriptor::default(), Vec::<String>::new());
    let (mut image, mut shot) = (
        HashMap::<String, String>::new(),
        (String::new(), String::new()),
    );
    loop {
        match reader
            .read_event()
            .map_err(|e| bad(format!("not well-formed XML ({e})")))?
        {
            Event::Start(e) => {
                let name = e.name().as_ref().to_string();
                match name.as_str() {
                    "Storage" => d.storages.push(Storage::default()),
                    "Image" => image.clear(),
                    "Shot" => shot = Default::default(),
                    _ => {}
                }
                path.push(name);
                if path.len() > 16 {
                    return Err(bad("elements nested too deep"));
                }
            }
            Event::End(_) => match path.pop().as_deref() {
                Some("Image") => {
                    let storage = d
                        .storages
                        .last_mut()
                        .ok_or_else(|| bad("an Image outside a Storage"))?;
                    let field = |k: &str| image.get(k).cloned().unwrap_or_default();
                    storage
                        .images
                        .insert(field("GUID"), (field("Type"), field("File")));
                }
                Some("Shot") => {
                    d.parents.insert(shot.0.clone(), shot.1.clone());
                }
                _ => {}
            },
            Event::Text(t) => {
                let text = t.xml10_content().trim().to_string();
                let names: Vec<&str> = path.iter().rev().take(2).map(String::as_str).collect();
                match names.as_slice() {
                    [field, "Image"] => {
                        image.insert(field.to_string(), text);
                    }
                    ["GUID", "Shot"] => shot.0 = text,
                    ["ParentGUID", "Shot"] => shot.1 = text,
                    [field @ ("Start" | "End"), "Storage"] => {
                        let sectors = text
                            .parse()
                            .map_err(|_| bad(format!("a {field} of {text:?}")))?;
                        let storage = d.storages.last_mut().expect("inside a Storage");
                        match *field {
                            "Start" => storage.start = sectors,
                            _ => storage.end = sectors,
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(d)
}

/// Opens the bundle at `folder`: the container, and the bytes its images take.
pub fn open_bundle(folder: &Path) -> io::Result<(Box<dyn Container>, u64)> {
    let descriptor = folder.join(DESCRIPTOR);
    let len = std::fs::metadata(&descriptor)?.len();
    if len > MAX_DESCRIPTOR {
        return Err(bad(format!("{len} bytes, too large for a descriptor")));
    }
    let d = parse(&std::fs::read_to_string(&descriptor)?)?;
    // The current snapshot: one that is no other's parent (the only image, without snapshots).
    let current = d
        .parents
        .keys()
        .find(|g| !d.parents.values().any(|p| p == *g))
        .cloned();
    let (mut parts, mut stored, mut at) = (Vec::<Arc<dyn ReadAt>>::new(), 0u64, 0u64);
    let (mut images, mut cluster, mut allocated) = (Vec::new(), 0, 0);
    for storage in &d.storages {
        if storage.start != at / 512 || storage.end <= storage.start || storage.end > 1 << 47 {
            return Err(bad(format!(
                "a storage of sectors {} to {}, not following the last",
                storage.start, storage.end
            )));
        }
        let len = (storage.end - storage.start) * 512;
        // The chain from the current image down to the first, each GUID once.
        let mut chain = Vec::new();
        let mut guid = match &current {
            Some(g) => g.clone(),
            None if storage.images.len() == 1 => {
                storage.images.keys().next().cloned().unwrap_or_default()
            }
            None => return Err(bad("several images and no snapshots to order them")),
        };
        while guid != NO_PARENT && !guid.is_empty() {
            if chain.contains(&guid) || chain.len() > 64 {
                return Err(bad(format!("the snapshots loop at {guid}")));
            }
            chain.push(guid.clone());
            guid = match d.parents.get(&guid) {
                Some(parent) => parent.clone(),
                None => break,
            };
        }
        let mut disk: Option<Arc<dyn ReadAt>> = None;
        for guid in chain.iter().rev() {
            let (kind, file) = storage
                .images
                .get(guid)
                .ok_or_else(|| bad(format!("no image for snapshot {guid}")))?;
            let path = folder.join(file);
            let source: Arc<dyn ReadAt> = Arc::new(
                FileSource::open(&path)
                    .map_err(|e| bad(format!("the image {} ({e})", path.display())))?,
            );
            stored += source.size();
            images.push(file.clone());
            disk = Some(match kind.as_str() {
                "Plain" => Arc::new(Slice::new(source, 0, len)),
                _ => {
                    let (image, count) = read_image(source, disk)?;
                    cluster = image.blocks().block_size();
                    allocated += count;
                    image
                }
            });
        }
        let disk = disk.ok_or_else(|| bad("a storage with no image"))?;
        parts.push(Arc::new(crate::io::Patched::new(disk, len)));
        at += len;
    }
    if parts.is_empty() {
        return Err(bad("no storage"));
    }
    images.reverse();
    Ok((
        Box::new(Parallels {
            disk: Arc::new(Concat::new(parts)),
            cluster,
            allocated,
            images,
        }),
        stored,
    ))
}
