//! APFS, read-only (formats.md §h.2, Apple File System Reference): a container holds up to 100
//! volumes, each a [`Volume`]. A volume's file-system tree keys every record by object id and
//! type: inodes, directory records, extended attributes and file extents. Files are read from
//! their extents (a missing extent or physical block 0 is a hole), or through decmpfs when
//! compressed; symlinks keep their target in an attribute. Nothing is cached but the superblocks:
//! each listing walks the tree, which the object maps keep short.

mod block;
mod btree;
mod check;
mod checkpoint;
mod crypto;
mod write;
mod xts;

use super::{decmpfs, Counts, DirEntry, EntryKind, Handle, Snapshot, Stream, Volume};
use crate::bytes::{le16, le32, le64};
use crate::io::{Concat, ReadAt, Slice, Zeros};
use crate::secret::{Locked, Passphrase};
/// The Fletcher-64 checksum an APFS block's first 8 bytes must hold: for tools and tests that
/// make blocks.
pub use block::fletcher64 as checksum;
use block::{bad, FS};
use btree::{scan, Omap, Pointers};
pub use check::check;
use checkpoint::Container;
use crypto::Ciphered;
use std::cmp::Ordering;
use std::io;
use std::sync::{Arc, Mutex};
use unicode_normalization::UnicodeNormalization;
pub use write::{build, Options};
use xts::XtsKey;

const ROOT_DIR: u64 = 2;
const INODE: u8 = 3;
const XATTR: u8 = 4;
const FILE_EXTENT: u8 = 8;
const DIR_REC: u8 = 9;
const SNAP_METADATA: u8 = 1;
/// `j_inode_val_t` extended field holding the data stream (its size).
const INO_EXT_TYPE_DSTREAM: u8 = 8;
const XATTR_DATA_STREAM: u16 = 0x1;
const XATTR_DATA_EMBEDDED: u16 = 0x2;
/// BSD flag: the data is in the decmpfs attribute (and resource fork), not the data stream.
const UF_COMPRESSED: u32 = 0x20;
const INCOMPAT_CASE_INSENSITIVE: u64 = 0x1;
const INCOMPAT_NORMALIZATION_INSENSITIVE: u64 = 0x8;
const FS_UNENCRYPTED: u64 = 0x1;
/// `apfs_fs_flags`: one key encrypts the whole volume (software encryption); without it each
/// file has its own key, held by the device's Secure Enclave.
const FS_ONEKEY: u64 = 0x8;
const DECMPFS: &str = "com.apple.decmpfs";
const RESOURCE_FORK: &str = "com.apple.ResourceFork";
const SYMLINK: &str = "com.apple.fs.symlink";
/// Attributes are at most 64 KiB inline; a stream's is read whole only for symlinks and
/// decmpfs headers, never more than this.
const MAX_ATTRIBUTE_READ: u64 = 1 << 20;
/// Name-hash mismatches remembered for `warnings`.
const MAX_WARNINGS: usize = 20;

/// The role a volume plays, as Disk Utility names it (`apfs_superblock_t.apfs_role`).
fn role_name(role: u16) -> Option<&'static str> {
    Some(match role {
        0 => return None,
        0x1 => "System",
        0x2 => "User",
        0x4 => "Recovery",
        0x8 => "VM",
        0x10 => "Preboot",
        0x20 => "Installer",
        0x40 => "Data",
        0x80 => "Baseband",
        0xC0 => "Update",
        0x100 => "xART",
        0x140 => "Hardware",
        0x180 => "Backup",
        0x1C0 => "Sidecar",
        0x240 => "Enterprise",
        0x2C0 => "Prelogin",
        _ => "Other",
    })
}

/// Every volume of the container at the start of `part`, in the container's order.
pub fn open(part: Arc<dyn ReadAt>) -> io::Result<Vec<Apfs>> {
    let container = Arc::new(Container::open(part)?);
    container
        .volume_oids
        .iter()
        .map(|&oid| Apfs::open(&container, oid))
        .collect()
}

/// A checked volume superblock at block `paddr`.
fn superblock(container: &Container, paddr: u64) -> io::Result<Vec<u8>> {
    let blocks = &container.blocks;
    let sb = blocks.object(paddr, FS, "APFS volume superblock")?;
    if &sb[32..36] != b"APSB" {
        return Err(bad(
            "APFS volume superblock",
            paddr * blocks.size,
            "has no APSB magic",
        ));
    }
    Ok(sb)
}

/// A record key's object id and type (`j_key_t`).
fn key_of(k: &[u8]) -> (u64, u8) {
    if k.len() < 8 {
        return (0, 0); // damage: ordered first, matched by no walk
    }
    let raw = le64(k, 0);
    (raw & 0x0FFF_FFFF_FFFF_FFFF, (raw >> 60) as u8)
}

/// What an entry's handle holds: its inode and how to read it.
#[derive(Clone, Debug)]
struct Item {
    id: u64,
    /// The data stream's id (`private_id`; a clone shares its original's extents) and size.
    stream: Option<(u64, u64)>,
    compressed: bool,
    directory: bool,
}

/// What a file-system walk calls with each record: (type, key, value); false stops it.
type Record<'a> = &'a mut dyn FnMut(u8, &[u8], &[u8]) -> io::Result<bool>;

/// An inode's extended attributes by name, in the tree's order.
type Attributes = Vec<(String, Attribute)>;

/// An extended attribute: its bytes, or the data stream (id, size) that holds them.
enum Attribute {
    Inline(Vec<u8>),
    Stream(u64, u64),
}

impl Attribute {
    fn size(&self) -> u64 {
        match self {
            Attribute::Inline(b) => b.len() as u64,
            Attribute::Stream(_, size) => *size,
        }
    }
}

pub struct Apfs {
    container: Arc<Container>,
    omap: Arc<Omap>,
    /// The transaction the volume is read as of: the checkpoint's, or a snapshot's.
    xid: u64,
    /// The snapshot's name, when this is one.
    snapshot: Option<String>,
    root_tree: u64,
    snapshot_tree: u64,
    label: String,
    role: u16,
    used_blocks: u64,
    /// The superblock's apfs_num_files (with its symlinks and other objects) and
    /// apfs_num_directories.
    counts: Counts,
    case_insensitive: bool,
    /// Directory records carry a hash of their name (normalization- or case-insensitive).
    hashed: bool,
    encrypted: bool,
    /// `apfs_vol_uuid`: what the keybags name the volume's keys by.
    uuid: [u8; 16],
    /// Whether an encrypted volume can be read, and with what key.
    lock: Lock,
    /// Directory records whose name hash disagrees with their name.
    mismatches: Mutex<Vec<String>>,
}

impl Apfs {
    fn open(container: &Arc<Container>, oid: u64) -> io::Result<Apfs> {
        let blocks = &container.blocks;
        let paddr = container
            .omap
            .lookup(blocks, oid, container.xid)?
            .ok_or_else(|| {
                bad(
                    "APFS volume superblock",
                    0,
                    format!("object {oid} is not mapped"),
                )
            })?;
        let sb = superblock(container, paddr)?;
        let omap = Arc::new(Omap::open(
            blocks,
            le64(&sb, 128),
            "APFS volume object map",
        )?);
        Ok(Apfs::at(container, &sb, omap, container.xid, None))
    }

    /// The volume a superblock describes, read through `omap` as of transaction `xid`.
    fn at(
        container: &Arc<Container>,
        sb: &[u8],
        omap: Arc<Omap>,
        xid: u64,
        snapshot: Option<String>,
    ) -> Apfs {
        let incompat = le64(sb, 56);
        let name = &sb[704..960];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        Apfs {
            container: container.clone(),
            omap,
            xid,
            snapshot,
            root_tree: le64(sb, 136),
            snapshot_tree: le64(sb, 152),
            label: String::from_utf8_lossy(name).into_owned(),
            role: le16(sb, 964),
            used_blocks: le64(sb, 88),
            counts: Counts {
                files: le64(sb, 184)
                    .saturating_add(le64(sb, 200))
                    .saturating_add(le64(sb, 208)),
                folders: le64(sb, 192),
            },
            case_insensitive: incompat & INCOMPAT_CASE_INSENSITIVE != 0,
            hashed: incompat & (INCOMPAT_CASE_INSENSITIVE | INCOMPAT_NORMALIZATION_INSENSITIVE)
                != 0,
            encrypted: le64(sb, 264) & FS_UNENCRYPTED == 0,
            uuid: sb[240..256].try_into().expect("16 bytes"),
            lock: Lock::of(le64(sb, 264)),
            mismatches: Mutex::new(Vec::new()),
        }
    }

    /// The key that decrypts the volume's tree nodes and extents, once unlocked.
    fn key(&self) -> Option<&Arc<XtsKey>> {
        match &self.lock {
            Lock::Open(key) => Some(key),
            _ => None,
        }
    }

    /// The snapshots the snapshot metadata tree lists (`j_snap_metadata_val_t`), oldest first:
    /// each with the transaction it keeps and the block of its volume superblock.
    fn snapshot_list(&self) -> io::Result<Vec<(Snapshot, u64)>> {
        if self.snapshot_tree == 0 {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        scan(
            &self.container.blocks,
            Pointers::Physical,
            self.snapshot_tree,
            "APFS snapshot metadata tree",
            &|_| Ordering::Equal,
            &mut |k, v| {
                let (xid, kind) = key_of(k);
                if kind == SNAP_METADATA && v.len() >= 50 {
                    let len = usize::from(le16(v, 48));
                    let name = v.get(50..50 + len).unwrap_or_default();
                    let name = name.strip_suffix(&[0]).unwrap_or(name);
                    let snapshot = Snapshot {
                        name: String::from_utf8_lossy(name).into_owned(),
                        xid,
                        created: Some((le64(v, 16) / 1_000_000_000) as i64),
                    };
                    found.push((snapshot, le64(v, 8)));
                }
                Ok(true)
            },
        )?;
        found.sort_by_key(|(s, _)| s.xid);
        Ok(found)
    }

    /// Calls `each(key, value)` for the records of object `id` with a type from `types`.
    fn records(
        &self,
        id: u64,
        types: std::ops::RangeInclusive<u8>,
        each: Record,
    ) -> io::Result<()> {
        if let Some(why) = self.lock.why(&self.label) {
            return Err(why);
        }
        let (lo, hi) = ((id, *types.start()), (id, *types.end()));
        let c = &self.container;
        scan(
            &c.blocks,
            Pointers::Virtual(&self.omap, self.xid, self.key().map(|k| &**k)),
            self.root_tree,
            "APFS file-system tree",
            &|k| {
                let here = key_of(k);
                if here < lo {
                    Ordering::Less
                } else if here > hi {
                    Ordering::Greater
                } else {
                    Ordering::Equal
                }
            },
            &mut |k, v| each(key_of(k).1, k, v),
        )
    }

    /// The inode record of `id` and its extended attributes, by name.
    fn inode(&self, id: u64) -> io::Result<(Vec<u8>, Attributes)> {
        let mut inode = None;
        let mut attributes = Vec::new();
        self.records(id, INODE..=XATTR, &mut |kind, k, v| {
            match kind {
                INODE => inode = Some(v.to_vec()),
                _ => {
                    if let Some(a) = attribute(k, v) {
                        attributes.push(a);
                    }
                }
            }
            Ok(true)
        })?;
        let inode = inode
            .filter(|v| v.len() >= 92)
            .ok_or_else(|| bad("APFS inode", 0, format!("object {id} has no inode record")))?;
        Ok((inode, attributes))
    }

    fn entry(&self, name: String, id: u64) -> io::Result<DirEntry> {
        let (inode, attributes) = self.inode(id)?;
        let mode = u32::from(le16(&inode, 80));
        let links = le32(&inode, 56);
        let stream = dstream_size(&inode).map(|size| (le64(&inode, 8), size));
        let compressed =
            le32(&inode, 68) & UF_COMPRESSED != 0 && attributes.iter().any(|(n, _)| n == DECMPFS);
        let directory = mode & 0o170000 == 0o040000;
        let mut size = stream.map_or(0, |(_, size)| size);
        let kind = match mode & 0o170000 {
            0o040000 => EntryKind::Directory,
            0o100000 => EntryKind::File,
            0o120000 => {
                let target = attributes.iter().find(|(n, _)| n == SYMLINK);
                let target = match target {
                    Some((_, a)) => self.attribute_bytes(a)?,
                    None => Vec::new(),
                };
                let end = target.iter().position(|&b| b == 0).unwrap_or(target.len());
                size = end as u64;
                EntryKind::Symlink(String::from_utf8_lossy(&target[..end]).into_owned())
            }
            0o020000 => EntryKind::Special("character device".into()),
            0o060000 => EntryKind::Special("block device".into()),
            0o010000 => EntryKind::Special("FIFO".into()),
            0o140000 => EntryKind::Special("socket".into()),
            other => EntryKind::Special(format!("file of type {other:o}")),
        };
        if compressed {
            let header = attributes.iter().find(|(n, _)| n == DECMPFS);
            if let Some((_, a)) = header {
                size = decmpfs::stated_size(&self.attribute_bytes(a)?).unwrap_or(size);
            }
        }
        let streams = attributes
            .iter()
            .filter(|(n, _)| n != DECMPFS && n != SYMLINK && !(compressed && n == RESOURCE_FORK))
            .map(|(n, a)| Stream {
                name: n.clone(),
                size: a.size(),
            })
            .collect();
        Ok(DirEntry {
            name: name.replace('/', ":"),
            kind,
            size: if directory { 0 } else { size },
            modified: Some((le64(&inode, 24) / 1_000_000_000) as i64),
            mode: Some(mode & 0o7777),
            owner: Some((le32(&inode, 72), le32(&inode, 76))),
            links: if directory { 1 } else { links.max(1) },
            inode: id,
            streams,
            handle: Handle::new(Item {
                id,
                stream,
                compressed,
                directory,
            }),
        })
    }

    /// An attribute's bytes, whole (symlink targets and decmpfs headers are small).
    fn attribute_bytes(&self, a: &Attribute) -> io::Result<Vec<u8>> {
        match a {
            Attribute::Inline(b) => Ok(b.clone()),
            Attribute::Stream(id, size) => {
                let data = self.extents(*id, (*size).min(MAX_ATTRIBUTE_READ))?;
                let mut b = vec![0u8; data.size() as usize];
                data.read_exact_at(0, &mut b)?;
                Ok(b)
            }
        }
    }

    fn attribute_source(&self, a: &Attribute) -> io::Result<Arc<dyn ReadAt>> {
        match a {
            Attribute::Inline(b) => Ok(Arc::new(b.clone())),
            Attribute::Stream(id, size) => self.extents(*id, *size),
        }
    }

    /// Data stream `id` of `size` bytes, from its file extents: gaps and extents at physical
    /// block 0 read as zeros; an extent outside the container or past a cut image is an error.
    fn extents(&self, id: u64, size: u64) -> io::Result<Arc<dyn ReadAt>> {
        let blocks = &self.container.blocks;
        let mut parts: Vec<Arc<dyn ReadAt>> = Vec::new();
        let mut at = 0u64;
        let mut problem = None;
        self.records(id, FILE_EXTENT..=FILE_EXTENT, &mut |_, k, v| {
            if k.len() < 16 || v.len() < 24 || at >= size {
                return Ok(at < size);
            }
            let (logical, len, phys) = (le64(k, 8), le64(v, 0) & 0x00FF_FFFF_FFFF_FFFF, le64(v, 8));
            if logical < at {
                problem = Some(format!("stream {id}'s extents overlap at byte {logical}"));
                return Ok(false);
            }
            if logical > at {
                parts.push(Arc::new(Zeros(logical.min(size) - at)));
                at = logical.min(size);
            }
            let take = len.min(size - at);
            if phys == 0 {
                parts.push(Arc::new(Zeros(take)));
            } else {
                let start = blocks.span(phys, len.div_ceil(blocks.size), "APFS file extent")?;
                let disk = blocks.disk().clone();
                parts.push(match self.key() {
                    // crypto_id: where the extent was first written, in blocks.
                    Some(key) => Arc::new(Ciphered {
                        disk,
                        start,
                        len: take,
                        tweak: le64(v, 16).wrapping_mul(blocks.size / 512),
                        key: key.clone(),
                        encrypt: false,
                    }),
                    None => Arc::new(Slice::new(disk, start, take)),
                });
            }
            at += take;
            Ok(at < size)
        })?;
        if let Some(p) = problem {
            return Err(bad("APFS file extent", 0, p));
        }
        if at < size {
            parts.push(Arc::new(Zeros(size - at)));
        }
        Ok(Arc::new(Concat::new(parts)))
    }

    fn children(&self, parent: u64) -> io::Result<Vec<DirEntry>> {
        let mut found = Vec::new();
        self.records(parent, DIR_REC..=DIR_REC, &mut |_, k, v| {
            if let Some(record) = self.dir_record(k, v) {
                found.push(record);
            }
            Ok(true)
        })?;
        found
            .into_iter()
            .map(|(name, id)| self.entry(name, id))
            .collect()
    }

    /// A directory record's name and the inode it names; its name hash checked where it has one.
    fn dir_record(&self, k: &[u8], v: &[u8]) -> Option<(String, u64)> {
        if v.len() < 18 || k.len() < 12 {
            return None;
        }
        let (name, stored_hash) = if self.hashed {
            let field = le32(k, 8);
            let len = (field & 0x3FF) as usize;
            (k.get(12..12 + len)?, Some(field >> 10))
        } else {
            let len = usize::from(le16(k, 8));
            (k.get(10..10 + len)?, None)
        };
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        let name = String::from_utf8_lossy(name).into_owned();
        if let Some(stored) = stored_hash {
            if stored != name_hash(&name, self.case_insensitive) {
                let mut m = self.mismatches.lock().unwrap_or_else(|e| e.into_inner());
                if m.len() < MAX_WARNINGS {
                    m.push(name.clone());
                }
            }
        }
        Some((name, le64(v, 0)))
    }
}

/// The size of an inode's data stream, from its extended fields, if it has one.
fn dstream_size(inode: &[u8]) -> Option<u64> {
    let fields = inode.get(92..).filter(|f| f.len() >= 4)?;
    let count = usize::from(le16(fields, 0));
    let mut data = 4 + 4 * count;
    for i in 0..count {
        let header = fields.get(4 + 4 * i..8 + 4 * i)?;
        let (kind, len) = (header[0], usize::from(le16(header, 2)));
        if kind == INO_EXT_TYPE_DSTREAM {
            return fields.get(data..data + 8).map(|b| le64(b, 0));
        }
        data += len.div_ceil(8) * 8;
    }
    None
}

/// An extended-attribute record's name and where its bytes are.
fn attribute(k: &[u8], v: &[u8]) -> Option<(String, Attribute)> {
    if k.len() < 10 || v.len() < 4 {
        return None;
    }
    let len = usize::from(le16(k, 8));
    let name = k.get(10..10 + len)?;
    let name = String::from_utf8_lossy(name.strip_suffix(&[0]).unwrap_or(name)).into_owned();
    let (flags, data_len) = (le16(v, 0), usize::from(le16(v, 2)));
    let data = v.get(4..4 + data_len)?;
    if flags & XATTR_DATA_EMBEDDED != 0 {
        Some((name, Attribute::Inline(data.to_vec())))
    } else if flags & XATTR_DATA_STREAM != 0 && data.len() >= 16 {
        Some((name, Attribute::Stream(le64(data, 0), le64(data, 8))))
    } else {
        None
    }
}

/// The 22-bit hash a hashed directory record keeps of its name: CRC-32C of the name's code
/// points (UTF-32LE) after canonical decomposition, and case folding where the volume ignores
/// case.
fn name_hash(name: &str, fold_case: bool) -> u32 {
    let mut crc = !0u32;
    let mut feed = |c: char| {
        for b in (c as u32).to_le_bytes() {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
    };
    for c in name.nfd() {
        if fold_case {
            c.to_lowercase().for_each(&mut feed);
        } else {
            feed(c);
        }
    }
    crc & 0x3F_FFFF
}

/// Whether an encrypted volume can be read.
#[derive(Clone)]
enum Lock {
    /// Not encrypted.
    Clear,
    /// Unlocked: its key.
    Open(Arc<XtsKey>),
    Shut(Why),
}

/// Why an encrypted volume is still locked.
#[derive(Clone)]
enum Why {
    /// No passphrase was given.
    Needed,
    /// The passphrase given opens none of its keys.
    Wrong,
    /// It cannot be unlocked here: what stood in the way.
    Cannot(io::ErrorKind, String),
}

impl Lock {
    /// As a volume's `apfs_fs_flags` leave it, before any passphrase.
    fn of(fs_flags: u64) -> Lock {
        match (fs_flags & FS_UNENCRYPTED != 0, fs_flags & FS_ONEKEY != 0) {
            (true, _) => Lock::Clear,
            (false, true) => Lock::Shut(Why::Needed),
            (false, false) => Lock::Shut(Why::Cannot(
                io::ErrorKind::Unsupported,
                "the volume is encrypted with a key per file, as an iPhone or a Mac's internal \
                 disk is (hardware encryption): its keys never leave that device, so no \
                 password unlocks it elsewhere"
                    .into(),
            )),
        }
    }

    /// The error every read of a locked volume gives.
    fn why(&self, label: &str) -> Option<io::Error> {
        match self {
            Lock::Clear | Lock::Open(_) => None,
            Lock::Shut(Why::Needed) => Some(Locked::PassphraseNeeded.io()),
            Lock::Shut(Why::Wrong) => Some(Locked::WrongPassphrase.io()),
            Lock::Shut(Why::Cannot(kind, why)) => Some(io::Error::new(
                *kind,
                format!("the encrypted volume “{label}” cannot be unlocked: {why}"),
            )),
        }
    }
}

fn item(entry: &DirEntry) -> io::Result<&Item> {
    entry.handle.get::<Item>()
}

impl Volume for Apfs {
    fn label(&self) -> String {
        match &self.snapshot {
            Some(name) => format!("{} (snapshot {name})", self.label),
            None => self.label.clone(),
        }
    }

    fn used(&self) -> Option<u64> {
        Some(self.used_blocks * self.container.blocks.size)
    }

    fn counts(&self) -> Option<Counts> {
        Some(self.counts)
    }

    fn snapshots(&self) -> io::Result<Vec<Snapshot>> {
        Ok(self.snapshot_list()?.into_iter().map(|(s, _)| s).collect())
    }

    /// The volume as snapshot `xid` keeps it: its own superblock (the tree's root then), read
    /// through the live object map as of its transaction, which keeps what snapshots need.
    fn at_snapshot(&self, xid: u64) -> io::Result<Box<dyn Volume>> {
        let (snapshot, paddr) = self
            .snapshot_list()?
            .into_iter()
            .find(|(s, _)| s.xid == xid)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("“{}” has no snapshot of transaction {xid}", self.label),
                )
            })?;
        let sb = superblock(&self.container, paddr)?;
        let mut at = Apfs::at(
            &self.container,
            &sb,
            self.omap.clone(),
            xid,
            Some(snapshot.name),
        );
        // The snapshot is of the same volume: as locked, or unlocked, as it is.
        at.lock = self.lock.clone();
        Ok(Box::new(at))
    }

    fn available(&self) -> Option<u64> {
        let c = &self.container;
        c.free_blocks().map(|free| free * c.blocks.size)
    }

    fn case_sensitive(&self) -> bool {
        !self.case_insensitive
    }

    /// The container's free space: every volume of it shares the same.
    fn free_extents(&self) -> io::Result<Vec<(u64, u64)>> {
        self.container.free_extents()
    }

    fn role(&self) -> Option<&'static str> {
        role_name(self.role)
    }

    fn encrypted(&self) -> bool {
        self.encrypted
    }

    fn locked(&self) -> Option<io::Error> {
        self.lock.why(&self.label)
    }

    /// Opens the volume's key with `passphrase` through the container's keybags; what fails
    /// (a wrong passphrase, a damaged keybag) is what the volume then answers every read with.
    fn unlock(&mut self, passphrase: &Passphrase) {
        if !matches!(self.lock, Lock::Shut(Why::Needed | Why::Wrong)) {
            return;
        }
        let c = &self.container;
        self.lock = match c.keylocker.unlock(&c.blocks, &self.uuid, passphrase) {
            Ok(key) => Lock::Open(Arc::new(key)),
            Err(e) if matches!(Locked::of(&e), Some(Locked::WrongPassphrase)) => {
                Lock::Shut(Why::Wrong)
            }
            Err(e) => Lock::Shut(Why::Cannot(e.kind(), e.to_string())),
        };
    }

    fn passphrase_hint(&self) -> Option<String> {
        if !self.encrypted {
            return None;
        }
        let c = &self.container;
        c.keylocker.hint(&c.blocks, &self.uuid).ok().flatten()
    }

    fn warnings(&self) -> Vec<String> {
        let mut w: Vec<String> = self
            .container
            .passed_over
            .iter()
            .map(|p| format!("a newer checkpoint was passed over: {p}"))
            .collect();
        let m = self.mismatches.lock().unwrap_or_else(|e| e.into_inner());
        w.extend(m.iter().map(|n| {
            format!("the directory record of “{n}” has a name hash that does not match it")
        }));
        w
    }

    fn root(&self) -> DirEntry {
        DirEntry::root(
            ROOT_DIR,
            0,
            Handle::new(Item {
                id: ROOT_DIR,
                stream: None,
                compressed: false,
                directory: true,
            }),
        )
    }

    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        let item = item(dir)?;
        if !item.directory {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{}: not a folder", dir.name),
            ));
        }
        let mut entries = self.children(item.id)?;
        // Records are kept in name-hash order; people read names in order.
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        let item = item(file)?;
        if item.compressed {
            let (_, attributes) = self.inode(item.id)?;
            let find = |name: &str| attributes.iter().find(|(n, _)| n == name).map(|(_, a)| a);
            let header = find(DECMPFS)
                .ok_or_else(|| bad("APFS compressed file", 0, "has no decmpfs attribute"))?;
            let header = self.attribute_bytes(header)?;
            return decmpfs::open(&header, || match find(RESOURCE_FORK) {
                Some(a) => self.attribute_source(a),
                None => Err(bad("APFS compressed file", 0, "has no resource fork")),
            });
        }
        match item.stream {
            Some((id, size)) => self.extents(id, size),
            None => Ok(Arc::new(Vec::new())),
        }
    }

    fn open_stream(&self, entry: &DirEntry, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        let item = item(entry)?;
        let (_, attributes) = self.inode(item.id)?;
        match attributes.iter().find(|(n, _)| n == name) {
            Some((_, a)) if name != DECMPFS => self.attribute_source(a),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no stream {name}", entry.name),
            )),
        }
    }
}
