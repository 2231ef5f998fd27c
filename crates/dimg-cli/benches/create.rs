//! Making images from a folder, against the peers, in one run on one folder:
//!   folder → ISO 9660 (Rock Ridge + Joliet): dimg vs genisoimage vs xorriso (issue: no slower
//!   than genisoimage), and folder → UDZO HFSX image (HFS+ as dimg's default is, but /usr holds
//!   names that differ only in case).
//! Run: cargo bench -p dimg-cli --bench create [-- SIZE_MIB]   (default 1024)
//! The folder is a copy of real files from /usr (binaries, libraries, text, images), built once
//! under target/bench, read once before timing so every tool starts from a warm cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let mib: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1024);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    let tree = dir.join(format!("usr-{mib}m"));
    if !tree.exists() {
        let (files, bytes) = copy_tree(Path::new("/usr"), &tree, mib << 20);
        println!(
            "copied {files} files, {} MiB of /usr into {}",
            bytes >> 20,
            tree.display()
        );
    }
    let (files, bytes) = warm(&tree);
    println!(
        "folder: {} ({files} files, {} MiB)",
        tree.display(),
        bytes >> 20
    );
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
    ];
    let mut seconds = Vec::new();
    for (name, cmd) in &runs {
        for stale in ["dimg.iso", "genisoimage.iso", "xorriso.iso", "dimg-hfs.dmg"] {
            let _ = fs::remove_file(out(stale));
        }
        let start = Instant::now();
        let status = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let s = start.elapsed().as_secs_f64();
        assert!(status.success(), "{name} failed");
        println!(
            "{name:<28} {s:>7.2} s  {:>6.0} MB/s",
            bytes as f64 / 1e6 / s
        );
        seconds.push(s);
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
}

/// Copies regular files from `from` until `budget` bytes, keeping the tree's shape.
fn copy_tree(from: &Path, to: &Path, budget: u64) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut todo: Vec<PathBuf> = vec![from.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(meta) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.is_dir() {
                todo.push(e.path());
            } else if meta.is_file() && bytes + meta.len() <= budget {
                let target = to.join(e.path().strip_prefix(from).unwrap());
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                if fs::copy(e.path(), &target).is_ok() {
                    files += 1;
                    bytes += meta.len();
                }
            }
        }
    }
    (files, bytes)
}

/// Reads every file once, so that no tool pays for the cold cache; returns the count and bytes.
fn warm(root: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                bytes += fs::read(&p).map(|b| b.len() as u64).unwrap_or(0);
                files += 1;
            }
        }
    }
    (files, bytes)
}
