//! UDIF throughput and memory against the peers, in one run on one image:
//!   decode  UDZO → raw : dimg vs dmg2img vs qemu-img            (issue: at least 2× the faster peer)
//!   encode  raw → UDZO : dimg vs pigz -p 2 at the same zlib level (issue: ≥ 90 % of pigz's throughput)
//!   size    dimg's UDZO vs zlib at the same level on each 1 MiB chunk (issue: ≤ 1.01×)
//! Run: cargo bench -p dimg-cli --bench udif [-- SIZE_MIB]   (default 1024)
//! The image is a realistic mix, built once under target/bench: real files from /usr (binaries,
//! libraries, text), zero runs, and random data, interleaved in 64 MiB stretches.

mod common;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MIB: u64 = 1 << 20;

fn main() {
    let mib = common::number_arg(1024);
    let dir = common::bench_dir();
    let raw = dir.join(format!("mixed-{mib}m.img"));
    if !raw.exists() {
        make_image(&raw, mib * MIB);
    }
    let size = fs::metadata(&raw).unwrap().len();
    let dimg = env!("CARGO_BIN_EXE_dimg");
    let udzo = dir.join("mixed.udzo.dmg");
    println!(
        "image: {} ({} MiB), {} cores",
        raw.display(),
        size / MIB,
        cores()
    );
    println!(
        "{:<34} {:>8} {:>10} {:>12}",
        "run", "seconds", "MB/s", "peak RSS MB"
    );

    let enc = measure(
        "dimg raw → UDZO (zlib level 1)",
        &[
            dimg,
            "convert",
            s(&raw),
            "-format",
            "UDZO",
            "-o",
            s(&udzo),
            "-ov",
        ],
        size,
    );
    let gz = dir.join("mixed.gz");
    let pigz = measure_to(
        "pigz -p 2 -1 (zlib limit)",
        &["pigz", "-p", "2", "-1", "-c", s(&raw)],
        &gz,
        size,
    );
    let dimg_size = fs::metadata(&udzo).unwrap().len();
    let reference = zlib_per_chunk(&raw, 1);

    // Decoded disks go to memory (tmpfs): the ratio then measures decoding, not the disk. dimg
    // fsyncs its output before renaming it into place; on tmpfs that costs nothing, as for the peers.
    let out = Path::new("/dev/shm").join(format!("dimg-bench-{}.raw", std::process::id()));
    let dec = measure(
        "dimg UDZO → raw",
        &[
            dimg,
            "convert",
            s(&udzo),
            "-format",
            "UDTO",
            "-o",
            s(&out),
            "-ov",
        ],
        size,
    );
    same(&raw, &out, "dimg");
    let d2i = measure(
        "dmg2img",
        &["dmg2img", "-s", "-i", s(&udzo), "-o", s(&out)],
        size,
    );
    same(&raw, &out, "dmg2img");
    let qemu = measure(
        "qemu-img convert -f dmg",
        &[
            "qemu-img",
            "convert",
            "-f",
            "dmg",
            "-O",
            "raw",
            s(&udzo),
            s(&out),
        ],
        size,
    );
    same(&raw, &out, "qemu-img");
    let verify = measure(
        "dimg verify (UDZO, all checksums)",
        &[dimg, "verify", s(&udzo)],
        size,
    );
    fs::remove_file(&out).unwrap();

    println!();
    let faster_peer = d2i.seconds.min(qemu.seconds);
    println!("decode: dimg is {:.2}× the faster peer (dmg2img {:.2}×, qemu-img {:.2}×); peak {:.0} MB (target ≥ 2×, < 64 MiB)",
        faster_peer / dec.seconds, d2i.seconds / dec.seconds, qemu.seconds / dec.seconds, dec.peak_mb);
    println!("encode: dimg runs at {:.0}% of pigz -p 2's throughput; peak {:.0} MB (target ≥ 90%, ≤ 64 MiB)",
        100.0 * pigz.seconds / enc.seconds, enc.peak_mb);
    println!("size:   dimg UDZO {} bytes = {:.4}× zlib level 1 per 1 MiB chunk ({} bytes) (target ≤ 1.01×); pigz -1 stream {} bytes",
        dimg_size, dimg_size as f64 / reference as f64, reference, fs::metadata(&gz).unwrap().len());
    println!("verify: {:.0} MB/s", verify.mb_per_s);
    fs::remove_file(&gz).unwrap();
}

struct Run {
    seconds: f64,
    peak_mb: f64,
    mb_per_s: f64,
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `cmd` under /usr/bin/time for wall time and peak RSS.
fn measure(name: &str, cmd: &[&str], bytes: u64) -> Run {
    run(name, cmd, None, bytes)
}

fn measure_to(name: &str, cmd: &[&str], stdout_to: &Path, bytes: u64) -> Run {
    run(name, cmd, Some(stdout_to), bytes)
}

fn run(name: &str, cmd: &[&str], stdout_to: Option<&Path>, bytes: u64) -> Run {
    let report = std::env::temp_dir().join(format!("dimg-bench-time-{}", std::process::id()));
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "%e %M", "-o", s(&report)])
        .args(cmd)
        .stderr(Stdio::null());
    c.stdout(match stdout_to {
        Some(p) => Stdio::from(File::create(p).unwrap()),
        None => Stdio::null(),
    });
    let status = c
        .status()
        .expect("/usr/bin/time (Debian package time) runs");
    assert!(status.success(), "{name} failed");
    let text = fs::read_to_string(&report).unwrap();
    fs::remove_file(report).unwrap();
    let mut f = text.split_whitespace();
    let seconds: f64 = f.next().unwrap().parse().unwrap();
    let peak_kb: f64 = f.next().unwrap().parse().unwrap();
    let r = Run {
        seconds: seconds.max(0.01),
        peak_mb: peak_kb / 1024.0,
        mb_per_s: bytes as f64 / 1e6 / seconds.max(0.01),
    };
    println!(
        "{name:<34} {:>8.2} {:>10.0} {:>12.1}",
        r.seconds, r.mb_per_s, r.peak_mb
    );
    r
}

fn same(a: &Path, b: &Path, who: &str) {
    let digest = |p: &Path| {
        let out = Command::new("sha256sum").arg(p).output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    };
    assert_eq!(digest(a), digest(b), "{who} decoded a different disk");
}

/// What zlib at `level` makes of each non-zero 1 MiB chunk, summed (Python's zlib: the C library).
fn zlib_per_chunk(raw: &Path, level: u32) -> u64 {
    let script = r#"
import sys, zlib
f = open(sys.argv[1], 'rb'); t = 0
while True:
    c = f.read(1 << 20)
    if not c: break
    if c.count(0) == len(c): continue
    t += min(len(zlib.compress(c, int(sys.argv[2]))), len(c))
print(t)
"#;
    let out = Command::new("python3")
        .args(["-c", script, s(raw), &level.to_string()])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Real files from /usr, zeros and noise, in 64 MiB stretches, to `size` bytes.
fn make_image(path: &Path, size: u64) {
    let mut files: Vec<PathBuf> = Vec::new();
    for root in ["/usr/lib", "/usr/share", "/usr/bin"] {
        collect(Path::new(root), &mut files, 20_000);
    }
    files.sort();
    let mut out = File::create(path).unwrap();
    let mut written = 0u64;
    let mut next_file = 0usize;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let stretch = 64 * MIB;
    let mut k = 0u64;
    while written < size {
        let want = stretch.min(size - written);
        let mut buf: Vec<u8> = Vec::with_capacity(want as usize);
        match k % 8 {
            // 5 of 8 stretches real files, 2 zeros, 1 noise.
            0 | 2 | 3 | 5 | 6 => {
                while (buf.len() as u64) < want && next_file < files.len() {
                    if let Ok(mut f) = File::open(&files[next_file]) {
                        let _ = Read::by_ref(&mut f)
                            .take(want - buf.len() as u64)
                            .read_to_end(&mut buf);
                    }
                    next_file = (next_file + 1) % files.len();
                }
            }
            1 | 4 => buf.resize(want as usize, 0),
            _ => {
                while (buf.len() as u64) < want {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    buf.extend_from_slice(&seed.to_le_bytes());
                }
            }
        }
        buf.resize(want as usize, 0);
        out.write_all(&buf).unwrap();
        written += want;
        k += 1;
    }
}

fn collect(dir: &Path, into: &mut Vec<PathBuf>, max: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if into.len() >= max {
            return;
        }
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => collect(&p, into, max),
            Ok(t) if t.is_file() => into.push(p),
            _ => {}
        }
    }
}
