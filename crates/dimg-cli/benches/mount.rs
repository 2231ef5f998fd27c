//! Reading through `dimg attach`, against dimg's own extract and the FUSE peers, in one run:
//!   - browsing a compressed image as fast as a raw one: `dimg ls -R` and `find` over a fresh
//!     mount, UDZO vs the same disk raw (issue: at most 1.3×);
//!   - sequential: `tar cf - MOUNT | wc -c` vs `dimg extract` of the same UDZO HFS+ volume
//!     (issue: at most 1.25×);
//!   - ISO: the same tar through dimg attach vs Debian's fuseiso (issue: at least as fast);
//!   - HFS+: listing 100,000 entries, `find` on a dimg mount vs `fshfsinfo -H` (Debian's libfshfs
//!     ships no fshfsmount);
//!   - eight parallel readers of different files vs one reader of the same files (issue: at
//!     least 1.5× the throughput on 2 cores);
//!   - the server's peak memory (issue: at most 64 MiB).
//!
//! Every mount is made fresh for its run, so the kernel's caches start cold for dimg and the
//! peers alike; the source files are warm (read once before timing).
//!
//! Run: cargo bench -p dimg-cli --bench mount [-- SIZE_MIB]   (default 1024; needs fuse3, root or
//! a user allowed to mount, fuseiso, libfshfs-utils, genisoimage)

mod common;

use common::{run, s, time};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

const DIMG: &str = env!("CARGO_BIN_EXE_dimg");

fn main() {
    let mib = common::number_arg(1024);
    let dir = common::bench_dir();
    // As the mount table names it, to find the server of a mount.
    let dir = dir.canonicalize().unwrap();
    let (tree, udzo) = common::usr_udzo(&dir, mib, DIMG);
    let raw = dir.join(format!("usr-{mib}m.hfsx.cdr"));
    let iso = dir.join(format!("usr-{mib}m.iso"));
    if !raw.exists() {
        run(
            DIMG,
            &["convert", s(&udzo), "-format", "UDTO", "-o", s(&raw)],
        );
    }
    if !iso.exists() {
        run(
            "genisoimage",
            &[
                "-quiet",
                "-R",
                "-J",
                "-joliet-long",
                "-o",
                s(&iso),
                s(&tree),
            ],
        );
    }
    let mnt = dir.join("mnt");
    fs::create_dir_all(&mnt).unwrap();

    println!("\n== browsing: compressed vs raw (same HFSX volume)");
    let ls_z = best(|| time(DIMG, &["ls", "-R", s(&udzo)]));
    let ls_r = best(|| time(DIMG, &["ls", "-R", s(&raw)]));
    println!(
        "dimg ls -R  UDZO {ls_z:.3} s, raw {ls_r:.3} s: {:.2}× (issue: ≤ 1.3)",
        ls_z / ls_r
    );
    let find_z = best(|| mounted(&udzo, &mnt, |m| time("find", &[s(m)])));
    let find_r = best(|| mounted(&raw, &mnt, |m| time("find", &[s(m)])));
    println!(
        "find mount  UDZO {find_z:.3} s, raw {find_r:.3} s: {:.2}× (issue: ≤ 1.3)",
        find_z / find_r
    );

    println!("\n== sequential: tar of every file through the mount vs dimg extract (UDZO)");
    let out = dir.join("extracted");
    let extract = best(|| {
        let _ = fs::remove_dir_all(&out);
        time(DIMG, &["extract", s(&udzo), "-o", s(&out)])
    });
    let _ = fs::remove_dir_all(&out);
    let (through_mount, peak) = {
        let mut peak = 0;
        let t = best(|| {
            mounted(&udzo, &mnt, |m| {
                let t = tar(m);
                peak = peak.max(common::peak_kib(common::server_pid(DIMG, m)));
                t
            })
        });
        (t, peak)
    };
    println!(
        "dimg extract {extract:.3} s, tar through the mount {through_mount:.3} s: {:.2}× (issue: ≤ 1.25)",
        through_mount / extract
    );
    println!(
        "server peak RSS while it served the tar: {} MiB (issue: ≤ 64)",
        peak >> 10
    );

    println!("\n== ISO: tar through dimg attach vs fuseiso");
    let dimg_iso = best(|| mounted(&iso, &mnt, tar));
    let fuseiso = best(|| {
        run("fuseiso", &["-n", s(&iso), s(&mnt)]);
        let t = tar(&mnt);
        run("fusermount3", &["-u", s(&mnt)]);
        t
    });
    println!(
        "dimg {dimg_iso:.3} s, fuseiso {fuseiso:.3} s: {:.2}× fuseiso's speed (issue: ≥ 1)",
        fuseiso / dimg_iso
    );

    println!("\n== HFS+ listing: 100,000 entries");
    let many = dir.join("tree-100000.hfs.cdr");
    if !many.exists() {
        let tree = dir.join("tree-100000-src");
        common::make_tree(&tree, 100_000);
        run(
            DIMG,
            &[
                "create",
                "-srcfolder",
                s(&tree),
                "-layout",
                "NONE",
                "-format",
                "UDTO",
                s(&many),
            ],
        );
        fs::remove_dir_all(&tree).unwrap();
    }
    let mut peak_many = 0;
    let find_many = best(|| {
        mounted(&many, &mnt, |m| {
            let t = time("find", &[s(m)]);
            peak_many = peak_many.max(common::peak_kib(common::server_pid(DIMG, m)));
            t
        })
    });
    let fshfs = best(|| time("fshfsinfo", &["-H", s(&many)]));
    println!("find on dimg's mount {find_many:.3} s, fshfsinfo -H {fshfs:.3} s: {:.2}× fshfsinfo's speed", fshfs / find_many);
    println!(
        "server peak RSS after listing 100,100 entries: {} MiB (issue: ≤ 64)",
        peak_many >> 10
    );

    println!("\n== parallel readers: the 8 largest files of the UDZO volume");
    let largest = largest_files(&tree, 8);
    let one = best(|| {
        mounted(&udzo, &mnt, |m| {
            let start = Instant::now();
            for f in &largest {
                fs::read(m.join(f)).unwrap();
            }
            start.elapsed().as_secs_f64()
        })
    });
    let eight = best(|| {
        mounted(&udzo, &mnt, |m| {
            let start = Instant::now();
            std::thread::scope(|scope| {
                for f in &largest {
                    let path = m.join(f);
                    scope.spawn(move || fs::read(path).unwrap());
                }
            });
            start.elapsed().as_secs_f64()
        })
    });
    let total: u64 = largest
        .iter()
        .map(|f| fs::metadata(tree.join(f)).unwrap().len())
        .sum();
    println!(
        "{} MiB: one reader {one:.3} s, eight readers {eight:.3} s: {:.2}× the throughput (issue: ≥ 1.5)",
        total >> 20,
        one / eight
    );
}

/// The best of three.
fn best(mut f: impl FnMut() -> f64) -> f64 {
    (0..3).map(|_| f()).fold(f64::MAX, f64::min)
}

/// `tar cf - FOLDER | wc -c`: every file read once, in the folder's order.
fn tar(folder: &Path) -> f64 {
    let start = Instant::now();
    let script = format!("tar cf - -C '{}' . | wc -c", folder.display());
    run("sh", &["-c", &script]);
    start.elapsed().as_secs_f64()
}

/// Runs `f` on a fresh mount of `image` at `at`, then detaches it.
fn mounted<T>(image: &Path, at: &Path, f: impl FnOnce(&Path) -> T) -> T {
    run(DIMG, &["attach", s(image), "-mountpoint", s(at)]);
    let result = f(at);
    run(DIMG, &["detach", s(at)]);
    result
}

/// The `n` largest files under `root`, by path from it.
fn largest_files(root: &Path, n: usize) -> Vec<PathBuf> {
    let mut all: Vec<(u64, PathBuf)> = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let meta = fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            } else if meta.is_file() {
                all.push((
                    meta.len(),
                    e.path().strip_prefix(root).unwrap().to_path_buf(),
                ));
            }
        }
    }
    all.sort_by_key(|f| std::cmp::Reverse(f.0));
    all.into_iter().take(n).map(|(_, p)| p).collect()
}
