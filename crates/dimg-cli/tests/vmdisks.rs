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
        let info: serde_json::Value =
            serde_json::from_str(&stdout(&dimg(&["info", "--json", s(&image)]))).unwrap();
        assert_eq!(info["format"], kind.3, "{what}");
        assert_eq!(info["disk_size"], want.len() as u64, "{what}");
    }
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
    // Each kind's image file itself (a split VMDK's descriptor names its extents, which stay
    // whole); opened by content, whatever the damaged copy is named.
    let images: Vec<(String, Vec<u8>)> = KINDS
        .iter()
        .enumerate()
        .map(|(n, kind)| {
            let image = qemu_image(dir.path(), &raw, n, kind);
            (format!("{} {}", kind.0, kind.1), fs::read(&image).unwrap())
        })
        .collect();
    let outcome = sweep::browse_damaged(
        env!("CARGO_BIN_EXE_dimg").as_ref(),
        &images,
        6,
        38,
        dir.path(),
        "damaged.img",
    );
    assert!(outcome.cases >= 90, "only {} cases", outcome.cases);
    assert!(
        outcome.failures.is_empty(),
        "{} of {} runs failed:\n{}",
        outcome.failures.len(),
        outcome.runs,
        outcome.failures.join("\n")
    );
}

/// The one's complement of the byte sum a VHD footer and dynamic header carry at `at`, with
/// that field counted as zeros.
fn vhd_checksum(structure: &mut [u8], at: usize) {
    structure[at..at + 4].fill(0);
    let sum = structure
        .iter()
        .fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    structure[at..at + 4].copy_from_slice(&(!sum).to_be_bytes());
}

/// qemu-img makes no differencing VHD: one is made here from a dynamic disk qemu-img made and
/// wrote to, as the VHD specification lays it out — the footer's type 4, the parent's ID in the
/// dynamic header, a relative (W2ru) parent locator, and the written block's sector bitmap
/// naming only the sectors written. libyal's libvhdi (PyPI) reads it with its parent as the
/// judge.
#[test]
fn a_differencing_vhd_reads_its_parent_through_its_locator() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus_disk(dir.path());
    fs::create_dir_all(dir.path().join("base")).unwrap();
    let parent = dir.path().join("base/parent.vhd");
    peer(
        "qemu-img",
        &["convert", "-f", "raw", "-O", "vpc", s(&raw), s(&parent)],
    );
    let size = fs::read(&parent)
        .map(|p| p[p.len() - 512 + 48..][..8].to_vec())
        .unwrap();
    let size = u64::from_be_bytes(size.try_into().unwrap());
    let child = dir.path().join("child.vhd");
    peer(
        "qemu-img",
        &["create", "-f", "vpc", s(&child), &size.to_string()],
    );
    peer(
        "qemu-io",
        &["-f", "vpc", "-c", "write -P 0x44 1M 4k", s(&child)],
    );
    let mut file = fs::read(&child).unwrap();
    let parent_footer = fs::read(&parent).unwrap();
    let parent_id = &parent_footer[parent_footer.len() - 512 + 68..][..16];
    // The locator's text goes where the footer was; the footer moves past it.
    let locator_at = file.len() - 512;
    let path: Vec<u8> = ".\\base\\parent.vhd"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut footer = file.split_off(locator_at);
    let mut locator = path.clone();
    locator.resize(512, 0);
    file.extend(&locator);
    footer[60..64].copy_from_slice(&4u32.to_be_bytes());
    vhd_checksum(&mut footer, 64);
    file[..512].copy_from_slice(&footer);
    file.extend(&footer);
    let mut header = file[512..1536].to_vec();
    header[40..56].copy_from_slice(parent_id);
    let name: Vec<u8> = "parent.vhd"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    header[64..64 + name.len()].copy_from_slice(&name);
    let entry = &mut header[576..600];
    entry[..4].copy_from_slice(b"W2ru");
    entry[4..8].copy_from_slice(&512u32.to_be_bytes());
    entry[8..12].copy_from_slice(&(path.len() as u32).to_be_bytes());
    entry[16..24].copy_from_slice(&(locator_at as u64).to_be_bytes());
    vhd_checksum(&mut header, 36);
    file[512..1536].copy_from_slice(&header);
    // qemu-img marked every sector of the block it allocated; only the eight written are the
    // child's.
    let bat_at = u64::from_be_bytes(header[16..24].try_into().unwrap()) as usize;
    let block_at = u32::from_be_bytes(file[bat_at..bat_at + 4].try_into().unwrap()) as usize * 512;
    let bitmap = &mut file[block_at..block_at + 512];
    bitmap.fill(0);
    bitmap[2048 / 8] = 0xFF;
    fs::write(&child, &file).unwrap();

    let mut want = fs::read(&raw).unwrap();
    want.resize(size as usize, 0);
    want[1 << 20..(1 << 20) + 4096].fill(0x44);
    let judged = dir.path().join("judged.img");
    let o = std::process::Command::new("python3")
        .args([
            "-c",
            "import pyvhdi, sys\n\
             parent = pyvhdi.file(); parent.open(sys.argv[2])\n\
             child = pyvhdi.file(); child.open(sys.argv[1]); child.set_parent(parent)\n\
             open(sys.argv[3], 'wb').write(child.read_buffer_at_offset(child.get_media_size(), 0))",
            s(&child),
            s(&parent),
            s(&judged),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "pyvhdi: {}", stderr(&o));
    assert!(
        fs::read(&judged).unwrap() == want,
        "libvhdi reads another disk"
    );
    assert!(
        dimg_raw(&child) == want,
        "dimg reads another disk than libvhdi"
    );
    let info = stdout(&dimg(&["info", s(&child)]));
    assert!(
        info.contains("differencing") && info.contains("./base/parent.vhd"),
        "{info}"
    );
    // Without its parent, the child names what it misses.
    fs::remove_file(&parent).unwrap();
    let err = stderr(&dimg(&["info", s(&child)]));
    assert!(
        err.contains("parent.vhd") && err.lines().count() == 1,
        "{err}"
    );
}

/// A format dimg writes a VM disk in.
struct Written {
    format: &'static str,
    extension: &'static str,
    /// qemu's driver for it.
    driver: &'static str,
    /// The block only whose data is stored.
    block: usize,
    /// Whether `qemu-img check` knows the format.
    checked: bool,
    /// dissect.hypervisor's reader for it.
    dissect: Option<&'static str>,
}

const WRITTEN: &[Written] = &[
    Written {
        format: "qcow2",
        extension: "qcow2",
        driver: "qcow2",
        block: 64 << 10,
        checked: true,
        dissect: None,
    },
    Written {
        format: "VHD",
        extension: "vhd",
        driver: "vpc",
        block: 2 << 20,
        checked: false,
        dissect: Some("VHD"),
    },
    Written {
        format: "VDI",
        extension: "vdi",
        driver: "vdi",
        block: 1 << 20,
        checked: true,
        dissect: Some("VDI"),
    },
    Written {
        format: "VMDK",
        extension: "vmdk",
        driver: "vmdk",
        block: 64 << 10,
        checked: true,
        dissect: Some("VMDK"),
    },
    Written {
        format: "VHDX",
        extension: "vhdx",
        driver: "vhdx",
        block: 32 << 20,
        checked: true,
        dissect: Some("VHDX"),
    },
    Written {
        format: "Parallels",
        extension: "hds",
        driver: "parallels",
        block: 1 << 20,
        checked: true,
        dissect: None,
    },
];

/// `convert -format qcow2|VHD|VHDX|VDI|VMDK|Parallels`: qemu-img checks each image dimg writes (refcounts,
/// tables, grains past the end) and reads the same disk from it, as dissect.hypervisor does,
/// from a raw disk and from another VM format whose size is not a whole number of blocks; only
/// the blocks that hold data are stored (qemu-img's map of the image says which).
#[test]
fn convert_writes_vm_disks_that_qemu_img_checks_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus_disk(dir.path());
    let vhd = qemu_image(
        dir.path(),
        &raw,
        0,
        &("vpc", "subformat=dynamic", "vhd", ""),
    );
    for (n, source) in [&raw, &vhd].into_iter().enumerate() {
        let want = dimg_raw(source);
        let digest = hex(&<sha2::Sha256 as sha2::Digest>::digest(&want));
        for w in WRITTEN {
            let Written {
                format,
                extension,
                driver,
                block,
                checked,
                dissect,
            } = *w;
            let image = dir.path().join(format!("out-{n}.{extension}"));
            let what = format!("{format} of {}", source.display());
            let o = dimg(&["convert", s(source), "-format", format, "-o", s(&image)]);
            assert!(o.status.success(), "{what}: {}", stderr(&o));
            if checked {
                let check = peer("qemu-img", &["check", "-f", driver, s(&image)]);
                assert!(check.contains("No errors were found"), "{what}: {check}");
            }
            assert!(qemu_raw(&image, driver) == want, "{what}");
            if let Some(kind) = dissect {
                let o = common::judge_script("dissect_vm_disk.py")
                    .args([kind, s(&image)])
                    .output()
                    .unwrap();
                assert!(o.status.success(), "{what}: {}", stderr(&o));
                let read: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                assert_eq!(read["size"], want.len(), "{what}");
                assert_eq!(read["sha256"], digest.as_str(), "{what}");
            }
            let map = peer(
                "qemu-img",
                &["map", "-f", driver, "--output=json", s(&image)],
            );
            let map: serde_json::Value = serde_json::from_str(&map).unwrap();
            let stored: u64 = map
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["data"] == true)
                .map(|m| m["length"].as_u64().unwrap())
                .sum();
            let data: u64 = want
                .chunks(block)
                .filter(|c| c.iter().any(|&b| b != 0))
                .map(|c| c.len() as u64)
                .sum();
            assert_eq!(stored, data, "{what}: only blocks with data are stored");
            assert_eq!(dimg_raw(&image), want, "{what}: dimg reads it back");
        }
    }
    // A name that says another format is refused, and nothing is left.
    let o = dimg(&[
        "convert",
        s(&raw),
        "-format",
        "qcow2",
        "-o",
        s(&dir.path().join("x.dmg")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.path().join("x.dmg").exists());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a format cannot hold is refused in a sentence before anything is written: a disk that
/// ends within a sector (the corpus's Nero CD: 710,304 bytes; VHD, VHDX, VDI and VMDK count in
/// sectors), a disk larger than a VHD or a sparse VMDK describes.
#[test]
fn vm_disks_a_format_cannot_hold_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dimg_e2e::truths()
        .into_iter()
        .find(|t| t.file == "cd/p1.nrg")
        .unwrap()
        .path();
    let big = dir.path().join("big.qcow2");
    peer("qemu-img", &["create", "-f", "qcow2", s(&big), "3T"]);
    for (source, format, says) in [
        (&odd, "VHD", "holds whole 512-byte sectors"),
        (&odd, "VDI", "holds whole 512-byte sectors"),
        (&odd, "VMDK", "holds whole 512-byte sectors"),
        (&odd, "VHDX", "holds whole 512-byte sectors"),
        (&odd, "Parallels", "holds whole 512-byte sectors"),
        (&big, "VHD", "a VHD holds at most"),
        (&big, "VMDK", "a sparse VMDK holds at most 2 TiB"),
    ] {
        let extension = WRITTEN
            .iter()
            .find(|w| w.format == format)
            .unwrap()
            .extension;
        let out = dir.path().join(format!("out.{extension}"));
        let o = dimg(&["convert", s(source), "-format", format, "-o", s(&out)]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{format}: {err}");
        assert!(
            err.contains(says) && err.contains("out."),
            "{format}: {err}"
        );
        assert!(!out.exists(), "{format}");
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "nothing left");
}
