//! UDF, read-only (ECMA-167, OSTA UDF 1.02 to 2.60): the anchor at sector 256 (N−256 and N as
//! fallbacks), the main volume descriptor sequence (else the reserve), the logical volume's
//! partition maps — physical, sparable (sparing tables), virtual (the VAT found at the last
//! written sector) and metadata (the metadata file, its mirror as fallback) — the file set
//! descriptor, file entries and extended file entries (ICB strategies 4 and 4096), allocation
//! descriptors short, long, extended and embedded, with continuations followed, file identifier
//! descriptors in OSTA CS0, symbolic links, named streams, and the integrity descriptor's
//! counts. Every descriptor's tag is checked; every chain and table is bounded.

use super::{
    bad, check_tag, cs0, dstring, mode, parse_ads, symlink_target, timestamp, Ad, Extent, Lb,
    AD_EMBEDDED, FID_DELETED, FID_PARENT, FT_BLOCK, FT_CHAR, FT_DIRECTORY, FT_FIFO, FT_FILE,
    FT_METADATA, FT_METADATA_MIRROR, FT_REALTIME, FT_SOCKET, FT_STREAM_DIR, FT_SYMLINK, FT_VAT20,
    TAG_AED, TAG_AVDP, TAG_EFE, TAG_FE, TAG_FID, TAG_FSD, TAG_IE, TAG_LVD, TAG_LVID, TAG_PD,
    TAG_PVD, TAG_TD, TAG_TE, TAG_VDP,
};
use crate::bytes::{le16, le32, le64};
use crate::fs::runs::{self, Piece};
use crate::fs::{Counts, DirEntry, EntryKind, Handle, Stream, Volume};
use crate::io::ReadAt;
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;

/// A directory's identifiers are read whole: at most this many bytes.
const MAX_DIR_BYTES: u64 = 256 << 20;
/// A symbolic link's path components, a VAT: at most this many bytes.
const MAX_LINK_BYTES: u64 = 64 << 10;
const MAX_VAT_BYTES: u64 = 64 << 20;
/// Blocks of a volume descriptor sequence read, pointers to its next extent followed.
const MAX_VDS_BLOCKS: u64 = 1024;
const MAX_VDS_HOPS: usize = 16;
/// Allocation extent descriptors a file's allocation descriptors continue through.
const MAX_AED_HOPS: usize = 1 << 16;
/// Indirect entries an ICB is followed through (strategy 4096 and indirect entries).
const MAX_ICB_HOPS: usize = 64;
/// Blocks mapped one by one (virtual and sparable partitions) for one file.
const MAX_MAPPED_BLOCKS: u64 = 1 << 26;
/// Blocks before the last one searched for the VAT's file entry.
const VAT_SEARCH: u64 = 64;

/// How a partition map's blocks reach the disk.
enum Map {
    /// Blocks from sector `start`, `len` of them.
    Physical { start: u64, len: u64 },
    /// A physical partition whose packets of `packet` blocks may have been moved elsewhere:
    /// the sparing table's packets, by their first block, and the sector they now start at.
    Sparable {
        start: u64,
        len: u64,
        packet: u64,
        spared: HashMap<u32, u32>,
    },
    /// Virtual blocks the VAT maps to blocks of partition map `under`; the bytes written up to
    /// the VAT, and the counts of files and folders its header keeps (UDF 2.00 and later).
    Virtual {
        vat: Vec<u32>,
        under: usize,
        written: u64,
        counts: Option<Counts>,
    },
    /// Blocks of the metadata file: its bytes' pieces on the disk and where each starts.
    Metadata {
        pieces: Vec<Piece>,
        starts: Vec<u64>,
    },
    /// Not read yet (while the maps are being put together).
    Pending,
}

/// What a file entry (or extended file entry) says.
#[derive(Clone, Debug)]
struct Icb {
    /// Where it was asked for (the identifier's address, before any indirect entry).
    at: Lb,
    file_type: u8,
    flags: u16,
    uid: u32,
    gid: u32,
    permissions: u32,
    links: u16,
    size: u64,
    modified: Option<i64>,
    /// The allocation descriptors, or the data embedded in the entry.
    area: Vec<u8>,
    /// An extended file entry's stream directory.
    streams: Option<Lb>,
}

/// A file identifier descriptor.
struct Fid {
    name: String,
    icb: Lb,
}

/// How the volume's blocks are found: the disk, its block size and the partition maps.
struct Space {
    source: Arc<dyn ReadAt>,
    bs: u64,
    maps: Vec<Map>,
}

pub struct Udf {
    space: Space,
    label: String,
    root: Icb,
    used: Option<u64>,
    counts: Option<Counts>,
    warnings: Vec<String>,
}

/// Where a block is, as errors name it.
fn place(at: Lb) -> String {
    format!("block {} of partition {}", at.block, at.part)
}

impl Space {
    fn sectors(&self) -> u64 {
        self.source.size() / self.bs
    }

    /// `len` bytes from absolute sector `sector`.
    fn read_sectors(&self, sector: u64, len: u64, what: &'static str) -> io::Result<Vec<u8>> {
        let at = sector.saturating_mul(self.bs);
        if at.saturating_add(len) > self.source.size() {
            return Err(bad(
                what,
                at,
                format!("sector {sector} lies past the disk's end"),
            ));
        }
        let mut b = vec![0u8; len as usize];
        self.source.read_exact_at(at, &mut b)?;
        Ok(b)
    }

    /// The disk's pieces holding `len` bytes from `at`, appended to `out`; `budget` counts down
    /// the blocks mapped one at a time.
    fn extent(&self, at: Lb, len: u64, out: &mut Vec<Piece>, budget: &mut u64) -> io::Result<()> {
        let what = "UDF partition map";
        let map = self.maps.get(usize::from(at.part)).ok_or_else(|| {
            bad(
                what,
                0,
                format!(
                    "{}: the volume has {} partition maps",
                    place(at),
                    self.maps.len()
                ),
            )
        })?;
        let bs = self.bs;
        let blocks = len.div_ceil(bs);
        let first = u64::from(at.block);
        let outside = |plen: u64| {
            bad(
                what,
                0,
                format!(
                    "{} blocks from {} lie past the partition's {plen} blocks",
                    blocks,
                    place(at)
                ),
            )
        };
        match map {
            Map::Physical { start, len: plen } => {
                if first + blocks > *plen {
                    return Err(outside(*plen));
                }
                runs::push(
                    out,
                    Piece::Disk {
                        at: (start + first) * bs,
                        len,
                    },
                );
            }
            Map::Sparable {
                start,
                len: plen,
                packet,
                spared,
            } => {
                if first + blocks > *plen {
                    return Err(outside(*plen));
                }
                let (mut b, end, mut left) = (first, first + blocks, len);
                while b < end {
                    let packet_start = b - b % packet;
                    let n = (packet_start + packet).min(end) - b;
                    *budget = budget.checked_sub(1).ok_or_else(|| {
                        bad(what, 0, "a file maps more blocks than a volume can hold")
                    })?;
                    let sector = match spared.get(&(packet_start as u32)) {
                        Some(&moved) => u64::from(moved) + (b - packet_start),
                        None => start + b,
                    };
                    let take = (n * bs).min(left);
                    runs::push(
                        out,
                        Piece::Disk {
                            at: sector * bs,
                            len: take,
                        },
                    );
                    left -= take;
                    b += n;
                }
            }
            Map::Virtual { vat, under, .. } => {
                if first + blocks > vat.len() as u64 {
                    return Err(outside(vat.len() as u64));
                }
                let mut left = len;
                for v in first..first + blocks {
                    *budget = budget.checked_sub(1).ok_or_else(|| {
                        bad(what, 0, "a file maps more blocks than a volume can hold")
                    })?;
                    let target = vat[v as usize];
                    if target == u32::MAX {
                        return Err(bad(
                            "UDF virtual allocation table",
                            0,
                            format!("virtual block {v} is not mapped"),
                        ));
                    }
                    let take = bs.min(left);
                    let real = Lb {
                        block: target,
                        part: *under as u16,
                    };
                    self.extent(real, take, out, budget)?;
                    left -= take;
                }
            }
            Map::Metadata { pieces, starts } => {
                let total =
                    starts.last().copied().unwrap_or(0) + pieces.last().map_or(0, Piece::len);
                let from = first * bs;
                if from + len > total {
                    return Err(outside(total / bs));
                }
                // The piece holding `from`, then on until `len` bytes are taken.
                let mut i = starts.partition_point(|&s| s <= from).saturating_sub(1);
                let (mut pos, mut left) = (from, len);
                while left > 0 && i < pieces.len() {
                    let into = pos - starts[i];
                    let take = (pieces[i].len() - into).min(left);
                    let piece = match pieces[i] {
                        Piece::Disk { at, .. } => Piece::Disk {
                            at: at + into,
                            len: take,
                        },
                        Piece::Zeros(_) => Piece::Zeros(take),
                    };
                    runs::push(out, piece);
                    pos += take;
                    left -= take;
                    i += 1;
                }
            }
            Map::Pending => {
                return Err(bad(
                    what,
                    0,
                    format!("{}: a partition not read yet", place(at)),
                ))
            }
        }
        Ok(())
    }

    /// `len` bytes from `at`.
    fn read(&self, at: Lb, len: u64) -> io::Result<Vec<u8>> {
        let mut pieces = Vec::new();
        self.extent(at, len, &mut pieces, &mut { MAX_MAPPED_BLOCKS })?;
        let mut b = vec![0u8; len as usize];
        let mut done = 0usize;
        for p in pieces {
            let n = p.len() as usize;
            if let Piece::Disk { at: off, .. } = p {
                if off.saturating_add(n as u64) > self.source.size() {
                    return Err(bad(
                        "UDF block",
                        off,
                        format!("{} lies past the disk's end", place(at)),
                    ));
                }
                self.source.read_exact_at(off, &mut b[done..done + n])?;
            }
            done += n;
        }
        Ok(b)
    }

    /// The file entry at `at`: followed through indirect entries and, under strategy 4096, to
    /// the newest entry its chain records.
    fn icb(&self, at: Lb, what: &str) -> io::Result<Icb> {
        let structure = "UDF file entry";
        let fail = |e: io::Error| bad(structure, 0, format!("{what} ({}): {e}", place(at)));
        let mut here = at;
        let mut seen = HashSet::new();
        let mut found: Option<Icb> = None;
        for _ in 0..MAX_ICB_HOPS {
            if !seen.insert(here) {
                break;
            }
            let b = match self.read(here, self.bs) {
                Ok(b) => b,
                Err(e) if found.is_none() => return Err(fail(e)),
                Err(_) => break,
            };
            let want: &[u16] = match found {
                None => &[TAG_FE, TAG_EFE, TAG_IE],
                Some(_) => &[TAG_FE, TAG_EFE, TAG_IE, TAG_TE],
            };
            let id = match check_tag(&b, want, Some(here.block), structure, 0) {
                Ok(id) => id,
                Err(e) if found.is_none() => return Err(fail(e)),
                Err(_) => break,
            };
            match id {
                TAG_TE => break,
                TAG_IE => {
                    // The indirect ICB's long_ad after the entry's ICB tag.
                    here = Lb::read(&b, 40);
                    continue;
                }
                _ => {}
            }
            let icb = self.parse_icb(&b, at).map_err(fail)?;
            let strategy = le16(&b, 20);
            found = Some(icb);
            if strategy != 4096 {
                break;
            }
            // Strategy 4096: the entry's next block may hold an indirect entry to a newer one.
            here = Lb {
                block: here.block.wrapping_add(1),
                part: here.part,
            };
        }
        found.ok_or_else(|| {
            bad(
                structure,
                0,
                format!("{what} ({}): its indirect entries loop", place(at)),
            )
        })
    }

    fn parse_icb(&self, b: &[u8], at: Lb) -> io::Result<Icb> {
        let extended = le16(b, 0) == TAG_EFE;
        let (header, ea_at, mtime) = match extended {
            true => (216usize, 208, 92),
            false => (176, 168, 84),
        };
        let (l_ea, l_ad) = (le32(b, ea_at) as usize, le32(b, ea_at + 4) as usize);
        let area = header
            .checked_add(l_ea)
            .and_then(|s| s.checked_add(l_ad).map(|e| (s, e)))
            .filter(|&(_, e)| e <= b.len())
            .map(|(s, e)| b[s..e].to_vec())
            .ok_or_else(|| {
                bad(
                    "UDF file entry",
                    0,
                    format!(
                        "{l_ea} bytes of extended attributes and {l_ad} of allocation \
                         descriptors do not fit in a block of {}",
                        b.len()
                    ),
                )
            })?;
        let streams =
            Some(Lb::read(b, 156)).filter(|_| extended && le32(b, 152) & 0x3FFF_FFFF != 0);
        Ok(Icb {
            at,
            file_type: b[27],
            flags: le16(b, 34),
            uid: le32(b, 36),
            gid: le32(b, 40),
            permissions: le32(b, 44),
            links: le16(b, 48),
            size: le64(b, 56),
            modified: timestamp(&b[mtime..mtime + 12]),
            area,
            streams,
        })
    }

    /// The pieces of `icb`'s data, allocation extent descriptors followed, until `size` bytes.
    fn pieces(&self, icb: &Icb, what: &str) -> io::Result<Vec<Piece>> {
        let ad_type = icb.flags & 7;
        if ad_type > 2 {
            return Err(bad(
                "UDF file entry",
                0,
                format!("{what}: allocation descriptors of type {ad_type}"),
            ));
        }
        let mut ads: Vec<Ad> = parse_ads(&icb.area, ad_type, icb.at.part);
        let (mut pieces, mut total, mut i) = (Vec::new(), 0u64, 0usize);
        let (mut hops, mut seen) = (0usize, HashSet::new());
        let mut budget = MAX_MAPPED_BLOCKS;
        while total < icb.size && i < ads.len() {
            let ad = ads[i];
            i += 1;
            match ad.kind {
                Extent::Continue => {
                    hops += 1;
                    if hops > MAX_AED_HOPS || !seen.insert(ad.at) {
                        return Err(bad(
                            "UDF allocation extent descriptor",
                            0,
                            format!(
                                "{what}: its allocation descriptors continue in a loop (at {})",
                                place(ad.at)
                            ),
                        ));
                    }
                    let b = self.read(ad.at, self.bs)?;
                    let structure = "UDF allocation extent descriptor";
                    check_tag(&b, &[TAG_AED], Some(ad.at.block), structure, 0).map_err(|e| {
                        bad(structure, 0, format!("{what} ({}): {e}", place(ad.at)))
                    })?;
                    let l_ad = (le32(&b, 20) as usize).min(b.len() - 24);
                    ads = parse_ads(&b[24..24 + l_ad], ad_type, icb.at.part);
                    i = 0;
                }
                Extent::Zeros => {
                    runs::push(&mut pieces, Piece::Zeros(u64::from(ad.len)));
                    total += u64::from(ad.len);
                }
                Extent::Recorded => {
                    self.extent(ad.at, u64::from(ad.len), &mut pieces, &mut budget)
                        .map_err(|e| bad("UDF allocation descriptor", 0, format!("{what}: {e}")))?;
                    total += u64::from(ad.len);
                }
            }
        }
        Ok(pieces)
    }

    /// `icb`'s bytes.
    fn data(&self, icb: &Icb, what: &str) -> io::Result<Arc<dyn ReadAt>> {
        if icb.flags & 7 == AD_EMBEDDED {
            if icb.size > icb.area.len() as u64 {
                return Err(bad(
                    "UDF file entry",
                    0,
                    format!(
                        "{what}: {} bytes, {} of them embedded in its entry",
                        icb.size,
                        icb.area.len()
                    ),
                ));
            }
            return Ok(Arc::new(icb.area[..icb.size as usize].to_vec()));
        }
        if icb.size == 0 {
            return Ok(Arc::new(Vec::new()));
        }
        let pieces = self.pieces(icb, what)?;
        let short = |problem: String| bad("UDF file", 0, format!("{what}: {problem}"));
        runs::assemble(&self.source, &pieces, icb.size, icb.size, short)
    }

    /// `icb`'s bytes read whole, at most `limit` of them.
    fn bytes(&self, icb: &Icb, limit: u64, what: &str) -> io::Result<Vec<u8>> {
        if icb.size > limit {
            return Err(bad(
                "UDF file entry",
                0,
                format!(
                    "{what}: {} bytes, more than the {limit} read whole",
                    icb.size
                ),
            ));
        }
        let data = self.data(icb, what)?;
        let mut b = vec![0u8; icb.size as usize];
        data.read_exact_at(0, &mut b)?;
        Ok(b)
    }

    /// The file identifiers of directory `dir`, parents and deleted ones left out.
    fn fids(&self, dir: &Icb, what: &str) -> io::Result<Vec<Fid>> {
        if dir.file_type != FT_DIRECTORY && dir.file_type != FT_STREAM_DIR {
            return Err(bad(
                "UDF file entry",
                0,
                format!("{what}: a file of type {}, not a directory", dir.file_type),
            ));
        }
        let b = self.bytes(dir, MAX_DIR_BYTES, what)?;
        let mut out = Vec::new();
        let mut at = 0usize;
        while at + 38 <= b.len() {
            let structure = "UDF file identifier descriptor";
            let d = &b[at..];
            let (l_fi, l_iu) = (usize::from(d[19]), usize::from(le16(d, 36)));
            let len = (38 + l_iu + l_fi + 3) & !3;
            if len > d.len() {
                return Err(bad(
                    structure,
                    at as u64,
                    format!(
                        "{what}: an identifier of {len} bytes at byte {at} of a directory of {}",
                        b.len()
                    ),
                ));
            }
            check_tag(&d[..len], &[TAG_FID], None, structure, at as u64).map_err(|e| {
                bad(
                    structure,
                    at as u64,
                    format!("{what}, byte {at} of the directory: {e}"),
                )
            })?;
            if d[18] & (FID_DELETED | FID_PARENT) == 0 && l_fi > 0 {
                out.push(Fid {
                    name: cs0(&d[38 + l_iu..38 + l_iu + l_fi]),
                    icb: Lb::read(d, 24),
                });
            }
            at += len;
        }
        Ok(out)
    }

    /// The named streams of `icb`: each name and file entry.
    fn streams(&self, icb: &Icb, what: &str) -> io::Result<Vec<(String, Icb)>> {
        let Some(at) = icb.streams else {
            return Ok(Vec::new());
        };
        let dir = self.icb(at, &format!("{what}'s stream directory"))?;
        self.fids(&dir, what)?
            .into_iter()
            .map(|f| {
                let stream = self.icb(f.icb, &format!("{what}'s stream {}", f.name))?;
                Ok((f.name, stream))
            })
            .collect()
    }
}

/// The volume descriptors a sequence holds: the prevailing one of each (the highest sequence
/// number), the partitions by number.
#[derive(Default)]
struct Descriptors {
    pvd: Option<(u32, Vec<u8>)>,
    lvd: Option<(u32, Vec<u8>)>,
    partitions: HashMap<u16, (u32, Vec<u8>)>,
}

fn keep(slot: &mut Option<(u32, Vec<u8>)>, b: Vec<u8>) {
    let n = le32(&b, 16);
    if slot.as_ref().is_none_or(|(m, _)| n >= *m) {
        *slot = Some((n, b));
    }
}

impl Udf {
    pub fn open(source: Arc<dyn ReadAt>) -> io::Result<Self> {
        let (bs, anchor) = find_anchor(&*source)?;
        let mut space = Space {
            source,
            bs,
            maps: Vec::new(),
        };
        let mut warnings = Vec::new();
        let (main, reserve) = (
            (le32(&anchor, 16), le32(&anchor, 20)),
            (le32(&anchor, 24), le32(&anchor, 28)),
        );
        let descriptors = match read_vds(&space, main) {
            Ok(d) => d,
            Err(first) => {
                let d = read_vds(&space, reserve).map_err(|_| first)?;
                warnings.push(
                    "the main volume descriptor sequence is damaged: the reserve one is read"
                        .to_string(),
                );
                d
            }
        };
        let (_, lvd) = descriptors.lvd.clone().expect("read_vds has one");
        let lvd_block = u64::from(le32(&lvd, 212));
        if lvd_block != bs {
            return Err(bad(
                "UDF logical volume descriptor",
                0,
                format!("logical blocks of {lvd_block} bytes on sectors of {bs}"),
            ));
        }
        let mut label = dstring(&lvd[84..212]);
        if label.is_empty() {
            if let Some((_, pvd)) = &descriptors.pvd {
                label = dstring(&pvd[24..56]);
            }
        }
        read_maps(&mut space, &lvd, &descriptors)?;
        // The file set descriptor, and the root directory it names.
        let fsd_at = Lb::read(&lvd, 252);
        let structure = "UDF file set descriptor";
        let fsd = space
            .read(fsd_at, bs)
            .and_then(|b| check_tag(&b, &[TAG_FSD], Some(fsd_at.block), structure, 0).map(|_| b))
            .map_err(|e| bad(structure, 0, format!("at {}: {e}", place(fsd_at))))?;
        let root = space.icb(Lb::read(&fsd, 404), "the root directory")?;
        if root.file_type != FT_DIRECTORY {
            return Err(bad(
                structure,
                0,
                format!("the root is a file of type {}", root.file_type),
            ));
        }
        let (mut used, mut counts) = integrity(&space, &lvd, &mut warnings);
        // On a disc written in sessions the VAT holds what the integrity descriptor would: it
        // stays open, and the space used is all that was written.
        for map in &space.maps {
            if let Map::Virtual {
                written,
                counts: vat_counts,
                ..
            } = map
            {
                warnings.retain(|w| !w.contains("integrity descriptor"));
                used = Some(*written);
                counts = vat_counts.or(counts);
            }
        }
        Ok(Udf {
            space,
            label,
            root,
            used,
            counts,
            warnings,
        })
    }

    fn entry(&self, name: String, icb: Icb) -> DirEntry {
        let what = format!("“{name}”");
        let kind = match icb.file_type {
            FT_DIRECTORY => EntryKind::Directory,
            FT_SYMLINK => EntryKind::Symlink(
                self.space
                    .bytes(&icb, MAX_LINK_BYTES, &what)
                    .ok()
                    .and_then(|b| symlink_target(&b))
                    .unwrap_or_default(),
            ),
            FT_BLOCK => EntryKind::Special("block device".into()),
            FT_CHAR => EntryKind::Special("character device".into()),
            FT_FIFO => EntryKind::Special("FIFO".into()),
            FT_SOCKET => EntryKind::Special("socket".into()),
            _ => EntryKind::File,
        };
        let streams = self
            .space
            .streams(&icb, &what)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, s)| Stream { name, size: s.size })
            .collect();
        DirEntry {
            name,
            // A link is as long as its target (as lstat tells), not its path components.
            size: match &kind {
                EntryKind::Directory => 0,
                EntryKind::Symlink(target) => target.len() as u64,
                _ => icb.size,
            },
            kind,
            modified: icb.modified,
            mode: Some(mode(icb.permissions, icb.flags)),
            owner: (icb.uid != u32::MAX && icb.gid != u32::MAX).then_some((icb.uid, icb.gid)),
            links: u32::from(icb.links.max(1)),
            inode: icb.at.id(),
            streams,
            handle: Handle::new(icb),
        }
    }
}

/// The anchor volume descriptor pointer and the sector size it was found with: at sector 256,
/// else N−256 or N (the last sector), else 512 (a disc written in packets, not yet closed).
fn find_anchor(source: &dyn ReadAt) -> io::Result<(u64, Vec<u8>)> {
    for bs in [2048u64, 512, 1024, 4096] {
        let sectors = source.size() / bs;
        for at in [
            256,
            sectors.saturating_sub(256),
            sectors.saturating_sub(1),
            512,
        ] {
            if at < 256 || (at + 1) * bs > source.size() {
                continue;
            }
            let mut b = vec![0u8; bs as usize];
            source.read_exact_at(at * bs, &mut b)?;
            let anchor = "UDF anchor volume descriptor pointer";
            if check_tag(&b, &[TAG_AVDP], Some(at as u32), anchor, at * bs).is_ok() {
                return Ok((bs, b));
            }
        }
    }
    Err(bad(
        "UDF anchor volume descriptor pointer",
        256 * 2048,
        "none at sector 256, N−256 or N, in sectors of 512 to 4096 bytes",
    ))
}

/// The volume descriptor sequence in `extent` (its length in bytes, its first sector).
fn read_vds(space: &Space, extent: (u32, u32)) -> io::Result<Descriptors> {
    let structure = "UDF volume descriptor sequence";
    let mut d = Descriptors::default();
    let (mut len, mut sector) = (u64::from(extent.0), u64::from(extent.1));
    let mut hops = 0;
    let mut n = 0;
    'sequence: loop {
        let blocks = (len / space.bs).min(MAX_VDS_BLOCKS);
        for k in 0..blocks {
            n += 1;
            if n > MAX_VDS_BLOCKS {
                break 'sequence;
            }
            let s = sector + k;
            let Ok(b) = space.read_sectors(s, space.bs, structure) else {
                break 'sequence;
            };
            let want = [TAG_PVD, TAG_VDP, 4, TAG_PD, TAG_LVD, 7, TAG_TD];
            let Ok(id) = check_tag(&b, &want, Some(s as u32), structure, s * space.bs) else {
                break 'sequence;
            };
            match id {
                TAG_PVD => keep(&mut d.pvd, b),
                TAG_LVD => {
                    // The partition maps may run past the first block.
                    let whole = 440 + u64::from(le32(&b, 264));
                    let b = match whole > space.bs {
                        true => space.read_sectors(s, whole.min(64 << 10), structure)?,
                        false => b,
                    };
                    keep(&mut d.lvd, b)
                }
                TAG_PD => {
                    let number = le16(&b, 22);
                    let seq = le32(&b, 16);
                    if d.partitions.get(&number).is_none_or(|(m, _)| seq >= *m) {
                        d.partitions.insert(number, (seq, b));
                    }
                }
                TAG_VDP => {
                    hops += 1;
                    if hops > MAX_VDS_HOPS {
                        break 'sequence;
                    }
                    len = u64::from(le32(&b, 20));
                    sector = u64::from(le32(&b, 24));
                    continue 'sequence;
                }
                TAG_TD => break 'sequence,
                _ => {}
            }
        }
        break;
    }
    if d.lvd.is_none() || d.partitions.is_empty() {
        return Err(bad(
            structure,
            u64::from(extent.1) * space.bs,
            format!(
                "the sequence at sector {} has {} logical volume descriptor and {} partition \
                 descriptors",
                extent.1,
                match d.lvd {
                    Some(_) => "a",
                    None => "no",
                },
                d.partitions.len()
            ),
        ));
    }
    Ok(d)
}

/// The partition maps of logical volume descriptor `lvd`, into `space`.
fn read_maps(space: &mut Space, lvd: &[u8], d: &Descriptors) -> io::Result<()> {
    let structure = "UDF partition map";
    let count = le32(lvd, 268) as usize;
    let table = &lvd[440.min(lvd.len())..(440 + le32(lvd, 264) as usize).min(lvd.len())];
    let partition = |number: u16| -> io::Result<(u64, u64)> {
        let (_, pd) = d.partitions.get(&number).ok_or_else(|| {
            bad(
                structure,
                0,
                format!("partition {number} has no partition descriptor"),
            )
        })?;
        Ok((u64::from(le32(pd, 188)), u64::from(le32(pd, 192))))
    };
    // The type-2 maps read once the physical ones are there: (index, kind, the map's bytes).
    let mut later = Vec::new();
    let mut at = 0usize;
    for index in 0..count.min(64) {
        let (Some(&kind), Some(&len)) = (table.get(at), table.get(at + 1)) else {
            return Err(bad(
                structure,
                0,
                format!("{count} maps in a table of {} bytes", table.len()),
            ));
        };
        let m = table
            .get(at..at + usize::from(len))
            .filter(|_| len >= 6)
            .ok_or_else(|| {
                bad(
                    structure,
                    0,
                    format!(
                        "map {index} of {len} bytes at byte {at} of a table of {}",
                        table.len()
                    ),
                )
            })?;
        at += usize::from(len);
        match kind {
            1 => {
                let (start, plen) = partition(le16(m, 4))?;
                space.maps.push(Map::Physical { start, len: plen });
            }
            2 if m.len() >= 64 => {
                let ident = &m[5..28];
                let number = le16(m, 38);
                if ident.starts_with(b"*UDF Sparable Partition") {
                    let (start, plen) = partition(number)?;
                    space.maps.push(sparable(space, m, start, plen)?);
                } else {
                    space.maps.push(Map::Pending);
                    later.push((index, number, m.to_vec()));
                }
            }
            _ => {
                return Err(bad(
                    structure,
                    0,
                    format!("map {index} is of type {kind} ({len} bytes)"),
                ))
            }
        }
    }
    for (index, number, m) in later {
        // The physical map of the same partition, which the virtual or metadata one lies in.
        let under = (0..space.maps.len())
            .find(|&i| {
                i != index
                    && matches!(space.maps[i], Map::Physical { .. } | Map::Sparable { .. })
                    && partition(number).ok() == physical_extent(&space.maps[i])
            })
            .ok_or_else(|| {
                bad(
                    structure,
                    0,
                    format!("map {index}: partition {number} has no physical map"),
                )
            })?;
        let ident = &m[5..28];
        space.maps[index] = if ident.starts_with(b"*UDF Virtual Partition") {
            virtual_map(space, under)?
        } else if ident.starts_with(b"*UDF Metadata Partition") {
            let (file, mirror) = (le32(&m, 40), le32(&m, 44));
            let main = metadata(
                space,
                Lb {
                    block: file,
                    part: under as u16,
                },
                FT_METADATA,
            );
            match main {
                Ok(map) => map,
                Err(e) => {
                    let at = Lb {
                        block: mirror,
                        part: under as u16,
                    };
                    metadata(space, at, FT_METADATA_MIRROR).map_err(|_| e)?
                }
            }
        } else {
            let name = String::from_utf8_lossy(ident)
                .trim_end_matches('\0')
                .to_string();
            return Err(bad(
                structure,
                0,
                format!("map {index} is a partition of kind “{name}”"),
            ));
        };
    }
    if space.maps.is_empty() {
        return Err(bad(
            structure,
            0,
            "the logical volume has no partition maps",
        ));
    }
    Ok(())
}

fn physical_extent(map: &Map) -> Option<(u64, u64)> {
    match *map {
        Map::Physical { start, len } | Map::Sparable { start, len, .. } => Some((start, len)),
        _ => None,
    }
}

/// A sparable partition map: the first of its sparing tables whose tag checks out.
fn sparable(space: &Space, m: &[u8], start: u64, len: u64) -> io::Result<Map> {
    let structure = "UDF sparing table";
    let packet = u64::from(le16(m, 40));
    let (tables, size) = (usize::from(m[42]).min(4), u64::from(le32(m, 44)));
    if packet == 0 {
        return Err(bad(structure, 0, "packets of 0 blocks"));
    }
    let size = size.clamp(56, 56 + 8 * 0xFFFF);
    let mut last = None;
    for k in 0..tables {
        let sector = u64::from(le32(m, 48 + 4 * k));
        let table = space.read_sectors(sector, size.div_ceil(space.bs) * space.bs, structure);
        let checked = table.and_then(|b| {
            check_tag(&b, &[0], Some(sector as u32), structure, sector * space.bs)?;
            match b[17..].starts_with(b"*UDF Sparing Table") {
                true => Ok(b),
                false => Err(bad(structure, sector * space.bs, "no *UDF Sparing Table")),
            }
        });
        match checked {
            Ok(b) => {
                let entries = usize::from(le16(&b, 48)).min((b.len() - 56) / 8);
                let spared = b[56..56 + 8 * entries]
                    .chunks_exact(8)
                    .filter(|e| le32(e, 0) < 0xFFFF_FFF0)
                    .map(|e| (le32(e, 0), le32(e, 4)))
                    .collect();
                return Ok(Map::Sparable {
                    start,
                    len,
                    packet,
                    spared,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| bad(structure, 0, "the map names no sparing table")))
}

/// A virtual partition map: the VAT, found in the last blocks written, over physical map
/// `under`.
fn virtual_map(space: &Space, under: usize) -> io::Result<Map> {
    let structure = "UDF virtual allocation table";
    let Some((start, plen)) = physical_extent(&space.maps[under]) else {
        return Err(bad(structure, 0, "no physical partition under it"));
    };
    let last = space.sectors().saturating_sub(1);
    for sector in (last.saturating_sub(VAT_SEARCH)..=last).rev() {
        if sector < start || sector >= start + plen {
            continue;
        }
        let at = Lb {
            block: (sector - start) as u32,
            part: under as u16,
        };
        let Ok(icb) = space.icb(at, "the VAT") else {
            continue;
        };
        let Ok(b) = space.bytes(&icb, MAX_VAT_BYTES, "the VAT") else {
            continue;
        };
        let mut counts = None;
        let table = match icb.file_type {
            // UDF 2.00 and later: a header whose length it gives, then the entries.
            FT_VAT20 => {
                let header = usize::from(le16(&b, 0).max(152));
                if b.len() >= 152 {
                    counts = counted(le32(&b, 132), le32(&b, 136));
                }
                b.get(header..)
            }
            // UDF 1.50: the entries, then "*UDF Virtual Alloc Tbl" and the previous VAT.
            0 if b.len() >= 36 && b[b.len() - 35..].starts_with(b"*UDF Virtual Alloc Tbl") => {
                b.get(..b.len() - 36)
            }
            _ => None,
        };
        if let Some(table) = table {
            let vat = table.chunks_exact(4).map(|c| le32(c, 0)).collect();
            return Ok(Map::Virtual {
                vat,
                under,
                written: (sector + 1 - start) * space.bs,
                counts,
            });
        }
    }
    Err(bad(
        structure,
        last * space.bs,
        format!("none in the last {VAT_SEARCH} sectors of the disk"),
    ))
}

/// A metadata partition map: the pieces of the metadata file (or its mirror) at `at`.
fn metadata(space: &Space, at: Lb, file_type: u8) -> io::Result<Map> {
    let what = match file_type {
        FT_METADATA => "the metadata file",
        _ => "the metadata mirror file",
    };
    let icb = space.icb(at, what)?;
    if icb.file_type != file_type || icb.flags & 7 == AD_EMBEDDED {
        return Err(bad(
            "UDF metadata file",
            0,
            format!(
                "{what} at {} is a file of type {}",
                place(at),
                icb.file_type
            ),
        ));
    }
    let pieces = space.pieces(&icb, what)?;
    let mut starts = Vec::with_capacity(pieces.len());
    let mut pos = 0u64;
    for p in &pieces {
        starts.push(pos);
        pos += p.len();
    }
    Ok(Map::Metadata { pieces, starts })
}

/// Bytes in use and the counts of files and folders, from the last logical volume integrity
/// descriptor of the sequence the logical volume descriptor names.
fn integrity(
    space: &Space,
    lvd: &[u8],
    warnings: &mut Vec<String>,
) -> (Option<u64>, Option<Counts>) {
    let structure = "UDF logical volume integrity descriptor";
    let (mut len, mut sector) = (u64::from(le32(lvd, 432)), u64::from(le32(lvd, 436)));
    let mut last: Option<Vec<u8>> = None;
    let mut n = 0;
    'sequence: while len >= space.bs && n < 64 {
        for k in 0..(len / space.bs).min(64) {
            n += 1;
            let s = sector + k;
            let Ok(b) = space.read_sectors(s, space.bs, structure) else {
                break 'sequence;
            };
            match check_tag(&b, &[TAG_LVID, TAG_TD], Some(s as u32), structure, 0) {
                Ok(TAG_LVID) => {
                    let next = (u64::from(le32(&b, 32)), u64::from(le32(&b, 36)));
                    last = Some(b);
                    if next.0 > 0 {
                        (len, sector) = next;
                        continue 'sequence;
                    }
                }
                _ => break 'sequence,
            }
        }
        break;
    }
    let Some(b) = last else {
        return (None, None);
    };
    if le32(&b, 28) == 0 {
        warnings.push(
            "the volume's integrity descriptor says it is open (not cleanly closed): it is \
             shown as it is on the disk"
                .to_string(),
        );
    }
    let parts = le32(&b, 72) as usize;
    let iu = 80 + 8 * parts;
    if parts > 64 || iu > b.len() {
        return (None, None);
    }
    let mut used = None;
    for p in 0..parts {
        let (free, size) = (le32(&b, 80 + 4 * p), le32(&b, 80 + 4 * parts + 4 * p));
        if free != u32::MAX && size != u32::MAX && size >= free {
            *used.get_or_insert(0u64) += u64::from(size - free) * space.bs;
        }
    }
    let counts = (iu + 40 <= b.len() && le32(&b, 76) >= 40)
        .then(|| counted(le32(&b, iu + 32), le32(&b, iu + 36)))
        .flatten();
    (used, counts)
}

/// The counts of files and directories a VAT or an integrity descriptor keeps (all ones: not
/// kept). The root is counted among the directories.
fn counted(files: u32, dirs: u32) -> Option<Counts> {
    (files != u32::MAX && dirs != u32::MAX).then(|| Counts {
        files: u64::from(files),
        folders: u64::from(dirs).saturating_sub(1),
    })
}

impl Volume for Udf {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn root(&self) -> DirEntry {
        DirEntry::root(self.root.at.id(), 0, Handle::new(self.root.clone()))
    }

    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        let icb = dir.handle.get::<Icb>()?;
        let what = match dir.name.as_str() {
            "" => "the root directory".to_string(),
            name => format!("the directory “{name}”"),
        };
        self.space
            .fids(icb, &what)?
            .into_iter()
            .map(|fid| {
                let child = self
                    .space
                    .icb(fid.icb, &format!("“{}” in {what}", fid.name))?;
                Ok(self.entry(fid.name, child))
            })
            .collect()
    }

    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        let icb = file.handle.get::<Icb>()?;
        match icb.file_type {
            FT_DIRECTORY | FT_STREAM_DIR => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: a folder, not a file", file.name),
            )),
            FT_FILE | FT_SYMLINK | FT_REALTIME | 0 => {
                self.space.data(icb, &format!("the file “{}”", file.name))
            }
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: a file of type {other} has no data", file.name),
            )),
        }
    }

    fn open_stream(&self, entry: &DirEntry, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        let icb = entry.handle.get::<Icb>()?;
        let what = format!("“{}”", entry.name);
        for (n, stream) in self.space.streams(icb, &what)? {
            if n == name {
                return self.space.data(&stream, &format!("{what}'s stream {name}"));
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no stream {name}", entry.name),
        ))
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn used(&self) -> Option<u64> {
        self.used
    }

    fn counts(&self) -> Option<Counts> {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: usize = 512;

    /// A descriptor's tag made whole: its CRC over `crc_len` bytes, its location, its checksum.
    fn seal(b: &mut [u8], id: u16, location: u32, crc_len: usize) {
        b[0..2].copy_from_slice(&id.to_le_bytes());
        b[2..4].copy_from_slice(&3u16.to_le_bytes());
        b[10..12].copy_from_slice(&(crc_len as u16).to_le_bytes());
        b[12..16].copy_from_slice(&location.to_le_bytes());
        super::super::seal_tag(b);
    }

    /// A space of `blocks` blocks of 512 bytes, one physical partition from sector 0.
    fn space(disk: Vec<u8>) -> Space {
        let blocks = (disk.len() / BS) as u64;
        Space {
            source: Arc::new(disk),
            bs: BS as u64,
            maps: vec![Map::Physical {
                start: 0,
                len: blocks,
            }],
        }
    }

    fn file(size: u64, area: Vec<u8>) -> Icb {
        Icb {
            at: Lb { block: 0, part: 0 },
            file_type: FT_FILE,
            flags: super::super::AD_SHORT,
            uid: 0,
            gid: 0,
            permissions: 0,
            links: 1,
            size,
            modified: None,
            area,
            streams: None,
        }
    }

    fn short_ad(kind: u32, len: u32, block: u32) -> Vec<u8> {
        let mut d = ((kind << 30) | len).to_le_bytes().to_vec();
        d.extend(block.to_le_bytes());
        d
    }

    #[test]
    fn a_continuation_that_loops_is_an_error() {
        let mut disk = vec![0u8; 8 * BS];
        // Block 3: an allocation extent descriptor whose only descriptor continues at block 3.
        let aed = &mut disk[3 * BS..4 * BS];
        aed[20..24].copy_from_slice(&8u32.to_le_bytes());
        aed[24..32].copy_from_slice(&short_ad(3, BS as u32, 3));
        seal(aed, TAG_AED, 3, 16);
        let space = space(disk);
        let icb = file(1 << 40, short_ad(3, BS as u32, 3));
        let e = space.pieces(&icb, "f").unwrap_err().to_string();
        assert!(e.contains("loop"), "{e}");
        // A continuation to a block that is no allocation extent descriptor.
        let icb = file(100, short_ad(3, BS as u32, 5));
        assert!(space.pieces(&icb, "f").is_err());
    }

    #[test]
    fn extents_of_every_kind_make_the_file() {
        let mut disk = vec![0u8; 8 * BS];
        disk[2 * BS..3 * BS].fill(0xAA);
        disk[6 * BS..7 * BS].fill(0xBB);
        // Recorded at block 2, zeros not recorded, then a continuation to block 5 whose
        // descriptor names block 6.
        let aed = &mut disk[5 * BS..6 * BS];
        aed[20..24].copy_from_slice(&8u32.to_le_bytes());
        aed[24..32].copy_from_slice(&short_ad(0, 100, 6));
        seal(aed, TAG_AED, 5, 16);
        let space = space(disk);
        let mut area = short_ad(0, BS as u32, 2);
        area.extend(short_ad(1, 10, 0));
        area.extend(short_ad(3, BS as u32, 5));
        let icb = file(BS as u64 + 10 + 100, area);
        let data = space.data(&icb, "f").unwrap();
        let mut b = vec![0u8; data.size() as usize];
        data.read_exact_at(0, &mut b).unwrap();
        assert!(b[..BS].iter().all(|&v| v == 0xAA));
        assert!(b[BS..BS + 10].iter().all(|&v| v == 0));
        assert!(b[BS + 10..].iter().all(|&v| v == 0xBB));
        // Past the partition: an error, not a read.
        let icb = file(BS as u64, short_ad(0, BS as u32, 8));
        assert!(space.data(&icb, "f").is_err());
    }

    #[test]
    fn indirect_entries_that_loop_are_an_error() {
        let mut disk = vec![0u8; 8 * BS];
        for (at, to) in [(2u32, 3u32), (3, 2)] {
            let b = &mut disk[at as usize * BS..(at as usize + 1) * BS];
            b[40..44].copy_from_slice(&to.to_le_bytes());
            seal(b, TAG_IE, at, 36);
        }
        let space = space(disk);
        let e = space
            .icb(Lb { block: 2, part: 0 }, "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("loop"), "{e}");
    }

    #[test]
    fn spared_packets_are_read_where_the_table_moved_them() {
        let mut s = space(vec![0u8; 64 * BS]);
        s.maps = vec![Map::Sparable {
            start: 4,
            len: 40,
            packet: 4,
            spared: HashMap::from([(4, 50)]),
        }];
        let mut pieces = Vec::new();
        s.extent(Lb { block: 2, part: 0 }, 6 * BS as u64, &mut pieces, &mut {
            100
        })
        .unwrap();
        let b = BS as u64;
        assert_eq!(
            pieces,
            [
                Piece::Disk {
                    at: 6 * b,
                    len: 2 * b
                },
                Piece::Disk {
                    at: 50 * b,
                    len: 4 * b
                },
            ]
        );
        assert!(s
            .extent(Lb { block: 38, part: 0 }, 3 * b, &mut pieces, &mut { 100 })
            .is_err());
    }
}
