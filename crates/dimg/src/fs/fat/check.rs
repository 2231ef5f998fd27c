//! First Aid for FAT12/16/32 (`dimg verify -fs`; Microsoft's FAT specification, and what
//! dosfstools' fsck.fat checks): every file's and folder's cluster chain (on the volume, ending
//! where its size says, shared with no other), clusters in use that no file holds, the FAT
//! copies against the first, FAT32's free count, and each folder's entries ("." and ".." first,
//! long names whose checksums match their short entry). Read-only: the repairs that are safe
//! (the FAT copies, the free count) come back as bytes to write.

use super::read::{first_cluster, long_name, long_name_units, short_name, short_name_checksum};
use super::{
    Layout, Root, ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_VOLUME_LABEL, ENTRY, MAX_DIR_BYTES,
};
use crate::bytes::le32;
use crate::fs::check::{go_on, Findings, Repair, Watch};
use crate::io::ReadAt;
use std::io;
use std::sync::Arc;

/// The most clusters checked: 2^26 (a 2 TiB FAT32 of 32 KiB clusters); the walk keeps 4 bytes
/// for each.
const MAX_CLUSTERS: u64 = 1 << 26;
/// Folders nested deeper than this are not entered.
const MAX_DEPTH: usize = 256;
/// Lines of one kind (broken chains, shared clusters) given before the rest are only counted.
const MAX_LINES: usize = 20;
/// The FAT copies are compared, and rewritten, a piece at a time.
const PIECE: u64 = 1 << 20;
/// FSInfo's signatures and where it keeps the free count (Microsoft's FAT specification).
const FS_INFO_LEAD: u32 = 0x4161_5252;
const FS_INFO_STRUCT: u32 = 0x6141_7272;
const FS_INFO_FREE: u64 = 488;

/// Checks the FAT volume `volume` (its bytes, from its boot sector).
pub fn check(volume: Arc<dyn ReadAt>, watch: &dyn Watch) -> io::Result<Findings> {
    let layout = Layout::read(&*volume)?;
    let mut found = Findings::default();
    let held = volume.size().saturating_sub(layout.data) / layout.cluster;
    let clusters = layout.clusters.min(held);
    if layout.clusters > held {
        found.problem(
            "boot sector",
            format!("says {} clusters, the volume holds {held}", layout.clusters),
        );
    }
    let needed = ((clusters + 2) * u64::from(layout.bits)).div_ceil(8);
    if clusters > MAX_CLUSTERS {
        found.problem(
            "FAT",
            format!("maps {clusters} clusters, more than dimg checks"),
        );
        return Ok(found);
    }
    if needed > layout.fat_bytes || layout.fat + layout.fats * layout.fat_bytes > volume.size() {
        found.problem(
            "FAT",
            format!(
                "{} FATs of {} bytes do not fit the volume or map its {clusters} clusters",
                layout.fats, layout.fat_bytes
            ),
        );
        return Ok(found);
    }
    let mut fat = vec![0u8; needed as usize];
    volume.read_exact_at(layout.fat, &mut fat)?;
    let mut c = Checker {
        volume,
        layout,
        clusters,
        fat,
        owner: vec![0; (clusters + 2) as usize],
        paths: Vec::new(),
        found,
        lines: 0,
    };
    c.copies(watch)?;
    c.tree(watch)?;
    c.lost_and_free();
    Ok(c.found)
}

struct Checker {
    volume: Arc<dyn ReadAt>,
    layout: Layout,
    clusters: u64,
    /// The first FAT, as far as it maps clusters.
    fat: Vec<u8>,
    /// Who holds each cluster: 0 no one, else 1 + an index into `paths`.
    owner: Vec<u32>,
    paths: Vec<String>,
    found: Findings,
    /// Problems with chains and entries so far, for `MAX_LINES`.
    lines: usize,
}

/// What a FAT entry says of the cluster after this one.
enum Next {
    Cluster(u32),
    End,
    Free,
    Bad,
    /// A value no chain may hold (1, or past the last cluster).
    Invalid(u32),
}

impl Checker {
    fn entry(&self, n: u32) -> u32 {
        let (at, len) = self.layout.entry_at(u64::from(n));
        let at = at as usize;
        let mut bytes = [0u8; 4];
        bytes[..len].copy_from_slice(&self.fat[at..at + len]);
        self.layout.decode(u64::from(n), &bytes)
    }

    fn next(&self, n: u32) -> Next {
        let value = self.entry(n);
        let bad = match self.layout.bits {
            12 => 0xFF7,
            16 => 0xFFF7,
            _ => 0x0FFF_FFF7,
        };
        match value {
            0 => Next::Free,
            v if v == bad => Next::Bad,
            v if self.layout.ends_chain(v) => Next::End,
            v if v >= 2 && u64::from(v) < self.clusters + 2 => Next::Cluster(v),
            v => Next::Invalid(v),
        }
    }

    /// A problem with a chain or an entry, the first `MAX_LINES` of them in full.
    fn problem(&mut self, structure: &str, what: String) {
        self.lines += 1;
        if self.lines <= MAX_LINES {
            self.found.problem(structure, what);
        }
    }

    /// Each FAT after the first against it; a piece that differs is copied from the first.
    fn copies(&mut self, watch: &dyn Watch) -> io::Result<()> {
        if !self.layout.mirrored {
            return Ok(());
        }
        let (fat, len) = (self.layout.fat, self.fat.len() as u64);
        watch.begin(
            "Comparing the FAT copies",
            len * self.layout.fats.saturating_sub(1),
        );
        let mut piece = vec![0u8; PIECE as usize];
        for copy in 1..self.layout.fats {
            let at = fat + copy * self.layout.fat_bytes;
            let (mut differ, mut first, mut writes) = (0u64, None, Vec::new());
            for from in (0..len).step_by(PIECE as usize) {
                go_on(watch)?;
                let n = PIECE.min(len - from) as usize;
                self.volume.read_exact_at(at + from, &mut piece[..n])?;
                let ours = &self.fat[from as usize..from as usize + n];
                let diff = piece[..n].iter().zip(ours).filter(|(a, b)| a != b).count() as u64;
                if diff > 0 {
                    let byte = from
                        + piece[..n]
                            .iter()
                            .zip(ours)
                            .position(|(a, b)| a != b)
                            .unwrap_or(0) as u64;
                    first = first.or(Some(byte * 8 / u64::from(self.layout.bits)));
                    differ += diff;
                    writes.push((at + from, ours.to_vec()));
                }
                watch.advance((copy - 1) * len + from + n as u64);
            }
            if let Some(cluster) = first {
                let number = copy + 1;
                self.found.problem(
                    format!("FAT {number}"),
                    format!(
                        "differs from FAT 1 in {differ} bytes (the first at cluster {cluster})"
                    ),
                );
                self.found.repairs.push(Repair {
                    what: format!("FAT {number}: copied from FAT 1"),
                    writes,
                });
            }
        }
        Ok(())
    }

    /// Every folder from the root, and every file's chain in it.
    fn tree(&mut self, watch: &dyn Watch) -> io::Result<()> {
        self.paths.push("/".into());
        let root = match self.layout.root {
            Root::Fixed { at, size } => {
                let mut bytes = vec![0u8; size.min(MAX_DIR_BYTES) as usize];
                self.volume.read_exact_at(at, &mut bytes)?;
                Some(bytes)
            }
            Root::Chain(first) => {
                let chain = self.chain(first, 0);
                self.folder_bytes(&chain)?
            }
        };
        let (mut files, mut folders) = (0u64, 0u64);
        // (the folder's bytes, its path's index, its first cluster and its parent's (0: the
        // root), its depth)
        let mut stack = vec![(root, 0u32, (0u32, 0u32), 0usize)];
        watch.begin("Checking folders and files", self.clusters);
        while let Some((bytes, me, (first, parent), depth)) = stack.pop() {
            go_on(watch)?;
            let Some(bytes) = bytes else { continue };
            for (name, e) in self.entries(&bytes, me, first, parent) {
                let path = match me {
                    0 => format!("/{name}"),
                    _ => format!("{}/{name}", self.paths[me as usize]),
                };
                let start = first_cluster(&e);
                self.paths.push(path.clone());
                let id = (self.paths.len() - 1) as u32;
                if e[11] & ATTR_DIRECTORY != 0 {
                    folders += 1;
                    if start == 0 {
                        self.problem(&path, "is a folder without clusters".into());
                        continue;
                    }
                    let chain = self.chain(start, id);
                    if depth + 1 >= MAX_DEPTH {
                        self.problem(&path, format!("is nested deeper than {MAX_DEPTH} folders"));
                        continue;
                    }
                    let bytes = self.folder_bytes(&chain)?;
                    stack.push((bytes, id, (start, first), depth + 1));
                } else {
                    files += 1;
                    let size = u64::from(le32(&e, 28));
                    match (start, size) {
                        (0, 0) => {}
                        (0, _) => self.problem(&path, format!("holds {size} bytes but no cluster")),
                        (_, 0) => {
                            self.problem(&path, format!("is empty but starts at cluster {start}"))
                        }
                        _ => {
                            let wanted = size.div_ceil(self.layout.cluster);
                            let chain = self.chain(start, id);
                            let held = chain.map(|c| c.len() as u64);
                            if let Some(held) = held.filter(|&h| h != wanted) {
                                self.problem(
                                    &path,
                                    format!("its chain holds {held} clusters, its {size} bytes need {wanted}"),
                                );
                            }
                        }
                    }
                }
            }
        }
        if self.lines > MAX_LINES {
            self.found.problem(
                "folders and files",
                format!(
                    "and {} more problems with chains and entries",
                    self.lines - MAX_LINES
                ),
            );
        }
        self.found.counted.insert("files", files);
        self.found.counted.insert("folders", folders);
        Ok(())
    }

    /// The chain from `first`, claimed for `id`: where it leaves the volume, runs into a free
    /// or bad cluster, loops or joins another file's chain, the problem is said and the chain
    /// ends there (`None`).
    fn chain(&mut self, first: u32, id: u32) -> Option<Vec<u32>> {
        let path = self.paths[id as usize].clone();
        if first < 2 || u64::from(first) >= self.clusters + 2 {
            self.problem(
                &path,
                format!("starts at cluster {first}, which is not on the volume"),
            );
            return None;
        }
        let mut chain = Vec::new();
        let mut n = first;
        loop {
            match self.owner[n as usize] {
                0 => self.owner[n as usize] = id + 1,
                o if o == id + 1 => {
                    self.problem(&path, format!("its chain loops back to cluster {n}"));
                    return None;
                }
                o => {
                    let other = self.paths[(o - 1) as usize].clone();
                    self.problem(
                        &path,
                        format!("shares cluster {n} with {other} (cross-linked)"),
                    );
                    return None;
                }
            }
            chain.push(n);
            let what = match self.next(n) {
                Next::End => return Some(chain),
                Next::Cluster(next) => {
                    n = next;
                    continue;
                }
                Next::Free => "a free cluster".to_string(),
                Next::Bad => "a cluster marked bad".into(),
                Next::Invalid(v) => format!("{v}, which is no cluster"),
            };
            self.problem(&path, format!("its chain goes from cluster {n} to {what}"));
            return None;
        }
    }

    /// A folder's entries read through its chain (as far as it goes), at most the 65,536 a
    /// folder may hold.
    fn folder_bytes(&self, chain: &Option<Vec<u32>>) -> io::Result<Option<Vec<u8>>> {
        let Some(chain) = chain else {
            return Ok(None);
        };
        let per = self.layout.cluster;
        let count = chain.len().min(MAX_DIR_BYTES.div_ceil(per) as usize);
        let mut bytes = vec![0u8; count * per as usize];
        for (i, &c) in chain.iter().take(count).enumerate() {
            let (at, _) = self.layout.span(u64::from(c), u64::from(c) + 1);
            self.volume
                .read_exact_at(at, &mut bytes[i * per as usize..(i + 1) * per as usize])?;
        }
        Ok(Some(bytes))
    }

    /// The named entries of folder `me` (whose first cluster is `first`, its parent's `parent`;
    /// 0 for the root), with its "." and ".." entries and its long names checked.
    fn entries(
        &mut self,
        bytes: &[u8],
        me: u32,
        first: u32,
        parent: u32,
    ) -> Vec<(String, Vec<u8>)> {
        let folder = self.paths[me as usize].clone();
        let mut out = Vec::new();
        let mut long: Vec<(u8, Vec<u16>)> = Vec::new();
        let mut expect_ordinal: Option<u8> = None;
        let mut broken_long = false;
        for (i, e) in bytes.chunks_exact(ENTRY).enumerate() {
            if e[0] == 0x00 {
                break;
            }
            if me != 0 && i < 2 {
                let dots: &[u8] = if i == 0 {
                    b".          "
                } else {
                    b"..         "
                };
                let points = first_cluster(e);
                // ".." of a folder in the root points at 0 (some write the FAT32 root's cluster).
                let root_cluster = matches!(self.layout.root, Root::Chain(r) if r == points);
                let ok = &e[..11] == dots
                    && e[11] & ATTR_DIRECTORY != 0
                    && match i {
                        0 => points == first,
                        _ => points == parent || (parent == 0 && root_cluster),
                    };
                if !ok {
                    let which = if i == 0 { "\".\"" } else { "\"..\"" };
                    self.problem(&folder, format!("its entry {i} is not its {which} entry"));
                }
                continue;
            }
            if e[0] == 0xE5 {
                if !long.is_empty() {
                    broken_long = true;
                }
                long.clear();
                expect_ordinal = None;
                continue;
            }
            if e[11] & 0x3F == ATTR_LONG_NAME {
                let ordinal = e[0] & 0x1F;
                if e[0] & 0x40 != 0 {
                    if !long.is_empty() {
                        broken_long = true;
                    }
                    long.clear();
                } else if expect_ordinal != Some(ordinal) || long.is_empty() {
                    broken_long = true;
                }
                expect_ordinal = ordinal.checked_sub(1);
                long.push((e[13], long_name_units(e).collect()));
                continue;
            }
            let pieces = std::mem::take(&mut long);
            let checksum = short_name_checksum(&e[..11]);
            let short = short_name(e);
            if broken_long
                || (!pieces.is_empty()
                    && (expect_ordinal != Some(0) || pieces.iter().any(|p| p.0 != checksum)))
            {
                self.problem(
                    &folder,
                    format!("the long name before {short} does not belong to it (its checksum or order is wrong)"),
                );
            }
            broken_long = false;
            expect_ordinal = None;
            if e[11] & ATTR_VOLUME_LABEL != 0 {
                continue;
            }
            if e[0] == b'.' {
                self.problem(&folder, format!("holds a {short} entry past its first two"));
                continue;
            }
            let name = match pieces.is_empty() || pieces.iter().any(|p| p.0 != checksum) {
                true => short,
                false => long_name(&pieces),
            };
            out.push((name, e.to_vec()));
        }
        out
    }

    /// Clusters in use that no file holds, and the free count against FAT32's FSInfo.
    fn lost_and_free(&mut self) {
        let (mut lost, mut heads, mut first_lost, mut free) = (0u64, 0u64, None, 0u64);
        let mut pointed_at = vec![false; self.owner.len()];
        for n in 2..(self.clusters + 2) as u32 {
            match self.next(n) {
                Next::Free => free += 1,
                Next::Bad => {}
                next => {
                    if self.owner[n as usize] == 0 {
                        lost += 1;
                        first_lost = first_lost.or(Some(n));
                        if let Next::Cluster(to) = next {
                            pointed_at[to as usize] = true;
                        }
                    }
                }
            }
        }
        for n in 2..(self.clusters + 2) as u32 {
            let unowned =
                self.owner[n as usize] == 0 && !matches!(self.next(n), Next::Free | Next::Bad);
            heads += u64::from(unowned && !pointed_at[n as usize]);
        }
        if let Some(first) = first_lost {
            self.found.problem(
                "FAT",
                format!("{lost} clusters in use belong to no file ({heads} lost chains, the first cluster {first})"),
            );
        }
        self.found.counted.insert("clusters", self.clusters);
        self.found
            .counted
            .insert("clusters in use", self.clusters - free);
        let Some(at) = self.layout.fs_info else {
            return;
        };
        let mut sector = [0u8; 512];
        if self.volume.read_exact_at(at, &mut sector).is_err()
            || le32(&sector, 0) != FS_INFO_LEAD
            || le32(&sector, 484) != FS_INFO_STRUCT
        {
            self.found.problem("FSInfo sector", "lacks its signatures");
            return;
        }
        let stated = le32(&sector, FS_INFO_FREE as usize);
        if stated != u32::MAX && u64::from(stated) != free {
            self.found.problem(
                "FSInfo sector",
                format!("its free count says {stated} clusters, {free} are free"),
            );
            self.found.repairs.push(Repair {
                what: format!("FSInfo sector: free count {stated} → {free}"),
                writes: vec![(at + FS_INFO_FREE, (free as u32).to_le_bytes().to_vec())],
            });
        }
    }
}
