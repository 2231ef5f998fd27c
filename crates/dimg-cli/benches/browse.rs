//! Browsing speed against 7-Zip, in one run per image: list every entry of a volume holding
//! 100,000 files in 100 folders, on each kind dimg browses that 7-Zip lists too —
//! ISO 9660 (Rock Ridge + Joliet, genisoimage), UDF (genisoimage -udf), ext4 (mke2fs -d),
//! NTFS (mkntfs, filled through ntfs-3g) — and exFAT (dimg create), which Debian's 7-Zip does
//! not open: there dimg's time stands alone.
//!   dimg ls -R IMAGE   vs   7zz l IMAGE          (issue: faster than 7-Zip)
//! Run: cargo bench -p dimg-cli --bench browse [-- FILES]   (default 100000)

mod common;

use common::s;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn main() {
    let files = common::number_arg(100_000) as usize;
    let dir = common::bench_dir();
    let tree = dir.join(format!("tree-{files}"));
    let dimg = env!("CARGO_BIN_EXE_dimg");
    // Kind, image, how it is made from the tree, 7-Zip's type for it (None: no 7-Zip), and
    // the entries the volume holds beside the tree (ext's lost+found).
    type Make = fn(&Path, &Path, &str);
    let kinds: [(&str, &str, Make, Option<&str>, usize); 5] = [
        ("ISO 9660", "iso", iso, Some("iso"), 0),
        ("UDF", "udf.iso", udf, Some("udf"), 0),
        ("ext4", "ext4", ext4, Some("ext"), 1),
        ("exFAT", "exfat", exfat, None, 0),
        ("NTFS", "ntfs", ntfs, Some("ntfs"), 0),
    ];
    let mut rows = Vec::new();
    for (kind, suffix, make, seven_type, beside) in kinds {
        let image = dir.join(format!("tree-{files}.{suffix}"));
        if !image.exists() {
            if !tree.exists() {
                common::make_tree(&tree, files);
            }
            make(&tree, &image, dimg);
        }
        let ours = time(dimg, &["ls", "-R", s(&image)]);
        let listed = ours.1.lines().count();
        let want = files + 100 + beside;
        assert_eq!(listed, want, "{kind}: dimg lists every file and folder");
        let theirs = seven_type.map(|t| {
            let theirs = time("7zz", &["l", &format!("-t{t}"), s(&image)]);
            // One line each between 7-Zip's rules.
            let by_7z = theirs
                .1
                .split("\n------------------- ")
                .nth(1)
                .map_or(0, |body| body.lines().count() - 1);
            // 7-Zip lists NTFS's metafiles beside the tree.
            assert!(by_7z >= listed, "{kind}: 7-Zip lists {by_7z}");
            theirs.0
        });
        rows.push((kind, listed, ours.0, theirs));
    }
    if tree.exists() {
        fs::remove_dir_all(&tree).unwrap();
    }
    println!(
        "{:<9} {:>8} {:>10} {:>10} {:>8}",
        "kind", "entries", "dimg ls -R", "7zz l", "ratio"
    );
    for (kind, listed, ours, theirs) in rows {
        match theirs {
            Some(t) => println!(
                "{kind:<9} {listed:>8} {ours:>9.3}s {t:>9.3}s {:>7.2}×",
                t / ours
            ),
            None => println!("{kind:<9} {listed:>8} {ours:>9.3}s {:>10} {:>8}", "-", "-"),
        }
    }
}

fn iso(tree: &Path, image: &Path, _: &str) {
    common::run(
        "genisoimage",
        &["-quiet", "-R", "-J", "-o", s(image), s(tree)],
    );
}

fn udf(tree: &Path, image: &Path, _: &str) {
    common::run(
        "genisoimage",
        &["-quiet", "-udf", "-R", "-o", s(image), s(tree)],
    );
}

fn ext4(tree: &Path, image: &Path, _: &str) {
    // An inode for each 4 KiB: 100,000 files need more than the default gives.
    let args = ["-q", "-F", "-i", "4096", "-d", s(tree), s(image), "600M"];
    common::run("mkfs.ext4", &args);
}

/// mkntfs, then the tree copied in through ntfs-3g (a FUSE mount: under the machine's e2e
/// lock, as the tests mount).
fn ntfs(tree: &Path, image: &Path, _: &str) {
    fs::File::create(image).unwrap().set_len(600 << 20).unwrap();
    common::run("mkntfs", &["-q", "-F", "-f", s(image)]);
    let point = image.with_extension("mnt");
    fs::create_dir_all(&point).unwrap();
    let script =
        "ntfs-3g \"$1\" \"$2\" && cp -r \"$3\"/. \"$2\"/; r=$?; fusermount3 -u \"$2\"; exit $r";
    common::run(
        "flock",
        &[
            "-o",
            "/tmp/dimg-e2e.lock",
            "sh",
            "-c",
            script,
            "sh",
            s(image),
            s(&point),
            s(tree),
        ],
    );
    fs::remove_dir(&point).unwrap();
}

fn exfat(tree: &Path, image: &Path, dimg: &str) {
    let args = [
        "create",
        "-srcfolder",
        s(tree),
        "-fs",
        "ExFAT",
        "-layout",
        "NONE",
    ];
    common::run(dimg, &[&args[..], &["-format", "UDTO", s(image)]].concat());
}

/// Seconds the command took (best of three) and what it printed.
fn time(program: &str, args: &[&str]) -> (f64, String) {
    let mut best = f64::MAX;
    let mut out = String::new();
    for _ in 0..3 {
        let start = Instant::now();
        let o = Command::new(program).args(args).output().unwrap();
        best = best.min(start.elapsed().as_secs_f64());
        assert!(o.status.success(), "{program} {args:?} failed");
        out = String::from_utf8(o.stdout).unwrap();
    }
    (best, out)
}
