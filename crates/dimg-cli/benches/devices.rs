//! Devices against their peers, in one run (root: loop devices stand in for disks), on a loop
//! device holding a 1 GiB HFSX disk of real files from /usr:
//!   - imaging the device to raw (`create -srcdevice -format UDTO`) vs `dd bs=4M` (issue: within
//!     1.05×); dimg fsyncs what it writes before renaming it into place, so dd is timed with
//!     `conv=fsync` too, the same work;
//!   - imaging it to UDZO vs dimg's own convert of the same bytes from a raw file (within 1.1×);
//!   - restoring the raw image onto a second loop device without the verify pass vs
//!     `dd bs=4M oflag=direct` (within 1.05×).
//!
//! Every source is read once first, so each tool reads from a warm cache, and each run starts
//! after `sync`, with nothing left for the disk to write. Each timing is the best of five, the
//! tools taking turns.
//! Run: cargo bench -p dimg-cli --bench devices [-- SIZE_MIB]   (default 1024)

mod common;

use common::{run, s, time};
use dimg_e2e::LoopDevice;
use std::fs;

const DIMG: &str = env!("CARGO_BIN_EXE_dimg");

fn main() {
    let mib = common::number_arg(1024);
    let dir = common::bench_dir();
    let (_, udzo) = common::usr_udzo(&dir, mib, DIMG);
    let out = dir.join("devices-out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let raw = out.join("disk.cdr");
    run(
        DIMG,
        &["convert", s(&udzo), "-format", "UDTO", "-o", s(&raw)],
    );
    let size = fs::metadata(&raw).unwrap().len();
    let source = LoopDevice::attach(&raw);
    let device = s(&source.0);
    println!("source: {device}, {} MiB of {}", size >> 20, raw.display());
    run("cat", &[device, s(&raw)]);

    let image = out.join("image.cdr");
    let copy = out.join("copy.raw");
    let (mut dimg_raw, mut dd, mut dd_fsync) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..5 {
        let _ = fs::remove_file(&image);
        dimg_raw = dimg_raw.min(synced(
            DIMG,
            &["create", "-srcdevice", device, "-format", "UDTO", s(&image)],
        ));
        let of = format!("of={}", copy.display());
        let iff = format!("if={device}");
        dd = dd.min(synced("dd", &[&iff, &of, "bs=4M", "status=none"]));
        dd_fsync = dd_fsync.min(synced(
            "dd",
            &[&iff, &of, "bs=4M", "conv=fsync", "status=none"],
        ));
    }
    assert_eq!(dimg_e2e::sha256sum(&image), dimg_e2e::sha256sum(&raw));
    println!("device → raw      dd bs=4M            {dd:>7.3} s");
    println!("device → raw      dd bs=4M conv=fsync {dd_fsync:>7.3} s");
    println!(
        "device → raw      dimg                {dimg_raw:>7.3} s   {:.2}× dd's time, {:.2}× dd with fsync",
        dimg_raw / dd,
        dimg_raw / dd_fsync
    );

    let from_device = out.join("device.dmg");
    let from_file = out.join("file.dmg");
    let (mut device_udzo, mut file_udzo) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let _ = fs::remove_file(&from_device);
        let _ = fs::remove_file(&from_file);
        device_udzo = device_udzo.min(synced(
            DIMG,
            &[
                "create",
                "-srcdevice",
                device,
                "-format",
                "UDZO",
                s(&from_device),
            ],
        ));
        file_udzo = file_udzo.min(synced(
            DIMG,
            &["convert", s(&raw), "-format", "UDZO", "-o", s(&from_file)],
        ));
    }
    println!("raw file → UDZO   dimg convert        {file_udzo:>7.3} s");
    println!(
        "device → UDZO     dimg create         {device_udzo:>7.3} s   {:.2}× convert's time",
        device_udzo / file_udzo
    );
    drop(source);

    let target_file = out.join("target.img");
    fs::File::create(&target_file)
        .unwrap()
        .set_len(size)
        .unwrap();
    let target = LoopDevice::attach(&target_file);
    let device = s(&target.0);
    let (mut dimg_restore, mut dd_direct) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        dimg_restore = dimg_restore.min(synced(
            DIMG,
            &["restore", s(&raw), "-target", device, "-force", "-noverify"],
        ));
        let of = format!("of={device}");
        let iff = format!("if={}", raw.display());
        dd_direct = dd_direct.min(synced(
            "dd",
            &[&iff, &of, "bs=4M", "oflag=direct", "status=none"],
        ));
    }
    assert_eq!(dimg_e2e::sha256sum(&target.0), dimg_e2e::sha256sum(&raw));
    println!("raw → device      dd bs=4M oflag=direct {dd_direct:>7.3} s");
    println!(
        "raw → device      dimg restore        {dimg_restore:>7.3} s   {:.2}× dd's time",
        dimg_restore / dd_direct
    );
}

/// Seconds `program` takes, from a disk with nothing left to write.
fn synced(program: &str, args: &[&str]) -> f64 {
    run("sync", &[]);
    time(program, args)
}
