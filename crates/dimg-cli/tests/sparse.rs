//! Sparse images (`.sparseimage`) and sparse bundles (`.sparsebundle` folders), read: the real
//! macOS bundles of the corpus (plain and encrypted), sparse images built here to the published
//! layout, libyal's pymodi as the judge of both, and damaged copies.

mod common;

use common::{decoded, dimg, dimg_stdin, judge_script, noise, pymodi, s, stderr, stdout};
use std::fs;
use std::path::Path;

fn sha256(bytes: &[u8]) -> String {
    dimg_e2e::sha256_bytes(bytes)
}

fn truth(file: &str) -> dimg_e2e::Truth {
    dimg_e2e::truths()
        .into_iter()
        .find(|t| t.file == file)
        .unwrap()
}

#[test]
fn macos_sparse_bundles_decode_to_their_ground_truth() {
    for file in [
        "sparse/jief666-test1.sparsebundle",
        "sparse/jief666-test1enc.sparsebundle",
    ] {
        let t = truth(file);
        let disk = decoded(&t.path(), t.passphrase.as_deref().map(str::as_bytes));
        assert_eq!(Some(sha256(&disk)), t.sha256, "{file}");
        let info = stdout(&dimg_stdin(
            &["info", s(&t.path()), "-stdinpass"],
            t.passphrase.as_deref().unwrap_or("").as_bytes(),
        ));
        assert!(
            info.contains("sparse bundle") && info.contains("1048576 bytes"),
            "{info}"
        );
    }
    // The encrypted one says so, wants its passphrase, and refuses a wrong one by name.
    let enc = truth("sparse/jief666-test1enc.sparsebundle").path();
    assert!(stdout(&dimg(&["isencrypted", s(&enc)])).contains("YES"));
    let o = dimg(&["info", s(&enc)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("passphrase"), "{}", stderr(&o));
    let o = dimg_stdin(&["info", s(&enc), "-stdinpass"], b"bar");
    assert!(
        stderr(&o).contains("wrong passphrase") || stderr(&o).contains("passphrase"),
        "{}",
        stderr(&o)
    );
}

/// pymodi looks for zero-padded band names where macOS writes unpadded ones, so it is handed
/// the bands as file objects: then it reads the real bundle as dimg does.
#[test]
fn pymodi_reads_the_corpus_bundle_as_dimg_does() {
    let t = truth("sparse/jief666-test1.sparsebundle");
    assert_eq!(Some(pymodi(&t.path())), t.sha256);
}

/// A sparse image laid out as formats.md §c.1 and apfs-fuse give it (hdiutil's own are not at
/// hand): a header node whose table places logical bands 2 and 0, their bands, then (with
/// `chained`) a second index node placing band 5. The bands not stored read as zeros.
fn sparse_image(band_sectors: u32, total_sectors: u64, chained: bool) -> (Vec<u8>, Vec<u8>) {
    let band = band_sectors as usize * 512;
    let fill = |n: u8| {
        (0..band)
            .map(|i| n.wrapping_mul(37).wrapping_add(i as u8))
            .collect::<Vec<u8>>()
    };
    let mut file = vec![0u8; 4096];
    file[..4].copy_from_slice(b"sprs");
    file[4..8].copy_from_slice(&3u32.to_be_bytes());
    file[8..12].copy_from_slice(&band_sectors.to_be_bytes());
    file[12..16].copy_from_slice(&1u32.to_be_bytes());
    file[16..20].copy_from_slice(&(total_sectors as u32).to_be_bytes());
    file[0x1C..0x24].copy_from_slice(&total_sectors.to_be_bytes());
    file[0x40..0x44].copy_from_slice(&3u32.to_be_bytes()); // slot 0: band 2
    file[0x44..0x48].copy_from_slice(&1u32.to_be_bytes()); // slot 1: band 0
    file.extend(fill(2));
    file.extend(fill(0));
    let mut stored = vec![0u8, 2];
    if chained {
        let second = file.len() as u64;
        file[0x14..0x1C].copy_from_slice(&second.to_be_bytes());
        let mut node = vec![0u8; 4096];
        node[0x38..0x3C].copy_from_slice(&6u32.to_be_bytes()); // slot 0: band 5
        file.extend(node);
        file.extend(fill(5));
        stored.push(5);
    }
    let mut disk = vec![0u8; total_sectors as usize * 512];
    for n in stored {
        let at = n as usize * band;
        let len = band.min(disk.len() - at);
        disk[at..at + len].copy_from_slice(&fill(n)[..len]);
    }
    (file, disk)
}

/// libmodi reads the header node's table only (its documentation knows no further index nodes),
/// so pymodi judges images of one node; chained nodes are checked against the disk they hold.
#[test]
fn sparse_images_decode_as_their_band_tables_say_and_as_pymodi_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    // 4 KiB bands, and hdiutil's 1 MiB; the disk ends inside band 5.
    for (band_sectors, total) in [(8u32, 46u64), (2048, 5 * 2048 + 100)] {
        for chained in [false, true] {
            let (file, disk) = sparse_image(band_sectors, total, chained);
            let path = dir
                .path()
                .join(format!("bands-{band_sectors}-{chained}.sparseimage"));
            fs::write(&path, &file).unwrap();
            assert_eq!(
                decoded(&path, None),
                disk,
                "{band_sectors}-sector bands, {chained}"
            );
            if !chained {
                assert_eq!(
                    pymodi(&path),
                    sha256(&disk),
                    "pymodi, {band_sectors}-sector bands"
                );
            }
            let info = stdout(&dimg(&["info", s(&path)]));
            let (bands, nodes) = if chained { (3, 2) } else { (2, 1) };
            let said = format!("{bands} in {nodes} index node(s)");
            assert!(
                info.contains("Apple sparse disk image") && info.contains(&said),
                "{info}"
            );
        }
    }
}

/// An encrypted sparse image is encrcdsa around the whole sparse image file.
#[test]
fn an_encrypted_sparse_image_decodes_with_its_passphrase() {
    let (mut file, disk) = sparse_image(8, 46, true);
    file.resize(file.len().div_ceil(4096) * 4096, 0);
    let pass = dimg::Passphrase::new(b"sparse secret".to_vec());
    let sealer = dimg::container::encrypted::Sealer::new(256, &pass, 1000);
    let mut sealed = sealer.header(file.len() as u64);
    let mut data = file.clone();
    sealer.encrypt(0, &mut data);
    sealed.extend(data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealed.sparseimage");
    fs::write(&path, sealed).unwrap();
    assert_eq!(decoded(&path, Some(b"sparse secret")), disk);
    let info = stdout(&dimg_stdin(
        &["info", s(&path), "-stdinpass"],
        b"sparse secret",
    ));
    assert!(info.contains("Apple sparse disk image"), "{info}");
}

/// Every kind of damage is one line naming the image and what is wrong; nothing panics.
#[test]
fn damaged_bundles_and_sparse_images_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let source = truth("sparse/jief666-test1.sparsebundle").path();
    let copy = |name: &str| {
        let to = dir.path().join(name);
        fs::create_dir_all(to.join("bands")).unwrap();
        for f in ["Info.plist", "token"] {
            fs::copy(source.join(f), to.join(f)).unwrap();
        }
        for b in fs::read_dir(source.join("bands")).unwrap() {
            let b = b.unwrap();
            fs::copy(b.path(), to.join("bands").join(b.file_name())).unwrap();
        }
        to
    };
    let mut cases: Vec<(std::path::PathBuf, &str)> = Vec::new();
    let p = copy("no-plist.sparsebundle");
    fs::remove_file(p.join("Info.plist")).unwrap();
    cases.push((p, "Info.plist is missing"));
    let p = copy("long-band.sparsebundle");
    fs::write(p.join("bands/2"), vec![0u8; (1 << 20) + 1]).unwrap();
    cases.push((p, "more than the band size"));
    let p = copy("not-hex.sparsebundle");
    fs::write(p.join("bands/band7"), b"x").unwrap();
    cases.push((p, "not a band number"));
    let p = copy("small-disk.sparsebundle");
    let plist = fs::read_to_string(p.join("Info.plist")).unwrap();
    fs::write(p.join("Info.plist"), plist.replace("5242880", "3145728")).unwrap();
    cases.push((p, "lies past the disk"));
    let (file, _) = sparse_image(8, 46, true);
    let p = dir.path().join("truncated.sparseimage");
    fs::write(&p, &file[..4000]).unwrap();
    cases.push((p, "less than its 4096-byte header"));
    let mut twice = file.clone();
    twice[0x44..0x48].copy_from_slice(&3u32.to_be_bytes());
    let p = dir.path().join("twice.sparseimage");
    fs::write(&p, &twice).unwrap();
    cases.push((p, "listed twice"));
    let mut past = file.clone();
    past[0x44..0x48].copy_from_slice(&99u32.to_be_bytes());
    let p = dir.path().join("past.sparseimage");
    fs::write(&p, &past).unwrap();
    cases.push((p, "past the disk"));
    let p = dir.path().join("cut.sparseimage");
    fs::write(&p, &file[..file.len() - 2000]).unwrap();
    cases.push((p, "past the end of the file"));
    for (image, problem) in cases {
        for verb in ["info", "verify"] {
            let o = dimg(&[verb, s(&image)]);
            let said = stderr(&o);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{verb} {}: {said}",
                image.display()
            );
            assert_eq!(said.lines().count(), 1, "{said}");
            assert!(
                said.contains(s(&image)) && said.contains(problem),
                "{verb}: {said}"
            );
        }
    }
}

/// The encrypted bundle's volume extracts to its listing (truth-check cannot say it: it extracts
/// without a passphrase): every file's name, size and SHA-256, the journal files left out as
/// macOS hides them.
#[test]
fn the_encrypted_bundle_extracts_to_its_listing() {
    let t = truth("sparse/jief666-test1enc.sparsebundle");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let o = dimg_stdin(
        &["extract", s(&t.path()), "-o", s(&out), "-stdinpass"],
        b"foo",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut got: Vec<String> = common::walk(&out)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let data = fs::read(&p).unwrap();
            let name = p.strip_prefix(&out).unwrap().to_string_lossy().into_owned();
            format!("{name}\t{}\t{}", data.len(), sha256(&data))
        })
        .collect();
    got.sort();
    let listing = dimg_e2e::corpus().join("expected-files/jief666-test1enc.sparsebundle.tsv");
    let mut want: Vec<String> = fs::read_to_string(listing)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.split('\t').next().unwrap().contains(':'))
        .map(|l| l.strip_prefix("Test1Enc/").unwrap().to_string())
        .collect();
    want.sort();
    assert_eq!(got, want);
}

/// Every unencrypted corpus DMG and ISO, written as a sparse image and as a sparse bundle (hdiutil's
/// band sizes, and a small one), decodes back to the same disk; pymodi reads each as that disk;
/// only bands holding data are stored.
#[test]
fn sparse_images_and_bundles_round_trip_and_pymodi_reads_what_dimg_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for t in dimg_e2e::truths() {
        let disk_view = t.view() == "disk" || t.view() == "file";
        // Pre-Mac OS X images are opened by their own issue (#21).
        let classic = matches!(t.kind.as_str(), "dc42" | "dart" | "hfs");
        if !disk_view || t.passphrase.is_some() || t.sha256.is_none() || classic {
            continue;
        }
        let name = Path::new(&t.file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let source = t.path();
        for (format, band) in [("UDSP", None), ("UDSB", None), ("UDSB", Some("64"))] {
            let out = dir
                .path()
                .join(format!("{name}-{band:?}.{}", format.to_lowercase()));
            let mut args = vec!["convert", s(&source), "-format", format, "-o", s(&out)];
            let key = band.map(|b| format!("sparse-band-size={b}"));
            if let Some(key) = &key {
                args.extend(["-imagekey", key.as_str()]);
            }
            let o = dimg(&args);
            assert!(o.status.success(), "{name} {format}: {}", stderr(&o));
            let disk = decoded(&out, None);
            assert_eq!(Some(sha256(&disk)), t.sha256, "{name} as {format} {band:?}");
            if format == "UDSP" || band.is_none() {
                assert_eq!(pymodi(&out), sha256(&disk), "pymodi: {name} as {format}");
            }
            if format == "UDSB" {
                // A band is stored only where the disk holds data.
                let band_bytes = band.map_or(8 << 20, |b| b.parse::<usize>().unwrap() * 512);
                for b in fs::read_dir(out.join("bands")).unwrap() {
                    let n =
                        u64::from_str_radix(&b.unwrap().file_name().to_string_lossy(), 16).unwrap();
                    let at = n as usize * band_bytes;
                    let end = (at + band_bytes).min(disk.len());
                    assert!(
                        disk[at..end].iter().any(|&x| x != 0),
                        "{name}: band {n} is empty"
                    );
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 12, "{checked} images");
}

/// A 10 GiB sparse bundle of a small folder takes little more room on disk than the folder.
#[test]
fn a_large_sparse_bundle_stores_only_what_its_volume_uses() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..5 {
        let data: Vec<u8> = (0..10_000_000u32)
            .map(|n| (n.wrapping_mul(2_654_435_761) >> (i + 7)) as u8)
            .collect();
        fs::write(src.join(format!("file{i}.bin")), data).unwrap();
    }
    let bundle = dir.path().join("big.sparsebundle");
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(&src),
        "-size",
        "10g",
        "-format",
        "UDSB",
        s(&bundle),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // What the bands take on disk (du), as the issue measures it: band files are sparse.
    let used: u64 = fs::read_dir(bundle.join("bands"))
        .unwrap()
        .map(|b| std::os::unix::fs::MetadataExt::blocks(&b.unwrap().metadata().unwrap()) * 512)
        .sum();
    assert!(used < 60_000_000, "{used} bytes on disk for 50 MB of files");
    let info: serde_json::Value =
        serde_json::from_str(&stdout(&dimg(&["info", s(&bundle), "--json"]))).unwrap();
    assert_eq!(info["disk_size"], 10u64 << 30);
    let files_intact = |when: &str| {
        let out = dir.path().join(when);
        let o = dimg(&["extract", s(&bundle), "-o", s(&out)]);
        assert!(o.status.success(), "{}", stderr(&o));
        for i in 0..5 {
            let name = format!("file{i}.bin");
            assert_eq!(
                fs::read(out.join(&name)).unwrap(),
                fs::read(src.join(&name)).unwrap(),
                "{name} {when}"
            );
        }
    };
    files_intact("as made");

    // Deleted files leave their data in blocks the allocation bitmap marks free: five whole
    // bands of it, 2.4 GiB into the volume, far past the 50 MB of files. `compact` gives them
    // back, and only them: every band the volume uses stays, and every file reads the same.
    let bands = |b: &Path| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(b.join("bands"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let kept = bands(&bundle);
    for band in 300..305u64 {
        fs::write(bundle.join(format!("bands/{band:x}")), noise(8 << 20, band)).unwrap();
    }
    let o = dimg(&["compact", s(&bundle), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["bands_dropped"], 5);
    assert!(report["reclaimed"].as_u64().unwrap() >= 5 * (8 << 20));
    assert_eq!(bands(&bundle), kept);
    files_intact("after compact");

    // Resize: to 20 GiB, then back down to the volume's last used block.
    let o = dimg(&["resize", "-size", "20g", s(&bundle)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let info: serde_json::Value =
        serde_json::from_str(&stdout(&dimg(&["info", s(&bundle), "--json"]))).unwrap();
    assert_eq!(info["disk_size"], 20u64 << 30);
    files_intact("at 20 GiB");
    let minimum = limits(&bundle)[0];
    assert!(
        minimum < 60 << 20,
        "{minimum} bytes at least, for 50 MB of files"
    );
    let o = dimg(&["resize", "-size", &format!("{minimum}b"), s(&bundle)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(limits(&bundle)[1], minimum);
    files_intact("at its minimum");
}

/// `resize -limits`: the smallest, current and largest disk sizes, in bytes.
fn limits(image: &Path) -> Vec<u64> {
    let o = dimg(&["resize", "-limits", s(image)]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .split_whitespace()
        .map(|n| n.parse::<u64>().unwrap() * 512)
        .collect()
}

/// What independent readers make of a resized image: `sgdisk -v` checks the GPT (the backup
/// moved to the new end), libyal's pyfshfs and 7-Zip read every file of the HFS+ volume, and
/// for a UDRW qemu-img decodes the same disk as dimg.
fn judge_resized(image: &Path, src: &Path, size: u64) {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.cdr");
    let o = dimg(&["convert", s(image), "-format", "UDTO", "-o", s(&raw)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::metadata(&raw).unwrap().len(), size);
    let checked = common::peer("sgdisk", &["-v", s(&raw)]);
    assert!(checked.contains("No problems found"), "{checked}");
    let o = judge_script("pyfshfs_files.py")
        .arg(&raw)
        .arg((40 * 512).to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "pyfshfs: {}", stderr(&o));
    let read: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&o.stdout).unwrap();
    let by_7z = dir.path().join("7z");
    common::peer("7zz", &["x", "-y", &format!("-o{}", s(&by_7z)), s(&raw)]);
    for name in ["a.bin", "b.txt"] {
        let want = sha256(&fs::read(src.join(name)).unwrap());
        assert_eq!(read[name], want, "pyfshfs: {name}");
        let extracted = fs::read(by_7z.join("src").join(name)).unwrap();
        assert_eq!(sha256(&extracted), want, "7-Zip: {name}");
    }
    if image.extension().is_some_and(|e| e == "dmg") {
        let by_qemu = dir.path().join("qemu.raw");
        common::peer("qemu-img", &["convert", "-O", "raw", s(image), s(&by_qemu)]);
        assert_eq!(fs::read(&by_qemu).unwrap(), fs::read(&raw).unwrap());
    }
}

/// `resize` grows a UDRW image and a sparse image, GPT and HFS+ volume with them, and shrinks
/// them back to the volume's last used block; below it, and for a compressed image, a clear
/// refusal.
#[test]
fn resize_grows_and_shrinks_read_write_images_as_their_judges_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a.bin"), noise(3 << 20, 5)).unwrap();
    fs::write(src.join("b.txt"), b"resized").unwrap();
    for (format, name) in [("UDRW", "rw.dmg"), ("UDSP", "disk.sparseimage")] {
        let image = dir.path().join(name);
        let o = dimg(&[
            "create",
            "-srcfolder",
            s(&src),
            "-size",
            "100m",
            "-format",
            format,
            s(&image),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(limits(&image)[1], 100 << 20);
        let o = dimg(&["resize", "-size", "200m", s(&image)]);
        assert!(o.status.success(), "{format}: {}", stderr(&o));
        assert_eq!(limits(&image)[1], 200 << 20);
        judge_resized(&image, &src, 200 << 20);
        let minimum = limits(&image)[0];
        assert!(minimum < 4 << 20, "{format}: {minimum}");
        let o = dimg(&["resize", "-size", &format!("{}b", minimum - 512), s(&image)]);
        assert_eq!(o.status.code(), Some(1), "{format}: below the minimum");
        assert!(
            stderr(&o).contains("the volume's last used block"),
            "{}",
            stderr(&o)
        );
        let o = dimg(&["resize", "-size", &format!("{minimum}b"), s(&image)]);
        assert!(o.status.success(), "{format}: {}", stderr(&o));
        judge_resized(&image, &src, minimum);
    }
    let compressed = dir.path().join("z.dmg");
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(&src),
        "-format",
        "UDZO",
        s(&compressed),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = dimg(&["resize", "-size", "200m", s(&compressed)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("convert it to a read/write format first"),
        "{}",
        stderr(&o)
    );
}

/// A sparse image holding deleted files' data in free blocks: `compact` rewrites it without the
/// bands the volume leaves wholly free (HFS+ by its allocation bitmap, FAT32 by its FAT), and
/// the disk then reads exactly as before with those bands as zeros; mtools reads the FAT files
/// after it. A raw image is refused: it is not sparse.
#[test]
fn compact_gives_back_a_sparse_images_free_bands_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a.bin"), noise(3 << 20, 1)).unwrap();
    fs::write(src.join("b.txt"), b"kept through compact").unwrap();
    for file_system in ["HFS+", "FAT32"] {
        let raw = dir.path().join(format!("{file_system}.cdr"));
        let o = dimg(&[
            "create",
            "-srcfolder",
            s(&src),
            "-fs",
            file_system,
            "-size",
            "200m",
            "-format",
            "UDTO",
            s(&raw),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut disk = fs::read(&raw).unwrap();
        let (garbage, len) = (96usize << 20, 8usize << 20);
        disk[garbage..garbage + len].copy_from_slice(&noise(len, 7));
        fs::write(&raw, &disk).unwrap();
        let image = dir.path().join(format!("{file_system}.sparseimage"));
        let o = dimg(&["convert", s(&raw), "-format", "UDSP", "-o", s(&image)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let before = fs::metadata(&image).unwrap().len();

        let o = dimg(&["compact", s(&image), "--json"]);
        assert!(o.status.success(), "{file_system}: {}", stderr(&o));
        let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(report["bands_dropped"], 8, "{file_system}: {report}");
        assert_eq!(before - fs::metadata(&image).unwrap().len(), 8 << 20);
        disk[garbage..garbage + len].fill(0);
        let after = decoded(&image, None);
        assert!(after == disk, "{file_system}: only the free bands changed");
        let out = dir.path().join(format!("{file_system}.x"));
        let o = dimg(&["extract", s(&image), "-o", s(&out)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(fs::read(out.join("a.bin")).unwrap(), noise(3 << 20, 1));
        if file_system == "FAT32" {
            // mtools reads the file from the partition (GPT: it starts at sector 40).
            let part = dir.path().join("fat.part");
            fs::write(&part, &after[40 * 512..]).unwrap();
            let copy = dir.path().join("a.copy");
            common::peer("mcopy", &["-i", s(&part), "::a.bin", s(&copy)]);
            assert_eq!(fs::read(&copy).unwrap(), noise(3 << 20, 1));
        }
        // Compacting again finds nothing more to give back.
        let o = dimg(&["compact", s(&image), "--json"]);
        let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(report["bands_dropped"], 0);

        let o = dimg(&["compact", s(&raw)]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("compact works on sparse disk images and sparse bundles"));
    }
}

/// Encrypted sparse images (encrcdsa around the whole file) and bundles (the key in the token,
/// each band encrypted on its own) of every unencrypted corpus DMG decode to the same disk with
/// their passphrase (each DMG in one of the four kinds, in turn); a bundle's passphrase can be
/// changed.
#[test]
fn encrypted_sparse_images_and_bundles_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let kinds = [
        ("UDSB", "AES-128"),
        ("UDSP", "AES-256"),
        ("UDSP", "AES-128"),
        ("UDSB", "AES-256"),
    ];
    let dmgs = dimg_e2e::truths()
        .into_iter()
        .filter(|t| t.kind == "dmg" && t.passphrase.is_none());
    let mut checked = 0;
    for (t, (format, bits)) in dmgs.zip(kinds.iter().cycle()) {
        let name = Path::new(&t.file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let source = t.path();
        let out = dir.path().join(format!("{name}.{bits}.{format}"));
        let args = [
            "convert",
            s(&source),
            "-format",
            format,
            "-encryption",
            bits,
            "-pbkdf2-iterations",
            "1000",
            "-stdinpass",
            "-o",
            s(&out),
        ];
        let o = dimg_stdin(&args, b"sparse pass");
        assert!(o.status.success(), "{name} {format} {bits}: {}", stderr(&o));
        let disk = decoded(&out, Some(b"sparse pass"));
        assert_eq!(Some(sha256(&disk)), t.sha256, "{name} {format} {bits}");
        checked += 1;
    }
    assert!(checked >= 9, "{checked} images");
    let bundle = dir.path().join("dmgwiz-zlib.dmg.AES-128.UDSB");
    let o = dimg_stdin(
        &["chpass", s(&bundle), "-oldstdinpass", "-newstdinpass"],
        b"sparse pass\0changed",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = dimg_stdin(&["info", s(&bundle), "-stdinpass"], b"sparse pass");
    assert!(stderr(&o).contains("passphrase"), "{}", stderr(&o));
    let o = dimg_stdin(&["verify", s(&bundle), "-stdinpass"], b"changed");
    assert!(o.status.success(), "{}", stderr(&o));
}
