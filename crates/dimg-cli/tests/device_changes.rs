//! Erase, Partition, Mount and Unmount, and First Aid, on loop devices standing in for disks
//! (root, as CI runs), through udisks2 (started here where no init started it): each result is
//! judged by the file system's own checker (fsck.exfat, fsck.fat, e2fsck, ntfsfix; dimg's for
//! HFS+), the partition tables by sgdisk and sfdisk, the mounts by the kernel's table; each
//! refusal leaves the device as it was. Only loop devices made here are ever written.

mod common;
use common::*;
use dimg_e2e::LoopDevice;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MIB: u64 = 1 << 20;

/// A disk for one test: a loop device over a sparse file, its volumes unmounted and the loop
/// device detached when dropped, whether the test passed or not. One test at a time has disks:
/// a mount namespace one makes holds the others' mounts while it lives.
struct Disk {
    device: LoopDevice,
    _dir: tempfile::TempDir,
    _turn: std::sync::MutexGuard<'static, ()>,
}

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Disk {
    fn new(size: u64) -> Disk {
        Disk::taking(size, TURN.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A second disk for a test that holds the turn already.
    fn also(&self, size: u64) -> Disk {
        static SPARE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        Disk::taking(size, SPARE.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn taking(size: u64, turn: std::sync::MutexGuard<'static, ()>) -> Disk {
        dimg_e2e::udisks();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("disk.img");
        fs::File::create(&file).unwrap().set_len(size).unwrap();
        let device = LoopDevice::attach(&file);
        // udisks2 is asked about it at once: it must know it first, as a desktop would.
        dimg_e2e::wait_until(
            "udisks2 to know the loop device",
            std::time::Duration::from_secs(20),
            || dimg_e2e::udisks_knows(&device.0),
        );
        Disk {
            device,
            _dir: dir,
            _turn: turn,
        }
    }

    fn path(&self) -> &Path {
        &self.device.0
    }

    fn partition(&self, n: u32) -> PathBuf {
        settle();
        self.device.partition(n)
    }

    /// Where its devices are mounted, by the kernel's table: (device, mount point).
    fn mounts(&self) -> Vec<(String, String)> {
        let prefix = s(self.path()).to_string();
        fs::read_to_string("/proc/mounts")
            .unwrap()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let ours = f[0] == prefix
                    || f[0]
                        .strip_prefix(&prefix)
                        .is_some_and(|rest| rest.starts_with('p'));
                ours.then(|| (f[0].to_string(), f[1].replace("\\040", " ")))
            })
            .collect()
    }

    /// An empty GPT written by sgdisk, once udisks2 has learnt of it (from udev, which sees
    /// the device closed after writing, and is told again of a change while udisks2 has not
    /// caught up, as a desktop's "rescan" tells it).
    fn empty_gpt(&self) {
        judge("sgdisk", &["-o", s(self.path())]);
        let object = format!(
            "/org/freedesktop/UDisks2/block_devices/{}",
            self.path().file_name().unwrap().to_string_lossy()
        );
        dimg_e2e::wait_until(
            "udisks2 to learn of the new GPT",
            std::time::Duration::from_secs(20),
            || {
                let o = Command::new("dbus-send")
                    .args([
                        "--system",
                        "--print-reply",
                        "--dest=org.freedesktop.UDisks2",
                        &object,
                    ])
                    .args(["org.freedesktop.DBus.Properties.Get"])
                    .args([
                        "string:org.freedesktop.UDisks2.PartitionTable",
                        "string:Type",
                    ])
                    .output()
                    .unwrap();
                let known = stdout(&o).contains("string \"gpt\"");
                if !known {
                    let _ = Command::new("udevadm")
                        .args(["trigger", "--action=change", "--settle", s(self.path())])
                        .status();
                }
                known
            },
        );
    }

    /// What is on the disk, not what its page cache remembers: writes through a partition's
    /// device (an unmount's superblock) reach the disk without the whole disk's cache knowing,
    /// and udev's probe after the unmount drops that cache at a moment of its own (a CI
    /// rehearsal saw the disk "change" under a refused command that never opened it).
    fn sha256(&self) -> String {
        let _ = Command::new("udevadm").arg("settle").status();
        let flushed = Command::new("blockdev")
            .arg("--flushbufs")
            .arg(self.path())
            .status()
            .unwrap();
        assert!(
            flushed.success(),
            "blockdev --flushbufs {}",
            self.path().display()
        );
        dimg_e2e::sha256sum(self.path())
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        for (_, point) in self.mounts() {
            let _ = Command::new("umount").arg(&point).status();
        }
    }
}

/// udev has probed every change (a new table, a new volume).
fn settle() {
    let _ = Command::new("udevadm")
        .args(["settle", "--timeout=10"])
        .status();
}

/// A program that judges dimg's work, which must succeed; what it printed.
fn judge(program: &str, args: &[&str]) -> String {
    let o = Command::new(program).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{program} {args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o) + &stderr(&o)
}

/// What blkid reads in `device` now, bypassing its cache: `TYPE`, `LABEL`.
fn blkid(device: &Path, tag: &str) -> String {
    settle();
    let o = Command::new("blkid")
        .args(["-p", "-o", "value", "-s", tag, s(device)])
        .output()
        .unwrap();
    stdout(&o).trim().to_string()
}

/// `dimg` run with `args`, which must succeed.
fn ok(args: &[&str]) -> Output {
    let o = dimg(args);
    assert!(o.status.success(), "dimg {args:?}: {}", stderr(&o));
    o
}

/// `dimg erase DEVICE -fs FS -name NAME -force` with `more` arguments, which must succeed;
/// its report.
fn erase(device: &Path, fs: &str, name: &str, more: &[&str]) -> Value {
    let mut args = vec![
        "erase",
        s(device),
        "-fs",
        fs,
        "-name",
        name,
        "-force",
        "--json",
    ];
    args.extend(more);
    serde_json::from_str(&stdout(&ok(&args))).unwrap()
}

/// `dimg partition DISK add -size SIZE -name NAME` with `more` arguments, which must succeed;
/// its report.
fn add(disk: &Path, size: &str, name: &str, more: &[&str]) -> Value {
    let mut args = vec![
        "partition",
        s(disk),
        "add",
        "-size",
        size,
        "-name",
        name,
        "--json",
    ];
    args.extend(more);
    serde_json::from_str(&stdout(&ok(&args))).unwrap()
}

/// `dimg` with `args` refused with exit status `code`, saying `why`, leaving `disk` as it was.
fn refused(disk: &Disk, args: &[&str], code: i32, why: &str) {
    let before = disk.sha256();
    let o = dimg(args);
    assert_eq!(o.status.code(), Some(code), "dimg {args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(why), "dimg {args:?}: {}", stderr(&o));
    assert_eq!(
        disk.sha256(),
        before,
        "dimg {args:?}: the disk is untouched"
    );
}

/// sgdisk's verdict on the disk's GPT: no problems.
fn gpt_clean(disk: &Path) {
    let said = judge("sgdisk", &["-v", s(disk)]);
    assert!(said.contains("No problems found"), "{said}");
}

/// The partitions sgdisk lists: (number, first sector, last sector, type code, name).
fn gpt_partitions(disk: &Path) -> Vec<(u32, u64, u64, String, String)> {
    let said = judge("sgdisk", &["-p", s(disk)]);
    said.lines()
        .skip_while(|l| !l.starts_with("Number"))
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[5].to_string(),
                f[6..].join(" "),
            )
        })
        .collect()
}

/// dimg's own First Aid on a device's volumes: clean, with the file system named.
fn first_aid_clean(device: &Path, file_system: &str) {
    let o = ok(&["verify", "-fs", s(device), "--json"]);
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let volumes = report["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1, "{report}");
    assert_eq!(volumes[0]["file_system"], file_system, "{report}");
    assert_eq!(volumes[0]["checked"], true, "{report}");
}

/// A whole disk erased with a GPT, then its partition erased in place to each file system:
/// each volume passes its own checker, carries its name as blkid reads it, and the partition's
/// type follows (sgdisk's codes); the GPT stays clean. Then First Aid finds a fault made in the
/// HFS+ volume on the device.
#[test]
fn erase_makes_each_file_system_as_its_own_checker_wants_it() {
    let disk = Disk::new(64 * MIB);
    let report = erase(disk.path(), "ExFAT", "Stick", &[]);
    let part = disk.partition(1);
    assert_eq!(report["volume"], s(&part), "{report}");
    assert_eq!(report["scheme"], "Gpt", "{report}");
    gpt_clean(disk.path());
    let parts = gpt_partitions(disk.path());
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[0].1, 2048, "the first MiB left to the map: {parts:?}");
    assert_eq!(parts[0].3, "0700", "{parts:?}");
    assert_eq!(parts[0].4, "Stick", "{parts:?}");
    judge("fsck.exfat", &["-n", s(&part)]);
    assert_eq!(blkid(&part, "TYPE"), "exfat");
    assert_eq!(blkid(&part, "LABEL"), "Stick");

    for (fs_name, blkid_type, label, code) in [
        ("MS-DOS", "vfat", "FROM DOS", "0700"),
        ("ext4", "ext4", "from ext4", "8300"),
        ("NTFS", "ntfs", "from NTFS", "0700"),
        ("JHFS+", "hfsplus", "from Mac", "AF00"),
        ("APFS", "apfs", "from APFS", "AF0A"),
        ("ExFAT", "exfat", "again", "0700"),
    ] {
        let name = match fs_name {
            "MS-DOS" => "from dos",
            _ => label,
        };
        erase(&part, fs_name, name, &[]);
        match blkid_type {
            "vfat" => judge("fsck.fat", &["-n", s(&part)]),
            "ext4" => judge("e2fsck", &["-fn", s(&part)]),
            "ntfs" => judge("ntfsfix", &["-n", s(&part)]),
            "exfat" => judge("fsck.exfat", &["-n", s(&part)]),
            "apfs" => {
                judge("apfsck", &["-cw", s(&part)]);
                // blkid names no APFS volume; libfsapfs does.
                let info = judge("fsapfsinfo", &[s(&part)]);
                assert!(info.contains(&format!("Name\t\t\t\t: {label}")), "{info}");
                info
            }
            _ => {
                first_aid_clean(&part, "HFS+");
                // An independent reader finds the volume and its name.
                judge("fshfsinfo", &[s(&part)])
            }
        };
        assert_eq!(blkid(&part, "TYPE"), blkid_type, "{fs_name}");
        if blkid_type != "apfs" {
            assert_eq!(blkid(&part, "LABEL"), label, "{fs_name}");
        }
        let parts = gpt_partitions(disk.path());
        assert_eq!(parts[0].3, code, "{fs_name}: {parts:?}");
        gpt_clean(disk.path());
    }

    // A fault First Aid must find, made in the HFS+ volume on the device: its count of free
    // blocks (the volume header, 1 KiB in, at 48) one off.
    erase(&part, "JHFS+", "Mac", &[]);
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&part)
        .unwrap();
    use std::os::unix::fs::FileExt;
    let mut free = [0u8; 4];
    file.read_exact_at(&mut free, 1024 + 48).unwrap();
    let wrong = u32::from_be_bytes(free) - 1;
    file.write_all_at(&wrong.to_be_bytes(), 1024 + 48).unwrap();
    file.sync_all().unwrap();
    drop(file);
    let o = dimg(&["verify", "-fs", s(&part)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("its volumes have problems (1)"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let o = dimg(&["verify", "-fs", "-repair", s(&part)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("repairs only those in images"),
        "{}",
        stderr(&o)
    );
}

/// Whole disks erased with each scheme: GPT around Mac OS Extended (sgdisk agrees, First Aid
/// clean); MBR around FAT (sfdisk's dump shows the one partition of type c, fsck.fat clean);
/// APM around HFS+ (dimg's partition writer; First Aid clean, the map as dimg reads it); no map
/// around ext4 (e2fsck clean on the disk itself, and sfdisk finds no table).
#[test]
fn erase_writes_each_partition_scheme() {
    let disk = Disk::new(48 * MIB);
    erase(disk.path(), "JHFS+", "Mac Disk", &["-scheme", "GPT"]);
    gpt_clean(disk.path());
    let parts = gpt_partitions(disk.path());
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(
        (parts[0].3.as_str(), parts[0].4.as_str()),
        ("AF00", "Mac Disk")
    );
    let part = disk.partition(1);
    first_aid_clean(&part, "HFS+");
    assert_eq!(blkid(&part, "LABEL"), "Mac Disk");

    erase(disk.path(), "FAT", "dos", &["-scheme", "MBR"]);
    let dump = judge("sfdisk", &["-d", s(disk.path())]);
    assert!(dump.contains("label: dos"), "{dump}");
    let rows: Vec<&str> = dump.lines().filter(|l| l.contains(" : start=")).collect();
    assert_eq!(rows.len(), 1, "{dump}");
    assert!(
        rows[0].contains("start=        2048") && rows[0].contains("type=c"),
        "{dump}"
    );
    let part = disk.partition(1);
    judge("fsck.fat", &["-n", s(&part)]);
    assert_eq!(blkid(&part, "LABEL"), "DOS");

    erase(disk.path(), "HFS+", "Classic", &["-scheme", "APM"]);
    let o = ok(&["info", s(disk.path()), "--json"]);
    let info: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(info["partition_scheme"], "Apple partition map", "{info}");
    let o = ok(&["verify", "-fs", s(disk.path()), "--json"]);
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["volumes"][0]["file_system"], "HFS+", "{report}");
    // The kernel reads no GPT or MBR there any more.
    let o = Command::new("sfdisk")
        .args(["-d", s(disk.path())])
        .output()
        .unwrap();
    assert!(!stdout(&o).contains("label: dos") && !stdout(&o).contains("label: gpt"));

    erase(disk.path(), "ext4", "whole", &["-scheme", "NONE"]);
    judge("e2fsck", &["-fn", s(disk.path())]);
    assert_eq!(blkid(disk.path(), "TYPE"), "ext4");
    let o = Command::new("sfdisk")
        .args(["-d", s(disk.path())])
        .output()
        .unwrap();
    assert!(!o.status.success(), "no partition table: {}", stdout(&o));
}

/// A GPT disk partitioned by dimg: partitions added in the free space (one with an ExFAT
/// volume, one blank), grown and shrunk within it, the one holding a volume refused a shrink,
/// one too large refused, then both deleted; sgdisk agrees with each step and finds the table
/// clean.
#[test]
fn partitions_are_added_resized_and_deleted_on_gpt() {
    let disk = Disk::new(64 * MIB);
    disk.empty_gpt();
    let sectors = |bytes: u64| bytes / 512;
    let added = add(disk.path(), "16m", "One", &["-fs", "ExFAT"]);
    let one = disk.partition(1);
    assert_eq!(added["partition"], s(&one), "{added}");
    judge("fsck.exfat", &["-n", s(&one)]);
    assert_eq!(blkid(&one, "LABEL"), "One");
    add(disk.path(), "8m", "Two", &[]);
    let two = disk.partition(2);
    gpt_clean(disk.path());
    let parts = gpt_partitions(disk.path());
    let first = sectors(MIB);
    assert_eq!(
        parts
            .iter()
            .map(|p| (p.0, p.1, p.2, p.4.as_str()))
            .collect::<Vec<_>>(),
        [
            (1, first, first + sectors(16 * MIB) - 1, "One"),
            (
                2,
                first + sectors(16 * MIB),
                first + sectors(24 * MIB) - 1,
                "Two"
            ),
        ]
    );
    // The free space left, as sgdisk says the disk ends.
    let said = judge("sgdisk", &["-p", s(disk.path())]);
    let last_usable: u64 = said
        .split("last usable sector is ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    let end = (last_usable + 1) * 512;
    let free = (end - 25 * MIB) / MIB * MIB;
    refused(
        &disk,
        &["partition", s(disk.path()), "add", "-size", "100m"],
        1,
        &format!(
            "it has no free space of {} bytes: the largest is {free} bytes",
            100 * MIB
        ),
    );

    for mib in [20, 4] {
        ok(&["partition", s(&two), "resize", "-size", &format!("{mib}m")]);
        gpt_clean(disk.path());
        let parts = gpt_partitions(disk.path());
        assert_eq!(
            (parts[1].1, parts[1].2),
            (
                first + sectors(16 * MIB),
                first + sectors((16 + mib) * MIB) - 1
            ),
            "resized to {mib} MiB: {parts:?}"
        );
    }
    refused(
        &disk,
        &["partition", s(&one), "resize", "-size", "8m"],
        1,
        "which would be cut short",
    );
    refused(
        &disk,
        &["partition", s(&two), "resize", "-size", "100m"],
        1,
        &format!(
            "there is room for {} bytes at most",
            (end - 17 * MIB) / MIB * MIB
        ),
    );
    judge("fsck.exfat", &["-n", s(&one)]);

    ok(&["partition", s(&two), "delete", "-force"]);
    gpt_clean(disk.path());
    assert_eq!(gpt_partitions(disk.path()).len(), 1);
    ok(&["partition", s(&one), "delete", "-force"]);
    gpt_clean(disk.path());
    assert!(gpt_partitions(disk.path()).is_empty());
    settle();
    assert!(!one.exists(), "the kernel dropped the partition");
}

/// Volumes mounted and unmounted through udisks2: a partition by its device, where udisks2
/// chose (the kernel's table agrees); unmounted by its mount point; a disk's every volume at
/// once; a second mount refused.
#[test]
fn volumes_mount_and_unmount_through_udisks2() {
    let disk = Disk::new(64 * MIB);
    disk.empty_gpt();
    for name in ["first", "second"] {
        add(disk.path(), "16m", name, &["-fs", "ext4"]);
    }
    let one = disk.partition(1);
    let o = ok(&["mount", s(&one), "--json"]);
    let mounted: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let point = mounted[0]["mount_point"].as_str().unwrap().to_string();
    assert_eq!(disk.mounts(), [(s(&one).to_string(), point.clone())]);
    assert!(Path::new(&point).join("lost+found").is_dir());
    let o = dimg(&["mount", s(&one)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("it is mounted already, at {point}")),
        "{}",
        stderr(&o)
    );
    let o = ok(&["unmount", &point]);
    assert!(
        stdout(&o).contains(&format!("unmounted from {point}")),
        "{}",
        stdout(&o)
    );
    assert!(disk.mounts().is_empty(), "{:?}", disk.mounts());

    let o = ok(&["mount", s(disk.path()), "--json"]);
    let mounted: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(mounted.len(), 2, "{mounted:?}");
    let mut kernel = disk.mounts();
    kernel.sort();
    let mut said: Vec<(String, String)> = mounted
        .iter()
        .map(|m| {
            (
                m["device"].as_str().unwrap().to_string(),
                m["mount_point"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    said.sort();
    assert_eq!(kernel, said);
    ok(&["unmount", s(disk.path())]);
    assert!(disk.mounts().is_empty(), "{:?}", disk.mounts());
    let o = dimg(&["unmount", s(&one)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("it is not mounted"), "{}", stderr(&o));
}

/// Each refusal, in a sentence, with the disk untouched: a mounted volume (erase, delete, and
/// its disk's erase); an unknown file system; a disk too small; a scheme for a
/// partition; APM around anything but Mac OS Extended and APFS; no -force without a terminal.
#[test]
fn erase_and_partition_refuse_what_they_must() {
    let disk = Disk::new(64 * MIB);
    erase(disk.path(), "ext4", "busy", &[]);
    let part = disk.partition(1);
    let point = tempfile::tempdir().unwrap();
    judge("mount", &[s(&part), s(point.path())]);
    let mounted = format!(
        "it is mounted at {}: eject it first",
        point.path().display()
    );
    refused(
        &disk,
        &["erase", s(&part), "-fs", "ExFAT", "-force"],
        1,
        &mounted,
    );
    refused(
        &disk,
        &["erase", s(disk.path()), "-fs", "ExFAT", "-force"],
        1,
        &mounted,
    );
    refused(
        &disk,
        &["partition", s(&part), "delete", "-force"],
        1,
        &mounted,
    );
    refused(
        &disk,
        &["partition", s(&part), "resize", "-size", "32m"],
        1,
        &mounted,
    );
    judge("umount", &[s(point.path())]);

    refused(
        &disk,
        &["erase", s(disk.path()), "-fs", "ZFS", "-force"],
        2,
        "unknown file system ZFS",
    );
    refused(
        &disk,
        &[
            "erase",
            s(&part),
            "-fs",
            "ExFAT",
            "-scheme",
            "MBR",
            "-force",
        ],
        1,
        "it is a partition, which takes no partition scheme",
    );
    refused(
        &disk,
        &[
            "erase",
            s(disk.path()),
            "-fs",
            "ExFAT",
            "-scheme",
            "APM",
            "-force",
        ],
        1,
        "dimg writes an Apple partition map only around a Mac OS Extended or APFS volume, not \
         ExFAT",
    );
    let o = Command::new(env!("CARGO_BIN_EXE_dimg"))
        .args(["erase", s(disk.path()), "-fs", "ExFAT"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("give -force to erase it without asking"),
        "{}",
        stderr(&o)
    );
    judge("e2fsck", &["-fn", s(&part)]);

    let small = disk.also(2 * MIB);
    refused(
        &small,
        &[
            "erase",
            s(small.path()),
            "-fs",
            "ExFAT",
            "-scheme",
            "NONE",
            "-force",
        ],
        1,
        &format!("it is {} bytes, too small for an ExFAT volume", 2 * MIB),
    );
    refused(
        &small,
        &["erase", s(small.path()), "-fs", "JHFS+", "-force"],
        1,
        "too small for a",
    );
}

/// The running system's disk, as a process sees it: here a loop disk whose first partition is
/// mounted at `/` in a mount namespace and chroot of its own (the rest of the machine bound in
/// beneath it, so that dimg, lsblk and udisks2 are all there). Erasing the disk, erasing its
/// other partition, and partitioning it are refused, naming why; nothing is written.
#[test]
fn the_running_systems_disk_is_refused() {
    let disk = Disk::new(64 * MIB);
    let layout = "label: gpt\nstart=2048, size=32768\nstart=34816, size=16384\n";
    let o = dimg_e2e::run_with_input(
        Path::new("sfdisk"),
        &["--quiet", s(disk.path())],
        layout.as_bytes(),
    );
    assert!(o.status.success(), "sfdisk: {}", stderr(&o));
    judge("partx", &["-u", s(disk.path())]);
    settle();
    let root = disk.partition(1);
    let other = disk.partition(2);
    judge("mkfs.ext4", &["-q", "-F", s(&root)]);
    let dimg_dir = Path::new(env!("CARGO_BIN_EXE_dimg")).parent().unwrap();
    // In a namespace of its own: the partition mounted, the system's folders bound beneath it
    // (Debian's /bin, /lib, /sbin are links into /usr), then dimg run chrooted into it.
    let skeleton = r#"
set -e
new=$(mktemp -d)
mount "$ROOT" "$new"
mkdir -p "$new/usr" "$new/etc" "$new/proc" "$new/sys" "$new/dev" "$new/run" "$new/tmp" "$new$DIMG_DIR"
for l in bin sbin lib lib64; do if [ -e "/$l" ]; then ln -s "usr/$l" "$new/$l"; fi; done
umount "$new"
rmdir "$new"
"#;
    let o = Command::new("sh")
        .args(["-c", skeleton])
        .env("ROOT", &root)
        .env("DIMG_DIR", dimg_dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Mounted read-only, so that only dimg could change the disk.
    let script = r#"
set -e
new=$(mktemp -d)
mount --make-rprivate /
# Other mounts of the machine, copied into this namespace, are let go at once.
findmnt -rn -o TARGET | grep -E '^/(tmp|media|mnt|run/media)/' | sort -r | while read -r m; do umount -l "$m" || true; done
mount -o ro,noload "$ROOT" "$new"
for d in usr etc proc sys dev run tmp; do mount --rbind "/$d" "$new/$d"; done
mount --bind "$DIMG_DIR" "$new$DIMG_DIR"
exec chroot "$new" "$DIMG_DIR/dimg" "$@"
"#;
    let in_system = |args: &[&str]| {
        let before = disk.sha256();
        let o = Command::new("unshare")
            .args(["--mount", "--", "sh", "-c", script, "sh"])
            .args(args)
            .env("ROOT", &root)
            .env("DIMG_DIR", dimg_dir)
            .output()
            .unwrap();
        assert_eq!(
            disk.sha256(),
            before,
            "dimg {args:?}: the disk is untouched"
        );
        o
    };
    let o = in_system(&["erase", s(disk.path()), "-fs", "ExFAT", "-force"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{}: it holds the running system",
            disk.path().display()
        )),
        "{}",
        stderr(&o)
    );
    let on_it = format!(
        "it is on the disk that holds the running system ({})",
        disk.path().display()
    );
    for args in [
        &["erase", s(&other), "-fs", "ExFAT", "-force"][..],
        &["partition", s(&other), "delete", "-force"][..],
        &["partition", s(&other), "resize", "-size", "4m"][..],
    ] {
        let o = in_system(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&on_it), "{args:?}: {}", stderr(&o));
    }
    // Outside that namespace the same disk is no system's: the same erase goes ahead.
    erase(&other, "ExFAT", "Untitled", &[]);
    judge("fsck.exfat", &["-n", s(&other)]);
}
