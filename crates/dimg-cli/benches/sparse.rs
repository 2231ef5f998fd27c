//! Sparse images and bundles against UDRW and raw, in one run on one image (a 1 GiB HFSX UDZO of
//! /usr, every file warm):
//!   - converting the UDZO to UDSP and to UDSB vs converting it to UDRW (issue: within 1.1×);
//!   - reading the disk of a sparse bundle (`dimg verify`, which decodes every byte) vs reading
//!     the same disk as a raw file (issue: within 1.1×).
//!
//!   - ASIF (issue #38) against the sparse image: the raw disk converted to each, and each
//!     converted back to raw, all in /dev/shm (issue: ASIF at ≥ 0.9× the sparse image's
//!     throughput both ways);
//!
//!   - blank HFS+ images of 1 TiB (sparse image, sparse bundle, ASIF, UDRW) and a blank 100 GiB UDZO,
//!     whose free space is never read or written (issue: ≤ 1 s, the UDZO ≤ 3 s), with the
//!     peak memory of each.
//!
//! Each timing is the best of three (ASIF and UDSP: of five rounds, taking turns).
//! Run: cargo bench -p dimg-cli --bench sparse [-- SIZE_MIB]   (default 1024)

mod common;

use common::best;

use std::fs;
use std::path::Path;
use std::process::Command;

const DIMG: &str = env!("CARGO_BIN_EXE_dimg");

fn main() {
    let mib = common::number_arg(1024);
    let dir = common::bench_dir();
    let (_, udzo) = common::usr_udzo(&dir, mib, DIMG);
    let out = dir.join("sparse-out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let convert = |format: &str, name: &str| {
        let target = out.join(name);
        best(|| {
            let _ = fs::remove_file(&target).or_else(|_| fs::remove_dir_all(&target));
            run(&["convert", s(&udzo), "-format", format, "-o", s(&target)]);
        })
    };
    let udrw = convert("UDRW", "disk.dmg");
    let udsp = convert("UDSP", "disk.sparseimage");
    let udsb = convert("UDSB", "disk.sparsebundle");
    println!("UDZO → UDRW  {udrw:>7.3} s");
    println!(
        "UDZO → UDSP  {udsp:>7.3} s   {:.2}× UDRW's time",
        udsp / udrw
    );
    println!(
        "UDZO → UDSB  {udsb:>7.3} s   {:.2}× UDRW's time",
        udsb / udrw
    );

    let raw = out.join("disk.cdr");
    run(&["convert", s(&udzo), "-format", "UDTO", "-o", s(&raw)]);
    let bundle = out.join("disk.sparsebundle");
    let read_raw = best(|| run(&["verify", s(&raw)]));
    let read_bundle = best(|| run(&["verify", s(&bundle)]));
    println!("read raw     {read_raw:>7.3} s");
    println!(
        "read bundle  {read_bundle:>7.3} s   {:.2}× raw's time",
        read_bundle / read_raw
    );

    // ASIF and UDSP are written to and decoded into memory (/dev/shm): the ratio measures the
    // formats, not how fast this machine's disk takes 700 MB and its fsync.
    let shm = std::path::Path::new("/dev/shm").join(format!("dimg-sparse-{}", std::process::id()));
    fs::create_dir_all(&shm).unwrap();
    let from_raw = |format: &str, name: &str| {
        let target = shm.join(name);
        let _ = fs::remove_file(&target);
        run(&["convert", s(&raw), "-format", format, "-o", s(&target)]);
        target
    };
    let to_raw = |image: &Path| {
        let target = shm.join("back.cdr");
        let _ = fs::remove_file(&target);
        run(&["convert", s(image), "-format", "UDTO", "-o", s(&target)]);
    };
    let (udsp, asif) = (shm.join("from-raw.sparseimage"), shm.join("from-raw.asif"));
    let [raw_udsp, raw_asif, udsp_raw, asif_raw] = common::best_interleaved(
        5,
        [
            &mut || drop(from_raw("UDSP", "from-raw.sparseimage")),
            &mut || drop(from_raw("ASIF", "from-raw.asif")),
            &mut || to_raw(&udsp),
            &mut || to_raw(&asif),
        ],
    );
    println!("raw → UDSP   {raw_udsp:>7.3} s");
    println!(
        "raw → ASIF   {raw_asif:>7.3} s   {:.2}× UDSP's throughput",
        raw_udsp / raw_asif
    );
    println!("UDSP → raw   {udsp_raw:>7.3} s");
    println!(
        "ASIF → raw   {asif_raw:>7.3} s   {:.2}× UDSP's throughput",
        udsp_raw / asif_raw
    );
    fs::remove_dir_all(&shm).unwrap();

    for (size, kind, name) in [
        ("1t", ["-type", "SPARSE"], "blank.sparseimage"),
        ("1t", ["-type", "SPARSEBUNDLE"], "blank.sparsebundle"),
        ("1t", ["-type", "ASIF"], "blank.asif"),
        ("1t", ["-format", "UDRW"], "blank-udrw.dmg"),
        ("100g", ["-format", "UDZO"], "blank-udzo.dmg"),
    ] {
        let target = out.join(name);
        let mut peak = 0;
        let seconds = best(|| {
            let _ = fs::remove_file(&target).or_else(|_| fs::remove_dir_all(&target));
            let args = [
                "create",
                "-size",
                size,
                kind[0],
                kind[1],
                "-fs",
                "HFS+",
                s(&target),
            ];
            peak = peak.max(peak_kib(&args));
        });
        let _ = fs::remove_file(&target).or_else(|_| fs::remove_dir_all(&target));
        println!(
            "blank {size:>4} {:<13} {seconds:>7.3} s   peak {:.0} MiB",
            kind[1],
            peak as f64 / 1024.0
        );
    }
}

/// Runs `dimg ARGS` under GNU time; its peak resident memory in KiB.
fn peak_kib(args: &[&str]) -> u64 {
    let o = Command::new("/usr/bin/time")
        .args(["-f", "%M", DIMG])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "dimg {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(args: &[&str]) {
    let o = Command::new(DIMG).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "dimg {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
