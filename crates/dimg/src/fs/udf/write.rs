//! Writing UDF 1.02 (ECMA-167 3rd edition, OSTA UDF 1.02: what `hdiutil makehybrid -udf` writes)
//! or 2.01 (NSR03, descriptor tags of version 3) from a folder, as a virtual disk: the descriptors in memory, the files' bytes read from the
//! folder only when the disk is read. Layout, in 2048-byte sectors: the volume recognition
//! sequence at 16 (BEA01, NSR02 or NSR03, TEA01), the main volume descriptor sequence at 32 and its
//! reserve at 48, the integrity sequence at 64, an anchor at 256; then one read-only partition
//! holding the file set descriptor and, in tree order, each node's file entry (ICB strategy 4)
//! followed by its data (a folder's file identifiers, a file's bytes, in short allocation
//! descriptors); then anchors at N−256 and at the last sector. Symlinks are left out (and
//! reported): 7-Zip, like Windows, refuses a whole disc over one symlink's file entry.

use super::{seal_tag, TAG_FE, TAG_FID, TAG_FSD, TAG_LVD, TAG_LVID, TAG_PD, TAG_PVD, TAG_TD};
use super::{AD_SHORT, FID_PARENT, FT_DIRECTORY, FT_FILE, TAG_AVDP};
use crate::error::{Error, Result};
use crate::fs::civil;
use crate::fs::tree::{NodeKind, SourceFile, Tree};
use crate::io::{Assembly, ReadAt, Zeros};
use std::sync::Arc;

/// What the UDF writer needs beyond the tree.
pub struct Options {
    pub volume_name: String,
    pub revision: Revision,
}

/// The UDF revisions written: hdiutil's default and the one DVD video discs of today carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revision {
    Udf102,
    Udf201,
}

impl Revision {
    /// As UDF's entity identifiers give it: 0x0102, 0x0201.
    fn number(self) -> u16 {
        match self {
            Revision::Udf102 => 0x0102,
            Revision::Udf201 => 0x0201,
        }
    }

    /// The descriptor tags' version: 2 for ECMA-167 2nd edition's NSR02, 3 for NSR03.
    fn tag_version(self) -> u16 {
        match self {
            Revision::Udf102 => 2,
            Revision::Udf201 => 3,
        }
    }

    fn nsr(self) -> &'static [u8] {
        match self {
            Revision::Udf102 => b"NSR02",
            Revision::Udf201 => b"NSR03",
        }
    }
}

/// A built volume and what the user should know about how it holds the folder.
pub struct Built {
    pub disk: Arc<dyn ReadAt>,
    pub notes: Vec<String>,
}

const BLOCK: u64 = 2048;
const TAG_IUVD: u16 = 4;
const TAG_USD: u16 = 7;
const MAIN_VDS: u32 = 32;
const RESERVE_VDS: u32 = 48;
const VDS_BLOCKS: u32 = 16;
const INTEGRITY: u32 = 64;
const ANCHOR: u32 = 256;
/// The partition starts after the first anchor.
const PARTITION: u32 = ANCHOR + 1;
/// File entry fields before the extended attributes and allocation descriptors.
const FE_HEAD: usize = 176;
/// The longest extent a short allocation descriptor can give, in whole blocks.
const MAX_EXTENT: u64 = (1 << 30) - BLOCK;
/// The short allocation descriptors that fit in a file entry's block.
const MAX_ADS: u64 = (BLOCK - FE_HEAD as u64) / 8;
const FID_DIRECTORY: u8 = 0x02;
/// Unique IDs 1 to 15 are reserved (UDF 3.2.1.1): the root is 0, the rest count from 16.
const FIRST_UNIQUE_ID: u64 = 16;
const IMPLEMENTATION: &[u8] = b"*dimg";

fn le16(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}

fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// A descriptor of `len` bytes with its tag's identifier, version and location; sealed later.
fn descriptor(rev: Revision, id: u16, location: u32, len: usize) -> Vec<u8> {
    let mut d = vec![0u8; len];
    d[0..2].copy_from_slice(&le16(id));
    d[2..4].copy_from_slice(&le16(rev.tag_version()));
    d[10..12].copy_from_slice(&le16((len - 16) as u16));
    d[12..16].copy_from_slice(&le32(location));
    d
}

fn sealed(mut d: Vec<u8>) -> Vec<u8> {
    seal_tag(&mut d);
    d
}

/// OSTA CS0: one byte a character where every character fits in one, else UTF-16 big-endian.
fn cs0(name: &str) -> Vec<u8> {
    match name.chars().all(|c| (c as u32) < 0x100) {
        true => std::iter::once(8)
            .chain(name.chars().map(|c| c as u32 as u8))
            .collect(),
        false => std::iter::once(16)
            .chain(name.encode_utf16().flat_map(u16::to_be_bytes))
            .collect(),
    }
}

/// A dstring field of `len` bytes: CS0 cut to fit, its length in the last byte.
fn dstring(text: &str, len: usize) -> Vec<u8> {
    let mut field = vec![0u8; len];
    if text.is_empty() {
        return field;
    }
    let mut chars: Vec<char> = text.chars().collect();
    let mut bytes = cs0(text);
    while bytes.len() > len - 1 {
        chars.pop();
        bytes = cs0(&chars.iter().collect::<String>());
    }
    field[..bytes.len()].copy_from_slice(&bytes);
    field[len - 1] = bytes.len() as u8;
    field
}

/// The OSTA CS0 character set specification (64 bytes).
fn charspec() -> [u8; 64] {
    let mut c = [0u8; 64];
    c[1..24].copy_from_slice(b"OSTA Compressed Unicode");
    c
}

/// An entity identifier (32 bytes); `suffix` is its identifier suffix.
fn regid(id: &[u8], suffix: &[u8]) -> [u8; 32] {
    let mut r = [0u8; 32];
    r[1..1 + id.len()].copy_from_slice(id);
    r[24..24 + suffix.len()].copy_from_slice(suffix);
    r
}

/// "*OSTA UDF Compliant" with the UDF revision (a domain identifier).
fn domain(rev: Revision) -> [u8; 32] {
    regid(b"*OSTA UDF Compliant", &le16(rev.number()))
}

/// A UDF entity identifier ("*UDF LV Info") with the UDF revision.
fn udf_regid(rev: Revision, id: &[u8]) -> [u8; 32] {
    regid(id, &le16(rev.number()))
}

fn implementation() -> [u8; 32] {
    regid(IMPLEMENTATION, &[])
}

/// A timestamp (ECMA-167 1/7.3) in UTC.
fn timestamp(t: i64) -> [u8; 12] {
    let (y, m, d, h, mi, s) = civil(t);
    let mut b = [0u8; 12];
    // Type 1 (local time), offset 0 minutes.
    b[0..2].copy_from_slice(&le16(0x1000));
    b[2..4].copy_from_slice(&le16(y.clamp(1, 9999) as u16));
    b[4..9].copy_from_slice(&[m as u8, d as u8, h as u8, mi as u8, s as u8]);
    b
}

/// A long allocation descriptor: `len` bytes at block `block` of the partition, with the UDF
/// unique ID in its implementation use (UDF 2.3.4.3).
fn long_ad(len: u32, block: u32, unique: u32) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0..4].copy_from_slice(&le32(len));
    a[4..8].copy_from_slice(&le32(block));
    a[12..16].copy_from_slice(&le32(unique));
    a
}

/// UDF permissions from a POSIX mode: read, write and execute for other, group and owner
/// (five bits each), with change-attributes and delete where the class may write.
fn permissions(mode: u32) -> u32 {
    let class = |bits: u32| {
        let (r, w, x) = (bits & 4 != 0, bits & 2 != 0, bits & 1 != 0);
        u32::from(x) | (u32::from(w) * 0x1A) | (u32::from(r) * 4)
    };
    class(mode & 7) | (class((mode >> 3) & 7) << 5) | (class((mode >> 6) & 7) << 10)
}

/// A file identifier descriptor's length for a name of `name_len` bytes: 38 bytes of fields,
/// the name, padded to four.
fn fid_len(name_len: usize) -> usize {
    (38 + name_len).next_multiple_of(4)
}

/// Refuses, by path, names that UDF's 255-byte file identifiers cannot hold.
fn check_names(tree: &Tree) -> Result<()> {
    for node in &tree.nodes[1..] {
        if cs0(&node.name).len() > 255 {
            return Err(Error::Refused {
                path: node.path.clone(),
                reason: "its name is longer than a UDF file identifier holds (254 Latin-1 or \
                         127 UTF-16 characters)"
                    .into(),
            });
        }
        if let NodeKind::File { size } = node.kind {
            if size.div_ceil(MAX_EXTENT) > MAX_ADS {
                return Err(Error::Refused {
                    path: node.path.clone(),
                    reason: format!("is {size} bytes, more than one UDF file entry can describe"),
                });
            }
        }
    }
    Ok(())
}

/// Builds a UDF disc of `tree`.
pub fn build(tree: &Tree, options: &Options, now: i64) -> Result<Built> {
    let rev = options.revision;
    check_names(tree)?;
    let n = tree.nodes.len();
    let is_link = |i: usize| matches!(tree.nodes[i].kind, NodeKind::Symlink { .. });
    // A folder's children that the disc holds: all but symlinks.
    let listed = |dir: usize| tree.children(dir).iter().copied().filter(|&c| !is_link(c));
    let notes = tree
        .nodes
        .iter()
        .filter_map(|node| match &node.kind {
            NodeKind::Symlink { target } => Some(format!(
                "{}: a symlink to {target}, not kept (UDF readers such as 7-Zip and Windows \
                 refuse a disc with symlinks)",
                node.path.display()
            )),
            _ => None,
        })
        .collect();
    // Each node's bytes in the partition: a folder's file identifiers, a file's contents.
    let data_len: Vec<u64> = (0..n)
        .map(|i| match &tree.nodes[i].kind {
            NodeKind::Directory { .. } => {
                (fid_len(0)
                    + listed(i)
                        .map(|c| fid_len(cs0(&tree.nodes[c].name).len()))
                        .sum::<usize>()) as u64
            }
            NodeKind::File { size } => *size,
            NodeKind::Symlink { .. } => 0,
        })
        .collect();
    // Partition blocks: the file set descriptor and its terminator, then each node's file
    // entry followed by its data.
    let mut next = 2u64;
    let (mut entry, mut data) = (vec![0u32; n], vec![0u32; n]);
    for i in (0..n).filter(|&i| !is_link(i)) {
        entry[i] = next as u32;
        data[i] = (next + 1) as u32;
        next += 1 + data_len[i].div_ceil(BLOCK);
    }
    let partition_len = next;
    let total = u64::from(PARTITION) + partition_len + u64::from(ANCHOR);
    if total > u64::from(u32::MAX) {
        return Err(Error::Refused {
            path: tree.nodes[0].path.clone(),
            reason: "holds more than a UDF volume can address (8 TiB)".into(),
        });
    }
    let unique = |i: usize| match i {
        0 => 0,
        _ => FIRST_UNIQUE_ID + i as u64 - 1,
    };
    let label = &options.volume_name;
    let parent_of = {
        let mut p = vec![0usize; n];
        for (i, node) in tree.nodes.iter().enumerate() {
            if let NodeKind::Directory { children } = &node.kind {
                for &c in children {
                    p[c] = i;
                }
            }
        }
        p
    };
    let is_dir = |i: usize| matches!(tree.nodes[i].kind, NodeKind::Directory { .. });
    let (dirs, files) = (
        (0..n).filter(|&i| is_dir(i)).count() as u32,
        (0..n).filter(|&i| !is_dir(i) && !is_link(i)).count() as u32,
    );

    // The volume descriptor sequence, written twice.
    let vds = |at: u32| -> Vec<u8> {
        let mut seq = Vec::new();
        let mut pvd = descriptor(rev, TAG_PVD, at, 512);
        pvd[16..20].copy_from_slice(&le32(1));
        pvd[24..56].copy_from_slice(&dstring(label, 32));
        pvd[56..58].copy_from_slice(&le16(1));
        pvd[58..60].copy_from_slice(&le16(1));
        pvd[60..62].copy_from_slice(&le16(2));
        pvd[62..64].copy_from_slice(&le16(2));
        pvd[64..68].copy_from_slice(&le32(1));
        pvd[68..72].copy_from_slice(&le32(1));
        // The volume set identifier starts with 16 characters unique to this volume.
        pvd[72..200].copy_from_slice(&dstring(&format!("{now:016X}{label}"), 128));
        pvd[200..264].copy_from_slice(&charspec());
        pvd[264..328].copy_from_slice(&charspec());
        pvd[344..376].copy_from_slice(&implementation());
        pvd[376..388].copy_from_slice(&timestamp(now));
        pvd[388..420].copy_from_slice(&implementation());
        seq.extend(sealed(pvd));
        seq.resize(BLOCK as usize, 0);

        let mut iuvd = descriptor(rev, TAG_IUVD, at + 1, 512);
        iuvd[16..20].copy_from_slice(&le32(2));
        iuvd[20..52].copy_from_slice(&udf_regid(rev, b"*UDF LV Info"));
        iuvd[52..116].copy_from_slice(&charspec());
        iuvd[116..244].copy_from_slice(&dstring(label, 128));
        iuvd[352..384].copy_from_slice(&implementation());
        seq.extend(sealed(iuvd));
        seq.resize(2 * BLOCK as usize, 0);

        let mut pd = descriptor(rev, TAG_PD, at + 2, 512);
        pd[16..20].copy_from_slice(&le32(3));
        pd[20..22].copy_from_slice(&le16(1));
        pd[24..56].copy_from_slice(&regid(&[b"+", rev.nsr()].concat(), &[]));
        // Read-only: nothing to say about free space.
        pd[184..188].copy_from_slice(&le32(1));
        pd[188..192].copy_from_slice(&le32(PARTITION));
        pd[192..196].copy_from_slice(&le32(partition_len as u32));
        pd[196..228].copy_from_slice(&implementation());
        seq.extend(sealed(pd));
        seq.resize(3 * BLOCK as usize, 0);

        let mut lvd = descriptor(rev, TAG_LVD, at + 3, 446);
        lvd[16..20].copy_from_slice(&le32(4));
        lvd[20..84].copy_from_slice(&charspec());
        lvd[84..212].copy_from_slice(&dstring(label, 128));
        lvd[212..216].copy_from_slice(&le32(BLOCK as u32));
        lvd[216..248].copy_from_slice(&domain(rev));
        lvd[248..264].copy_from_slice(&long_ad(BLOCK as u32, 0, 0));
        lvd[264..268].copy_from_slice(&le32(6));
        lvd[268..272].copy_from_slice(&le32(1));
        lvd[272..304].copy_from_slice(&implementation());
        lvd[432..436].copy_from_slice(&le32(2 * BLOCK as u32));
        lvd[436..440].copy_from_slice(&le32(INTEGRITY));
        // A type 1 map: partition 0 of volume 1.
        lvd[440..446].copy_from_slice(&[1, 6, 1, 0, 0, 0]);
        seq.extend(sealed(lvd));
        seq.resize(4 * BLOCK as usize, 0);

        let mut usd = descriptor(rev, TAG_USD, at + 4, 24);
        usd[16..20].copy_from_slice(&le32(5));
        seq.extend(sealed(usd));
        seq.resize(5 * BLOCK as usize, 0);
        seq.extend(sealed(descriptor(rev, TAG_TD, at + 5, 512)));
        seq.resize((VDS_BLOCKS as u64 * BLOCK) as usize, 0);
        seq
    };

    let mut lvid = descriptor(rev, TAG_LVID, INTEGRITY, 134);
    lvid[16..28].copy_from_slice(&timestamp(now));
    lvid[28..32].copy_from_slice(&le32(1));
    lvid[40..48].copy_from_slice(&(FIRST_UNIQUE_ID + n as u64).to_le_bytes());
    lvid[72..76].copy_from_slice(&le32(1));
    lvid[76..80].copy_from_slice(&le32(46));
    lvid[84..88].copy_from_slice(&le32(partition_len as u32));
    lvid[88..120].copy_from_slice(&implementation());
    lvid[120..124].copy_from_slice(&le32(files));
    lvid[124..128].copy_from_slice(&le32(dirs));
    for at in [128, 130, 132] {
        lvid[at..at + 2].copy_from_slice(&le16(rev.number()));
    }

    let anchor = |at: u32| -> Vec<u8> {
        let mut a = descriptor(rev, TAG_AVDP, at, 512);
        let extent = VDS_BLOCKS * BLOCK as u32;
        a[16..20].copy_from_slice(&le32(extent));
        a[20..24].copy_from_slice(&le32(MAIN_VDS));
        a[24..28].copy_from_slice(&le32(extent));
        a[28..32].copy_from_slice(&le32(RESERVE_VDS));
        sealed(a)
    };

    let mut fsd = descriptor(rev, TAG_FSD, 0, 512);
    fsd[16..28].copy_from_slice(&timestamp(now));
    fsd[28..30].copy_from_slice(&le16(3));
    fsd[30..32].copy_from_slice(&le16(3));
    fsd[32..36].copy_from_slice(&le32(1));
    fsd[36..40].copy_from_slice(&le32(1));
    fsd[48..112].copy_from_slice(&charspec());
    fsd[112..240].copy_from_slice(&dstring(label, 128));
    fsd[240..304].copy_from_slice(&charspec());
    fsd[304..336].copy_from_slice(&dstring(label, 32));
    fsd[400..416].copy_from_slice(&long_ad(BLOCK as u32, entry[0], 0));
    fsd[416..448].copy_from_slice(&domain(rev));

    // A folder's file identifiers: its parent's, then each child's.
    let fids = |dir: usize| -> Vec<u8> {
        let mut out = Vec::with_capacity(data_len[dir] as usize);
        let fid = |out: &mut Vec<u8>, target: usize, name: &[u8], flags: u8| {
            let block = data[dir] + (out.len() as u64 / BLOCK) as u32;
            let mut f = descriptor(rev, TAG_FID, block, fid_len(name.len()));
            f[16..18].copy_from_slice(&le16(1));
            f[18] = flags | if is_dir(target) { FID_DIRECTORY } else { 0 };
            f[19] = name.len() as u8;
            f[20..36].copy_from_slice(&long_ad(BLOCK as u32, entry[target], unique(target) as u32));
            f[38..38 + name.len()].copy_from_slice(name);
            out.extend(sealed(f));
        };
        fid(&mut out, parent_of[dir], &[], FID_PARENT);
        for c in listed(dir) {
            fid(&mut out, c, &cs0(&tree.nodes[c].name), 0);
        }
        out
    };

    let file_entry = |i: usize| -> Vec<u8> {
        let node = &tree.nodes[i];
        let file_type = match node.kind {
            NodeKind::Directory { .. } => FT_DIRECTORY,
            _ => FT_FILE,
        };
        let len = data_len[i];
        let ads = short_ads(len, data[i]);
        let mut fe = descriptor(rev, TAG_FE, entry[i], FE_HEAD + ads.len());
        // ICB tag: strategy 4, one entry, the type, the allocation descriptors' kind.
        fe[20..22].copy_from_slice(&le16(4));
        fe[24..26].copy_from_slice(&le16(1));
        fe[27] = file_type;
        let mut flags = AD_SHORT;
        for (bit, flag) in [(0o4000, 0x40), (0o2000, 0x80), (0o1000, 0x100)] {
            if node.mode & bit != 0 {
                flags |= flag;
            }
        }
        fe[34..36].copy_from_slice(&le16(flags));
        fe[36..40].copy_from_slice(&le32(node.uid));
        fe[40..44].copy_from_slice(&le32(node.gid));
        fe[44..48].copy_from_slice(&le32(permissions(node.mode)));
        // A folder is named by its parent and by each subfolder's parent entry.
        let links = match &node.kind {
            NodeKind::Directory { .. } => 1 + listed(i).filter(|&c| is_dir(c)).count() as u16,
            _ => 1,
        };
        fe[48..50].copy_from_slice(&le16(links));
        fe[56..64].copy_from_slice(&len.to_le_bytes());
        fe[64..72].copy_from_slice(&len.div_ceil(BLOCK).to_le_bytes());
        for at in [72, 84, 96] {
            fe[at..at + 12].copy_from_slice(&timestamp(node.modified));
        }
        fe[108..112].copy_from_slice(&le32(1));
        fe[128..160].copy_from_slice(&implementation());
        fe[160..168].copy_from_slice(&unique(i).to_le_bytes());
        fe[172..176].copy_from_slice(&le32(ads.len() as u32));
        fe[FE_HEAD..].copy_from_slice(&ads);
        sealed(fe)
    };

    let mut disk = Assembly::default();
    disk.push(Arc::new(Zeros(16 * BLOCK)));
    for id in [&b"BEA01"[..], rev.nsr(), b"TEA01"] {
        let mut vsd = vec![0u8; BLOCK as usize];
        vsd[1..6].copy_from_slice(id);
        vsd[6] = 1;
        disk.bytes(vsd);
    }
    disk.push(Arc::new(Zeros(u64::from(MAIN_VDS) * BLOCK - disk.size())));
    disk.bytes(vds(MAIN_VDS));
    disk.bytes(vds(RESERVE_VDS));
    disk.bytes(sealed(lvid));
    disk.pad_to(BLOCK);
    disk.bytes(sealed(descriptor(rev, TAG_TD, INTEGRITY + 1, 512)));
    disk.push(Arc::new(Zeros(u64::from(ANCHOR) * BLOCK - disk.size())));
    disk.bytes(anchor(ANCHOR));
    disk.pad_to(BLOCK);
    disk.bytes(sealed(fsd));
    disk.pad_to(BLOCK);
    disk.bytes(sealed(descriptor(rev, TAG_TD, 1, 512)));
    disk.pad_to(BLOCK);
    for i in (0..n).filter(|&i| !is_link(i)) {
        disk.bytes(file_entry(i));
        disk.pad_to(BLOCK);
        match &tree.nodes[i].kind {
            NodeKind::Directory { .. } => disk.bytes(fids(i)),
            NodeKind::File { size } => {
                disk.push(Arc::new(SourceFile::new(tree.nodes[i].path.clone(), *size)))
            }
            NodeKind::Symlink { .. } => {}
        }
        disk.pad_to(BLOCK);
    }
    debug_assert_eq!(disk.size(), (u64::from(PARTITION) + partition_len) * BLOCK);
    let last_anchor = (total - u64::from(ANCHOR)) as u32;
    disk.bytes(anchor(last_anchor));
    disk.pad_to(BLOCK);
    disk.push(Arc::new(Zeros((total - 1) * BLOCK - disk.size())));
    disk.bytes(anchor((total - 1) as u32));
    disk.pad_to(BLOCK);
    Ok(Built {
        disk: disk.finish(),
        notes,
    })
}

/// Short allocation descriptors for `len` bytes from partition block `first`, in extents of
/// at most 1 GiB.
fn short_ads(len: u64, first: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut done = 0;
    while done < len {
        let piece = (len - done).min(MAX_EXTENT);
        out.extend(le32(piece as u32));
        out.extend(le32(first + (done / BLOCK) as u32));
        done += piece;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cs0_in_8_bits_where_they_fit() {
        assert_eq!(cs0("Café"), b"\x08Caf\xe9");
        assert_eq!(cs0("文"), [16, 0x65, 0x87]);
        assert_eq!(super::super::cs0(&cs0("a 文字 b")), "a 文字 b");
        let field = dstring(&"x".repeat(40), 32);
        assert_eq!(field[31], 31, "cut to fit with its length byte");
        assert_eq!(super::super::dstring(&field), "x".repeat(30));
    }

    #[test]
    fn modes_become_permissions_and_back() {
        for mode in [0o755, 0o644, 0o600, 0o444, 0o7777 & 0o777] {
            assert_eq!(super::super::mode(permissions(mode), 0), mode, "{mode:o}");
        }
    }

    #[test]
    fn large_files_take_several_extents() {
        let ads = short_ads(MAX_EXTENT + 5, 10);
        assert_eq!(ads.len(), 16);
        assert_eq!(u32::from_le_bytes(ads[8..12].try_into().unwrap()), 5);
        assert_eq!(
            u32::from_le_bytes(ads[12..16].try_into().unwrap()),
            10 + (MAX_EXTENT / BLOCK) as u32
        );
    }
}
