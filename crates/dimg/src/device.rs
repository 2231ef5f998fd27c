//! The machine's disks, as `lsblk` (util-linux) reports them from sysfs: whole disks, their
//! partitions, and where each is mounted. Restore and image-from-device use this to name a
//! device, to find the device behind a mount point, and to refuse a disk that is in use.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// lsblk's JSON, as `lsblk --json --list --bytes -o …` prints it: one row per device, each
/// naming its parent (the nesting lsblk draws needs udev, which a container may lack).
#[derive(Deserialize)]
struct Listed {
    blockdevices: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    name: String,
    pkname: Option<String>,
    path: PathBuf,
    #[serde(rename = "type")]
    kind: String,
    size: Option<u64>,
    model: Option<String>,
    rm: bool,
    ro: bool,
    fstype: Option<String>,
    label: Option<String>,
    #[serde(default)]
    mountpoints: Vec<Option<PathBuf>>,
    #[serde(rename = "maj:min")]
    number: String,
}

impl Row {
    fn into_device(self, rows: &mut Vec<Row>) -> Device {
        let trimmed = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let (children, rest): (Vec<Row>, Vec<Row>) = std::mem::take(rows)
            .into_iter()
            .partition(|r| r.pkname.as_deref() == Some(self.name.as_str()));
        *rows = rest;
        let partitions = children.into_iter().map(|c| c.into_device(rows)).collect();
        // Where no udev database tells lsblk the file system, dimg's own magic numbers do.
        let file_system = trimmed(self.fstype).or_else(|| sniffed_file_system(&self.path));
        Device {
            path: self.path,
            kind: self.kind,
            size: self.size.unwrap_or(0),
            model: trimmed(self.model),
            removable: self.rm,
            read_only: self.ro,
            file_system,
            label: trimmed(self.label),
            mount_points: self.mountpoints.into_iter().flatten().collect(),
            number: self.number,
            partitions,
        }
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

const COLUMNS: &str = "NAME,PKNAME,PATH,TYPE,SIZE,MODEL,RM,RO,FSTYPE,LABEL,MOUNTPOINTS,MAJ:MIN";

fn lsblk(device: Option<&Path>) -> Result<Vec<Device>> {
    let mut command = Command::new("lsblk");
    command.args(["--json", "--list", "--bytes", "--output", COLUMNS]);
    command.args(device);
    let lsblk = Path::new("lsblk");
    let out = command.output().map_err(|e| Error::io(lsblk, e))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let path = device.unwrap_or(lsblk).to_path_buf();
        return Err(Error::Refused {
            path,
            reason: format!("lsblk cannot describe it: {said}"),
        });
    }
    let listed: Listed = serde_json::from_slice(&out.stdout).map_err(|e| Error::Refused {
        path: lsblk.to_path_buf(),
        reason: format!("lsblk's answer is not what dimg expects: {e}"),
    })?;
    let mut rows = listed.blockdevices;
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    // The tops: rows whose parent is not listed (whole disks; the device asked about).
    let (tops, mut rest): (Vec<Row>, Vec<Row>) = rows
        .drain(..)
        .partition(|r| !r.pkname.as_ref().is_some_and(|p| names.contains(p)));
    Ok(tops.into_iter().map(|t| t.into_device(&mut rest)).collect())
}

/// Every disk of the machine with its partitions (loop devices with nothing attached left out).
pub fn list() -> Result<Vec<Device>> {
    Ok(lsblk(None)?.into_iter().filter(|d| d.size > 0).collect())
}

/// The device at `path` (a block device), with its partitions.
pub fn describe(path: &Path) -> Result<Device> {
    lsblk(Some(path))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Refused {
            path: path.to_path_buf(),
            reason: "not a disk or partition".into(),
        })
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
    let dev = std::fs::metadata(file).ok()?.dev();
    let number = format!("{}:{}", libc::major(dev), libc::minor(dev));
    among
        .all()
        .into_iter()
        .find(|d| d.number == number)
        .map(|d| d.path.clone())
}
