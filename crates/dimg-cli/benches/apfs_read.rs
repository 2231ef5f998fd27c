//! Reading back what dimg writes, APFS against HFS+ (issue #31), in one run on one folder: the
//! folder made once into a UDRW image each way (uncompressed, so that the file systems are what
//! is timed, not a codec), then `dimg extract` of the whole volume from each, best of three
//! interleaved rounds into a fresh folder (on a tmpfs where there is one):
//!   APFS (Case-sensitive) against HFSX           (goal: at least 1.0× HFS+'s speed)
//!   APFS encrypted by itself against plain APFS  (goal: unlocking adds at most 15%)
//! Run: cargo bench -p dimg-cli --bench apfs_read [-- SIZE_MIB]   (default 512)

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The bench's own password for the encrypted volume, given as a user would, on stdin.
const PASSWORD: &str = "bench password";

/// Runs `dimg ARGS` with `PASSWORD` on its standard input; it must succeed.
fn dimg_with_password(dimg: &str, args: &[&str]) {
    let mut child = Command::new(dimg)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("dimg runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "dimg {args:?} failed");
}

fn main() {
    let mib = common::number_arg(512);
    let dir = common::bench_dir();
    let (tree, bytes) = common::usr_tree(&dir, mib);
    let dimg = env!("CARGO_BIN_EXE_dimg");
    let kinds = [
        ("HFSX", "HFSX", false),
        ("APFS", "Case-sensitive APFS", false),
        ("APFS, encrypted", "Case-sensitive APFS", true),
    ];
    let images: Vec<_> = kinds
        .iter()
        .map(|(name, fs_name, encrypted)| {
            let image = dir.join(format!(
                "usr-{mib}m.{}.udrw.dmg",
                name.replace(", ", "-").to_lowercase()
            ));
            if !image.exists() {
                let mut args = vec!["create", "-format", "UDRW", "-fs", fs_name, "-srcfolder"];
                args.push(common::s(&tree));
                if *encrypted {
                    args.extend(["-apfs-encrypt", "-stdinpass"]);
                }
                args.push(common::s(&image));
                dimg_with_password(dimg, &args);
            }
            image
        })
        .collect();
    // Into memory where there is a tmpfs: on ext4, making 40,000 files just after deleting as
    // many costs more than reading them (its inode allocator skips recently freed inodes) and
    // swamped what is timed.
    let shm = Path::new("/dev/shm");
    let out = if shm.is_dir() { shm } else { &dir }.join("dimg-apfs-read-out");
    let extract = |image: &Path| {
        let _ = fs::remove_dir_all(&out);
        dimg_with_password(
            dimg,
            &[
                "extract",
                "-stdinpass",
                common::s(image),
                "-o",
                common::s(&out),
            ],
        );
    };
    let best = common::best_interleaved(
        3,
        [
            &mut || extract(&images[0]),
            &mut || extract(&images[1]),
            &mut || extract(&images[2]),
        ],
    );
    let _ = fs::remove_dir_all(&out);
    for ((name, ..), s) in kinds.iter().zip(best) {
        println!(
            "dimg extract ({name:<15}) {s:>7.2} s  {:>6.0} MB/s",
            bytes as f64 / 1e6 / s
        );
    }
    println!(
        "APFS reads at {:.2}× the speed of HFSX; unlocking adds {:+.1}% to reading APFS",
        best[0] / best[1],
        (best[2] / best[1] - 1.0) * 100.0
    );
}
