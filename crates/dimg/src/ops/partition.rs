//! Partition a disk (Disk Utility's Partition, diskutil addPartition / deleteVolume /
//! resizeVolume), on GPT and MBR, through udisks2 (PartitionTable.CreatePartition,
//! Partition.Delete, Partition.Resize): a partition added in free space, with a new volume if
//! asked; one deleted; one grown into the free space after it, or shrunk while it holds no file
//! system. The running system's disk and mounted volumes are refused before anything changes.

use super::erase::{self, EraseOptions, VolumeFormat};
use super::job::{Cancel, Progress};
use crate::device::{self, Changer, Slot};
use crate::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

/// What was done to a partition, and where it lies now.
#[derive(Debug, Serialize)]
pub struct PartitionReport {
    /// "added", "deleted" or "resized".
    pub action: &'static str,
    pub disk: PathBuf,
    pub partition: PathBuf,
    /// Where it starts on its disk, in bytes.
    pub offset: u64,
    /// Its size in bytes (what it had, for one deleted).
    pub size: u64,
    /// The file system made in a partition added with one.
    pub file_system: Option<&'static str>,
    pub notes: Vec<String>,
}

fn refused(path: &Path, reason: String) -> Error {
    Error::Refused {
        path: path.to_path_buf(),
        reason,
    }
}

/// The partition table of `disk` and its partitions, or a refusal saying it has none dimg can
/// change.
fn table(udisks: &Changer, disk: &Path) -> Result<(String, Vec<Slot>)> {
    let table = device::asked(disk, "read its partition table", udisks.table(disk))?;
    match table {
        Some((kind, slots)) if kind == "gpt" || kind == "dos" => Ok((kind, slots)),
        Some((kind, _)) => Err(refused(
            disk,
            format!("its partition table is {kind}: dimg partitions GPT and MBR disks"),
        )),
        None => Err(refused(
            disk,
            "it has no partition table: erase it with one first (dimg erase DISK -fs FS -scheme GPT)"
                .into(),
        )),
    }
}

/// Where partitions may lie on a disk of `size` bytes with a `kind` table: from the first MiB
/// to the end, less GPT's backup table.
fn usable_end(kind: &str, size: u64) -> u64 {
    match kind {
        "gpt" => size.saturating_sub(33 * 512),
        _ => size,
    }
}

/// The free runs between `slots` on a disk ending at `end`, each starting on a MiB: (start,
/// length).
fn free_runs(slots: &[Slot], end: u64) -> Vec<(u64, u64)> {
    let mut runs = Vec::new();
    let mut at = MIB;
    for (start, len) in slots.iter().map(|s| (s.offset, s.size)).chain([(end, 0)]) {
        let from = at.next_multiple_of(MIB);
        if start > from {
            runs.push((from, (start - from) / MIB * MIB));
        }
        at = at.max(start + len);
    }
    runs.retain(|r| r.1 > 0);
    runs
}

/// The disk at `path`, checked to be a whole disk that may be changed now.
fn changeable(path: &Path, whole: bool) -> Result<device::Device> {
    let about = device::describe(path)?;
    match (whole, about.kind == "part") {
        (true, true) => {
            return Err(refused(
                path,
                "it is a partition: partitions are added to a disk".into(),
            ))
        }
        (false, false) => return Err(refused(path, "it is a disk, not a partition".into())),
        _ => {}
    }
    if let Some(reason) = erase::refusal(&about)? {
        return Err(refused(path, reason));
    }
    Ok(about)
}

/// Adds a partition of `size` bytes (rounded up to a MiB; by default the largest free space)
/// to the disk at `disk`, in the first free space it fits, with a new volume of `format` named
/// `name` if asked.
pub fn add_partition(
    disk: &Path,
    size: Option<u64>,
    format: Option<VolumeFormat>,
    name: &str,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<PartitionReport> {
    let about = changeable(disk, true)?;
    let udisks = device::changer(disk)?;
    let (kind, slots) = table(&udisks, disk)?;
    let runs = free_runs(&slots, usable_end(&kind, about.size));
    let largest = runs.iter().map(|r| r.1).max().unwrap_or(0);
    let wanted = size.map_or(largest, |s| s.next_multiple_of(MIB));
    if let Some(format) = format {
        if wanted < format.smallest() {
            return Err(refused(
                disk,
                format!(
                    "a partition of {wanted} bytes is too small for {} volume ({} bytes at least)",
                    format.name(),
                    format.smallest()
                ),
            ));
        }
    }
    let Some(&(offset, _)) = runs.iter().find(|r| r.1 >= wanted && wanted > 0) else {
        return Err(refused(
            disk,
            format!("it has no free space of {wanted} bytes: the largest is {largest} bytes"),
        ));
    };
    let (type_, label) = match format {
        Some(f) => (f.partition_type(&kind), name),
        None => ("", name),
    };
    let gpt_name = match kind.as_str() {
        "gpt" => label,
        _ => "",
    };
    let partition = device::asked(
        disk,
        "add the partition",
        udisks.create_partition(disk, (offset, wanted), type_, gpt_name, None),
    )?;
    if let Some(format) = format {
        let options = EraseOptions {
            format,
            name: name.to_string(),
            scheme: None,
        };
        erase::erase(&partition, &options, progress, cancel)?;
    }
    let slot = find(&udisks, disk, &partition)?;
    Ok(PartitionReport {
        action: "added",
        disk: disk.to_path_buf(),
        partition,
        offset: slot.offset,
        size: slot.size,
        file_system: format.map(VolumeFormat::name),
        notes: Vec::new(),
    })
}

/// The partition `partition` of `disk` as udisks2 knows it now.
fn find(udisks: &Changer, disk: &Path, partition: &Path) -> Result<Slot> {
    let (_, slots) = table(udisks, disk)?;
    slots
        .into_iter()
        .find(|s| s.path == partition)
        .ok_or_else(|| {
            refused(
                partition,
                format!("udisks2 does not list it on {}", disk.display()),
            )
        })
}

/// Deletes the partition at `partition`.
pub fn delete_partition(partition: &Path) -> Result<PartitionReport> {
    let about = changeable(partition, false)?;
    let disk = device::disk_of(&about)?.path;
    let udisks = device::changer(partition)?;
    let slot = find(&udisks, &disk, partition)?;
    device::asked(partition, "delete it", udisks.delete_partition(partition))?;
    Ok(PartitionReport {
        action: "deleted",
        disk,
        partition: partition.to_path_buf(),
        offset: slot.offset,
        size: slot.size,
        file_system: None,
        notes: Vec::new(),
    })
}

/// Resizes the partition at `partition` to `size` bytes (rounded up to a MiB), within the free
/// space after it. The partition only: a volume in it keeps its size, so one that holds a file
/// system is not shrunk.
pub fn resize_partition(partition: &Path, size: u64) -> Result<PartitionReport> {
    let about = changeable(partition, false)?;
    let whole = device::disk_of(&about)?;
    let udisks = device::changer(partition)?;
    let (kind, slots) = table(&udisks, &whole.path)?;
    let Some(index) = slots.iter().position(|s| s.path == partition) else {
        return Err(refused(
            partition,
            format!("udisks2 does not list it on {}", whole.path.display()),
        ));
    };
    let slot = &slots[index];
    let next = slots
        .get(index + 1)
        .map_or(usable_end(&kind, whole.size), |s| s.offset);
    let most = (next - slot.offset) / MIB * MIB;
    let wanted = size.next_multiple_of(MIB);
    if wanted > most.max(slot.size) {
        return Err(refused(
            partition,
            format!(
                "there is room for {most} bytes at most: the free space after it ends at byte \
                 {next} of the disk"
            ),
        ));
    }
    if wanted < slot.size {
        if let Some(fs) = &about.file_system {
            return Err(refused(
                partition,
                format!(
                    "it holds {fs} volume of {} bytes, which would be cut short: dimg resizes \
                     the partition only, and shrinks only one that holds no file system",
                    slot.size
                ),
            ));
        }
    }
    device::asked(
        partition,
        "resize it",
        udisks.resize_partition(partition, wanted),
    )?;
    let now = find(&udisks, &whole.path, partition)?;
    let notes = match &about.file_system {
        Some(fs) if now.size > slot.size => vec![format!(
            "its {fs} volume keeps its size of {} bytes: the partition has room for it to grow",
            slot.size
        )],
        _ => Vec::new(),
    };
    Ok(PartitionReport {
        action: "resized",
        disk: whole.path,
        partition: partition.to_path_buf(),
        offset: now.offset,
        size: now.size,
        file_system: None,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(offset: u64, size: u64) -> Slot {
        Slot {
            path: PathBuf::new(),
            offset,
            size,
        }
    }

    /// Free runs start on a MiB after the first, are whole MiB, and leave out the partitions.
    #[test]
    fn free_runs_lie_between_the_partitions_on_whole_mib() {
        let end = 64 * MIB - 33 * 512;
        assert_eq!(free_runs(&[], end), [(MIB, 62 * MIB)]);
        let slots = [slot(MIB, 10 * MIB), slot(20 * MIB + 512, 4 * MIB)];
        assert_eq!(
            free_runs(&slots, end),
            [(11 * MIB, 9 * MIB), (25 * MIB, 38 * MIB)]
        );
        assert_eq!(free_runs(&[slot(MIB, 63 * MIB)], 64 * MIB), []);
    }
}
