//! Erase a disk or a volume (Disk Utility's Erase, diskutil eraseDisk / eraseVolume): a new,
//! empty volume of the file system asked for, named, on a whole disk in a new partition map or
//! in place of a partition's. ExFAT, MS-DOS (FAT), ext4 and NTFS are made by udisks2 (Format,
//! CreatePartitionAndFormat: the tools GNOME Disks runs); Mac OS Extended and APFS by dimg's
//! own writers, onto the device opened as for a restore. The running system's disk and mounted
//! volumes are refused before anything changes.

use super::job::{Cancel, Progress};
use crate::device::{self, Changer, Device, Options};
use crate::fs::tree::Tree;
use crate::fs::{apfs, hfsplus, Volume};
use crate::io::ReadAt;
use crate::partition::{self, Layout, VolumeType};
use crate::{Error, Result};
use serde::Serialize;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use zbus::zvariant::Value;

const MIB: u64 = 1 << 20;

/// A file system to erase to, by Disk Utility's and diskutil's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum VolumeFormat {
    ExFat,
    /// MS-DOS (FAT): FAT12, 16 or 32 as mkfs.fat chooses for the size.
    Fat,
    Ext4,
    Ntfs,
    /// Mac OS Extended, journaled or not, case-sensitive or not (HFS+, HFSX).
    MacOsExtended {
        journaled: bool,
        case_sensitive: bool,
    },
    /// APFS: a container of one volume, names compared without case or with it.
    Apfs {
        case_sensitive: bool,
    },
}

impl FromStr for VolumeFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mac = |journaled, case_sensitive| VolumeFormat::MacOsExtended {
            journaled,
            case_sensitive,
        };
        Ok(match s.to_ascii_uppercase().as_str() {
            "EXFAT" => VolumeFormat::ExFat,
            "MS-DOS" | "MSDOS" | "MS-DOS (FAT)" | "FAT" | "FAT32" | "MS-DOS FAT32" | "VFAT" => {
                VolumeFormat::Fat
            }
            "EXT4" => VolumeFormat::Ext4,
            "NTFS" => VolumeFormat::Ntfs,
            "JHFS+" | "HFS+J" | "MAC OS EXTENDED (JOURNALED)" => mac(true, false),
            "HFS+" | "MAC OS EXTENDED" => mac(false, false),
            "JHFSX" | "HFSX+J" | "MAC OS EXTENDED (CASE-SENSITIVE, JOURNALED)" => mac(true, true),
            "HFSX" | "MAC OS EXTENDED (CASE-SENSITIVE)" => mac(false, true),
            "APFS" => VolumeFormat::Apfs {
                case_sensitive: false,
            },
            "APFSX" | "CASE-SENSITIVE APFS" | "APFS (CASE-SENSITIVE)" => VolumeFormat::Apfs {
                case_sensitive: true,
            },
            _ => {
                return Err(format!(
                    "unknown file system {s} (ExFAT, MS-DOS, ext4, NTFS, JHFS+, HFS+, JHFSX, \
                     HFSX, APFS, APFSX)"
                ))
            }
        })
    }
}

impl VolumeFormat {
    /// Disk Utility's name for it.
    pub fn name(self) -> &'static str {
        match self {
            VolumeFormat::ExFat => "ExFAT",
            VolumeFormat::Fat => "MS-DOS (FAT)",
            VolumeFormat::Ext4 => "ext4",
            VolumeFormat::Ntfs => "NTFS",
            VolumeFormat::MacOsExtended {
                journaled: true,
                case_sensitive: false,
            } => "Mac OS Extended (Journaled)",
            VolumeFormat::MacOsExtended {
                journaled: false,
                case_sensitive: false,
            } => "Mac OS Extended",
            VolumeFormat::MacOsExtended {
                journaled: true,
                case_sensitive: true,
            } => "Mac OS Extended (Case-sensitive, Journaled)",
            VolumeFormat::MacOsExtended {
                journaled: false,
                case_sensitive: true,
            } => "Mac OS Extended (Case-sensitive)",
            VolumeFormat::Apfs {
                case_sensitive: false,
            } => "APFS",
            VolumeFormat::Apfs {
                case_sensitive: true,
            } => "APFS (Case-sensitive)",
        }
    }

    /// udisks2's name for the file systems it makes (its mkfs tool's); none for those dimg
    /// writes itself.
    pub(crate) fn udisks(self) -> Option<&'static str> {
        match self {
            VolumeFormat::ExFat => Some("exfat"),
            VolumeFormat::Fat => Some("vfat"),
            VolumeFormat::Ext4 => Some("ext4"),
            VolumeFormat::Ntfs => Some("ntfs"),
            VolumeFormat::MacOsExtended { .. } | VolumeFormat::Apfs { .. } => None,
        }
    }

    /// The smallest volume its tool makes (mkfs.exfat refuses 2 MiB, mkntfs 1 MiB), in bytes.
    pub(crate) fn smallest(self) -> u64 {
        match self {
            VolumeFormat::ExFat => 3 * MIB,
            VolumeFormat::Ntfs => 2 * MIB,
            _ => MIB,
        }
    }

    /// The partition type that says what it holds, in a table of `table` (udisks2's `gpt`,
    /// `dos`).
    pub(crate) fn partition_type(self, table: &str) -> &'static str {
        let gpt = table == "gpt";
        match self {
            VolumeFormat::ExFat | VolumeFormat::Ntfs if !gpt => "0x07",
            VolumeFormat::Fat if !gpt => "0x0c",
            VolumeFormat::Ext4 if !gpt => "0x83",
            VolumeFormat::MacOsExtended { .. } | VolumeFormat::Apfs { .. } if !gpt => "0xaf",
            VolumeFormat::Ext4 => "0fc63daf-8483-4772-8e79-3d69d8477de4",
            VolumeFormat::MacOsExtended { .. } => "48465300-0000-11aa-aa11-00306543ecac",
            VolumeFormat::Apfs { .. } => "7c3457ef-0000-11aa-aa11-00306543ecac",
            _ => "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7",
        }
    }

    /// The name as the file system keeps it: FAT's in capitals, as Disk Utility writes it.
    fn label(self, name: &str) -> String {
        match self {
            VolumeFormat::Fat => name.to_uppercase(),
            _ => name.to_string(),
        }
    }
}

/// The partition map a whole disk is erased with, by diskutil's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Scheme {
    /// GUID partition table (Disk Utility's default).
    Gpt,
    /// Master boot record.
    Mbr,
    /// Apple partition map (Mac OS Extended and APFS only: dimg writes it with the volume).
    Apm,
    /// No map: the volume spans the disk.
    None,
}

impl FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "GPT" | "GPTFORMAT" | "GUID" => Scheme::Gpt,
            "MBR" | "MBRFORMAT" | "DOS" => Scheme::Mbr,
            "APM" | "APMFORMAT" => Scheme::Apm,
            "NONE" => Scheme::None,
            _ => {
                return Err(format!(
                    "unknown partition scheme {s} (GPT, MBR, APM, NONE)"
                ))
            }
        })
    }
}

impl Scheme {
    /// udisks2's name for the table (`gpt`, `dos`).
    fn udisks(self) -> Option<&'static str> {
        match self {
            Scheme::Gpt => Some("gpt"),
            Scheme::Mbr => Some("dos"),
            Scheme::Apm | Scheme::None => None,
        }
    }

    /// The bytes of a disk of `size` a single volume in this map can have, at most.
    fn room(self, size: u64) -> u64 {
        match self {
            // From the first MiB, as udisks2 aligns it, to the backup table at the end.
            Scheme::Gpt => size.saturating_sub(MIB + 33 * 512) / MIB * MIB,
            Scheme::Mbr => size.saturating_sub(MIB) / MIB * MIB,
            Scheme::Apm => size.saturating_sub(Layout::Apm.overhead()),
            Scheme::None => size,
        }
    }
}

/// What to erase to.
#[derive(Clone, Debug)]
pub struct EraseOptions {
    pub format: VolumeFormat,
    /// The new volume's name.
    pub name: String,
    /// For a whole disk: its new partition map (GPT when none is given). A partition keeps its
    /// disk's.
    pub scheme: Option<Scheme>,
}

#[derive(Debug, Serialize)]
pub struct EraseReport {
    /// The disk or partition erased.
    pub device: PathBuf,
    /// The device of the new volume: the new partition, or the device itself.
    pub volume: PathBuf,
    pub file_system: &'static str,
    pub name: String,
    /// The new partition map of an erased disk.
    pub scheme: Option<Scheme>,
    /// The new volume's size in bytes.
    pub size: u64,
}

fn refused(path: &Path, reason: String) -> Error {
    Error::Refused {
        path: path.to_path_buf(),
        reason,
    }
}

/// Why `about` must not be changed at all, if it must not: it holds the running system, is on
/// its disk, is mounted, or cannot be written.
pub(crate) fn refusal(about: &Device) -> Result<Option<String>> {
    if let Some(reason) = device::in_use(about)? {
        return Ok(Some(reason));
    }
    Ok(about
        .read_only
        .then(|| "it is read-only: nothing can be written to it".into()))
}

/// Erases the disk or partition at `path` to an empty volume as `options` say. Everything is
/// checked first (what the device is, that it may be changed, that the volume fits); then a
/// whole disk gets its new map and one partition spanning it, or a partition its new volume.
pub fn erase(
    path: &Path,
    options: &EraseOptions,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<EraseReport> {
    let about = device::describe(path)?;
    let format = options.format;
    if let Some(reason) = refusal(&about)? {
        return Err(refused(path, reason));
    }
    let whole = about.kind != "part";
    let scheme =
        match (whole, options.scheme) {
            (true, scheme) => Some(scheme.unwrap_or(Scheme::Gpt)),
            (false, None) => None,
            (false, Some(_)) => return Err(refused(
                path,
                "it is a partition, which takes no partition scheme: erase its disk to choose one"
                    .into(),
            )),
        };
    let mac = format.udisks().is_none();
    if scheme == Some(Scheme::Apm) && !mac {
        return Err(refused(
            path,
            format!(
                "dimg writes an Apple partition map only around a Mac OS Extended or APFS \
                 volume, not {}: choose GPT or MBR",
                format.name()
            ),
        ));
    }
    let room = scheme.map_or(about.size, |s| s.room(about.size));
    if room < format.smallest() {
        return Err(refused(
            path,
            format!(
                "it is {} bytes, too small for {} volume ({} bytes at least{})",
                about.size,
                match format {
                    VolumeFormat::ExFat => "an ExFAT",
                    _ => "a",
                },
                format.smallest(),
                match scheme {
                    Some(Scheme::None) | None => String::new(),
                    Some(_) => " and its partition map".into(),
                }
            ),
        ));
    }
    let label = format.label(&options.name);
    // A Mac volume is built before anything changes, to learn that it fits.
    if mac {
        mac_volume(path, format, &label, room)?;
    }
    cancel.check()?;
    let udisks = device::changer(path)?;
    let mkfs = |target: &Path| {
        let options = fs_options(format, &label);
        device::asked(
            target,
            &format!("make {} volume on it", format.name()),
            udisks.format(target, format.udisks().expect("udisks2 makes it"), options),
        )
    };
    if whole {
        clear(path, &udisks)?;
    }
    let volume = match scheme {
        // A partition, or a disk with no map: the volume in place.
        None | Some(Scheme::None) => {
            // A partition says what it will hold, and on GPT is named as its new volume, as
            // Disk Utility names it: the table is changed first, while the volume is as it was
            // and the disk is read as it is.
            if !whole {
                let table = device::asked(path, "read its partition table", udisks.table_of(path))?;
                if table == "gpt" {
                    device::asked(
                        path,
                        "name the partition",
                        udisks.set_partition_name(path, &label),
                    )?;
                }
                // udev probes the disk when the name is written, and a probe that reads the
                // table mid-write leaves udisks2 naming it `PMBR` or keeping the old type when
                // Format was to update it (both seen on a loaded machine): the disk is read
                // again, whole, and the type set here rather than left to Format.
                let disk = device::disk_of(&about)?;
                device::asked(path, "read the disk again", udisks.rescan(&disk.path))?;
                device::asked(
                    path,
                    "set its partition type",
                    udisks.set_partition_type(path, format.partition_type(&table)),
                )?;
            }
            match format.udisks() {
                Some(_) => mkfs(path)?,
                None => {
                    device::asked(path, "wipe it", udisks.format(path, "empty", wipe()))?;
                    let built = mac_volume(path, format, &label, about.size)?;
                    write_used(path, &*built.disk, &built.used, progress, cancel)?;
                }
            }
            path.to_path_buf()
        }
        Some(Scheme::Apm) => {
            device::asked(path, "wipe it", udisks.format(path, "empty", wipe()))?;
            let built = mac_volume(path, format, &label, room)?;
            let disk = partition::wrap(built.disk, Layout::Apm, built.kind, &label, None);
            let map = Layout::Apm.overhead();
            let used: Vec<(u64, u64)> = std::iter::once((0, map))
                .chain(built.used.iter().map(|&(at, len)| (map + at, len)))
                .collect();
            write_used(path, &*disk, &used, progress, cancel)?;
            device::asked(path, "read its new partition map", udisks.rescan(path))?;
            path.to_path_buf()
        }
        Some(scheme) => {
            let table = scheme.udisks().expect("GPT or MBR");
            device::asked(
                path,
                "write a new partition table",
                udisks.format(path, table, wipe()),
            )?;
            let name = match scheme {
                Scheme::Gpt => label.as_str(),
                _ => "",
            };
            let kind = format.partition_type(table);
            let span = (MIB, 0);
            match format.udisks() {
                Some(fs) => device::asked(
                    path,
                    &format!("make a partition with {} volume", format.name()),
                    udisks.create_partition(
                        path,
                        span,
                        kind,
                        name,
                        Some((fs, fs_options(format, &label))),
                    ),
                )?,
                None => {
                    let part = device::asked(
                        path,
                        "make a partition",
                        udisks.create_partition(path, span, kind, name, None),
                    )?;
                    let size = device::describe(&part)?.size;
                    let built = mac_volume(&part, format, &label, size)?;
                    write_used(&part, &*built.disk, &built.used, progress, cancel)?;
                    part
                }
            }
        }
    };
    let size = device::describe(&volume).map_or(0, |d| d.size);
    Ok(EraseReport {
        device: path.to_path_buf(),
        volume,
        file_system: format.name(),
        name: label,
        scheme,
        size,
    })
}

/// Deletes the partitions of the disk at `path`, last first, before its map is replaced: each
/// goes from the kernel as it is deleted, where a disk whose new map the kernel does not read
/// again itself (a loop device without partition scanning) would keep them, and udisks2 would
/// wait for them in vain.
fn clear(path: &Path, udisks: &Changer) -> Result<()> {
    let table = device::asked(path, "read its partition table", udisks.table(path))?;
    for slot in table.into_iter().flat_map(|(_, slots)| slots).rev() {
        device::asked(
            &slot.path,
            "delete the partition",
            udisks.delete_partition(&slot.path),
        )?;
    }
    Ok(())
}

/// udisks2's Format options for a new volume named `label` (a partition's type is set apart:
/// see [`erase`]). An ext4 volume's root is the user's, as GNOME Disks makes it.
fn fs_options(format: VolumeFormat, label: &str) -> Options<'static> {
    let mut options = Options::from([("label", Value::from(label.to_string()))]);
    if format == VolumeFormat::Ext4 {
        options.insert("take-ownership", Value::from(true));
    }
    options
}

/// Format options for a table or a wipe: none.
fn wipe() -> Options<'static> {
    Options::new()
}

/// A Mac OS Extended or APFS volume built for a device, and the byte ranges of it that must be
/// written: all but the blocks its allocation map leaves free, whose old bytes do not matter.
struct MacOnDevice {
    disk: Arc<dyn ReadAt>,
    kind: VolumeType,
    used: Vec<(u64, u64)>,
}

/// Builds an empty Mac OS Extended or APFS volume of `size` bytes named `label` for `path`.
fn mac_volume(path: &Path, format: VolumeFormat, label: &str, size: u64) -> Result<MacOnDevice> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let built = match format {
        VolumeFormat::MacOsExtended {
            journaled,
            case_sensitive,
        } => hfsplus::build(
            None,
            &hfsplus::Options {
                volume_name: label.to_string(),
                block: hfsplus::BLOCK,
                case_sensitive,
                journaled,
                size: Some(size),
                tight: false,
                seed: None,
            },
            now,
        )
        .map(|built| (built.volume, VolumeType::HfsPlus)),
        VolumeFormat::Apfs { case_sensitive } => apfs::build(
            &Tree::empty(now),
            &apfs::Options {
                volume_name: label.to_string(),
                case_sensitive,
                size: Some(size),
                encryption: None,
                compression: None,
            },
            now,
        )
        .map(|volume| (volume, VolumeType::Apfs)),
        _ => unreachable!("only Mac OS Extended and APFS are built here"),
    };
    let (volume, kind) = built.map_err(|e| match e {
        Error::Refused { reason, .. } => refused(
            path,
            format!("too small for {}: the volume {reason}", format.name()),
        ),
        other => other,
    })?;
    let free = match kind {
        VolumeType::Apfs => apfs::open(volume.clone()).and_then(|volumes| match volumes.first() {
            Some(v) => v.free_extents(),
            None => Ok(Vec::new()),
        }),
        _ => hfsplus::HfsPlus::open(volume.clone()).and_then(|v| v.free_extents()),
    }
    .map_err(|e| Error::io(path, e))?;
    let mut used = Vec::new();
    let mut at = 0;
    for (start, len) in free.into_iter().chain([(volume.size(), 0)]) {
        if start > at {
            used.push((at, start - at));
        }
        at = at.max(start + len);
    }
    Ok(MacOnDevice {
        disk: volume,
        kind,
        used,
    })
}

/// Writes the `ranges` of `disk` onto the device at `path`, opened exclusively (through
/// udisks2's OpenForRestore where the user may not open it), then flushes it. A cancel stops
/// between blocks and says how much was written.
fn write_used(
    path: &Path,
    disk: &dyn ReadAt,
    ranges: &[(u64, u64)],
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<()> {
    const BLOCK: u64 = 4 << 20;
    let total: u64 = ranges.iter().map(|r| r.1).sum();
    let target = device::open(path, device::Access::Write)?;
    progress.begin("Erasing", total);
    let mut buf = vec![0u8; BLOCK as usize];
    let mut written = 0u64;
    for &(start, len) in ranges {
        let mut at = start;
        while at < start + len {
            if cancel.is_cancelled() {
                return Err(Error::CancelledPartway {
                    path: path.to_path_buf(),
                    written,
                });
            }
            let n = (start + len - at).min(BLOCK) as usize;
            disk.read_exact_at(at, &mut buf[..n])
                .map_err(|e| Error::io(path, e))?;
            target
                .write_all_at(&buf[..n], at)
                .map_err(|e| Error::io(path, e))?;
            at += n as u64;
            written += n as u64;
            progress.advance(written);
        }
    }
    target.sync_all().map_err(|e| Error::io(path, e))
}
