//! `.sparseimage` (UDSP, formats.md §c.1): 4096-byte index nodes, each followed by the bands its
//! table places. The header node's table has 1008 slots from 0x40, every further node's 1010
//! from 0x38; slot `k` holds the logical band number + 1 of the `k`-th band after its node (0: a
//! free slot). A band no slot names reads as zeros. Big-endian.

use super::{Container, Driver, Fact, Probe};
use crate::bytes::{be32, be64};
use crate::error::FormatError;
use crate::io::{band_span, band_zeros_until, past_end, Patched, ReadAt, WriteAt};
use crate::magic::Signature;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, RwLock};

pub static DRIVER: Driver = Driver {
    name: "Apple sparse disk image",
    probe,
    open,
};

fn probe(p: &Probe) -> u8 {
    p.certain_if(Signature::SparseImage)
}

const NODE: u64 = 4096;
/// The header node's band table: its offset and slots; then every further index node's.
const HEADER_TABLE: usize = 0x40;
const HEADER_SLOTS: usize = 1008;
const INDEX_TABLE: usize = 0x38;
const INDEX_SLOTS: usize = 1010;
/// Where the header node, and every further index node, says the next node is.
const HEADER_NEXT: usize = 0x14;
const INDEX_NEXT: usize = 0x0C;

/// Where a node's band table starts, how many slots it has, and where it names the next node: the
/// header node's (the file's first) or a further index node's.
fn node_fields(node_at: u64) -> (usize, usize, usize) {
    match node_at {
        0 => (HEADER_TABLE, HEADER_SLOTS, HEADER_NEXT),
        _ => (INDEX_TABLE, INDEX_SLOTS, INDEX_NEXT),
    }
}
const STRUCTURE: &str = "sparse image header";

fn bad(at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(STRUCTURE, at, problem)
}

struct SparseImage {
    disk: Arc<Bands>,
    band_size: u64,
    bands: usize,
    nodes: usize,
    writable: Option<Arc<Growing>>,
}

/// The virtual disk: each logical band where its slot puts it in the file, or zeros — or, for a
/// shadow file, the disk it shadows.
struct Bands {
    file: Arc<dyn ReadAt>,
    band_size: u64,
    size: u64,
    at: RwLock<HashMap<u64, u64>>,
    under: Option<Arc<dyn ReadAt>>,
}

impl ReadAt for Bands {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Some((band, within, n)) = band_span(offset, buf.len(), self.band_size, self.size)
        else {
            return Ok(0);
        };
        let at = self
            .at
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&band)
            .copied();
        match (at, &self.under) {
            (Some(start), _) => self.file.read_exact_at(start + within, &mut buf[..n])?,
            (None, Some(under)) => under.read_exact_at(offset, &mut buf[..n])?,
            (None, None) => buf[..n].fill(0),
        }
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.size
    }

    /// Bands not allocated, unless a shadow's disk shows through them.
    fn zeros_until(&self, offset: u64) -> u64 {
        if self.under.is_some() {
            return offset;
        }
        let at = self.at.read().unwrap_or_else(|p| p.into_inner());
        band_zeros_until(offset, self.band_size, self.size, |n| {
            match at.contains_key(&n) {
                true => self.band_size,
                false => 0,
            }
        })
    }
}

fn open(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let (disk, last, nodes) = read_bands(file, None)?;
    let writable = match p.writable {
        Some(file) => Some(Arc::new(Growing::new(
            file.clone(),
            disk.clone(),
            last,
            nodes,
        )?)),
        None => None,
    };
    let bands = disk.at.read().unwrap_or_else(|p| p.into_inner()).len();
    Ok(Box::new(SparseImage {
        band_size: disk.band_size,
        disk,
        bands,
        nodes,
        writable,
    }))
}

/// The disk a sparse image file holds, its bands read from the file and the rest from `under`
/// (zeros without one); with where its last index node is and how many nodes it has.
fn read_bands(
    file: Arc<dyn ReadAt>,
    under: Option<Arc<dyn ReadAt>>,
) -> io::Result<(Arc<Bands>, u64, usize)> {
    let mut node = vec![0u8; NODE as usize];
    if file.size() < NODE {
        return Err(bad(
            0,
            format!("{} bytes, less than its 4096-byte header", file.size()),
        ));
    }
    file.read_exact_at(0, &mut node)?;
    let sectors_per_band = u64::from(be32(&node, 0x08));
    let sectors = be64(&node, 0x1C);
    if sectors_per_band == 0 || sectors_per_band > 1 << 22 {
        return Err(bad(0x08, format!("{sectors_per_band} sectors per band")));
    }
    let band_size = sectors_per_band * 512;
    let size = sectors
        .checked_mul(512)
        .filter(|&s| s <= 1 << 56)
        .ok_or_else(|| bad(0x1C, format!("{sectors} sectors")))?;
    let bands = size.div_ceil(band_size);
    let mut at = HashMap::new();
    let (mut here, mut nodes) = (0u64, 0usize);
    loop {
        nodes += 1;
        let (table, slots, next_at) = node_fields(here);
        for k in 0..slots {
            let entry = u64::from(be32(&node, table + 4 * k));
            if entry == 0 {
                continue;
            }
            let (band, slot_at) = (entry - 1, here + table as u64 + 4 * k as u64);
            if band >= bands {
                return Err(bad(
                    slot_at,
                    format!("band {band} lies past the disk's {bands} bands"),
                ));
            }
            let start = here + NODE + k as u64 * band_size;
            let needed = (size - band * band_size).min(band_size);
            if start + needed > file.size() {
                return Err(bad(
                    slot_at,
                    format!("band {band} lies past the end of the file"),
                ));
            }
            if at.insert(band, start).is_some() {
                return Err(bad(slot_at, format!("band {band} is listed twice")));
            }
        }
        let next = be64(&node, next_at);
        if next == 0 {
            break;
        }
        // Nodes follow their bands, so each lies further on: a chain cannot loop.
        if next <= here || next + NODE > file.size() {
            return Err(bad(
                here,
                format!("the next index node at {next} is out of order or past the end"),
            ));
        }
        here = next;
        file.read_exact_at(here, &mut node)?;
    }
    // A shadow's disk is as long as its header says, which `resize -shadow` may have made
    // longer or shorter than the disk it shadows: that is read as far as that, zeros past its
    // end.
    let under = under.map(|u| match u.size() == size {
        true => u,
        false => Arc::new(Patched::new(u, size)) as Arc<dyn ReadAt>,
    });
    let disk = Arc::new(Bands {
        file,
        band_size,
        size,
        at: RwLock::new(at),
        under,
    });
    Ok((disk, here, nodes))
}

/// The ranges (offset, length) of the disk whose bands the sparse image `file` stores, in disk
/// order.
pub fn stored(file: Arc<dyn ReadAt>) -> io::Result<Vec<(u64, u64)>> {
    let (bands, _, _) = read_bands(file, None)?;
    let (size, band) = (bands.size, bands.band_size);
    let mut ranges: Vec<(u64, u64)> = (bands.at.read().unwrap_or_else(|p| p.into_inner()))
        .keys()
        .map(|&b| (b * band, band.min(size - b * band)))
        .collect();
    ranges.sort_unstable();
    Ok(ranges)
}

/// The disk `under` as the sparse image `file` (a shadow file) changes it: the bands the image
/// holds read from it, the rest from `under`.
pub fn over(file: Arc<dyn ReadAt>, under: Arc<dyn ReadAt>) -> io::Result<Arc<dyn ReadAt>> {
    Ok(read_bands(file, Some(under))?.0)
}

/// [`over`], to be written: a band's first write copies it from `under` into the image.
pub fn over_writable(
    file: Arc<dyn WriteAt>,
    under: Arc<dyn ReadAt>,
) -> io::Result<Arc<dyn WriteAt>> {
    let (disk, last, nodes) = read_bands(file.clone(), Some(under))?;
    Ok(Arc::new(Growing::new(file, disk, last, nodes)?))
}

/// A sparse image changed in place. A band not stored yet is appended at the end of the file on
/// its first write, whole (zeros, or a shadow's disk, around what is written), and only then listed in the last index
/// node — in a new node after the bands when that one is full — so that a crash leaves the file
/// with every band it lists.
struct Growing {
    file: Arc<dyn WriteAt>,
    bands: Arc<Bands>,
    /// The last index node, its slots filled, and the file's end; held while a band is added.
    tail: Mutex<Tail>,
}

struct Tail {
    node: u64,
    /// Index nodes in the file, the header first.
    nodes: usize,
    filled: usize,
    end: u64,
}

impl Growing {
    /// The image whose last of `nodes` index nodes is at `last`. New bands go after the last
    /// band that node lists: whatever lies past it (a band a crash cut short, never listed) is
    /// written over.
    fn new(
        file: Arc<dyn WriteAt>,
        bands: Arc<Bands>,
        last: u64,
        nodes: usize,
    ) -> io::Result<Growing> {
        let mut node = vec![0u8; NODE as usize];
        file.read_exact_at(last, &mut node)?;
        let (table, slots, _) = node_fields(last);
        let filled = (0..slots)
            .rev()
            .find(|&k| be32(&node, table + 4 * k) != 0)
            .map_or(0, |k| k + 1);
        Ok(Growing {
            file,
            tail: Mutex::new(Tail {
                node: last,
                nodes,
                filled,
                end: last + NODE + filled as u64 * bands.band_size,
            }),
            bands,
        })
    }

    /// Stores logical band `band`, whose bytes from `within` are `data`, at the end of the file.
    fn add_band(&self, band: u64, within: u64, data: &[u8]) -> io::Result<()> {
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        // Another writer may have added it while this one waited.
        if let Some(&start) = self
            .bands
            .at
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&band)
        {
            return self.file.write_all_at(start + within, data);
        }
        let (_, slots, next_at) = node_fields(tail.node);
        if tail.filled == slots {
            let node = tail.end;
            let mut index = vec![0u8; NODE as usize];
            index[4..8].copy_from_slice(&(tail.nodes as u32).to_be_bytes());
            self.file.write_all_at(node, &index)?;
            self.file
                .write_all_at(tail.node + next_at as u64, &node.to_be_bytes())?;
            *tail = Tail {
                node,
                nodes: tail.nodes + 1,
                filled: 0,
                end: node + NODE,
            };
        }
        let start = tail.end;
        self.write_new_band(band, start, within, data)?;
        let (table, _, _) = node_fields(tail.node);
        let entry = u32::try_from(band + 1)
            .map_err(|_| bad(tail.node, "more bands than a sparse image can number"))?;
        let slot = tail.node + (table + 4 * tail.filled) as u64;
        self.file.write_all_at(slot, &entry.to_be_bytes())?;
        self.bands
            .at
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(band, start);
        tail.filled += 1;
        tail.end = start + self.bands.band_size;
        Ok(())
    }

    /// Band `band`'s bytes at `start` of the file: zeros, or a shadow's disk, with `data` at
    /// `within` — in pieces of at most 1 MiB, however large the header says a band is.
    fn write_new_band(&self, band: u64, start: u64, within: u64, data: &[u8]) -> io::Result<()> {
        let (size, band_size) = (self.bands.size, self.bands.band_size);
        let mut piece = vec![0u8; band_size.min(1 << 20) as usize];
        let mut at = 0;
        while at < band_size {
            let n = (band_size - at).min(piece.len() as u64) as usize;
            let chunk = &mut piece[..n];
            chunk.fill(0);
            if let Some(under) = &self.bands.under {
                // A shadow's band starts as the band it shadows.
                let from = band * band_size + at;
                let have = size.saturating_sub(from).min(n as u64) as usize;
                under.read_exact_at(from, &mut chunk[..have])?;
            }
            let (lo, hi) = (
                within.max(at),
                (within + data.len() as u64).min(at + n as u64),
            );
            if lo < hi {
                chunk[(lo - at) as usize..(hi - at) as usize]
                    .copy_from_slice(&data[(lo - within) as usize..(hi - within) as usize]);
            }
            self.file.write_all_at(start + at, chunk)?;
            at += n as u64;
        }
        Ok(())
    }
}

impl ReadAt for Growing {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.bands.read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.bands.size
    }
    fn zeros_until(&self, offset: u64) -> u64 {
        self.bands.zeros_until(offset)
    }
}

impl WriteAt for Growing {
    fn write_all_at(&self, mut offset: u64, mut buf: &[u8]) -> io::Result<()> {
        let b = &self.bands;
        past_end(offset, buf.len(), b.size)?;
        while let Some((band, within, n)) =
            band_span(offset, buf.len(), b.band_size, b.size).filter(|_| !buf.is_empty())
        {
            let stored =
                b.at.read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&band)
                    .copied();
            match stored {
                Some(start) => self.file.write_all_at(start + within, &buf[..n])?,
                None => self.add_band(band, within, &buf[..n])?,
            }
            offset += n as u64;
            buf = &buf[n..];
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync()
    }

    fn finish(&self) -> io::Result<()> {
        self.file.finish()
    }
}

impl Container for SparseImage {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }

    fn writable(&self) -> Option<Arc<dyn WriteAt>> {
        self.writable.clone().map(|w| w as Arc<dyn WriteAt>)
    }

    fn band_size(&self) -> Option<u64> {
        Some(self.band_size)
    }

    fn read_write(&self) -> bool {
        true
    }

    fn facts(&self) -> Vec<Fact> {
        vec![
            Fact::new("Band size", format!("{} bytes", self.band_size)),
            Fact::new(
                "Bands stored",
                format!("{} in {} index node(s)", self.bands, self.nodes),
            ),
        ]
    }
}

/// hdiutil's band in a sparse image: 1 MiB.
pub const BAND: u64 = 1 << 20;

/// A sparse image's index as its writer fills it: bands are appended in the order they come,
/// each after the node whose table lists it, a new index node before every 1,010 more.
pub struct Index {
    band: u64,
    /// Each node: where it is, and the logical band + 1 of each slot filled so far.
    nodes: Vec<(u64, Vec<u32>)>,
    /// The file's length so far.
    end: u64,
}

impl Index {
    pub fn new(band: u64) -> Index {
        Index {
            band,
            nodes: vec![(0, Vec::new())],
            end: NODE,
        }
    }

    /// Lists logical band `number` and says where its bytes go; None when a sparse image
    /// cannot number it.
    pub fn append(&mut self, number: u64) -> Option<u64> {
        let entry = u32::try_from(number + 1).ok()?;
        let (_, slots, _) = node_fields(self.nodes.last().expect("a node").0);
        if self.nodes.last().expect("a node").1.len() == slots {
            self.nodes.push((self.end, Vec::new()));
            self.end += NODE;
        }
        self.nodes.last_mut().expect("a node").1.push(entry);
        let at = self.end;
        self.end += self.band;
        Some(at)
    }

    /// The file's length with every band appended so far.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The header node (of a disk of `size` bytes) and every further index node, each with
    /// where it goes.
    pub fn nodes(&self, size: u64) -> Vec<(u64, Vec<u8>)> {
        let sectors = size.div_ceil(512);
        let mut written = Vec::new();
        for (i, (at, slots)) in self.nodes.iter().enumerate() {
            let next = self.nodes.get(i + 1).map_or(0, |n| n.0);
            let mut node = vec![0u8; NODE as usize];
            let (table, _, next_at) = node_fields(*at);
            node[next_at..next_at + 8].copy_from_slice(&next.to_be_bytes());
            if i == 0 {
                node[0..4].copy_from_slice(b"sprs");
                node[4..8].copy_from_slice(&3u32.to_be_bytes());
                node[8..12].copy_from_slice(&((self.band / 512) as u32).to_be_bytes());
                node[12..16].copy_from_slice(&1u32.to_be_bytes());
                node[16..20].copy_from_slice(&(sectors as u32).to_be_bytes());
                node[0x1C..0x24].copy_from_slice(&sectors.to_be_bytes());
            } else {
                // Index nodes: their number (the first field's value is not known; no reader
                // checks it).
                node[4..8].copy_from_slice(&(i as u32).to_be_bytes());
            }
            for (k, entry) in slots.iter().enumerate() {
                node[table + 4 * k..table + 4 * k + 4].copy_from_slice(&entry.to_be_bytes());
            }
            written.push((*at, node));
        }
        written
    }
}
