//! Inputs the fuzzer (fuzz/, `fuzz/run.sh`) found, kept as regression tests: each one must end
//! quickly in a clear error or a bounded result, never a hang or a panic.

mod common;
use common::*;

use dimg_e2e::program;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `dimg ARGS`, which must end within a few seconds, with a clear error (exit 1) or success.
fn ends_quickly(args: &[&str]) -> std::process::Output {
    let started = Instant::now();
    let o = dimg(args);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{args:?} took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{args:?}: {:?} {}",
        o.status,
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    o
}

/// fuzz target `fat`: a FAT volume whose folder entries point at clusters off the volume. The
/// fatfs crate dimg used to read FAT with looked up names along such chains for ever (libFuzzer
/// timeout); dimg's own reader names the bad cluster. Minimized by libFuzzer (3,839 bytes).
#[test]
fn fat_folder_entries_pointing_off_the_volume_are_an_error() {
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzzed/fat-folder-chain.img");
    let o = ends_quickly(&["ls", "-R", s(&image)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("FAT cluster chain"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not on the volume"),
        "{}",
        stderr(&o)
    );
}

/// The loop that finding stood for, made on purpose: a folder whose cluster chain comes back to
/// itself, in a volume mkfs.fat and mtools made. Listing it says so; extracting keeps the rest.
#[test]
fn a_fat_folder_whose_cluster_chain_loops_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("loop.img");
    let made = Command::new(program("mkfs.fat"))
        .args(["-C", s(&image), "1024"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    fs::create_dir_all(dir.path().join("src/sub")).unwrap();
    fs::write(dir.path().join("src/sub/inside.txt"), b"inside\n").unwrap();
    fs::write(dir.path().join("src/top.txt"), b"top\n").unwrap();
    let copied = Command::new(program("mcopy"))
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-s", "-i", s(&image)])
        .arg(dir.path().join("src/sub"))
        .arg(dir.path().join("src/top.txt"))
        .arg("::/")
        .status()
        .unwrap();
    assert!(copied.success());
    let mut bytes = fs::read(&image).unwrap();
    // FAT12: the table follows the reserved sectors; SUB's first cluster is in its root entry.
    let sector = usize::from(u16::from_le_bytes([bytes[11], bytes[12]]));
    let fat = usize::from(u16::from_le_bytes([bytes[14], bytes[15]])) * sector;
    let entry = find(&bytes, b"SUB        ");
    let cluster = usize::from(u16::from_le_bytes([bytes[entry + 26], bytes[entry + 27]]));
    let at = fat + cluster * 3 / 2;
    let pair = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let looped = if cluster % 2 == 0 {
        (pair & 0xF000) | cluster as u16
    } else {
        (pair & 0x000F) | (cluster as u16) << 4
    };
    bytes[at..at + 2].copy_from_slice(&looped.to_le_bytes());
    fs::write(&image, &bytes).unwrap();

    let o = ends_quickly(&["ls", "-R", s(&image)]);
    assert!(
        stderr(&o).contains(&format!(
            "the chain from cluster {cluster} loops back to cluster {cluster}"
        )),
        "{}",
        stderr(&o)
    );
    let out = dir.path().join("out");
    let o = ends_quickly(&["extract", s(&image), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot read /sub"), "{}", stderr(&o));
    assert_eq!(fs::read(out.join("top.txt")).unwrap(), b"top\n");
}
