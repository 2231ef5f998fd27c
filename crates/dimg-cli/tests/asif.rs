//! ASIF images (macOS 26's Apple Sparse Image Format): dimg's images of the corpus disks, of a
//! sparse disk of several GiB, blank and from a folder, read back by Fox-IT's dissect.hypervisor
//! (tests/judges/dissect_asif.py) and by dimg to the source's bytes; round trips; writes in
//! place and a crash between a directory's entries and its version; damaged copies.

mod common;
mod sweep;

use common::{decoded, dimg, judge_script, s, stderr};
use dimg::container;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn sha256(bytes: &[u8]) -> String {
    dimg_e2e::sha256_bytes(bytes)
}

/// What dissect.hypervisor reads from each image: its facts, and a digest of each range
/// (offset, length) of its disk, or of the whole disk when none are given. One run for them all.
fn dissect_all(images: &[(&Path, &[(u64, u64)])]) -> Vec<serde_json::Value> {
    let mut args = Vec::new();
    for (image, ranges) in images {
        args.push(s(image).to_string());
        args.extend(ranges.iter().map(|(at, len)| format!("{at}:{len}")));
    }
    let o = judge_script("dissect_asif.py")
        .args(&args)
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "dissect.hypervisor: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn dissect(image: &Path, ranges: &[(u64, u64)]) -> serde_json::Value {
    dissect_all(&[(image, ranges)]).remove(0)
}

/// dimg's facts about an image, by label.
fn facts(image: &Path) -> serde_json::Map<String, serde_json::Value> {
    let o = dimg(&["info", "--json", s(image)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    info["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["label"].as_str().unwrap().to_string(), f["value"].clone()))
        .collect()
}

/// The number of chunks an image stores for its disk, as `info` tells it.
fn chunks_stored(image: &Path) -> usize {
    let stored = facts(image)["Chunks stored"].as_str().unwrap().to_string();
    stored.split(' ').next().unwrap().parse().unwrap()
}

fn convert(source: &Path, format: &str, out: &Path, keys: &[&str]) {
    let mut args = vec!["convert", s(source), "-format", format, "-o", s(out)];
    for key in keys {
        args.extend(["-imagekey", key]);
    }
    let o = dimg(&args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

/// Every unencrypted corpus disk, as an ASIF image in macOS's 1 MiB chunks (and a few in 4 MiB
/// ones), decodes to the same disk through dimg and through dissect.hypervisor, which also reads
/// its size, chunk size and stable UUID as dimg does; only chunks holding data are stored.
#[test]
fn corpus_disks_as_asif_read_back_by_dissect_and_dimg() {
    let dir = tempfile::tempdir().unwrap();
    let (mut checked, mut made, mut seen) = (0, Vec::new(), std::collections::HashSet::new());
    for t in dimg_e2e::truths() {
        let disk_view = t.view() == "disk" || t.view() == "file";
        let classic = matches!(t.kind.as_str(), "dc42" | "dart" | "hfs");
        if !disk_view || t.passphrase.is_some() || t.sha256.is_none() || classic {
            continue;
        }
        // One image of each disk: the same disk in other codecs tests their readers, not ASIF.
        if !seen.insert(t.sha256.clone()) {
            continue;
        }
        let name = t.path().file_name().unwrap().to_string_lossy().into_owned();
        let chunks: &[u64] = match checked < 3 {
            true => &[MIB, 4 * MIB],
            false => &[MIB],
        };
        for &chunk in chunks {
            let out = dir.path().join(format!("{name}-{chunk}.asif"));
            convert(
                &t.path(),
                "ASIF",
                &out,
                &[&format!("asif-chunk-size={chunk}")],
            );
            let disk = decoded(&out, None);
            assert_eq!(Some(sha256(&disk)), t.sha256, "dimg: {name} in {chunk}");
            let with_data = disk
                .chunks(chunk as usize)
                .filter(|c| c.iter().any(|&b| b != 0))
                .count();
            assert_eq!(chunks_stored(&out), with_data, "{name}: chunks stored");
            made.push((out, chunk, disk.len() as u64, t.sha256.clone().unwrap()));
        }
        checked += 1;
    }
    let asked: Vec<(&Path, &[(u64, u64)])> =
        made.iter().map(|m| (m.0.as_path(), &[][..])).collect();
    for ((out, chunk, size, truth), judged) in made.iter().zip(dissect_all(&asked)) {
        let what = out.display();
        assert_eq!(
            judged["digests"][0].as_str(),
            Some(truth.as_str()),
            "dissect: {what}"
        );
        assert_eq!(judged["size"], *size, "{what}");
        assert_eq!(judged["chunk_size"], *chunk, "{what}");
        assert_eq!(judged["block_size"], 512, "{what}");
        assert_eq!(
            judged["stable_uuid"],
            facts(out)["Stable UUID"],
            "{what}: the stable UUID"
        );
    }
    assert!(checked >= 10, "{checked} images");
}

/// An image built here to the published layout, not by dimg's writer: 32 KiB chunks in a 64 MiB
/// space (one table), the disk's first and last chunks stored, the metadata chunk, and an older
/// directory (lower version) whose table maps the first chunk elsewhere. dimg and
/// dissect.hypervisor read the same disk from the directory in force, and the same stable UUID.
#[test]
fn an_image_built_to_the_published_layout_reads_as_dissect_reads_it() {
    const CHUNK: usize = 32 << 10;
    let (space, size) = (64u64 << 20, 1u64 << 20);
    let mut image = vec![0u8; 7 * CHUNK];
    let put = |image: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        image[at..at + bytes.len()].copy_from_slice(bytes)
    };
    put(&mut image, 0, b"shdw");
    put(&mut image, 4, &1u32.to_be_bytes());
    put(&mut image, 8, &512u32.to_be_bytes());
    put(&mut image, 0x10, &512u64.to_be_bytes());
    put(&mut image, 0x18, &1024u64.to_be_bytes());
    put(&mut image, 0x30, &(size / 512).to_be_bytes());
    put(&mut image, 0x38, &(space / 512).to_be_bytes());
    put(&mut image, 0x40, &(CHUNK as u32).to_be_bytes());
    put(&mut image, 0x44, &512u16.to_be_bytes());
    let metadata = space / CHUNK as u64 - 1;
    put(&mut image, 0x48, &metadata.to_be_bytes());
    // The directory in force (version 3) lists its table in chunk 1; the older one, chunk 5.
    for (at, version, table) in [(512, 3u64, 1u64), (1024, 2, 5)] {
        put(&mut image, at, &version.to_be_bytes());
        put(&mut image, at + 8, &table.to_be_bytes());
    }
    // Entries: 2,048 data chunks then a bitmap's entry in each group; state 01, chunk number.
    let entry = |image: &mut Vec<u8>, table: usize, logical: u64, number: u64| {
        let at = table * CHUNK + 8 * (logical / 2048 * 2049 + logical % 2048) as usize;
        put(image, at, &(1u64 << 62 | number).to_be_bytes());
    };
    entry(&mut image, 1, 0, 2);
    entry(&mut image, 1, size / CHUNK as u64 - 1, 3);
    entry(&mut image, 1, metadata, 4);
    entry(&mut image, 5, 0, 6);
    let fill = |seed: u8| -> Vec<u8> { (0..CHUNK).map(|i| (i as u8 ^ seed) | 1).collect() };
    put(&mut image, 2 * CHUNK, &fill(0x20));
    put(&mut image, 3 * CHUNK, &fill(0x40));
    put(&mut image, 6 * CHUNK, &fill(0x60));
    let uuid = "6a0c2f6e-0d3b-4e52-9d1c-5a7f3e8b2c11";
    let plist = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict>\
         <key>internal metadata</key><dict><key>stable uuid</key><string>{uuid}</string></dict>\
         <key>user metadata</key><dict/></dict></plist>"
    );
    put(&mut image, 4 * CHUNK, b"meta");
    put(&mut image, 4 * CHUNK + 4, &1u32.to_be_bytes());
    put(&mut image, 4 * CHUNK + 8, &512u32.to_be_bytes());
    put(
        &mut image,
        4 * CHUNK + 12,
        &(plist.len() as u64).to_be_bytes(),
    );
    put(&mut image, 4 * CHUNK + 512, plist.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("built.asif");
    fs::write(&path, &image).unwrap();

    let mut disk = vec![0u8; size as usize];
    disk[..CHUNK].copy_from_slice(&fill(0x20));
    disk[size as usize - CHUNK..].copy_from_slice(&fill(0x40));
    assert!(decoded(&path, None) == disk, "dimg reads another disk");
    let judged = dissect(&path, &[]);
    assert_eq!(judged["digests"][0], sha256(&disk), "dissect");
    assert_eq!(judged["stable_uuid"], uuid);
    assert_eq!(facts(&path)["Stable UUID"], uuid);
    assert_eq!(chunks_stored(&path), 2);
}

/// A 6 GiB disk holding data in three places (the rest a sparse file's holes) becomes an ASIF
/// image of a few MiB storing three chunks; dissect.hypervisor and dimg read the data and the
/// holes as the source; converting it back to raw steps over the chunks not stored.
#[test]
fn a_sparse_disk_of_several_gib_stores_only_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, image, back) = (
        dir.path().join("big.img"),
        dir.path().join("big.asif"),
        dir.path().join("back.cdr"),
    );
    let size = 6 * GIB;
    let f = fs::File::create(&raw).unwrap();
    f.set_len(size).unwrap();
    let pattern = |len: usize, seed: u64| -> Vec<u8> {
        (0..len as u64)
            .map(|i| ((i * 2_654_435_761 + seed) >> 7) as u8 | 1)
            .collect()
    };
    let places = [
        (0, MIB + 4096),
        (3 * GIB + 12_345, 70_000),
        (size - 100, 100),
    ];
    for (n, &(at, len)) in places.iter().enumerate() {
        f.write_all_at(&pattern(len as usize, n as u64), at)
            .unwrap();
    }
    drop(f);
    convert(&raw, "ASIF", &image, &[]);
    assert!(
        fs::metadata(&image).unwrap().blocks() * 512 < 16 * MIB,
        "the image takes more room than its data"
    );
    // The first place spans two chunks.
    assert_eq!(chunks_stored(&image), 4);
    let ranges = [
        (0, 2 * MIB),
        (3 * GIB - MIB, 3 * MIB),
        (4 * GIB, MIB),
        (size - 2 * MIB, 2 * MIB),
    ];
    let source = fs::File::open(&raw).unwrap();
    let read = |f: &fs::File, (at, len): (u64, u64)| {
        let mut buf = vec![0u8; len as usize];
        f.read_exact_at(&mut buf, at).unwrap();
        sha256(&buf)
    };
    let judged = dissect(&image, &ranges);
    assert_eq!(judged["size"], size);
    for (i, &range) in ranges.iter().enumerate() {
        assert_eq!(
            judged["digests"][i].as_str(),
            Some(read(&source, range).as_str()),
            "dissect: {range:?}"
        );
    }
    convert(&image, "UDTO", &back, &[]);
    let back_file = fs::File::open(&back).unwrap();
    assert_eq!(back_file.metadata().unwrap().len(), size);
    assert!(
        back_file.metadata().unwrap().blocks() * 512 < 64 * MIB,
        "the chunks not stored were written out"
    );
    for range in ranges {
        assert_eq!(read(&back_file, range), read(&source, range), "{range:?}");
    }
}

/// A corpus disk through ASIF, a sparse image, UDZO and back to ASIF keeps its bytes, and the
/// ASIF images made along the way are the same disk to dissect.hypervisor.
#[test]
fn asif_round_trips_through_other_formats() {
    let dir = tempfile::tempdir().unwrap();
    let source = dimg_e2e::corpus().join("raw/dfvfs-hfsplus.raw");
    let truth = sha256(&fs::read(&source).unwrap());
    let mut from = source.clone();
    for (i, format) in ["ASIF", "UDSP", "ASIF", "UDZO", "ASIF"].iter().enumerate() {
        let extension = match *format {
            "ASIF" => "asif",
            "UDSP" => "sparseimage",
            _ => "dmg",
        };
        let out = dir.path().join(format!("{i}.{extension}"));
        convert(&from, format, &out, &[]);
        assert_eq!(sha256(&decoded(&out, None)), truth, "step {i}: {format}");
        if *format == "ASIF" {
            assert_eq!(dissect(&out, &[])["digests"][0], truth, "dissect: step {i}");
        }
        from = out;
    }
}

/// `create -type ASIF` makes a blank volume and one of a folder, as Disk Utility's ASIF choice:
/// dimg lists the folder's file in it, and dissect.hypervisor reads the disks dimg reads.
#[test]
fn create_makes_blank_and_folder_asif_images() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("folder");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("greeting.txt"), b"hello from an ASIF image\n").unwrap();
    let (blank, filled) = (
        dir.path().join("blank.asif"),
        dir.path().join("filled.asif"),
    );
    let o = dimg(&[
        "create",
        "-size",
        "20m",
        "-fs",
        "FAT",
        "-type",
        "ASIF",
        s(&blank),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(&folder),
        "-type",
        "ASIF",
        s(&filled),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = dimg(&["ls", "-R", s(&filled)]);
    assert!(common::stdout(&listed).contains("greeting.txt"));
    for image in [&blank, &filled] {
        let disk = decoded(image, None);
        assert_eq!(dissect(image, &[])["digests"][0], sha256(&disk));
    }
    assert_eq!(decoded(&blank, None).len(), 20 << 20);
}

/// The header's two directory offsets and each directory's version.
fn directories(image: &Path) -> [(u64, u64); 2] {
    let f = fs::File::open(image).unwrap();
    let mut header = [0u8; 0x20];
    f.read_exact_at(&mut header, 0).unwrap();
    [0x10, 0x18].map(|at| {
        let offset = u64::from_be_bytes(header[at..at + 8].try_into().unwrap());
        let mut version = [0u8; 8];
        f.read_exact_at(&mut version, offset).unwrap();
        (offset, u64::from_be_bytes(version))
    })
}

/// Written in place through the engine, a blank 200 GiB ASIF image takes each chunk on its first
/// write, and a table for the first 126 GiB and one past them, each listed in a new version of
/// the directory; dimg and dissect.hypervisor read what was written. With the last version
/// undone, as a crash before it would leave the file, the older directory is in force: the second
/// table's write is gone, the first table's still read.
#[test]
fn an_asif_image_is_written_in_place_and_a_crash_leaves_the_older_directory() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("vm.asif");
    let o = dimg(&[
        "create",
        "-size",
        "200g",
        "-fs",
        "NONE",
        "-layout",
        "NONE",
        "-type",
        "ASIF",
        s(&image),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = directories(&image);
    let in_force = before.iter().map(|d| d.1).max().unwrap();
    let pattern = |len: usize, seed: u8| -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed | 1)
            .collect()
    };
    let writes = [
        (1_000_003, pattern(777, 1)),
        (MIB - 5000, pattern(70_000, 2)),
        (130 * GIB + 5, pattern(3000, 3)),
    ];
    {
        let opened = container::open_writable(&image, None).unwrap();
        let disk = opened.container.writable().expect("a writable disk");
        for (at, bytes) in &writes {
            disk.write_all_at(*at, bytes).unwrap();
        }
        disk.finish().unwrap();
    }
    let check = |image: &Path, expect: &[(u64, Vec<u8>)]| {
        let opened = container::open(image, None).unwrap();
        let disk = opened.container.disk();
        for (at, bytes) in expect {
            let mut got = vec![0u8; bytes.len()];
            disk.read_exact_at(*at, &mut got).unwrap();
            assert!(&got == bytes, "dimg: the bytes at {at}");
        }
        let ranges: Vec<(u64, u64)> = expect.iter().map(|(at, b)| (*at, b.len() as u64)).collect();
        let judged = dissect(image, &ranges);
        for (i, (at, bytes)) in expect.iter().enumerate() {
            assert_eq!(
                judged["digests"][i],
                sha256(bytes),
                "dissect: the bytes at {at}"
            );
        }
    };
    check(&image, &writes);
    assert_eq!(
        chunks_stored(&image),
        3,
        "the second write spans two chunks"
    );
    let after = directories(&image);
    let newer = after.iter().max_by_key(|d| d.1).unwrap();
    let mut versions = [after[0].1, after[1].1];
    versions.sort();
    assert_eq!(
        versions,
        [in_force + 1, in_force + 2],
        "{before:?} → {after:?}"
    );
    // A crash after the new directory's entries, before its version.
    let f = fs::OpenOptions::new().write(true).open(&image).unwrap();
    f.write_all_at(&0u64.to_be_bytes(), newer.0).unwrap();
    drop(f);
    check(&image, &writes[..2]);
    let opened = container::open(&image, None).unwrap();
    let mut got = vec![1u8; 3000];
    opened
        .container
        .disk()
        .read_exact_at(130 * GIB + 5, &mut got)
        .unwrap();
    assert!(
        got.iter().all(|&b| b == 0),
        "the new table's write outlived its directory"
    );
}

/// Damaged copies of an ASIF image end cleanly; a header whose sizes or directories cannot be
/// is a one-line error naming what is wrong, before anything is allocated for it.
#[test]
fn damaged_asif_images_end_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("good.asif");
    convert(
        &dimg_e2e::corpus().join("raw/dfvfs-apfs.raw"),
        "ASIF",
        &image,
        &[],
    );
    let bytes = fs::read(&image).unwrap();
    let outcome = sweep::browse_damaged(
        env!("CARGO_BIN_EXE_dimg").as_ref(),
        &[("dfvfs-apfs.asif".into(), bytes.clone())],
        10,
        38,
        dir.path(),
        "damaged.asif",
    );
    assert!(
        outcome.failures.is_empty(),
        "{}",
        outcome.failures.join("\n")
    );
    let patched = |at: usize, value: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + value.len()].copy_from_slice(value);
        b
    };
    let in_force = [0x10, 0x18]
        .map(|at| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap()) as usize)
        .into_iter()
        .max_by_key(|&d| u64::from_be_bytes(bytes[d..d + 8].try_into().unwrap()))
        .unwrap();
    let table_entry = in_force + 8;
    for (damage, problem, expect) in [
        (
            patched(0x38, &u64::MAX.to_be_bytes()),
            "maximum size",
            "blocks at most",
        ),
        (
            patched(0x38, &(1u64 << 50).to_be_bytes()),
            "directory size",
            "tables, more than dimg reads",
        ),
        (
            patched(0x10, &(1u64 << 40).to_be_bytes()),
            "directory",
            "lies outside the file",
        ),
        (
            patched(0x40, &3000u32.to_be_bytes()),
            "chunk size",
            "a chunk of 3000 bytes",
        ),
        (
            patched(table_entry, &(1u64 << 40).to_be_bytes()),
            "table",
            "outside the file",
        ),
    ] {
        let path = dir.path().join("bad.asif");
        fs::write(&path, &damage).unwrap();
        let o = dimg(&["info", s(&path)]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{problem}: opened");
        assert!(
            err.contains("ASIF header") && err.contains(expect) && err.trim().lines().count() == 1,
            "{problem}: {err}"
        );
    }
}

/// Chunk sizes ASIF cannot take, and encryption, are refused before anything is written.
#[test]
fn unusable_asif_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = dimg_e2e::corpus().join("raw/dfvfs-apfs.raw");
    let out = dir.path().join("out.asif");
    for key in ["asif-chunk-size=3000000", "asif-chunk-size=65536"] {
        let o = dimg(&[
            "convert",
            s(&source),
            "-format",
            "ASIF",
            "-imagekey",
            key,
            "-o",
            s(&out),
        ]);
        assert!(!o.status.success(), "{key}");
        assert!(
            stderr(&o).contains("a power of two"),
            "{key}: {}",
            stderr(&o)
        );
    }
    let o = common::dimg_stdin(
        &[
            "convert",
            s(&source),
            "-format",
            "ASIF",
            "-encryption",
            "-stdinpass",
            "-o",
            s(&out),
        ],
        b"secret",
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("does not encrypt ASIF"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "something was left"
    );
}
