//! The machine's disks: whole disks, their partitions, and where each is mounted, as udisks2
//! (the desktop's disk service) knows them, or as `lsblk` reads them from sysfs where no udisks2
//! answers. Restore and image-from-device use this to name a device, to find the device behind
//! a mount point, to refuse a disk that is in use, and to open a device the user may not open
//! directly.

mod lsblk;
mod udisks;

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A disk or a partition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Device {
    /// `/dev/sda`, `/dev/loop0p1`.
    pub path: PathBuf,
    /// "disk", "part", "loop", "rom"…: what the kernel calls it.
    pub kind: String,
    pub size: u64,
    pub model: Option<String>,
    pub removable: bool,
    pub read_only: bool,
    pub file_system: Option<String>,
    pub label: Option<String>,
    pub mount_points: Vec<PathBuf>,
    /// The kernel's major:minor number, which files on it carry as their `st_dev`.
    pub number: String,
    pub partitions: Vec<Device>,
}

impl Device {
    /// It and its partitions, depth first.
    pub fn all(&self) -> Vec<&Device> {
        std::iter::once(self)
            .chain(self.partitions.iter().flat_map(Device::all))
            .collect()
    }

    /// Where it or any of its partitions is mounted.
    pub fn mounted_at(&self) -> Vec<&Path> {
        self.all()
            .into_iter()
            .flat_map(|d| d.mount_points.iter().map(PathBuf::as_path))
            .collect()
    }
}

/// Every disk of the machine with its partitions (loop devices with nothing attached left out),
/// from udisks2 when it runs and knows the disks (it learns them from udev: without udev, as in
/// a container, it knows none), else from lsblk.
pub fn list() -> Result<Vec<Device>> {
    let listed = match udisks_disks() {
        Some(disks) => disks,
        None => lsblk::lsblk()?,
    };
    Ok(listed.into_iter().filter(|d| d.size > 0).collect())
}

/// What udisks2 lists, if it runs and knows a disk.
fn udisks_disks() -> Option<Vec<Device>> {
    udisks::list().filter(|disks| disks.iter().any(|d| d.size > 0))
}

/// Each change to the disks as it happens (plugged, ejected, a loop device attached, a volume
/// mounted), from udisks2's signals; none where udisks2 does not run or knows no disks, as
/// [`list`] then reads lsblk, which tells of no change: poll it there.
pub fn changes() -> Option<impl Iterator<Item = ()>> {
    udisks_disks()?;
    udisks::changes()
}

/// The device at `path` (a block device), with its partitions.
pub fn describe(path: &Path) -> Result<Device> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    // By its number, which names it whatever path it is given by (/dev/mapper/x, /dev/dm-0).
    let number = meta
        .file_type()
        .is_block_device()
        .then(|| number(meta.rdev()));
    list()?
        .iter()
        .flat_map(Device::all)
        .find(|d| Some(&d.number) == number.as_ref())
        .cloned()
        .ok_or_else(|| Error::Refused {
            path: path.to_path_buf(),
            reason: "not a disk or partition".into(),
        })
}

/// A device number as the kernel writes it, major:minor.
fn number(dev: libc::dev_t) -> String {
    format!("{}:{}", libc::major(dev), libc::minor(dev))
}

/// What a device is opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    /// Reads that bypass the page cache (O_DIRECT): each one a request to the device.
    ReadDirect,
    /// Writing the whole device, held exclusively (O_EXCL: the kernel refuses while a file
    /// system or another program holds it).
    Write,
}

/// Opens the device at `path`: directly when the user may, else through udisks2, which asks
/// polkit (OpenForBackup to read, OpenForRestore to write), as GNOME Disks does.
pub fn open(path: &Path, access: Access) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    match access {
        Access::Read => options.read(true),
        Access::ReadDirect => options.read(true).custom_flags(libc::O_DIRECT),
        Access::Write => options.write(true).custom_flags(libc::O_EXCL),
    };
    match options.open(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => match udisks::open(path, access) {
            Some(opened) => opened.map_err(|e| Error::io(path, e)),
            None => Err(Error::io(path, e)),
        },
        opened => opened.map_err(|e| Error::io(path, e)),
    }
}

/// A device's file system by dimg's name for it: as udev's blkid named it (`vfat`, `hfsplus`),
/// or where nothing named it (no udev database, or a file system blkid does not know, such as
/// MFS) by dimg's own magic numbers — unless partitions say the device holds a map, not a file
/// system.
fn file_system(named: Option<String>, path: &Path, partitioned: bool) -> Option<String> {
    let ours = |blkid: &str| match blkid {
        "vfat" | "msdos" => Some("FAT"),
        "hfsplus" => Some("HFS+"),
        "hfs" => Some("HFS"),
        "iso9660" => Some("ISO 9660"),
        "udf" => Some("UDF"),
        "apfs" => Some("APFS"),
        "exfat" => Some("exFAT"),
        "ntfs" => Some("NTFS"),
        _ => None,
    };
    match named {
        Some(name) => Some(ours(&name).map(str::to_string).unwrap_or(name)),
        None if partitioned => None,
        None => sniffed_file_system(path),
    }
}

/// The file system dimg recognises at the start of a device it may read, by name.
fn sniffed_file_system(path: &Path) -> Option<String> {
    let source = crate::io::FileSource::open(path).ok()?;
    let sniff = crate::magic::Sniff::read(&source).ok()?;
    crate::magic::identify(&sniff)
        .into_iter()
        .find(|s| s.layer() == crate::magic::Layer::FileSystem)
        .map(|s| s.name().to_string())
}

/// The block device `spec` names: itself, or the device mounted at it when it is a mount point.
pub fn resolve(spec: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(spec).map_err(|e| Error::io(spec, e))?;
    if meta.file_type().is_block_device() {
        return Ok(spec.to_path_buf());
    }
    let wanted = spec.canonicalize().map_err(|e| Error::io(spec, e))?;
    list()?
        .iter()
        .flat_map(Device::all)
        .find(|d| d.mount_points.contains(&wanted))
        .map(|d| d.path.clone())
        .ok_or_else(|| Error::Refused {
            path: spec.to_path_buf(),
            reason: "neither a disk nor the mount point of one".into(),
        })
}

/// The device (disk or partition) `file` is stored on, by the number its `st_dev` carries.
pub fn holding(file: &Path, among: &Device) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let number = number(std::fs::metadata(file).ok()?.dev());
    among
        .all()
        .into_iter()
        .find(|d| d.number == number)
        .map(|d| d.path.clone())
}
