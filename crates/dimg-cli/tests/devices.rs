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
        // The mount's own writes (the superblock's mount time, the journal's first commit, due
        // within 5 s) made now, not between a test's two hashes of the device.
        let synced = Command::new("sync").args(["-f", s(at)]).status().unwrap();
        assert!(synced.success());
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// What dimg said after Ctrl-C (SIGINT) stopped it, which it must answer with exit status 130.
fn interrupted(child: std::process::Child) -> std::process::Output {
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    o
}

fn sha256_of(path: &Path) -> String {
    dimg_e2e::sha256sum(path)
}

/// What `dimg verify` says of the disk in `image`: its `bytes` and `sha256`.
fn verified(image: &Path) -> Value {
    serde_json::from_str(&stdout(&dimg(&["verify", s(image), "--json"]))).unwrap()
}

/// A file of `len` bytes, all a hole.
fn sparse_file(path: &Path, len: u64) {
    fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// An ext4 file system in a file (made by mke2fs, which Debian always has), `mib` MiB. Its inode
/// tables and journal are written now: else the kernel zeroes them in the background once it is
/// mounted, and a mounted device changes under a test that checks nothing changed it.
fn ext4_file(path: &Path, mib: u64) {
    sparse_file(path, mib << 20);
    peer(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-E",
            "lazy_itable_init=0,lazy_journal_init=0",
            s(path),
        ],
    );
}

/// A volume alone (no partition map) of `file_system`, holding `files`, as dimg creates it raw.
fn raw_volume(dir: &Path, file_system: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let src = dir.join(format!("src-{file_system}"));
    for (name, bytes) in files {
        let path = src.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
    let volume = dir.join(format!("{file_system}.cdr"));
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(&src),
        "-size",
        "24m",
        "-fs",
        file_system,
        "-volname",
        file_system,
        "-layout",
        "NONE",
        "-format",
        "UDTO",
        s(&volume),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    fs::read(volume).unwrap()
}

/// A disk with a GPT (written by util-linux's sfdisk) holding a FAT volume and an HFS+ volume,
/// each with its files, as a stick formatted on two machines might be.
fn gpt_disk(dir: &Path) -> PathBuf {
    let noise = noise(300_000, 3);
    let fat = raw_volume(
        dir,
        "FAT",
        &[
            ("hello.txt", b"from a loop device\n"),
            ("folder/noise.bin", &noise),
        ],
    );
    let hfs = raw_volume(dir, "HFS+", &[("mac.txt", b"from the HFS+ side\n")]);
    let disk = dir.join("disk.img");
    let sectors = |v: &[u8]| v.len() as u64 / 512;
    let fat_at = 2048;
    let hfs_at = fat_at + sectors(&fat);
    sparse_file(&disk, (hfs_at + sectors(&hfs) + 2048) * 512);
    let layout = format!(
        "label: gpt\n\
         start={fat_at}, size={}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n\
         start={hfs_at}, size={}, type=48465300-0000-11AA-AA11-00306543ECAC\n",
        sectors(&fat),
        sectors(&hfs)
    );
    let o = dimg_e2e::run_with_input(
        Path::new("sfdisk"),
        &["--quiet", s(&disk)],
        layout.as_bytes(),
    );
    assert!(o.status.success(), "sfdisk: {}", stderr(&o));
    let file = fs::OpenOptions::new().write(true).open(&disk).unwrap();
    use std::os::unix::fs::FileExt;
    file.write_all_at(&fat, fat_at * 512).unwrap();
    file.write_all_at(&hfs, hfs_at * 512).unwrap();
    disk
}

/// The facts of `device` in `dimg list --json`, run with `env`.
fn listed(device: &Path, env: &[(&str, &str)]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_dimg"))
        .args(["list", "--json"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let all: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    all.into_iter()
        .find(|d| d["path"] == s(device))
        .unwrap_or_else(|| panic!("{} not listed: {}", device.display(), stdout(&o)))
}

/// `dimg list` from udisks2 (started as a desktop has it), and from lsblk where no udisks2
/// answers (a bus address that leads nowhere): the attached loop device, its size and both
/// partitions with their file systems, the same from either.
#[test]
fn list_shows_attached_loop_devices_with_their_partitions() {
    dimg_e2e::udisks();
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path());
    let device = LoopDevice::attach(&disk);
    let ours = listed(&device.0, &[]);
    assert_eq!(ours["kind"], "loop");
    assert_eq!(ours["size"], fs::metadata(&disk).unwrap().len());
    let parts = ours["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{ours}");
    assert_eq!(parts[0]["path"], s(&device.partition(1)));
    assert_eq!(parts[0]["file_system"], "FAT");
    assert_eq!(parts[1]["path"], s(&device.partition(2)));
    assert_eq!(parts[1]["file_system"], "HFS+");
    let without_udisks = listed(
        &device.0,
        &[(
            "DBUS_SYSTEM_BUS_ADDRESS",
            "unix:path=/nonexistent/dimg-test",
        )],
    );
    assert_eq!(without_udisks, ours, "lsblk and udisks2 agree");
    let text = stdout(&dimg(&["list"]));
    assert!(
        text.contains(&format!("{} ", device.partition(2).display())),
        "{text}"
    );
}

/// A loop device used the moment `losetup` hands it over, as a user does (`losetup -f --show
/// disk.img`, then a restore onto it), while udisks2 knows another disk, as on any desktop: udev
/// and udisks2 learn of a device a moment after the kernel has it, but it is a disk already,
/// written by `dimg restore -force` and shown by `dimg list`, every time.
#[test]
fn a_loop_device_is_a_disk_the_moment_it_is_attached() {
    dimg_e2e::udisks();
    let dir = tempfile::tempdir().unwrap();
    let known_file = dir.path().join("known.img");
    sparse_file(&known_file, 1 << 20);
    let known = LoopDevice::attach(&known_file);
    dimg_e2e::wait_until(
        "udisks2 to know the first loop device",
        std::time::Duration::from_secs(20),
        || dimg_e2e::udisks_knows(&known.0),
    );
    let image = dimg_e2e::corpus().join("dmg/dmgwiz-zlib.dmg");
    let disk_size = verified(&image)["bytes"].as_u64().unwrap();
    // Each a device never attached before in this test (all held to the end), so that nothing
    // udisks2 remembers of an earlier one stands in for it.
    let mut attached = Vec::new();
    for round in 0..6 {
        let backing = dir.path().join(format!("target-{round}.img"));
        sparse_file(&backing, disk_size + (4 << 20));
        let target = LoopDevice::just_attached(&backing);
        let o = dimg(&["restore", s(&image), "-target", s(&target.0), "-force"]);
        assert!(
            o.status.success(),
            "round {round}, restore onto {} at once: {}",
            target.0.display(),
            stderr(&o)
        );
        attached.push(target);

        let shown_file = dir.path().join(format!("shown-{round}.img"));
        sparse_file(&shown_file, 3 << 20);
        let shown = LoopDevice::just_attached(&shown_file);
        assert_eq!(listed(&shown.0, &[])["size"], 3 << 20, "round {round}");
        attached.push(shown);
    }
}

/// A whole disk into every output format that takes any disk: each decodes to the device's
/// bytes and lists its files; each partition likewise; what is behind a volume dimg mounted;
/// and the device behind a kernel mount point, with the warning that a file system in use may
/// change under the copy.
#[test]
fn devices_image_into_every_format_as_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path());
    let device = LoopDevice::attach(&disk);
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
        assert_eq!(
            verified(&image)["sha256"],
            whole,
            "{format}: the device's bytes"
        );
        let listed = stdout(&dimg(&["ls", "-R", s(&image)]));
        assert!(
            listed.contains("hello.txt") && listed.contains("folder/noise.bin"),
            "{format}: {listed}"
        );
        let listed = stdout(&dimg(&["ls", s(&image), "--volume", "2"]));
        assert!(listed.contains("mac.txt"), "{format}: {listed}");
    }
    for (n, file) in [(1, "hello.txt"), (2, "mac.txt")] {
        let partition = device.partition(n);
        let image = dir.path().join(format!("part{n}.dmg"));
        let o = dimg(&["create", "-srcdevice", s(&partition), s(&image)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(verified(&image)["sha256"], sha256_of(&partition));
        assert!(stdout(&dimg(&["ls", s(&image)])).contains(file));
    }

    // A volume dimg mounted (FUSE, no block device): behind it, its partition of the image.
    let fuse = dir.path().join("fuse");
    let o = dimg(&[
        "attach",
        s(&disk),
        "--volume",
        "2",
        "--mountpoint",
        s(&fuse),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let image = dir.path().join("fuse.dmg");
    let o = dimg(&["create", "-srcdevice", s(&fuse), s(&image)]);
    let detached = dimg(&["detach", s(&fuse)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(detached.status.success(), "{}", stderr(&detached));
    assert!(
        !stderr(&o).contains("may be inconsistent"),
        "{}",
        stderr(&o)
    );
    assert_eq!(verified(&image)["sha256"], sha256_of(&device.partition(2)));

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
    assert_eq!(verified(&image)["sha256"], sha256_of(&mounted_device.0));
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
    let verified = verified(&image);
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

    // A disk that ends on a whole sector but not a whole page: the tail goes through the page cache, the rest
    // bypasses it; both land, and the read-back compares them.
    let odd = dir.path().join("odd.img");
    let bytes = noise((1 << 20) + 1024, 7);
    fs::write(&odd, &bytes).unwrap();
    for verify in [true, false] {
        let mut args = vec!["restore", s(&odd), "-target", s(&target.0), "-force"];
        args.extend((!verify).then_some("-noverify"));
        let o = dimg(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).contains("SHA-256:"), verify, "{}", stdout(&o));
        let written = fs::read(&target.0).unwrap();
        assert_eq!(&written[..bytes.len()], &bytes[..]);
        fs::write(&target.0, vec![0u8; bytes.len()]).unwrap();
    }

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
    // 8 GiB of zeros (sparse), far more than can be written before the signal.
    let image = dir.path().join("big.img");
    sparse_file(&image, 8 << 30);
    let backing = dir.path().join("target.img");
    sparse_file(&backing, 8 << 30);
    let target = LoopDevice::attach(&backing);
    let child = Command::new(env!("CARGO_BIN_EXE_dimg"))
        .args(["restore", s(&image), "-target", s(&target.0), "-force"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = interrupted(child);
    let said = stderr(&o);
    let written: u64 = said
        .split("cancelled after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(written < 8 << 30, "{said}");
    assert!(
        said.contains("the disk now holds part of the image and cannot be used until it is restored or erased"),
        "{said}"
    );
}

/// While a device is imaged, dimg holds it exclusively: the kernel refuses to mount it. Ctrl-C
/// then stops the copy and leaves nothing behind.
#[test]
fn imaging_holds_the_device_and_a_cancel_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ext4 = dir.path().join("ext4.img");
    ext4_file(&ext4, 4096);
    let device = LoopDevice::attach(&ext4);
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let image = out.join("copy.dmg");
    let child = Command::new(env!("CARGO_BIN_EXE_dimg"))
        .args([
            "create",
            "-srcdevice",
            s(&device.0),
            "-format",
            "UDBZ",
            s(&image),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    dimg_e2e::wait_until(
        "dimg to open the device",
        std::time::Duration::from_secs(20),
        || {
            fs::read_dir(&fds)
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| fs::read_link(fd.path()).is_ok_and(|to| to == device.0))
        },
    );
    let point = dir.path().join("mnt");
    fs::create_dir(&point).unwrap();
    let mounted = Command::new("mount")
        .args(["-o", "ro", s(&device.0), s(&point)])
        .output()
        .unwrap();
    if mounted.status.success() {
        let _ = Command::new("umount").arg(&point).status();
    }
    assert!(!mounted.status.success(), "mounted while being imaged");
    assert!(stderr(&mounted).contains("busy"), "{}", stderr(&mounted));
    interrupted(child);
    assert_eq!(
        fs::read_dir(&out).unwrap().count(),
        0,
        "nothing left behind"
    );
}

/// A disk `dimg attach -nomount` serves (its mount point and server), detached when dropped:
/// once nothing holds it (a loop device lets go of its file a moment after `losetup -d`), and
/// then the server is waited for, so that no test after this one meets it still working.
struct Served {
    point: PathBuf,
    pid: u32,
}

impl Served {
    /// `image`'s disk served as files in `point`.
    fn attach(image: &Path, point: &Path) -> Served {
        let o = dimg(&[
            "attach",
            s(image),
            "-nomount",
            "-mountpoint",
            s(point),
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let attached: Value = serde_json::from_str(&stdout(&o)).unwrap();
        Served {
            point: point.to_path_buf(),
            pid: attached["pid"].as_u64().unwrap() as u32,
        }
    }
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
    let served = Served::attach(&image, &point);
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
    assert_eq!(notes.len(), ranges.len() + 1, "{notes:?}");
    // The same sectors in a GNU ddrescue mapfile beside the copy, as ddrescuelog reads it.
    let map = out.join("copy.dmg.map");
    assert!(
        notes.last().unwrap().as_str().unwrap().contains(s(&map)),
        "{notes:?}"
    );
    let listed = peer("ddrescuelog", &["--list-blocks=-/", s(&map)]);
    let sectors: Vec<usize> = listed.lines().map(|l| l.trim().parse().unwrap()).collect();
    let expected_sectors: Vec<usize> = ranges
        .iter()
        .flat_map(|&(at, len)| at / 512..(at + len) / 512)
        .collect();
    assert_eq!(sectors, expected_sectors);
    let finished = peer("ddrescuelog", &["--list-blocks=+", s(&map)]);
    assert_eq!(
        finished.lines().count() + sectors.len(),
        decoded(&copy, None).len() / 512,
        "every other sector read"
    );
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

/// A polkit rule granting one user udisks2's "open a device" actions (as an administrator
/// grants a group), taken away again when dropped.
struct PolkitGrant(PathBuf);

impl PolkitGrant {
    fn new(user: &str) -> PolkitGrant {
        let rule = PathBuf::from("/etc/polkit-1/rules.d/49-dimg-test.rules");
        fs::write(
            &rule,
            format!(
                "polkit.addRule(function(action, subject) {{\n  \
                 if (subject.user == \"{user}\" && \
                 action.id.indexOf(\"org.freedesktop.udisks2.open-device\") == 0)\n    \
                 return polkit.Result.YES;\n}});\n"
            ),
        )
        .unwrap();
        PolkitGrant(rule)
    }
}

impl Drop for PolkitGrant {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A user of the machine for the test, made if absent.
fn user(name: &str) -> &str {
    if !Command::new("id")
        .arg(name)
        .output()
        .unwrap()
        .status
        .success()
    {
        peer("useradd", &["--system", "--no-create-home", name]);
    }
    name
}

/// dimg run as `user` (runuser), from `dir`, where a copy of it is.
fn dimg_as(user: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", user, "--"])
        .arg(dir.join("dimg"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Without root: the device cannot be opened directly, so dimg goes through udisks2's
/// OpenForBackup (and OpenDevice with O_DIRECT for -skip-unreadable's retries) and
/// OpenForRestore, which polkit allows a user an administrator granted them to, and refuses
/// anyone else, which dimg says in a sentence.
#[test]
fn users_without_root_image_and_restore_through_udisks_and_polkit() {
    use std::os::unix::fs::PermissionsExt;
    dimg_e2e::udisks();
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    fs::copy(env!("CARGO_BIN_EXE_dimg"), shared.join("dimg")).unwrap();
    let image = dimg_e2e::corpus().join("dmg/dmgwiz-zlib.dmg");
    fs::copy(&image, shared.join("in.dmg")).unwrap();
    let device = LoopDevice::attach(&gpt_disk(dir.path()));
    let granted = user("dimg-polkit-test");
    let _grant = PolkitGrant::new(granted);

    // polkit reads a new rule within moments of it being written.
    let image_device = || {
        dimg_as(
            granted,
            &shared,
            &["create", "-srcdevice", s(&device.0), "out.dmg"],
        )
    };
    let mut o = image_device();
    let start = std::time::Instant::now();
    while !o.status.success() && start.elapsed() < std::time::Duration::from_secs(15) {
        std::thread::sleep(std::time::Duration::from_millis(200));
        o = image_device();
    }
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        verified(&shared.join("out.dmg"))["sha256"],
        sha256_of(&device.0),
        "the device's bytes"
    );
    let o = dimg_as(
        granted,
        &shared,
        &[
            "create",
            "-srcdevice",
            s(&device.partition(2)),
            "-skip-unreadable",
            "part.dmg",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        verified(&shared.join("part.dmg"))["sha256"],
        sha256_of(&device.partition(2))
    );
    // A mounted volume, which OpenForBackup refuses (it would hold it exclusively): read
    // through OpenDevice, shared, with the warning.
    let ext4 = dir.path().join("ext4.img");
    ext4_file(&ext4, 16);
    let mounted_device = LoopDevice::attach(&ext4);
    let mount = Mounted::new(&mounted_device.0, &dir.path().join("mnt"), "ro");
    let o = dimg_as(
        granted,
        &shared,
        &["create", "-srcdevice", s(&mounted_device.0), "mounted.dmg"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("may be inconsistent"), "{}", stderr(&o));
    assert_eq!(
        verified(&shared.join("mounted.dmg"))["sha256"],
        sha256_of(&mounted_device.0)
    );
    drop(mount);

    let o = dimg_as(
        granted,
        &shared,
        &["restore", "in.dmg", "-target", s(&device.0), "-force"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("read back from the device: identical"),
        "{}",
        stdout(&o)
    );
    let disk = verified(&image);
    let written = fs::read(&device.0).unwrap();
    let len = disk["bytes"].as_u64().unwrap() as usize;
    assert_eq!(dimg_e2e::sha256_bytes(&written[..len]), disk["sha256"]);

    // Anyone else: refused by polkit, said so, nothing written.
    let before = sha256_of(&device.0);
    for args in [
        &["create", "-srcdevice", s(&device.0), "no.dmg"][..],
        &["restore", "in.dmg", "-target", s(&device.0), "-force"][..],
    ] {
        let o = dimg_as("nobody", &shared, args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "{}: permission denied, and udisks2 would not open it either",
                device.0.display()
            )) && stderr(&o).contains("Not authorized"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!shared.join("no.dmg").exists());
    assert_eq!(sha256_of(&device.0), before);
}

/// A signal ends at once a command that writes nothing, even one stuck in a read that never
/// returns: here `dimg info` opening the disk of a FUSE server that was stopped (SIGSTOP), as a
/// hung network share would leave it; `timeout` (SIGTERM) must be able to end it. A job that
/// cancels cleanly cannot see the first signal while it is stuck so; a second ends it.
#[test]
fn a_signal_ends_a_stuck_read_only_command() {
    let dir = tempfile::tempdir().unwrap();
    let point = dir.path().join("served");
    let image = dimg_e2e::corpus().join("dmg/dmgwiz-zlib.dmg");
    let served = Served::attach(&image, &point);
    let signal = |name: &str, pid: u32| {
        let sent = Command::new("kill")
            .args([name, &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {name} {pid}");
    };
    // dimg with `args`, sent SIGTERM `times` times half a second apart: whether it was still
    // running before each, and how it ended (none: not within 10 s of the last).
    let signalled = |args: &[&str], times: usize| {
        let mut stuck = Command::new(env!("CARGO_BIN_EXE_dimg"))
            .args(args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut running = Vec::new();
        for _ in 0..times {
            std::thread::sleep(std::time::Duration::from_millis(500));
            running.push(stuck.try_wait().unwrap().is_none());
            signal("-TERM", stuck.id());
        }
        let start = std::time::Instant::now();
        let ended = loop {
            match stuck.try_wait().unwrap() {
                Some(status) => break status.code(),
                None if start.elapsed() > std::time::Duration::from_secs(10) => {
                    let _ = stuck.kill();
                    let _ = stuck.wait();
                    break None;
                }
                None => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        };
        (running, ended)
    };
    signal("-STOP", served.pid);
    // Every thread of the server stopped before a request is made: one still running could
    // take the request into the server, and the kernel then waits for its answer past any signal.
    let stopped = |pid: u32| {
        fs::read_dir(format!("/proc/{pid}/task")).unwrap().all(|t| {
            let stat = fs::read_to_string(t.unwrap().path().join("stat")).unwrap_or_default();
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
        })
    };
    let start = std::time::Instant::now();
    while !stopped(served.pid) {
        assert!(start.elapsed().as_secs() < 10, "the server does not stop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let disk = point.join("disk");
    let info = signalled(&["info", s(&disk)], 1);
    let out = dir.path().join("out.dmg");
    let convert = signalled(&["convert", s(&disk), "-format", "UDZO", "-o", s(&out)], 2);
    signal("-CONT", served.pid);
    assert_eq!(
        info,
        (vec![true], Some(130)),
        "info: waiting, then ended by SIGTERM"
    );
    assert_eq!(
        convert,
        (vec![true, true], Some(130)),
        "convert: still waiting after one SIGTERM, ended by the second"
    );
    assert!(!out.exists());
}
