//! New images: blank, or made from a folder (`hdiutil create -size` / `-srcfolder`). The volume
//! is built (ISO 9660 and HFS+ virtually, FAT in a nameless scratch file beside the output), put in its
//! partition map, and written by the convert pipeline in any output format, encrypted or not.

use super::convert::{self, ConvertOptions, ConvertReport, OutputFormat};
use super::job::{Cancel, Progress};
use crate::container::{Container, Fact};
use crate::error::{Error, Result};
use crate::fs::tree::Tree;
use crate::fs::{apfs, exfat, fat, hfsplus, iso9660, udf};
use crate::io::Zeros;
use crate::io::{Concat, FileSource, ReadAt, Slice};
use crate::partition::{self, Layout, VolumeType};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// A file system to create, by hdiutil's `-fs` names where it has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum FileSystem {
    /// Mac OS Extended: HFS+, names compared without case (unjournaled).
    HfsPlus,
    /// HFS+ that tells "a" from "A" (Mac OS Extended, Case-sensitive).
    Hfsx,
    /// Mac OS Extended (Journaled): hdiutil's and Disk Utility's default.
    JournaledHfsPlus,
    /// Mac OS Extended (Case-sensitive, Journaled).
    JournaledHfsx,
    /// ISO 9660 with Rock Ridge and Joliet (from a folder only).
    Iso,
    /// ISO 9660 and HFS+ over the same files, with an Apple partition map (`makehybrid -hfs`).
    Hybrid,
    /// UDF 1.02, as DVDs hold and `makehybrid -udf` writes (from a folder only).
    Udf,
    /// UDF 2.01 (`makehybrid -udf -udf-version 2.01`).
    Udf201,
    /// FAT12/16/32 by size ("MS-DOS", "FAT").
    Fat,
    Fat32,
    /// exFAT, as USB keys are formatted ("ExFAT").
    ExFat,
    /// APFS, names compared without case: a container of one volume.
    Apfs,
    /// Case-sensitive APFS.
    CaseSensitiveApfs,
    /// No file system: a blank disk.
    None,
}

impl FromStr for FileSystem {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "ISO" | "ISO9660" | "ISO 9660" | "CD" => FileSystem::Iso,
            "HYBRID" | "ISO+HFS" | "ISO+HFS+" => FileSystem::Hybrid,
            "FAT" | "MS-DOS" | "MSDOS" | "FAT16" => FileSystem::Fat,
            "FAT32" | "MS-DOS FAT32" => FileSystem::Fat32,
            "EXFAT" => FileSystem::ExFat,
            "UDF" | "UDF1.02" => FileSystem::Udf,
            "UDF2.01" => FileSystem::Udf201,
            "NONE" => FileSystem::None,
            "HFS+" | "HFS" | "MAC OS EXTENDED" => FileSystem::HfsPlus,
            "HFSX" | "CASE-SENSITIVE HFS+" => FileSystem::Hfsx,
            "JHFS+" | "HFS+J" | "MAC OS EXTENDED (JOURNALED)" => FileSystem::JournaledHfsPlus,
            "JHFSX" | "HFSX+J" | "CASE-SENSITIVE JOURNALED HFS+" => FileSystem::JournaledHfsx,
            "APFS" => FileSystem::Apfs,
            "CASE-SENSITIVE APFS" | "APFSX" => FileSystem::CaseSensitiveApfs,
            _ => {
                return Err(format!(
                    "unknown file system {s} (APFS, Case-sensitive APFS, JHFS+, JHFSX, HFS+, \
                     HFSX, ISO, UDF, FAT, FAT32, ExFAT, NONE)"
                ))
            }
        })
    }
}

/// What to create.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    pub file_system: FileSystem,
    pub volume_name: String,
    /// The disk's size for a blank image, or the volume's for a folder (else sized to fit).
    pub size: Option<u64>,
    /// The partition map; by default GPT for FAT and blank disks, none for ISO.
    pub layout: Option<Layout>,
    /// Output format, encryption and overwriting, as for convert.
    pub output: ConvertOptions,
    /// A distribution image's Finder layout.
    pub distribution: super::distribution::Distribution,
    /// An APFS volume encrypted by APFS itself (FileVault's way), opened by this passphrase;
    /// apart from `output.encryption`, which encrypts the whole image.
    pub apfs_encryption: Option<Arc<crate::Passphrase>>,
    /// APFS files compressed with decmpfs (`-imagekey apfs-compress=`).
    pub apfs_compression: Option<crate::fs::decmpfs::Compression>,
}

#[derive(Debug, Serialize)]
pub struct CreateReport {
    #[serde(flatten)]
    pub written: ConvertReport,
    pub file_system: FileSystem,
    /// Files and folders put in the volume.
    pub entries: u64,
}

/// A disk built here, handed to the convert pipeline as if it had been opened.
struct Built(Arc<dyn ReadAt>);

impl Container for Built {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.0.clone()
    }
    fn facts(&self) -> Vec<Fact> {
        Vec::new()
    }
}

/// Creates `output`: a blank disk (`folder` = None) or the contents of `folder`.
pub fn create(
    folder: Option<&Path>,
    output: &Path,
    options: &CreateOptions,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<CreateReport> {
    let refuse = |reason: String| Error::Refused {
        path: output.into(),
        reason,
    };
    // Before the volume is built, not after.
    super::output::refuse_existing(output, options.output.overwrite)?;
    let apfs = matches!(
        options.file_system,
        FileSystem::Apfs | FileSystem::CaseSensitiveApfs
    );
    if options.apfs_compression.is_some() && !apfs {
        return Err(refuse(
            "apfs-compress compresses the files of an APFS volume (-fs APFS)".into(),
        ));
    }
    if options.apfs_encryption.is_some() && !apfs {
        return Err(refuse(
            "only an APFS volume is encrypted by its file system (-apfs-encrypt); -encryption \
             encrypts any image"
                .into(),
        ));
    }
    let hfs_plus = matches!(
        options.file_system,
        FileSystem::HfsPlus
            | FileSystem::Hfsx
            | FileSystem::JournaledHfsPlus
            | FileSystem::JournaledHfsx
    );
    let forks = hfs_plus || apfs || options.file_system == FileSystem::Hybrid;
    let mut tree = folder.map(|f| Tree::scan(f, forks)).transpose()?;
    let label = folder.unwrap_or(output);
    let mut notes: Vec<String> = tree
        .iter()
        .flat_map(|t| {
            t.skipped
                .iter()
                .map(|p| format!("{p}: a device, socket or FIFO, left out"))
        })
        .collect();
    let now = options.distribution.epoch.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    if let (Some(epoch), Some(tree)) = (options.distribution.epoch, tree.as_mut()) {
        super::distribution::settle(tree, epoch);
    }
    let _laid_out = super::distribution::lay_out(
        &options.distribution,
        tree.as_mut(),
        hfs_plus,
        &options.volume_name,
        output,
    )?;
    let agreement = super::distribution::agreement(
        &options.distribution,
        options.output.format.udif().is_some(),
        output,
    )?;
    let seed = options
        .distribution
        .epoch
        .map(|_| super::distribution::seed(tree.as_ref(), &options.volume_name, &agreement));
    let map = options.layout.unwrap_or(match options.file_system {
        FileSystem::Iso | FileSystem::Hybrid | FileSystem::Udf | FileSystem::Udf201 => Layout::None,
        _ => Layout::Gpt,
    });
    let (volume, kind): (Arc<dyn ReadAt>, VolumeType) = match options.file_system {
        FileSystem::HfsPlus
        | FileSystem::Hfsx
        | FileSystem::JournaledHfsPlus
        | FileSystem::JournaledHfsx => {
            use FileSystem::{Hfsx, JournaledHfsPlus, JournaledHfsx};
            let fs = options.file_system;
            let built = hfsplus::build(
                tree.as_ref(),
                &hfsplus::Options {
                    volume_name: options.volume_name.clone(),
                    block: hfsplus::BLOCK,
                    case_sensitive: matches!(fs, Hfsx | JournaledHfsx),
                    journaled: matches!(fs, JournaledHfsPlus | JournaledHfsx),
                    // -size is the whole disk's, as hdiutil's; the map takes its share.
                    size: options.size.map(|s| s.saturating_sub(map.overhead())),
                    tight: false,
                    seed,
                },
                now,
            )?;
            (built.volume, VolumeType::HfsPlus)
        }
        FileSystem::Iso | FileSystem::Hybrid => {
            let tree = tree.as_ref().ok_or_else(|| {
                refuse("an ISO 9660 volume is made from a folder (-srcfolder)".into())
            })?;
            if options.layout.is_some_and(|l| l != Layout::None) {
                return Err(refuse("an ISO 9660 volume takes no partition map".into()));
            }
            let hybrid = options.file_system == FileSystem::Hybrid;
            // A hybrid's HFS+ side holds the files in the CD's own 2048-byte sectors; the ISO
            // tree points at the same bytes.
            let shared = match hybrid {
                true => {
                    let hfs = hfsplus::build(
                        Some(tree),
                        &hfsplus::Options {
                            volume_name: options.volume_name.clone(),
                            block: 2048,
                            case_sensitive: false,
                            size: None,
                            tight: true,
                            journaled: false,
                            seed,
                        },
                        now,
                    )?;
                    Some(iso9660::Shared {
                        volume: hfs.volume,
                        data_at: hfs.data_at,
                    })
                }
                false => None,
            };
            let hfs_size = shared.as_ref().map(|s| s.volume.size());
            let built = iso9660::build(
                tree,
                &iso9660::Options {
                    volume_name: options.volume_name.clone(),
                    shared,
                },
                now,
            )?;
            fits(folder, options.size, built.disk.size())?;
            notes.extend(built.notes);
            let disk = match (built.shared_at, hfs_size) {
                (Some(at), Some(hfs_size)) => {
                    let size = built.disk.size();
                    let apm = partition::apple_partition_map(
                        size,
                        at,
                        hfs_size,
                        &options.volume_name,
                        "Apple_HFS",
                    );
                    let rest = Slice::new(built.disk, apm.len() as u64, size - apm.len() as u64);
                    Arc::new(Concat::new(vec![Arc::new(apm), Arc::new(rest)])) as Arc<dyn ReadAt>
                }
                _ => built.disk,
            };
            // The type is for a partition map, which an ISO never has.
            (disk, VolumeType::Blank)
        }
        FileSystem::Fat | FileSystem::Fat32 => {
            let fat32 = options.file_system == FileSystem::Fat32;
            if let (Some(tree), Some(size)) = (&tree, options.size) {
                let need = fat::size_for(tree, fat32);
                if size < tree.file_bytes() {
                    return Err(too_small(folder, size, need));
                }
            }
            let dir = super::output::folder_of(output);
            // Nameless where the system can (O_TMPFILE): gone with the process, however it ends.
            let mut file = tempfile::tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
            // -size is the whole disk's, as hdiutil's; the map takes its share.
            let size = options.size.map(|s| s.saturating_sub(map.overhead()));
            notes.extend(fat::write(
                &mut file,
                tree.as_ref(),
                &fat::Options {
                    volume_name: options.volume_name.clone(),
                    fat32,
                    size,
                },
            )?);
            let volume = FileSource::from_file(file).map_err(|e| Error::io(dir, e))?;
            (Arc::new(volume), VolumeType::Fat)
        }
        FileSystem::Apfs | FileSystem::CaseSensitiveApfs => {
            let volume = apfs::build(
                tree.as_ref().unwrap_or(&Tree::empty(now)),
                &apfs::Options {
                    volume_name: options.volume_name.clone(),
                    case_sensitive: options.file_system == FileSystem::CaseSensitiveApfs,
                    // -size is the whole disk's, as hdiutil's; the map takes its share.
                    size: options.size.map(|s| s.saturating_sub(map.overhead())),
                    encryption: options.apfs_encryption.clone(),
                    compression: options.apfs_compression,
                },
                now,
            )?;
            (volume, VolumeType::Apfs)
        }
        FileSystem::Udf | FileSystem::Udf201 => {
            let tree = tree
                .as_ref()
                .ok_or_else(|| refuse("a UDF volume is made from a folder (-srcfolder)".into()))?;
            if options.layout.is_some_and(|l| l != Layout::None) {
                return Err(refuse("a UDF volume takes no partition map".into()));
            }
            let built = udf::build(
                tree,
                &udf::Options {
                    volume_name: options.volume_name.clone(),
                    revision: match options.file_system {
                        FileSystem::Udf201 => udf::Revision::Udf201,
                        _ => udf::Revision::Udf102,
                    },
                },
                now,
            )?;
            fits(folder, options.size, built.disk.size())?;
            notes.extend(built.notes);
            // The type is for a partition map, which a UDF disc never has.
            (built.disk, VolumeType::Blank)
        }
        FileSystem::ExFat => {
            // -size is the whole disk's, as hdiutil's; the map takes its share.
            let size = options.size.map(|s| s.saturating_sub(map.overhead()));
            let built = exfat::build(
                tree.as_ref(),
                &exfat::Options {
                    volume_name: options.volume_name.clone(),
                    size,
                },
                now,
            )?;
            notes.extend(built.notes);
            (built.volume, VolumeType::ExFat)
        }
        FileSystem::None => {
            if folder.is_some() {
                return Err(refuse(
                    "a folder needs a file system to go into (-fs)".into(),
                ));
            }
            let size = options
                .size
                .ok_or_else(|| refuse("a blank image needs a size (-size)".into()))?;
            let volume = size.saturating_sub(map.overhead()).next_multiple_of(512);
            (Arc::new(Zeros(volume)), VolumeType::Blank)
        }
    };
    let disk = partition::wrap(volume, map, kind, &options.volume_name, seed.as_ref());
    let mut written_as = options.output.clone();
    written_as.agreement = agreement;
    written_as.seed = seed;
    let mut written = convert::write(label, &Built(disk), output, &written_as, progress, cancel)?;
    written.notes.extend(notes);
    Ok(CreateReport {
        written,
        file_system: options.file_system,
        entries: tree.map_or(0, |t| t.nodes.len() as u64 - 1),
    })
}

/// Refuses a disc of `need` bytes where `size` was asked for and is less.
fn fits(folder: Option<&Path>, size: Option<u64>, need: u64) -> Result<()> {
    match size {
        Some(size) if size < need => Err(too_small(folder, size, need)),
        _ => Ok(()),
    }
}

fn too_small(folder: Option<&Path>, size: u64, need: u64) -> Error {
    Error::Refused {
        path: folder.map_or_else(PathBuf::new, Path::to_path_buf),
        reason: format!("does not fit in {size} bytes: it needs about {need}"),
    }
}

impl OutputFormat {
    /// hdiutil's defaults: a compressed image from a folder, a read/write one when blank.
    pub fn default_for(from_folder: bool) -> OutputFormat {
        if from_folder {
            OutputFormat::Udzo
        } else {
            OutputFormat::Udrw
        }
    }
}
