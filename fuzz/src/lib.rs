//! What every fuzz target does with its input: open it through the engine's public entry points
//! and use everything that opens, within bounds, so a hang or a huge allocation shows up as one.

use dimg::fs::{self, DirEntry, EntryKind, Volume};
use dimg::io::ReadAt;
use dimg::Passphrase;
use std::sync::Arc;

/// The most read per input, over every disk, track, file and stream: enough to reach past
/// headers and through a small volume's files, little enough that one input stays fast.
const READ_BUDGET: u64 = 512 << 10;
const STEP: usize = 64 << 10;
const MAX_ENTRIES: usize = 4096;
const MAX_DEPTH: usize = 32;

/// The input as a byte source.
pub fn source(data: &[u8]) -> Arc<dyn ReadAt> {
    Arc::new(data.to_vec())
}

/// Bytes an input may still read.
pub struct Budget(u64);

impl Default for Budget {
    fn default() -> Self {
        Budget(READ_BUDGET)
    }
}

/// Reads `source` from its start in steps, while the budget lasts; the first error ends it.
pub fn read_some(source: &dyn ReadAt, budget: &mut Budget) {
    let mut buf = vec![0u8; STEP];
    let mut at = 0;
    while at < source.size() && budget.0 > 0 {
        let want = buf.len().min(budget.0 as usize);
        match source.read_at(at, &mut buf[..want]) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                at += n as u64;
                budget.0 -= n as u64;
            }
        }
    }
}

/// Lists the volume's tree and reads every file and stream in it, bounded in entries and depth.
pub fn walk(volume: &dyn Volume, budget: &mut Budget) {
    let _ = (volume.label(), volume.used(), volume.warnings());
    let _ = volume.snapshots();
    for boot in volume.boot_files().unwrap_or_default() {
        if let Ok(data) = volume.open(&boot) {
            read_some(&*data, budget);
        }
    }
    let mut seen = 0;
    let mut pending = vec![(volume.root(), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = volume.read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            seen += 1;
            if seen > MAX_ENTRIES {
                return;
            }
            read_entry(volume, &entry, budget);
            if entry.kind == EntryKind::Directory && depth < MAX_DEPTH {
                pending.push((entry, depth + 1));
            }
        }
    }
}

fn read_entry(volume: &dyn Volume, entry: &DirEntry, budget: &mut Budget) {
    if entry.kind == EntryKind::File {
        if let Ok(data) = volume.open(entry) {
            read_some(&*data, budget);
        }
    }
    for stream in &entry.streams {
        if let Ok(data) = volume.open_stream(entry, &stream.name) {
            read_some(&*data, budget);
        }
    }
}

/// Walks every volume found on `disk`: each place a partition map or a file system gives.
pub fn walk_disk(disk: Arc<dyn ReadAt>, budget: &mut Budget) {
    let Ok((_, places)) = fs::places(&*disk) else {
        return;
    };
    for place in places {
        for volume in fs::mount(Arc::new(place.open(disk.clone())), None).unwrap_or_default() {
            walk(&*volume, budget);
        }
    }
}

/// Opens the input as an image file — any format, by its content — reads its disk and its
/// tracks, and walks every volume on it.
pub fn open_image(data: &[u8], passphrase: Option<&Passphrase>) {
    open_image_at(data, None, passphrase)
}

/// [`open_image`] of an input taken to be the file at `path`: the files it names (a VMDK's
/// extents, a backing file) are looked for beside it.
pub fn open_image_at(data: &[u8], path: Option<&std::path::Path>, passphrase: Option<&Passphrase>) {
    let Ok(opened) = dimg::container::open_source(source(data), path, passphrase) else {
        return;
    };
    let container = opened.container;
    let _ = container.facts();
    let mut budget = Budget::default();
    for track in container.tracks().unwrap_or_default() {
        read_some(&*track.sectors, &mut budget);
    }
    let disk = container.disk();
    read_some(&*disk, &mut budget);
    walk_disk(disk, &mut Budget::default());
}

/// A temporary folder made once per fuzzing process, with `files` (name, bytes) in it.
pub fn folder_with(files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("a file in it");
    }
    dir
}
