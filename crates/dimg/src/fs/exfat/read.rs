//! exFAT, read-only (Microsoft's exFAT specification): directory entry sets (a file entry, its
//! stream extension, its name entries, checked against the set's checksum), files contiguous
//! ("NoFatChain") or chained through the FAT, bytes past the valid data length read as zeros,
//! the volume label, the allocation bitmap for the space in use and the up-case table for names
//! that differ only in case. Every chain is bounded — by the file's length, a directory's by the
//! specification's 256 MiB — and a chain that loops or leaves the heap is an error.

use super::{
    bad, expand_upcase, set_checksum, table_checksum, unix, Layout, ATTR_DIRECTORY, ATTR_READ_ONLY,
    ENTRY, ENTRY_BITMAP, ENTRY_FILE, ENTRY_GUID, ENTRY_LABEL, ENTRY_NAME, ENTRY_STREAM,
    ENTRY_UPCASE, MAX_DIR_BYTES, NO_FAT_CHAIN, VOLUME_DIRTY,
};
use crate::bytes::{le16, le32, le64, utf16_le as utf16};
use crate::container::Fact;
use crate::fs::runs::{self, ChainError, Piece};
use crate::fs::{DirEntry, EntryKind, Handle, Volume};
use crate::io::ReadAt;
use std::io;
use std::sync::Arc;

/// The up-case table is at most 65,536 characters, each stored once: 128 KiB, with room for its
/// compressed form's markers.
const MAX_UPCASE_BYTES: u64 = 256 << 10;

pub struct ExFat {
    source: Arc<dyn ReadAt>,
    pub(super) layout: Layout,
    label: String,
    pub(super) upcase: Vec<u16>,
    /// The allocation bitmap's first cluster and length.
    pub(super) bitmap: Option<(u32, u64)>,
    /// The volume GUID entry's, where its checksum holds.
    guid: Option<[u8; 16]>,
    warnings: Vec<String>,
}

/// Where an entry's data is: its first cluster, its length and valid length, and whether its
/// clusters are contiguous (no FAT chain). The root has no length of its own.
#[derive(Clone, Copy, Debug)]
pub(super) struct Node {
    pub first: u32,
    pub size: Option<u64>,
    pub valid: u64,
    pub contiguous: bool,
}

/// A directory entry set as read: where it is among the directory's entries and how many it
/// takes, the file entry's fields and the name.
pub(super) struct Set {
    pub index: usize,
    pub entries: usize,
    pub name: String,
    pub attributes: u16,
    pub modified: Option<i64>,
    pub node: Node,
}

impl ExFat {
    pub fn open(source: Arc<dyn ReadAt>) -> io::Result<Self> {
        let layout = Layout::read(&*source)?;
        if !layout.holds(layout.root) {
            return Err(bad(
                "exFAT boot sector",
                96,
                format!(
                    "the root directory's cluster {} is not in the heap",
                    layout.root
                ),
            ));
        }
        let mut volume = ExFat {
            source,
            layout,
            label: String::new(),
            upcase: Vec::new(),
            bitmap: None,
            guid: None,
            warnings: Vec::new(),
        };
        let root = volume.dir_bytes(volume.root_node())?;
        let mut upcase = None;
        let second_bitmap = volume.layout.second;
        for e in root.chunks_exact(ENTRY) {
            match e[0] {
                0 => break,
                ENTRY_LABEL => {
                    let count = usize::from(e[1]).min(11);
                    volume.label = utf16(&e[2..2 + 2 * count]);
                }
                ENTRY_BITMAP if (e[1] & 1 != 0) == second_bitmap => {
                    volume.bitmap = Some((le32(e, 20), le64(e, 24)))
                }
                ENTRY_UPCASE => upcase = Some((le32(e, 4), le32(e, 20), le64(e, 24))),
                ENTRY_GUID if set_checksum(e) == le16(e, 2) => {
                    volume.guid = e[6..22].try_into().ok();
                }
                ENTRY_GUID => volume.warnings.push(
                    "the volume GUID entry's checksum does not hold: its GUID is not shown"
                        .to_string(),
                ),
                _ => {}
            }
        }
        match upcase {
            Some((checksum, first, len)) if len <= MAX_UPCASE_BYTES => {
                let node = Node {
                    first,
                    size: Some(len),
                    valid: len,
                    contiguous: false,
                };
                let data = volume.data(node, "the up-case table")?;
                let mut table = vec![0u8; len as usize];
                data.read_exact_at(0, &mut table)?;
                if table_checksum(&table) != checksum {
                    return Err(bad(
                        "exFAT up-case table",
                        volume.layout.at(first),
                        format!(
                            "its checksum is {:#010x}, its directory entry says {checksum:#010x}",
                            table_checksum(&table)
                        ),
                    ));
                }
                volume.upcase = expand_upcase(&table);
            }
            Some((_, _, len)) => {
                return Err(bad(
                    "exFAT up-case table",
                    0,
                    format!("{len} bytes, more than an up-case table can need"),
                ))
            }
            None => volume.warnings.push(
                "the root directory has no up-case table: names are compared as Unicode \
                 upper-cases them"
                    .to_string(),
            ),
        }
        if volume.layout.flags & VOLUME_DIRTY != 0 {
            volume.warnings.push(
                "the volume is marked dirty (not cleanly unmounted): it is shown as it is on \
                 the disk"
                    .to_string(),
            );
        }
        Ok(volume)
    }

    pub(super) fn root_node(&self) -> Node {
        Node {
            first: self.layout.root,
            size: None,
            valid: u64::MAX,
            contiguous: false,
        }
    }

    /// The clusters of the chain from `first`, at most `limit` of them; a chain that comes back
    /// to a cluster it passed, or leaves the heap, is an error.
    fn chain(&self, first: u32, limit: u64, what: &str) -> io::Result<Vec<u32>> {
        let layout = &self.layout;
        let next = |n: u32| -> io::Result<Option<u32>> {
            let at = layout.fat + u64::from(n) * 4;
            if at + 4 > layout.fat + layout.fat_bytes {
                return Err(bad("exFAT FAT", at, format!("{what}: past the FAT's end")));
            }
            let mut next = [0u8; 4];
            self.source.read_exact_at(at, &mut next)?;
            // End of chain, or a bad cluster, which ends it too.
            Ok(Some(u32::from_le_bytes(next)).filter(|&v| v < 0xFFFF_FFF7))
        };
        runs::follow_chain(first, limit, |n| layout.holds(n), next).map_err(|e| {
            let problem = match e {
                ChainError::Io(e) => return e,
                ChainError::Outside(n) => format!("cluster {n} is not in the heap"),
                ChainError::Loop(n) => {
                    format!("the chain from cluster {first} loops back to cluster {n}")
                }
            };
            bad(
                "exFAT cluster chain",
                layout.fat,
                format!("{what}: {problem}"),
            )
        })
    }

    /// Whether a contiguous run of `count` clusters from `node`'s first lies in the heap.
    fn run_in_heap(&self, node: Node, count: u64, what: &str) -> io::Result<()> {
        let last = u64::from(node.first) + count - 1;
        match self.layout.holds(node.first) && last < self.layout.clusters + 2 {
            true => Ok(()),
            false => Err(bad(
                "exFAT stream extension",
                0,
                format!(
                    "{what}: clusters {} to {last} are not all in the heap",
                    node.first
                ),
            )),
        }
    }

    /// `node`'s first `count` clusters (fewer where its chain ends sooner), contiguous or
    /// chained.
    pub(super) fn clusters(&self, node: Node, count: u64, what: &str) -> io::Result<Vec<u32>> {
        match (count, node.contiguous) {
            (0, _) => Ok(Vec::new()),
            (_, false) => self.chain(node.first, count, what),
            (_, true) => {
                self.run_in_heap(node, count, what)?;
                Ok((node.first..node.first + count as u32).collect())
            }
        }
    }

    /// The pieces of `node`'s clusters, `bytes` of them (whole clusters).
    fn pieces(&self, node: Node, bytes: u64, what: &str) -> io::Result<Vec<Piece>> {
        let layout = &self.layout;
        let count = bytes.div_ceil(layout.cluster);
        if node.contiguous && count > 0 {
            // One piece, however long: its clusters need not be listed one by one.
            self.run_in_heap(node, count, what)?;
            let (at, len) = (layout.at(node.first), count * layout.cluster);
            return Ok(vec![Piece::Disk { at, len }]);
        }
        let mut pieces = Vec::new();
        for c in self.clusters(node, count, what)? {
            runs::push(
                &mut pieces,
                Piece::Disk {
                    at: layout.at(c),
                    len: layout.cluster,
                },
            );
        }
        Ok(pieces)
    }

    /// `node`'s bytes, as long as it says it is.
    pub(super) fn data(&self, node: Node, what: &str) -> io::Result<Arc<dyn ReadAt>> {
        let size = node.size.unwrap_or(0);
        if size == 0 {
            return Ok(Arc::new(Vec::new()));
        }
        let pieces = self.pieces(node, size, what)?;
        let short = |problem: String| bad("exFAT file", 0, format!("{what}: {problem}"));
        runs::assemble(&self.source, &pieces, size, node.valid.min(size), short)
    }

    /// A directory's clusters: as many as its stream extension's length takes, the root's as
    /// far as its chain goes; 256 MiB of them at most either way.
    pub(super) fn dir_clusters(&self, node: Node) -> io::Result<Vec<u32>> {
        let what = format!("the directory at cluster {}", node.first);
        let count = match node.size {
            Some(size) => size.min(MAX_DIR_BYTES).div_ceil(self.layout.cluster),
            None => MAX_DIR_BYTES / self.layout.cluster,
        };
        self.clusters(node, count, &what)
    }

    /// A directory's raw entries: as long as its stream extension says, the root as long as its
    /// chain goes; at most 256 MiB either way.
    fn dir_bytes(&self, node: Node) -> io::Result<Vec<u8>> {
        let what = format!("the directory at cluster {}", node.first);
        let clusters = self.dir_clusters(node)?;
        let cluster = self.layout.cluster;
        let size = node
            .size
            .unwrap_or(clusters.len() as u64 * cluster)
            .min(MAX_DIR_BYTES);
        let mut pieces = Vec::new();
        for c in clusters {
            let (at, len) = (self.layout.at(c), cluster);
            runs::push(&mut pieces, Piece::Disk { at, len });
        }
        let short = |problem: String| bad("exFAT directory", 0, format!("{what}: {problem}"));
        let data = runs::assemble(&self.source, &pieces, size, node.valid.min(size), short)?;
        let mut bytes = vec![0u8; data.size() as usize];
        data.read_exact_at(0, &mut bytes)?;
        Ok(bytes)
    }

    /// The entry sets of a directory, in order.
    pub(super) fn sets(&self, node: Node) -> io::Result<Vec<Set>> {
        let bytes = self.dir_bytes(node)?;
        sets_in(&bytes, node.first)
    }

    /// A name with every character as the up-case table maps it.
    pub(super) fn upper(&self, name: &str) -> String {
        if self.upcase.is_empty() {
            return name.to_uppercase();
        }
        let units: Vec<u16> = name
            .encode_utf16()
            .map(|u| self.upcase.get(usize::from(u)).copied().unwrap_or(u))
            .collect();
        String::from_utf16_lossy(&units)
    }
}

/// The entry sets in a directory's bytes (the directory at cluster `first`), in order; one
/// whose checksum or layout is wrong is an error naming it.
pub(super) fn sets_in(bytes: &[u8], first: u32) -> io::Result<Vec<Set>> {
    let entries: Vec<&[u8]> = bytes.chunks_exact(ENTRY).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let e = entries[i];
        if e[0] == 0 {
            break;
        }
        if e[0] != ENTRY_FILE {
            i += 1;
            continue;
        }
        let at = (i * ENTRY) as u64;
        let problem = |p: String| {
            bad(
                "exFAT directory entry set",
                at,
                format!("in the directory at cluster {}: {p}", first),
            )
        };
        let secondary = usize::from(e[1]);
        if !(2..=18).contains(&secondary) || i + secondary >= entries.len() {
            return Err(problem(format!("{secondary} secondary entries")));
        }
        let set = &bytes[i * ENTRY..(i + 1 + secondary) * ENTRY];
        if set_checksum(set) != le16(e, 2) {
            return Err(problem(format!(
                "its checksum is {:#06x}, its file entry says {:#06x}",
                set_checksum(set),
                le16(e, 2)
            )));
        }
        let stream = entries[i + 1];
        if stream[0] != ENTRY_STREAM {
            return Err(problem(format!(
                "its second entry is of type {:#04x}, not a stream extension",
                stream[0]
            )));
        }
        let name_len = usize::from(stream[3]);
        let names = &entries[i + 2..=i + secondary];
        if names.len() * 15 < name_len || names.iter().any(|n| n[0] != ENTRY_NAME) {
            return Err(problem(format!(
                "a name of {name_len} characters in {} name entries",
                names.iter().take_while(|n| n[0] == ENTRY_NAME).count()
            )));
        }
        let units: Vec<u16> = names
            .iter()
            .flat_map(|n| n[2..].chunks_exact(2))
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take(name_len)
            .collect();
        let attributes = le16(e, 4);
        out.push(Set {
            index: i,
            entries: 1 + secondary,
            name: String::from_utf16_lossy(&units),
            attributes,
            modified: unix(le32(e, 12), e[21], e[23]),
            node: Node {
                first: le32(stream, 20),
                size: Some(le64(stream, 24)),
                valid: le64(stream, 8),
                contiguous: stream[1] & NO_FAT_CHAIN != 0,
            },
        });
        i += 1 + secondary;
    }
    Ok(out)
}

impl Volume for ExFat {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn case_sensitive(&self) -> bool {
        false
    }

    fn fold_case(&self, name: &str) -> Option<String> {
        Some(self.upper(name))
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn facts(&self) -> Vec<Fact> {
        self.guid
            .iter()
            .map(|g| Fact::new("Volume GUID", crate::partition::gpt::guid_text(g)))
            .collect()
    }

    fn used(&self) -> Option<u64> {
        let (first, len) = self.bitmap?;
        let bits = self.layout.clusters;
        let node = Node {
            first,
            size: Some(len.min(bits.div_ceil(8))),
            valid: u64::MAX,
            contiguous: false,
        };
        let data = self.data(node, "the allocation bitmap").ok()?;
        let set = runs::count_set_bits(&*data, bits).ok()?;
        Some(set * self.layout.cluster)
    }

    fn root(&self) -> DirEntry {
        DirEntry::root(
            u64::from(self.layout.root),
            0,
            Handle::new(self.root_node()),
        )
    }

    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        let node = *dir.handle.get::<Node>()?;
        Ok(self
            .sets(node)?
            .into_iter()
            .map(|set| {
                let is_dir = set.attributes & ATTR_DIRECTORY != 0;
                DirEntry {
                    kind: if is_dir {
                        EntryKind::Directory
                    } else {
                        EntryKind::File
                    },
                    size: if is_dir {
                        0
                    } else {
                        set.node.size.unwrap_or(0)
                    },
                    modified: set.modified,
                    // Read-only files as the Linux driver shows them; no other permissions kept.
                    mode: (!is_dir && set.attributes & ATTR_READ_ONLY != 0).then_some(0o444),
                    owner: None,
                    links: 1,
                    // A folder is its first cluster: a subfolder naming an ancestor's is a loop.
                    inode: u64::from(set.node.first),
                    streams: Vec::new(),
                    handle: Handle::new(set.node),
                    name: set.name,
                }
            })
            .collect())
    }

    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        let node = *file.handle.get::<Node>()?;
        if node.size.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the root is not a file",
            ));
        }
        self.data(node, &file.name)
    }
}
