//! Apple UDIF (.dmg): a data fork of chunks, an XML property list (or an old binary resource
//! fork) of block tables, and a 512-byte 'koly' trailer. Read-only here; see formats.md §a.

mod disk;
mod in_place;
mod koly;
pub mod licence;
mod mish;
mod resources;
mod signature;
pub mod writer;

use super::Check;
use super::{Checksums, Container, Driver, Fact, LayoutEntry, Probe, StoredCrc};
use crate::error::FormatError;
use crate::io::{ReadAt, WriteAt};
use crate::magic::Signature;
use disk::UdifDisk;
use in_place::InPlace;
use koly::Koly;
use mish::{BlockTable, ChunkKind};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

pub static DRIVER: Driver = Driver {
    name: "Apple UDIF disk image",
    probe,
    open,
};

fn probe(p: &Probe) -> u8 {
    p.certain_if(Signature::Udif)
}

struct Partition {
    id: i64,
    name: String,
    table: BlockTable,
}

struct Udif {
    file: Arc<dyn ReadAt>,
    koly: Koly,
    file_size: u64,
    metadata: &'static str,
    resource_kinds: Vec<(String, usize)>,
    agreement: Option<licence::Agreement>,
    partitions: Vec<Partition>,
    disk: Arc<UdifDisk>,
    /// The disk to change in place, when the image was opened to be written and is UDRW.
    writable: Option<Arc<InPlace>>,
}

fn open(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let sniff = p.sniff;
    let trailer_at = sniff.size - koly::SIZE as u64;
    let trailer: &[u8; koly::SIZE] = sniff.tail[sniff.tail.len() - koly::SIZE..]
        .try_into()
        .expect("the tail holds the trailer");
    let koly = Koly::parse(trailer, trailer_at, sniff.size)?;
    if koly.segment_count > 1 {
        return Err(FormatError::io(
            "UDIF koly trailer",
            trailer_at,
            format!(
                "segment {} of {}: segmented images are not supported yet",
                koly.segment_number, koly.segment_count
            ),
        ));
    }
    let resources = resources::read(&*file, &koly)?;
    let data_end = koly.data_fork_offset + koly.data_fork_length;
    let mut partitions = Vec::new();
    for blkx in resources.blkx {
        let table = mish::parse(&blkx.name, &blkx.data, koly.data_fork_offset, data_end)?;
        if let Some(c) = table
            .chunks
            .iter()
            .find(|c| c.first_sector + c.sectors > koly.sector_count)
        {
            return Err(FormatError::io(
                "UDIF mish block table",
                0,
                format!(
                    "'{}': chunk at sector {} runs past the disk's {} sectors",
                    blkx.name, c.first_sector, koly.sector_count
                ),
            ));
        }
        partitions.push(Partition {
            id: blkx.id,
            name: blkx.name,
            table,
        });
    }
    let runs = partitions
        .iter()
        .flat_map(|p| p.table.chunks.iter().cloned())
        .collect();
    let disk = Arc::new(UdifDisk::new(file.clone(), koly.sector_count * 512, runs)?);
    let mut udif = Udif {
        file,
        koly,
        file_size: sniff.size,
        metadata: resources.source,
        resource_kinds: resources.kinds,
        agreement: resources.agreement,
        partitions,
        disk,
        writable: None,
    };
    if let Some(file) = p.writable.filter(|_| udif.in_place()) {
        let tables = udif
            .partitions
            .iter()
            .map(|p| {
                (p.table.checksum.crc32()).map(|_| in_place::TableCrc {
                    ranges: p.table.crc_ranges(),
                })
            })
            .collect();
        udif.writable = Some(Arc::new(InPlace::new(
            file.clone(),
            udif.koly.clone(),
            trailer_at,
            tables,
        )));
    }
    Ok(Box::new(udif))
}

impl Udif {
    /// The embedded code signature, described (read only).
    fn signature(&self) -> String {
        let (at, len) = (
            self.koly.code_signature_offset,
            self.koly.code_signature_length,
        );
        if !signature::readable(len) {
            return "too large to be a code signature".into();
        }
        let mut blob = vec![0u8; len as usize];
        match self.file.read_exact_at(at, &mut blob) {
            Ok(()) => signature::describe(&blob),
            Err(e) => format!("unreadable ({e})"),
        }
    }

    fn chunks(&self) -> impl Iterator<Item = &mish::Chunk> {
        self.partitions.iter().flat_map(|p| p.table.chunks.iter())
    }

    /// hdiutil's name for the format, from the chunk kinds present.
    fn variant(&self) -> String {
        let mut codecs: Vec<_> = Vec::new();
        for c in self.chunks() {
            if let ChunkKind::Compressed(codec) = c.kind {
                if !codecs.contains(&codec) {
                    codecs.push(codec);
                }
            }
        }
        use crate::codec::Codec::*;
        let name = |c| match c {
            Adc => "UDCO (ADC-compressed)",
            Zlib => "UDZO (zlib-compressed)",
            Bzip2 => "UDBZ (bzip2-compressed)",
            Lzfse => "ULFO (LZFSE-compressed)",
            Xz => "ULMO (LZMA-compressed)",
        };
        match codecs.as_slice() {
            [] if self.in_place() => "UDRW (read/write)".into(),
            [] => "UDRO (read-only, uncompressed)".into(),
            [one] => name(*one).into(),
            many => format!(
                "mixed: {}",
                many.iter()
                    .map(|c| name(*c))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        }
    }

    /// Read/write: every sector stored raw where it lies on the disk, so it can be written in
    /// place (no zero or ignored runs left out).
    fn in_place(&self) -> bool {
        self.chunks()
            .all(|c| c.kind == ChunkKind::Raw && c.file_offset == c.first_sector * 512)
    }

    fn master_crc(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for p in &self.partitions {
            h.update(p.table.checksum.value_bytes());
        }
        h.finalize()
    }
}

fn crc_text(c: &koly::Checksum) -> String {
    match (c.kind, c.crc32()) {
        (0, _) => "none".into(),
        (_, Some(v)) => format!("CRC32 ${v:08X}"),
        (k, None) => format!("type {k} ({} bits), not checked", c.bits),
    }
}

impl Container for Udif {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.disk.clone()
    }

    fn read_write(&self) -> bool {
        self.in_place()
    }

    fn writable(&self) -> Option<Arc<dyn WriteAt>> {
        self.writable.clone().map(|w| w as Arc<dyn WriteAt>)
    }

    fn agreement(&self) -> Option<licence::Agreement> {
        self.agreement.clone()
    }

    fn facts(&self) -> Vec<Fact> {
        let k = &self.koly;
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for c in self.chunks() {
            *counts.entry(c.kind.name()).or_default() += 1;
        }
        let stored: u64 = self.chunks().map(|c| c.file_length).sum();
        let disk_bytes = k.sector_count * 512;
        let mut facts = vec![
            Fact::new("Variant", self.variant()),
            Fact::new(
                "Chunks",
                counts
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            Fact::new(
                "Data fork",
                format!(
                    "{} bytes at offset {} ({:.1}% of the disk)",
                    k.data_fork_length,
                    k.data_fork_offset,
                    if disk_bytes == 0 {
                        0.0
                    } else {
                        100.0 * stored as f64 / disk_bytes as f64
                    }
                ),
            ),
            Fact::new("Data checksum", crc_text(&k.data_fork_checksum)),
            Fact::new("Master checksum", crc_text(&k.master_checksum)),
            Fact::new(
                "Block tables",
                format!(
                    "{} (resources: {})",
                    self.metadata,
                    self.resource_kinds
                        .iter()
                        .map(|(k, n)| format!("{k} ×{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Fact::new(
                "Image variant",
                match k.image_variant {
                    1 => "1 (device image)".to_string(),
                    2 => "2 (partition image)".to_string(),
                    3 => "3 (converted NDIF)".to_string(),
                    v => v.to_string(),
                },
            ),
            Fact::new(
                "Segment",
                format!(
                    "{} of {}, ID {}, running data fork offset {}",
                    k.segment_number,
                    k.segment_count,
                    crate::bytes::uuid_text(&k.segment_id),
                    k.running_data_fork_offset
                ),
            ),
            Fact::new(
                "Agreement",
                self.agreement.as_ref().map_or("none".to_string(), |a| {
                    a.languages
                        .iter()
                        .map(|l| {
                            format!(
                                "{} ({}, {} characters)",
                                l.language,
                                l.format,
                                l.text.chars().count()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                }),
            ),
            Fact::new(
                "Code signature",
                if k.code_signature_length == 0 {
                    "none".to_string()
                } else {
                    format!(
                        "{} bytes at offset {}: {}",
                        k.code_signature_length,
                        k.code_signature_offset,
                        self.signature()
                    )
                },
            ),
            Fact::new(
                "Trailer",
                format!(
                    "koly v{} at offset {}, flags 0x{:X}",
                    k.version,
                    self.file_size - 512,
                    k.flags
                ),
            ),
        ];
        for p in &self.partitions {
            facts.push(Fact::new(
                "blkx",
                format!(
                    "{:>3} {} — sectors {}+{}, {}",
                    p.id,
                    p.name,
                    p.table.first_sector,
                    p.table.sectors,
                    crc_text(&p.table.checksum)
                ),
            ));
        }
        facts
    }

    fn layout(&self) -> Option<Vec<LayoutEntry>> {
        Some(
            self.partitions
                .iter()
                .map(|p| LayoutEntry {
                    id: p.id,
                    name: p.name.clone(),
                    first_sector: p.table.first_sector,
                    sectors: p.table.sectors,
                })
                .collect(),
        )
    }

    fn checksums(&self) -> Checksums {
        let k = &self.koly;
        let mut sums = Checksums {
            file: Some(self.file.clone()),
            data_fork: Some(k.data_fork_offset..k.data_fork_offset + k.data_fork_length),
            ..Checksums::default()
        };
        if let Some(stored) = k.data_fork_checksum.crc32() {
            let data_fork = k.data_fork_offset..k.data_fork_offset + k.data_fork_length;
            sums.of_file.push(StoredCrc {
                name: "data fork CRC32".into(),
                ranges: vec![data_fork],
                stored,
            });
        }
        for p in &self.partitions {
            let Some(stored) = p.table.checksum.crc32() else {
                continue;
            };
            sums.of_disk.push(StoredCrc {
                name: format!("blkx {} '{}' CRC32", p.id, p.name),
                ranges: p.table.crc_ranges(),
                stored,
            });
        }
        if let Some(stored) = k.master_checksum.crc32() {
            let computed = self.master_crc();
            sums.checked
                .push(Check::new("master CRC32", stored, computed));
        }
        sums
    }
}
