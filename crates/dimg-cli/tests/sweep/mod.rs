//! The damage sweep: every corpus image file, truncated, with its head or tail zeroed and with
//! seeded byte flips, run through `info`, `verify`, `ls -R`, `convert` and `extract` under a
//! 2 GiB address-space limit and a 30 s timeout. Shared by the test (a few cases per image) and
//! the benchmark (thousands).
// The damage test and bench run the sweep; the mount test takes only its damaged copies.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a sweep ran and what went wrong.
pub struct Outcome {
    pub cases: usize,
    pub runs: usize,
    pub failures: Vec<String>,
}

/// Damaged copies of `bytes`: `count` of them, the fixed kinds first, then seeded flips.
pub fn variants(bytes: &[u8], count: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    let len = bytes.len();
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, keep) in [
        ("cut-third", len / 3),
        ("cut-two-thirds", len * 2 / 3),
        ("cut-4k", 4096.min(len / 2)),
        ("cut-sector", len.saturating_sub(512)),
    ] {
        out.push((name.into(), bytes[..keep].to_vec()));
    }
    let mut head = bytes.to_vec();
    head[..len.min(64 << 10)].fill(0);
    out.push(("zero-head".into(), head));
    let mut tail = bytes.to_vec();
    tail[len.saturating_sub(1024)..].fill(0);
    out.push(("zero-tail".into(), tail));
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut k = 0;
    while out.len() < count {
        let mut flipped = bytes.to_vec();
        // Most flips land in the first 64 KiB, where the structures are.
        for _ in 0..32 {
            let r = next() as usize;
            // One in four anywhere; the rest within the first 64 KiB.
            let span = match r.is_multiple_of(4) {
                true => len,
                false => len.min(64 << 10),
            };
            let at = r / 4 % span.max(1);
            if let Some(b) = flipped.get_mut(at) {
                *b ^= 1 << (next() % 8);
            }
        }
        out.push((format!("flips-{k}"), flipped));
        k += 1;
    }
    out.truncate(count);
    out
}

/// Runs `dimg` capped; the failure to record, if any.
fn run(dimg: &Path, args: &[&str], what: &str) -> Option<String> {
    let o = Command::new("prlimit")
        .arg("--as=2147483648")
        .arg("--")
        .arg("timeout")
        .arg("30")
        .arg(dimg)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("prlimit and timeout run dimg");
    let stderr = String::from_utf8_lossy(&o.stderr);
    match o.status.code() {
        _ if stderr.contains("panicked") => Some(format!("{what} {args:?}: a panic: {stderr}")),
        Some(0..=2) => None,
        Some(124) => Some(format!("{what} {args:?}: over 30 s")),
        code => Some(format!("{what} {args:?}: exit {code:?}: {stderr}")),
    }
}

/// Runs `info`, `ls -R` and `extract` (into `out`, emptied first) capped on one damaged image;
/// the failures to record.
pub fn browse(dimg: &Path, image: &Path, out: &Path, what: &str) -> Vec<String> {
    let _ = fs::remove_dir_all(out);
    let (i, o) = (image.to_str().unwrap(), out.to_str().unwrap());
    [
        vec!["info", i],
        vec!["ls", "-R", i],
        vec!["extract", i, "-o", o],
    ]
    .iter()
    .filter_map(|args| run(dimg, args, what))
    .collect()
}

/// Runs First Aid (`verify -fs`) capped on one damaged image; the failure to record, if any.
pub fn first_aid(dimg: &Path, image: &Path, what: &str) -> Option<String> {
    run(dimg, &["verify", "-fs", image.to_str().unwrap()], what)
}

/// Browses `count` damaged copies of each of `images` (a name and the bytes), each written to
/// `work` as `file_name`, the seeds told apart by `salt`.
pub fn browse_damaged(
    dimg: &Path,
    images: &[(String, Vec<u8>)],
    count: usize,
    salt: u64,
    work: &Path,
    file_name: &str,
) -> Outcome {
    let mut outcome = Outcome {
        cases: 0,
        runs: 0,
        failures: Vec::new(),
    };
    let (image, out) = (work.join(file_name), work.join("out"));
    for (n, (name, bytes)) in images.iter().enumerate() {
        for (kind, damaged) in variants(bytes, count, n as u64 * 7_919 + salt) {
            fs::write(&image, &damaged).unwrap();
            let failures = browse(dimg, &image, &out, &format!("{name} {kind}"));
            outcome.runs += 3;
            outcome.failures.extend(failures);
            outcome.cases += 1;
        }
    }
    outcome
}

/// Sweeps `count` damaged copies of every corpus image file in `work`.
pub fn sweep(dimg: &Path, work: &Path, count: usize) -> Outcome {
    let mut outcome = Outcome {
        cases: 0,
        runs: 0,
        failures: Vec::new(),
    };
    for (n, t) in dimg_e2e::truths().iter().enumerate() {
        let source = t.path();
        if source.is_dir() {
            continue; // a sparse bundle is a folder, damaged by the sparse tests
        }
        let bytes = fs::read(&source).unwrap();
        let name = source.file_name().unwrap().to_string_lossy().into_owned();
        for (kind, damaged) in variants(&bytes, count, n as u64 * 7919 + 1) {
            let case = work.join(format!("{n}-{kind}"));
            fs::create_dir_all(&case).unwrap();
            let image: PathBuf = case.join(&name);
            fs::write(&image, &damaged).unwrap();
            let what = format!("{}, {kind}", t.file);
            let (raw, folder) = (case.join("out.cdr"), case.join("out"));
            let i = image.to_str().unwrap();
            let runs: [Vec<&str>; 5] = [
                vec!["info", i],
                vec!["verify", i],
                vec!["ls", "-R", i],
                vec!["convert", i, "-format", "UDTO", "-o", raw.to_str().unwrap()],
                vec!["extract", i, "-o", folder.to_str().unwrap()],
            ];
            for args in runs {
                outcome.runs += 1;
                outcome.failures.extend(run(dimg, &args, &what));
            }
            // A failed convert leaves no output and no temporary file beside it.
            let left: Vec<String> = fs::read_dir(&case)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|f| f.starts_with(".dimg-"))
                .collect();
            if !left.is_empty() {
                outcome.failures.push(format!("{what}: left {left:?}"));
            }
            fs::remove_dir_all(&case).unwrap();
            outcome.cases += 1;
        }
    }
    outcome
}
