//! The machine's disks as macOS's `diskutil` (the Disk Arbitration and Disk Management
//! frameworks behind Disk Utility) reports them, and volumes mounted and unmounted through it.
//! macOS's counterpart of `lsblk` and udisks2 together: one service both knows the devices and
//! describes them. Compiled on Linux only for the tests of its parsing.

use super::{named_file_system, number, output, run, Device};
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `diskutil list -plist`: each whole disk with its partitions, and each APFS container (a
/// disk macOS synthesises) with its volumes and the partitions that hold it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    all_disks_and_partitions: Vec<Entry>,
}

/// A disk, partition or APFS volume as `diskutil list` shows it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    device_identifier: String,
    #[serde(default)]
    size: u64,
    volume_name: Option<String>,
    mount_point: Option<PathBuf>,
    #[serde(default)]
    partitions: Vec<Entry>,
    #[serde(rename = "APFSVolumes", default)]
    apfs_volumes: Vec<Entry>,
    /// The partitions an APFS container lies on (several for a Fusion drive).
    #[serde(rename = "APFSPhysicalStores", default)]
    apfs_physical_stores: Vec<Store>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Store {
    device_identifier: String,
}

/// What `diskutil info -plist` adds about one device: what `list` does not say.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Info {
    device_node: Option<PathBuf>,
    media_name: Option<String>,
    removable_media_or_external_device: Option<bool>,
    removable: Option<bool>,
    writable_media: Option<bool>,
    /// The file system's short name (`hfs`, `apfs`, `msdos`, `exfat`, `cd9660`).
    filesystem_type: Option<String>,
    /// Set on a disc drive's media.
    optical_media_type: Option<String>,
}

fn said<T: for<'a> Deserialize<'a>>(bytes: &[u8], what: &str) -> Result<T> {
    plist::from_bytes(bytes).map_err(|e| Error::Refused {
        path: PathBuf::from("diskutil"),
        reason: format!("its answer to `{what}` is not what dimg expects: {e}"),
    })
}

/// Every disk `diskutil` lists, each described by `diskutil info`, each APFS container under
/// the partition that holds it (so a disk holding the running system's volumes says so).
pub(super) fn disks() -> Result<Vec<Device>> {
    let listed = run("diskutil", &["list", "-plist"], "list the disks")?;
    let entries = said::<Listed>(&listed, "diskutil list -plist")?.all_disks_and_partitions;
    let mut infos = HashMap::new();
    for entry in &entries {
        for id in identifiers(entry) {
            let info = run("diskutil", &["info", "-plist", id], "describe a disk")?;
            infos.insert(id.to_string(), said(&info, "diskutil info -plist")?);
        }
    }
    Ok(tree(entries, &infos, &|node| {
        std::fs::metadata(node).map_or_else(
            |_| String::new(),
            |m| number(std::os::unix::fs::MetadataExt::rdev(&m)),
        )
    }))
}

/// An entry's device and those under it.
fn identifiers(entry: &Entry) -> Vec<&str> {
    let children = entry.partitions.iter().chain(&entry.apfs_volumes);
    std::iter::once(entry.device_identifier.as_str())
        .chain(children.flat_map(identifiers))
        .collect()
}

/// The listed entries as devices, each described by its `info` and numbered by its node
/// (`numbered`: the device number `stat` gives, which files on it carry as their `st_dev`),
/// each APFS container nested in the partition it lies on.
fn tree(
    entries: Vec<Entry>,
    infos: &HashMap<String, Info>,
    numbered: &dyn Fn(&Path) -> String,
) -> Vec<Device> {
    let (containers, disks): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| !e.apfs_physical_stores.is_empty());
    let mut containers: Vec<(String, Device)> = containers
        .into_iter()
        .map(|c| {
            let store = c.apfs_physical_stores[0].device_identifier.clone();
            (store, device(c, true, infos, numbered))
        })
        .collect();
    let mut disks: Vec<Device> = disks
        .into_iter()
        .map(|d| device(d, true, infos, numbered))
        .collect();
    for disk in &mut disks {
        nest(disk, &mut containers);
    }
    // A container whose store is not listed (it should not happen) stands as a disk of its own.
    disks.extend(containers.into_iter().map(|(_, c)| c));
    disks
}

/// Moves each container whose store is `device` or under it into its store's partitions.
fn nest(device: &mut Device, containers: &mut Vec<(String, Device)>) {
    for partition in &mut device.partitions {
        nest(partition, containers);
    }
    let name = identifier(&device.path);
    let (here, rest): (Vec<_>, Vec<_>) = std::mem::take(containers)
        .into_iter()
        .partition(|(store, _)| Some(store.as_str()) == name);
    *containers = rest;
    device.partitions.extend(here.into_iter().map(|(_, c)| c));
}

/// `disk2s1` of `/dev/disk2s1`.
fn identifier(node: &Path) -> Option<&str> {
    node.file_name()?.to_str()
}

fn device(
    entry: Entry,
    whole: bool,
    infos: &HashMap<String, Info>,
    numbered: &dyn Fn(&Path) -> String,
) -> Device {
    let fallback = Info::default();
    let info = infos.get(&entry.device_identifier).unwrap_or(&fallback);
    let trimmed = |s: Option<&String>| Some(s?.trim().to_string()).filter(|s| !s.is_empty());
    let path = info
        .device_node
        .clone()
        .unwrap_or_else(|| Path::new("/dev").join(&entry.device_identifier));
    let kind = match (whole, &info.optical_media_type) {
        (true, Some(_)) => "rom",
        (true, None) => "disk",
        (false, _) => "part",
    };
    // diskutil's short names where they differ from blkid's: `hfs` is HFS+ (Mac OS Extended),
    // `cd9660` ISO 9660.
    let file_system = trimmed(info.filesystem_type.as_ref()).map(|fs| match fs.as_str() {
        "hfs" => "hfsplus".to_string(),
        "cd9660" => "iso9660".to_string(),
        _ => fs,
    });
    let partitions = entry
        .partitions
        .into_iter()
        .chain(entry.apfs_volumes)
        .map(|p| device(p, false, infos, numbered))
        .collect();
    Device {
        number: numbered(&path),
        path,
        kind: kind.into(),
        size: entry.size,
        model: trimmed(info.media_name.as_ref()).filter(|_| whole),
        removable: info
            .removable_media_or_external_device
            .or(info.removable)
            .unwrap_or(false),
        read_only: info.writable_media.is_some_and(|w| !w),
        file_system: named_file_system(file_system),
        label: trimmed(entry.volume_name.as_ref()),
        mount_points: entry
            .mount_point
            .filter(|p| !p.as_os_str().is_empty())
            .into_iter()
            .collect(),
        partitions,
    }
}

/// Mounts and unmounts volumes through `diskutil`, as Disk Utility does. Its refusals come
/// back as what it said.
pub(crate) struct Mounter;

/// `diskutil` run with `args`: what it printed, or what it said when it failed.
fn diskutil(args: &[&str]) -> std::result::Result<Vec<u8>, String> {
    output("diskutil", args).map_err(|e| format!("it cannot be run: {e}"))?
}

impl Mounter {
    /// `diskutil mount`: where the volume at `path` was mounted (`/Volumes/NAME`).
    pub(crate) fn mount(&self, path: &Path) -> std::result::Result<PathBuf, String> {
        let node = path.to_string_lossy();
        diskutil(&["mount", &node])?;
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Mounted {
            mount_point: Option<PathBuf>,
        }
        let info = diskutil(&["info", "-plist", &node])?;
        plist::from_bytes::<Mounted>(&info)
            .map_err(|e| format!("its answer to `diskutil info -plist` is not a plist: {e}"))?
            .mount_point
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(|| "it says it is mounted nowhere".into())
    }

    /// `diskutil unmount`; with `force`, `diskutil unmount force` (files open on it or not).
    pub(crate) fn unmount(&self, path: &Path, force: bool) -> std::result::Result<(), String> {
        let node = path.to_string_lossy();
        match force {
            true => diskutil(&["unmount", "force", &node]),
            false => diskutil(&["unmount", &node]),
        }
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Mac's disks as `diskutil list -plist` answers (the shape macOS 13 and later print):
    /// the internal SSD with its APFS container synthesised as disk3, the system's volumes
    /// mounted there, and a USB stick with a GPT holding an EFI partition and an ExFAT volume.
    const LISTED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>AllDisks</key>
	<array>
		<string>disk0</string><string>disk0s1</string><string>disk0s2</string>
		<string>disk3</string><string>disk3s1</string><string>disk3s5</string>
		<string>disk4</string><string>disk4s1</string><string>disk4s2</string>
	</array>
	<key>AllDisksAndPartitions</key>
	<array>
		<dict>
			<key>Content</key>
			<string>GUID_partition_scheme</string>
			<key>DeviceIdentifier</key>
			<string>disk0</string>
			<key>OSInternal</key>
			<false/>
			<key>Partitions</key>
			<array>
				<dict>
					<key>Content</key>
					<string>Apple_APFS_ISC</string>
					<key>DeviceIdentifier</key>
					<string>disk0s1</string>
					<key>DiskUUID</key>
					<string>3C1A7B2E-55D0-4F6A-9E21-0B8D4C7A1F10</string>
					<key>Size</key>
					<integer>524288000</integer>
				</dict>
				<dict>
					<key>Content</key>
					<string>Apple_APFS</string>
					<key>DeviceIdentifier</key>
					<string>disk0s2</string>
					<key>DiskUUID</key>
					<string>9B62F0C4-1E7D-4B38-A5C9-6D2E8F013A47</string>
					<key>Size</key>
					<integer>494384795648</integer>
				</dict>
			</array>
			<key>Size</key>
			<integer>500277792768</integer>
		</dict>
		<dict>
			<key>APFSPhysicalStores</key>
			<array>
				<dict>
					<key>DeviceIdentifier</key>
					<string>disk0s2</string>
				</dict>
			</array>
			<key>APFSVolumes</key>
			<array>
				<dict>
					<key>CapacityInUse</key>
					<integer>10737418240</integer>
					<key>DeviceIdentifier</key>
					<string>disk3s1</string>
					<key>DiskUUID</key>
					<string>E5A1C3D7-2B4F-4E60-8A9C-1D3F5B7E9A02</string>
					<key>MountPoint</key>
					<string>/</string>
					<key>MountedSnapshots</key>
					<array>
						<dict>
							<key>Sealed</key>
							<string>Yes</string>
							<key>SnapshotBSD</key>
							<string>disk3s1s1</string>
							<key>SnapshotMountPoint</key>
							<string>/</string>
							<key>SnapshotName</key>
							<string>com.apple.os.update-0123456789ABCDEF</string>
						</dict>
					</array>
					<key>OSInternal</key>
					<false/>
					<key>Size</key>
					<integer>494384795648</integer>
					<key>VolumeName</key>
					<string>Macintosh HD</string>
				</dict>
				<dict>
					<key>CapacityInUse</key>
					<integer>201863462912</integer>
					<key>DeviceIdentifier</key>
					<string>disk3s5</string>
					<key>MountPoint</key>
					<string>/System/Volumes/Data</string>
					<key>OSInternal</key>
					<false/>
					<key>Size</key>
					<integer>494384795648</integer>
					<key>VolumeName</key>
					<string>Data</string>
				</dict>
			</array>
			<key>Content</key>
			<string>EF57347C-0000-11AA-AA11-00306543ECAC</string>
			<key>DeviceIdentifier</key>
			<string>disk3</string>
			<key>OSInternal</key>
			<false/>
			<key>Size</key>
			<integer>494384795648</integer>
		</dict>
		<dict>
			<key>Content</key>
			<string>GUID_partition_scheme</string>
			<key>DeviceIdentifier</key>
			<string>disk4</string>
			<key>OSInternal</key>
			<false/>
			<key>Partitions</key>
			<array>
				<dict>
					<key>Content</key>
					<string>EFI</string>
					<key>DeviceIdentifier</key>
					<string>disk4s1</string>
					<key>Size</key>
					<integer>209715200</integer>
					<key>VolumeName</key>
					<string>EFI</string>
				</dict>
				<dict>
					<key>Content</key>
					<string>Microsoft Basic Data</string>
					<key>DeviceIdentifier</key>
					<string>disk4s2</string>
					<key>MountPoint</key>
					<string>/Volumes/STICK</string>
					<key>Size</key>
					<integer>15797846016</integer>
					<key>VolumeName</key>
					<string>STICK</string>
				</dict>
			</array>
			<key>Size</key>
			<integer>16008609792</integer>
		</dict>
	</array>
	<key>VolumesFromDisks</key>
	<array>
		<string>Macintosh HD</string><string>Data</string><string>STICK</string>
	</array>
	<key>WholeDisks</key>
	<array>
		<string>disk0</string><string>disk3</string><string>disk4</string>
	</array>
</dict>
</plist>
"#;

    /// `diskutil info -plist` for the stick and its ExFAT volume, trimmed to a few of the keys
    /// it prints (it prints some sixty).
    const STICK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
	<key>BusProtocol</key><string>USB</string>
	<key>DeviceBlockSize</key><integer>512</integer>
	<key>DeviceIdentifier</key><string>disk4</string>
	<key>DeviceNode</key><string>/dev/disk4</string>
	<key>Ejectable</key><true/>
	<key>MediaName</key><string>SanDisk Ultra Fit        </string>
	<key>Removable</key><false/>
	<key>RemovableMediaOrExternalDevice</key><true/>
	<key>Size</key><integer>16008609792</integer>
	<key>VirtualOrPhysical</key><string>Physical</string>
	<key>WholeDisk</key><true/>
	<key>WritableMedia</key><true/>
</dict>
</plist>
"#;
    const STICK_VOLUME: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
	<key>DeviceIdentifier</key><string>disk4s2</string>
	<key>DeviceNode</key><string>/dev/disk4s2</string>
	<key>FilesystemName</key><string>ExFAT</string>
	<key>FilesystemType</key><string>exfat</string>
	<key>MediaName</key><string></string>
	<key>MountPoint</key><string>/Volumes/STICK</string>
	<key>ParentWholeDisk</key><string>disk4</string>
	<key>VolumeName</key><string>STICK</string>
	<key>WholeDisk</key><false/>
	<key>WritableMedia</key><true/>
</dict>
</plist>
"#;
    const SYSTEM_VOLUME: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
	<key>DeviceIdentifier</key><string>disk3s1</string>
	<key>DeviceNode</key><string>/dev/disk3s1</string>
	<key>FilesystemType</key><string>apfs</string>
	<key>MountPoint</key><string>/</string>
	<key>WritableMedia</key><true/>
</dict>
</plist>
"#;

    fn listed() -> Vec<Device> {
        let entries = said::<Listed>(LISTED.as_bytes(), "list")
            .unwrap()
            .all_disks_and_partitions;
        let infos: HashMap<String, Info> = [
            ("disk4", STICK),
            ("disk4s2", STICK_VOLUME),
            ("disk3s1", SYSTEM_VOLUME),
        ]
        .into_iter()
        .map(|(id, info)| (id.to_string(), said(info.as_bytes(), "info").unwrap()))
        .collect();
        tree(entries, &infos, &|node| {
            format!("numbered {}", identifier(node).unwrap())
        })
    }

    #[test]
    fn every_listed_disk_with_its_partitions_and_what_info_says_of_it() {
        let disks = listed();
        let names: Vec<_> = disks.iter().map(|d| d.path.clone()).collect();
        assert_eq!(names, [PathBuf::from("/dev/disk0"), "/dev/disk4".into()]);
        let stick = &disks[1];
        assert_eq!(stick.kind, "disk");
        assert_eq!(stick.size, 16008609792);
        assert_eq!(stick.model.as_deref(), Some("SanDisk Ultra Fit"));
        assert!(stick.removable, "RemovableMediaOrExternalDevice");
        assert!(!stick.read_only);
        assert_eq!(stick.number, "numbered disk4");
        let parts: Vec<_> = stick.partitions.iter().map(|p| p.path.clone()).collect();
        assert_eq!(
            parts,
            [PathBuf::from("/dev/disk4s1"), "/dev/disk4s2".into()]
        );
        let volume = &stick.partitions[1];
        assert_eq!(volume.kind, "part");
        assert_eq!(volume.file_system.as_deref(), Some("exFAT"));
        assert_eq!(volume.label.as_deref(), Some("STICK"));
        assert_eq!(volume.model, None, "a partition names no model");
        assert_eq!(volume.mount_points, [PathBuf::from("/Volumes/STICK")]);
        // Not described by `info`: what `list` says, and nothing more.
        let efi = &stick.partitions[0];
        assert_eq!(efi.label.as_deref(), Some("EFI"));
        assert_eq!((efi.file_system.clone(), efi.mount_points.len()), (None, 0));
    }

    /// The system's volumes are on the internal disk: its APFS container is nested in the
    /// partition that holds it, so the disk is seen to hold `/` and is refused as a target.
    #[test]
    fn an_apfs_container_is_under_the_partition_it_lies_on() {
        let disks = listed();
        let internal = &disks[0];
        let store = &internal.partitions[1];
        assert_eq!(store.path, Path::new("/dev/disk0s2"));
        assert_eq!(store.partitions.len(), 1);
        let container = &store.partitions[0];
        assert_eq!(container.path, Path::new("/dev/disk3"));
        let volumes: Vec<_> = container
            .partitions
            .iter()
            .map(|v| v.label.clone())
            .collect();
        assert_eq!(volumes, [Some("Macintosh HD".into()), Some("Data".into())]);
        assert_eq!(container.partitions[0].file_system.as_deref(), Some("APFS"));
        assert!(internal.mounted_at().contains(&Path::new("/")));
        assert!(!disks[1].mounted_at().contains(&Path::new("/")));
    }

    #[test]
    fn hfs_is_mac_os_extended_and_cd9660_iso_9660() {
        let info = |fs: &str| Info {
            filesystem_type: Some(fs.into()),
            ..Info::default()
        };
        let entry = || Entry {
            device_identifier: "disk5".into(),
            size: 1,
            volume_name: None,
            mount_point: None,
            partitions: Vec::new(),
            apfs_volumes: Vec::new(),
            apfs_physical_stores: Vec::new(),
        };
        let named = |fs: &str| {
            let infos = HashMap::from([("disk5".to_string(), info(fs))]);
            device(entry(), true, &infos, &|_| String::new()).file_system
        };
        assert_eq!(named("hfs").as_deref(), Some("HFS+"));
        assert_eq!(named("cd9660").as_deref(), Some("ISO 9660"));
        assert_eq!(named("msdos").as_deref(), Some("FAT"));
    }

    #[test]
    fn an_answer_that_is_not_a_disk_list_is_a_clear_error() {
        let wrong = r#"<plist version="1.0"><dict><key>WholeDisks</key><array/></dict></plist>"#;
        let e = said::<Listed>(wrong.as_bytes(), "diskutil list -plist")
            .err()
            .unwrap();
        let said = e.to_string();
        assert!(said.contains("diskutil list -plist"), "{said}");
        assert!(said.contains("AllDisksAndPartitions"), "{said}");
    }
}
