//! APFS browsing speed against libyal's reader (pyfsapfs), in one run, both timed in-process
//! (no interpreter or program start-up counted), median of many runs, on the corpus containers:
//!   open the container and list the root         (issue #14: under 50 ms)
//!   open it and list every entry, reading every file and attribute
//!                                                (issue #14: at least as fast as pyfsapfs)
//! Run: cargo bench -p dimg-cli --bench apfs

use dimg::fs::{DirEntry, EntryKind, Volume};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const RUNS: usize = 50;
const SAMPLES: [&str; 2] = ["raw/dfvfs-apfs.raw", "apfs/securityronin-apfs-content.bin"];

/// The same two jobs in Python: median seconds of each, printed as "ROOT WALK ENTRIES".
const PYFSAPFS: &str = r#"
import statistics, sys, time, pyfsapfs
def walk(entry):
    n = 0
    for child in entry.sub_file_entries:
        n += 1
        for a in child.extended_attributes:
            a.read_buffer(a.size)
        if child.file_mode & 0o170000 == 0o100000:
            child.read_buffer(child.size)
        if child.file_mode & 0o170000 == 0o040000:
            n += walk(child)
    return n
def run(deep):
    c = pyfsapfs.container(); c.open(sys.argv[1])
    root = c.get_volume(0).get_root_directory()
    n = walk(root) if deep else sum(1 for _ in root.sub_file_entries)
    c.close()
    return n
times = {}
for deep in (False, True):
    t = []
    for _ in range(int(sys.argv[2])):
        s = time.perf_counter(); n = run(deep); t.append(time.perf_counter() - s)
    times[deep] = statistics.median(t)
print(times[False], times[True], n)
"#;

fn volume(image: &Path) -> Box<dyn Volume> {
    let opened = dimg::container::open(image, None).unwrap();
    let disk = opened.container.disk();
    let (_, parts) = dimg::fs::places(&*disk).unwrap();
    let part = Arc::new(parts[0].open(disk.clone()));
    dimg::fs::mount(part, None).unwrap().remove(0)
}

/// Lists every entry under `dir`, reading every file and stream; returns how many.
fn walk(v: &dyn Volume, dir: &DirEntry) -> usize {
    let mut n = 0;
    for e in v.read_dir(dir).unwrap() {
        n += 1;
        for s in &e.streams {
            let data = v.open_stream(&e, &s.name).unwrap();
            let mut b = vec![0u8; data.size() as usize];
            data.read_exact_at(0, &mut b).unwrap();
        }
        match e.kind {
            EntryKind::File => {
                let data = v.open(&e).unwrap();
                let mut b = vec![0u8; data.size() as usize];
                data.read_exact_at(0, &mut b).unwrap();
            }
            EntryKind::Directory => n += walk(v, &e),
            _ => {}
        }
    }
    n
}

fn median(mut job: impl FnMut() -> usize) -> (f64, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut n = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        n = job();
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], n)
}

fn main() {
    let corpus = dimg_e2e::corpus();
    for sample in SAMPLES {
        let image = corpus.join(sample);
        let (root, _) = median(|| {
            let v = volume(&image);
            v.read_dir(&v.root()).unwrap().len()
        });
        let (all, entries) = median(|| {
            let v = volume(&image);
            walk(&*v, &v.root())
        });
        let o = Command::new("python3")
            .args(["-c", PYFSAPFS, image.to_str().unwrap(), &RUNS.to_string()])
            .output()
            .expect("python3 runs");
        assert!(
            o.status.success(),
            "pyfsapfs: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let theirs: Vec<f64> = String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect();
        assert_eq!(theirs[2] as usize, entries, "both walk every entry");
        println!("{sample} ({entries} entries), median of {RUNS}:");
        println!(
            "  open + list root      dimg {:>8.3} ms   pyfsapfs {:>8.3} ms",
            root * 1e3,
            theirs[0] * 1e3
        );
        println!("  open + walk and read  dimg {:>8.3} ms   pyfsapfs {:>8.3} ms   ratio {:.2}× pyfsapfs's speed",
            all * 1e3, theirs[1] * 1e3, theirs[1] / all);
    }
}
