//! Browsing speed against 7-Zip, in one run on one image: list every entry of an ISO 9660 volume
//! (Rock Ridge + Joliet, made by genisoimage) holding 100,000 files in 100 folders.
//!   dimg ls -R IMAGE   vs   7zz l IMAGE          (issue: faster than 7-Zip)
//! Run: cargo bench -p dimg-cli --bench browse [-- FILES]   (default 100000)

mod common;

use std::fs;
use std::process::Command;
use std::time::Instant;

fn main() {
    let files = common::number_arg(100_000) as usize;
    let dir = common::bench_dir();
    let tree = dir.join(format!("tree-{files}"));
    let iso = dir.join(format!("tree-{files}.iso"));
    if !iso.exists() {
        common::make_tree(&tree, files);
        let status = Command::new("genisoimage")
            .args(["-quiet", "-R", "-J", "-o"])
            .arg(&iso)
            .arg(&tree)
            .status()
            .expect("genisoimage runs");
        assert!(status.success());
        fs::remove_dir_all(&tree).unwrap();
    }
    let dimg = env!("CARGO_BIN_EXE_dimg");
    let ours = time(dimg, &["ls", "-R", iso.to_str().unwrap()]);
    let theirs = time("7zz", &["l", iso.to_str().unwrap()]);
    // Every file and folder, by both: dimg one line each; 7-Zip one line each between its rules.
    let listed = ours.1.lines().count();
    let by_7z = theirs
        .1
        .split("\n------------------- ")
        .nth(1)
        .map_or(0, |body| body.lines().count() - 1);
    assert_eq!(listed, files + 100, "dimg lists every file and folder");
    assert_eq!(by_7z, listed, "7-Zip lists as many");
    println!("image: {} ({} entries)", iso.display(), listed);
    println!("dimg ls -R  {:>8.3} s", ours.0);
    println!("7zz l       {:>8.3} s", theirs.0);
    println!("ratio       {:>8.2}× 7-Zip's speed", theirs.0 / ours.0);
}

/// Seconds the command took (best of three) and what it printed.
fn time(program: &str, args: &[&str]) -> (f64, String) {
    let mut best = f64::MAX;
    let mut out = String::new();
    for _ in 0..3 {
        let start = Instant::now();
        let o = Command::new(program).args(args).output().unwrap();
        best = best.min(start.elapsed().as_secs_f64());
        assert!(o.status.success(), "{program} failed");
        out = String::from_utf8(o.stdout).unwrap();
    }
    (best, out)
}
