use super::browse::{mount_place, VolumeId};
use crate::container::Fact;
use crate::error::{Error, Result};
use crate::fs::{self, iso9660::Iso9660};
use crate::io::ReadAt;
use crate::magic::Signature;
use crate::magic::{self, Sniff};
use crate::partition::Partition;
use crate::secret::{Locked, Passphrase};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// "AES-128" or "AES-256" for an encrypted image (a sparse bundle: by its token).
    pub encryption: Option<String>,
    /// What can be done to it as it is: the menus offer these and no others.
    pub abilities: Abilities,
    /// The licence agreement macOS shows before attaching it, in each of its languages.
    pub agreement: Option<super::Agreement>,
}

/// What an image allows without converting it first.
#[derive(Debug, Serialize)]
pub struct Abilities {
    /// Its disk is kept as it is, so it may be attached read/write (UDRW, sparse, raw).
    pub read_write: bool,
    /// `resize` takes it (an unencrypted UDRW image, sparse image or bundle).
    pub resize: bool,
    /// `compact` takes it (a sparse image or bundle).
    pub compact: bool,
}

#[derive(Debug, Serialize)]
pub struct PartitionInfo {
    #[serde(flatten)]
    pub partition: Partition,
    /// The file system found in it, when its magic number is known.
    pub file_system: Option<&'static str>,
    /// The volumes dimg browses in it: one, or each volume of an APFS container.
    pub volumes: Vec<VolumeInfo>,
}

/// One volume of a partition.
#[derive(Debug, Serialize)]
pub struct VolumeInfo {
    /// How `ls`, `extract` and `attach` name it with `-volume`.
    pub id: VolumeId,
    pub name: String,
    /// Its part in an APFS container ("Data", "Preboot").
    pub role: Option<&'static str>,
    /// Bytes it has in use.
    pub used: Option<u64>,
    /// Bytes free for it, where that is not its partition less `used` (APFS: the container's).
    pub available: Option<u64>,
    /// The files and folders its header counts.
    pub counts: Option<crate::fs::Counts>,
    pub case_sensitive: bool,
    pub encrypted: bool,
    /// An encrypted volume not unlocked (no passphrase given, or nothing unlocks it here):
    /// its files cannot be listed.
    pub locked: bool,
    /// The hint an encrypted volume keeps for its password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passphrase_hint: Option<String>,
    /// Its snapshots (APFS), oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<crate::fs::Snapshot>,
}

/// Opens `path` and describes it. Reads only headers, never the whole image.
pub fn info(path: &Path, passphrase: Option<&Passphrase>) -> Result<ImageInfo> {
    let opened = super::browse::open_image(path, passphrase)?;
    let disk = opened.container.disk();
    let on_disk = Sniff::read(&*disk).map_err(|e| Error::io(path, e))?;
    let mut recognised: Vec<&'static str> = Vec::new();
    for sig in opened.signatures.iter().chain(&magic::identify(&on_disk)) {
        if !recognised.contains(&sig.name()) {
            recognised.push(sig.name());
        }
    }
    let (partition_scheme, parts) = fs::places(&*disk).map_err(|e| Error::io(path, e))?;
    let mut facts = opened.container.facts();
    let partitions = parts
        .into_iter()
        .map(|p| {
            let part = p.open(disk.clone());
            let file_system = fs::identify(&part).map_err(|e| Error::io(path, e))?;
            if file_system == Some(Signature::Iso9660) {
                facts.extend(boot_facts(Arc::new(part)));
            }
            let mounted = match file_system {
                Some(_) => {
                    mount_place(&*opened.container, &disk, &p, passphrase).unwrap_or_default()
                }
                None => Vec::new(),
            };
            let count = mounted.len();
            // A passphrase that unlocks no volume it was given for is wrong, as for an image.
            if passphrase.is_some() {
                if let Some(wrong) = mounted
                    .iter()
                    .filter_map(|v| v.locked())
                    .find(|e| matches!(Locked::of(e), Some(Locked::WrongPassphrase)))
                {
                    return Err(Error::io(path, wrong));
                }
            }
            let volumes = (0u32..)
                .zip(mounted)
                .map(|(n, v)| {
                    let id = VolumeId::of(p.index, n, count);
                    facts.extend(v.facts());
                    for warning in v.warnings() {
                        facts.push(Fact::new("Warning", format!("volume {id}: {warning}")));
                    }
                    let locked = v.locked();
                    // Why it stays locked, when not for want of a passphrase.
                    if let Some(e) = locked.as_ref().filter(|_| passphrase.is_some()) {
                        facts.push(Fact::new("Warning", format!("volume {id}: {e}")));
                    }
                    VolumeInfo {
                        id,
                        name: v.label(),
                        role: v.role(),
                        used: v.used(),
                        available: v.available(),
                        counts: v.counts(),
                        case_sensitive: v.case_sensitive(),
                        encrypted: v.encrypted(),
                        locked: locked.is_some(),
                        passphrase_hint: v.passphrase_hint(),
                        snapshots: v.snapshots().unwrap_or_default(),
                    }
                })
                .collect();
            Ok(PartitionInfo {
                partition: p,
                file_system: file_system.map(|s| s.name()),
                volumes,
            })
        })
        .collect::<Result<_>>()?;
    Ok(ImageInfo {
        path: path.to_path_buf(),
        format: opened.format,
        file_size: opened.file_size,
        disk_size: disk.size(),
        sectors: disk.size().div_ceil(512),
        recognised,
        partition_scheme,
        partitions,
        facts,
        encryption: opened
            .container
            .key_bits()
            .map(|bits| format!("AES-{bits}")),
        abilities: Abilities {
            read_write: opened.container.read_write(),
            resize: super::resize::resized_format(opened.format, opened.container.read_write())
                .is_ok(),
            compact: opened.container.band_size().is_some(),
        },
        agreement: opened.container.agreement(),
    })
}

/// What a bootable disc's El Torito catalog lists, one fact per boot image.
fn boot_facts(part: Arc<dyn ReadAt>) -> Vec<Fact> {
    let images = Iso9660::open(part, None).and_then(|iso| iso.boot_images());
    match images {
        Ok(images) => images
            .iter()
            .map(|b| {
                Fact::new(
                    "Boot image",
                    format!(
                        "{}, {}{}, {} bytes at sector {}{}",
                        b.platform,
                        b.emulation,
                        if b.bootable { "" } else { " (not bootable)" },
                        b.size,
                        b.lba,
                        if b.emulation == "no emulation" {
                            format!(", loads {} × 512 bytes", b.load_sectors)
                        } else {
                            String::new()
                        }
                    ),
                )
            })
            .collect(),
        Err(e) => vec![Fact::new("Boot catalog", format!("unreadable: {e}"))],
    }
}
