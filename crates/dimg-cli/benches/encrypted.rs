//! Encrypted-image throughput: encrypting and decrypting the 1 GiB mixed image of the udif bench
//! (run that first to build it), AES-128 and AES-256, as raw (UDTO) inside the encrypted wrapper,
//! so the figures are the cipher's and not a codec's. Target: reading ≥ 1 GB/s on 2 cores.
//! Run: cargo bench -p dimg-cli --bench encrypted

mod common;

use std::path::Path;
use std::time::Instant;

fn run(args: &[&str], pass: &str) -> f64 {
    let start = Instant::now();
    let args: Vec<&str> = args.iter().copied().chain(["-stdinpass"]).collect();
    let done = dimg_e2e::run_with_input(
        Path::new(env!("CARGO_BIN_EXE_dimg")),
        &args,
        pass.as_bytes(),
    );
    assert!(done.status.success(), "{args:?}");
    start.elapsed().as_secs_f64()
}

fn main() {
    let dir = common::bench_dir();
    let raw = dir.join("mixed-1024m.img");
    assert!(
        raw.exists(),
        "run `cargo bench -p dimg-cli --bench udif` first: it builds {}",
        raw.display()
    );
    let size = std::fs::metadata(&raw).unwrap().len() as f64;
    let shm = Path::new("/dev/shm");
    let (enc, out) = (shm.join("dimg-bench.enc.dmg"), shm.join("dimg-bench.plain"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    println!(
        "{:<28} {:>9} {:>9}",
        "run (1 GiB, tmpfs output)", "seconds", "MB/s"
    );
    for bits in ["AES-128", "AES-256"] {
        let t = run(
            &[
                "convert",
                &s(&raw),
                "-format",
                "UDTO",
                "-encryption",
                bits,
                "-o",
                &s(&enc),
                "-ov",
            ],
            "bench",
        );
        println!(
            "{:<28} {:>9.2} {:>9.0}",
            format!("encrypt {bits}"),
            t,
            size / 1e6 / t
        );
        let t = run(
            &[
                "convert",
                &s(&enc),
                "-format",
                "UDTO",
                "-o",
                &s(&out),
                "-ov",
            ],
            "bench",
        );
        println!(
            "{:<28} {:>9.2} {:>9.0}",
            format!("decrypt {bits} (read)"),
            t,
            size / 1e6 / t
        );
        let t = run(&["verify", &s(&enc)], "bench");
        println!(
            "{:<28} {:>9.2} {:>9.0}",
            format!("verify {bits} (+SHA-256)"),
            t,
            size / 1e6 / t
        );
    }
    let _ = std::fs::remove_file(enc);
    let _ = std::fs::remove_file(out);
}
