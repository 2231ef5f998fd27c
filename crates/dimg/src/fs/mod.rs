//! File systems: a partition mounted read-only as a [`Volume`], one module per file system.
//! [`identify`] names what a partition holds even where no reader exists yet.

pub mod apfs;
pub mod check;
pub mod cpio;
pub mod decmpfs;
pub mod exfat;
pub mod ext;
pub mod fat;
pub mod finder;
pub mod hfs;
pub mod hfsplus;
pub mod iso9660;
pub mod mfs;
pub mod ntfs;
pub(crate) mod runs;
pub mod tree;
pub mod udf;
pub mod xar;

use crate::error::FormatError;
use crate::io::ReadAt;
use crate::magic::{self, Layer, Signature, Sniff};
use crate::partition::{self, Partition};
use serde::Serialize;
use std::any::Any;
use std::io;
use std::sync::Arc;
use unicode_normalization::UnicodeNormalization;

/// What a directory entry is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "target")]
pub enum EntryKind {
    File,
    Directory,
    /// A symbolic link and its target, as stored.
    Symlink(String),
    /// A device, FIFO or socket ("character device", ...): listed, never extracted.
    Special(String),
}

/// How a volume finds an entry again: opaque, made and read only by the volume that listed it.
/// Entries are addressed by handle, not by path, because a name may hold any character — '/'
/// included.
#[derive(Clone)]
pub struct Handle(pub(crate) Arc<dyn Any + Send + Sync>);

impl Handle {
    pub(crate) fn new<T: Any + Send + Sync>(what: T) -> Self {
        Handle(Arc::new(what))
    }

    /// What the volume put in the handle, if this volume made it.
    pub(crate) fn get<T: Any>(&self) -> io::Result<&T> {
        self.0.downcast_ref::<T>().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "an entry of another volume")
        })
    }
}

impl DirEntry {
    /// A volume's root folder: no name, no times of its own.
    pub(crate) fn root(inode: u64, size: u64, handle: Handle) -> Self {
        DirEntry {
            name: String::new(),
            kind: EntryKind::Directory,
            size,
            modified: None,
            mode: None,
            owner: None,
            links: 1,
            inode,
            streams: Vec::new(),
            handle,
        }
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handle")
    }
}

/// One directory entry.
#[derive(Clone, Debug, Serialize)]
pub struct DirEntry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Seconds since 1970, UTC.
    pub modified: Option<i64>,
    /// POSIX permission bits, where the file system keeps them.
    pub mode: Option<u32>,
    /// Owner and group IDs, where the file system keeps them.
    #[serde(skip)]
    pub owner: Option<(u32, u32)>,
    /// How many names the file has (hard links); they all share `inode`.
    #[serde(skip)]
    pub links: u32,
    /// What the file system identifies the entry by (an extent address, a catalog node ID): two
    /// entries with the same one are the same directory, which is how loops are caught.
    pub inode: u64,
    /// Named data beside the contents: extended attributes, an HFS+ resource fork ("rsrc").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<Stream>,
    #[serde(skip)]
    pub handle: Handle,
}

/// A named stream of an entry: an extended attribute or a resource fork.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stream {
    pub name: String,
    pub size: u64,
}

/// The files and folders a volume's header says it holds (the root folder not counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub files: u64,
    pub folders: u64,
}

/// A snapshot of a volume: its name, the transaction it keeps, when it was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub name: String,
    pub xid: u64,
    /// Seconds since 1970, UTC.
    pub created: Option<i64>,
}

/// A mounted, read-only file system.
pub trait Volume: Send + Sync {
    fn label(&self) -> String;
    fn root(&self) -> DirEntry;
    /// The entries of a directory this volume listed.
    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>>;
    /// The contents of a file this volume listed, as a byte source.
    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>>;
    /// Whether "a" and "A" name different entries (HFSX with binary keys, ISO 9660); lookups
    /// on the others ignore case, as their own systems do.
    fn case_sensitive(&self) -> bool {
        true
    }
    /// A name as the volume compares names that ignore case (exFAT through its up-case table):
    /// two names are the same when they fold alike. None: Unicode's lower case.
    fn fold_case(&self, _name: &str) -> Option<String> {
        None
    }
    /// What a reader of this volume should know: e.g. changes a journal holds that are not in
    /// the volume yet.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// What the volume says about itself beyond its files, for `info` (an installer package's
    /// identifiers and versions).
    fn facts(&self) -> Vec<crate::container::Fact> {
        Vec::new()
    }
    /// Bytes in use, as the file system accounts them.
    fn used(&self) -> Option<u64> {
        None
    }
    /// How many files and folders it holds, where its header keeps count (HFS, HFS+, APFS):
    /// read, not counted, so a damaged header's figures are what it says.
    fn counts(&self) -> Option<Counts> {
        None
    }
    /// Bytes free for it to grow into, where that is not simply its partition less what it uses
    /// (the volumes of an APFS container share the container's free space).
    fn available(&self) -> Option<u64> {
        None
    }
    /// The byte ranges `(offset, length)` its allocation map marks free, in order: what
    /// `compact` may give back.
    fn free_extents(&self) -> io::Result<Vec<(u64, u64)>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "dimg does not read this file system's free space",
        ))
    }
    /// Its snapshots (APFS), oldest first.
    fn snapshots(&self) -> io::Result<Vec<Snapshot>> {
        Ok(Vec::new())
    }
    /// The volume as snapshot `xid` (a transaction) keeps it, read-only like the live one.
    fn at_snapshot(&self, _xid: u64) -> io::Result<Box<dyn Volume>> {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the volume has no snapshots",
        ))
    }
    /// The part the volume plays in its container, as Disk Utility names it ("Data", "Preboot").
    fn role(&self) -> Option<&'static str> {
        None
    }
    /// Whether the volume's contents are encrypted (and so cannot be listed without its key).
    fn encrypted(&self) -> bool {
        false
    }
    /// Why an encrypted volume cannot be read yet, as every read of it would fail: a passphrase
    /// is needed, the one given is wrong, or nothing unlocks it here. None once it is unlocked,
    /// and for a volume that is not encrypted.
    fn locked(&self) -> Option<io::Error> {
        None
    }
    /// Unlocks an encrypted volume with `passphrase`; where that fails, [`Volume::locked`]
    /// says why.
    fn unlock(&mut self, _passphrase: &crate::secret::Passphrase) {}
    /// The hint an encrypted volume keeps for its password, shown to whoever is asked for it.
    fn passphrase_hint(&self) -> Option<String> {
        None
    }
    /// A bootable disc's boot images (El Torito) as files, named as 7-Zip names them. They are
    /// not in the volume's tree: `extract -boot` takes them out.
    fn boot_files(&self) -> io::Result<Vec<DirEntry>> {
        Ok(Vec::new())
    }
    /// One of the entry's named streams.
    fn open_stream(&self, entry: &DirEntry, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no stream {name}", entry.name),
        ))
    }
}

/// What a volume changed in place says of one of its entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub directory: bool,
    pub size: u64,
    /// Seconds since 1970.
    pub modified: Option<i64>,
    /// What a volume that keeps BSD information says (HFS+): permission bits, owner and group.
    pub mode: Option<u32>,
    pub owner: Option<(u32, u32)>,
    /// A symbolic link, whose data is its target.
    pub symlink: bool,
    /// The file's number on the volume, the same at each of its paths (HFS+'s catalog ID).
    pub file_id: Option<u64>,
    /// How many paths name the file, where hard links make it more than one.
    pub links: Option<u32>,
}

/// A volume changed in place (a read/write attach), addressed by '/'-separated paths from its
/// root ("" is the root). Every change is written through to the disk under it; `sync` makes
/// them durable, and `close` also writes what the volume keeps in memory, after the last change.
pub trait VolumeMut: Send + Sync {
    fn label(&self) -> String;
    fn stat(&self, path: &str) -> io::Result<Stat>;
    /// Entry `name` of folder `parent`, found as the volume matches names (FAT: regardless of
    /// case): its name as stored, and what it is.
    fn find(&self, parent: &str, name: &str) -> io::Result<(String, Stat)>;
    /// A folder's entries, "." and ".." left out.
    fn list(&self, path: &str) -> io::Result<Vec<(String, Stat)>>;
    fn read(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes `data` at `offset`, the file growing (with zeros before it) as needed.
    fn write(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()>;
    /// A new empty file; an error if the name is taken.
    fn create_file(&self, path: &str) -> io::Result<()>;
    fn create_dir(&self, path: &str) -> io::Result<()>;
    fn set_len(&self, path: &str, len: u64) -> io::Result<()>;
    /// Removes a file or an empty folder.
    fn remove(&self, path: &str) -> io::Result<()>;
    /// Moves `from` to `to`, replacing a file (or an empty folder) there.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    fn set_modified(&self, path: &str, time: i64) -> io::Result<()>;
    /// Bytes in all, bytes free, and the allocation unit.
    fn space(&self) -> io::Result<(u64, u64, u64)>;
    fn sync(&self) -> io::Result<()>;
    fn close(&self) -> io::Result<()>;
    /// A symbolic link at `path` to `target` (volumes without links: ENOTSUP).
    fn symlink(&self, _path: &str, _target: &str) -> io::Result<()> {
        Err(errno(libc::ENOTSUP))
    }
    fn read_link(&self, _path: &str) -> io::Result<String> {
        Err(errno(libc::EINVAL))
    }
    /// `new` names the file at `existing` too (volumes without hard links: EPERM, as Linux's
    /// FAT says).
    fn hard_link(&self, _existing: &str, _new: &str) -> io::Result<()> {
        Err(errno(libc::EPERM))
    }
    /// Permission bits and owner, where the volume keeps them; elsewhere nothing changes, as
    /// on a FAT volume Linux mounts.
    fn set_mode(&self, _path: &str, _mode: u32) -> io::Result<()> {
        Ok(())
    }
    fn set_owner(&self, _path: &str, _uid: Option<u32>, _gid: Option<u32>) -> io::Result<()> {
        Ok(())
    }
    /// Extended attributes, where the volume keeps them.
    fn xattr_names(&self, _path: &str) -> io::Result<Vec<String>> {
        Ok(Vec::new())
    }
    fn xattr_get(&self, _path: &str, _name: &str) -> io::Result<Vec<u8>> {
        Err(errno(libc::ENODATA))
    }
    fn xattr_set(&self, _path: &str, _name: &str, _value: &[u8]) -> io::Result<()> {
        Err(errno(libc::ENOTSUP))
    }
    fn xattr_remove(&self, _path: &str, _name: &str) -> io::Result<()> {
        Err(errno(libc::ENODATA))
    }
}

const MAX_DEPTH: usize = 256;

/// The entry a '/'-separated path names, from the root.
pub fn lookup(volume: &dyn Volume, path: &str) -> io::Result<DirEntry> {
    let mut entry = volume.root();
    for (depth, part) in components(path).enumerate() {
        if depth >= MAX_DEPTH || entry.kind != EntryKind::Directory {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{path}: not a folder on the volume"),
            ));
        }
        let entries = volume.read_dir(&entry)?;
        // As typed first; then as the same text in any Unicode form (HFS+ stores names
        // decomposed, people type them composed); then, where the volume ignores case, in any case.
        let typed: String = part.nfd().collect();
        let folded = typed.to_lowercase();
        let exact = entries.iter().position(|e| e.name == part);
        let same_text = || entries.iter().position(|e| e.name.nfd().eq(typed.chars()));
        let any_case = || {
            (!volume.case_sensitive())
                .then(|| match volume.fold_case(part) {
                    Some(key) => entries
                        .iter()
                        .position(|e| volume.fold_case(&e.name).as_ref() == Some(&key)),
                    None => entries
                        .iter()
                        .position(|e| e.name.nfd().collect::<String>().to_lowercase() == folded),
                })
                .flatten()
        };
        entry = exact
            .or_else(same_text)
            .or_else(any_case)
            .map(|i| entries[i].clone())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{path}: no such file on the volume"),
                )
            })?;
    }
    Ok(entry)
}

/// The file system at the start of `part`, if its magic number is known.
pub fn identify(part: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let sniff = Sniff::read(part)?;
    Ok(magic::identify(&sniff)
        .into_iter()
        .find(|s| s.layer() == Layer::FileSystem))
}

/// Every place a volume can be: the whole disk (index 0) when a file system spans it across a
/// partition map — the ISO 9660 side of a hybrid CD, whose HFS+ side is a partition — then the
/// map's partitions.
pub fn places(disk: &dyn ReadAt) -> io::Result<(&'static str, Vec<Partition>)> {
    let (scheme, mut parts) = partition::scan(disk)?;
    if !parts.iter().any(|p| p.index == 0) && identify(disk)?.is_some() {
        parts.insert(0, Partition::whole(disk.size()));
    }
    Ok((scheme, parts))
}

/// Mounts the file system on `part`: its volumes, one for most file systems, every volume of an
/// APFS container. None when no file system is recognised; an error naming it when it is
/// recognised but cannot be browsed yet. `disc` is the whole CD when `part` is its first track.
pub fn mount(
    part: Arc<dyn ReadAt>,
    disc: Option<Arc<dyn iso9660::DiscSectors>>,
) -> io::Result<Vec<Box<dyn Volume>>> {
    fn one(v: impl Volume + 'static) -> io::Result<Vec<Box<dyn Volume>>> {
        Ok(vec![Box::new(v)])
    }
    match identify(&*part)? {
        None => Ok(Vec::new()),
        Some(Signature::Iso9660) => {
            // A UDF bridge disc shows UDF's tree first, as macOS does; its ISO 9660 side is
            // the next volume.
            let iso: Box<dyn Volume> = Box::new(iso9660::Iso9660::open(part.clone(), disc)?);
            match bridge(&part) {
                Some(udf) => Ok(vec![Box::new(udf), iso]),
                None => Ok(vec![iso]),
            }
        }
        Some(Signature::Udf) => one(udf::Udf::open(part)?),
        Some(Signature::HfsPlus | Signature::Hfsx) => one(hfsplus::HfsPlus::open(part)?),
        Some(Signature::Fat) => one(fat::Fat::open(part)?),
        Some(Signature::ExFat) => one(exfat::ExFat::open(part)?),
        Some(Signature::Ntfs) => one(ntfs::Ntfs::open(part)?),
        Some(Signature::Ext) => one(ext::Ext::open(part)?),
        Some(Signature::Hfs) => Ok(vec![hfs::open(part)?]),
        Some(Signature::Mfs) => one(mfs::Mfs::open(part)?),
        Some(Signature::Xar) => one(xar::Xar::open(part)?),
        Some(Signature::Cpio) => one(cpio::Cpio::payload(part, "cpio archive")?),
        Some(Signature::Apfs) => Ok(apfs::open(part)?
            .into_iter()
            .map(|v| Box::new(v) as Box<dyn Volume>)
            .collect()),
        Some(other) => Err(FormatError::io(
            "file system",
            0,
            format!("{} volumes cannot be browsed yet", other.name()),
        )),
    }
}

/// The UDF side of a disc whose first volume is ISO 9660, where it has one dimg can read.
fn bridge(part: &Arc<dyn ReadAt>) -> Option<udf::Udf> {
    let sniff = Sniff::read(&**part).ok()?;
    magic::identify(&sniff)
        .contains(&Signature::Udf)
        .then(|| udf::Udf::open(part.clone()).ok())
        .flatten()
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC civil time from seconds since 1970: (year, month, day, hour, minute, second).
pub fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400) as u32);
    // Howard Hinnant's algorithm, the inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

/// A fixed-width label field as people read it: without the spaces or NULs that pad it.
pub(crate) fn label_text(field: &str) -> String {
    field.trim_end_matches([' ', '\0']).to_string()
}

/// An error of the system's kind `code` (ENOENT, ENOTDIR...), as FUSE passes on.
pub(crate) fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// A path's parent and its last name ("" and the name for one in the root).
pub(crate) fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// The parts of a volume path, without empty or "." components.
pub fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}
