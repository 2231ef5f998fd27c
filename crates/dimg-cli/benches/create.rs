//! Making images from a folder, against the peers, in one run on one folder:
//!   folder → ISO 9660 (Rock Ridge + Joliet): dimg vs genisoimage vs xorriso (issue: no slower
//!   than genisoimage), and folder → UDZO HFSX image (HFS+ as dimg's default is, but /usr holds
//!   names that differ only in case), and → UDZO Case-sensitive APFS image: its time against
//!   the HFSX one's (issue #31: at most 1.2×) and both peaks of memory (APFS at most 256 MiB).
//! Run: cargo bench -p dimg-cli --bench create [-- SIZE_MIB]   (default 1024)
//! The folder is a copy of real files from /usr (binaries, libraries, text, images), built once
//! under target/bench, read once before timing so every tool starts from a warm cache.

mod common;

use std::fs;
use std::path::Path;

fn main() {
    let mib = common::number_arg(1024);
    let dir = common::bench_dir();
    let (tree, bytes) = common::usr_tree(&dir, mib);
    let out = |name: &str| dir.join(name);
    let dimg = env!("CARGO_BIN_EXE_dimg");
    let t = |p: &Path| p.to_str().unwrap().to_string();
    let runs = [
        (
            "dimg makehybrid (ISO)",
            vec![
                dimg.into(),
                "makehybrid".into(),
                "-ov".into(),
                "-o".into(),
                t(&out("dimg.iso")),
                t(&tree),
            ],
        ),
        (
            "genisoimage -R -J",
            vec![
                "genisoimage".into(),
                "-quiet".into(),
                "-R".into(),
                "-J".into(),
                "-joliet-long".into(),
                "-o".into(),
                t(&out("genisoimage.iso")),
                t(&tree),
            ],
        ),
        (
            "xorriso -as mkisofs -R -J",
            vec![
                "xorriso".into(),
                "-as".into(),
                "mkisofs".into(),
                "-quiet".into(),
                "-R".into(),
                "-J".into(),
                "-joliet-long".into(),
                "-o".into(),
                t(&out("xorriso.iso")),
                t(&tree),
            ],
        ),
        (
            // HFSX: /usr holds names that differ only in case, which HFS+ cannot keep apart.
            "dimg create (HFSX, UDZO)",
            vec![
                dimg.into(),
                "create".into(),
                "-ov".into(),
                "-fs".into(),
                "HFSX".into(),
                "-srcfolder".into(),
                t(&tree),
                t(&out("dimg-hfs.dmg")),
            ],
        ),
        (
            "dimg create (APFS, UDZO)",
            vec![
                dimg.into(),
                "create".into(),
                "-ov".into(),
                "-fs".into(),
                "Case-sensitive APFS".into(),
                "-srcfolder".into(),
                t(&tree),
                t(&out("dimg-apfs.dmg")),
            ],
        ),
    ];
    let mut seconds = Vec::new();
    let mut peaks = Vec::new();
    for (name, cmd) in &runs {
        for stale in [
            "dimg.iso",
            "genisoimage.iso",
            "xorriso.iso",
            "dimg-hfs.dmg",
            "dimg-apfs.dmg",
        ] {
            let _ = fs::remove_file(out(stale));
        }
        let (s, peak) = common::run_measured(cmd);
        println!(
            "{name:<28} {s:>7.2} s  {:>6.0} MB/s  peak {:>5} MiB",
            bytes as f64 / 1e6 / s,
            peak / 1024
        );
        seconds.push(s);
        peaks.push(peak / 1024);
    }
    println!(
        "ISO: dimg takes {:.2}× genisoimage's time, {:.2}× xorriso's",
        seconds[0] / seconds[1],
        seconds[0] / seconds[2]
    );
    println!(
        "HFSX UDZO: {:.2}× the time of dimg's own ISO",
        seconds[3] / seconds[0]
    );
    println!(
        "APFS UDZO: {:.2}× the time of HFSX UDZO; peak memory {} MiB (HFSX {} MiB)",
        seconds[4] / seconds[3],
        peaks[4],
        peaks[3]
    );
}
