//! An HFS+ or HFSX volume changed in place (a read/write attach). Each change edits the catalog,
//! extents-overflow and attributes B-trees record by record ([`TreeFile`]) and the allocation
//! bitmap; metadata is held and written as one transaction at a sync, at close, or once enough
//! has gathered — through the journal on a journaled volume, replayed here first if a crash
//! left one. File data goes straight to its blocks; blocks a file gives up are not reused
//! before the commit that frees them. A volume left dirty without a journal is refused.

use super::bitmap::Bitmap;
use super::edit::{KeyOrder, TreeFile};
use super::journal::{Journal, JOURNALED};
use super::read::{HIDDEN_AT_ROOT, PRIVATE_DATA};
use super::store::Store;
use super::write::{
    attribute_in_blocks, attribute_key, catalog_key, file_record, folder_record, fork_data,
    inline_attribute, thread, ATTRIBUTE_EXTENTS, ATTRIBUTE_FORK, MAX_INLINE,
};
use super::{
    date, extent_pieces, hfs_name, mac_date, units, ALLOCATION_FORK, ALLOCATION_ID,
    ATTRIBUTES_FORK, ATTRIBUTES_ID, CATALOG_FORK, CATALOG_ID, EXTENTS_FORK, HEADER_AT, ROOT_FOLDER,
};
use crate::bytes::{be16, be32, be64, utf16_be};
use crate::error::FormatError;
use crate::fs::tree::RESOURCE_FORK;
use crate::fs::{components, errno, split, Stat, VolumeMut};
use crate::io::WriteAt;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

const UNMOUNTED: u32 = 1 << 8;
const INCONSISTENT: u32 = 1 << 11;
/// Metadata bytes gathered that make the operation that gathered them commit.
const COMMIT_AT: u64 = 2 << 20;
/// A file record's data and resource forks.
const DATA: u8 = 0;
const RESOURCE: u8 = 0xFF;
/// Folder paths remembered at most.
const FOLDERS_KEPT: usize = 1 << 16;
/// Zeros written at a time where a file grows past what was written.
const ZEROS: usize = 1 << 20;
/// A file hard link's Finder type and creator; the iNode files they stand for are in the
/// private data folder at the root.
const HARD_LINK: &[u8; 8] = b"hlnkhfs+";
/// The catalog record flag of an iNode file and its links since Mac OS X 10.5: the iNode keeps
/// its first link's ID (where a file keeps `reserved1`), each link the previous and next
/// link's (where a file keeps its owner and group), newest first.
const LINK_CHAIN: u16 = 0x0020;
/// The BSD owner flag UF_IMMUTABLE, which a link record carries.
const IMMUTABLE: u8 = 0x02;
/// The Finder flag kHasBeenInited, which a link record carries.
const INITED: u16 = 0x0100;
/// The BSD owner flag UF_COMPRESSED: the file's data is in its decmpfs attribute.
const COMPRESSED: u8 = 0x20;
/// A symbolic link's Finder type and creator.
const SYMLINK: &[u8; 8] = b"slnkrhap";
/// The catalog record flag: the file or folder has extended attributes.
const HAS_ATTRIBUTES: u16 = 0x0004;
/// The largest attribute value (Linux's XATTR_SIZE_MAX).
const MAX_VALUE: usize = 64 << 10;
/// The longest symlink target (macOS's PATH_MAX).
const MAX_LINK: usize = 1024;

fn fork_at(kind: u8) -> usize {
    if kind == DATA {
        88
    } else {
        168
    }
}

/// A catalog entry found by path: its key's parent and stored name, and its record.
struct Entry {
    parent: u32,
    name: Vec<u16>,
    data: Vec<u8>,
}

impl Entry {
    fn id(&self) -> u32 {
        be32(&self.data, 8)
    }
    fn is_folder(&self) -> bool {
        be16(&self.data, 0) == 1
    }
    fn is_file(&self) -> bool {
        be16(&self.data, 0) == 2
    }
    fn key(&self) -> Vec<u8> {
        catalog_key(self.parent, &self.name)
    }
    fn record(&self) -> Vec<u8> {
        let mut r = self.key();
        r.extend_from_slice(&self.data);
        r
    }
    /// The bytes of fork `kind` (a folder has none).
    fn fork_size(&self, kind: u8) -> u64 {
        if self.is_folder() {
            0
        } else {
            be64(&self.data, fork_at(kind))
        }
    }
    fn size(&self) -> u64 {
        self.fork_size(DATA)
    }
    /// A file hard link: its data and BSD information are its iNode file's.
    fn is_link(&self) -> bool {
        self.is_file() && &self.data[48..56] == HARD_LINK
    }
    fn is_symlink(&self) -> bool {
        self.is_file() && &self.data[48..56] == SYMLINK
    }
    /// A record's BSD `special` field: a link's iNode number, an iNode file's link count.
    fn special(&self) -> u32 {
        be32(&self.data, 44)
    }
    fn set_u32(&mut self, at: usize, value: u32) {
        self.data[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }
    fn has_chain(&self) -> bool {
        be16(&self.data, 2) & LINK_CHAIN != 0
    }
    fn stat(&self) -> Stat {
        // BSD information is set when the mode is (volumes made elsewhere may have none).
        let mode = u32::from(be16(&self.data, 42));
        Stat {
            directory: self.is_folder(),
            size: self.size(),
            modified: date(be32(&self.data, 16)),
            mode: (mode != 0).then_some(mode & 0o7777),
            owner: (mode != 0).then(|| (be32(&self.data, 32), be32(&self.data, 36))),
            symlink: self.is_symlink(),
            file_id: Some(u64::from(self.id())),
            links: None,
        }
    }
}

/// The record of a hard link to iNode file `inode` (file ID `id`), as Mac OS X writes one;
/// `chain` its previous and next links, where its iNode keeps a chain.
fn link_record(id: u32, inode: u32, chain: Option<(u32, u32)>) -> Vec<u8> {
    let (kind, creator) = HARD_LINK.split_at(4);
    let kind = Some((kind.try_into().expect("4"), creator.try_into().expect("4")));
    let (prev, next) = chain.unwrap_or((0, 0));
    let mut d = file_record(id, now(), prev, next, 0o100444, kind);
    let flags = be16(&d, 2) | if chain.is_some() { LINK_CHAIN } else { 0 };
    d[2..4].copy_from_slice(&flags.to_be_bytes());
    d[41] = IMMUTABLE;
    d[44..48].copy_from_slice(&inode.to_be_bytes());
    d[56..58].copy_from_slice(&INITED.to_be_bytes());
    d
}

/// A catalog leaf record split into key parts and data; `None` for a malformed one.
fn entry_of(record: &[u8]) -> Option<Entry> {
    let key_len = usize::from(be16(record, 0));
    let length = usize::from(be16(record.get(..8)?, 6));
    let name = record.get(8..8 + 2 * length)?;
    let data = record.get(2 + key_len..)?;
    let full = match be16(data.get(..2)?, 0) {
        1 => 88,
        2 => 248,
        _ => 2,
    };
    (data.len() >= full).then(|| Entry {
        parent: be32(record, 2),
        name: units(name),
        data: data.to_vec(),
    })
}

fn now() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    mac_date(t)
}

fn corrupt(what: &'static str, problem: impl Into<String>) -> io::Error {
    FormatError::io(what, 0, problem)
}

struct State {
    store: Store,
    bitmap: Bitmap,
    catalog: TreeFile,
    extents: TreeFile,
    attributes: Option<TreeFile>,
    /// The volume header as it is now; written at every commit.
    header: Vec<u8>,
    /// The volume's size in bytes (its alternate header is 1 KiB before the end).
    size: u64,
    /// Folder IDs by path, as looked up.
    folders: HashMap<String, u32>,
    /// The volume is marked in use: the first change marks it, so that a volume attached and
    /// never changed is left byte for byte as it was.
    in_use: bool,
}

pub struct HfsChange {
    label: String,
    /// None once closed.
    state: Mutex<Option<State>>,
}

impl HfsChange {
    /// The HFS+ or HFSX volume on `disk` (a partition), to be changed; a journal a crash left
    /// is replayed first. Refused, saying why, when it cannot be changed safely.
    pub fn open(disk: Arc<dyn WriteAt>) -> io::Result<HfsChange> {
        let mut header = vec![0u8; 512];
        disk.read_exact_at(HEADER_AT, &mut header)?;
        let binary_names = match &header[0..2] {
            b"H+" => false,
            b"HX" => true,
            _ => return Err(corrupt("HFS+ volume header", "has no H+ or HX signature")),
        };
        let block = u64::from(be32(&header, 40));
        if !(512..=1 << 20).contains(&block) || !block.is_power_of_two() {
            return Err(corrupt("HFS+ volume header", format!("block size {block}")));
        }
        let attributes = be32(&header, 4);
        let refuse = |why: &str| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("the volume {why}, so dimg attaches it read-only"),
            )
        };
        if attributes & INCONSISTENT != 0 {
            return Err(refuse(
                "is marked inconsistent (First Aid: dimg verify -fs)",
            ));
        }
        let journal = match attributes & JOURNALED != 0 && be32(&header, 12) != 0 {
            true => Some(
                Journal::open(&*disk, block, be32(&header, 12))?
                    .ok_or_else(|| refuse("keeps its journal on another device"))?,
            ),
            false if attributes & UNMOUNTED == 0 => {
                return Err(refuse(
                    "was not cleanly unmounted and has no journal (First Aid: dimg verify -fs)",
                ))
            }
            false => None,
        };
        let mut store = Store::new(disk.clone(), block, journal);
        if let Some(journal) = &mut store.journal {
            journal.initialize(&*disk, u64::from(be32(&header, 12)) * block)?;
            // What a crash left in the journal reaches the volume before anything is read.
            journal.replay(&*disk)?;
            disk.read_exact_at(HEADER_AT, &mut header)?;
        }
        let fork = |at: usize| -> Vec<(u32, u32)> {
            (0..8)
                .map(|i| {
                    (
                        be32(&header, at + 16 + 8 * i),
                        be32(&header, at + 20 + 8 * i),
                    )
                })
                .filter(|e| e.1 > 0)
                .collect()
        };
        let clump = |at: usize| u64::from(be32(&header, at + 8)).max(1 << 20);
        let extents = TreeFile::open(
            &mut store,
            "HFS+ extents B-tree",
            fork(EXTENTS_FORK),
            clump(EXTENTS_FORK),
            KeyOrder::Extents,
        )?;
        // The special files' own overflow extents, in the overflow tree like any file's.
        let all = |store: &mut Store, id: u32, at: usize| {
            full_extents(store, &extents, id, DATA, fork(at), be32(&header, at + 12))
        };
        let catalog_extents = all(&mut store, CATALOG_ID, CATALOG_FORK)?;
        let allocation = all(&mut store, ALLOCATION_ID, ALLOCATION_FORK)?;
        let attributes_extents = match be64(&header, ATTRIBUTES_FORK) {
            0 => None,
            _ => Some(all(&mut store, ATTRIBUTES_ID, ATTRIBUTES_FORK)?),
        };
        let mut catalog = TreeFile::open(
            &mut store,
            "HFS+ catalog B-tree",
            fork(CATALOG_FORK),
            clump(CATALOG_FORK),
            KeyOrder::Catalog {
                binary: binary_names,
            },
        )?;
        catalog.extents = catalog_extents;
        let attributes = match attributes_extents {
            Some(all) => Some(TreeFile::open(
                &mut store,
                "HFS+ attributes B-tree",
                all,
                clump(ATTRIBUTES_FORK),
                KeyOrder::Attributes,
            )?),
            None => None,
        };
        let mut state = State {
            bitmap: Bitmap::read(&mut store, allocation, be32(&header, 44))?,
            catalog,
            store,
            extents,
            attributes,
            size: disk.size(),
            header: header.clone(),
            folders: HashMap::new(),
            in_use: false,
        };
        // Folder hard links (Time Machine's "fdrp" records) are read as the folders they stand
        // for, and compressed files (decmpfs) as their decompressed bytes, neither of which this
        // writer keeps: such a volume is attached read-only rather than changed as if those were
        // plain files. File hard links are kept (see `target`).
        let mut kept_out = None;
        state
            .catalog
            .scan(&mut state.store, &catalog_key(0, &[]), |r| {
                kept_out = entry_of(r).filter(Entry::is_file).and_then(|e| {
                    match (&e.data[48..56] == b"fdrpMACS", e.data[41] & COMPRESSED != 0) {
                        (true, _) => Some("folder hard links"),
                        (_, true) => Some("compressed files (decmpfs)"),
                        _ => None,
                    }
                });
                kept_out.is_none()
            })?;
        if let Some(what) = kept_out {
            return Err(refuse(&format!(
                "holds {what}, which dimg does not change yet"
            )));
        }
        let root = state.entry_of_id(ROOT_FOLDER)?;
        let label = utf16_be(
            &root
                .name
                .iter()
                .flat_map(|u| u.to_be_bytes())
                .collect::<Vec<u8>>(),
        );
        Ok(HfsChange {
            label: label.replace('/', ":"),
            state: Mutex::new(Some(state)),
        })
    }

    fn state(&self) -> io::Result<MutexGuard<'_, Option<State>>> {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match guard.is_some() {
            true => Ok(guard),
            false => Err(errno(libc::EIO)),
        }
    }

    /// Runs a change with the volume, committing when enough metadata has gathered. A change
    /// the disk is too full for runs again after a commit has freed the blocks released since
    /// the last one (changes allocate before they change anything).
    fn change<T>(&self, f: impl Fn(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut guard = self.state()?;
        let state = guard.as_mut().expect("open");
        state.mark_in_use()?;
        let out = match f(state) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && state.bitmap.holds() => {
                state.commit()?;
                f(state)?
            }
            done => done?,
        };
        let block = state.store.block;
        let room = state
            .store
            .journal
            .as_ref()
            .map_or(u64::MAX, |j| j.capacity(block) / 2);
        if state.store.pending() >= COMMIT_AT.min(room) {
            state.commit()?;
        }
        Ok(out)
    }

    fn look<T>(&self, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut guard = self.state()?;
        f(guard.as_mut().expect("open"))
    }
}

impl State {
    /// Marks the volume as not cleanly unmounted until close says so, written at once so that
    /// a crash shows (a journaled volume is made whole by its journal instead).
    fn mark_in_use(&mut self) -> io::Result<()> {
        if self.in_use {
            return Ok(());
        }
        let attributes = self.header_u32(4) & !UNMOUNTED;
        self.set_header_u32(4, attributes);
        let version: &[u8; 4] = match self.store.journal {
            Some(_) => b"HFSJ",
            None => b"10.0",
        };
        self.header[8..12].copy_from_slice(version);
        self.in_use = true;
        self.commit()
    }

    fn header_u32(&self, at: usize) -> u32 {
        be32(&self.header, at)
    }
    fn set_header_u32(&mut self, at: usize, value: u32) {
        self.header[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }

    /// A fork's extents given anew: the first eight in its record, the rest in overflow
    /// records of eight (the old ones removed), and its size.
    fn set_fork(
        &mut self,
        entry: &mut Entry,
        kind: u8,
        size: u64,
        extents: &[(u32, u32)],
    ) -> io::Result<()> {
        let id = entry.id();
        let at = fork_at(kind);
        let old_blocks = be32(&entry.data, at + 12);
        let old_first: u64 = (0..8)
            .map(|i| u64::from(be32(&entry.data, at + 20 + 8 * i)))
            .sum();
        if u64::from(old_blocks) > old_first {
            let mut keys = Vec::new();
            self.extents
                .scan(&mut self.store, &overflow_key(id, kind, 0), |r| {
                    let ours = r.len() >= 12 && be32(r, 4) == id && r[2] == kind;
                    if ours {
                        keys.push(r[..12].to_vec());
                    }
                    ours
                })?;
            for k in keys {
                self.extents.remove(&mut self.store, &k)?;
            }
        }
        let blocks: u64 = extents.iter().map(|e| u64::from(e.1)).sum();
        let mut start = extents.iter().take(8).map(|e| e.1).sum::<u32>();
        for group in extents.get(8..).unwrap_or(&[]).chunks(8) {
            let mut r = overflow_key(id, kind, start);
            for &(s, c) in group {
                r.extend_from_slice(&s.to_be_bytes());
                r.extend_from_slice(&c.to_be_bytes());
            }
            r.resize(12 + 64, 0);
            self.extents.insert(&mut self.store, &mut self.bitmap, r)?;
            start += group.iter().map(|e| e.1).sum::<u32>();
        }
        let clump = be32(&entry.data, at + 8);
        let mut f = fork_data(size, blocks as u32, &extents[..extents.len().min(8)]);
        f[8..12].copy_from_slice(&clump.to_be_bytes());
        entry.data[at..at + 80].copy_from_slice(&f);
        Ok(())
    }

    fn fork_extents(&mut self, entry: &Entry, kind: u8) -> io::Result<Vec<(u32, u32)>> {
        let at = fork_at(kind);
        let first = (0..8)
            .map(|i| {
                (
                    be32(&entry.data, at + 16 + 8 * i),
                    be32(&entry.data, at + 20 + 8 * i),
                )
            })
            .filter(|e| e.1 > 0)
            .collect();
        full_extents(
            &mut self.store,
            &self.extents,
            entry.id(),
            kind,
            first,
            be32(&entry.data, at + 12),
        )
    }

    fn lookup(&mut self, parent: u32, name: &[u16]) -> io::Result<Option<Entry>> {
        let found = self
            .catalog
            .get(&mut self.store, &catalog_key(parent, name))?;
        Ok(found.as_deref().and_then(entry_of))
    }

    /// The record of catalog node `id`, found through its thread.
    fn entry_of_id(&mut self, id: u32) -> io::Result<Entry> {
        let t = self
            .catalog
            .get(&mut self.store, &catalog_key(id, &[]))?
            .ok_or_else(|| corrupt("HFS+ catalog", format!("node {id} has no thread record")))?;
        let d = &t[8..];
        if d.len() < 10 || !matches!(be16(d, 0), 3 | 4) {
            return Err(corrupt(
                "HFS+ catalog",
                format!("node {id}'s thread is malformed"),
            ));
        }
        let length = usize::from(be16(d, 8));
        let name =
            units(d.get(10..10 + 2 * length).ok_or_else(|| {
                corrupt("HFS+ catalog", format!("node {id}'s thread name is cut"))
            })?);
        self.lookup(be32(d, 4), &name)?
            .filter(|e| e.id() == id)
            .ok_or_else(|| {
                corrupt(
                    "HFS+ catalog",
                    format!("node {id}'s thread names no record"),
                )
            })
    }

    /// The entry at `path`: its folder found by ID (remembered), then one lookup.
    fn resolve(&mut self, path: &str) -> io::Result<Entry> {
        let path = components(path).collect::<Vec<_>>().join("/");
        if path.is_empty() {
            return self.entry_of_id(ROOT_FOLDER);
        }
        let (parent, name) = split(&path);
        let parent = self.folder_id(parent)?;
        self.lookup(parent, &hfs_name(name))?
            .ok_or_else(|| errno(libc::ENOENT))
    }

    /// The catalog ID of the folder at `path` (components joined by '/'), looked up once and
    /// remembered until a folder is moved or removed.
    fn folder_id(&mut self, path: &str) -> io::Result<u32> {
        if path.is_empty() {
            return Ok(ROOT_FOLDER);
        }
        if let Some(&id) = self.folders.get(path) {
            return Ok(id);
        }
        let (parent, name) = split(path);
        let parent = self.folder_id(parent)?;
        let e = self
            .lookup(parent, &hfs_name(name))?
            .ok_or_else(|| errno(libc::ENOENT))?;
        if !e.is_folder() {
            return Err(errno(libc::ENOTDIR));
        }
        if self.folders.len() >= FOLDERS_KEPT {
            self.folders.clear();
        }
        self.folders.insert(path.to_string(), e.id());
        Ok(e.id())
    }

    fn folder(&mut self, path: &str) -> io::Result<Entry> {
        let e = self.resolve(path)?;
        match e.is_folder() {
            true => Ok(e),
            false => Err(errno(libc::ENOTDIR)),
        }
    }

    fn file(&mut self, path: &str) -> io::Result<Entry> {
        let e = self.resolve(path)?;
        match e.is_folder() {
            true => Err(errno(libc::EISDIR)),
            false => self.target(e),
        }
    }

    /// What an entry stands for: a hard link's iNode file (its data, owner, mode and
    /// attributes), found by the number the link keeps; any other entry itself.
    fn target(&mut self, e: Entry) -> io::Result<Entry> {
        if !e.is_link() {
            return Ok(e);
        }
        let private = self
            .lookup(ROOT_FOLDER, &hfs_name(PRIVATE_DATA))?
            .filter(Entry::is_folder)
            .ok_or_else(|| corrupt("HFS+ catalog", "a hard link without the private folder"))?;
        let name = hfs_name(&format!("iNode{}", be32(&e.data, 44)));
        self.lookup(private.id(), &name)?
            .filter(Entry::is_file)
            .ok_or_else(|| corrupt("HFS+ catalog", "a hard link to a missing iNode file"))
    }

    /// The entry at `path` as it stands: a hard link as its iNode file.
    fn resolve_target(&mut self, path: &str) -> io::Result<Entry> {
        let e = self.resolve(path)?;
        self.target(e)
    }

    fn save(&mut self, entry: &Entry) -> io::Result<()> {
        self.catalog
            .replace(&mut self.store, &mut self.bitmap, entry.record())
    }

    /// Folder `id` gains (or loses) `delta` entries; `folders` of them folders.
    fn count_in(&mut self, id: u32, delta: i32, folder: bool) -> io::Result<()> {
        let mut f = self.entry_of_id(id)?;
        let valence = be32(&f.data, 4).saturating_add_signed(delta);
        f.data[4..8].copy_from_slice(&valence.to_be_bytes());
        // kHFSHasFolderCountMask: the folder also counts its subfolders.
        if folder && be16(&f.data, 2) & 0x10 != 0 {
            let folders = be32(&f.data, 84).saturating_add_signed(delta);
            f.data[84..88].copy_from_slice(&folders.to_be_bytes());
        }
        f.data[16..20].copy_from_slice(&now().to_be_bytes());
        self.save(&f)?;
        let at = if folder { 36 } else { 32 };
        let count = self.header_u32(at).saturating_add_signed(delta);
        self.set_header_u32(at, count);
        Ok(())
    }

    fn name_of(part: &str) -> io::Result<Vec<u16>> {
        let name = hfs_name(part);
        match name.len() {
            0 => Err(errno(libc::EINVAL)),
            1..=255 => Ok(name),
            _ => Err(errno(libc::ENAMETOOLONG)),
        }
    }

    /// The folder `path` goes in, and its name there (which must be free).
    fn new_place(&mut self, path: &str) -> io::Result<(u32, Vec<u16>)> {
        let (parent_path, part) = split(path);
        let parent = self.folder(parent_path)?;
        let name = Self::name_of(part)?;
        if self.lookup(parent.id(), &name)?.is_some() {
            return Err(errno(libc::EEXIST));
        }
        Ok((parent.id(), name))
    }

    /// The next catalog ID, taken.
    fn next_id(&mut self) -> io::Result<u32> {
        let id = self.header_u32(64);
        if id < 16 || id == u32::MAX {
            return Err(errno(libc::ENOSPC)); // catalog IDs used up (Apple's wrap needs a search)
        }
        self.set_header_u32(64, id + 1);
        Ok(id)
    }

    fn create(&mut self, path: &str, folder: bool) -> io::Result<Entry> {
        self.catalog.reserve(&mut self.store, &mut self.bitmap, 2)?;
        let (parent, name) = self.new_place(path)?;
        let id = self.next_id()?;
        let date = now();
        let data = match folder {
            true => folder_record(id, 0, date, 0, 0, 0o755),
            false => file_record(id, date, 0, 0, 0o100644, None),
        };
        self.add(Entry { parent, name, data })
    }

    /// Puts a new record and its thread in the catalog, counted in its folder.
    fn add(&mut self, entry: Entry) -> io::Result<Entry> {
        let folder = entry.is_folder();
        self.catalog
            .insert(&mut self.store, &mut self.bitmap, entry.record())?;
        let mut t = catalog_key(entry.id(), &[]);
        t.extend_from_slice(&thread(
            if folder { 3 } else { 4 },
            entry.parent,
            &entry.name,
        ));
        if let Err(e) = self.catalog.insert(&mut self.store, &mut self.bitmap, t) {
            // No room for the thread: the record goes too, leaving the catalog as it was.
            self.catalog.remove(&mut self.store, &entry.key())?;
            return Err(e);
        }
        self.count_in(entry.parent, 1, folder)?;
        Ok(entry)
    }

    /// The folder at the root that holds iNode files, made as Mac OS X makes it where a volume
    /// has none yet: invisible, its name locked, placed far off in Finder windows, immutable.
    fn private_folder(&mut self) -> io::Result<Entry> {
        let name = hfs_name(PRIVATE_DATA);
        if let Some(e) = self.lookup(ROOT_FOLDER, &name)? {
            return match e.is_folder() {
                true => Ok(e),
                false => Err(corrupt("HFS+ catalog", "the private data folder is a file")),
            };
        }
        let id = self.next_id()?;
        let mut data = folder_record(id, 0, now(), 0, 0, 0);
        data[41] = IMMUTABLE;
        data[56..58].copy_from_slice(&0x5000u16.to_be_bytes()); // kIsInvisible | kNameLocked
        data[58..62].copy_from_slice(&[0x40, 0, 0x40, 0]);
        self.add(Entry {
            parent: ROOT_FOLDER,
            name,
            data,
        })
    }

    /// Makes `new` a hard link to the file at `existing`. A file linked the first time becomes
    /// an iNode file in the private folder, keeping its ID, with a link left in its place.
    fn hard_link(&mut self, existing: &str, new: &str) -> io::Result<()> {
        // A private folder, the iNode moved, two links: each a record and a thread.
        self.catalog.reserve(&mut self.store, &mut self.bitmap, 8)?;
        let e = self.resolve(existing)?;
        if e.is_folder() {
            return Err(errno(libc::EPERM));
        }
        let (parent, name) = self.new_place(new)?;
        let mut inode = match e.is_link() {
            true => self.target(e)?,
            false => self.make_inode(e)?,
        };
        self.add_link(&mut inode, parent, name)?;
        self.save(&inode)
    }

    /// File `e` moved into the private folder as "iNode<ID>" (its ID, forks and attributes
    /// kept), a link left where it was.
    fn make_inode(&mut self, e: Entry) -> io::Result<Entry> {
        let private = self.private_folder()?.id();
        let name = hfs_name(&format!("iNode{}", e.id()));
        if self.lookup(private, &name)?.is_some() {
            return Err(corrupt(
                "HFS+ catalog",
                format!("iNode{} is there already", e.id()),
            ));
        }
        let (parent, place) = (e.parent, e.name.clone());
        self.catalog.remove(&mut self.store, &e.key())?;
        self.count_in(parent, -1, false)?;
        let mut inode = Entry {
            parent: private,
            name: name.clone(),
            data: e.data,
        };
        let flags = be16(&inode.data, 2) | LINK_CHAIN;
        inode.data[2..4].copy_from_slice(&flags.to_be_bytes());
        inode.set_u32(4, 0); // no first link yet
        inode.set_u32(44, 0); // no links yet
        self.catalog
            .insert(&mut self.store, &mut self.bitmap, inode.record())?;
        let mut t = catalog_key(inode.id(), &[]);
        t.extend_from_slice(&thread(4, private, &name));
        self.catalog.replace(&mut self.store, &mut self.bitmap, t)?;
        self.count_in(private, 1, false)?;
        self.add_link(&mut inode, parent, place)?;
        Ok(inode)
    }

    /// A new link to iNode file `inode` as `name` in folder `parent`, first in the chain.
    fn add_link(&mut self, inode: &mut Entry, parent: u32, name: Vec<u16>) -> io::Result<()> {
        let id = self.next_id()?;
        let chained = inode.has_chain();
        let first = if chained { be32(&inode.data, 4) } else { 0 };
        let data = link_record(id, inode.id(), chained.then_some((0, first)));
        self.add(Entry { parent, name, data })?;
        if first != 0 {
            let mut next = self.entry_of_id(first)?;
            next.set_u32(32, id);
            self.save(&next)?;
        }
        if chained {
            inode.set_u32(4, id);
        }
        inode.set_u32(44, inode.special().saturating_add(1));
        inode.data[20..24].copy_from_slice(&now().to_be_bytes());
        Ok(())
    }

    /// Removes hard link `link`: its chain closes over it, its iNode file counts one link
    /// fewer and goes with its last.
    fn remove_link(&mut self, link: Entry) -> io::Result<()> {
        let (id, prev, next) = (link.id(), be32(&link.data, 32), be32(&link.data, 36));
        let chained = link.has_chain();
        let mut inode = self.target(Entry {
            parent: link.parent,
            name: link.name.clone(),
            data: link.data.clone(),
        })?;
        self.catalog.remove(&mut self.store, &link.key())?;
        self.catalog
            .remove(&mut self.store, &catalog_key(id, &[]))?;
        self.count_in(link.parent, -1, false)?;
        if chained && inode.has_chain() {
            for (neighbour, at, value) in [(prev, 36, next), (next, 32, prev)] {
                if neighbour != 0 {
                    let mut e = self.entry_of_id(neighbour)?;
                    e.set_u32(at, value);
                    self.save(&e)?;
                }
            }
            if be32(&inode.data, 4) == id {
                inode.set_u32(4, next);
            }
        }
        match inode.special().saturating_sub(1) {
            0 => self.unlink(inode),
            links => {
                inode.set_u32(44, links);
                inode.data[20..24].copy_from_slice(&now().to_be_bytes());
                self.save(&inode)
            }
        }
    }

    /// What `e` says of itself, a hard link as its iNode file with its count of links.
    fn stat_of(&mut self, e: Entry) -> io::Result<Stat> {
        let link = e.is_link();
        let target = self.target(e)?;
        let mut stat = target.stat();
        if link {
            stat.links = Some(target.special());
        }
        Ok(stat)
    }

    /// Makes file `entry`'s data fork `size` bytes long, allocating or freeing blocks; bytes
    /// it gains read as zeros unless `written` (offset, length) is about to cover them.
    fn resize(
        &mut self,
        entry: &mut Entry,
        kind: u8,
        size: u64,
        written: Option<(u64, u64)>,
    ) -> io::Result<()> {
        let block = self.store.block;
        let old = entry.fork_size(kind);
        let mut extents = self.fork_extents(entry, kind)?;
        let held: u64 = extents.iter().map(|e| u64::from(e.1)).sum();
        let wanted = size.div_ceil(block);
        if wanted > u64::from(u32::MAX) {
            return Err(errno(libc::EFBIG));
        }
        let mut taken = Vec::new();
        if wanted > held {
            let after = extents.last().map(|&(s, c)| s + c);
            taken = self.bitmap.allocate((wanted - held) as u32, after)?;
            for &(start, count) in &taken {
                match extents.last_mut() {
                    Some(last) if last.0 + last.1 == start => last.1 += count,
                    _ => extents.push((start, count)),
                }
            }
        } else if wanted < held {
            let mut keep = wanted;
            let mut kept = Vec::new();
            for (start, count) in extents {
                let take = keep.min(u64::from(count)) as u32;
                if take > 0 {
                    kept.push((start, take));
                }
                self.bitmap.release(start + take, count - take);
                keep -= u64::from(take);
            }
            extents = kept;
        }
        // Zeros where the file grows and nothing is written: the blocks may hold old data.
        if size > old {
            let (skip_from, skip_to) = written.map_or((size, size), |(at, len)| (at, at + len));
            let zero = |from: u64, to: u64| -> io::Result<()> {
                let zeros = vec![0u8; ZEROS.min((to - from) as usize)];
                let mut at = from;
                while at < to {
                    let n = (to - at).min(ZEROS as u64);
                    self.write_pieces(&extents, at, &zeros[..n as usize])?;
                    at += n;
                }
                Ok(())
            };
            let zeroed = match skip_from > old {
                true => zero(old, skip_from.min(size)),
                false => Ok(()),
            }
            .and_then(|()| match skip_to < size {
                true => zero(skip_to.max(old), size),
                false => Ok(()),
            });
            if let Err(e) = zeroed {
                // Not grown: the blocks taken go back.
                taken.iter().for_each(|&(s, c)| self.bitmap.release(s, c));
                return Err(e);
            }
        }
        self.set_fork(entry, kind, size, &extents)
    }

    /// Writes `data` at `offset` of `entry`'s fork `kind`, the fork growing as needed.
    fn write_fork(
        &mut self,
        entry: &mut Entry,
        kind: u8,
        offset: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| errno(libc::EFBIG))?;
        if end > entry.fork_size(kind) {
            self.resize(entry, kind, end, Some((offset, data.len() as u64)))?;
        }
        let extents = self.fork_extents(entry, kind)?;
        self.write_pieces(&extents, offset, data)
    }

    /// Where `len` bytes from `offset` of `entry`'s fork `kind` are on the volume, cut at the
    /// fork's end: (offset, length) pieces and the bytes they hold.
    fn fork_pieces(
        &mut self,
        entry: &Entry,
        kind: u8,
        offset: u64,
        len: usize,
    ) -> io::Result<(Vec<(u64, u64)>, usize)> {
        let size = entry.fork_size(kind);
        let n = match offset < size {
            true => len.min((size - offset) as usize),
            false => 0,
        };
        let extents = self.fork_extents(entry, kind)?;
        let pieces = extent_pieces(&extents, self.store.block, offset, n as u64)
            .ok_or_else(|| corrupt("HFS+ file", "its size runs past its extents"))?;
        Ok((pieces, n))
    }

    /// Reads from `offset` of `entry`'s fork `kind` into `buf`: the bytes read.
    fn read_fork(
        &mut self,
        entry: &Entry,
        kind: u8,
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let (pieces, n) = self.fork_pieces(entry, kind, offset, buf.len())?;
        read_pieces(&*self.store.disk, &pieces, buf)?;
        Ok(n)
    }

    /// A fork whole, when it is small enough to hold (`most` bytes).
    fn fork_bytes(&mut self, entry: &Entry, kind: u8, most: usize) -> io::Result<Vec<u8>> {
        let size = entry.fork_size(kind);
        if size > most as u64 {
            return Err(errno(libc::E2BIG));
        }
        let mut bytes = vec![0u8; size as usize];
        self.read_fork(entry, kind, 0, &mut bytes)?;
        Ok(bytes)
    }

    fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        if target.is_empty() || target.len() > MAX_LINK {
            return Err(errno(libc::ENAMETOOLONG));
        }
        let mut e = self.create(path, false)?;
        e.data[48..56].copy_from_slice(SYMLINK);
        e.data[42..44].copy_from_slice(&0o120755u16.to_be_bytes());
        self.write_fork(&mut e, DATA, 0, target.as_bytes())?;
        self.save(&e)
    }

    /// Changes `path`'s BSD information with `change` (the record's bytes 32..48), setting
    /// the file type bits where a volume made elsewhere left the mode unset.
    fn set_bsd(&mut self, path: &str, change: impl FnOnce(&mut [u8])) -> io::Result<()> {
        let mut e = self.resolve_target(path)?;
        if be16(&e.data, 42) == 0 {
            let kind: u16 = match (e.is_folder(), e.is_symlink()) {
                (true, _) => 0o040755,
                (_, true) => 0o120755,
                _ => 0o100644,
            };
            e.data[42..44].copy_from_slice(&kind.to_be_bytes());
        }
        change(&mut e.data[32..48]);
        e.data[20..24].copy_from_slice(&now().to_be_bytes()); // attribute change date
        self.save(&e)
    }

    /// File `id`'s attribute records, whole; with a name, that attribute's only (its first
    /// record, then those with more of its value's extents).
    fn attribute_records(&mut self, id: u32, name: Option<&[u16]>) -> io::Result<Vec<Vec<u8>>> {
        let mut found = Vec::new();
        if let Some(tree) = &self.attributes {
            let from = attribute_key(id, name.unwrap_or(&[]), 0);
            tree.scan(&mut self.store, &from, |r| {
                let named = |n: &[u16]| {
                    let len = 2 * usize::from(be16(r, 12));
                    r.get(14..14 + len).is_some_and(|stored| units(stored) == n)
                };
                let ours = r.len() >= 14 && be32(r, 4) == id && name.is_none_or(named);
                if ours {
                    found.push(r.to_vec());
                }
                ours
            })?;
        }
        Ok(found)
    }

    /// Removes attribute `name` of file `id` (every attribute without a name), giving back the
    /// blocks a value of its own holds: whether there was one.
    fn remove_attributes(&mut self, id: u32, name: Option<&[u16]>) -> io::Result<bool> {
        let records = self.attribute_records(id, name)?;
        for r in &records {
            for (start, count) in attribute_extents(r) {
                self.bitmap.release(start, count);
            }
            if let Some(tree) = &mut self.attributes {
                tree.remove(&mut self.store, &r[..2 + usize::from(be16(r, 0))])?;
            }
        }
        Ok(!records.is_empty())
    }

    fn xattr_names(&mut self, path: &str) -> io::Result<Vec<String>> {
        let e = self.resolve_target(path)?;
        let mut names: Vec<String> = self
            .attribute_records(e.id(), None)?
            .iter()
            .filter(|r| be32(r, 8) == 0) // the first record of each attribute
            .map(|r| {
                let units = usize::from(be16(r, 12));
                utf16_be(r.get(14..14 + 2 * units).unwrap_or(&[]))
            })
            .collect();
        if e.fork_size(RESOURCE) > 0 {
            names.push(RESOURCE_FORK.to_string());
        }
        Ok(names)
    }

    fn xattr_get(&mut self, path: &str, name: &str) -> io::Result<Vec<u8>> {
        let e = self.resolve_target(path)?;
        if name == RESOURCE_FORK {
            return match e.fork_size(RESOURCE) {
                0 => Err(errno(libc::ENODATA)),
                _ => self.fork_bytes(&e, RESOURCE, MAX_VALUE),
            };
        }
        let units: Vec<u16> = name.encode_utf16().collect();
        let records = self.attribute_records(e.id(), Some(&units))?;
        let first = records.first().ok_or_else(|| errno(libc::ENODATA))?;
        let cut = || corrupt("HFS+ attributes B-tree", format!("{name} is cut short"));
        let d = first
            .get(2 + usize::from(be16(first, 0))..)
            .ok_or_else(cut)?;
        match d.get(..16).map(|_| be32(d, 0)) {
            Some(0x10) => {
                let len = be32(d, 12) as usize;
                d.get(16..16 + len).map(<[u8]>::to_vec).ok_or_else(cut)
            }
            Some(ATTRIBUTE_FORK) => {
                let size = be64(d, 8);
                if size > MAX_VALUE as u64 {
                    return Err(errno(libc::E2BIG));
                }
                let extents: Vec<(u32, u32)> =
                    records.iter().flat_map(|r| attribute_extents(r)).collect();
                let pieces = extent_pieces(&extents, self.store.block, 0, size).ok_or_else(cut)?;
                let mut value = vec![0u8; size as usize];
                read_pieces(&*self.store.disk, &pieces, &mut value)?;
                Ok(value)
            }
            _ => Err(corrupt(
                "HFS+ attributes B-tree",
                format!("{name} is a record of no known type"),
            )),
        }
    }

    fn xattr_set(&mut self, path: &str, name: &str, value: &[u8]) -> io::Result<()> {
        let mut e = self.resolve_target(path)?;
        if name == RESOURCE_FORK {
            if e.is_folder() {
                return Err(errno(libc::EPERM));
            }
            self.resize(&mut e, RESOURCE, 0, None)?;
            self.write_fork(&mut e, RESOURCE, 0, value)?;
            return self.save(&e);
        }
        let units: Vec<u16> = name.encode_utf16().collect();
        if units.is_empty() || units.len() > 127 {
            return Err(errno(libc::ERANGE));
        }
        if value.len() > MAX_VALUE {
            return Err(errno(libc::E2BIG));
        }
        let id = e.id();
        // A volume made without an attributes file keeps none.
        let tree = self
            .attributes
            .as_mut()
            .ok_or_else(|| errno(libc::ENOTSUP))?;
        tree.reserve(&mut self.store, &mut self.bitmap, 1)?;
        // A value too large for a record goes in blocks of its own, as macOS puts it: the first
        // record has its fork, each further one eight more extents.
        let mut records = Vec::new();
        if value.len() <= MAX_INLINE {
            let mut r = attribute_key(id, &units, 0);
            r.extend_from_slice(&inline_attribute(value));
            records.push(r);
        } else {
            let blocks = (value.len() as u64).div_ceil(self.store.block) as u32;
            let extents = self.bitmap.allocate(blocks, None)?;
            if let Err(failed) = self.write_pieces(&extents, 0, value) {
                extents.iter().for_each(|&(s, c)| self.bitmap.release(s, c));
                return Err(failed);
            }
            let first = &extents[..extents.len().min(8)];
            let mut r = attribute_key(id, &units, 0);
            let value_fork = fork_data(value.len() as u64, blocks, first);
            r.extend_from_slice(&attribute_in_blocks(ATTRIBUTE_FORK, &value_fork));
            records.push(r);
            let mut start: u32 = first.iter().map(|e| e.1).sum();
            for group in extents.get(8..).unwrap_or(&[]).chunks(8) {
                let mut more = [0u8; 64];
                for (i, &(s, c)) in group.iter().enumerate() {
                    more[8 * i..8 * i + 4].copy_from_slice(&s.to_be_bytes());
                    more[8 * i + 4..8 * i + 8].copy_from_slice(&c.to_be_bytes());
                }
                let mut r = attribute_key(id, &units, start);
                r.extend_from_slice(&attribute_in_blocks(ATTRIBUTE_EXTENTS, &more));
                records.push(r);
                start += group.iter().map(|e| e.1).sum::<u32>();
            }
        }
        let tree = self.attributes.as_mut().expect("checked");
        if let Err(full) = tree.reserve(&mut self.store, &mut self.bitmap, records.len() as u32) {
            for (start, count) in records.iter().flat_map(|r| attribute_extents(r)) {
                self.bitmap.release(start, count);
            }
            return Err(full);
        }
        self.remove_attributes(id, Some(&units))?;
        let tree = self.attributes.as_mut().expect("checked");
        for r in records {
            tree.insert(&mut self.store, &mut self.bitmap, r)?;
        }
        let flags = be16(&e.data, 2) | HAS_ATTRIBUTES;
        e.data[2..4].copy_from_slice(&flags.to_be_bytes());
        self.save(&e)
    }

    fn xattr_remove(&mut self, path: &str, name: &str) -> io::Result<()> {
        let mut e = self.resolve_target(path)?;
        if name == RESOURCE_FORK {
            if e.fork_size(RESOURCE) == 0 {
                return Err(errno(libc::ENODATA));
            }
            self.resize(&mut e, RESOURCE, 0, None)?;
            return self.save(&e);
        }
        let units: Vec<u16> = name.encode_utf16().collect();
        if !self.remove_attributes(e.id(), Some(&units))? {
            return Err(errno(libc::ENODATA));
        }
        if self.attribute_records(e.id(), None)?.is_empty() {
            let flags = be16(&e.data, 2) & !HAS_ATTRIBUTES;
            e.data[2..4].copy_from_slice(&flags.to_be_bytes());
            self.save(&e)?;
        }
        Ok(())
    }

    fn write_pieces(&self, extents: &[(u32, u32)], offset: u64, data: &[u8]) -> io::Result<()> {
        let pieces = extent_pieces(extents, self.store.block, offset, data.len() as u64)
            .ok_or_else(|| corrupt("HFS+ file", "data past its extents"))?;
        let mut done = 0usize;
        for (at, len) in pieces {
            self.store
                .disk
                .write_all_at(at, &data[done..done + len as usize])?;
            done += len as usize;
        }
        Ok(())
    }

    /// Frees every block of `entry`'s forks (a file's) and removes its attributes.
    fn free_all(&mut self, entry: &mut Entry) -> io::Result<()> {
        if !entry.is_folder() {
            for kind in [DATA, RESOURCE] {
                for (start, count) in self.fork_extents(entry, kind)? {
                    self.bitmap.release(start, count);
                }
                self.set_fork(entry, kind, 0, &[])?;
            }
        }
        self.remove_attributes(entry.id(), None)?;
        Ok(())
    }

    /// Removes `entry` (a file, or an empty folder) from the catalog.
    fn unlink(&mut self, mut entry: Entry) -> io::Result<()> {
        if entry.id() == ROOT_FOLDER {
            return Err(errno(libc::EBUSY));
        }
        if entry.is_link() {
            return self.remove_link(entry);
        }
        let folder = entry.is_folder();
        if folder && be32(&entry.data, 4) != 0 {
            return Err(errno(libc::ENOTEMPTY));
        }
        if folder {
            self.folders.clear();
        }
        self.free_all(&mut entry)?;
        self.catalog.remove(&mut self.store, &entry.key())?;
        self.catalog
            .remove(&mut self.store, &catalog_key(entry.id(), &[]))?;
        self.count_in(entry.parent, -1, folder)
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.catalog.reserve(&mut self.store, &mut self.bitmap, 2)?;
        let mut moving = self.resolve(from)?;
        if moving.id() == ROOT_FOLDER {
            return Err(errno(libc::EBUSY));
        }
        let (to_parent, part) = split(to);
        let parent = self.folder(to_parent)?;
        let name = Self::name_of(part)?;
        let folder = moving.is_folder();
        if folder {
            self.folders.clear();
            // A folder cannot go inside itself.
            let mut up = parent.id();
            for _ in 0..4096 {
                if up == moving.id() {
                    return Err(errno(libc::EINVAL));
                }
                if up == ROOT_FOLDER {
                    break;
                }
                up = self.entry_of_id(up)?.parent;
            }
        }
        if let Some(there) = self.lookup(parent.id(), &name)? {
            // Two links to one file: rename does nothing, as POSIX says.
            if there.is_link() && moving.is_link() && there.special() == moving.special() {
                return Ok(());
            }
            if there.id() != moving.id() {
                match (folder, there.is_folder()) {
                    (true, false) => return Err(errno(libc::ENOTDIR)),
                    (false, true) => return Err(errno(libc::EISDIR)),
                    _ => self.unlink(there)?,
                }
            }
        }
        self.catalog.remove(&mut self.store, &moving.key())?;
        let old_parent = moving.parent;
        (moving.parent, moving.name) = (parent.id(), name.clone());
        self.catalog
            .insert(&mut self.store, &mut self.bitmap, moving.record())?;
        let mut t = catalog_key(moving.id(), &[]);
        t.extend_from_slice(&thread(if folder { 3 } else { 4 }, parent.id(), &name));
        self.catalog.replace(&mut self.store, &mut self.bitmap, t)?;
        if old_parent != parent.id() {
            self.count_in(old_parent, -1, folder)?;
            self.count_in(parent.id(), 1, folder)?;
        }
        Ok(())
    }

    /// Writes the bitmap and the volume header, then every changed block as one transaction.
    fn commit(&mut self) -> io::Result<()> {
        self.bitmap.write(&mut self.store)?;
        self.set_header_u32(48, self.bitmap.free());
        for (at, tree) in [
            (EXTENTS_FORK, Some(&self.extents)),
            (CATALOG_FORK, Some(&self.catalog)),
            (ATTRIBUTES_FORK, self.attributes.as_ref()),
        ] {
            let Some(tree) = tree else { continue };
            let blocks: u32 = tree.extents.iter().map(|e| e.1).sum();
            let f = fork_data(
                tree.size(),
                blocks,
                &tree.extents[..tree.extents.len().min(8)],
            );
            self.header[at..at + 8].copy_from_slice(&f[..8]);
            self.header[at + 12..at + 80].copy_from_slice(&f[12..]);
        }
        self.set_header_u32(20, now());
        let writes = self.header_u32(68).wrapping_add(1);
        self.set_header_u32(68, writes);
        let header = self.header.clone();
        self.store.write(HEADER_AT, &header)?;
        self.store.commit()
    }

    fn list(&mut self, path: &str) -> io::Result<Vec<(String, Stat)>> {
        let folder = self.folder(path)?;
        let id = folder.id();
        let mut out = Vec::new();
        self.catalog
            .scan(&mut self.store, &catalog_key(id, &[]), |r| {
                if r.len() < 6 || be32(r, 2) != id {
                    return false;
                }
                if let Some(e) =
                    entry_of(r).filter(|e| !e.name.is_empty() && matches!(be16(&e.data, 0), 1 | 2))
                {
                    let name = String::from_utf16_lossy(&e.name).replace('/', ":");
                    if !(id == ROOT_FOLDER && HIDDEN_AT_ROOT.contains(&name.as_str())) {
                        out.push((name, e));
                    }
                }
                true
            })?;
        out.into_iter()
            .map(|(name, e)| Ok((name, self.stat_of(e)?)))
            .collect()
    }
}

/// Every extent of file `id`'s fork `kind`: the record's `first` eight, then the overflow
/// tree's, until they hold `blocks`.
fn full_extents(
    store: &mut Store,
    overflow: &TreeFile,
    id: u32,
    kind: u8,
    first: Vec<(u32, u32)>,
    blocks: u32,
) -> io::Result<Vec<(u32, u32)>> {
    let mut all = first;
    let held = |all: &[(u32, u32)]| all.iter().map(|e| u64::from(e.1)).sum::<u64>();
    if held(&all) >= u64::from(blocks) {
        return Ok(all);
    }
    let mut problem = None;
    overflow.scan(store, &overflow_key(id, kind, 0), |r| {
        if r.len() < 12 + 64 || be32(r, 4) != id || r[2] != kind {
            return false;
        }
        if u64::from(be32(r, 8)) != held(&all) {
            problem = Some(format!("file {id}'s overflow extents skip blocks"));
            return false;
        }
        all.extend(
            (0..8)
                .map(|i| (be32(r, 12 + 8 * i), be32(r, 16 + 8 * i)))
                .filter(|e| e.1 > 0),
        );
        held(&all) < u64::from(blocks)
    })?;
    match problem {
        Some(p) => Err(corrupt("HFS+ extents B-tree", p)),
        None if held(&all) < u64::from(blocks) => Err(corrupt(
            "HFS+ extents B-tree",
            format!("file {id} has {} of its {blocks} blocks", held(&all)),
        )),
        None => Ok(all),
    }
}

/// Reads `pieces` (volume offset, length) of `disk` one after another into `buf`.
fn read_pieces(disk: &dyn WriteAt, pieces: &[(u64, u64)], buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0usize;
    for &(at, len) in pieces {
        disk.read_exact_at(at, &mut buf[done..done + len as usize])?;
        done += len as usize;
    }
    Ok(())
}

/// An extents-overflow key: fork type, file ID, and the fork's first block it maps.
fn overflow_key(id: u32, kind: u8, start: u32) -> Vec<u8> {
    let mut k = vec![0, 10, kind, 0];
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(&start.to_be_bytes());
    k
}

/// The extents an attribute record holds of its value's blocks (none for a value inline).
fn attribute_extents(r: &[u8]) -> Vec<(u32, u32)> {
    let k = 2 + usize::from(be16(r, 0));
    let at = match r.get(k..k + 4).map(|_| be32(r, k)) {
        Some(ATTRIBUTE_FORK) => k + 24,
        Some(ATTRIBUTE_EXTENTS) => k + 8,
        _ => return Vec::new(),
    };
    r.get(at..at + 64).map_or_else(Vec::new, |e| {
        (0..8)
            .map(|i| (be32(e, 8 * i), be32(e, 8 * i + 4)))
            .filter(|e| e.1 > 0)
            .collect()
    })
}

impl VolumeMut for HfsChange {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn stat(&self, path: &str) -> io::Result<Stat> {
        self.look(|s| {
            let e = s.resolve(path)?;
            s.stat_of(e)
        })
    }

    fn find(&self, parent: &str, name: &str) -> io::Result<(String, Stat)> {
        self.look(|s| {
            let folder = s.folder(parent)?;
            let e = s
                .lookup(folder.id(), &hfs_name(name))?
                .ok_or_else(|| errno(libc::ENOENT))?;
            let name = String::from_utf16_lossy(&e.name).replace('/', ":");
            Ok((name, s.stat_of(e)?))
        })
    }

    fn list(&self, path: &str) -> io::Result<Vec<(String, Stat)>> {
        self.look(|s| s.list(path))
    }

    fn read(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        // Where the bytes are is found under the lock; they are read (and decrypted) outside
        // it, so that the kernel's read-ahead runs on every request thread at once. A read that
        // races a truncate of the same file and a commit may see blocks given to another file
        // since, as a read racing a write sees either.
        let (disk, pieces, n) = self.look(|s| {
            let e = s.file(path)?;
            let (pieces, n) = s.fork_pieces(&e, DATA, offset, buf.len())?;
            Ok((s.store.disk.clone(), pieces, n))
        })?;
        read_pieces(&*disk, &pieces, buf)?;
        Ok(n)
    }

    fn write(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        self.change(|s| {
            let mut e = s.file(path)?;
            let size = e.size();
            if let Err(failed) = s.write_fork(&mut e, DATA, offset, data) {
                // The blocks it took go back; the file keeps its size (a full disk under the
                // image fails the write after its blocks were counted).
                if e.size() != size {
                    s.resize(&mut e, DATA, size, None)?;
                }
                return Err(failed);
            }
            e.data[16..20].copy_from_slice(&now().to_be_bytes());
            s.save(&e)
        })
    }

    fn create_file(&self, path: &str) -> io::Result<()> {
        self.change(|s| s.create(path, false).map(drop))
    }

    fn create_dir(&self, path: &str) -> io::Result<()> {
        self.change(|s| s.create(path, true).map(drop))
    }

    fn set_len(&self, path: &str, len: u64) -> io::Result<()> {
        self.change(|s| {
            let mut e = s.file(path)?;
            if len != e.size() {
                s.resize(&mut e, DATA, len, None)?;
            }
            e.data[16..20].copy_from_slice(&now().to_be_bytes());
            s.save(&e)
        })
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        self.change(|s| {
            let e = s.resolve(path)?;
            s.unlink(e)
        })
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.change(|s| s.rename(from, to))
    }

    fn set_modified(&self, path: &str, time: i64) -> io::Result<()> {
        self.change(|s| {
            let mut e = s.resolve_target(path)?;
            e.data[16..20].copy_from_slice(&mac_date(time).to_be_bytes());
            s.save(&e)
        })
    }

    fn space(&self) -> io::Result<(u64, u64, u64)> {
        self.look(|s| {
            let block = s.store.block;
            Ok((
                u64::from(s.header_u32(44)) * block,
                u64::from(s.bitmap.free()) * block,
                block,
            ))
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.look(|s| {
            if s.in_use {
                s.commit()?;
            }
            s.store.disk.sync()
        })
    }

    fn symlink(&self, path: &str, target: &str) -> io::Result<()> {
        self.change(|s| s.symlink(path, target))
    }

    fn hard_link(&self, existing: &str, new: &str) -> io::Result<()> {
        self.change(|s| s.hard_link(existing, new))
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        self.look(|s| {
            let e = s.resolve_target(path)?;
            if !e.is_symlink() {
                return Err(errno(libc::EINVAL));
            }
            let target = s.fork_bytes(&e, DATA, MAX_LINK)?;
            Ok(String::from_utf8_lossy(&target).into_owned())
        })
    }

    fn set_mode(&self, path: &str, mode: u32) -> io::Result<()> {
        self.change(|s| {
            s.set_bsd(path, |p| {
                let kept = be16(p, 10) & 0o170000;
                p[10..12].copy_from_slice(&(kept | (mode & 0o7777) as u16).to_be_bytes());
            })
        })
    }

    fn set_owner(&self, path: &str, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        self.change(|s| {
            s.set_bsd(path, |p| {
                if let Some(uid) = uid {
                    p[0..4].copy_from_slice(&uid.to_be_bytes());
                }
                if let Some(gid) = gid {
                    p[4..8].copy_from_slice(&gid.to_be_bytes());
                }
            })
        })
    }

    fn xattr_names(&self, path: &str) -> io::Result<Vec<String>> {
        self.look(|s| s.xattr_names(path))
    }

    fn xattr_get(&self, path: &str, name: &str) -> io::Result<Vec<u8>> {
        self.look(|s| s.xattr_get(path, name))
    }

    fn xattr_set(&self, path: &str, name: &str, value: &[u8]) -> io::Result<()> {
        self.change(|s| s.xattr_set(path, name, value))
    }

    fn xattr_remove(&self, path: &str, name: &str) -> io::Result<()> {
        self.change(|s| s.xattr_remove(path, name))
    }

    fn close(&self) -> io::Result<()> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut s) = guard.take() else {
            return Ok(());
        };
        if s.in_use {
            let clean = s.header_u32(4) | UNMOUNTED;
            s.set_header_u32(4, clean);
            s.commit()?;
            // The alternate header, 1 KiB before the volume's end, as the last step.
            s.store.disk.write_all_at(s.size - 1024, &s.header)?;
        }
        s.store.disk.finish()
    }
}
