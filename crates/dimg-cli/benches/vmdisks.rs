//! VM disks → raw: dimg against qemu-img, in one run on one disk (the raw disk of a 1 GiB HFSX
//! UDZO of /usr, made by dimg), each image made by qemu-img: qcow2 (plain and compressed) and
//! VMDK (monolithic sparse and streamOptimized). Issue #38: dimg at ≥ 1.0× qemu-img's throughput.
//! Then the raw disk written as qcow2, VMDK, VDI, VHD, VHDX and Parallels by each (best of three, taking turns).
//! Both write a sparse raw file to memory (/dev/shm): the ratio measures reading, not the disk
//! (dimg fsyncs its output, which costs nothing there, as for qemu-img). Each timing is the best
//! of three, the file cache warm.
//! Run: cargo bench -p dimg-cli --bench vmdisks [-- SIZE_MIB]   (default 1024)

mod common;

use common::{best, s};
use std::fs;
use std::process::Command;

const DIMG: &str = env!("CARGO_BIN_EXE_dimg");

fn main() {
    let mib = common::number_arg(1024);
    let dir = common::bench_dir();
    let (_, udzo) = common::usr_udzo(&dir, mib, DIMG);
    let out = dir.join("vmdisks-out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let raw = out.join("disk.img");
    run(
        DIMG,
        &["convert", s(&udzo), "-format", "UDTO", "-o", s(&raw)],
    );
    for (name, driver, options) in [
        ("qcow2", "qcow2", &[][..]),
        ("qcow2 compressed", "qcow2", &["-c"][..]),
        (
            "VMDK sparse",
            "vmdk",
            &["-o", "subformat=monolithicSparse"][..],
        ),
        (
            "VMDK stream",
            "vmdk",
            &["-o", "subformat=streamOptimized"][..],
        ),
    ] {
        let image = out.join(format!("disk.{driver}"));
        let mut args = vec!["convert", "-f", "raw", "-O", driver];
        args.extend(options);
        args.extend([s(&raw), s(&image)]);
        run("qemu-img", &args);
        let target = std::path::Path::new("/dev/shm")
            .join(format!("dimg-vmdisks-{}.img", std::process::id()));
        let qemu = best(|| {
            let _ = fs::remove_file(&target);
            run(
                "qemu-img",
                &["convert", "-f", driver, "-O", "raw", s(&image), s(&target)],
            );
        });
        let dimg = best(|| {
            let _ = fs::remove_file(&target);
            run(
                DIMG,
                &["convert", s(&image), "-format", "UDTO", "-o", s(&target)],
            );
        });
        println!(
            "{name:<17} → raw  dimg {dimg:>7.3} s  qemu-img {qemu:>7.3} s  {:.2}× qemu-img's throughput",
            qemu / dimg
        );
        let _ = fs::remove_file(&target);
        fs::remove_file(&image).unwrap();
    }
    // And the other way: the raw disk written in each format dimg writes, into /dev/shm.
    for (format, driver) in [
        ("qcow2", "qcow2"),
        ("VMDK", "vmdk"),
        ("VDI", "vdi"),
        ("VHD", "vpc"),
        ("VHDX", "vhdx"),
        ("Parallels", "parallels"),
    ] {
        let target = std::path::Path::new("/dev/shm")
            .join(format!("dimg-vmdisks-{}.{driver}", std::process::id()));
        let [dimg, qemu] = common::best_interleaved(
            3,
            [
                &mut || {
                    let _ = fs::remove_file(&target);
                    run(
                        DIMG,
                        &["convert", s(&raw), "-format", format, "-o", s(&target)],
                    );
                },
                &mut || {
                    let _ = fs::remove_file(&target);
                    run(
                        "qemu-img",
                        &["convert", "-f", "raw", "-O", driver, s(&raw), s(&target)],
                    );
                },
            ],
        );
        println!(
            "raw → {format:<12} dimg {dimg:>7.3} s  qemu-img {qemu:>7.3} s  {:.2}× qemu-img's throughput",
            qemu / dimg
        );
        let _ = fs::remove_file(&target);
    }
    fs::remove_dir_all(&out).unwrap();
}

fn run(program: &str, args: &[&str]) {
    let o = Command::new(program).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
