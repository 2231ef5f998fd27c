//! NTFS, read-only (as Disk Utility mounts it): MFT records with their fixups, attributes
//! resident and non-resident (runlists, sparse runs as zeros, an attribute list's extension
//! records), directories through their $I30 index ($INDEX_ROOT and the $INDEX_ALLOCATION blocks
//! it leads to, each visited once), $DATA and named $DATA streams (alternate data streams, shown
//! as the entry's streams), LZNT1-compressed files, hard links (one record, several names: one
//! inode), symlinks and junctions as links. The DOS 8.3 names and the metafiles are left out,
//! as ntfs-3g shows a volume.

use super::{
    bad, fixup, lznt1, runlist, unix, Boot, Run, ATTR_ATTRIBUTE_LIST, ATTR_DATA, ATTR_END,
    ATTR_FILE_NAME, ATTR_INDEX_ALLOCATION, ATTR_INDEX_ROOT, ATTR_REPARSE_POINT,
    ATTR_STANDARD_INFORMATION, ATTR_VOLUME_INFORMATION, ATTR_VOLUME_NAME, FIRST_USER_RECORD,
    FLAG_COMPRESSED, FLAG_ENCRYPTED, NAMESPACE_DOS, RECORD_BITMAP, RECORD_DIRECTORY, RECORD_IN_USE,
    RECORD_MFT, RECORD_ROOT, RECORD_UPCASE, RECORD_VOLUME, TAG_MOUNT_POINT, TAG_SYMLINK,
};
use crate::bytes::{le16, le32, le64, utf16_le as utf16};
use crate::fs::runs::{self, Piece};
use crate::fs::{DirEntry, EntryKind, Handle, Stream, Volume};
use crate::io::ReadAt;
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex};

/// An attribute list, a resident value or an index root is read whole: never more than this.
const MAX_READ_WHOLE: u64 = 16 << 20;
/// Extension records one file may have through its attribute list.
const MAX_EXTENSIONS: usize = 4096;
/// An Interix symlink's data: its tag and a target of at most 4,096 UTF-16 units.
const MAX_INTERIX: u64 = 8 + 8192;

pub struct Ntfs {
    source: Arc<dyn ReadAt>,
    boot: Boot,
    /// The MFT's own $DATA.
    mft: Arc<dyn ReadAt>,
    label: String,
    /// $UpCase: each UTF-16 unit's upper case, as the volume compares names.
    upcase: Vec<u16>,
    warnings: Vec<String>,
}

/// $UpCase holds one unit for each of the 65,536.
const UPCASE_BYTES: u64 = 2 << 16;

/// One attribute of a file (the pieces of a non-resident one split across records joined).
#[derive(Clone, Debug)]
struct Attr {
    kind: u32,
    name: String,
    flags: u16,
    value: Value,
}

#[derive(Clone, Debug)]
enum Value {
    Resident(Vec<u8>),
    NonResident {
        /// The first VCN its runs map: 0, or more for a later extent in an extension record.
        lowest: u64,
        runs: Vec<Run>,
        size: u64,
        valid: u64,
        /// Clusters per compression unit, as a power of two (0: not compressed).
        unit: u8,
    },
}

impl Attr {
    fn size(&self) -> u64 {
        match &self.value {
            Value::Resident(v) => v.len() as u64,
            Value::NonResident { size, .. } => *size,
        }
    }
}

/// A file as its records describe it.
struct File {
    record: u64,
    directory: bool,
    modified: Option<i64>,
    /// $STANDARD_INFORMATION's file attributes (read-only, hidden, system...).
    attributes: u32,
    names: u32,
    attrs: Vec<Attr>,
}

impl File {
    fn data(&self, name: &str) -> Option<&Attr> {
        self.attrs
            .iter()
            .find(|a| a.kind == ATTR_DATA && a.name == name)
    }
}

/// What an entry's handle holds: its record.
#[derive(Clone, Copy)]
struct Record(u64);

impl Ntfs {
    pub fn open(source: Arc<dyn ReadAt>) -> io::Result<Self> {
        let boot = Boot::read(&*source)?;
        let at = boot.mft * boot.cluster;
        let mut record0 = vec![0u8; boot.record as usize];
        source.read_exact_at(at, &mut record0)?;
        check_record(&mut record0, at, RECORD_MFT)?;
        // The MFT's first extent is in record 0; the rest (rarely) in extension records that
        // this first extent reaches.
        let first = parse_attributes(&record0, at, boot.clusters)?
            .into_iter()
            .find(|a| a.kind == ATTR_DATA && a.name.is_empty())
            .ok_or_else(|| bad("NTFS MFT record", at, "record 0 ($MFT) has no $DATA"))?;
        let mut volume = Ntfs {
            mft: Arc::new(Vec::new()),
            source,
            boot,
            label: String::new(),
            upcase: Vec::new(),
            warnings: Vec::new(),
        };
        volume.mft = volume.value_reader(&first, "$MFT")?;
        let mft = volume.file(RECORD_MFT)?;
        let data = mft
            .data("")
            .ok_or_else(|| bad("NTFS MFT record", at, "$MFT has no $DATA"))?;
        volume.mft = volume.value_reader(data, "$MFT")?;
        let vol = volume.file(RECORD_VOLUME)?;
        for a in &vol.attrs {
            match (&a.value, a.kind) {
                (Value::Resident(v), ATTR_VOLUME_NAME) => volume.label = utf16(v),
                (Value::Resident(v), ATTR_VOLUME_INFORMATION)
                    if v.len() >= 12 && le16(v, 10) & 1 != 0 =>
                {
                    volume.warnings.push(
                        "the volume is marked dirty (Windows did not shut it down cleanly, or \
                         chkdsk is due): it is shown as it is on the disk"
                            .to_string(),
                    )
                }
                _ => {}
            }
        }
        match volume.read_upcase() {
            Ok(table) => volume.upcase = table,
            Err(e) => volume.warnings.push(format!(
                "$UpCase cannot be read ({e}): names are compared as Unicode upper-cases them"
            )),
        }
        let root = volume.file(RECORD_ROOT)?;
        if !root.directory {
            return Err(bad(
                "NTFS MFT record",
                0,
                "record 5, the root, is not a directory",
            ));
        }
        Ok(volume)
    }

    /// $UpCase's table, which must be whole.
    fn read_upcase(&self) -> io::Result<Vec<u16>> {
        let file = self.file(RECORD_UPCASE)?;
        let data = file
            .data("")
            .ok_or_else(|| bad("NTFS $UpCase", 0, "it has no $DATA"))?;
        let data = self.value_reader(data, "$UpCase")?;
        if data.size() != UPCASE_BYTES {
            return Err(bad(
                "NTFS $UpCase",
                0,
                format!("{} bytes, not {UPCASE_BYTES}", data.size()),
            ));
        }
        let mut table = vec![0u8; UPCASE_BYTES as usize];
        data.read_exact_at(0, &mut table)?;
        Ok(table
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect())
    }

    fn records(&self) -> u64 {
        self.mft.size() / self.boot.record
    }

    /// Record `n`, its fixups applied.
    fn record(&self, n: u64) -> io::Result<Vec<u8>> {
        if n >= self.records() {
            return Err(bad(
                "NTFS MFT record",
                0,
                format!("record {n} is not in the MFT ({} records)", self.records()),
            ));
        }
        let mut b = vec![0u8; self.boot.record as usize];
        self.mft.read_exact_at(n * self.boot.record, &mut b)?;
        check_record(&mut b, n * self.boot.record, n)?;
        Ok(b)
    }

    /// Record `n` with every attribute, those in extension records included.
    fn file(&self, n: u64) -> io::Result<File> {
        let b = self.record(n)?;
        let at = n * self.boot.record;
        let flags = le16(&b, 22);
        if flags & RECORD_IN_USE == 0 {
            return Err(bad(
                "NTFS MFT record",
                at,
                format!("record {n} is not in use"),
            ));
        }
        if le64(&b, 32) & 0xFFFF_FFFF_FFFF != 0 {
            return Err(bad(
                "NTFS MFT record",
                at,
                format!("record {n} is an extension record, not a file"),
            ));
        }
        let mut attrs = parse_attributes(&b, at, self.boot.clusters)?;
        if let Some(list) = attrs
            .iter()
            .find(|a| a.kind == ATTR_ATTRIBUTE_LIST)
            .cloned()
        {
            let list = self.whole(&list, &format!("record {n}'s attribute list"))?;
            let mut seen = HashSet::from([n]);
            let mut at_entry = 0;
            while at_entry + 26 <= list.len() {
                let len = usize::from(le16(&list, at_entry + 4));
                if len < 26 || at_entry + len > list.len() {
                    break;
                }
                let other = le64(&list, at_entry + 16) & 0xFFFF_FFFF_FFFF;
                at_entry += len;
                if !seen.insert(other) {
                    continue;
                }
                if seen.len() > MAX_EXTENSIONS {
                    return Err(bad(
                        "NTFS attribute list",
                        at,
                        format!("record {n} names more than {MAX_EXTENSIONS} extension records"),
                    ));
                }
                let e = self.record(other)?;
                if le64(&e, 32) & 0xFFFF_FFFF_FFFF != n {
                    return Err(bad(
                        "NTFS MFT record",
                        other * self.boot.record,
                        format!(
                            "record {other}, in record {n}'s attribute list, belongs to another"
                        ),
                    ));
                }
                attrs.extend(parse_attributes(
                    &e,
                    other * self.boot.record,
                    self.boot.clusters,
                )?);
            }
            attrs = merge(attrs, n)?;
        }
        let info = attrs
            .iter()
            .find(|a| a.kind == ATTR_STANDARD_INFORMATION)
            .and_then(|a| match &a.value {
                Value::Resident(v) if v.len() >= 36 => Some((unix(le64(v, 8)), le32(v, 32))),
                _ => None,
            });
        let (modified, attributes) = info.unwrap_or((None, 0));
        let names = attrs
            .iter()
            .filter(|a| a.kind == ATTR_FILE_NAME)
            .filter(|a| matches!(&a.value, Value::Resident(v) if v.len() > 65 && v[65] != NAMESPACE_DOS))
            .count() as u32;
        Ok(File {
            record: n,
            directory: flags & RECORD_DIRECTORY != 0,
            modified,
            attributes,
            names,
            attrs,
        })
    }

    /// An attribute's value as a byte source.
    fn value_reader(&self, a: &Attr, what: &str) -> io::Result<Arc<dyn ReadAt>> {
        let cluster = self.boot.cluster;
        match &a.value {
            Value::Resident(v) => Ok(Arc::new(v.clone())),
            _ if a.flags & FLAG_ENCRYPTED != 0 => Err(bad(
                "NTFS attribute",
                0,
                format!("{what} is encrypted (EFS): dimg does not decrypt it"),
            )),
            Value::NonResident {
                runs,
                size,
                valid,
                unit,
                ..
            } if a.flags & FLAG_COMPRESSED != 0 && *unit != 0 => {
                if *unit > 8 || cluster << unit > 1 << 20 {
                    return Err(bad(
                        "NTFS attribute",
                        0,
                        format!("{what}: compression units of 2^{unit} clusters"),
                    ));
                }
                Ok(Arc::new(Compressed::new(
                    self.source.clone(),
                    runs,
                    cluster,
                    cluster << unit,
                    *size,
                    *valid,
                    what,
                )?))
            }
            Value::NonResident {
                runs, size, valid, ..
            } => {
                let mut pieces = Vec::new();
                for &(len, start) in runs {
                    runs::push(
                        &mut pieces,
                        match start {
                            Some(lcn) => Piece::Disk {
                                at: lcn * cluster,
                                len: len * cluster,
                            },
                            None => Piece::Zeros(len * cluster),
                        },
                    );
                }
                let short = |p: String| bad("NTFS runlist", 0, format!("{what}: {p}"));
                runs::assemble(&self.source, &pieces, *size, *valid, short)
            }
        }
    }

    /// An attribute's whole value, bounded.
    fn whole(&self, a: &Attr, what: &str) -> io::Result<Vec<u8>> {
        if a.size() > MAX_READ_WHOLE {
            return Err(bad(
                "NTFS attribute",
                0,
                format!("{what} is {} bytes", a.size()),
            ));
        }
        let data = self.value_reader(a, what)?;
        let mut v = vec![0u8; data.size() as usize];
        data.read_exact_at(0, &mut v)?;
        Ok(v)
    }

    /// A directory's names: (record, name), in the index's order, DOS names left out.
    fn index(&self, dir: &File) -> io::Result<Vec<(u64, String)>> {
        let what = format!("record {}'s $I30 index", dir.record);
        let find = |kind: u32| {
            dir.attrs
                .iter()
                .find(|a| a.kind == kind && a.name == "$I30")
        };
        let root = find(ATTR_INDEX_ROOT)
            .ok_or_else(|| bad("NTFS index", 0, format!("{what}: no $INDEX_ROOT")))?;
        let root = self.whole(root, &what)?;
        if root.len() < 32 {
            return Err(bad(
                "NTFS index root",
                0,
                format!("{what}: {} bytes", root.len()),
            ));
        }
        let block = u64::from(le32(&root, 8));
        let allocation = match find(ATTR_INDEX_ALLOCATION) {
            Some(a) => Some(self.value_reader(a, &what)?),
            None => None,
        };
        if allocation.is_some() && !(512..=65536).contains(&block) || !block.is_power_of_two() {
            return Err(bad(
                "NTFS index root",
                0,
                format!("{what}: index blocks of {block} bytes"),
            ));
        }
        // VCNs count clusters, or 512-byte units where blocks are smaller than a cluster.
        let vcn_unit = if block >= self.boot.cluster {
            self.boot.cluster
        } else {
            512
        };
        let mut out = Vec::new();
        let mut pending = Vec::new();
        node_entries(&root, 16, &what, &mut out, &mut pending)?;
        let mut visited = HashSet::new();
        while let Some(vcn) = pending.pop() {
            let Some(allocation) = &allocation else {
                return Err(bad(
                    "NTFS index",
                    0,
                    format!("{what}: a sub-node but no $INDEX_ALLOCATION"),
                ));
            };
            if !visited.insert(vcn) {
                return Err(bad(
                    "NTFS index",
                    0,
                    format!("{what}: block at VCN {vcn} is reached twice"),
                ));
            }
            let at = vcn
                .checked_mul(vcn_unit)
                .filter(|at| at.saturating_add(block) <= allocation.size())
                .ok_or_else(|| {
                    bad(
                        "NTFS index",
                        0,
                        format!("{what}: VCN {vcn} is past its allocation"),
                    )
                })?;
            let mut b = vec![0u8; block as usize];
            allocation.read_exact_at(at, &mut b)?;
            if &b[..4] != b"INDX" {
                return Err(bad(
                    "NTFS index block",
                    at,
                    format!("{what}: no INDX signature at VCN {vcn}"),
                ));
            }
            fixup(&mut b, "NTFS index block", at)?;
            node_entries(&b, 24, &what, &mut out, &mut pending)?;
        }
        Ok(out)
    }

    fn entry(&self, name: String, file: File) -> io::Result<DirEntry> {
        let reparse = file
            .attrs
            .iter()
            .find(|a| a.kind == ATTR_REPARSE_POINT)
            .map(|a| self.whole(a, &name))
            .transpose()?
            .and_then(|v| link_target(&v))
            .map_or_else(|| self.interix_link(&file), |t| Ok(Some(t)))?;
        let kind = match (reparse, file.directory) {
            (Some(target), _) => EntryKind::Symlink(target),
            (None, true) => EntryKind::Directory,
            (None, false) => EntryKind::File,
        };
        let streams = file
            .attrs
            .iter()
            .filter(|a| a.kind == ATTR_DATA && !a.name.is_empty())
            .map(|a| Stream {
                name: a.name.clone(),
                size: a.size(),
            })
            .collect();
        Ok(DirEntry {
            size: match kind {
                EntryKind::File => file.data("").map_or(0, Attr::size),
                _ => 0,
            },
            kind,
            modified: file.modified,
            mode: None,
            owner: None,
            links: file.names.max(1),
            inode: file.record,
            streams,
            handle: Handle::new(Record(file.record)),
            name,
        })
    }

    /// The target of a symlink as ntfs-3g makes them by default (Interix's): a system file
    /// holding "IntxLNK\x01" and the target in UTF-16.
    fn interix_link(&self, file: &File) -> io::Result<Option<String>> {
        const SYSTEM: u32 = 0x4;
        let Some(data) = file.data("") else {
            return Ok(None);
        };
        if file.directory
            || file.attributes & SYSTEM == 0
            || !(8..=MAX_INTERIX).contains(&data.size())
        {
            return Ok(None);
        }
        let v = self.whole(data, "an Interix symlink")?;
        Ok(v.strip_prefix(b"IntxLNK\x01").map(utf16))
    }

    fn stream(&self, entry: &DirEntry, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        let Record(n) = *entry.handle.get::<Record>()?;
        let file = self.file(n)?;
        let a = file.data(name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no stream {name}", entry.name),
            )
        })?;
        self.value_reader(a, &entry.name)
    }
}

/// Checks a record's signature and applies its fixups.
fn check_record(b: &mut [u8], at: u64, n: u64) -> io::Result<()> {
    if &b[..4] != b"FILE" {
        return Err(bad(
            "NTFS MFT record",
            at,
            format!("record {n} has no FILE signature"),
        ));
    }
    fixup(b, "NTFS MFT record", at)?;
    let (first, used) = (usize::from(le16(b, 20)), le32(b, 24) as usize);
    if first < 42 || first >= b.len() || used > b.len() {
        return Err(bad(
            "NTFS MFT record",
            at,
            format!(
                "record {n}: attributes at {first}, {used} bytes used of {}",
                b.len()
            ),
        ));
    }
    Ok(())
}

/// The attributes of one record.
fn parse_attributes(b: &[u8], at: u64, clusters: u64) -> io::Result<Vec<Attr>> {
    let mut out = Vec::new();
    let end = (le32(b, 24) as usize).min(b.len());
    let mut pos = usize::from(le16(b, 20));
    let problem = |pos: usize, p: String| bad("NTFS attribute", at + pos as u64, p);
    while pos + 8 <= end {
        let kind = le32(b, pos);
        if kind == ATTR_END {
            break;
        }
        let len = le32(b, pos + 4) as usize;
        if len < 24 || pos + len > end {
            return Err(problem(pos, format!("an attribute of {len} bytes")));
        }
        let a = &b[pos..pos + len];
        let (name_len, name_at) = (usize::from(a[9]), usize::from(le16(a, 10)));
        let name = a
            .get(name_at..name_at + 2 * name_len)
            .map(utf16)
            .ok_or_else(|| problem(pos, "a name past the attribute".into()))?;
        let flags = le16(a, 12);
        let value = match a[8] {
            0 => {
                let (vlen, vat) = (le32(a, 16) as usize, usize::from(le16(a, 20)));
                Value::Resident(
                    a.get(vat..vat + vlen)
                        .ok_or_else(|| problem(pos, format!("a value of {vlen} bytes at {vat}")))?
                        .to_vec(),
                )
            }
            _ => {
                if len < 64 {
                    return Err(problem(
                        pos,
                        format!("a non-resident attribute of {len} bytes"),
                    ));
                }
                let runs_at = usize::from(le16(a, 32));
                Value::NonResident {
                    lowest: le64(a, 16),
                    runs: runlist(a.get(runs_at..).unwrap_or(&[]), clusters)
                        .map_err(|p| problem(pos, format!("its runlist: {p}")))?,
                    size: le64(a, 48),
                    valid: le64(a, 56),
                    unit: a[34],
                }
            }
        };
        out.push(Attr {
            kind,
            name,
            flags,
            value,
        });
        pos += len;
    }
    Ok(out)
}

/// A later extent of an attribute: its first VCN and its runs.
type Extent = (u64, Vec<Run>);

/// Joins the extents of each non-resident attribute spread over several records: the one that
/// starts at VCN 0 gives the sizes, the others their runs, in VCN order.
fn merge(attrs: Vec<Attr>, n: u64) -> io::Result<Vec<Attr>> {
    let mut out: Vec<Attr> = Vec::new();
    let mut later: BTreeMap<(u32, String), Vec<Extent>> = BTreeMap::new();
    for a in attrs {
        match a.value {
            Value::NonResident { lowest, runs, .. } if lowest > 0 => later
                .entry((a.kind, a.name))
                .or_default()
                .push((lowest, runs)),
            _ => out.push(a),
        }
    }
    for ((kind, name), mut extents) in later {
        extents.sort_by_key(|e| e.0);
        let Some(first) = out.iter_mut().find(|a| a.kind == kind && a.name == name) else {
            return Err(bad(
                "NTFS attribute list",
                0,
                format!("record {n}: an extent of attribute {kind:#x} without its first"),
            ));
        };
        if let Value::NonResident { runs, .. } = &mut first.value {
            for (lowest, more) in extents {
                let have: u64 = runs.iter().map(|r| r.0).sum();
                if have != lowest {
                    return Err(bad(
                        "NTFS attribute list",
                        0,
                        format!("record {n}: an extent at VCN {lowest} after {have} clusters"),
                    ));
                }
                runs.extend(more);
            }
        }
    }
    Ok(out)
}

/// The entries of an index node whose header is at `header`: names into `out`, sub-nodes'
/// VCNs into `pending`.
fn node_entries(
    b: &[u8],
    header: usize,
    what: &str,
    out: &mut Vec<(u64, String)>,
    pending: &mut Vec<u64>,
) -> io::Result<()> {
    let problem = |p: String| bad("NTFS index entry", 0, format!("{what}: {p}"));
    if header + 16 > b.len() {
        return Err(problem("an index header past its block".into()));
    }
    let mut pos = header + le32(b, header) as usize;
    let end = (header + le32(b, header + 4) as usize).min(b.len());
    while pos + 16 <= end {
        let (len, key_len, flags) = (
            usize::from(le16(b, pos + 8)),
            usize::from(le16(b, pos + 10)),
            le16(b, pos + 12),
        );
        if len < 16 || pos + len > end || 16 + key_len > len {
            return Err(problem(format!("an entry of {len} bytes at {pos}")));
        }
        if flags & 1 != 0 {
            if len < 24 {
                return Err(problem(format!("a sub-node entry of {len} bytes")));
            }
            pending.push(le64(b, pos + len - 8));
        }
        if flags & 2 != 0 {
            break;
        }
        let key = &b[pos + 16..pos + 16 + key_len];
        if key.len() >= 66 && key[65] != NAMESPACE_DOS {
            let chars = usize::from(key[64]);
            if let Some(name) = key.get(66..66 + 2 * chars) {
                out.push((le64(b, pos) & 0xFFFF_FFFF_FFFF, utf16(name)));
            }
        }
        pos += len;
    }
    Ok(())
}

/// A symlink's or junction's target, as its print name says, with '/' for '\'.
fn link_target(v: &[u8]) -> Option<String> {
    if v.len() < 16 {
        return None;
    }
    let buffer = match le32(v, 0) {
        TAG_SYMLINK => 20,
        TAG_MOUNT_POINT => 16,
        _ => return None,
    };
    let (sub_at, sub_len) = (usize::from(le16(v, 8)), usize::from(le16(v, 10)));
    let (print_at, print_len) = (usize::from(le16(v, 12)), usize::from(le16(v, 14)));
    let text = |at: usize, len: usize| v.get(buffer + at..buffer + at + len).map(utf16);
    let target = text(print_at, print_len)
        .filter(|t| !t.is_empty())
        .or_else(|| text(sub_at, sub_len).map(|t| t.trim_start_matches("\\??\\").to_string()))?;
    Some(target.replace('\\', "/"))
}

/// A compressed attribute: compression units of `unit` bytes, each stored whole (every cluster
/// allocated), LZNT1-compressed (some clusters allocated, the rest sparse) or absent (all
/// sparse: zeros). The last unit read is kept.
struct Compressed {
    source: Arc<dyn ReadAt>,
    /// (first VCN, clusters, first LCN or None) of each run.
    runs: Vec<(u64, u64, Option<u64>)>,
    cluster: u64,
    unit: u64,
    size: u64,
    valid: u64,
    what: String,
    last: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
}

impl Compressed {
    fn new(
        source: Arc<dyn ReadAt>,
        runs: &[Run],
        cluster: u64,
        unit: u64,
        size: u64,
        valid: u64,
        what: &str,
    ) -> io::Result<Self> {
        let mut vcn = 0;
        let mut mapped = Vec::with_capacity(runs.len());
        for &(len, lcn) in runs {
            mapped.push((vcn, len, lcn));
            vcn += len;
        }
        if vcn.saturating_mul(cluster) < size {
            return Err(bad(
                "NTFS runlist",
                0,
                format!(
                    "{what}: its runs hold {} of its {size} bytes",
                    vcn * cluster
                ),
            ));
        }
        Ok(Compressed {
            source,
            runs: mapped,
            cluster,
            unit,
            size,
            valid: valid.min(size),
            what: what.to_string(),
            last: Mutex::new(None),
        })
    }

    /// The bytes of compression unit `u`.
    fn unit_bytes(&self, u: u64) -> io::Result<Arc<Vec<u8>>> {
        if let Some((n, bytes)) = &*self.last.lock().unwrap_or_else(|p| p.into_inner()) {
            if *n == u {
                return Ok(bytes.clone());
            }
        }
        let per = self.unit / self.cluster;
        let (first, end) = (u * per, (u + 1) * per);
        let mut stored = Vec::new();
        let mut allocated = 0;
        let mut i = self.runs.partition_point(|r| r.0 + r.1 <= first);
        while i < self.runs.len() && self.runs[i].0 < end {
            let (vcn, len, lcn) = self.runs[i];
            let (from, to) = (vcn.max(first), (vcn + len).min(end));
            if let Some(lcn) = lcn {
                let at = (lcn + from - vcn) * self.cluster;
                let mut b = vec![0u8; ((to - from) * self.cluster) as usize];
                self.source.read_exact_at(at, &mut b)?;
                stored.extend(b);
                allocated += to - from;
            }
            i += 1;
        }
        let bytes = match allocated {
            0 => vec![0u8; self.unit as usize],
            n if n == per => stored,
            _ => {
                let mut out = lznt1(&stored, self.unit as usize).map_err(|p| {
                    bad(
                        "NTFS compressed data",
                        first * self.cluster,
                        format!("{}: compression unit {u}: {p}", self.what),
                    )
                })?;
                out.resize(self.unit as usize, 0);
                out
            }
        };
        let bytes = Arc::new(bytes);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((u, bytes.clone()));
        Ok(bytes)
    }
}

impl ReadAt for Compressed {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let u = offset / self.unit;
        let within = (offset % self.unit) as usize;
        let n = buf
            .len()
            .min(self.unit as usize - within)
            .min((self.size - offset) as usize);
        if offset >= self.valid {
            buf[..n].fill(0);
            return Ok(n);
        }
        let n = n.min((self.valid - offset) as usize);
        let bytes = self.unit_bytes(u)?;
        buf[..n].copy_from_slice(&bytes[within..within + n]);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.size
    }
}

impl Volume for Ntfs {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn case_sensitive(&self) -> bool {
        false
    }

    /// Each UTF-16 unit as $UpCase maps it, as Windows compares names.
    fn fold_case(&self, name: &str) -> Option<String> {
        if self.upcase.is_empty() {
            return Some(name.to_uppercase());
        }
        let units: Vec<u16> = name
            .encode_utf16()
            .map(|u| self.upcase[usize::from(u)])
            .collect();
        Some(String::from_utf16_lossy(&units))
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn used(&self) -> Option<u64> {
        let bitmap = self.file(RECORD_BITMAP).ok()?;
        let data = self.value_reader(bitmap.data("")?, "$Bitmap").ok()?;
        let set = runs::count_set_bits(&*data, self.boot.clusters).ok()?;
        Some(set * self.boot.cluster)
    }

    fn root(&self) -> DirEntry {
        DirEntry::root(RECORD_ROOT, 0, Handle::new(Record(RECORD_ROOT)))
    }

    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        let Record(n) = *dir.handle.get::<Record>()?;
        let file = self.file(n)?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (record, name) in self.index(&file)? {
            // The metafiles ($MFT ... $Extend) and the root's own "." are not shown.
            let system = n == RECORD_ROOT && record < FIRST_USER_RECORD && name.starts_with('$');
            if system || record == RECORD_ROOT || !seen.insert((record, name.clone())) {
                continue;
            }
            out.push(self.entry(name, self.file(record)?)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        self.stream(file, "")
    }

    fn open_stream(&self, entry: &DirEntry, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        if name.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no stream of no name", entry.name),
            ));
        }
        self.stream(entry, name)
    }
}
