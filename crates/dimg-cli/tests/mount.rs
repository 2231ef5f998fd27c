//! `dimg attach` / `detach` / `info` over real FUSE mounts (fusermount3 from Debian's fuse3):
//! what the corpus images hold, read back through the kernel, against their ground truth.

mod common;
mod sweep;

use common::{
    compressible, create_blank, create_hfs_image, damage_middle, dimg, dimg_stdin,
    folder_hard_link, s, stderr, stdout, video_cd,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// An attached image, detached (lazily, whatever state the test left it in) when dropped.
struct Attached {
    json: Value,
}

impl Attached {
    fn new(args: &[&str], passphrase: Option<&[u8]>) -> Result<Attached, String> {
        let mut all = vec!["attach"];
        all.extend_from_slice(args);
        all.push("--json");
        let o = match passphrase {
            Some(p) => {
                all.push("-stdinpass");
                dimg_stdin(&all, p)
            }
            None => dimg(&all),
        };
        match o.status.success() {
            true => Ok(Attached {
                json: serde_json::from_str(&stdout(&o)).expect("attach --json prints JSON"),
            }),
            false => Err(stderr(&o)),
        }
    }

    fn pid(&self) -> u32 {
        self.json["pid"].as_u64().unwrap() as u32
    }

    fn mount_points(&self) -> Vec<PathBuf> {
        let mounts = self.json["mounts"].as_array().unwrap();
        mounts
            .iter()
            .map(|m| PathBuf::from(m["mount_point"].as_str().unwrap()))
            .collect()
    }

    fn mount_point(&self) -> PathBuf {
        self.mount_points().remove(0)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        for point in self.mount_points() {
            let _ = Command::new("fusermount3")
                .args(["-u", "-z", s(&point)])
                .output();
        }
    }
}

fn mounted(point: &Path) -> bool {
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let wanted = s(point).replace(' ', "\\040");
    table
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
}

/// Waits for what another process does (fusermount3's auto-unmount, a server's exit): 30 s, as
/// a loaded 2-core machine has once taken more than 10 s for an auto-unmount.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file as listings name it: path, size, SHA-256.
type File = (String, u64, String);
/// A stream of a file or folder: the entry's path on the mount, the stream's name, size, SHA-256.
type Stream = (PathBuf, String, u64, String);

/// Every regular file under `root` but those named in `skip`: (path from root, size, SHA-256).
fn files(root: &Path, skip: &[String]) -> BTreeSet<(String, u64, String)> {
    common::walk(root)
        .into_iter()
        .filter(|p| fs::symlink_metadata(p).unwrap().is_file())
        .filter(|p| {
            !skip
                .iter()
                .any(|n| p.file_name().is_some_and(|f| f == n.as_str()))
        })
        .map(|p| {
            let data = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            (rel, data.len() as u64, sha256(&data))
        })
        .collect()
}

/// A ground-truth listing's rows (path inside the volume, size, SHA-256), without the files it
/// marks unverified. Listings that start every path with the volume's name (7-Zip's way), or
/// with one a reader made up ("Untitled") that the volume at `root` does not hold, lose that
/// component.
fn listing(path: &Path, label: &str, root: &Path) -> Vec<(String, u64, String)> {
    let text = fs::read_to_string(path).unwrap();
    let unverified = unverified(&text);
    let rows: Vec<(String, u64, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].parse().unwrap(), f[2].to_string())
        })
        .filter(|(p, _, _)| !unverified.iter().any(|u| p.ends_with(&format!("/{u}"))))
        .collect();
    let mut prefix = format!("{label}/");
    let first = rows
        .first()
        .and_then(|(p, _, _)| p.split_once('/'))
        .map(|(f, _)| format!("{f}/"));
    if let Some(shared) = first {
        if rows.iter().all(|(p, _, _)| p.starts_with(&shared)) && !root.join(&shared).exists() {
            prefix = shared;
        }
    }
    let all_prefixed = rows.iter().all(|(p, _, _)| p.starts_with(&prefix));
    rows.into_iter()
        .map(|(p, size, sha)| match all_prefixed {
            true => (p[prefix.len()..].to_string(), size, sha),
            false => (p, size, sha),
        })
        .collect()
}

/// The files a listing names on a line "# unverified: NAME...": no tool could confirm their
/// contents, so they are not read.
fn unverified(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|l| l.strip_prefix("# unverified:"))
        .flat_map(|l| l.split_whitespace().map(str::to_string))
        .collect()
}

/// Splits a listing into files and streams ("path:name", an extended attribute or resource
/// fork of a file or folder): a row is a stream when the mount has no file of that name but
/// has the entry before the last ':' (names such as "forward:slash" hold a ':' of their own).
fn files_and_streams(rows: Vec<File>, point: &Path) -> (BTreeSet<File>, Vec<Stream>) {
    let (mut files, mut streams) = (BTreeSet::new(), Vec::new());
    for (p, size, sha) in rows {
        match p.rsplit_once(':') {
            Some((entry, name)) if !point.join(&p).exists() && point.join(entry).exists() => {
                streams.push((point.join(entry), name.to_string(), size, sha))
            }
            _ => {
                files.insert((p, size, sha));
            }
        }
    }
    (files, streams)
}

/// The volumes the engine cannot browse yet (APFS, sparse bundles, classic HFS): their issues
/// bring them, and the mount serves them from then on.
fn browsable(t: &dimg_e2e::Truth) -> bool {
    let pass = t.passphrase.as_deref().unwrap_or_default();
    let o = dimg_stdin(&["ls", s(&t.path()), "-stdinpass"], pass.as_bytes());
    o.status.success()
}

#[test]
fn every_corpus_volume_with_a_listing_mounts_as_its_ground_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let mut served = 0;
    for t in dimg_e2e::truths() {
        let name = Path::new(&t.file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let list = dimg_e2e::corpus()
            .join("expected-files")
            .join(format!("{name}.tsv"));
        if !list.exists() {
            continue;
        }
        let point = tmp.path().join(&name);
        let passphrase = t.passphrase.as_deref().map(str::as_bytes);
        let attached = Attached::new(&[s(&t.path()), "-mountpoint", s(&point)], passphrase);
        if !browsable(&t) {
            // Not yet: a clean refusal that names the image, and nothing mounted.
            let why = attached.err().unwrap_or_else(|| panic!("{name}: attached"));
            assert!(
                why.contains(&t.file.replace("../", "")) || why.contains(&name),
                "{why}"
            );
            assert!(!mounted(&point) && !point.exists(), "{name}: left a mount");
            continue;
        }
        let attached = attached.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(attached.mount_point(), point);
        assert!(mounted(&point), "{name}: not in the mount table");
        let label = attached.json["mounts"][0]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let (want, streams) = files_and_streams(listing(&list, &label, &point), &point);
        let skip = unverified(&fs::read_to_string(&list).unwrap());
        assert_eq!(files(&point, &skip), want, "{name}: files");
        for (entry, stream, size, sha) in streams {
            let attribute = match stream.as_str() {
                "rsrc" => "user.com.apple.ResourceFork".to_string(),
                other => format!("user.{other}"),
            };
            let value = xattr::get(&entry, &attribute).unwrap().unwrap_or_default();
            assert_eq!(
                (value.len() as u64, sha256(&value)),
                (size, sha),
                "{name}: {attribute}"
            );
        }
        let o = dimg(&["detach", s(&t.path())]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(!mounted(&point), "{name}: still mounted after detach");
        assert!(
            !point.exists(),
            "{name}: the mount point attach made is left"
        );
        wait_for("the server to end", || {
            !Path::new(&format!("/proc/{}", attached.pid())).exists()
        });
        served += 1;
    }
    assert!(served >= 12, "only {served} corpus volumes were served");
}

#[test]
fn a_mounted_volume_is_what_the_volume_holds_and_nothing_can_change_it() {
    let image = dimg_e2e::corpus().join("dmg/keramics-hfsplus-zlib.dmg");
    let tmp = tempfile::tempdir().unwrap();
    let point = tmp.path().join("mnt");
    let attached = Attached::new(&[s(&image), "-mountpoint", s(&point)], None).unwrap();
    // Hard links: one inode, two names, st_nlink 2; as macOS shows them.
    let links: Vec<fs::Metadata> = ["file_hardlink1", "testdir1/testfile1"]
        .iter()
        .map(|n| fs::metadata(point.join(n)).unwrap())
        .collect();
    assert_eq!(links[0].ino(), links[1].ino());
    assert_eq!((links[0].nlink(), links[1].nlink()), (2, 2));
    // Symlinks are links, with the target as stored (not followed by the server).
    let link = point.join("file_symboliclink1");
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("/Volumes/hfsplus_test/testdir1/testfile1")
    );
    // Owners and modes from the volume's BSD info; names as stored (NFD, ':' for '/').
    let file = fs::metadata(point.join("testdir1/testfile1")).unwrap();
    assert_eq!((file.uid(), file.mode() & 0o7777), (501, 0o644));
    assert!(point.join("forward:slash").exists());
    assert!(point.join("nfd_te\u{301}stfile\u{300}").exists());
    // statfs agrees with dimg info.
    let part = common::partition_with(&image, "HFS+");
    let (size, used) = (
        part["size"].as_u64().unwrap(),
        part["volumes"][0]["used"].as_u64().unwrap(),
    );
    let out = Command::new("stat")
        .args(["-f", "-c", "%S %b %f", s(&point)])
        .output()
        .unwrap();
    let numbers: Vec<u64> = stdout(&out)
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(numbers, [4096, size / 4096, (size - used) / 4096]);
    // Read-only: every kind of change is refused with EROFS.
    let erofs = |r: std::io::Result<()>| r.unwrap_err().raw_os_error() == Some(libc_erofs());
    assert!(erofs(fs::write(point.join("new"), b"x")));
    assert!(erofs(
        fs::OpenOptions::new()
            .append(true)
            .open(point.join("testdir1/testfile1"))
            .map(|_| ())
    ));
    assert!(erofs(fs::create_dir(point.join("folder"))));
    assert!(erofs(fs::remove_file(point.join("emptyfile"))));
    assert!(erofs(xattr::set(point.join("emptyfile"), "user.x", b"y")));
    drop(attached);
}

fn libc_erofs() -> i32 {
    30
}

#[test]
fn volumes_appear_where_the_file_manager_shows_removable_media() {
    // A copy of its own: the corpus walk beside it detaches the corpus images by their path,
    // which would eject these mounts too when the two meet.
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("copying-rr.iso");
    fs::copy(dimg_e2e::corpus().join("iso/copying-rr.iso"), &image).unwrap();
    let label = {
        let info: Value =
            serde_json::from_str(&stdout(&dimg(&["info", s(&image), "--json"]))).unwrap();
        info["partitions"][0]["volumes"][0]["name"]
            .as_str()
            .unwrap()
            .trim()
            .to_string()
    };
    let first = Attached::new(&[s(&image)], None).unwrap();
    let second = Attached::new(&[s(&image)], None).unwrap();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let folder = PathBuf::from("/media").join(&user);
    // A clash is numbered as macOS numbers it in /Volumes.
    assert_eq!(first.mount_point(), folder.join(&label));
    assert_eq!(second.mount_point(), folder.join(format!("{label} 1")));
    // GIO (what GNOME Files and every GTK file chooser use) lists both as user-visible mounts.
    let gio = Command::new("gio").args(["mount", "-l"]).output().unwrap();
    for point in [first.mount_point(), second.mount_point()] {
        let uri = format!("file://{}", s(&point).replace(' ', "%20"));
        assert!(
            stdout(&gio).contains(&uri),
            "gio does not list {uri} ({}):\n{}{}",
            gio.status,
            stdout(&gio),
            stderr(&gio)
        );
    }
    // `dimg info` lists what is attached, for scripts too.
    let all: Value = serde_json::from_str(&stdout(&dimg(&["info", "--json"]))).unwrap();
    let pids: Vec<u64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.contains(&u64::from(first.pid())) && pids.contains(&u64::from(second.pid())));
    let text = stdout(&dimg(&["info"]));
    assert!(text.contains(s(&second.mount_point())), "{text}");
    for a in [&first, &second] {
        let o = dimg(&["detach", s(&a.mount_point())]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!a.mount_point().exists());
    }
}

#[test]
fn an_encrypted_image_mounts_with_its_passphrase_and_only_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let sealed = tmp.path().join("sealed.dmg");
    let source = dimg_e2e::corpus().join("dmg/keramics-hfsplus-zlib.dmg");
    let o = dimg_stdin(
        &[
            "convert",
            s(&source),
            "-format",
            "UDZO",
            "-encryption",
            "AES-256",
            "-stdinpass",
            "-o",
            s(&sealed),
        ],
        b"right horse",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let point = tmp.path().join("mnt");
    let wrong = Attached::new(
        &[s(&sealed), "-mountpoint", s(&point)],
        Some(b"wrong horse"),
    );
    let why = wrong.err().expect("a wrong passphrase mounts nothing");
    assert!(
        why.contains("sealed.dmg") && why.contains("passphrase"),
        "{why}"
    );
    assert!(!mounted(&point) && !point.exists());
    let attached = Attached::new(
        &[s(&sealed), "-mountpoint", s(&point)],
        Some(b"right horse"),
    )
    .unwrap();
    assert_eq!(
        fs::read(point.join("testdir1/testfile1")).unwrap(),
        b"Keramics\n".to_vec()
    );
    drop(attached);
}

#[test]
fn a_killed_server_leaves_no_mount_and_detach_clears_a_dead_one() {
    let image = dimg_e2e::corpus().join("iso/joliet.iso");
    let tmp = tempfile::tempdir().unwrap();
    // Killed alone: fusermount3's auto_unmount takes the mount away.
    let point = tmp.path().join("a");
    let a = Attached::new(&[s(&image), "-mountpoint", s(&point)], None).unwrap();
    kill(a.pid());
    wait_for("the auto-unmount", || !mounted(&point));
    // Killed with its auto-unmount helper: a dead mount, which info reports and detach clears.
    let point = tmp.path().join("b");
    let b = Attached::new(&[s(&image), "-mountpoint", s(&point)], None).unwrap();
    for pid in helpers_of(&point) {
        kill(pid);
    }
    kill(b.pid());
    std::thread::sleep(Duration::from_millis(300));
    assert!(mounted(&point), "the dead mount is expected to stay");
    let info = stdout(&dimg(&["info"]));
    assert!(info.contains("server gone"), "{info}");
    let o = dimg(&["detach", s(&point)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!mounted(&point));
}

fn kill(pid: u32) {
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
}

/// The fusermount3 processes that watch `point` for auto_unmount.
fn helpers_of(point: &Path) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let cmdline = fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.starts_with("fusermount3") && cmdline.contains(s(point))).then_some(pid)
        })
        .collect()
}

#[test]
fn a_busy_volume_is_named_with_what_holds_it_and_force_detaches_it() {
    let image = dimg_e2e::corpus().join("iso/deep-directory.iso");
    let tmp = tempfile::tempdir().unwrap();
    let point = tmp.path().join("busy");
    let attached = Attached::new(&[s(&image), "-mountpoint", s(&point)], None).unwrap();
    let mut holder = Command::new("sleep")
        .arg("30")
        .current_dir(point.join("1/2"))
        .spawn()
        .unwrap();
    let o = dimg(&["detach", s(&point)]);
    assert_eq!(o.status.code(), Some(1));
    let said = stderr(&o);
    assert!(
        said.contains("busy") && said.contains(&format!("pid {} (sleep)", holder.id())),
        "{said}"
    );
    assert!(mounted(&point));
    let o = dimg(&["detach", "-force", s(&point)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!mounted(&point));
    holder.kill().unwrap();
    holder.wait().unwrap();
    wait_for("the server to end", || {
        !Path::new(&format!("/proc/{}", attached.pid())).exists()
    });
}

#[test]
fn damaged_data_reads_as_eio_and_the_server_stays_up() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("src");
    fs::create_dir(&folder).unwrap();
    // Text compresses, so every chunk is zlib: damage in one is found when it is inflated.
    for i in 0..6 {
        let text: String = (0..120_000)
            .map(|n| format!("line {} of file {i}\n", n * 7919 % 100_003))
            .collect();
        fs::write(folder.join(format!("file{i}.txt")), text).unwrap();
    }
    let image = tmp.path().join("damaged.dmg");
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(&folder),
        "-format",
        "UDZO",
        s(&image),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut bytes = fs::read(&image).unwrap();
    // Garble the middle of the data fork, where the files' chunks lie (the catalog is before them).
    let (from, to) = (bytes.len() * 2 / 5, bytes.len() * 3 / 5);
    for b in &mut bytes[from..to] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    fs::write(&image, &bytes).unwrap();
    let point = tmp.path().join("mnt");
    let attached = Attached::new(&[s(&image), "-mountpoint", s(&point)], None).unwrap();
    let (mut good, mut eio) = (0, 0);
    for i in 0..6 {
        match fs::read(point.join(format!("file{i}.txt"))) {
            Ok(data) => {
                assert_eq!(data, fs::read(folder.join(format!("file{i}.txt"))).unwrap());
                good += 1;
            }
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(5), "file{i}: {e}");
                eio += 1;
            }
        }
    }
    assert!(good > 0 && eio > 0, "{good} files read, {eio} refused");
    assert!(
        Path::new(&format!("/proc/{}", attached.pid())).exists(),
        "the server died"
    );
    assert!(
        fs::read_dir(&point).unwrap().count() == 6,
        "the mount went away"
    );
    let log = fs::read_to_string(attached.json["log"].as_str().unwrap()).unwrap();
    assert!(
        log.contains("damaged.dmg") && log.contains("UDIF chunk"),
        "{log}"
    );
    let o = dimg(&["detach", s(&point)]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn nomount_attaches_the_disk_and_its_partitions_as_files() {
    let image = dimg_e2e::corpus().join("dmg/keramics-hfsplus-zlib.dmg");
    let tmp = tempfile::tempdir().unwrap();
    let point = tmp.path().join("disk");
    let attached = Attached::new(&[s(&image), "-nomount", "-mountpoint", s(&point)], None).unwrap();
    let verify: Value =
        serde_json::from_str(&stdout(&dimg(&["verify", s(&image), "--json"]))).unwrap();
    let whole = fs::read(point.join("disk")).unwrap();
    assert_eq!(sha256(&whole), verify["sha256"].as_str().unwrap());
    let info: Value = serde_json::from_str(&stdout(&dimg(&["info", s(&image), "--json"]))).unwrap();
    let mut partitions = 0;
    for p in info["partitions"].as_array().unwrap() {
        let (index, start, size) = (
            p["index"].as_u64().unwrap(),
            p["start"].as_u64().unwrap(),
            p["size"].as_u64().unwrap(),
        );
        let part = fs::read(point.join(format!("disks{index}"))).unwrap();
        assert_eq!(
            part,
            whole[start as usize..(start + size) as usize],
            "partition {index}"
        );
        partitions += 1;
    }
    assert!(partitions >= 1);
    let listed: Vec<String> = attached.json["mounts"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed[0], s(&point.join("disk")));
    drop(attached);
}

/// A bootable disc's volume is the disc's tree: the boot images 7-Zip shows as a `[BOOT]` folder
/// are not in `ls`, nor in the mount (`extract -boot` takes them out).
#[test]
fn a_mount_shows_no_invented_boot_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("boot")).unwrap();
    fs::write(src.join("boot/loader.bin"), vec![0x90u8; 2048]).unwrap();
    fs::write(src.join("readme.txt"), b"bootable\n").unwrap();
    let iso = tmp.path().join("boot.iso");
    let o = Command::new("genisoimage")
        .args([
            "-quiet",
            "-R",
            "-J",
            "-b",
            "boot/loader.bin",
            "-c",
            "boot/boot.cat",
        ])
        .args(["-no-emul-boot", "-o", s(&iso), s(&src)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&dimg(&["ls", s(&iso)])).contains("[BOOT]"));
    let point = tmp.path().join("mnt");
    let attached = Attached::new(&[s(&iso), "-mountpoint", s(&point)], None).unwrap();
    let mut names: Vec<String> = fs::read_dir(&point)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["boot", "readme.txt"]);
    drop(attached);
}

/// Folder hard links in a mount (built as in browse.rs): the folder shows at every link; a link
/// inside the folder it names is a loop the kernel refuses to enter (ELOOP), and a walk ends.
#[test]
fn folder_hard_links_mount_at_every_link() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = fs::read(dimg_e2e::corpus().join("raw/dfvfs-hfsplus.raw")).unwrap();
    let mut linked = raw.clone();
    folder_hard_link(&mut linked, "passwords.txt", "a_directory");
    folder_hard_link(&mut linked, "another_file", "a_directory");
    let image = tmp.path().join("linked.raw");
    fs::write(&image, &linked).unwrap();
    let point = tmp.path().join("mnt");
    let attached = Attached::new(&[s(&image), "-mountpoint", s(&point)], None).unwrap();
    let names = |dir: &Path| {
        let mut n: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&point.join("passwords.txt")),
        names(&point.join("a_directory"))
    );
    assert_eq!(
        fs::read(point.join("passwords.txt/a_file")).unwrap(),
        fs::read(point.join("a_directory/a_file")).unwrap()
    );
    let walked = Command::new("timeout")
        .args(["20", "find", s(&point)])
        .output()
        .unwrap();
    assert_ne!(walked.status.code(), Some(124), "find ends");
    assert!(
        stderr(&walked).contains("Too many levels of symbolic links"),
        "{}",
        stderr(&walked)
    );
    drop(attached);
}

/// A Video CD's streams lie in later tracks, in Mode 2 Form 2 sectors: mounted, they read at
/// their 2324 bytes a sector, as `extract` gives them.
#[test]
fn video_cd_streams_mount_as_they_extract() {
    let tmp = tempfile::tempdir().unwrap();
    let (cue, _) = video_cd(tmp.path(), "vcd2");
    let out = tmp.path().join("x");
    assert!(dimg(&["extract", s(&cue), "-o", s(&out)]).status.success());
    let point = tmp.path().join("mnt");
    let attached = Attached::new(&[s(&cue), "-mountpoint", s(&point)], None).unwrap();
    for name in ["AVSEQ01.DAT", "AVSEQ02.DAT"] {
        let mounted = fs::read(point.join("MPEGAV").join(name)).unwrap();
        assert_eq!(mounted.len() % 2324, 0, "{name}");
        assert!(
            mounted == fs::read(out.join("MPEGAV").join(name)).unwrap(),
            "{name}"
        );
    }
    drop(attached);
}

/// A source on a file system that fails halfway: dimg's own FUSE server (`attach -nomount`)
/// serving the disk of an image damaged at a chosen offset answers EIO for reads there. Jobs
/// reading that disk, or the partition beside it, end in a clear error naming it, write nothing,
/// and leave the image as it was.
#[test]
fn a_source_failing_with_eio_halfway_is_a_clean_error() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("big.txt"), compressible(24 << 20)).unwrap();
    fs::write(src.join("small.txt"), b"small\n").unwrap();
    let image = tmp.path().join("damaged.dmg");
    create_hfs_image(&src, "UDZO", &image);
    // The chosen offset: the middle of the compressed data, inside one chunk's stream.
    let before = sha256(&damage_middle(&image));
    let hfs = common::partition_with(&image, "HFS+")["index"]
        .as_u64()
        .unwrap();

    let point = tmp.path().join("served");
    let attached = Attached::new(&[s(&image), "-nomount", "-mountpoint", s(&point)], None).unwrap();
    let disk = point.join("disk");
    let eio = fs::read(&disk).unwrap_err();
    assert_eq!(eio.raw_os_error(), Some(libc::EIO), "{eio}");

    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let partition = point.join(format!("disks{hfs}"));
    let (converted, created, extracted) = (out.join("c.dmg"), out.join("n.dmg"), out.join("x"));
    let jobs: [Vec<&str>; 3] = [
        vec!["convert", s(&disk), "-format", "UDZO", "-o", s(&converted)],
        vec![
            "create",
            "-srcfolder",
            s(&point),
            "-fs",
            "HFS+",
            s(&created),
        ],
        vec!["extract", "--strict", s(&partition), "-o", s(&extracted)],
    ];
    for args in &jobs {
        let o = dimg(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let said = stderr(&o);
        assert!(
            said.contains("Input/output error") && said.contains(s(&point)),
            "{said}"
        );
        assert!(!said.contains("panicked"), "{said}");
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            0,
            "{args:?} left output"
        );
    }
    drop(attached);
    assert_eq!(
        sha256(&fs::read(&image).unwrap()),
        before,
        "the image is unchanged"
    );
}

/// Every file of a mount, read: how many read, and the first error that means the server is
/// gone (ENOTCONN) rather than a file it could not read.
fn read_everything(point: &Path) -> (usize, Option<std::io::Error>) {
    let (mut read, mut pending) = (0, vec![point.to_path_buf()]);
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten().take(2000) {
            let path = entry.path();
            let outcome = match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    pending.push(path);
                    continue;
                }
                Ok(t) if t.is_file() => fs::read(&path).map(drop),
                _ => continue,
            };
            match outcome {
                Ok(()) => read += 1,
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => return (read, Some(e)),
                Err(_) => {}
            }
        }
    }
    (read, None)
}

/// Damaged copies of real images (the damage sweep's cuts, zeroed heads and tails, and seeded
/// bit flips), each attached and read end to end: attaching fails with a clear error, or the
/// mount answers every read — with the data or with an error — and stays up.
#[test]
fn damaged_copies_mount_and_read_without_bringing_the_server_down() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut attached_count, mut files_read) = (0, 0);
    for (n, name) in [
        "dmg/keramics-hfsplus-zlib.dmg",
        "iso/joliet.iso",
        "apfs/securityronin-apfs-content.bin",
        "classic/openpreserve-jw-disk9-hfs.img",
    ]
    .iter()
    .enumerate()
    {
        let bytes = fs::read(dimg_e2e::corpus().join(name)).unwrap();
        let extension = Path::new(name).extension().unwrap().to_string_lossy();
        for (kind, damaged) in sweep::variants(&bytes, 10, 0x9E37_79B9 + n as u64) {
            let image = tmp.path().join(format!("{n}-{kind}.{extension}"));
            fs::write(&image, &damaged).unwrap();
            let point = tmp.path().join(format!("mnt-{n}-{kind}"));
            let attached = match Attached::new(&[s(&image), "-mountpoint", s(&point)], None) {
                Ok(a) => a,
                Err(said) => {
                    assert!(
                        !said.contains("panicked") && said.contains("dimg:"),
                        "{name} {kind}: {said}"
                    );
                    continue;
                }
            };
            attached_count += 1;
            let (read, gone) = read_everything(&point);
            assert!(
                gone.is_none(),
                "{name} {kind}: the server went away: {gone:?}"
            );
            files_read += read;
            assert!(
                fs::read_dir(&point).is_ok(),
                "{name} {kind}: the mount stays up"
            );
            assert!(
                Path::new(&format!("/proc/{}", attached.pid())).exists(),
                "{name} {kind}"
            );
            drop(attached);
        }
    }
    assert!(
        attached_count >= 12,
        "only {attached_count} damaged copies attached"
    );
    assert!(files_read > 0);
}

/// Runs a program the test needs (mtools, dosfstools); what it said is the failure.
fn run(program: &str, args: &[&str]) -> String {
    let o = Command::new(program).args(args).output().unwrap();
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{program} {args:?}: {said}");
    said
}

fn tree_sha(path: &Path) -> String {
    let mut all = Vec::new();
    match path.is_dir() {
        true => {
            for (name, size, sum) in files(path, &[]) {
                all.extend(format!("{name} {size} {sum}\n").into_bytes());
            }
        }
        false => all = fs::read(path).unwrap(),
    }
    sha256(&all)
}

/// `attach -nomount` of a read/write image serves its disk read/write: mtools writes files into
/// its FAT partition through the served file, fsck.fat finds the volume clean, and after detach
/// the image holds them (dimg lists and extracts them), still verifies, and a UDRW's CRC-32s
/// satisfy 7-Zip. The same for UDRW, a raw disk, a sparse bundle and an AES-256 sparse bundle.
#[test]
fn nomount_serves_a_read_write_image_that_any_tool_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let payload: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(tmp.path().join("payload.bin"), &payload).unwrap();
    let pass = b"correct horse".as_slice();
    for (name, encrypted) in [
        ("blank.dmg", false),
        ("blank.img", false),
        ("blank.sparsebundle", false),
        ("blank.sparseimage", false),
        ("vault.sparsebundle", true),
    ] {
        let image = tmp.path().join(name);
        create_blank(&image, "16m", "FAT", encrypted.then_some(pass));
        let point = tmp.path().join(format!("{name}-disk"));
        let args = [s(&image), "-nomount", "-mountpoint", s(&point)];
        let attached = Attached::new(&args, encrypted.then_some(pass)).unwrap();
        assert_eq!(attached.json["writable"], true, "{name}");
        let part = point.join("disks1");
        let part = s(&part);
        run(
            "mcopy",
            &[
                "-i",
                part,
                s(&tmp.path().join("payload.bin")),
                "::/payload.bin",
            ],
        );
        run("mmd", &["-i", part, "::/Folder"]);
        run(
            "mcopy",
            &[
                "-i",
                part,
                s(&tmp.path().join("payload.bin")),
                "::/Folder/again.bin",
            ],
        );
        run("fsck.fat", &["-n", part]);
        let o = dimg(&["detach", s(&point)]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        drop(attached);
        let unlock = |args: &[&str]| match encrypted {
            true => dimg_stdin(&[args, &["-stdinpass"]].concat(), pass),
            false => dimg(args),
        };
        let listed = unlock(&["ls", s(&image), "-R"]);
        assert!(
            stdout(&listed).contains("payload.bin"),
            "{name}: {}",
            stdout(&listed)
        );
        let out = tmp.path().join(format!("{name}-out"));
        let o = unlock(&["extract", s(&image), "-o", s(&out)]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(
            fs::read(out.join("payload.bin")).unwrap() == payload,
            "{name}"
        );
        assert!(
            fs::read(out.join("Folder/again.bin")).unwrap() == payload,
            "{name}"
        );
        let verify = unlock(&["verify", s(&image)]);
        assert!(verify.status.success(), "{name}: {}", stdout(&verify));
        if name.ends_with(".dmg") {
            run("7zz", &["t", s(&image)]);
        }
    }
}

/// What cannot or must not be written is refused in a sentence, and the image stays as it was.
#[test]
fn read_write_attaches_are_refused_where_they_must_be() {
    let tmp = tempfile::tempdir().unwrap();
    let blank = tmp.path().join("blank.dmg");
    assert!(dimg(&["create", "-size", "8m", "-fs", "FAT", s(&blank)])
        .status
        .success());
    let compressed = tmp.path().join("c.dmg");
    assert!(dimg(&[
        "convert",
        s(&blank),
        "-format",
        "UDZO",
        "-o",
        s(&compressed)
    ])
    .status
    .success());
    let point = tmp.path().join("m");
    // A compressed image: read/write refused, naming the shadow file; read-only by default.
    let before = tree_sha(&compressed);
    let why = Attached::new(&[s(&compressed), "-nomount", "-readwrite"], None)
        .err()
        .unwrap();
    assert!(why.contains("-shadow") && why.contains("c.dmg"), "{why}");
    let ro = Attached::new(
        &[s(&compressed), "-nomount", "-mountpoint", s(&point)],
        None,
    )
    .unwrap();
    assert_eq!(ro.json["writable"], false);
    let denied = fs::OpenOptions::new()
        .write(true)
        .open(point.join("disk"))
        .unwrap_err();
    assert_eq!(denied.raw_os_error(), Some(libc_erofs()), "{denied}");
    drop(ro);
    wait_for("the read-only mount to go", || !mounted(&point));
    assert_eq!(tree_sha(&compressed), before);
    // Volumes dimg does not write (classic HFS, made by hfsutils on a raw disk) are mounted
    // read-only: -readwrite on them is refused.
    let hfs = tmp.path().join("classic.img");
    fs::File::create(&hfs).unwrap().set_len(8 << 20).unwrap();
    run("hformat", &["-l", "Classic", s(&hfs)]);
    let why = Attached::new(&[s(&hfs), "-readwrite"], None).err().unwrap();
    assert!(
        why.contains("HFS") && why.contains("does not write"),
        "{why}"
    );
    // One writer: a second attach of an image attached read/write is refused, naming the first.
    let first = Attached::new(&[s(&blank), "-nomount", "-mountpoint", s(&point)], None).unwrap();
    let why = Attached::new(&[s(&blank), "-nomount"], None).err().unwrap();
    assert!(
        why.contains("already attached read/write") && why.contains(s(&point)),
        "{why}"
    );
    assert!(dimg(&["detach", s(&point)]).status.success());
    drop(first);
    // -readonly never changes a read/write image.
    let before = tree_sha(&blank);
    let ro = Attached::new(
        &[s(&blank), "-nomount", "-readonly", "-mountpoint", s(&point)],
        None,
    )
    .unwrap();
    assert_eq!(ro.json["writable"], false);
    assert!(fs::OpenOptions::new()
        .write(true)
        .open(point.join("disk"))
        .is_err());
    assert!(dimg(&["detach", s(&point)]).status.success());
    drop(ro);
    assert_eq!(tree_sha(&blank), before);
    // A wrong passphrase: refused, the bundle unchanged.
    let vault = tmp.path().join("vault.sparsebundle");
    create_blank(&vault, "8m", "FAT", Some(b"right"));
    let before = tree_sha(&vault);
    let why = Attached::new(&[s(&vault), "-nomount"], Some(b"wrong"))
        .err()
        .unwrap();
    assert!(why.contains("vault.sparsebundle"), "{why}");
    assert_eq!(tree_sha(&vault), before);
}

/// A compressed image attached with a shadow file: the disk is served read/write, every write
/// goes to the shadow, and the image stays byte for byte as it was. Attached again with the same
/// shadow, the changes are there; `convert -shadow` makes them a new UDZO, which dimg and 7-Zip
/// read.
#[test]
fn a_shadow_file_takes_the_writes_to_any_image() {
    let tmp = tempfile::tempdir().unwrap();
    let blank = tmp.path().join("blank.dmg");
    let image = tmp.path().join("packed.dmg");
    assert!(dimg(&["create", "-size", "16m", "-fs", "FAT", s(&blank)])
        .status
        .success());
    assert!(
        dimg(&["convert", s(&blank), "-format", "UDZO", "-o", s(&image)])
            .status
            .success()
    );
    let before = tree_sha(&image);
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(tmp.path().join("payload.bin"), &payload).unwrap();
    let point = tmp.path().join("m");
    let args = [s(&image), "-nomount", "-shadow", "-mountpoint", s(&point)];
    let attached = Attached::new(&args, None).unwrap();
    assert_eq!(attached.json["writable"], true);
    let part = point.join("disks1");
    run(
        "mcopy",
        &[
            "-i",
            s(&part),
            s(&tmp.path().join("payload.bin")),
            "::/payload.bin",
        ],
    );
    run("fsck.fat", &["-n", s(&part)]);
    assert!(dimg(&["detach", s(&point)]).status.success());
    drop(attached);
    assert_eq!(tree_sha(&image), before, "the image itself changed");
    let shadow = tmp.path().join("packed.dmg.shadow");
    assert!(shadow.exists(), "the shadow is made beside the image");
    // Attached again with the same shadow: the file is there.
    let again = Attached::new(&args, None).unwrap();
    let listed = run("mdir", &["-i", s(&point.join("disks1")), "::/"]);
    assert!(listed.contains("payload"), "{listed}");
    assert!(dimg(&["detach", s(&point)]).status.success());
    drop(again);
    // Baked into a new image.
    let baked = tmp.path().join("baked.dmg");
    let o = dimg(&[
        "convert",
        s(&image),
        "-shadow",
        "-format",
        "UDZO",
        "-o",
        s(&baked),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path().join("out");
    assert!(dimg(&["extract", s(&baked), "-o", s(&out)])
        .status
        .success());
    assert!(fs::read(out.join("payload.bin")).unwrap() == payload);
    run("7zz", &["t", s(&baked)]);
    assert_eq!(tree_sha(&image), before);
}

/// SIGKILL to the server while a writer is busy: every write whose fsync returned before the
/// kill is in the image when it is opened again, for each kind of read/write image (the kill
/// lands at a different moment of the storm each time).
#[test]
fn a_killed_server_loses_no_write_whose_fsync_returned() {
    use std::os::unix::fs::FileExt;
    let tmp = tempfile::tempdir().unwrap();
    let pass = b"correct horse".as_slice();
    for (round, (name, encrypted)) in [
        ("blank.dmg", false),
        ("blank.sparseimage", false),
        ("blank.sparsebundle", false),
        ("vault.sparsebundle", true),
    ]
    .into_iter()
    .enumerate()
    {
        let image = tmp.path().join(name);
        create_blank(&image, "16m", "FAT", encrypted.then_some(pass));
        let point = tmp.path().join(format!("{name}-disk"));
        let args = [s(&image), "-nomount", "-mountpoint", s(&point)];
        let attached = Attached::new(&args, encrypted.then_some(pass)).unwrap();
        let pid = attached.pid();
        let disk = point.join("disk");
        // A writer that fsyncs each 64 KiB chunk and says which it finished, until it fails.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<(u64, Vec<u8>)>();
        let writer = std::thread::spawn(move || {
            let file = fs::OpenOptions::new().write(true).open(&disk).unwrap();
            for i in 0u64.. {
                let at = (i * 7919 % 250) * 65536;
                let chunk: Vec<u8> = (0..65536u32)
                    .map(|k| (k as u64 ^ (i * 131)) as u8)
                    .collect();
                if file.write_all_at(&chunk, at).is_err() || file.sync_data().is_err() {
                    return;
                }
                if done_tx.send((at, chunk)).is_err() {
                    return;
                }
            }
        });
        let mut fsynced = BTreeMap::new();
        while fsynced.len() < 20 + 15 * round {
            let (at, chunk) = done_rx.recv().unwrap();
            fsynced.insert(at, chunk);
        }
        kill(pid);
        for (at, chunk) in done_rx.iter() {
            fsynced.insert(at, chunk);
        }
        writer.join().unwrap();
        for helper in helpers_of(&point) {
            kill(helper);
        }
        let _ = Command::new("fusermount3")
            .args(["-u", "-z", s(&point)])
            .output();
        drop(attached);
        let raw = tmp.path().join(format!("{name}.raw"));
        let mut convert = vec!["convert", s(&image), "-format", "UDTO", "-o", s(&raw)];
        if encrypted {
            convert.push("-stdinpass");
        }
        let o = dimg_stdin(&convert, pass);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let disk = fs::read(&raw).unwrap();
        for (at, chunk) in &fsynced {
            let at = *at as usize;
            assert!(
                disk[at..at + chunk.len()] == chunk[..],
                "{name}: lost the write at {at}"
            );
        }
    }
}

/// A small pseudo-random generator, so that a failing run can be repeated from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every file, folder and symlink under `root` (links not followed): its path, and whether it
/// is a folder.
fn entries_of(root: &Path) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let folder = fs::symlink_metadata(&path)
                .unwrap_or_else(|e| {
                    panic!("{} is listed but cannot be looked up: {e}", path.display())
                })
                .is_dir();
            out.insert(name, folder);
            if folder {
                todo.push(path);
            }
        }
    }
    out
}

#[test]
fn an_image_inside_an_image_attaches_read_only_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let holder = tmp.path().join("holder");
    fs::create_dir_all(&holder).unwrap();
    // A real volume with ground truth (the corpus's), inside a DMG dimg makes.
    let corpus = dimg_e2e::corpus().join("dmg/keramics-hfsplus-zlib.dmg");
    fs::copy(&corpus, holder.join("inner.dmg")).unwrap();
    let outer = tmp.path().join("outer.dmg");
    create_hfs_image(&holder, "UDZO", &outer);
    let direct = tmp.path().join("direct");
    let inner = format!("{}:/inner.dmg", s(&outer));
    let through = tmp.path().join("through");
    let want = Attached::new(&[s(&corpus), "-mountpoint", s(&direct)], None).unwrap();
    let got = Attached::new(&[&inner, "-mountpoint", s(&through)], None).unwrap();
    assert_eq!(tree_of(&got.mount_point()), tree_of(&want.mount_point()));
    let refused = Attached::new(&[&inner, "-readwrite", "-mountpoint", s(&direct)], None);
    assert!(refused.err().is_some_and(|e| e.contains("read-only")));
}

/// Every file, folder and symlink under `root`: its path, and a file's bytes or a link's
/// target (after "-> ").
fn tree_of(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    entries_of(root)
        .into_iter()
        .map(|(name, folder)| {
            let path = root.join(&name);
            let bytes = (!folder).then(|| match fs::read_link(&path) {
                Ok(target) => format!("-> {}", target.display()).into_bytes(),
                Err(_) => fs::read(&path).unwrap(),
            });
            (name, bytes)
        })
        .collect()
}

/// What a volume that keeps BSD information and attributes holds beyond the tree: each entry's
/// permission bits (links' aside) and its `user.` attributes.
fn kept_of(root: &Path) -> BTreeMap<String, (u32, BTreeMap<String, Vec<u8>>)> {
    use std::os::unix::fs::PermissionsExt;
    entries_of(root)
        .into_keys()
        .map(|name| {
            let path = root.join(&name);
            let meta = fs::symlink_metadata(&path).unwrap();
            let link = meta.file_type().is_symlink();
            let mode = if link {
                0
            } else {
                meta.permissions().mode() & 0o7777
            };
            let attributes = match link {
                true => BTreeMap::new(),
                false => xattr::list(&path)
                    .unwrap()
                    .map(|n| {
                        let value = xattr::get(&path, &n).unwrap().unwrap_or_default();
                        (n.to_string_lossy().into_owned(), value)
                    })
                    .collect(),
            };
            (name, (mode, attributes))
        })
        .collect()
}

/// The paths that name one file, for each file named by more than one (hard links), each
/// group checked against the file's link count.
fn links_of(root: &Path) -> BTreeSet<Vec<String>> {
    let mut groups: BTreeMap<u64, (u64, Vec<String>)> = BTreeMap::new();
    for (name, folder) in entries_of(root) {
        let meta = fs::symlink_metadata(root.join(&name)).unwrap();
        if !folder && meta.nlink() > 1 {
            let group = groups
                .entry(meta.ino())
                .or_insert((meta.nlink(), Vec::new()));
            group.1.push(name);
        }
    }
    groups
        .into_values()
        .map(|(links, paths)| {
            assert_eq!(links, paths.len() as u64, "{}: {paths:?}", root.display());
            paths
        })
        .collect()
}

/// Random operations — create, write at random offsets and sizes, truncate, rename, unlink, mkdir,
/// rmdir, and where the volume keeps them (`rich`) symlink, setxattr, chmod and hard link —
/// applied to `mounted` and to `reference` alike; the trees must stay equal.
fn random_operations(mounted: &Path, reference: &Path, seed: u64, count: usize, rich: bool) {
    use std::os::unix::fs::FileExt;
    let mut rng = Rng(seed);
    let names = ["alpha", "beta", "gamma", "delta", "long file name.txt"];
    let folders = ["one", "two", "three folder"];
    for op in 0..count {
        let tree = entries_of(reference);
        let dirs: Vec<String> = std::iter::once(String::new())
            .chain(tree.iter().filter(|(_, &d)| d).map(|(k, _)| k.clone()))
            .collect();
        let links: BTreeSet<&String> = tree
            .keys()
            .filter(|k| {
                fs::symlink_metadata(reference.join(k))
                    .unwrap()
                    .file_type()
                    .is_symlink()
            })
            .collect();
        // Files to write to; links go by the other names, as entries to move and remove.
        let files: Vec<String> = tree
            .iter()
            .filter(|(k, &d)| !d && !links.contains(k))
            .map(|(k, _)| k.clone())
            .collect();
        let entries: Vec<String> = tree
            .iter()
            .filter(|(_, &d)| !d)
            .map(|(k, _)| k.clone())
            .collect();
        let pick =
            |rng: &mut Rng, from: &[String]| from[rng.below(from.len() as u64) as usize].clone();
        let join = |dir: &str, name: &str| match dir {
            "" => name.to_string(),
            d => format!("{d}/{name}"),
        };
        let both = |path: &str| (mounted.join(path), reference.join(path));
        let what = rng.below(if rich { 14 } else { 10 });
        let step = format!("seed {seed}, operation {op} ({what})");
        match what {
            0 | 1 => {
                let path = join(&pick(&mut rng, &dirs), names[rng.below(5) as usize]);
                if !tree.contains_key(&path) {
                    let (a, b) = both(&path);
                    fs::File::create(&a).unwrap_or_else(|e| panic!("{step}: create {path}: {e}"));
                    fs::File::create(&b).unwrap();
                }
            }
            2..=4 if !files.is_empty() => {
                let path = pick(&mut rng, &files);
                let (offset, len) = (rng.below(200_000), 1 + rng.below(70_000) as usize);
                let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                for root in [mounted, reference] {
                    let f = fs::OpenOptions::new()
                        .write(true)
                        .open(root.join(&path))
                        .unwrap();
                    f.write_all_at(&data, offset)
                        .unwrap_or_else(|e| panic!("{step}: write {path}: {e}"));
                }
            }
            5 if !files.is_empty() => {
                let path = pick(&mut rng, &files);
                let len = rng.below(150_000);
                for root in [mounted, reference] {
                    let f = fs::OpenOptions::new()
                        .write(true)
                        .open(root.join(&path))
                        .unwrap();
                    f.set_len(len)
                        .unwrap_or_else(|e| panic!("{step}: truncate {path}: {e}"));
                }
            }
            6 if !entries.is_empty() => {
                let from = pick(&mut rng, &entries);
                let to = join(&pick(&mut rng, &dirs), names[rng.below(5) as usize]);
                if tree.get(&to).is_none_or(|&folder| !folder) && to != from {
                    let (a, b) = both(&from);
                    let (c, d) = both(&to);
                    fs::rename(&a, &c)
                        .unwrap_or_else(|e| panic!("{step}: rename {from} {to}: {e}"));
                    fs::rename(&b, &d).unwrap();
                }
            }
            7 if !entries.is_empty() => {
                let path = pick(&mut rng, &entries);
                let (a, b) = both(&path);
                fs::remove_file(&a).unwrap_or_else(|e| panic!("{step}: unlink {path}: {e}"));
                fs::remove_file(&b).unwrap();
            }
            8 => {
                let parent = pick(&mut rng, &dirs);
                let path = join(&parent, folders[rng.below(3) as usize]);
                if parent.matches('/').count() < 2 && !tree.contains_key(&path) {
                    let (a, b) = both(&path);
                    fs::create_dir(&a).unwrap_or_else(|e| panic!("{step}: mkdir {path}: {e}"));
                    fs::create_dir(&b).unwrap();
                }
            }
            9 if dirs.len() > 1 => {
                let path = pick(&mut rng, &dirs[1..]);
                let (a, b) = both(&path);
                let empty = fs::read_dir(&b).unwrap().next().is_none();
                let (ra, rb) = (fs::remove_dir(&a), fs::remove_dir(&b));
                assert_eq!(
                    ra.is_ok(),
                    rb.is_ok(),
                    "{step}: rmdir {path}: {ra:?} {rb:?}"
                );
                assert_eq!(ra.is_ok(), empty, "{step}: rmdir {path}");
            }
            10 => {
                let path = join(&pick(&mut rng, &dirs), names[rng.below(5) as usize]);
                if !tree.contains_key(&path) {
                    let target = format!("target {}", rng.below(1000));
                    let (a, b) = both(&path);
                    std::os::unix::fs::symlink(&target, &a)
                        .unwrap_or_else(|e| panic!("{step}: symlink {path}: {e}"));
                    std::os::unix::fs::symlink(&target, &b).unwrap();
                }
            }
            11 if dirs.len() + files.len() > 1 => {
                let all: Vec<String> = dirs[1..].iter().chain(&files).cloned().collect();
                let path = pick(&mut rng, &all);
                let name = format!("user.note{}", rng.below(3));
                let value: Vec<u8> = (0..rng.below(600)).map(|_| rng.next() as u8).collect();
                let (a, b) = both(&path);
                match rng.below(4) {
                    0 => {
                        let (ra, rb) = (xattr::remove(&a, &name), xattr::remove(&b, &name));
                        assert_eq!(ra.is_ok(), rb.is_ok(), "{step}: removexattr {path}");
                    }
                    _ => {
                        xattr::set(&a, &name, &value)
                            .unwrap_or_else(|e| panic!("{step}: setxattr {path}: {e}"));
                        xattr::set(&b, &name, &value).unwrap();
                    }
                }
            }
            12 if dirs.len() + files.len() > 1 => {
                use std::os::unix::fs::PermissionsExt;
                let all: Vec<String> = dirs[1..].iter().chain(&files).cloned().collect();
                let path = pick(&mut rng, &all);
                // Owners keep their way in; the rest varies.
                let mode = 0o700 | rng.below(0o100) as u32;
                let (a, b) = both(&path);
                fs::set_permissions(&a, fs::Permissions::from_mode(mode))
                    .unwrap_or_else(|e| panic!("{step}: chmod {path}: {e}"));
                fs::set_permissions(&b, fs::Permissions::from_mode(mode)).unwrap();
            }
            13 if !entries.is_empty() => {
                let from = pick(&mut rng, &entries);
                let to = join(&pick(&mut rng, &dirs), names[rng.below(5) as usize]);
                if !tree.contains_key(&to) {
                    let (a, b) = both(&from);
                    let (c, d) = both(&to);
                    fs::hard_link(&a, &c)
                        .unwrap_or_else(|e| panic!("{step}: link {from} {to}: {e}"));
                    fs::hard_link(&b, &d).unwrap();
                }
            }
            _ => {}
        }
    }
    let (got, want) = (tree_of(mounted), tree_of(reference));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "seed {seed}: the trees' names differ"
    );
    for (path, bytes) in &want {
        assert!(got[path] == *bytes, "seed {seed}: {path} differs");
    }
    if rich {
        assert_eq!(
            kept_of(mounted),
            kept_of(reference),
            "seed {seed}: modes or attributes differ"
        );
        assert_eq!(
            links_of(mounted),
            links_of(reference),
            "seed {seed}: hard links differ"
        );
    }
}

/// The seed and count of random operations: DIMG_SEED repeats a run; 2,000 a run in the suite,
/// DIMG_OPERATIONS=20000 for a longer one.
fn random_run() -> (u64, usize) {
    let seed = std::env::var("DIMG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| 0x9E37_79B9 ^ u64::from(std::process::id()));
    let operations = std::env::var("DIMG_OPERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    eprintln!("{operations} random operations from seed {seed} (DIMG_SEED repeats them)");
    (seed, operations)
}

/// Random operations on the volume of each image (made by `make`, sealed with a passphrase where
/// it says so) and on a folder of the machine's leave the same tree, which is still there after
/// detach and attach again, which dimg extracts, and in which `judge` — given the volume's
/// partition served by `attach -nomount`, and the reference folder — finds no fault, nor does
/// First Aid (`verify -fs`).
fn random_changes_hold(
    images: &[(&str, bool)],
    rich: bool,
    make: impl Fn(&Path, Option<&[u8]>),
    judge: impl Fn(&str, &Path, &Path),
) {
    let tmp = tempfile::tempdir().unwrap();
    let (seed, operations) = random_run();
    let pass = b"correct horse".as_slice();
    for (n, &(name, encrypted)) in images.iter().enumerate() {
        let image = tmp.path().join(name);
        make(&image, encrypted.then_some(pass));
        let reference = tmp.path().join(format!("{name}-reference"));
        fs::create_dir(&reference).unwrap();
        let point = tmp.path().join(format!("{name}-volume"));
        let args = [s(&image), "-mountpoint", s(&point)];
        let attached = Attached::new(&args, encrypted.then_some(pass)).unwrap();
        assert_eq!(attached.json["writable"], true, "{name}");
        random_operations(&point, &reference, seed + n as u64, operations, rich);
        assert!(dimg(&["detach", s(&point)]).status.success());
        drop(attached);
        let again = Attached::new(&args, encrypted.then_some(pass)).unwrap();
        assert!(
            tree_of(&point) == tree_of(&reference),
            "{name}: changed by detach and attach"
        );
        if rich {
            assert_eq!(
                kept_of(&point),
                kept_of(&reference),
                "{name}: kept otherwise"
            );
            assert_eq!(
                links_of(&point),
                links_of(&reference),
                "{name}: linked otherwise"
            );
        }
        assert!(dimg(&["detach", s(&point)]).status.success());
        drop(again);
        let out = tmp.path().join(format!("{name}-out"));
        let mut extract = vec!["extract", s(&image), "-o", s(&out)];
        if encrypted {
            extract.push("-stdinpass");
        }
        let o = dimg_stdin(&extract, pass);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(
            tree_of(&out) == tree_of(&reference),
            "{name}: extracted differently"
        );
        let mut first_aid = vec!["verify", "-fs", s(&image)];
        if encrypted {
            first_aid.push("-stdinpass");
        }
        let o = dimg_stdin(&first_aid, pass);
        assert!(
            o.status.success(),
            "{name}: First Aid: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let disk = tmp.path().join(format!("{name}-disk"));
        let served = Attached::new(
            &[s(&image), "-nomount", "-readonly", "-mountpoint", s(&disk)],
            encrypted.then_some(pass),
        )
        .unwrap();
        let part = disk.join("disks1");
        let part = if part.exists() {
            part
        } else {
            disk.join("disk")
        };
        judge(name, &part, &reference);
        assert!(dimg(&["detach", s(&disk)]).status.success());
        drop(served);
    }
}

/// A FAT volume of a read/write image mounts read/write and takes random changes as a folder
/// does; fsck.fat finds no fault. Run on UDRW and on an AES-256 sparse bundle (the vault).
#[test]
fn a_fat_volume_takes_random_changes_as_a_folder_does() {
    random_changes_hold(
        &[("fat.dmg", false), ("vault.sparsebundle", true)],
        false,
        // FAT32 where it fits (from 33 MB), FAT16 in the vault.
        |image, pass| match pass {
            None => create_blank(image, "64m", "FAT32", pass),
            Some(_) => create_blank(image, "32m", "FAT", pass),
        },
        |_, part, _| {
            run("fsck.fat", &["-n", s(part)]);
        },
    );
}

/// An exFAT volume of a read/write image (UDRW, and an AES-256 sparse bundle) mounts
/// read/write and takes random changes as a folder does; fsck.exfat finds no fault and
/// exfat-fuse reads the same tree. (Debian's 7-Zip opens no exFAT volume.)
#[test]
fn an_exfat_volume_takes_random_changes_as_a_folder_does() {
    random_changes_hold(
        &[("exfat.dmg", false), ("vault.sparsebundle", true)],
        false,
        |image, pass| create_blank(image, "48m", "ExFAT", pass),
        |name, part, reference| {
            // exfat-fuse wants a block device: a loop device over a copy of the volume.
            let judged = tempfile::tempdir().unwrap();
            let copy = judged.path().join("exfat.img");
            fs::copy(part, &copy).unwrap();
            let said = run("fsck.exfat", &["-n", s(&copy)]);
            assert!(said.contains("clean"), "{name}: fsck.exfat: {said}");
            let point = judged.path().join("m");
            let mut mount = common::exfat_fuse(&copy, &point, true);
            let seen = tree_of(&point);
            mount.unmount();
            assert!(
                seen == tree_of(reference),
                "{name}: exfat-fuse reads another tree"
            );
        },
    );
}

/// HFS+ and HFSX volumes of read/write images — UDRW, a sparse image, a sparse bundle, an
/// AES-256 sparse bundle and a raw disk — take random changes as a folder does; libfshfs lists
/// the same files, and 7-Zip extracts the same tree.
#[test]
fn hfs_plus_volumes_take_random_changes_as_a_folder_does() {
    // Journaled and not; HFSX case-sensitive, journaled and not.
    let images = [
        ("journaled.dmg", false),
        ("plus.sparseimage", false),
        ("journaled.sparsebundle", false),
        ("vault.sparsebundle", true),
        ("plus.img", false),
        ("x.dmg", false),
        ("journaled-x.sparseimage", false),
    ];
    random_changes_hold(
        &images,
        true,
        |image, pass| {
            let name = image.file_name().unwrap().to_str().unwrap();
            let fs = match (
                name.starts_with("journaled") || name.starts_with("vault"),
                name.contains("x."),
            ) {
                (true, true) => "JHFSX",
                (true, false) => "JHFS+",
                (false, true) => "HFSX",
                (false, false) => "HFS+",
            };
            create_blank(image, "48m", fs, pass)
        },
        |name, part, reference| {
            let listed = run("fshfsinfo", &["-H", s(part)]);
            for path in tree_of(reference).keys() {
                assert!(
                    listed.contains(&format!("/{path}\n")),
                    "{name}: libfshfs does not list {path}"
                );
            }
            let seven = tempfile::tempdir().unwrap();
            let o = Command::new("7zz")
                .args(["x", "-y", s(part)])
                .arg(format!("-o{}", seven.path().display()))
                .output()
                .unwrap();
            assert!(o.status.success(), "{name}: 7zz: {}", stderr(&o));
            // 7-Zip puts the volume in a folder of its name (none for an empty volume).
            let root = fs::read_dir(seven.path())
                .unwrap()
                .next()
                .map_or(seven.path().to_path_buf(), |e| e.unwrap().path());
            // 7-Zip shows the journal's hidden files, and each attribute as a stream
            // "FILE:NAME": the rest is the tree, and the streams are the attributes. It knows
            // no hard links: each shows as an empty file, and the files they stand for are the
            // private folder's iNode files.
            let mut extracted = tree_of(&root);
            extracted.retain(|path, _| !path.starts_with(".journal"));
            let private = "[HFS+ Private Data]";
            let mut inodes: Vec<Option<Vec<u8>>> = extracted
                .extract_if(.., |path, _| path.starts_with(private))
                .filter(|(path, _)| path != private && !path.contains(':'))
                .map(|(_, bytes)| bytes)
                .collect();
            let streams: BTreeMap<String, Option<Vec<u8>>> = extracted
                .extract_if(.., |path, _| path.contains(':'))
                .collect();
            // A link is an empty file, read-only (as Mac OS X makes one): every path the
            // reference links, and any left alone by the removal of its other links.
            let link_paths: Vec<String> = extracted
                .keys()
                .filter(|path| fs::symlink_metadata(root.join(path)).unwrap().mode() == 0o100444)
                .cloned()
                .collect();
            for path in links_of(reference).iter().flatten() {
                assert!(
                    link_paths.contains(path),
                    "{name}: 7-Zip's {path} is no link"
                );
            }
            let mut want = tree_of(reference);
            let mut linked = BTreeMap::new();
            for path in &link_paths {
                let shown = extracted.remove(path);
                assert_eq!(shown, Some(Some(Vec::new())), "{name}: 7-Zip's {path}");
                let file = fs::symlink_metadata(reference.join(path)).unwrap().ino();
                linked.insert(file, want.remove(path).unwrap());
            }
            let mut linked: Vec<Option<Vec<u8>>> = linked.into_values().collect();
            inodes.sort();
            linked.sort();
            assert!(
                inodes == linked,
                "{name}: 7-Zip's iNode files are not the linked files"
            );
            assert!(extracted == want, "{name}: 7-Zip extracts another tree");
            for (stream, value) in streams {
                let (path, attribute) = stream.rsplit_once(':').unwrap();
                let kept = xattr::get(reference.join(path), format!("user.{attribute}"));
                assert_eq!(kept.unwrap(), value, "{name}: 7-Zip's {stream}");
            }
        },
    );
}

/// SIGKILL to the server during a storm of writes to a journaled HFS+ volume, at ten seeded
/// moments over UDRW, sparse bundles and an AES-256 sparse bundle: attached again, the journal is
/// replayed, First Aid finds the volume clean, and every file whose fsync returned before the kill
/// is there, byte for byte.
#[test]
fn a_killed_server_leaves_a_journaled_volume_whole() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let (seed, _) = random_run();
    let pass = b"correct horse".as_slice();
    let kinds = [
        ("j.dmg", false),
        ("j.sparsebundle", false),
        ("vault.sparsebundle", true),
    ];
    for moment in 0..10u64 {
        let (name, encrypted) = kinds[moment as usize % kinds.len()];
        let pass = encrypted.then_some(pass);
        let image = tmp.path().join(format!("{moment}-{name}"));
        create_blank(&image, "48m", "JHFS+", pass);
        let point = tmp.path().join(format!("{moment}-volume"));
        let args = [s(&image), "-mountpoint", s(&point)];
        let attached = Attached::new(&args, pass).unwrap();
        let pid = attached.pid();
        // A writer that makes files, fsyncs each and says which it finished, until the volume
        // goes; between them it rewrites and deletes a scratch file, so that blocks are freed
        // and taken again. It names files through its open handle on the volume's root: once
        // the killed server's mount is taken away, a path would reach the empty folder under it
        // and go on writing there for ever (seen on a slow run, the test growing to 8 GB).
        let (done_tx, done_rx) = std::sync::mpsc::channel::<(String, Vec<u8>)>();
        let mount_root = fs::File::open(&point).unwrap();
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            use std::os::fd::AsRawFd;
            let root = PathBuf::from(format!("/proc/self/fd/{}", mount_root.as_raw_fd()));
            let mut rng = Rng(seed ^ (moment + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for i in 0u64.. {
                let scratch = root.join("scratch");
                let noise: Vec<u8> = (0..rng.below(60_000)).map(|_| rng.next() as u8).collect();
                fs::write(&scratch, &noise)?;
                if rng.below(2) == 0 {
                    fs::remove_file(&scratch)?;
                }
                let name = format!("file {i}");
                let len = 1 + rng.below(40_000) as usize;
                let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let mut f = fs::File::create(root.join(&name))?;
                f.write_all(&data)?;
                f.sync_all()?;
                if done_tx.send((name, data)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        });
        let mut fsynced = BTreeMap::new();
        let before_kill = 5 + Rng(seed + moment).below(120);
        while (fsynced.len() as u64) < before_kill {
            match done_rx.recv() {
                Ok((name, data)) => fsynced.insert(name, data),
                Err(_) => panic!("the writer stopped: {:?}", writer.join().unwrap()),
            };
        }
        kill(pid);
        for (name, data) in done_rx.iter() {
            fsynced.insert(name, data);
        }
        assert!(
            writer.join().unwrap().is_err(),
            "the writer sees the volume go"
        );
        for helper in helpers_of(&point) {
            kill(helper);
        }
        let _ = Command::new("fusermount3")
            .args(["-u", "-z", s(&point)])
            .output();
        drop(attached);
        let step = format!("seed {seed}, moment {moment} ({name}, {before_kill} fsyncs)");
        let again = Attached::new(&args, pass).unwrap();
        for (file, data) in &fsynced {
            let got = fs::read(point.join(file))
                .unwrap_or_else(|e| panic!("{step}: {file} is gone after its fsync: {e}"));
            assert!(
                got == *data,
                "{step}: {file} lost its fsynced bytes ({} of {} bytes read)",
                got.len(),
                data.len()
            );
        }
        assert!(dimg(&["detach", s(&point)]).status.success());
        drop(again);
        let mut verify = vec!["verify", "-fs", s(&image)];
        if encrypted {
            verify.push("-stdinpass");
        }
        let o = dimg_stdin(&verify, pass.unwrap_or_default());
        assert!(o.status.success(), "{step}: {}{}", stdout(&o), stderr(&o));
    }
}

/// Images macOS made, changed through dimg: an hdiutil UDZO converted to UDRW, changed through
/// the mount (one of its hard links removed, another made) and converted back to UDZO, and
/// macOS's own encrypted sparse bundle (a journaled volume), changed in place. Each is what dimg
/// extracts afterwards — the old files and the changes — and First Aid, libfshfs and 7-Zip (for
/// the UDZO) agree.
#[test]
fn images_macos_made_take_changes_and_pass_every_judge() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = dimg_e2e::corpus();
    let udrw = tmp.path().join("changed.dmg");
    let o = dimg(&[
        "convert",
        s(&corpus.join("dmg/keramics-hfsplus-zlib.dmg")),
        "-format",
        "UDRW",
        "-o",
        s(&udrw),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bundle = tmp.path().join("vault.sparsebundle");
    run(
        "cp",
        &[
            "-r",
            s(&corpus.join("sparse/jief666-test1enc.sparsebundle")),
            s(&bundle),
        ],
    );
    run("chmod", &["-R", "u+w", s(&bundle)]);
    for (image, pass) in [(&udrw, None), (&bundle, Some(b"foo".as_slice()))] {
        let with_pass = |args: &[&str]| {
            let mut args = args.to_vec();
            if pass.is_some() {
                args.push("-stdinpass");
            }
            dimg_stdin(&args, pass.unwrap_or_default())
        };
        let before = tmp.path().join(format!("{}-before", image.display()));
        assert!(with_pass(&["extract", s(image), "-o", s(&before)])
            .status
            .success());
        let point = tmp.path().join("volume");
        // Files with one link, as a read-only mount counts them: the largest to remove (a full
        // volume needs the room), another to append to; and the hard links macOS made.
        let (removed, appended, linked) = {
            let ro = Attached::new(&[s(image), "-readonly", "-mountpoint", s(&point)], pass);
            let ro = ro.unwrap();
            let linked = links_of(&point);
            let mut single: Vec<(u64, String)> = entries_of(&point)
                .into_iter()
                .filter_map(|(path, folder)| {
                    use std::os::unix::fs::MetadataExt;
                    let meta = fs::symlink_metadata(point.join(&path)).unwrap();
                    let plain = !folder && meta.file_type().is_file() && meta.nlink() == 1;
                    plain.then_some((meta.len(), path))
                })
                .collect();
            single.sort();
            assert!(dimg(&["detach", s(&point)]).status.success());
            drop(ro);
            (single.pop().unwrap().1, single.pop().unwrap().1, linked)
        };
        let attached = Attached::new(&[s(image), "-mountpoint", s(&point)], pass).unwrap();
        assert_eq!(attached.json["writable"], true, "{}", image.display());
        // The changes, made to the mount and to a copy of what was there alike.
        let expected = tmp.path().join(format!("{}-expected", image.display()));
        run("cp", &["-r", s(&before), s(&expected)]);
        for root in [&point, &expected] {
            fs::remove_file(root.join(&removed)).unwrap();
            fs::create_dir(root.join("added by dimg")).unwrap();
            fs::write(root.join("added by dimg/notes.txt"), compressible(8_000)).unwrap();
            let mut f = fs::OpenOptions::new()
                .append(true)
                .open(root.join(&appended))
                .unwrap();
            std::io::Write::write_all(&mut f, b"\nappended through dimg\n").unwrap();
            // Of each file macOS linked: one link removed, one made, and the file changed.
            for (n, group) in linked.iter().enumerate() {
                fs::remove_file(root.join(&group[0])).unwrap();
                let link = root.join(format!("added by dimg/link {n}"));
                fs::hard_link(root.join(&group[1]), &link).unwrap();
                let mut f = fs::OpenOptions::new().append(true).open(&link).unwrap();
                std::io::Write::write_all(&mut f, b"\nappended through a link\n").unwrap();
            }
        }
        if image == &udrw {
            assert!(!linked.is_empty(), "hdiutil's volume has its hard links");
            assert_eq!(links_of(&point).len(), linked.len(), "linked anew");
        }
        assert!(dimg(&["detach", s(&point)]).status.success());
        drop(attached);
        let after = tmp.path().join(format!("{}-after", image.display()));
        assert!(with_pass(&["extract", s(image), "-o", s(&after)])
            .status
            .success());
        assert!(
            tree_of(&after) == tree_of(&expected),
            "{}: extracted otherwise",
            image.display()
        );
        let o = with_pass(&["verify", "-fs", s(image)]);
        assert!(o.status.success(), "{}: {}", image.display(), stdout(&o));
    }
    // Back to UDZO: 7-Zip reads it, First Aid and libfshfs find it whole.
    let udzo = tmp.path().join("again.dmg");
    let o = dimg(&["convert", s(&udrw), "-format", "UDZO", "-o", s(&udzo)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = dimg(&["verify", "-fs", s(&udzo)]);
    assert!(o.status.success(), "{}", stdout(&o));
    let listed = run("7zz", &["l", s(&udzo)]);
    assert!(listed.contains("added by dimg/notes.txt"), "{listed}");
    let disk = tmp.path().join("disk");
    let served = Attached::new(&[s(&udzo), "-nomount", "-mountpoint", s(&disk)], None).unwrap();
    // The HFS+ partition is the one libfshfs reads.
    let listings: Vec<String> = fs::read_dir(&disk)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let o = Command::new("fshfsinfo")
                .arg("-H")
                .arg(&p)
                .output()
                .unwrap();
            o.status.success().then(|| stdout(&o))
        })
        .collect();
    assert!(
        listings
            .iter()
            .any(|l| l.contains("/added by dimg/notes.txt\n")),
        "{listings:?}"
    );
    assert!(dimg(&["detach", s(&disk)]).status.success());
    drop(served);
}

/// A small tmpfs (a disk that fills), unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir(path).unwrap();
        let size = format!("size={size}");
        run("mount", &["-t", "tmpfs", "-o", &size, "tmpfs", s(path)]);
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").args(["-l", s(&self.0)]).status();
    }
}

/// A full disk under a growing sparse bundle (a 12 MiB tmpfs under a 64 MiB journaled volume):
/// the writer sees ENOSPC; once there is room again, the image attaches, First Aid finds it
/// clean, and every file fsynced before the disk filled is there.
#[test]
fn a_full_disk_under_a_sparse_bundle_gives_enospc_and_leaves_it_whole() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let small = Tmpfs::new(&tmp.path().join("small"), "12m");
    let small = &small.0;
    let image = small.join("v.sparsebundle");
    create_blank(&image, "64m", "JHFS+", None);
    let point = tmp.path().join("volume");
    let args = [s(&image), "-mountpoint", s(&point)];
    let attached = Attached::new(&args, None).unwrap();
    let mut fsynced = Vec::new();
    let mut rng = Rng(0x5EED);
    let failure = (0..1000)
        .find_map(|i| {
            let name = format!("file {i}");
            let data: Vec<u8> = (0..256 << 10).map(|_| rng.next() as u8).collect();
            let written = fs::File::create(point.join(&name))
                .and_then(|mut f| f.write_all(&data).and_then(|()| f.sync_all()));
            match written {
                Ok(()) => {
                    fsynced.push((name, data));
                    None
                }
                Err(e) => Some(e),
            }
        })
        .expect("the disk fills");
    assert_eq!(failure.raw_os_error(), Some(28), "{failure}");
    assert!(
        fsynced.len() > 5,
        "{} files before the disk filled",
        fsynced.len()
    );
    let _ = dimg(&["detach", s(&point)]);
    drop(attached);
    // Room again: attached, the volume is as its last commit left it (a journal replayed).
    run("mount", &["-o", "remount,size=96m", s(small)]);
    let again = Attached::new(&args, None).unwrap();
    for (name, data) in &fsynced {
        assert!(fs::read(point.join(name)).unwrap() == *data, "{name} lost");
    }
    assert!(dimg(&["detach", s(&point)]).status.success());
    drop(again);
    let o = dimg(&["verify", "-fs", s(&image)]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

/// A compressed image's volume mounted over a shadow file: hdiutil's UDZO takes a new folder and
/// file through the mount while its own bytes stay the same (SHA-256); attached again with the
/// shadow, the changes are there; `convert -shadow` bakes them into a UDZO that 7-Zip lists and
/// First Aid finds whole.
#[test]
fn a_compressed_volume_mounts_writable_over_a_shadow() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("hdiutil.dmg");
    fs::copy(
        dimg_e2e::corpus().join("dmg/keramics-hfsplus-zlib.dmg"),
        &image,
    )
    .unwrap();
    let before = tree_sha(&image);
    let point = tmp.path().join("volume");
    let args = [s(&image), "-shadow", "-mountpoint", s(&point)];
    let attached = Attached::new(&args, None).unwrap();
    assert_eq!(attached.json["writable"], true);
    fs::create_dir(point.join("shadowed")).unwrap();
    fs::write(point.join("shadowed/kept.txt"), compressible(100_000)).unwrap();
    assert!(dimg(&["detach", s(&point)]).status.success());
    drop(attached);
    assert_eq!(tree_sha(&image), before, "the image itself is not written");
    let again = Attached::new(&args, None).unwrap();
    assert_eq!(
        fs::read(point.join("shadowed/kept.txt")).unwrap(),
        compressible(100_000)
    );
    assert!(dimg(&["detach", s(&point)]).status.success());
    drop(again);
    let baked = tmp.path().join("baked.dmg");
    let o = dimg(&[
        "convert",
        s(&image),
        "-shadow",
        "-format",
        "UDZO",
        "-o",
        s(&baked),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = run("7zz", &["l", s(&baked)]);
    assert!(listed.contains("shadowed/kept.txt"), "{listed}");
    let o = dimg(&["verify", "-fs", s(&baked)]);
    assert!(o.status.success(), "{}", stdout(&o));
}

/// Attribute values too large for a record of their own (over 3,802 bytes, up to Linux's 64 KiB)
/// go in blocks of their own, as macOS puts them: they read back through the mount and after
/// attach again, and 7-Zip reads the same values. On a volume whose free space is broken up, a
/// value's blocks need more than one record of extents (which 7-Zip does not read): they read
/// back too, replacing and removing them gives every block of theirs back, and First Aid finds
/// the volume clean.
#[test]
fn large_attributes_go_in_blocks_of_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("attributes.dmg");
    create_blank(&image, "16m", "JHFS+", None);
    let point = tmp.path().join("volume");
    let args = [s(&image), "-mountpoint", s(&point)];
    let free = |point: &Path| {
        let o = run("stat", &["-f", "-c", "%f", s(point)]);
        o.trim().parse::<u64>().unwrap()
    };
    let value = |size: usize, salt: u8| -> Vec<u8> {
        (0..size)
            .map(|i| (i as u8).wrapping_mul(31) ^ salt)
            .collect()
    };
    let read_back = |point: &Path| -> BTreeMap<(String, String), Vec<u8>> {
        ["file", "folder"]
            .iter()
            .flat_map(|entry| {
                let path = point.join(entry);
                xattr::list(&path)
                    .unwrap()
                    .map(|n| {
                        let v = xattr::get(&path, &n).unwrap().unwrap();
                        ((entry.to_string(), n.to_string_lossy().into_owned()), v)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let again = |attached: Attached| {
        assert!(dimg(&["detach", s(&point)]).status.success());
        drop(attached);
        Attached::new(&args, None).unwrap()
    };
    let attached = Attached::new(&args, None).unwrap();
    fs::create_dir(point.join("folder")).unwrap();
    fs::write(point.join("file"), b"data").unwrap();
    let mut kept: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
    let set = |kept: &mut BTreeMap<_, _>, entry: &str, name: &str, v: Vec<u8>| {
        xattr::set(point.join(entry), name, &v).unwrap();
        kept.insert((entry.to_string(), name.to_string()), v);
    };
    for (n, size) in [3802, 3803, 10_000, 40_000, 65_536].into_iter().enumerate() {
        for entry in ["file", "folder"] {
            set(
                &mut kept,
                entry,
                &format!("user.v{size}"),
                value(size, n as u8),
            );
        }
    }
    // Replaced by a small value and by a large one again, and removed.
    set(&mut kept, "file", "user.v65536", b"small now".to_vec());
    set(&mut kept, "file", "user.v65536", value(50_000, 99));
    xattr::remove(point.join("folder"), "user.v10000").unwrap();
    kept.remove(&("folder".to_string(), "user.v10000".to_string()));
    assert!(read_back(&point) == kept, "read back otherwise");
    let too_big = xattr::set(point.join("file"), "user.huge", &value(65_537, 1));
    assert!(too_big.is_err(), "a value over 64 KiB is refused");
    let attached = again(attached);
    assert!(
        read_back(&point) == kept,
        "read back otherwise after attach again"
    );
    assert!(dimg(&["detach", s(&point)]).status.success());
    drop(attached);

    // 7-Zip, given the volume's partition, shows each attribute as a stream "FILE:NAME" of the
    // volume's folder.
    let disk = tmp.path().join("disk");
    let served = Attached::new(
        &[s(&image), "-nomount", "-readonly", "-mountpoint", s(&disk)],
        None,
    )
    .unwrap();
    let seven = tmp.path().join("7z");
    let o = Command::new("7zz")
        .args(["x", "-y", s(&disk.join("disks1"))])
        .arg(format!("-o{}", seven.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "7zz: {}", stderr(&o));
    assert!(dimg(&["detach", s(&disk)]).status.success());
    drop(served);
    for ((entry, name), v) in &kept {
        let stream = format!("{entry}:{}", name.strip_prefix("user.").unwrap());
        let found: Vec<PathBuf> = fs::read_dir(&seven)
            .unwrap()
            .map(|e| e.unwrap().path().join(&stream))
            .filter(|p| p.exists())
            .collect();
        assert_eq!(found.len(), 1, "7-Zip's {stream}");
        assert!(fs::read(&found[0]).unwrap() == *v, "7-Zip's {stream}");
    }

    // Free space in single blocks only: the volume filled with one-block files and a large one,
    // then every other one-block file removed.
    let attached = Attached::new(&args, None).unwrap();
    for i in 0..256 {
        fs::write(point.join(format!("filler {i}")), value(4096, i as u8)).unwrap();
    }
    let mut fill = fs::File::create(point.join("fill")).unwrap();
    for chunk in [1 << 20, 4096] {
        while std::io::Write::write_all(&mut fill, &vec![7u8; chunk]).is_ok() {}
    }
    drop(fill);
    for i in (0..256).step_by(2) {
        fs::remove_file(point.join(format!("filler {i}"))).unwrap();
    }
    let attached = again(attached);
    let free_before = free(&point);
    let mut broken_up = kept.clone();
    for (n, size) in [40_000, 65_536].into_iter().enumerate() {
        set(
            &mut broken_up,
            "file",
            &format!("user.apart{size}"),
            value(size, n as u8),
        );
    }
    set(&mut broken_up, "folder", "user.v65536", value(60_000, 7));
    assert!(
        read_back(&point) == broken_up,
        "read back otherwise in pieces"
    );
    let attached = again(attached);
    assert!(
        read_back(&point) == broken_up,
        "read back otherwise in pieces after attach again"
    );
    assert!(free(&point) < free_before);
    xattr::remove(point.join("file"), "user.apart40000").unwrap();
    xattr::remove(point.join("file"), "user.apart65536").unwrap();
    // The folder's value as it was, in one piece again (the blocks freed above).
    let v = &kept[&("folder".to_string(), "user.v65536".to_string())];
    xattr::set(point.join("folder"), "user.v65536", v).unwrap();
    let attached = again(attached);
    assert!(
        read_back(&point) == kept,
        "read back otherwise once removed"
    );
    assert_eq!(free(&point), free_before, "every block given back");
    assert!(dimg(&["detach", s(&point)]).status.success());
    drop(attached);
    let o = dimg(&["verify", "-fs", s(&image)]);
    assert!(o.status.success(), "{}", stdout(&o));
}

/// `detach` on a read/write volume a process holds: refused, naming it; `-force` takes the volume
/// away from it at once (its write after fails, what it wrote before is in the image, which
/// First Aid finds whole) and names it. And a detach whose server cannot write the volume's last
/// changes (the disk under a sparse bundle full) says so, the volume left as its last commit
/// left it.
#[test]
fn detach_takes_a_busy_writable_volume_and_says_what_it_could_not_write() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("held.dmg");
    create_blank(&image, "16m", "JHFS+", None);
    let point = tmp.path().join("volume");
    let attached = Attached::new(&[s(&image), "-mountpoint", s(&point)], None).unwrap();
    let held = point.join("held");
    let holder = Command::new("sh")
        .arg("-c")
        .arg(r#"exec 3>"$1"; echo first >&3; sleep 2; if echo second >&3; then echo kept; else echo failed; fi"#)
        .args(["sh", s(&held)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the holder's first write", || {
        fs::read(&held).is_ok_and(|b| b == b"first\n")
    });
    let o = dimg(&["detach", s(&point)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(&format!("pid {} (sh)", holder.id())),
        "{}",
        stderr(&o)
    );
    let o = dimg(&["detach", "-force", s(&point)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stdout(&o);
    assert!(
        said.contains(&format!("pid {} (sh) still had files open", holder.id())),
        "{said}"
    );
    assert!(!mounted(&point));
    wait_for("the server to end", || {
        !Path::new(&format!("/proc/{}", attached.pid())).exists()
    });
    drop(attached);
    let out = holder.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "failed");
    let o = dimg(&["verify", "-fs", s(&image)]);
    assert!(o.status.success(), "{}", stdout(&o));
    let extracted = tmp.path().join("extracted");
    assert!(dimg(&["extract", s(&image), "-o", s(&extracted)])
        .status
        .success());
    assert_eq!(fs::read(extracted.join("held")).unwrap(), b"first\n");

    // Changes not yet committed, and no room left under the bundle to commit them.
    let small = Tmpfs::new(&tmp.path().join("small"), "12m");
    let small = &small.0;
    let bundle = small.join("v.sparsebundle");
    create_blank(&bundle, "64m", "JHFS+", None);
    let args = [s(&bundle), "-mountpoint", s(&point)];
    let attached = Attached::new(&args, None).unwrap();
    for i in 0..200 {
        fs::write(point.join(format!("file {i}")), format!("{i}\n")).unwrap();
    }
    fs::create_dir(point.join("folder")).unwrap();
    let mut filler = fs::File::create(small.join("filler")).unwrap();
    while filler.write_all(&[0u8; 64 << 10]).is_ok() {}
    drop(filler);
    let o = dimg(&["detach", s(&point)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("detached, but the volume's last changes could not be written"),
        "{}",
        stderr(&o)
    );
    assert!(!mounted(&point));
    drop(attached);
    fs::remove_file(small.join("filler")).unwrap();
    let o = dimg(&["verify", "-fs", s(&bundle)]);
    assert!(o.status.success(), "{}", stdout(&o));
}

/// An ext4 volume mke2fs made from a folder mounts read-only as the folder: files, symlinks
/// and times, a hard link as one inode at both its names, an extended attribute through
/// getxattr; nothing on it can be changed.
#[test]
fn an_ext4_volume_mounts_as_the_folder_it_was_made_from() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    fs::write(src.join("README.txt"), b"read me\n").unwrap();
    fs::write(src.join("docs/big.bin"), compressible(3 << 20)).unwrap();
    std::os::unix::fs::symlink("../README.txt", src.join("docs/link")).unwrap();
    fs::hard_link(src.join("README.txt"), src.join("docs/again.txt")).unwrap();
    xattr::set(src.join("README.txt"), "user.note", b"beside").unwrap();
    let image = dir.path().join("ext4.img");
    let o = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "linux", "-d", s(&src), s(&image), "16M"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let point = dir.path().join("m");
    let attached = Attached::new(&[s(&image), "-mountpoint", s(&point)], None).unwrap();
    assert_eq!(attached.json["mounts"][0]["name"], "linux");
    let mut want = common::snapshot(&src, true);
    want.insert("lost+found".into(), ('d', String::new(), 0));
    common::assert_same(&common::snapshot(&point, true), &want, "ext4 mount");
    let (a, b) = (
        fs::metadata(point.join("README.txt")).unwrap(),
        fs::metadata(point.join("docs/again.txt")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "one inode, two names");
    assert_eq!(
        xattr::get(point.join("README.txt"), "user.note")
            .unwrap()
            .as_deref(),
        Some(&b"beside"[..])
    );
    let denied = fs::write(point.join("README.txt"), b"changed").unwrap_err();
    assert_eq!(denied.raw_os_error(), Some(libc_erofs()), "{denied}");
    let o = dimg(&["detach", s(&image)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!mounted(&point));
}

/// A UDF bridge disc genisoimage made mounts read-only as its UDF side, which is the folder it
/// was made from: files of many blocks, names in 16-bit CS0, times; nothing on it can be changed.
/// Attached whole, its ISO 9660 side mounts beside it as another volume.
#[test]
fn a_udf_bridge_disc_mounts_as_the_folder_it_was_made_from() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("docs/deeper")).unwrap();
    fs::write(src.join("README.txt"), b"read me\n").unwrap();
    fs::write(src.join("docs/big.bin"), compressible(3 << 20)).unwrap();
    fs::write(src.join("docs/deeper/\u{2603} snow.txt"), b"16-bit").unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    let image = dir.path().join("bridge.iso");
    let o = Command::new("genisoimage")
        .args([
            "-quiet",
            "-input-charset",
            "utf-8",
            "-udf",
            "-R",
            "-V",
            "DVD",
        ])
        .args(["-o", s(&image), s(&src)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let point = dir.path().join("m");
    // The UDF side is the disc's first volume, 0.0; its ISO 9660 side is 0.1.
    let args = [s(&image), "-volume", "0.0", "-mountpoint", s(&point)];
    let attached = Attached::new(&args, None).unwrap();
    assert_eq!(attached.json["mounts"][0]["name"], "DVD");
    common::assert_same(
        &common::snapshot(&point, true),
        &common::snapshot(&src, true),
        "UDF mount",
    );
    let denied = fs::write(point.join("README.txt"), b"changed").unwrap_err();
    assert_eq!(denied.raw_os_error(), Some(libc_erofs()), "{denied}");
    let o = dimg(&["detach", s(&image)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!mounted(&point));

    // Attached whole, the disc mounts both sides where removable media go: UDF's first, then
    // the ISO 9660 side, which Rock Ridge gives the same tree.
    let both = Attached::new(&[s(&image)], None).unwrap();
    let points = both.mount_points();
    assert_eq!(points.len(), 2, "{:#?}", both.json);
    assert_eq!(both.json["mounts"][0]["name"], "DVD");
    for point in &points {
        common::assert_same(
            &common::snapshot(point, true),
            &common::snapshot(&src, true),
            &format!("{}", point.display()),
        );
    }
    let o = dimg(&["detach", s(&image)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(points.iter().all(|p| !mounted(p)));
}

/// An image at a URL attaches read-only, read by range requests through the mount, and detaches
/// by its URL; read/write is refused in a sentence that says why.
#[test]
fn an_image_at_a_url_attaches_read_only_and_detaches_by_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("served");
    fs::create_dir(&folder).unwrap();
    let name = "kaitokit-hfs-zlib.dmg";
    fs::copy(dimg_e2e::corpus().join("dmg").join(name), folder.join(name)).unwrap();
    let server = dimg_e2e::RangeServer::start(&folder, "ranges");
    let url = server.url(name);
    let err = Attached::new(&["-readwrite", &url], None).err().unwrap();
    assert!(err.contains("is on a server"), "{err}");
    let a = Attached::new(&[&url], None).unwrap();
    let point = a.mount_point();
    let truth =
        fs::read_to_string(dimg_e2e::corpus().join("expected-files/kaitokit-hfs-zlib.dmg.tsv"))
            .unwrap();
    for line in truth
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains(":rsrc"))
    {
        let f: Vec<&str> = line.split('\t').collect();
        let path = point.join(f[0].strip_prefix("KaitoTest/").unwrap());
        assert_eq!(sha256(&fs::read(&path).unwrap()), f[2], "{}", f[0]);
    }
    let o = dimg(&["detach", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for("the URL's mount to go", || !mounted(&point));
}
