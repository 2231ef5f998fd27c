//! ISO 9660 with Joliet and Rock Ridge (formats.md §g), read-only. Names come from Rock Ridge
//! when the disc has it, else from the Joliet tree, else from the primary tree. Every size read
//! from the disc is bounded before use, and directory walks cannot loop.

use crate::bytes::{le16, le32, utf16_be};

use super::el_torito::{self, BootImage};
use super::{DiscSectors, SECTOR};
use crate::error::FormatError;
use crate::fs::{DirEntry, EntryKind, Handle, Volume};
use crate::io::{Concat, ReadAt};
use std::io;
use std::sync::Arc;

const MAX_DESCRIPTORS: u64 = 64;
const MAX_DIRECTORY_BYTES: u64 = 64 << 20;
const MAX_CONTINUATIONS: usize = 32;

/// Which names the volume shows.
#[derive(Clone, Copy, Debug)]
enum Names {
    /// Rock Ridge on the primary tree; `skip` bytes open every System Use area (SUSP SP).
    RockRidge {
        skip: usize,
    },
    Joliet,
    Primary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    lba: u32,
    size: u32,
}

/// What an entry's handle holds: where to read it.
#[derive(Clone, Debug)]
struct Location {
    /// Byte extents of a file's data, in order: on the 2048-byte view, or on the Form 2 view for
    /// a file in Mode 2 Form 2 sectors.
    extents: Vec<(u64, u64)>,
    form2: bool,
    /// Where a directory's records are.
    dir: Option<Extent>,
    /// Whether the name came from a Rock Ridge NM entry.
    named: bool,
}

fn location(entry: &DirEntry) -> io::Result<&Location> {
    entry.handle.get::<Location>()
}

/// CD-ROM XA's System Use field: it opens a record's System Use area ("XA" at byte 6), and its
/// attributes (big-endian, byte 4) say in which form the file's sectors are.
const XA_SIGNATURE_AT: usize = 6;
const XA_FORM2: u16 = 0x1000;

/// Whether a directory record's System Use area says its file is in Mode 2 Form 2 sectors.
fn xa_form2(system_use: &[u8]) -> bool {
    system_use.len() >= 14
        && &system_use[XA_SIGNATURE_AT..XA_SIGNATURE_AT + 2] == b"XA"
        && u16::from_be_bytes([system_use[4], system_use[5]]) & XA_FORM2 != 0
}

pub struct Iso9660 {
    disk: Arc<dyn ReadAt>,
    /// The whole disc, when the volume is a CD's first track.
    disc: Option<Arc<dyn DiscSectors>>,
    label: String,
    root: Extent,
    names: Names,
    /// Where the El Torito boot catalog is, on a bootable disc.
    boot_catalog: Option<u32>,
    /// The volume space size: a disc is written once, so all of it is in use.
    sectors: u32,
}

fn bad(structure: &'static str, at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(structure, at, problem)
}

fn record_extent(r: &[u8]) -> Extent {
    Extent {
        lba: le32(r, 2),
        size: le32(r, 10),
    }
}

impl Iso9660 {
    pub fn open(disk: Arc<dyn ReadAt>, disc: Option<Arc<dyn DiscSectors>>) -> io::Result<Self> {
        let mut primary = None;
        let mut joliet = None;
        let mut boot_catalog = None;
        for i in 0..MAX_DESCRIPTORS {
            let at = (16 + i) * SECTOR;
            if at + SECTOR > disk.size() {
                break;
            }
            let mut d = vec![0u8; SECTOR as usize];
            disk.read_exact_at(at, &mut d)?;
            if &d[1..6] != b"CD001" {
                break;
            }
            match d[0] {
                1 if primary.is_none() => primary = Some(d),
                2 if [&b"%/@"[..], b"%/C", b"%/E"].contains(&&d[88..91]) => joliet = Some(d),
                0 => boot_catalog = boot_catalog.or(el_torito::catalog_sector(&d)),
                255 => break,
                _ => {}
            }
        }
        let pvd = primary.ok_or_else(|| {
            bad(
                "ISO 9660 volume descriptors",
                16 * SECTOR,
                "no primary volume descriptor",
            )
        })?;
        let block = le16(&pvd, 128);
        if block != SECTOR as u16 {
            return Err(bad(
                "ISO 9660 primary volume descriptor",
                16 * SECTOR + 128,
                format!("logical block size {block} (expected 2048)"),
            ));
        }
        let mut iso = Iso9660 {
            label: crate::fs::label_text(&String::from_utf8_lossy(&pvd[40..72])),
            root: record_extent(&pvd[156..190]),
            disk,
            disc,
            names: Names::Primary,
            boot_catalog,
            sectors: le32(&pvd, 80),
        };
        if let Some(skip) = iso.rock_ridge()? {
            iso.names = Names::RockRidge { skip };
        }
        // Names in this order: Rock Ridge's NM, then Joliet's, then the primary ones. hdiutil
        // makehybrid writes Rock Ridge areas (PX, TF) without NM: there the Joliet tree names
        // the files, as macOS and 7-Zip show them.
        let rock_ridge_names = match iso.names {
            Names::RockRidge { .. } => iso.root_names_from_rock_ridge(),
            _ => false,
        };
        if let (false, Some(j)) = (rock_ridge_names, joliet) {
            iso.names = Names::Joliet;
            iso.root = record_extent(&j[156..190]);
            let label = crate::fs::label_text(&utf16_be(&j[40..72]));
            if !label.is_empty() {
                iso.label = label;
            }
        }
        Ok(iso)
    }

    /// Whether any entry of the root names itself with a Rock Ridge NM entry. An empty or
    /// unreadable root says nothing against Rock Ridge (listing it will say what is wrong).
    fn root_names_from_rock_ridge(&self) -> bool {
        self.entries(self.root).map_or(true, |entries| {
            entries.is_empty()
                || entries
                    .iter()
                    .any(|e| e.handle.get::<Location>().is_ok_and(|l| l.named))
        })
    }

    /// The boot images of a bootable disc; none for others.
    pub fn boot_images(&self) -> io::Result<Vec<BootImage>> {
        match self.boot_catalog {
            Some(lba) => el_torito::read_catalog(&*self.disk, lba),
            None => Ok(Vec::new()),
        }
    }

    /// Each boot image as a file, named as 7-Zip names it in its `[BOOT]` folder.
    fn boot_entries(&self) -> io::Result<Vec<DirEntry>> {
        let images = self.boot_images()?;
        let numbered = images.len() > 1;
        Ok(images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let location = Location {
                    extents: vec![(u64::from(image.lba) * SECTOR, image.size)],
                    form2: false,
                    dir: None,
                    named: false,
                };
                DirEntry {
                    name: if numbered {
                        format!("{}-{}", i + 1, image.file_name())
                    } else {
                        image.file_name().into()
                    },
                    kind: EntryKind::File,
                    size: image.size,
                    modified: None,
                    mode: None,
                    owner: None,
                    links: 1,
                    inode: u64::MAX - 1 - i as u64,
                    streams: Vec::new(),
                    handle: Handle::new(location),
                }
            })
            .collect())
    }

    /// Rock Ridge is there when the root's "." record opens its System Use area with SUSP's SP
    /// entry; its last byte says how many bytes to skip in every System Use area.
    fn rock_ridge(&self) -> io::Result<Option<usize>> {
        let mut s = vec![0u8; SECTOR as usize];
        let at = u64::from(self.root.lba) * SECTOR;
        if at + SECTOR > self.disk.size() {
            return Err(bad(
                "ISO 9660 root directory",
                at,
                "lies past the end of the volume",
            ));
        }
        self.disk.read_exact_at(at, &mut s)?;
        let len = usize::from(s[0]);
        if len < 34 + 7 {
            return Ok(None);
        }
        let su = &s[34..len];
        Ok(
            (su.len() >= 7 && &su[0..2] == b"SP" && su[4..6] == [0xBE, 0xEF])
                .then(|| usize::from(su[6])),
        )
    }

    /// The records of a directory, bounded in size; records never straddle sectors.
    fn entries(&self, dir: Extent) -> io::Result<Vec<DirEntry>> {
        let start = u64::from(dir.lba) * SECTOR;
        let size = u64::from(dir.size);
        if size > MAX_DIRECTORY_BYTES || start + size > self.disk.size() {
            return Err(bad(
                "ISO 9660 directory",
                start,
                format!("{size} bytes of records do not fit the volume"),
            ));
        }
        let mut buf = vec![0u8; size as usize];
        self.disk.read_exact_at(start, &mut buf)?;
        let mut nodes: Vec<(DirEntry, Location)> = Vec::new();
        let mut pending: Option<(DirEntry, Location)> = None; // a multi-extent file being gathered
        let mut pos = 0usize;
        while pos < buf.len() {
            let len = usize::from(buf[pos]);
            let sector_end = (pos / SECTOR as usize + 1) * SECTOR as usize;
            if len == 0 {
                pos = sector_end;
                continue;
            }
            if len < 34 || pos + len > sector_end.min(buf.len()) {
                return Err(bad(
                    "ISO 9660 directory record",
                    start + pos as u64,
                    format!("length {len} does not fit its sector"),
                ));
            }
            let r = &buf[pos..pos + len];
            pos += len;
            let id_len = usize::from(r[32]);
            if 33 + id_len > len {
                return Err(bad(
                    "ISO 9660 directory record",
                    start + pos as u64,
                    "identifier longer than the record",
                ));
            }
            let id = &r[33..33 + id_len];
            if id == [0] || id == [1] {
                continue; // "." and ".."
            }
            let flags = r[25];
            let extent = record_extent(r);
            let data = (u64::from(extent.lba) * SECTOR, u64::from(extent.size));
            if let Some((entry, loc)) = pending.as_mut() {
                loc.extents.push(data);
                entry.size += data.1;
                if flags & 0x80 == 0 {
                    nodes.push(pending.take().expect("pending"));
                }
                continue;
            }
            let su_start = 33 + id_len + usize::from(id_len % 2 == 0);
            let Some(node) =
                self.node(r, id, su_start.min(len), extent, start + (pos - len) as u64)?
            else {
                continue;
            };
            if flags & 0x80 != 0 && node.1.dir.is_none() {
                pending = Some(node);
            } else {
                nodes.push(node);
            }
        }
        nodes.extend(pending);
        Ok(nodes
            .into_iter()
            .map(|(mut entry, loc)| {
                entry.handle = Handle::new(loc);
                entry
            })
            .collect())
    }

    /// One entry from a directory record; `None` for entries Rock Ridge hides (relocated dirs).
    fn node(
        &self,
        r: &[u8],
        id: &[u8],
        su_start: usize,
        extent: Extent,
        at: u64,
    ) -> io::Result<Option<(DirEntry, Location)>> {
        let is_dir = r[25] & 0x02 != 0;
        let mut entry = DirEntry {
            name: match self.names {
                Names::Joliet => strip_version(&utf16_be(id)),
                _ => primary_name(id, is_dir),
            },
            kind: if is_dir {
                EntryKind::Directory
            } else {
                EntryKind::File
            },
            size: u64::from(extent.size),
            modified: short_time(&r[18..25]),
            mode: None,
            owner: None,
            links: 1,
            inode: u64::from(extent.lba),
            streams: Vec::new(),
            handle: Handle::new(()),
        };
        let mut dir = is_dir.then_some(extent);
        let mut named = false;
        if let Names::RockRidge { skip } = self.names {
            let rr =
                self.rock_ridge_entries(&r[su_start.saturating_add(skip).min(r.len())..], at)?;
            if rr.relocated {
                return Ok(None);
            }
            if let Some(name) = rr.name {
                entry.name = name;
                named = true;
            }
            if let Some(lba) = rr.child_link {
                // A deep directory moved elsewhere: this entry stands for it.
                dir = Some(self.dir_at(lba)?);
                entry.kind = EntryKind::Directory;
                entry.inode = u64::from(lba);
            }
            if let Some(target) = rr.symlink {
                entry.kind = EntryKind::Symlink(target);
            }
            entry.mode = rr.mode.map(|m| m & 0o7777);
            entry.owner = rr.owner;
            let special = match rr.mode.map(|m| m & 0o170000) {
                Some(0o020000) => Some("character device"),
                Some(0o060000) => Some("block device"),
                Some(0o010000) => Some("FIFO"),
                Some(0o140000) => Some("socket"),
                _ => None,
            };
            if let Some(what) = special {
                entry.kind = EntryKind::Special(what.into());
            }
            entry.modified = rr.modified.or(entry.modified);
        }
        // A Form 2 file's recorded size counts its sectors at 2048 bytes; each holds 2324.
        let form2_sector = match (&self.disc, dir) {
            (Some(disc), None) if xa_form2(&r[su_start.min(r.len())..]) => {
                Some(disc.form2_sector())
            }
            _ => None,
        };
        let form2 = form2_sector.is_some();
        let extents = match (dir, form2_sector) {
            (Some(_), _) => Vec::new(),
            (None, Some(form2_sector)) => {
                let sectors = u64::from(extent.size).div_ceil(SECTOR);
                entry.size = sectors * form2_sector;
                vec![(u64::from(extent.lba) * form2_sector, entry.size)]
            }
            (None, None) => vec![(u64::from(extent.lba) * SECTOR, u64::from(extent.size))],
        };
        Ok(Some((
            entry,
            Location {
                extents,
                form2,
                dir,
                named,
            },
        )))
    }

    /// The extent of the directory at `lba`, from its own "." record.
    fn dir_at(&self, lba: u32) -> io::Result<Extent> {
        let at = u64::from(lba) * SECTOR;
        if at + SECTOR > self.disk.size() {
            return Err(bad(
                "Rock Ridge CL entry",
                at,
                "points past the end of the volume",
            ));
        }
        let mut s = vec![0u8; 34];
        self.disk.read_exact_at(at, &mut s)?;
        Ok(record_extent(&s))
    }

    /// The Rock Ridge entries of one System Use area, following continuation areas.
    fn rock_ridge_entries(&self, first: &[u8], at: u64) -> io::Result<RockRidge> {
        let mut rr = RockRidge::default();
        let mut area = first.to_vec();
        for _ in 0..MAX_CONTINUATIONS {
            let mut next = None;
            let mut p = 0;
            while p + 4 <= area.len() {
                let (sig, len) = (&area[p..p + 2], usize::from(area[p + 2]));
                if len < 4 || p + len > area.len() {
                    break;
                }
                let d = &area[p + 4..p + len];
                match sig {
                    b"NM" if !d.is_empty() => {
                        let name = rr.name.get_or_insert_with(String::new);
                        if d[0] & 0x06 == 0 {
                            name.push_str(&String::from_utf8_lossy(&d[1..]));
                        }
                    }
                    b"PX" if d.len() >= 4 => {
                        rr.mode = Some(le32(d, 0));
                        // Both-endian fields of 8 bytes: mode, links, owner, group.
                        if d.len() >= 28 {
                            rr.owner = Some((le32(d, 16), le32(d, 24)));
                        }
                    }
                    b"SL" if !d.is_empty() => {
                        symlink_components(&d[1..], rr.symlink.get_or_insert_with(String::new))
                    }
                    b"TF" if !d.is_empty() => rr.modified = tf_modified(d),
                    b"CL" if d.len() >= 4 => rr.child_link = Some(le32(d, 0)),
                    b"RE" => rr.relocated = true,
                    b"CE" if d.len() >= 20 => next = Some((le32(d, 0), le32(d, 8), le32(d, 16))),
                    b"ST" => break,
                    _ => {}
                }
                p += len;
            }
            let Some((block, offset, length)) = next else {
                break;
            };
            let start = u64::from(block) * SECTOR + u64::from(offset);
            if length > SECTOR as u32 * 4 || start + u64::from(length) > self.disk.size() {
                return Err(bad(
                    "Rock Ridge CE entry",
                    at,
                    format!("continuation of {length} bytes at {start} does not fit"),
                ));
            }
            area = vec![0u8; length as usize];
            self.disk.read_exact_at(start, &mut area)?;
        }
        Ok(rr)
    }
}

#[derive(Default)]
struct RockRidge {
    name: Option<String>,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    symlink: Option<String>,
    modified: Option<i64>,
    child_link: Option<u32>,
    relocated: bool,
}

/// SL component records: `{flags, len, bytes}`; flags 2 ".", 4 "..", 8 root.
fn symlink_components(mut d: &[u8], target: &mut String) {
    while d.len() >= 2 {
        let (flags, len) = (d[0], usize::from(d[1]));
        let Some(bytes) = d.get(2..2 + len) else {
            break;
        };
        let part = match flags & 0x0E {
            0x02 => ".".to_string(),
            0x04 => "..".to_string(),
            0x08 => String::new(),
            _ => String::from_utf8_lossy(bytes).into_owned(),
        };
        if !(target.is_empty() || target.ends_with('/')) {
            target.push('/');
        }
        target.push_str(&part);
        if flags & 0x08 != 0 {
            target.push('/');
        }
        d = &d[2 + len..];
    }
}

fn strip_version(name: &str) -> String {
    match name.rsplit_once(';') {
        Some((base, v)) if v.chars().all(|c| c.is_ascii_digit()) => base.to_string(),
        _ => name.to_string(),
    }
}

/// A primary-tree name: "README.TXT;1" → "README.TXT", "FILE.;1" → "FILE".
fn primary_name(id: &[u8], is_dir: bool) -> String {
    let name = strip_version(&String::from_utf8_lossy(id));
    if is_dir {
        name
    } else {
        name.strip_suffix('.').map(str::to_string).unwrap_or(name)
    }
}

fn unix(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, gmt_quarters: i8) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(
        crate::fs::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s
            - i64::from(gmt_quarters) * 900,
    )
}

/// The 7-byte recording time of directory records and short TF entries.
fn short_time(t: &[u8]) -> Option<i64> {
    unix(
        1900 + i64::from(t[0]),
        t[1].into(),
        t[2].into(),
        t[3].into(),
        t[4].into(),
        t[5].into(),
        t[6] as i8,
    )
}

/// The 17-byte "YYYYMMDDHHMMSScc" + offset time of long TF entries.
fn long_time(t: &[u8]) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| std::str::from_utf8(&t[r]).ok()?.parse::<i64>().ok();
    unix(
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(8..10)?,
        n(10..12)?,
        n(12..14)?,
        t[16] as i8,
    )
}

/// The modification time of a TF entry: stamps appear in flag-bit order, creation first.
fn tf_modified(d: &[u8]) -> Option<i64> {
    let flags = d[0];
    if flags & 0x02 == 0 {
        return None;
    }
    let width = if flags & 0x80 != 0 { 17 } else { 7 };
    let at = 1 + if flags & 0x01 != 0 { width } else { 0 };
    let stamp = d.get(at..at + width)?;
    if width == 17 {
        long_time(stamp)
    } else {
        short_time(stamp)
    }
}

impl Volume for Iso9660 {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn boot_files(&self) -> io::Result<Vec<DirEntry>> {
        self.boot_entries()
    }

    fn used(&self) -> Option<u64> {
        Some(u64::from(self.sectors) * SECTOR)
    }

    fn root(&self) -> DirEntry {
        let location = Location {
            extents: Vec::new(),
            form2: false,
            dir: Some(self.root),
            named: false,
        };
        DirEntry::root(
            u64::from(self.root.lba),
            u64::from(self.root.size),
            Handle::new(location),
        )
    }

    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        let extent = location(dir)?.dir.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{}: not a folder", dir.name),
            )
        })?;
        let mut entries = self.entries(extent)?;
        if extent == self.root && matches!(self.names, Names::RockRidge { .. }) {
            // Where mkisofs and xorriso park deep folders; once they are shown in place (CL/RE),
            // the parking folder is mechanism, not content.
            let parking = |e: &DirEntry| {
                matches!(e.name.as_str(), "rr_moved" | ".rr_moved")
                    && e.kind == EntryKind::Directory
                    && self.read_dir(e).is_ok_and(|inside| inside.is_empty())
            };
            entries.retain(|e| !parking(e));
        }
        Ok(entries)
    }

    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        let loc = location(file)?;
        if file.kind != EntryKind::File {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file", file.name),
            ));
        }
        // On a CD, a file may lie past its first track; a Form 2 file is read 2324 bytes a sector.
        let data = match (&self.disc, loc.form2) {
            (Some(disc), true) => &disc.form2(),
            (Some(disc), false) => &disc.form1(),
            (None, _) => &self.disk,
        };
        if let Some(&(at, len)) = loc.extents.iter().find(|(at, len)| at + len > data.size()) {
            return Err(bad(
                "ISO 9660 file extent",
                at,
                format!("{len} bytes run past the end of the disc"),
            ));
        }
        Ok(Arc::new(Concat::extents(data, &loc.extents)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_names_decode() {
        // 2024-11-17 15:13:41 at GMT+1 (4 quarters) is 14:13:41 UTC; the long form is at GMT.
        assert_eq!(
            short_time(&[124, 11, 17, 15, 13, 41, 4]),
            Some(1_731_852_821)
        );
        assert_eq!(long_time(b"2024111715134100\x00"), Some(1_731_856_421));
        assert_eq!(primary_name(b"README.TXT;1", false), "README.TXT");
        assert_eq!(primary_name(b"FILE.;1", false), "FILE");
        let mut t = String::new();
        symlink_components(
            &[8, 0, 0, 3, b'u', b's', b'r', 0, 3, b'b', b'i', b'n'],
            &mut t,
        );
        assert_eq!(t, "/usr/bin");
    }
}
