use crate::container::{self, Fact};
use crate::error::{Error, Result};
use crate::fs;
use crate::magic::{self, Sniff};
use crate::partition::{self, Partition};
use crate::secret::Passphrase;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What `info` reports about an image.
#[derive(Debug, Serialize)]
pub struct ImageInfo {
    pub path: PathBuf,
    /// The container format, e.g. "raw disk image".
    pub format: &'static str,
    pub file_size: u64,
    /// Size of the virtual disk the image holds.
    pub disk_size: u64,
    /// The disk in 512-byte sectors (rounded up).
    pub sectors: u64,
    /// Every magic number seen, in the file and on its disk, by name.
    pub recognised: Vec<&'static str>,
    pub partition_scheme: &'static str,
    pub partitions: Vec<PartitionInfo>,
    pub facts: Vec<Fact>,
}

#[derive(Debug, Serialize)]
pub struct PartitionInfo {
    #[serde(flatten)]
    pub partition: Partition,
    /// The file system found in it, when its magic number is known.
    pub file_system: Option<&'static str>,
}

/// Opens `path` and describes it. Reads only headers, never the whole image.
pub fn info(path: &Path, passphrase: Option<&Passphrase>) -> Result<ImageInfo> {
    let opened = container::open(path, passphrase)?;
    let disk = opened.container.disk();
    let on_disk = Sniff::read(&*disk).map_err(|e| Error::io(path, e))?;
    let mut recognised: Vec<&'static str> = Vec::new();
    for sig in opened.signatures.iter().chain(&magic::identify(&on_disk)) {
        if !recognised.contains(&sig.name()) {
            recognised.push(sig.name());
        }
    }
    let (partition_scheme, parts) = partition::scan(&*disk).map_err(|e| Error::io(path, e))?;
    let partitions = parts
        .into_iter()
        .map(|p| {
            let file_system = fs::identify(&p.open(disk.clone()))
                .map_err(|e| Error::io(path, e))?
                .map(|s| s.name());
            Ok(PartitionInfo {
                partition: p,
                file_system,
            })
        })
        .collect::<Result<_>>()?;
    Ok(ImageInfo {
        path: path.to_path_buf(),
        format: opened.driver.name,
        file_size: opened.file_size,
        disk_size: disk.size(),
        sectors: disk.size().div_ceil(512),
        recognised,
        partition_scheme,
        partitions,
        facts: opened.container.facts(),
    })
}
