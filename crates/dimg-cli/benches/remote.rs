//! Images read where they live (issue #35), from a local range server (tests/judges/
//! range_server.py) that holds each answer back DELAY ms, as a distant server's round trip:
//!   - `dimg ls` of the volume of a UDZO of /usr by URL: its time, and the share of the image read
//!     (issue: < 2% of its bytes, ≤ 3 s at 20 ms);
//!   - the raw disk fetched by `dimg convert URL -format UDTO` against `curl` downloading the
//!     same file, both into /dev/shm (issue: dimg at ≥ 90% of the link's throughput).
//!
//! Best of three, taking turns.
//! Run: cargo bench -p dimg-cli --bench remote [-- SIZE_MIB [DELAY_MS]]   (defaults 512, 20)

mod common;

use common::s;
use dimg_e2e::RangeServer;
use std::fs;
use std::time::Instant;

const DIMG: &str = env!("CARGO_BIN_EXE_dimg");

fn main() {
    let mib = common::number_arg(512);
    let delay: u32 = std::env::args()
        .filter(|a| !a.starts_with('-'))
        .nth(2)
        .and_then(|d| d.parse().ok())
        .unwrap_or(20);
    let dir = common::bench_dir();
    let (_, udzo) = common::usr_udzo(&dir, mib, DIMG);
    let folder = dir.join("remote-served");
    let _ = fs::remove_dir_all(&folder);
    fs::create_dir_all(&folder).unwrap();
    fs::copy(&udzo, folder.join("usr.dmg")).unwrap();
    common::run(
        DIMG,
        &[
            "convert",
            s(&udzo),
            "-format",
            "UDTO",
            "-o",
            s(&folder.join("usr.cdr")),
        ],
    );
    let server = RangeServer::with_delay(&folder, "ranges", delay);
    let (image, raw) = (server.url("usr.dmg"), server.url("usr.cdr"));

    let before = server.served();
    let start = Instant::now();
    common::run(DIMG, &["ls", &image]);
    let listed = start.elapsed().as_secs_f64();
    let read = server.served() - before;
    let size = fs::metadata(folder.join("usr.dmg")).unwrap().len();
    println!(
        "ls by URL ({delay} ms a round trip)  {listed:.2} s, read {read} of {size} bytes ({:.2}%)",
        read as f64 * 100.0 / size as f64
    );

    let target =
        std::path::Path::new("/dev/shm").join(format!("dimg-remote-{}", std::process::id()));
    let [dimg, curl] = common::best_interleaved(
        3,
        [
            &mut || {
                let _ = fs::remove_file(&target);
                common::run(
                    DIMG,
                    &["convert", &raw, "-format", "UDTO", "-o", s(&target)],
                );
            },
            &mut || {
                let _ = fs::remove_file(&target);
                common::run("curl", &["-sf", "-o", s(&target), &raw]);
            },
        ],
    );
    let bytes = fs::metadata(folder.join("usr.cdr")).unwrap().len() as f64;
    println!(
        "raw disk by URL  dimg {dimg:.2} s ({:.0} MB/s)  curl {curl:.2} s ({:.0} MB/s)  {:.0}% of curl's throughput",
        bytes / 1e6 / dimg,
        bytes / 1e6 / curl,
        curl / dimg * 100.0
    );
    let _ = fs::remove_file(&target);
    drop(server);
    fs::remove_dir_all(&folder).unwrap();
}
