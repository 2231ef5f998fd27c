//! Writing through `dimg attach`, against the FUSE peers, in one run (issue #30's speed and memory):
//!   - copying SIZE MiB of /usr (`cp -r`) into a fresh AES-256 sparse bundle through the mount,
//!     then `sync`, vs gocryptfs copying the same tree into a fresh encrypted folder, then `sync`
//!     (issue: ≥ 0.8× its throughput); `detach` (the server writes what it keeps and brings the
//!     image up to date) is outside that timing and reported beside it, as is gocryptfs's unmount;
//!   - reading it back: `tar cf - MOUNT | wc -c` of a fresh mount with the page cache dropped
//!     (as root), vs the same of a fresh gocryptfs mount (issue: ≥ 1.0×);
//!   - into an unencrypted UDRW: copy + `sync` vs fuse2fs writing the same tree into an ext4 image
//!     file of the same size (issue: ≥ 0.8×);
//!   - the server's peak RSS (VmHWM) during the copy (issue: ≤ 128 MiB), and through detach;
//!   - a sparse bundle holding 50 MB of files: its bytes on disk (`du`) after the copy, and after
//!     the files are deleted and `dimg compact` runs (issue: < 64 MB each).
//!
//! The volumes are HFSX, as in the other benchmarks: /usr holds names that differ only in case,
//! which HFS+ would fold into one file. Copies alternate dimg and its peer, best of two; reads
//! best of three. The source tree is warm; every image, folder and mount is made fresh.
//!
//! Run: cargo bench -p dimg-cli --bench write [-- SIZE_MIB]   (default 1024; root, for dropping
//! the page cache and for fuse2fs; needs fuse3, gocryptfs, fuse2fs, e2fsprogs)

mod common;

use common::{run, s};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const DIMG: &str = env!("CARGO_BIN_EXE_dimg");
const PASSPHRASE: &str = "correct horse battery staple";
const ROUNDS: usize = 2;

/// One copy into a fresh mount: seconds for `cp -r`, for the `sync` after it and for the
/// unmount (dimg's detach, a peer's fusermount3 -u until its process has ended), the serving
/// process's peak RSS after the sync and at its end, in KiB, and what cp could not copy.
#[derive(Clone)]
struct Copy {
    failed: Option<Failed>,
    copy: f64,
    sync: f64,
    unmount: f64,
    peak_copy: u64,
    peak_end: u64,
}

impl Copy {
    fn timed(&self) -> f64 {
        self.copy + self.sync
    }

    fn say(&self, who: &str, bytes: u64) {
        if let Some(f) = &self.failed {
            println!(
                "  {who:<9} cp FAILED after {:.2} s: {} errors, the first: {}",
                self.copy, f.errors, f.first
            );
            return;
        }
        println!(
            "  {who:<9} cp {:7.2} s + sync {:6.2} s = {:7.2} s ({:6.1} MB/s); unmount {:6.2} s; peak RSS {} MiB (end {} MiB)",
            self.copy,
            self.sync,
            self.timed(),
            bytes as f64 / self.timed() / 1e6,
            self.unmount,
            self.peak_copy >> 10,
            self.peak_end >> 10,
        );
    }
}

/// cp's complaints when it could not copy everything.
#[derive(Clone)]
struct Failed {
    errors: usize,
    first: String,
}

fn main() {
    let mib = common::number_arg(1024);
    // As the mount table names it, to find the server of a mount.
    let dir = common::bench_dir().canonicalize().unwrap();
    let (tree, bytes) = common::usr_tree(&dir, mib);
    let size = format!("{}m", mib * 2 + 256);
    let work = dir.join("write");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let mnt = dir.join("mnt-write");
    fs::create_dir_all(&mnt).unwrap();
    let passfile = work.join("passfile");
    fs::write(&passfile, format!("{PASSPHRASE}\n")).unwrap();
    let root = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        println!("(not root: the page cache is not dropped before the reads)");
    }
    println!("images and ext4 file: {size}; mounts at {}", mnt.display());

    println!(
        "\n== AES-256 sparse bundle: cp -r of {} MiB + sync, vs gocryptfs",
        bytes >> 20
    );
    let vault = work.join("vault.sparsebundle");
    let cipher = work.join("gocryptfs");
    let (mut dimg_runs, mut peer_runs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let _ = fs::remove_dir_all(&vault);
        create(
            &[
                "-size",
                &size,
                "-fs",
                "HFSX",
                "-type",
                "SPARSEBUNDLE",
                "-encryption",
                "AES-256",
            ],
            &vault,
            Some(PASSPHRASE),
        );
        let c = dimg_copy(&vault, &mnt, &tree, Some(PASSPHRASE));
        c.say("dimg", bytes);
        dimg_runs.push(c);
        let c = gocryptfs_copy(&cipher, &passfile, &mnt, &tree);
        c.say("gocryptfs", bytes);
        peer_runs.push(c);
    }
    compare("gocryptfs", &dimg_runs, &peer_runs, 0.8);
    let on_disk = du(&vault);
    println!(
        "  the bundle on disk: {:.1} MB ({:.1} MB apparent); gocryptfs's folder: {:.1} MB",
        on_disk.0 as f64 / 1e6,
        on_disk.1 as f64 / 1e6,
        du(&cipher).0 as f64 / 1e6
    );

    println!("\n== reading it back: tar cf - MOUNT | wc -c of a fresh mount, page cache dropped");
    let vault_whole = dimg_runs.last().is_some_and(|c| c.failed.is_none());
    if !vault_whole {
        println!("not measured: the vault does not hold the whole tree (its copy failed)");
    }
    let (mut tar_bytes, mut peer_bytes) = (0, 0);
    let read_dimg = best_of(if vault_whole { 3 } else { 0 }, || {
        attach(&vault, &mnt, Some(PASSPHRASE));
        drop_caches(root);
        let (t, n) = tar(&mnt);
        run(DIMG, &["detach", s(&mnt)]);
        tar_bytes = n;
        t
    });
    let read_peer = best_of(if vault_whole { 3 } else { 0 }, || {
        let peer = mount_peer(
            Command::new("gocryptfs")
                .args(["-f", "-q", "-passfile"])
                .args([&passfile, &cipher, &mnt]),
            &mnt,
        );
        drop_caches(root);
        let (t, n) = tar(&mnt);
        unmount_peer(peer, &mnt);
        peer_bytes = n;
        t
    });
    if vault_whole {
        println!(
        "dimg {read_dimg:.2} s ({:.1} MB/s, {tar_bytes} bytes of tar), gocryptfs {read_peer:.2} s ({peer_bytes} bytes): {:.2}× gocryptfs's speed (issue: ≥ 1.0) {}",
        tar_bytes as f64 / read_dimg / 1e6,
        read_peer / read_dimg,
        verdict(read_peer / read_dimg >= 1.0)
    );
    }

    println!(
        "\n== UDRW: cp -r of {} MiB + sync, vs fuse2fs into an ext4 image",
        bytes >> 20
    );
    let udrw = work.join("disk.dmg");
    let ext4 = work.join("disk.ext4");
    let (mut udrw_runs, mut ext4_runs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let _ = fs::remove_file(&udrw);
        create(
            &["-size", &size, "-fs", "HFSX", "-format", "UDRW"],
            &udrw,
            None,
        );
        let c = dimg_copy(&udrw, &mnt, &tree, None);
        c.say("dimg", bytes);
        udrw_runs.push(c);
        let c = fuse2fs_copy(&ext4, &size, &mnt, &tree, root);
        c.say("fuse2fs", bytes);
        ext4_runs.push(c);
    }
    compare("fuse2fs", &udrw_runs, &ext4_runs, 0.8);
    let _ = fs::remove_file(&udrw);
    let _ = fs::remove_file(&ext4);

    println!("\n== the server's memory");
    let peak = |runs: &[Copy], f: fn(&Copy) -> u64| runs.iter().map(f).max().unwrap_or(0);
    let copy_peak = peak(&dimg_runs, |c| c.peak_copy).max(peak(&udrw_runs, |c| c.peak_copy));
    println!(
        "peak RSS during the copy: {} MiB (AES-256 bundle {} MiB, UDRW {} MiB) (issue: ≤ 128) {}",
        copy_peak >> 10,
        peak(&dimg_runs, |c| c.peak_copy) >> 10,
        peak(&udrw_runs, |c| c.peak_copy) >> 10,
        verdict(copy_peak <= 128 << 10)
    );
    println!(
        "  through detach: AES-256 bundle {} MiB, UDRW {} MiB; gocryptfs {} MiB, fuse2fs {} MiB",
        peak(&dimg_runs, |c| c.peak_end) >> 10,
        peak(&udrw_runs, |c| c.peak_end) >> 10,
        peak(&peer_runs, |c| c.peak_end) >> 10,
        peak(&ext4_runs, |c| c.peak_end) >> 10,
    );

    println!("\n== a sparse bundle holding 50 MB of files: bytes on disk (du)");
    let (small, small_bytes) = common::usr_tree(&dir, 48);
    for encrypted in [false, true] {
        let bundle = work.join("small.sparsebundle");
        let _ = fs::remove_dir_all(&bundle);
        let pass = encrypted.then_some(PASSPHRASE);
        let mut args = vec!["-size", &size, "-fs", "HFSX", "-type", "SPARSEBUNDLE"];
        if encrypted {
            args.extend(["-encryption", "AES-256"]);
        }
        create(&args, &bundle, pass);
        let blank = du(&bundle);
        attach(&bundle, &mnt, pass);
        run("cp", &["-r", &format!("{}/.", s(&small)), s(&mnt)]);
        run("sync", &[]);
        run(DIMG, &["detach", s(&mnt)]);
        let copied = du(&bundle);
        attach(&bundle, &mnt, pass);
        for e in fs::read_dir(&mnt).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                fs::remove_dir_all(&p).unwrap();
            } else {
                fs::remove_file(&p).unwrap();
            }
        }
        run("sync", &[]);
        run(DIMG, &["detach", s(&mnt)]);
        let deleted = du(&bundle);
        with_passphrase(
            Command::new(DIMG)
                .arg("compact")
                .arg(&bundle)
                .args(pass.map(|_| "-stdinpass")),
            pass,
        );
        let compacted = du(&bundle);
        let mb = |b: (u64, u64)| b.0 as f64 / 1e6;
        println!(
            "{} ({:.1} MB of files): blank {:.1} MB, after the copy {:.1} MB {}, files deleted {:.1} MB, after compact {:.1} MB {} (issue: < 64 MB)",
            if encrypted { "AES-256 bundle" } else { "bundle" },
            small_bytes as f64 / 1e6,
            mb(blank),
            mb(copied),
            verdict(copied.0 < 64_000_000),
            mb(deleted),
            mb(compacted),
            verdict(compacted.0 < 64_000_000),
        );
        if compacted.0 >= deleted.0 && deleted.0 > blank.0 {
            println!("  compact gave back none of the bands the deleted files left free");
        }
        let _ = fs::remove_dir_all(&bundle);
    }
    let _ = fs::remove_dir_all(&work);
    let _ = fs::remove_dir(&mnt);
}

/// dimg's best copy + sync against the peer's, as a ratio of throughputs, with the target.
fn compare(peer: &str, dimg: &[Copy], theirs: &[Copy], target: f64) {
    let failed = dimg.iter().filter(|c| c.failed.is_some()).count();
    if failed > 0 || theirs.iter().any(|c| c.failed.is_some()) {
        println!(
            "not measured: {failed} of dimg's {} copies failed (issue: ≥ {target}× {peer}'s throughput) FAIL",
            dimg.len()
        );
        return;
    }
    let (ours, peers) = (best(dimg), best(theirs));
    println!(
        "dimg {ours:.2} s, {peer} {peers:.2} s (cp + sync, best of {ROUNDS}): {:.2}× {peer}'s throughput (issue: ≥ {target}) {}",
        peers / ours,
        verdict(peers / ours >= target)
    );
    println!(
        "  with the unmount too: dimg {:.2} s, {peer} {:.2} s: {:.2}×",
        best_total(dimg),
        best_total(theirs),
        best_total(theirs) / best_total(dimg)
    );
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "FAIL"
    }
}

/// The best copy + sync of `runs`, in seconds.
fn best(runs: &[Copy]) -> f64 {
    runs.iter().map(Copy::timed).fold(f64::MAX, f64::min)
}

/// The best copy + sync + unmount of `runs`, in seconds.
fn best_total(runs: &[Copy]) -> f64 {
    runs.iter()
        .map(|c| c.timed() + c.unmount)
        .fold(f64::MAX, f64::min)
}

fn best_of(n: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..n).map(|_| f()).fold(f64::MAX, f64::min)
}

/// Runs `command` with `passphrase` on its standard input; it must succeed.
fn with_passphrase(command: &mut Command, passphrase: Option<&str>) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(p) = passphrase {
        stdin.write_all(p.as_bytes()).unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success(), "{command:?} failed");
}

/// `dimg create ARGS IMAGE`, encrypted with `passphrase` when one is given.
fn create(args: &[&str], image: &Path, passphrase: Option<&str>) {
    with_passphrase(
        Command::new(DIMG)
            .arg("create")
            .args(args)
            .args(passphrase.map(|_| "-stdinpass"))
            .arg(image),
        passphrase,
    );
}

fn attach(image: &Path, at: &Path, passphrase: Option<&str>) {
    with_passphrase(
        Command::new(DIMG)
            .arg("attach")
            .arg(image)
            .arg("-mountpoint")
            .arg(at)
            .args(passphrase.map(|_| "-stdinpass")),
        passphrase,
    );
}

/// `cp -r TREE/. AT` and `sync`, timed apart, and what cp said if it failed.
fn copy_and_sync(tree: &Path, at: &Path) -> (f64, f64, Option<Failed>) {
    let start = Instant::now();
    let out = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", s(tree)))
        .arg(at)
        .output()
        .unwrap();
    let copy = start.elapsed().as_secs_f64();
    let failed = (!out.status.success()).then(|| {
        let said = String::from_utf8_lossy(&out.stderr);
        Failed {
            errors: said.lines().count(),
            first: said.lines().next().unwrap_or("").to_string(),
        }
    });
    let start = Instant::now();
    run("sync", &[]);
    (copy, start.elapsed().as_secs_f64(), failed)
}

/// Copies `tree` into a fresh mount of `image` (blank), then detaches it.
fn dimg_copy(image: &Path, at: &Path, tree: &Path, passphrase: Option<&str>) -> Copy {
    attach(image, at, passphrase);
    let pid = common::server_pid(DIMG, at);
    let (copy, sync, failed) = copy_and_sync(tree, at);
    let peak_copy = common::peak_kib(pid);
    if failed.is_some() {
        let log = common::attachment(DIMG, at)["log"]
            .as_str()
            .map(|p| fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default();
        println!(
            "  (the server logged {} lines, the last: {})",
            log.lines().count(),
            log.lines().last().unwrap_or("")
        );
    }
    let watch = Watch::start(pid);
    let start = Instant::now();
    run(DIMG, &["detach", s(at)]);
    let unmount = start.elapsed().as_secs_f64();
    Copy {
        failed,
        copy,
        sync,
        unmount,
        peak_copy,
        peak_end: watch.stop(),
    }
}

/// Copies `tree` into a fresh gocryptfs folder `cipher`.
fn gocryptfs_copy(cipher: &Path, passfile: &Path, at: &Path, tree: &Path) -> Copy {
    let _ = fs::remove_dir_all(cipher);
    fs::create_dir_all(cipher).unwrap();
    run(
        "gocryptfs",
        &["-init", "-q", "-passfile", s(passfile), s(cipher)],
    );
    let peer = mount_peer(
        Command::new("gocryptfs")
            .args(["-f", "-q", "-passfile"])
            .args([passfile, cipher, at]),
        at,
    );
    peer_copy(peer, at, tree)
}

/// Copies `tree` into a fresh ext4 image file `image` of `size`, mounted by fuse2fs.
fn fuse2fs_copy(image: &Path, size: &str, at: &Path, tree: &Path, root: bool) -> Copy {
    let _ = fs::remove_file(image);
    run("mkfs.ext4", &["-F", "-q", s(image), size]);
    let mut command = Command::new("fuse2fs");
    command.arg(image).arg(at).arg("-f");
    if !root {
        command.args(["-o", "fakeroot"]);
    }
    let peer = mount_peer(&mut command, at);
    peer_copy(peer, at, tree)
}

fn peer_copy(peer: Child, at: &Path, tree: &Path) -> Copy {
    let pid = peer.id();
    let (copy, sync, failed) = copy_and_sync(tree, at);
    let peak_copy = common::peak_kib(pid);
    let watch = Watch::start(pid);
    let start = Instant::now();
    unmount_peer(peer, at);
    let unmount = start.elapsed().as_secs_f64();
    Copy {
        failed,
        copy,
        sync,
        unmount,
        peak_copy,
        peak_end: watch.stop(),
    }
}

/// Starts a FUSE server in the foreground and waits for its mount at `at`.
fn mount_peer(command: &mut Command, at: &Path) -> Child {
    let mut child = command.stdout(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while !mounted(at) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{command:?} ended ({status}) without mounting");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{command:?} did not mount"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Unmounts a peer's mount and waits for its server to end (it writes what it keeps first).
fn unmount_peer(mut peer: Child, at: &Path) {
    run("fusermount3", &["-u", s(at)]);
    peer.wait().unwrap();
}

fn mounted(at: &Path) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(s(at)))
}

/// `sync; echo 3 > /proc/sys/vm/drop_caches` where root may.
fn drop_caches(root: bool) {
    run("sync", &[]);
    if root {
        fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
    }
}

/// `tar cf - -C FOLDER . | wc -c`: seconds, and the bytes tar wrote.
fn tar(folder: &Path) -> (f64, u64) {
    let start = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("tar cf - -C '{}' . | wc -c", folder.display()))
        .output()
        .unwrap();
    let t = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "tar of {}", folder.display());
    (
        t,
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
    )
}

/// Bytes under `path` on disk (as `du` counts them) and as the files' lengths add up.
fn du(path: &Path) -> (u64, u64) {
    let (mut disk, mut apparent) = (0, 0);
    let mut todo: Vec<PathBuf> = vec![path.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        disk += meta.blocks() * 512;
        if meta.is_dir() {
            todo.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            apparent += meta.len();
        }
    }
    (disk, apparent)
}

/// Follows a process's peak RSS until it ends (VmHWM only grows; the last reading before the
/// process goes is its peak).
struct Watch {
    stop: std::sync::Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Watch {
    fn start(pid: u32) -> Watch {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                match fs::read_to_string(format!("/proc/{pid}/status")) {
                    Ok(status) if !status.contains("State:\tZ") => {
                        peak = peak.max(common::vm_hwm(&status))
                    }
                    _ => break,
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        Watch { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}
