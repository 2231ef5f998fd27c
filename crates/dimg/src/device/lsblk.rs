//! The machine's disks as `lsblk` (util-linux) reports them from sysfs: every block device the
//! kernel has at this moment, whether or not udev and udisks2 have caught up. One call, nothing
//! live.

use super::{named_file_system, run, Device};
use crate::{Error, Result};
use serde::Deserialize;
use std::path::PathBuf;

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
        let partitions: Vec<Device> = children.into_iter().map(|c| c.into_device(rows)).collect();
        Device {
            path: self.path,
            kind: self.kind,
            size: self.size.unwrap_or(0),
            model: trimmed(self.model),
            removable: self.rm,
            read_only: self.ro,
            file_system: named_file_system(trimmed(self.fstype)),
            label: trimmed(self.label),
            mount_points: self.mountpoints.into_iter().flatten().collect(),
            number: self.number,
            partitions,
        }
    }
}

const COLUMNS: &str = "NAME,PKNAME,PATH,TYPE,SIZE,MODEL,RM,RO,FSTYPE,LABEL,MOUNTPOINTS,MAJ:MIN";

pub(super) fn lsblk() -> Result<Vec<Device>> {
    let listed = run(
        "lsblk",
        &["--json", "--list", "--bytes", "--output", COLUMNS],
        "list the disks",
    )?;
    let listed: Listed = serde_json::from_slice(&listed).map_err(|e| Error::Refused {
        path: PathBuf::from("lsblk"),
        reason: format!("lsblk's answer is not what dimg expects: {e}"),
    })?;
    // Loop devices with nothing attached, empty drives: nothing to list, nor to sniff.
    let mut rows: Vec<Row> = listed
        .blockdevices
        .into_iter()
        .filter(|r| r.size.is_some_and(|size| size > 0))
        .collect();
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    // The tops: rows whose parent is not listed (whole disks).
    let (tops, mut rest): (Vec<Row>, Vec<Row>) = rows
        .drain(..)
        .partition(|r| !r.pkname.as_ref().is_some_and(|p| names.contains(p)));
    Ok(tops.into_iter().map(|t| t.into_device(&mut rest)).collect())
}
