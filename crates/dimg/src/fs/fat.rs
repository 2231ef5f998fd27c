//! FAT12/16/32 with long names, read-only, through the `fatfs` crate (formats.md §i). fatfs wants
//! a read-write-seek device: the adapter here refuses every write, so the volume cannot change.

use super::{DirEntry, EntryKind, Handle, Volume};
use crate::io::ReadAt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

/// A read-only device for fatfs over a byte source.
struct Device {
    source: Arc<dyn ReadAt>,
    position: u64,
}

impl Read for Device {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.source.read_at(self.position, buf)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl Write for Device {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "dimg opens volumes read-only",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Device {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.source.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.position.checked_add_signed(d),
        };
        self.position = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

type Fs = fatfs::FileSystem<Device>;

/// fatfs's file system object cannot be shared between threads, and mounting reads only the
/// boot sector and FSInfo: every call mounts its own.
fn mount(source: &Arc<dyn ReadAt>) -> io::Result<Fs> {
    Fs::new(
        Device {
            source: source.clone(),
            position: 0,
        },
        fatfs::FsOptions::new(),
    )
}

pub struct Fat {
    source: Arc<dyn ReadAt>,
    label: String,
}

/// An entry's handle: its path from the root (FAT names cannot hold '/').
struct Path(String);

impl Fat {
    pub fn open(source: Arc<dyn ReadAt>) -> io::Result<Self> {
        let label = super::label_text(&mount(&source)?.volume_label());
        Ok(Fat { source, label })
    }
}

fn unix(t: fatfs::DateTime) -> Option<i64> {
    // FAT keeps local time without a zone; shown as UTC, as 7-Zip and mtools do.
    let (d, tm) = (t.date, t.time);
    (d.month >= 1).then(|| {
        let days = super::days_from_civil(i64::from(d.year), i64::from(d.month), i64::from(d.day));
        days * 86_400 + i64::from(tm.hour) * 3600 + i64::from(tm.min) * 60 + i64::from(tm.sec)
    })
}

impl Volume for Fat {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn case_sensitive(&self) -> bool {
        false
    }

    fn used(&self) -> Option<u64> {
        let stats = mount(&self.source).and_then(|fs| fs.stats()).ok()?;
        let clusters = stats.total_clusters().saturating_sub(stats.free_clusters());
        Some(u64::from(clusters) * u64::from(stats.cluster_size()))
    }

    fn free_extents(&self) -> io::Result<Vec<(u64, u64)>> {
        let layout = Layout::read(&*self.source)?;
        // The first FAT, read a megabyte at a time: a cluster is free when its entry is 0.
        const CHUNK: u64 = 1 << 20;
        let entry_at = |n: u64| match layout.bits {
            12 => n * 3 / 2,
            16 => n * 2,
            _ => n * 4,
        };
        let (mut free, mut run): (Vec<(u64, u64)>, Option<u64>) = (Vec::new(), None);
        let (mut chunk, mut chunk_at) = (Vec::new(), u64::MAX);
        let mut byte = |at: u64| -> io::Result<u8> {
            if at / CHUNK != chunk_at {
                chunk_at = at / CHUNK;
                let start = layout.fat + chunk_at * CHUNK;
                chunk.resize(
                    CHUNK.min(self.source.size().saturating_sub(start)) as usize,
                    0,
                );
                self.source.read_exact_at(start, &mut chunk)?;
            }
            chunk.get((at % CHUNK) as usize).copied().ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "the FAT runs past the volume")
            })
        };
        let last = layout.clusters + 2;
        for n in 2..last {
            let at = entry_at(n);
            let value = match layout.bits {
                12 => {
                    let pair = u16::from(byte(at)?) | u16::from(byte(at + 1)?) << 8;
                    u32::from(if n % 2 == 0 { pair & 0xFFF } else { pair >> 4 })
                }
                16 => u32::from(byte(at)?) | u32::from(byte(at + 1)?) << 8,
                _ => {
                    u32::from_le_bytes([byte(at)?, byte(at + 1)?, byte(at + 2)?, byte(at + 3)?])
                        & 0x0FFF_FFFF
                }
            };
            match (value == 0, run) {
                (true, None) => run = Some(n),
                (false, Some(start)) => {
                    free.push(layout.span(start, n));
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(start) = run {
            free.push(layout.span(start, last));
        }
        Ok(free)
    }

    fn root(&self) -> DirEntry {
        DirEntry::root(0, 0, Handle::new(Path(String::new())))
    }

    fn read_dir(&self, dir: &DirEntry) -> io::Result<Vec<DirEntry>> {
        let Path(path) = dir.handle.get::<Path>()?;
        let fs = mount(&self.source)?;
        let root = fs.root_dir();
        let folder = if path.is_empty() {
            root
        } else {
            root.open_dir(path)?
        };
        let mut out = Vec::new();
        for e in folder.iter() {
            let e = e?;
            let name = e.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let full = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            out.push(DirEntry {
                kind: if e.is_dir() {
                    EntryKind::Directory
                } else {
                    EntryKind::File
                },
                size: e.len(),
                modified: unix(e.modified()),
                mode: None,
                owner: None,
                links: 1,
                // The first cluster would do, but fatfs keeps it private: the path is unique too.
                inode: hash(&full),
                streams: Vec::new(),
                handle: Handle::new(Path(full)),
                name,
            });
        }
        Ok(out)
    }

    fn open(&self, file: &DirEntry) -> io::Result<Arc<dyn ReadAt>> {
        let Path(path) = file.handle.get::<Path>()?;
        Ok(Arc::new(FatFile {
            source: self.source.clone(),
            path: path.clone(),
            size: file.size,
        }))
    }
}

/// Where a FAT volume keeps its table and its clusters (Microsoft's FAT specification, "BPB").
struct Layout {
    /// The first FAT's offset.
    fat: u64,
    /// Where cluster 2 starts.
    data: u64,
    cluster: u64,
    clusters: u64,
    bits: u32,
}

impl Layout {
    fn read(source: &dyn ReadAt) -> io::Result<Layout> {
        let mut b = [0u8; 64];
        source.read_exact_at(0, &mut b)?;
        let u16_at = |i: usize| u64::from(u16::from_le_bytes([b[i], b[i + 1]]));
        let u32_at = |i: usize| u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
        let (sector, per_cluster) = (u16_at(11), u64::from(b[13]));
        let (reserved, fats, root_entries) = (u16_at(14), u64::from(b[16]), u16_at(17));
        let total = match u16_at(19) {
            0 => u32_at(32),
            n => n,
        };
        let fat_sectors = match u16_at(22) {
            0 => u32_at(36),
            n => n,
        };
        if sector == 0 || per_cluster == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "FAT boot sector: no sector or cluster size",
            ));
        }
        let root = (root_entries * 32).div_ceil(sector);
        let first_data = reserved + fats * fat_sectors + root;
        let clusters = total.saturating_sub(first_data) / per_cluster;
        Ok(Layout {
            fat: reserved * sector,
            data: first_data * sector,
            cluster: per_cluster * sector,
            clusters,
            bits: match clusters {
                0..4085 => 12,
                4085..65525 => 16,
                _ => 32,
            },
        })
    }

    /// Clusters `[start, end)` as bytes of the volume.
    fn span(&self, start: u64, end: u64) -> (u64, u64) {
        (
            self.data + (start - 2) * self.cluster,
            (end - start) * self.cluster,
        )
    }
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// A file of the volume, read through fatfs.
struct FatFile {
    source: Arc<dyn ReadAt>,
    path: String,
    size: u64,
}

impl ReadAt for FatFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let fs = mount(&self.source)?;
        let mut f = fs.root_dir().open_file(&self.path)?;
        f.seek(SeekFrom::Start(offset))?;
        let want = buf.len().min((self.size - offset) as usize);
        let mut done = 0;
        while done < want {
            match f.read(&mut buf[done..want])? {
                0 => break,
                n => done += n,
            }
        }
        Ok(done)
    }

    fn size(&self) -> u64 {
        self.size
    }
}
