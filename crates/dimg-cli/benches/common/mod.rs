//! What the benchmarks share: a folder of real files to make images from.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// The first number among the benchmark's arguments (its size), or `default`.
pub fn number_arg(default: u64) -> u64 {
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(default)
}

/// `target/bench`, where benchmarks keep what they make between runs.
pub fn bench_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `target/bench/usr-{mib}m`: a copy of `mib` MiB of real files from /usr (binaries, libraries,
/// text, images), made once, read once so that every tool starts from a warm cache; said on
/// standard output. Returns the folder and its bytes.
pub fn usr_tree(dir: &Path, mib: u64) -> (PathBuf, u64) {
    let tree = dir.join(format!("usr-{mib}m"));
    if !tree.exists() {
        let (files, bytes) = copy_tree(Path::new("/usr"), &tree, mib << 20);
        println!(
            "copied {files} files, {} MiB of /usr into {}",
            bytes >> 20,
            tree.display()
        );
    }
    let (files, bytes) = warm(&tree);
    println!(
        "folder: {} ({files} files, {} MiB)",
        tree.display(),
        bytes >> 20
    );
    (tree, bytes)
}

/// `usr_tree` and `usr-{mib}m.hfsx.dmg` beside it, an HFSX UDZO of it made once by `dimg` (/usr
/// holds names that differ only in case: HFSX keeps them apart). Returns (folder, image).
pub fn usr_udzo(dir: &Path, mib: u64, dimg: &str) -> (PathBuf, PathBuf) {
    let (tree, _) = usr_tree(dir, mib);
    let udzo = dir.join(format!("usr-{mib}m.hfsx.dmg"));
    if !udzo.exists() {
        let made = std::process::Command::new(dimg)
            .args(["create", "-srcfolder"])
            .arg(&tree)
            .args(["-fs", "HFSX", "-format", "UDZO"])
            .arg(&udzo)
            .status()
            .expect("dimg runs");
        assert!(made.success(), "dimg create of {}", udzo.display());
    }
    (tree, udzo)
}

/// Copies regular files from `from` until `budget` bytes, keeping the tree's shape.
pub fn copy_tree(from: &Path, to: &Path, budget: u64) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut todo: Vec<PathBuf> = vec![from.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(meta) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.is_dir() {
                todo.push(e.path());
            } else if meta.is_file() && bytes + meta.len() <= budget {
                let target = to.join(e.path().strip_prefix(from).unwrap());
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                if fs::copy(e.path(), &target).is_ok() {
                    files += 1;
                    bytes += meta.len();
                }
            }
        }
    }
    (files, bytes)
}

/// Reads every file once, so that no tool pays for the cold cache; returns the count and bytes.
pub fn warm(root: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                bytes += fs::read(&p).map(|b| b.len() as u64).unwrap_or(0);
                files += 1;
            }
        }
    }
    (files, bytes)
}

/// `files` small files spread over 100 folders.
pub fn make_tree(root: &Path, files: usize) {
    for i in 0..files {
        let folder = root.join(format!("folder{:03}", i % 100));
        if i < 100 {
            fs::create_dir_all(&folder).unwrap();
        }
        fs::write(folder.join(format!("file-{i:06}.txt")), format!("{i}\n")).unwrap();
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs a command to its end, which must succeed; its output is thrown away.
pub fn run(program: &str, args: &[&str]) {
    let status = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "{program} {args:?} failed"
    );
}

/// Seconds a command took; its output is thrown away.
pub fn time(program: &str, args: &[&str]) -> f64 {
    let start = std::time::Instant::now();
    run(program, args);
    start.elapsed().as_secs_f64()
}

/// The pid of the server behind mount `at`, as `dimg info --json` lists it.
pub fn server_pid(dimg: &str, at: &Path) -> u32 {
    attachment(dimg, at)["pid"].as_u64().unwrap() as u32
}

/// The attachment behind mount `at`, as `dimg info --json` lists it (its pid, log, mounts).
pub fn attachment(dimg: &str, at: &Path) -> serde_json::Value {
    let info = std::process::Command::new(dimg)
        .args(["info", "--json"])
        .output()
        .unwrap();
    let all: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["mount_point"] == s(at))
        })
        .cloned()
        .expect("the server of the mount")
}

/// Runs `cmd` (its output dropped): seconds taken, and its peak resident memory in KiB (from
/// `wait4`'s `ru_maxrss`, the child's own).
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its usage
pub fn run_measured(cmd: &[String]) -> (f64, u64) {
    use std::process::{Command, Stdio};
    let start = std::time::Instant::now();
    let child = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", cmd[0]));
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for the child just spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both pointers are to live locals.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed"
    );
    (seconds, usage.ru_maxrss as u64)
}

/// The peak resident memory (VmHWM) of process `pid`, in KiB (0 once it is gone).
pub fn peak_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status")).map_or(0, |status| vm_hwm(&status))
}

/// VmHWM from the text of a /proc/PID/status, in KiB.
pub fn vm_hwm(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Seconds of the best of `rounds` runs of each job, the jobs taking turns in every round: a
/// ratio between them then meets the machine's passing load on both sides.
pub fn best_interleaved<const N: usize>(
    rounds: usize,
    mut jobs: [&mut dyn FnMut(); N],
) -> [f64; N] {
    let mut best = [f64::MAX; N];
    for _ in 0..rounds {
        for (job, best) in jobs.iter_mut().zip(&mut best) {
            let start = std::time::Instant::now();
            job();
            *best = best.min(start.elapsed().as_secs_f64());
        }
    }
    best
}

/// Seconds of the best of three runs of `job`.
pub fn best(mut job: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let start = std::time::Instant::now();
            job();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}
