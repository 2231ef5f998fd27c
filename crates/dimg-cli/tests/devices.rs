//! The machine's disks, with loop devices standing in for them (root, as CI runs): `dimg list`,
//! `dimg create -srcdevice` of a disk, a partition and a mount point, and `dimg restore` with its
//! refusals and its cancel. The devices' bytes are judged by `sha256sum` reading them directly.

mod common;
use common::*;
use dimg_e2e::LoopDevice;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount, unmounted when dropped.
struct Mounted(PathBuf);

impl Mounted {
    fn new(device: &Path, at: &Path, options: &str) -> Mounted {
        fs::create_dir_all(at).unwrap();
        let o = Command::new("mount")
            .args(["-o", options, s(device), s(at)])
            .output()
            .unwrap();
        assert!(o.status.success(), "mount: {}", stderr(&o));
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn sha256_of(path: &Path) -> String {
    dimg_e2e::sha256sum(path)
}

/// A file of `len` bytes, all a hole.
fn sparse_file(path: &Path, len: u64) {
    fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// An ext4 file system in a file (made by mke2fs, which Debian always has), `mib` MiB.
fn ext4_file(path: &Path, mib: u64) {
    sparse_file(path, mib << 20);
    peer("mkfs.ext4", &["-q", "-F", s(path)]);
}

/// A 64 MiB disk with a GPT and one FAT32 volume holding `files`, as dimg creates it raw.
fn gpt_fat_disk(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir_all(src.join("folder")).unwrap();
    fs::write(src.join("hello.txt"), b"from a loop device\n").unwrap();
    fs::write(src.join("folder/noise.bin"), noise(300_000, 3)).unwrap();
    let disk = dir.join("disk.cdr");
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(&src),
        "-size",
        "64m",
        "-fs",
        "FAT32",
        "-volname",
        "LOOPED",
        "-layout",
        "GPTSPUD",
        "-format",
        "UDTO",
        s(&disk),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    disk
}

#[test]
fn list_shows_attached_loop_devices_with_their_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let device = LoopDevice::attach(&gpt_fat_disk(dir.path()));
    let listed: Vec<Value> = serde_json::from_str(&stdout(&dimg(&["list", "--json"]))).unwrap();
    let ours = listed
        .iter()
        .find(|d| d["path"] == s(&device.0))
        .unwrap_or_else(|| panic!("{} not listed: {listed:?}", device.0.display()));
    assert_eq!(ours["kind"], "loop");
    assert_eq!(ours["size"], 64 << 20);
    let parts = ours["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 1, "{ours}");
    assert_eq!(parts[0]["path"], s(&device.partition(1)));
    assert_eq!(parts[0]["file_system"], "FAT");
    let text = stdout(&dimg(&["list"]));
    assert!(
        text.contains(&format!("{} ", device.partition(1).display())),
        "{text}"
    );
}

/// A whole disk into every output format that takes any disk: each decodes to the device's
/// bytes and lists its files; one partition likewise; and the device behind a mount point,
/// with the warning that a file system in use may change under the copy.
#[test]
fn devices_image_into_every_format_as_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let device = LoopDevice::attach(&gpt_fat_disk(dir.path()));
    let whole = sha256_of(&device.0);
    for (format, name) in [
        ("UDZO", "d.dmg"),
        ("UDBZ", "bz.dmg"),
        ("ULFO", "lf.dmg"),
        ("ULMO", "lm.dmg"),
        ("UDCO", "adc.dmg"),
        ("UDRO", "ro.dmg"),
        ("UDRW", "rw.dmg"),
        ("UDTO", "t.cdr"),
        ("UDSP", "s.sparseimage"),
        ("UDSB", "b.sparsebundle"),
    ] {
        let image = dir.path().join(name);
        let o = dimg(&[
            "create",
            "-srcdevice",
            s(&device.0),
            "-format",
            format,
            s(&image),
        ]);
        assert!(o.status.success(), "{format}: {}", stderr(&o));
        let verified: Value =
            serde_json::from_str(&stdout(&dimg(&["verify", s(&image), "--json"]))).unwrap();
        assert_eq!(verified["sha256"], whole, "{format}: the device's bytes");
        let listed = stdout(&dimg(&["ls", "-R", s(&image)]));
        assert!(
            listed.contains("hello.txt") && listed.contains("folder/noise.bin"),
            "{format}: {listed}"
        );
    }
    let partition = device.partition(1);
    let image = dir.path().join("part.dmg");
    let o = dimg(&["create", "-srcdevice", s(&partition), s(&image)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let verified: Value =
        serde_json::from_str(&stdout(&dimg(&["verify", s(&image), "--json"]))).unwrap();
    assert_eq!(verified["sha256"], sha256_of(&partition));
    assert!(stdout(&dimg(&["ls", s(&image)])).contains("hello.txt"));

    let ext4 = dir.path().join("ext4.img");
    ext4_file(&ext4, 16);
    let mounted_device = LoopDevice::attach(&ext4);
    let mount = Mounted::new(&mounted_device.0, &dir.path().join("mnt"), "ro");
    let image = dir.path().join("mounted.dmg");
    let o = dimg(&["create", "-srcdevice", s(&mount.0), s(&image)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{} is mounted at {}: the copy of a file system in use may be inconsistent",
            mounted_device.0.display(),
            mount.0.display()
        )),
        "{}",
        stderr(&o)
    );
    let verified: Value =
        serde_json::from_str(&stdout(&dimg(&["verify", s(&image), "--json"]))).unwrap();
    assert_eq!(verified["sha256"], sha256_of(&mounted_device.0));
    let o = dimg(&[
        "create",
        "-srcdevice",
        s(dir.path()),
        s(&dir.path().join("no.dmg")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("neither a disk nor the mount point of one"),
        "{}",
        stderr(&o)
    );
}

/// A corpus DMG restored onto a loop device: the device then begins with exactly the disk
/// `dimg verify` hashes. Then each refusal, named in a sentence, leaving the device as it was.
#[test]
fn restore_writes_the_disk_reads_it_back_and_refuses_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let image = dimg_e2e::corpus().join("dmg/dmgwiz-zlib.dmg");
    let verified: Value =
        serde_json::from_str(&stdout(&dimg(&["verify", s(&image), "--json"]))).unwrap();
    let disk_size = verified["bytes"].as_u64().unwrap();
    let backing = dir.path().join("target.img");
    sparse_file(&backing, disk_size + (4 << 20));
    let target = LoopDevice::attach(&backing);
    let o = dimg(&["restore", s(&image), "-target", s(&target.0), "-force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("read back from the device: identical"),
        "{}",
        stdout(&o)
    );
    let written = fs::read(&target.0).unwrap();
    assert_eq!(
        dimg_e2e::sha256_bytes(&written[..disk_size as usize]),
        verified["sha256"],
        "the device holds the image's disk"
    );

    let refused = |target: &Path, why: &str| {
        let before = sha256_of(target);
        let o = dimg(&["restore", s(&image), "-target", s(target), "-force"]);
        assert_eq!(o.status.code(), Some(1), "{why}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
        assert_eq!(sha256_of(target), before, "{why}: the device is untouched");
    };
    let small_file = dir.path().join("small.img");
    sparse_file(&small_file, 4 << 20);
    let small = LoopDevice::attach(&small_file);
    refused(
        &small.0,
        &format!("the image's disk is {disk_size} bytes, more than its 4194304 bytes"),
    );

    let ext4 = dir.path().join("ext4.img");
    ext4_file(&ext4, 32);
    let busy = LoopDevice::attach(&ext4);
    let mount = Mounted::new(&busy.0, &dir.path().join("mnt"), "rw");
    refused(
        &busy.0,
        &format!("it is mounted at {}: eject it first", mount.0.display()),
    );
    // The image stored on the very disk it would overwrite.
    let inside = mount.0.join("inside.dmg");
    fs::copy(&image, &inside).unwrap();
    let o = dimg(&["restore", s(&inside), "-target", s(&busy.0), "-force"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!(
            "the image itself is stored on it ({})",
            busy.0.display()
        )),
        "{}",
        stderr(&o)
    );
    drop(mount);

    // Without -force a non-terminal standard input cannot confirm.
    let o = Command::new(env!("CARGO_BIN_EXE_dimg"))
        .args(["restore", s(&image), "-target", s(&target.0)])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("give -force to overwrite it without asking"),
        "{}",
        stderr(&o)
    );
    // A file is not a disk.
    let o = dimg(&["restore", s(&image), "-target", s(&backing), "-force"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(s(&backing)), "{}", stderr(&o));
}

/// Ctrl-C during a restore stops it at the next block and says plainly how much was written and
/// that the disk cannot be used as it is.
#[test]
fn a_cancelled_restore_says_how_much_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    // 2 GiB of zeros (sparse), far more than can be written before the signal.
    let image = dir.path().join("big.img");
    sparse_file(&image, 2 << 30);
    let backing = dir.path().join("target.img");
    sparse_file(&backing, 2 << 30);
    let target = LoopDevice::attach(&backing);
    let child = Command::new(env!("CARGO_BIN_EXE_dimg"))
        .args(["restore", s(&image), "-target", s(&target.0), "-force"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let said = stderr(&o);
    let written: u64 = said
        .split("cancelled after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(written < 2 << 30, "{said}");
    assert!(
        said.contains("the disk now holds part of the image and cannot be used until it is restored or erased"),
        "{said}"
    );
}

/// A disk `dimg attach -nomount` serves (its mount point and server), detached when dropped:
/// once nothing holds it (a loop device lets go of its file a moment after `losetup -d`), and
/// then the server is waited for, so that no test after this one meets it still working.
struct Served {
    point: PathBuf,
    pid: u32,
}

impl Drop for Served {
    fn drop(&mut self) {
        for _ in 0..100 {
            if dimg(&["detach", s(&self.point)]).status.success() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = dimg(&["detach", s(&self.point), "-force"]);
        let alive = || {
            Path::new(&format!("/proc/{}/status", self.pid)).exists()
                && !fs::read_to_string(format!("/proc/{}/status", self.pid))
                    .unwrap_or_default()
                    .contains("State:\tZ")
        };
        for _ in 0..100 {
            if !alive() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Unreadable sectors: a loop device over a file on a FUSE file system that answers EIO at a
/// chosen offset (dimg's own server, `attach -nomount`, serving the disk of a UDZO damaged in
/// one chunk). Imaging it stops with a clear error and writes nothing; with -skip-unreadable
/// the copy has zeros exactly where the device could not be read, the rest is the disk, and
/// the report lists the ranges.
#[test]
fn unreadable_sectors_stop_the_copy_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("big.txt"), compressible(12 << 20)).unwrap();
    let image = dir.path().join("damaged.dmg");
    create_hfs_image(&src, "UDZO", &image);
    let disk = decoded(&image, None);
    damage_middle(&image);

    let point = dir.path().join("served");
    let o = dimg(&[
        "attach",
        s(&image),
        "-nomount",
        "-mountpoint",
        s(&point),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let attached: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let served = Served {
        point: point.clone(),
        pid: attached["pid"].as_u64().unwrap() as u32,
    };
    let failing = LoopDevice::attach(&point.join("disk"));

    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let copy = out.join("copy.dmg");
    let o = dimg(&["create", "-srcdevice", s(&failing.0), s(&copy)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let said = stderr(&o);
    assert!(
        said.contains(s(&failing.0)) && said.contains("Input/output error"),
        "{said}"
    );
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0, "nothing written");

    let o = dimg(&[
        "create",
        "-srcdevice",
        s(&failing.0),
        "-skip-unreadable",
        s(&copy),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let ranges: Vec<(usize, usize)> = report["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_u64().unwrap() as usize,
                r[1].as_u64().unwrap() as usize,
            )
        })
        .collect();
    let lost: usize = ranges.iter().map(|r| r.1).sum();
    assert!(
        lost > 0 && lost <= 2 << 20,
        "one damaged chunk's sectors: {ranges:?}"
    );
    let notes = report["notes"].as_array().unwrap();
    assert_eq!(notes.len(), ranges.len(), "{notes:?}");
    let mut expected = disk;
    for &(at, len) in &ranges {
        expected[at..at + len].fill(0);
    }
    assert!(
        decoded(&copy, None) == expected,
        "the disk, with zeros where it could not be read"
    );
    drop(failing);
    drop(served);
}
