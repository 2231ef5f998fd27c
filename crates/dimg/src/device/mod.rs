//! The machine's disks: whole disks, their partitions, and where each is mounted. Which devices
//! there are is the kernel's word (sysfs, as `lsblk` reads it), true the moment `losetup`
//! returns; each is described as udisks2 (the desktop's disk service) knows it where it has
//! caught up, else as `lsblk` does. Restore and image-from-device use this to name a device, to
//! find the device behind a mount point, to refuse a disk that is in use, and to open a device
//! the user may not open directly. On macOS `diskutil` does both: it lists and describes the
//! disks, and mounts and unmounts their volumes.

#[cfg(any(target_os = "macos", test))]
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
mod diskutil;
#[cfg(target_os = "linux")]
mod lsblk;
// Everywhere, for erase and partition's types; on macOS they refuse before using it.
#[cfg_attr(target_os = "macos", allow(dead_code))]
mod udisks;

pub(crate) use udisks::{Changer, Options, Slot};

use crate::io::{Aligned, FileSource, ReadAt};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The service that mounts, unmounts and changes the disks, as its refusals name it.
#[cfg(target_os = "linux")]
const SERVICE: &str = "udisks2";
#[cfg(target_os = "macos")]
const SERVICE: &str = "diskutil";

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

/// Every disk the kernel has, with its partitions (loop devices with nothing attached and empty
/// drives left out). udisks2 learns of a device from udev, a moment after the kernel has it (a
/// loop device just attached), and never of one udev could not probe (a disk udev may not
/// open): those are described from sysfs by lsblk, as is everything where udisks2 does not run.
/// On macOS, every disk `diskutil` lists, as it describes it.
pub fn list() -> Result<Vec<Device>> {
    #[cfg(target_os = "linux")]
    let (disks, known) = (lsblk::lsblk()?, udisks::devices().unwrap_or_default());
    #[cfg(target_os = "macos")]
    let (disks, known) = (diskutil::disks()?, HashMap::new());
    Ok(disks
        .into_iter()
        .map(|disk| described(disk, &known))
        .collect())
}

/// What `program` printed when run with `args`; a refusal naming it and what it was asked to
/// do (`what`), in its own words, when it failed.
fn run(program: &str, args: &[&str], what: &str) -> Result<Vec<u8>> {
    let path = Path::new(program);
    output(program, args)
        .map_err(|e| Error::io(path, e))?
        .map_err(|said| Error::Refused {
            path: path.to_path_buf(),
            reason: format!("it cannot {what}: {said}"),
        })
}

/// What `program` printed when run with `args`, or what it said when it failed.
fn output(program: &str, args: &[&str]) -> io::Result<std::result::Result<Vec<u8>, String>> {
    let out = Command::new(program).args(args).output()?;
    if out.status.success() {
        return Ok(Ok(out.stdout));
    }
    // diskutil says why on its output, lsblk on its error output.
    let said = match out.stderr.trim_ascii().is_empty() {
        true => out.stdout,
        false => out.stderr,
    };
    Ok(Err(String::from_utf8_lossy(&said).trim().to_string()))
}

/// `device` and its partitions as the kernel has them, each described by udisks2 where it knows
/// it at the kernel's size (it has caught up), mounted where the kernel says, and its file
/// system named by dimg's own magic numbers where nothing named it (no udev database, or a file
/// system blkid does not know, such as MFS) and it holds no partitions (a map, not a file
/// system).
fn described(mut device: Device, known: &HashMap<String, Device>) -> Device {
    let partitions: Vec<Device> = std::mem::take(&mut device.partitions)
        .into_iter()
        .map(|partition| described(partition, known))
        .collect();
    let mut device = match known.get(&device.number) {
        // Mounted where the kernel says now: udisks2 learns of a mount a moment later too.
        Some(udisks) if udisks.size == device.size => Device {
            mount_points: device.mount_points,
            ..udisks.clone()
        },
        _ => device,
    };
    if device.file_system.is_none() && partitions.is_empty() {
        device.file_system = sniffed_file_system(&device.path);
    }
    Device {
        partitions,
        ..device
    }
}

/// Each change to the disks as it happens (plugged, ejected, a loop device attached, a volume
/// mounted), from udisks2's signals; none where udisks2 does not run or knows no block device
/// at all (it learns them from udev: without udev, as in a container, it knows none and tells
/// of nothing): poll [`list`] there. A udisks2 that knows no disk yet (only empty loop devices,
/// and a disk udev could not probe) still tells of each loop device attached. None on macOS,
/// whose DiskArbitration callbacks need a run loop dimg does not keep: poll there too.
pub fn changes() -> Option<impl Iterator<Item = ()>> {
    #[cfg(target_os = "linux")]
    return udisks::changes();
    #[cfg(target_os = "macos")]
    None::<std::iter::Empty<()>>
}

/// The device at `path` (a block device), with its partitions.
pub fn describe(path: &Path) -> Result<Device> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let refused = |reason: String| Error::Refused {
        path: path.to_path_buf(),
        reason,
    };
    if !meta.file_type().is_block_device() {
        return Err(refused(
            "not a block device: not a disk or partition".into(),
        ));
    }
    // By its number, which names it whatever path it is given by (/dev/mapper/x, /dev/dm-0).
    let number = number(meta.rdev());
    list()?
        .iter()
        .flat_map(Device::all)
        .find(|d| d.number == number)
        .cloned()
        .ok_or_else(|| {
            refused(format!(
                "the kernel has no disk or partition {number} with anything on it"
            ))
        })
}

/// A device number (`st_rdev`, `st_dev`) as the kernel writes it, major:minor. std gives it as
/// a u64; macOS's `dev_t` is 32 bits, which is all its kernel stores.
fn number(dev: u64) -> String {
    let dev = dev as libc::dev_t;
    format!("{}:{}", libc::major(dev), libc::minor(dev))
}

/// What a device is opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reading, shared with whatever else uses it (a mounted file system), through the page
    /// cache.
    Read,
    /// Reading all of it, held exclusively (O_EXCL: the kernel refuses while a file system or
    /// another program holds it, and nothing can mount it meanwhile) and past the page cache
    /// (O_DIRECT, F_NOCACHE on macOS: each read a request to the device).
    Backup,
    /// Writing all of it, held exclusively.
    Write,
}

/// Held exclusively. macOS has no exclusive open of a device: its kernel refuses to open a
/// mounted volume's block device at all (EBUSY), and [`in_use`] refuses a disk in use first.
#[cfg(target_os = "linux")]
const EXCLUSIVE: libc::c_int = libc::O_EXCL;
#[cfg(target_os = "macos")]
const EXCLUSIVE: libc::c_int = 0;

/// Opens the device at `path`: directly when the user may, else on Linux through udisks2,
/// which asks polkit (OpenForBackup, OpenForRestore, OpenDevice), as GNOME Disks does. macOS's
/// counterpart (authopen) is not used: there a device the user may not open is refused.
pub fn open(path: &Path, access: Access) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    match access {
        Access::Read => options.read(true),
        Access::Backup => options.read(true).custom_flags(EXCLUSIVE | UNCACHED),
        Access::Write => options.write(true).custom_flags(EXCLUSIVE),
    };
    let opened = match options.open(path) {
        #[cfg(target_os = "linux")]
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => match udisks::open(path, access) {
            Some(opened) => opened,
            None => Err(e),
        },
        opened => opened,
    };
    // macOS keeps a descriptor past the cache by a flag set once it is open.
    #[cfg(target_os = "macos")]
    let opened =
        opened.and_then(
            |file| match access != Access::Backup || set_direct(&file, true) {
                true => Ok(file),
                false => Err(io::Error::other("it does not take F_NOCACHE")),
            },
        );
    opened.map_err(|e| Error::io(path, e))
}

/// The device at `path` for reading as a disk. Where nothing else holds it, exclusively and past
/// the page cache ([`Access::Backup`]): each read is a request to the device, and reading a whole
/// disk neither fills the cache nor copies every byte twice. A device in use (a mounted file
/// system) is read through the cache, as `dd` reads it: there the file system's newest metadata
/// may not be written yet.
pub fn reader(path: &Path) -> Result<Arc<dyn ReadAt>> {
    let opened = match open(path, Access::Backup) {
        Ok(direct) => Direct::new(direct).map(|d| Arc::new(d) as Arc<dyn ReadAt>),
        Err(_) => FileSource::from_file(open(path, Access::Read)?).map(|f| Arc::new(f) as _),
    };
    opened.map_err(|e| Error::io(path, e))
}

/// Past the page cache from the open: O_DIRECT on Linux. macOS sets F_NOCACHE once it is open.
#[cfg(target_os = "linux")]
const UNCACHED: libc::c_int = libc::O_DIRECT;
#[cfg(target_os = "macos")]
const UNCACHED: libc::c_int = 0;

/// Turns O_DIRECT (F_NOCACHE on macOS) on or off for `file`; whether that was done.
#[cfg(target_os = "linux")]
pub(crate) fn set_direct(file: &File, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on an open descriptor, with the flags it gave.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        let flags = match on {
            true => flags | libc::O_DIRECT,
            false => flags & !libc::O_DIRECT,
        };
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags) == 0
    }
}
#[cfg(target_os = "macos")]
pub(crate) fn set_direct(file: &File, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on an open descriptor, with an int.
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_NOCACHE, libc::c_int::from(on)) == 0 }
}

/// The device's logical sector size, as its driver says: BLKSSZGET on Linux.
#[cfg(target_os = "linux")]
fn logical_sector(file: &File) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let mut sector: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int through the pointer.
    let asked = unsafe { libc::ioctl(file.as_raw_fd(), libc::BLKSSZGET, &mut sector) };
    (asked == 0 && sector > 0).then_some(sector as u64)
}
/// The device's logical sector size, as its driver says: DKIOCGETBLOCKSIZE on macOS.
#[cfg(target_os = "macos")]
fn logical_sector(file: &File) -> Option<u64> {
    use std::os::fd::AsRawFd;
    // <sys/disk.h>: _IOR('d', 24, uint32_t), which the libc crate does not carry.
    const DKIOCGETBLOCKSIZE: libc::c_ulong = 0x4004_6418;
    let mut sector: u32 = 0;
    // SAFETY: DKIOCGETBLOCKSIZE writes one uint32_t through the pointer.
    let asked = unsafe { libc::ioctl(file.as_raw_fd(), DKIOCGETBLOCKSIZE, &mut sector) };
    (asked == 0 && sector > 0).then_some(u64::from(sector))
}

/// O_DIRECT reads, which must be whole logical sectors into aligned memory: each goes through a
/// page-aligned bounce buffer kept by each thread.
struct Direct {
    file: File,
    size: u64,
    /// The device's logical sector size (a page for what does not say).
    sector: u64,
}

impl Direct {
    fn new(file: File) -> io::Result<Direct> {
        let size = FileSource::from_file(file.try_clone()?)?.size();
        let sector = logical_sector(&file).unwrap_or(4096);
        Ok(Direct { file, size, sector })
    }
}

impl ReadAt for Direct {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        thread_local! {
            static BOUNCE: std::cell::RefCell<Option<Aligned>> = const { std::cell::RefCell::new(None) };
        }
        let n = (buf.len() as u64).min(self.size.saturating_sub(offset)) as usize;
        if n == 0 {
            return Ok(0);
        }
        let start = offset / self.sector * self.sector;
        let window = (offset + n as u64).next_multiple_of(self.sector) - start;
        BOUNCE.with_borrow_mut(|bounce| {
            let bounce = match bounce {
                Some(b) if b.capacity() as u64 >= window => b,
                slot => slot.insert(Aligned::new(window as usize)),
            };
            let bytes = &mut bounce.bytes()[..window as usize];
            // A device whose end is not a whole sector reads short there.
            let mut got = 0;
            let skip = (offset - start) as usize;
            while got < skip + n {
                match self.file.read_at(&mut bytes[got..], start + got as u64)? {
                    0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                    read => got += read,
                }
            }
            buf[..n].copy_from_slice(&bytes[skip..skip + n]);
            Ok(n)
        })
    }
    fn size(&self) -> u64 {
        self.size
    }
}

/// dimg's name for a file system as udev's blkid names it (`vfat`, `hfsplus`); blkid's own
/// for one dimg does not know.
fn named_file_system(blkid: Option<String>) -> Option<String> {
    let ours = match blkid.as_deref()? {
        "vfat" | "msdos" => "FAT",
        "hfsplus" => "HFS+",
        "hfs" => "HFS",
        "iso9660" => "ISO 9660",
        "udf" => "UDF",
        "apfs" => "APFS",
        "exfat" => "exFAT",
        "ntfs" => "NTFS",
        _ => return blkid,
    };
    Some(ours.to_string())
}

/// The file system dimg recognises at the start of a device it may read, by name.
fn sniffed_file_system(path: &Path) -> Option<String> {
    let source = FileSource::open(path).ok()?;
    let found = crate::fs::identify(&source).ok()??;
    Some(found.name().to_string())
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

/// The whole disk `target` is on: itself when it is one, else the disk that holds it.
pub fn disk_of(target: &Device) -> Result<Device> {
    Ok(list()?
        .into_iter()
        .find(|disk| disk.all().iter().any(|d| d.number == target.number))
        .unwrap_or_else(|| target.clone()))
}

/// Why `target` must not be overwritten, erased or partitioned now, if it must not: it holds
/// the running system (`/` is on it), it is a partition of the disk that does, or it or one of
/// its partitions is mounted.
pub fn in_use(target: &Device) -> Result<Option<String>> {
    let disk = disk_of(target)?;
    if disk.mounted_at().contains(&Path::new("/")) {
        return Ok(Some(match disk.number == target.number {
            true => "it holds the running system".into(),
            false => format!(
                "it is on the disk that holds the running system ({})",
                disk.path.display()
            ),
        }));
    }
    Ok(target
        .mounted_at()
        .first()
        .map(|point| format!("it is mounted at {}: eject it first", point.display())))
}

/// The disk service's answer as dimg's error: a refusal naming `path` and what udisks2 (or
/// diskutil) was asked.
pub(crate) fn asked<T>(
    path: &Path,
    what: &str,
    answer: std::result::Result<T, String>,
) -> Result<T> {
    answer.map_err(|e| Error::Refused {
        path: path.to_path_buf(),
        reason: format!("{SERVICE} could not {what}: {e}"),
    })
}

/// udisks2 on the system bus, to be asked for a change (started on demand where it does not
/// run yet).
#[cfg(target_os = "linux")]
pub(crate) fn changer(path: &Path) -> Result<Changer> {
    asked(path, "be reached", Changer::new())
}
/// Erasing and partitioning are udisks2's work, which macOS does not have.
#[cfg(target_os = "macos")]
pub(crate) fn changer(path: &Path) -> Result<Changer> {
    Err(Error::Refused {
        path: path.to_path_buf(),
        reason: "dimg erases and partitions through udisks2, not on macOS: use Disk Utility".into(),
    })
}

/// What mounts and unmounts volumes: udisks2 on Linux, diskutil on macOS.
#[cfg(target_os = "linux")]
fn mounter(path: &Path) -> Result<Changer> {
    changer(path)
}
#[cfg(target_os = "macos")]
fn mounter(_: &Path) -> Result<diskutil::Mounter> {
    Ok(diskutil::Mounter)
}

/// A volume mounted or unmounted, and where.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountChange {
    pub device: PathBuf,
    pub mount_point: PathBuf,
}

/// Mounts the volumes of the device at `path` through udisks2, where the desktop mounts them
/// (`/media/USER/NAME`), as GNOME Disks' Mount does (through diskutil on macOS, at
/// `/Volumes/NAME`): a partition's, or each of a disk's
/// partitions' that holds a file system and is not mounted yet. Where each was mounted.
pub fn mount(path: &Path) -> Result<Vec<MountChange>> {
    let about = describe(path)?;
    let wanted: Vec<&Device> = about
        .all()
        .into_iter()
        .filter(|d| d.file_system.is_some() && d.mount_points.is_empty())
        .filter(|d| d.partitions.is_empty())
        .collect();
    if wanted.is_empty() {
        let reason = match about.mounted_at().first() {
            Some(point) => format!("it is mounted already, at {}", point.display()),
            None => "it holds no file system to mount".into(),
        };
        return Err(Error::Refused {
            path: path.to_path_buf(),
            reason,
        });
    }
    let mounter = mounter(path)?;
    wanted
        .into_iter()
        .map(|d| {
            let point = asked(&d.path, "mount it", mounter.mount(&d.path))?;
            Ok(MountChange {
                device: d.path.clone(),
                mount_point: point,
            })
        })
        .collect()
}

/// Unmounts through udisks2 (diskutil on macOS) the volume at `spec` (a device or a mount point), or every mounted
/// volume of a disk; with `force`, lazily. What was unmounted from where.
pub fn unmount(spec: &Path, force: bool) -> Result<Vec<MountChange>> {
    let path = resolve(spec)?;
    let about = describe(&path)?;
    let mounted: Vec<MountChange> = about
        .all()
        .into_iter()
        .flat_map(|d| {
            d.mount_points.iter().map(|point| MountChange {
                device: d.path.clone(),
                mount_point: point.clone(),
            })
        })
        .collect();
    if mounted.is_empty() {
        return Err(Error::Refused {
            path: spec.to_path_buf(),
            reason: "it is not mounted".into(),
        });
    }
    let mounter = mounter(&path)?;
    let mut devices: Vec<&PathBuf> = mounted.iter().map(|m| &m.device).collect();
    devices.dedup();
    for device in devices {
        asked(device, "unmount it", mounter.unmount(device, force))?;
    }
    Ok(mounted)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, number: &str, size: u64, partitions: Vec<Device>) -> Device {
        Device {
            path: PathBuf::from(format!("/nonexistent/{name}")),
            kind: "loop".into(),
            size,
            model: None,
            removable: false,
            read_only: false,
            file_system: Some("FAT".into()),
            label: None,
            mount_points: Vec::new(),
            number: number.into(),
            partitions,
        }
    }

    /// The kernel's devices, each as udisks2 describes it only where it knows it at the kernel's
    /// size; mounts always the kernel's; nothing the kernel no longer has.
    #[test]
    fn the_kernel_says_which_devices_and_udisks2_describes_those_it_caught_up_with() {
        let mounted = |mut d: Device| {
            d.mount_points = vec![PathBuf::from("/media/stick")];
            d
        };
        // Mounted a moment ago: udisks2 does not know yet.
        let kernel = mounted(device(
            "loop0",
            "7:0",
            16 << 20,
            vec![device("loop0p1", "259:0", 8 << 20, Vec::new())],
        ));
        let described_by_udisks = |mut d: Device| {
            d.model = Some("from udisks2".into());
            d
        };
        let known: HashMap<String, Device> = [
            described_by_udisks(device("loop0", "7:0", 16 << 20, Vec::new())),
            // Not caught up: the size of an earlier attachment.
            described_by_udisks(device("loop0p1", "259:0", 4 << 20, Vec::new())),
            // Detached, where udisks2 has not caught up.
            described_by_udisks(device("loop1", "7:1", 1 << 20, Vec::new())),
        ]
        .into_iter()
        .map(|d| (d.number.clone(), d))
        .collect();
        let got = described(kernel, &known);
        assert_eq!(got.model.as_deref(), Some("from udisks2"));
        assert_eq!(got.mount_points, [PathBuf::from("/media/stick")]);
        assert_eq!(got.partitions.len(), 1);
        let partition = &got.partitions[0];
        assert_eq!(partition.model, None, "described by the kernel");
        assert_eq!(partition.size, 8 << 20);
        assert!(got.all().iter().all(|d| d.number != "7:1"));
    }
}
