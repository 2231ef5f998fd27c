//! Virtual machines' disks — qcow2, VMDK, VHD, VHDX, VDI, Parallels — opened as containers:
//! images that qemu-img makes in every format and subformat from a corpus disk (GPT + HFS+)
//! decode to the bytes `qemu-img convert -O raw` gives, show the volume inside, resolve their
//! backing files and parents, and end cleanly when damaged.

mod common;
mod sweep;

use common::{dimg, peer, s, stderr, stdout};
use std::fs;
use std::path::{Path, PathBuf};

/// Every format and subformat qemu-img writes that dimg reads: (qemu's driver, its options,
/// the file's extension, what `info` says the format is).
const KINDS: &[(&str, &str, &str, &str)] = &[
    ("qcow2", "compat=1.1", "qcow2", "qcow2"),
    ("qcow2", "compat=0.10", "qcow2", "qcow2"),
    ("qcow2", "compression_type=zlib", "qcow2", "qcow2"),
    ("qcow2", "compression_type=zstd", "qcow2", "qcow2"),
    ("qcow2", "cluster_size=4096", "qcow2", "qcow2"),
    ("vmdk", "subformat=monolithicSparse", "vmdk", "VMDK"),
    ("vmdk", "subformat=monolithicFlat", "vmdk", "VMDK"),
    ("vmdk", "subformat=twoGbMaxExtentSparse", "vmdk", "VMDK"),
    ("vmdk", "subformat=twoGbMaxExtentFlat", "vmdk", "VMDK"),
    ("vmdk", "subformat=streamOptimized", "vmdk", "VMDK"),
    ("vpc", "subformat=dynamic", "vhd", "VHD"),
    ("vpc", "subformat=fixed", "vhd", "VHD"),
    ("vhdx", "block_size=1M", "vhdx", "VHDX"),
    ("vdi", "static=off", "vdi", "VDI"),
    ("vdi", "static=on", "vdi", "VDI"),
    ("parallels", "cluster_size=1M", "hds", "Parallels disk"),
];

/// The corpus disk every image holds: kaitokit's UDZO (a GPT, an HFS+ volume of files) decoded
/// to raw by dimg.
fn corpus_disk(dir: &Path) -> PathBuf {
    let t = dimg_e2e::truths()
        .into_iter()
        .find(|t| t.file == "dmg/kaitokit-hfs-zlib.dmg")
        .unwrap();
    let raw = dir.join("disk.img");
    let o = dimg(&["convert", s(&t.path()), "-format", "UDTO", "-o", s(&raw)]);
    assert!(o.status.success(), "{}", stderr(&o));
    raw
}

/// `raw` as qemu-img writes it in `kind`, in a folder of its own (split VMDKs are several
/// files); compressed too when `compress`.
fn qemu_image(dir: &Path, raw: &Path, n: usize, kind: &(&str, &str, &str, &str)) -> PathBuf {
    let (driver, options, ext, _) = *kind;
    let folder = dir.join(format!("{n}-{driver}"));
    fs::create_dir_all(&folder).unwrap();
    let image = folder.join(format!("disk.{ext}"));
    let mut args = vec!["convert", "-f", "raw", "-O", driver, "-o", options];
    // qcow2's compressed clusters: every compat and compression type.
    if driver == "qcow2" && options.starts_with("compression_type") {
        args.push("-c");
    }
    args.extend([s(raw), s(&image)]);
    peer("qemu-img", &args);
    image
}

/// The disk qemu-img reads from `image` (in its driver's format).
fn qemu_raw(image: &Path, driver: &str) -> Vec<u8> {
    let raw = image.with_extension("qemu-raw");
    peer(
        "qemu-img",
        &["convert", "-f", driver, "-O", "raw", s(image), s(&raw)],
    );
    let bytes = fs::read(&raw).unwrap();
    fs::remove_file(raw).unwrap();
    bytes
}

/// The disk dimg reads from `image`, converted to raw.
fn dimg_raw(image: &Path) -> Vec<u8> {
    let raw = image.with_extension("dimg-raw");
    let o = dimg(&["convert", s(image), "-format", "UDTO", "-o", s(&raw)]);
    assert!(o.status.success(), "{}: {}", image.display(), stderr(&o));
    let bytes = fs::read(&raw).unwrap();
    fs::remove_file(raw).unwrap();
    bytes
}

fn listing(image: &Path) -> String {
    let o = dimg(&["ls", "-R", s(image)]);
    assert!(o.status.success(), "{}: {}", image.display(), stderr(&o));
    stdout(&o)
}

#[test]
fn every_vm_format_decodes_to_qemu_imgs_disk_and_shows_its_volume() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus_disk(dir.path());
    let files = listing(&raw);
    assert!(files.contains("readme.txt"), "{files}");
    for (n, kind) in KINDS.iter().enumerate() {
        let image = qemu_image(dir.path(), &raw, n, kind);
        let what = format!("{} {}", kind.0, kind.1);
        let want = qemu_raw(&image, kind.0);
        let got = dimg_raw(&image);
        assert!(got == want, "{what}: dimg's disk differs from qemu-img's");
        assert_eq!(listing(&image), files, "{what}");
        let info = stdout(&dimg(&["info", s(&image)]));
        assert!(
            info.contains(&format!("Format:          {}", kind.3)),
            "{what}: {info}"
        );
        assert!(
            info.contains(&format!("Disk size:       {}", group(want.len() as u64))),
            "{what}: {info}"
        );
    }
}

/// `n` with thousands separated by commas, as `info` writes sizes.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn qcow2_facts_compression_and_snapshots_are_in_info() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus_disk(dir.path());
    let image = qemu_image(
        dir.path(),
        &raw,
        0,
        &("qcow2", "compression_type=zstd", "qcow2", "qcow2"),
    );
    peer("qemu-img", &["snapshot", "-c", "before update", s(&image)]);
    let info = stdout(&dimg(&["info", s(&image)]));
    for fact in [
        "qcow2 version:   3 (compat 1.1)",
        "Cluster size:    65536 bytes",
        "Compression:     zstd",
        "Snapshot:        before update (ID 1)",
    ] {
        assert!(info.contains(fact), "{fact}: {info}");
    }
    // qemu-img's own count of what is allocated.
    let map: Vec<serde_json::Value> =
        serde_json::from_str(&peer("qemu-img", &["map", "--output=json", s(&image)])).unwrap();
    let data: u64 = map
        .iter()
        .filter(|m| m["data"] == true)
        .map(|m| m["length"].as_u64().unwrap())
        .sum();
    assert!(
        info.contains(&format!("({data} bytes)")),
        "{data} allocated: {info}"
    );
}

#[test]
fn backing_chains_resolve_relative_to_the_image_and_a_loop_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus_disk(dir.path());
    for (driver, options, ext) in [
        ("qcow2", "compat=1.1", "qcow2"),
        ("vmdk", "subformat=monolithicSparse", "vmdk"),
    ] {
        qemu_image(dir.path(), &raw, 0, &(driver, options, ext, ""));
        // The child lives in another folder and names its base relatively, as qemu-img does.
        let child_dir = dir.path().join(format!("{driver}-child"));
        fs::create_dir_all(&child_dir).unwrap();
        let child = child_dir.join(format!("child.{ext}"));
        let relative = format!("../0-{driver}/disk.{ext}");
        peer(
            "qemu-img",
            &[
                "create",
                "-f",
                driver,
                "-b",
                &relative,
                "-F",
                driver,
                s(&child),
            ],
        );
        // A VMDK child records its parent's content ID: the child is written before a
        // grandchild is made over it, which writes over part of what both hold.
        peer("qemu-io", &["-c", "write -P 0x42 2M 64k", s(&child)]);
        let top = child_dir.join(format!("top.{ext}"));
        peer(
            "qemu-img",
            &[
                "create",
                "-f",
                driver,
                "-b",
                &format!("child.{ext}"),
                "-F",
                driver,
                s(&top),
            ],
        );
        peer("qemu-io", &["-c", "write -P 0x43 2080k 64k", s(&top)]);
        let want = qemu_raw(&top, driver);
        assert_ne!(want, fs::read(&raw).unwrap(), "{driver}: the writes landed");
        assert!(
            dimg_raw(&top) == want,
            "{driver}: dimg's chain differs from qemu-img's"
        );
        let info = stdout(&dimg(&["info", s(&child)]));
        assert!(info.contains(&relative), "{driver}: {info}");
    }
    // A base made to name its own child as its backing file: the chain loops.
    let base = dir.path().join("0-qcow2/disk.qcow2");
    let child = dir.path().join("qcow2-child/child.qcow2");
    peer(
        "qemu-img",
        &[
            "rebase",
            "-u",
            "-f",
            "qcow2",
            "-b",
            s(&child),
            "-F",
            "qcow2",
            s(&base),
        ],
    );
    let o = dimg(&["info", s(&child)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("loops") && err.lines().count() == 1, "{err}");
    // A missing backing file is named.
    fs::remove_file(&base).unwrap();
    let err = stderr(&dimg(&["info", s(&child)]));
    assert!(
        err.contains("backing file") && err.contains("0-qcow2"),
        "{err}"
    );
}

#[test]
fn a_parallels_bundle_opens_by_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus_disk(dir.path());
    let hds = qemu_image(
        dir.path(),
        &raw,
        0,
        &("parallels", "cluster_size=1M", "hds", ""),
    );
    let bundle = dir.path().join("vm.hdd");
    fs::create_dir_all(&bundle).unwrap();
    let guid = "{5fbaabe3-6958-40ff-92a7-860e329aab41}";
    let file = format!("vm.hdd.0.{guid}.hds");
    fs::rename(&hds, bundle.join(&file)).unwrap();
    let sectors = fs::metadata(&raw).unwrap().len() / 512;
    // The descriptor as Parallels Desktop writes it, trimmed to what locates the image.
    fs::write(
        bundle.join("DiskDescriptor.xml"),
        format!(
            "<?xml version='1.0' encoding='UTF-8'?>\n<Parallels_disk_image Version=\"1.0\">\n\
             <Disk_Parameters><Disk_size>{sectors}</Disk_size></Disk_Parameters>\n\
             <StorageData><Storage><Start>0</Start><End>{sectors}</End><Blocksize>2048</Blocksize>\n\
             <Image><GUID>{guid}</GUID><Type>Compressed</Type><File>{file}</File></Image>\n\
             </Storage></StorageData>\n<Snapshots><Shot><GUID>{guid}</GUID>\
             <ParentGUID>{{00000000-0000-0000-0000-000000000000}}</ParentGUID></Shot></Snapshots>\n\
             </Parallels_disk_image>\n"
        ),
    )
    .unwrap();
    let want = qemu_raw(&bundle.join(&file), "parallels");
    assert!(dimg_raw(&bundle) == want);
    assert!(listing(&bundle).contains("readme.txt"));
    let info = stdout(&dimg(&["info", s(&bundle)]));
    assert!(
        info.contains("Parallels disk") && info.contains(&file),
        "{info}"
    );
}

#[test]
fn damaged_vm_disks_end_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus_disk(dir.path());
    let mut outcome = sweep::Outcome {
        cases: 0,
        runs: 0,
        failures: Vec::new(),
    };
    for (n, kind) in KINDS.iter().enumerate() {
        let image = qemu_image(dir.path(), &raw, n, kind);
        // The damaged file is the image itself; a split VMDK's descriptor names its extents.
        let bytes = fs::read(&image).unwrap();
        let name = format!("{} {}", kind.0, kind.1);
        let work = image.parent().unwrap();
        let file = format!("damaged.{}", kind.2);
        let o = sweep::browse_damaged(
            env!("CARGO_BIN_EXE_dimg").as_ref(),
            &[(name, bytes)],
            6,
            n as u64,
            work,
            &file,
        );
        outcome.cases += o.cases;
        outcome.runs += o.runs;
        outcome.failures.extend(o.failures);
    }
    assert!(outcome.cases >= 90, "only {} cases", outcome.cases);
    assert!(
        outcome.failures.is_empty(),
        "{} of {} runs failed:\n{}",
        outcome.failures.len(),
        outcome.runs,
        outcome.failures.join("\n")
    );
}
