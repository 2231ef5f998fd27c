//! An exFAT volume changed in place (a read/write attach). What is read goes through the reader
//! ([`ExFat`]) straight from the disk, so it sees every change; a change rewrites the entry
//! sets it touches (their checksums made whole), takes clusters from the allocation bitmap and
//! gives them back (the bitmap is kept in memory and written through), and keeps a file's
//! clusters contiguous ("NoFatChain") while it can grow in place, chaining them in the FAT once
//! it cannot. A file grown is zeroed to its new length and its valid data length kept equal to
//! its length, as exfat-fuse 1.3 and Linux before 6.8 read every byte up to the length (bytes
//! past the valid length of a file written elsewhere are zeroed before a write past them). The
//! volume is marked dirty while it is open.

use super::read::{sets_in, ExFat, Node, Set};
use super::write::{entry_set, named, seal, Placed, ATTR_ARCHIVE, END_OF_CHAIN};
use super::{bad, stamp, ATTR_DIRECTORY, ENTRY, MAX_DIR_BYTES, NO_FAT_CHAIN, VOLUME_DIRTY};
use crate::fs::{components, errno, split, Stat, Volume, VolumeMut};
use crate::io::WriteAt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// The boot sector's volume flags and its percentage of the heap in use, which its checksum
/// leaves out so that they can change.
const FLAGS_AT: u64 = 106;
const PERCENT_IN_USE_AT: u64 = 112;
/// Zeros written a piece at a time.
const ZEROS: usize = 64 << 10;

pub struct ExFatChange {
    disk: Arc<dyn WriteAt>,
    label: String,
    /// None once closed.
    state: Mutex<Option<State>>,
}

struct State {
    disk: Arc<dyn WriteAt>,
    volume: ExFat,
    /// The allocation bitmap, a bit a cluster from cluster 2, and where each of its clusters is.
    bitmap: Vec<u8>,
    bitmap_at: Vec<u64>,
    free: u64,
    /// No cluster below this one is free.
    lowest_free: u32,
}

/// A folder as read: its node, clusters and entries, and its own entry set in its parent
/// (none for the root, which has no stream extension and is always chained).
struct Folder {
    node: Node,
    clusters: Vec<u32>,
    bytes: Vec<u8>,
    sets: Vec<Set>,
    own: Option<Entry>,
}

/// An entry set found in a folder: where each of its entries is on the disk, its bytes, and
/// what they say.
struct Entry {
    at: Vec<u64>,
    bytes: Vec<u8>,
    set: Set,
}

impl Entry {
    fn is_dir(&self) -> bool {
        self.set.attributes & ATTR_DIRECTORY != 0
    }

    fn size(&self) -> u64 {
        self.set.node.size.unwrap_or(0)
    }

    fn stat(&self) -> Stat {
        stat_of(&self.set)
    }

    /// Records where its data now is, in its stream extension.
    fn set_node(&mut self, node: Node) {
        let stream = &mut self.bytes[ENTRY..2 * ENTRY];
        stream[1] = match node.contiguous && node.first != 0 {
            true => stream[1] | NO_FAT_CHAIN,
            false => stream[1] & !NO_FAT_CHAIN,
        };
        stream[8..16].copy_from_slice(&node.valid.to_le_bytes());
        stream[20..24].copy_from_slice(&node.first.to_le_bytes());
        stream[24..32].copy_from_slice(&node.size.unwrap_or(0).to_le_bytes());
        self.set.node = node;
    }

    /// Its last-modified time, with the 10 ms increment and the UTC offset.
    fn set_modified(&mut self, time: i64) {
        let (t, tens, offset) = stamp(time);
        self.bytes[12..16].copy_from_slice(&t.to_le_bytes());
        self.bytes[21] = tens;
        self.bytes[23] = offset;
    }
}

fn stat_of(set: &Set) -> Stat {
    let directory = set.attributes & ATTR_DIRECTORY != 0;
    Stat {
        directory,
        size: if directory {
            0
        } else {
            set.node.size.unwrap_or(0)
        },
        modified: set.modified,
        ..Stat::default()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A name as exFAT holds it, in UTF-16; one it cannot hold is EINVAL (or ENAMETOOLONG).
fn units_of(name: &str) -> io::Result<Vec<u16>> {
    if name.is_empty() || name.chars().any(crate::fs::fat::forbidden) {
        return Err(errno(libc::EINVAL));
    }
    let units: Vec<u16> = name.encode_utf16().collect();
    match units.len() {
        0..=255 => Ok(units),
        _ => Err(errno(libc::ENAMETOOLONG)),
    }
}

impl Folder {
    /// The entry set named `name`, as the up-case table matches names.
    fn find(&self, volume: &ExFat, name: &str) -> Option<Entry> {
        let upper = volume.upper(name);
        let i = self
            .sets
            .iter()
            .position(|s| volume.upper(&s.name) == upper)?;
        Some(self.entry(volume, i))
    }

    fn entry(&self, volume: &ExFat, i: usize) -> Entry {
        let set = &self.sets[i];
        let at = (set.index..set.index + set.entries)
            .map(|k| self.entry_at(volume, k))
            .collect();
        let bytes = self.bytes[set.index * ENTRY..(set.index + set.entries) * ENTRY].to_vec();
        Entry {
            at,
            bytes,
            set: Set {
                name: set.name.clone(),
                ..*set
            },
        }
    }

    /// Where its entry `k` is on the disk.
    fn entry_at(&self, volume: &ExFat, k: usize) -> u64 {
        let (at, cluster) = ((k * ENTRY) as u64, volume.layout.cluster);
        volume.layout.at(self.clusters[(at / cluster) as usize]) + at % cluster
    }

    /// The first entry of a run of `n` unused ones where a set can go: before the directory's
    /// end-of-directory mark or at it, as nothing past the mark is read.
    fn room(&self, n: usize) -> Option<usize> {
        let entries: Vec<u8> = self.bytes.chunks_exact(ENTRY).map(|e| e[0]).collect();
        let end = entries
            .iter()
            .position(|&t| t == 0)
            .unwrap_or(entries.len());
        let mut run = 0;
        for (k, &kind) in entries.iter().enumerate() {
            run = if kind & 0x80 == 0 { run + 1 } else { 0 };
            if run == n {
                return Some(k + 1 - n);
            }
            if k >= end + n {
                break;
            }
        }
        None
    }
}

impl State {
    fn cluster(&self) -> u64 {
        self.volume.layout.cluster
    }

    fn open_folder(&self, node: Node, own: Option<Entry>) -> io::Result<Folder> {
        let clusters = self.volume.dir_clusters(node)?;
        let bytes = self.folder_bytes(node, &clusters)?;
        let sets = sets_in(&bytes, node.first)?;
        Ok(Folder {
            node,
            clusters,
            bytes,
            sets,
            own,
        })
    }

    fn folder_bytes(&self, node: Node, clusters: &[u32]) -> io::Result<Vec<u8>> {
        let cluster = self.cluster();
        let len = node
            .size
            .unwrap_or(clusters.len() as u64 * cluster)
            .min(clusters.len() as u64 * cluster);
        let mut bytes = vec![0u8; len as usize];
        for (chunk, &c) in bytes.chunks_mut(cluster as usize).zip(clusters) {
            self.disk.read_exact_at(self.volume.layout.at(c), chunk)?;
        }
        Ok(bytes)
    }

    /// The folder at `path` ("" for the root).
    fn folder(&self, path: &str) -> io::Result<Folder> {
        let mut folder = self.open_folder(self.volume.root_node(), None)?;
        for name in components(path) {
            let entry = folder
                .find(&self.volume, name)
                .ok_or_else(|| errno(libc::ENOENT))?;
            if !entry.is_dir() {
                return Err(errno(libc::ENOTDIR));
            }
            folder = self.open_folder(entry.set.node, Some(entry))?;
        }
        Ok(folder)
    }

    /// The entry at `path` (not the root).
    fn entry(&self, path: &str) -> io::Result<Entry> {
        let (parent, name) = split(path);
        self.folder(parent)?
            .find(&self.volume, name)
            .ok_or_else(|| errno(libc::ENOENT))
    }

    fn file(&self, path: &str) -> io::Result<Entry> {
        match self.entry(path)? {
            e if e.is_dir() => Err(errno(libc::EISDIR)),
            e => Ok(e),
        }
    }

    /// Writes the set back, its checksum made whole.
    fn store(&self, entry: &mut Entry) -> io::Result<()> {
        seal(&mut entry.bytes);
        for (bytes, &at) in entry.bytes.chunks_exact(ENTRY).zip(&entry.at) {
            self.disk.write_all_at(at, bytes)?;
        }
        Ok(())
    }

    /// Marks the set's entries unused.
    fn unlink(&self, entry: &Entry) -> io::Result<()> {
        for (bytes, &at) in entry.bytes.chunks_exact(ENTRY).zip(&entry.at) {
            self.disk.write_all_at(at, &[bytes[0] & 0x7F])?;
        }
        Ok(())
    }

    fn in_use(&self, c: u32) -> bool {
        let bit = (c - 2) as usize;
        self.bitmap[bit / 8] & (1 << (bit % 8)) != 0
    }

    fn set_bit(&mut self, c: u32, used: bool) {
        let bit = (c - 2) as usize;
        match used {
            true => self.bitmap[bit / 8] |= 1 << (bit % 8),
            false => self.bitmap[bit / 8] &= !(1 << (bit % 8)),
        }
    }

    /// Writes the bytes of the bitmap that hold `clusters`' bits.
    fn write_bits(&self, clusters: &[u32]) -> io::Result<()> {
        let mut touched: Vec<usize> = clusters.iter().map(|&c| (c - 2) as usize / 8).collect();
        touched.sort_unstable();
        touched.dedup();
        let cluster = self.cluster() as usize;
        for &i in &touched {
            let at = self.bitmap_at[i / cluster] + (i % cluster) as u64;
            self.disk.write_all_at(at, &self.bitmap[i..=i])?;
        }
        Ok(())
    }

    /// Gives `clusters` back.
    fn release(&mut self, clusters: &[u32]) -> io::Result<()> {
        for &c in clusters {
            self.set_bit(c, false);
            self.lowest_free = self.lowest_free.min(c);
        }
        self.free += clusters.len() as u64;
        self.write_bits(clusters)
    }

    /// `count` free clusters, taken: those right after `after` while they are free, then the
    /// lowest free ones.
    fn take(&mut self, count: u64, after: Option<u32>) -> io::Result<Vec<u32>> {
        if count > self.free {
            return Err(errno(libc::ENOSPC));
        }
        let mut got = Vec::with_capacity(count as usize);
        if let Some(last) = after {
            let mut next = last + 1;
            while (got.len() as u64) < count && self.volume.layout.holds(next) && !self.in_use(next)
            {
                got.push(next);
                self.set_bit(next, true);
                next += 1;
            }
        }
        let mut c = self.lowest_free;
        while (got.len() as u64) < count && self.volume.layout.holds(c) {
            let bit = (c - 2) as usize;
            if bit.is_multiple_of(8) && self.bitmap[bit / 8] == 0xFF {
                c += 8;
                continue;
            }
            if !self.in_use(c) {
                got.push(c);
                self.set_bit(c, true);
            }
            c += 1;
        }
        if (got.len() as u64) < count {
            for &n in &got {
                self.set_bit(n, false);
            }
            return Err(bad(
                "exFAT allocation bitmap",
                0,
                "it counts more free clusters than it marks",
            ));
        }
        // Every cluster below `c` is in use now.
        self.lowest_free = c;
        self.free -= count;
        self.write_bits(&got)?;
        Ok(got)
    }

    /// Chains `clusters` in the FAT, in order, the last one ending the chain.
    fn chain(&self, clusters: &[u32]) -> io::Result<()> {
        let fat = self.volume.layout.fat;
        let mut i = 0;
        // Runs of consecutive clusters are written at once.
        while i < clusters.len() {
            let mut j = i + 1;
            while j < clusters.len() && clusters[j] == clusters[j - 1] + 1 {
                j += 1;
            }
            let bytes: Vec<u8> = (i..j)
                .flat_map(|k| {
                    clusters
                        .get(k + 1)
                        .copied()
                        .unwrap_or(END_OF_CHAIN)
                        .to_le_bytes()
                })
                .collect();
            let at = fat + u64::from(clusters[i]) * 4;
            self.disk.write_all_at(at, &bytes)?;
            i = j;
        }
        Ok(())
    }

    /// Clears the FAT entries of `clusters`.
    fn unchain(&self, clusters: &[u32]) -> io::Result<()> {
        let fat = self.volume.layout.fat;
        for &c in clusters {
            self.disk.write_all_at(fat + u64::from(c) * 4, &[0; 4])?;
        }
        Ok(())
    }

    /// Makes `node`'s clusters `have` number `want`: given back from the end, or added — after
    /// its last where they are free (a contiguous run stays one), elsewhere chained in the FAT.
    fn reallocate(&mut self, node: &mut Node, have: Vec<u32>, want: u64) -> io::Result<Vec<u32>> {
        let count = have.len() as u64;
        if want <= count {
            let (keep, gone) = have.split_at(want as usize);
            if !node.contiguous {
                if let Some(&last) = keep.last() {
                    self.chain(&[last])?;
                }
                self.unchain(gone)?;
            }
            self.release(gone)?;
            if keep.is_empty() {
                (node.first, node.contiguous) = (0, false);
            }
            return Ok(keep.to_vec());
        }
        let added = self.take(want - count, have.last().copied())?;
        let contiguous = (node.contiguous || have.is_empty())
            && added.windows(2).all(|w| w[1] == w[0] + 1)
            && have.last().is_none_or(|&last| added[0] == last + 1);
        let mut all = have;
        let joined = all.len().saturating_sub(1);
        all.extend(added);
        if !contiguous {
            // A run that was contiguous is chained from its start, a chain from its last.
            let from = if node.contiguous { 0 } else { joined };
            self.chain(&all[from..])?;
        }
        (node.first, node.contiguous) = (all[0], contiguous);
        Ok(all)
    }

    /// The file's clusters, all of them.
    fn clusters_of(&self, entry: &Entry) -> io::Result<Vec<u32>> {
        let node = entry.set.node;
        let count = entry.size().div_ceil(self.cluster());
        let clusters = self.volume.clusters(node, count, &entry.set.name)?;
        match clusters.len() as u64 == count {
            true => Ok(clusters),
            false => Err(bad(
                "exFAT cluster chain",
                self.volume.layout.fat,
                format!(
                    "{}: {} clusters for {} bytes",
                    entry.set.name,
                    clusters.len(),
                    entry.size()
                ),
            )),
        }
    }

    /// Makes the file `len` bytes long, all of them valid: what it grows by is zeroed.
    fn resize(&mut self, entry: &mut Entry, len: u64) -> io::Result<Vec<u32>> {
        let have = self.clusters_of(entry)?;
        let mut node = entry.set.node;
        let clusters = self.reallocate(&mut node, have, len.div_ceil(self.cluster()))?;
        if node.valid < len {
            self.zero(&clusters, node.valid, len)?;
        }
        node.size = Some(len);
        node.valid = len;
        entry.set_node(node);
        Ok(clusters)
    }

    /// Writes `data` at `offset` of the file whose clusters are `clusters`.
    fn put(&self, clusters: &[u32], mut offset: u64, mut data: &[u8]) -> io::Result<()> {
        let cluster = self.cluster();
        while !data.is_empty() {
            let (n, within) = ((offset / cluster) as usize, offset % cluster);
            let take = data.len().min((cluster - within) as usize);
            let at = self.volume.layout.at(clusters[n]) + within;
            self.disk.write_all_at(at, &data[..take])?;
            (offset, data) = (offset + take as u64, &data[take..]);
        }
        Ok(())
    }

    fn zero(&self, clusters: &[u32], from: u64, to: u64) -> io::Result<()> {
        let zeros = vec![0u8; ZEROS];
        let mut at = from;
        while at < to {
            let n = (to - at).min(ZEROS as u64) as usize;
            self.put(clusters, at, &zeros[..n])?;
            at += n as u64;
        }
        Ok(())
    }

    /// Adds `set` to `folder`, which grows a cluster at a time where it has no room.
    fn insert(&mut self, mut folder: Folder, set: &[u8]) -> io::Result<()> {
        let n = set.len() / ENTRY;
        loop {
            if let Some(k) = folder.room(n) {
                for (i, bytes) in set.chunks_exact(ENTRY).enumerate() {
                    let at = folder.entry_at(&self.volume, k + i);
                    self.disk.write_all_at(at, bytes)?;
                }
                return Ok(());
            }
            self.grow(&mut folder)?;
        }
    }

    /// One more cluster of zeros at the end of `folder`.
    fn grow(&mut self, folder: &mut Folder) -> io::Result<()> {
        let cluster = self.cluster();
        if folder.bytes.len() as u64 + cluster > MAX_DIR_BYTES {
            return Err(errno(libc::ENOSPC));
        }
        let mut node = folder.node;
        let have = folder.clusters.clone();
        let want = have.len() as u64 + 1;
        // The new cluster is zeroed before anything leads to it.
        let all = self.reallocate(&mut node, have, want)?;
        let added = *all.last().expect("grown");
        let zeros = vec![0u8; cluster as usize];
        self.disk
            .write_all_at(self.volume.layout.at(added), &zeros)?;
        if let Some(own) = folder.own.as_mut() {
            let len = want * cluster;
            node.size = Some(len);
            node.valid = len;
            own.set_node(node);
            self.store(own)?;
        }
        folder.node = node;
        folder.clusters = all;
        folder.bytes.extend(zeros);
        Ok(())
    }

    /// A new file or folder at `path`.
    fn create(&mut self, path: &str, directory: bool) -> io::Result<()> {
        let (parent, name) = split(path);
        let units = units_of(name)?;
        let folder = self.folder(parent)?;
        if folder.find(&self.volume, name).is_some() {
            return Err(errno(libc::EEXIST));
        }
        let (attributes, placed) = match directory {
            false => (ATTR_ARCHIVE, Placed::default()),
            true => {
                let first = self.take(1, None)?[0];
                let cluster = self.cluster();
                let zeros = vec![0u8; cluster as usize];
                let at = self.volume.layout.at(first);
                self.disk.write_all_at(at, &zeros)?;
                let len = cluster;
                (ATTR_DIRECTORY, Placed { first, len })
            }
        };
        let set = entry_set(&units, &self.volume.upcase, attributes, now(), placed);
        let inserted = self.insert(folder, &set);
        if inserted.is_err() && placed.first != 0 {
            self.release(&[placed.first])?;
        }
        inserted
    }

    fn remove(&mut self, path: &str) -> io::Result<()> {
        let entry = self.entry(path)?;
        let mut node = entry.set.node;
        let clusters = match entry.is_dir() {
            true => {
                let folder = self.open_folder(node, None)?;
                if !folder.sets.is_empty() {
                    return Err(errno(libc::ENOTEMPTY));
                }
                folder.clusters
            }
            false => self.clusters_of(&entry)?,
        };
        // Out of its folder first: a crash between the two leaves clusters lost, not shared.
        self.unlink(&entry)?;
        self.reallocate(&mut node, clusters, 0)?;
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let moving = self.entry(from)?;
        let (upper_from, upper_to) = (self.volume.upper(from), self.volume.upper(to));
        if let Ok(there) = self.entry(to) {
            if there.at != moving.at {
                match (moving.is_dir(), there.is_dir()) {
                    (false, true) => return Err(errno(libc::EISDIR)),
                    (true, false) => return Err(errno(libc::ENOTDIR)),
                    _ => self.remove(to)?,
                }
            }
        }
        if moving.is_dir() && (upper_to + "/").starts_with(&(upper_from + "/")) {
            // Into itself.
            return Err(errno(libc::EINVAL));
        }
        let (parent, name) = split(to);
        let units = units_of(name)?;
        let folder = self.folder(parent)?;
        let set = named(&moving.bytes, &units, &self.volume.upcase);
        // Into its new place before out of its old: a crash between leaves it at both.
        self.insert(folder, &set)?;
        self.unlink(&moving)
    }

    fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut entry = self.file(path)?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| errno(libc::EFBIG))?;
        let clusters = match end > entry.size() {
            true => self.resize(&mut entry, end)?,
            false => self.clusters_of(&entry)?,
        };
        let mut node = entry.set.node;
        if offset > node.valid {
            self.zero(&clusters, node.valid, offset)?;
        }
        self.put(&clusters, offset, data)?;
        node.valid = node.valid.max(end);
        entry.set_node(node);
        entry.set_modified(now());
        self.store(&mut entry)
    }

    fn set_len(&mut self, path: &str, len: u64) -> io::Result<()> {
        let mut entry = self.file(path)?;
        self.resize(&mut entry, len)?;
        entry.set_modified(now());
        self.store(&mut entry)
    }

    /// Writes the boot sector's volume flags, with the dirty flag set or not, and the share of
    /// the heap in use.
    fn mark_dirty(&self, dirty: bool) -> io::Result<()> {
        let flags = self.volume.layout.flags & !VOLUME_DIRTY;
        let flags = if dirty { flags | VOLUME_DIRTY } else { flags };
        let disk = &self.disk;
        disk.write_all_at(FLAGS_AT, &flags.to_le_bytes())?;
        let clusters = self.volume.layout.clusters.max(1);
        let percent = ((clusters - self.free) * 100 / clusters) as u8;
        disk.write_all_at(PERCENT_IN_USE_AT, &[percent])
    }
}

impl ExFatChange {
    /// The exFAT volume on `disk` (a partition), to be changed. One left dirty (not cleanly
    /// unmounted) is refused as PermissionDenied, to be mounted read-only.
    pub fn open(disk: Arc<dyn WriteAt>) -> io::Result<ExFatChange> {
        let volume = ExFat::open(disk.clone())?;
        let layout = volume.layout.clone();
        if layout.flags & VOLUME_DIRTY != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the exFAT volume was not cleanly unmounted: it is mounted read-only",
            ));
        }
        let heap_end = layout.heap + layout.clusters * layout.cluster;
        if heap_end > disk.size() || layout.fat + (layout.clusters + 2) * 4 > disk.size() {
            return Err(bad(
                "exFAT boot sector",
                92,
                format!(
                    "its heap ends at byte {heap_end}, past the volume's {}",
                    disk.size()
                ),
            ));
        }
        let what = "exFAT allocation bitmap";
        let (first, len) = volume
            .bitmap
            .ok_or_else(|| bad(what, 0, "the root directory names none"))?;
        let needed = layout.clusters.div_ceil(8);
        if len < needed {
            return Err(bad(
                what,
                0,
                format!(
                    "{len} bytes for {} clusters ({needed} needed)",
                    layout.clusters
                ),
            ));
        }
        let node = Node {
            first,
            size: Some(needed),
            valid: needed,
            contiguous: false,
        };
        let clusters = volume.clusters(node, needed.div_ceil(layout.cluster), what)?;
        if (clusters.len() as u64) < needed.div_ceil(layout.cluster) {
            return Err(bad(what, 0, "its chain ends before its length"));
        }
        let mut bitmap = vec![0u8; needed as usize];
        for (chunk, &c) in bitmap.chunks_mut(layout.cluster as usize).zip(&clusters) {
            disk.read_exact_at(layout.at(c), chunk)?;
        }
        let used = crate::fs::runs::count_set_bits(&bitmap, layout.clusters)?;
        let state = State {
            disk: disk.clone(),
            bitmap_at: clusters.iter().map(|&c| layout.at(c)).collect(),
            free: layout.clusters - used,
            lowest_free: 2,
            bitmap,
            volume,
        };
        state.mark_dirty(true)?;
        Ok(ExFatChange {
            label: state.volume.label(),
            disk,
            state: Mutex::new(Some(state)),
        })
    }

    fn state(&self) -> io::Result<MutexGuard<'_, Option<State>>> {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match guard.is_some() {
            true => Ok(guard),
            false => Err(errno(libc::EROFS)),
        }
    }

    /// Runs `f` on the open volume.
    fn with<T>(&self, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut guard = self.state()?;
        f(guard.as_mut().expect("open"))
    }
}

impl VolumeMut for ExFatChange {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn stat(&self, path: &str) -> io::Result<Stat> {
        self.with(|s| match components(path).next() {
            None => Ok(Stat {
                directory: true,
                ..Stat::default()
            }),
            Some(_) => Ok(s.entry(path)?.stat()),
        })
    }

    fn find(&self, parent: &str, name: &str) -> io::Result<(String, Stat)> {
        self.with(|s| {
            let entry = s
                .folder(parent)?
                .find(&s.volume, name)
                .ok_or_else(|| errno(libc::ENOENT))?;
            Ok((entry.set.name.clone(), entry.stat()))
        })
    }

    fn list(&self, path: &str) -> io::Result<Vec<(String, Stat)>> {
        self.with(|s| {
            let folder = s.folder(path)?;
            Ok(folder
                .sets
                .iter()
                .map(|set| (set.name.clone(), stat_of(set)))
                .collect())
        })
    }

    fn read(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|s| {
            let entry = s.file(path)?;
            let size = entry.size();
            if offset >= size {
                return Ok(0);
            }
            let n = buf.len().min((size - offset) as usize);
            let data = s.volume.data(entry.set.node, &entry.set.name)?;
            data.read_exact_at(offset, &mut buf[..n])?;
            Ok(n)
        })
    }

    fn write(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        self.with(|s| s.write(path, offset, data))
    }

    fn create_file(&self, path: &str) -> io::Result<()> {
        self.with(|s| s.create(path, false))
    }

    fn create_dir(&self, path: &str) -> io::Result<()> {
        self.with(|s| s.create(path, true))
    }

    fn set_len(&self, path: &str, len: u64) -> io::Result<()> {
        self.with(|s| s.set_len(path, len))
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        self.with(|s| s.remove(path))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.with(|s| s.rename(from, to))
    }

    fn set_modified(&self, path: &str, time: i64) -> io::Result<()> {
        self.with(|s| {
            if components(path).next().is_none() {
                // The root has no entry set to keep a time in.
                return Ok(());
            }
            let mut entry = s.entry(path)?;
            entry.set_modified(time);
            s.store(&mut entry)
        })
    }

    fn space(&self) -> io::Result<(u64, u64, u64)> {
        self.with(|s| {
            let cluster = s.cluster();
            Ok((
                s.volume.layout.clusters * cluster,
                s.free * cluster,
                cluster,
            ))
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.disk.sync()
    }

    fn close(&self) -> io::Result<()> {
        let taken = self.state.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(state) = taken {
            state.mark_dirty(false)?;
        }
        self.disk.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::exfat::{build, Options};
    use crate::io::FileSource;
    use std::collections::BTreeMap;

    /// What the reader finds: each path, with a file's bytes.
    fn read_back(disk: Arc<dyn WriteAt>) -> BTreeMap<String, Option<Vec<u8>>> {
        let volume = ExFat::open(disk).unwrap();
        let mut out = BTreeMap::new();
        let mut todo = vec![(String::new(), volume.root())];
        while let Some((path, dir)) = todo.pop() {
            for e in volume.read_dir(&dir).unwrap() {
                let p = format!("{path}/{}", e.name);
                match e.kind {
                    crate::fs::EntryKind::Directory => {
                        out.insert(p.clone(), None);
                        todo.push((p, e));
                    }
                    _ => {
                        let data = volume.open(&e).unwrap();
                        let mut bytes = vec![0u8; data.size() as usize];
                        data.read_exact_at(0, &mut bytes).unwrap();
                        out.insert(p, Some(bytes));
                    }
                }
            }
        }
        out
    }

    /// A blank volume takes more entries than the root's and a folder's first clusters hold,
    /// two files written in turn (so that one's clusters follow the other's and it is chained),
    /// truncates up and down, renames and removals: the reader finds what was made, and the
    /// space given back is free again.
    #[test]
    fn changes_read_back_as_they_were_made() {
        let built = build(
            None,
            &Options {
                volume_name: "KEY".into(),
                size: Some(8 << 20),
            },
            1_600_000_000,
        )
        .unwrap();
        let mut bytes = vec![0u8; built.volume.size() as usize];
        built.volume.read_exact_at(0, &mut bytes).unwrap();
        let file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut &file, &bytes).unwrap();
        let disk: Arc<dyn WriteAt> = Arc::new(FileSource::from_file(file).unwrap());
        let v = ExFatChange::open(disk.clone()).unwrap();
        let (_, free_at_first, _) = v.space().unwrap();
        let mut want: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        for i in 0..150 {
            let name = format!("a file with a longer name {i}.txt");
            v.create_file(&name).unwrap();
            want.insert(format!("/{name}"), Some(Vec::new()));
        }
        v.create_dir("folder").unwrap();
        want.insert("/folder".into(), None);
        for i in 0..60 {
            v.create_file(&format!("folder/{i}")).unwrap();
            want.insert(format!("/folder/{i}"), Some(Vec::new()));
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for k in 0..20u8 {
            v.write("folder/1", a.len() as u64, &[k; 5000]).unwrap();
            a.extend([k; 5000]);
            v.write("folder/2", b.len() as u64, &[k + 100; 7000])
                .unwrap();
            b.extend([k + 100; 7000]);
        }
        v.set_len("folder/1", 30_000).unwrap();
        a.truncate(30_000);
        v.set_len("folder/2", 200_000).unwrap();
        b.resize(200_000, 0);
        v.write("folder/2", 190_000, b"end").unwrap();
        b[190_000..190_003].copy_from_slice(b"end");
        want.insert("/folder/1".into(), Some(a));
        want.insert("/folder/2".into(), Some(b));
        v.rename("a file with a longer name 3.txt", "folder/moved")
            .unwrap();
        let moved = want.remove("/a file with a longer name 3.txt").unwrap();
        want.insert("/folder/moved".into(), moved);
        v.rename("folder/moved", "FOLDER/Moved").unwrap();
        let moved = want.remove("/folder/moved").unwrap();
        want.insert("/folder/Moved".into(), moved);
        for i in (10..150).step_by(2) {
            v.remove(&format!("a file with a longer name {i}.txt"))
                .unwrap();
            want.remove(&format!("/a file with a longer name {i}.txt"));
        }
        let refused = v.remove("folder").unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(libc::ENOTEMPTY));
        assert_eq!(
            v.find("", "FOLDER").unwrap().0,
            "folder",
            "found as the up-case table matches"
        );
        v.close().unwrap();
        assert_eq!(read_back(disk.clone()), want);

        let v = ExFatChange::open(disk.clone()).unwrap();
        for (path, _) in want.iter().rev() {
            v.remove(&path[1..]).unwrap();
        }
        let (_, free, cluster) = v.space().unwrap();
        // All is free again but what the root grew by: 150 sets of 5 entries and its own 3
        // took 6 clusters of 4 KiB where it had 1.
        assert_eq!(free_at_first - free, 5 * cluster);
        v.close().unwrap();
        assert!(read_back(disk).is_empty());
    }
}
