//! Read/write images changed in place through the engine (`container::open_writable`): what is
//! written is read back after the image is opened again, the image still verifies (a UDRW's and
//! a Disk Copy 4.2 floppy's checksums brought up to date), independent readers agree, and formats that
//! cannot be written offer no writable disk.

mod common;

use common::*;
use dimg::container;
use dimg::Passphrase;
use std::path::Path;

/// Bytes that differ at every offset, so a write landing in the wrong place shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 9) as u8)
        .collect()
}

/// Writes a pattern at three places — unaligned, across a 4 KiB block, across a 1 MiB band —
/// through the writable disk, finishes it, and returns what was written where.
fn write_through(image: &Path, passphrase: Option<&Passphrase>) -> Vec<(u64, Vec<u8>)> {
    let opened = container::open_writable(image, passphrase).expect("opens to be written");
    let disk = opened
        .container
        .writable()
        .unwrap_or_else(|| panic!("{}: no writable disk", image.display()));
    let writes = vec![
        (1_000_003, pattern(777, 1)),
        (4096 * 300 - 100, pattern(9000, 2)),
        ((1 << 20) - 5000, pattern(70_000, 3)),
    ];
    for (at, bytes) in &writes {
        disk.write_all_at(*at, bytes).unwrap();
    }
    let past = disk.write_all_at(disk.size() - 10, &[1; 11]).unwrap_err();
    assert_eq!(past.kind(), std::io::ErrorKind::StorageFull, "{past}");
    disk.finish().unwrap();
    writes
}

fn read_back(image: &Path, passphrase: Option<&Passphrase>, writes: &[(u64, Vec<u8>)]) {
    let opened = container::open(image, passphrase).unwrap();
    let disk = opened.container.disk();
    for (at, bytes) in writes {
        let mut got = vec![0u8; bytes.len()];
        disk.read_exact_at(*at, &mut got).unwrap();
        assert!(&got == bytes, "{}: bytes at {at} differ", image.display());
    }
}

#[test]
fn read_write_images_are_written_in_place_and_still_verify() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, size) in [
        ("blank.dmg", "8m"),
        ("blank.img", "8m"),
        ("blank.sparsebundle", "8m"),
        ("blank.sparseimage", "8m"),
        ("blank.asif", "8m"),
        ("floppy.image", "1440k"),
    ] {
        let image = tmp.path().join(name);
        let o = dimg(&[
            "create",
            "-size",
            size,
            "-fs",
            "FAT",
            "-layout",
            "NONE",
            s(&image),
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let writes = write_through(&image, None);
        read_back(&image, None, &writes);
        let verify = dimg(&["verify", s(&image)]);
        assert!(
            verify.status.success(),
            "{name}: {}{}",
            stdout(&verify),
            stderr(&verify)
        );
        if name.ends_with(".dmg") {
            // 7-Zip checks the block tables' CRC-32s as it reads.
            let judge = std::process::Command::new("7zz")
                .args(["t", s(&image)])
                .output()
                .unwrap();
            assert!(
                judge.status.success(),
                "7zz t {name}: {}",
                String::from_utf8_lossy(&judge.stdout)
            );
            // qemu-img reads the same disk.
            let raw = tmp.path().join("qemu.raw");
            let q = std::process::Command::new("qemu-img")
                .args(["convert", "-f", "dmg", "-O", "raw", s(&image), s(&raw)])
                .output()
                .unwrap();
            assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
            let disk = std::fs::read(&raw).unwrap();
            for (at, bytes) in &writes {
                assert!(&disk[*at as usize..*at as usize + bytes.len()] == bytes.as_slice());
            }
        }
    }
}

#[test]
fn a_udrw_whose_checksums_were_not_refreshed_fails_verify() {
    // The refresh is what keeps verify clean: a write straight into the file leaves the stored
    // CRC-32s wrong, and verify says so.
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("blank.dmg");
    assert!(dimg(&["create", "-size", "8m", "-fs", "FAT", s(&image)])
        .status
        .success());
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &pattern(512, 9), 1 << 20).unwrap();
    let verify = dimg(&["verify", s(&image)]);
    assert!(!verify.status.success(), "{}", stdout(&verify));
}

#[test]
fn an_encrypted_sparse_bundle_is_written_sealed() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("vault.sparsebundle");
    create_blank(&image, "8m", "FAT", Some(b"correct horse"));
    let pass = Passphrase::new(b"correct horse".to_vec());
    let writes = write_through(&image, Some(&pass));
    read_back(&image, Some(&pass), &writes);
    // No plaintext reached the bands.
    for band in std::fs::read_dir(image.join("bands")).unwrap() {
        let bytes = std::fs::read(band.unwrap().path()).unwrap();
        for (_, written) in &writes {
            assert!(
                !bytes.windows(64).any(|w| w == &written[..64]),
                "plaintext in a band"
            );
        }
    }
    let wrong = container::open_writable(&image, Some(&Passphrase::new(b"wrong".to_vec())));
    assert!(wrong.is_err());
}

#[test]
fn compressed_and_disc_images_offer_no_writable_disk() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, fs) in [("c.dmg", "HFS+"), ("c.iso", "ISO")] {
        let image = tmp.path().join(name);
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("a.txt"), b"hello").unwrap();
        let o = dimg(&["create", "-srcfolder", s(&src), "-fs", fs, s(&image)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let before = std::fs::read(&image).unwrap();
        let opened = container::open_writable(&image, None).unwrap();
        assert!(opened.container.writable().is_none(), "{name}");
        drop(opened);
        assert_eq!(std::fs::read(&image).unwrap(), before);
    }
}

/// Writes bands `bands` (4 KiB each) of the sparse image at `image`, last first and each in two
/// halves, so that they are appended out of order; returns the disk it should hold.
fn write_bands_backwards(image: &Path, bands: u64, disk_size: usize) -> Vec<u8> {
    let mut expected = vec![0u8; disk_size];
    let opened = container::open_writable(image, None).unwrap();
    let disk = opened.container.writable().unwrap();
    for band in (0..bands).rev() {
        for half in [2048u64, 0] {
            let at = band * 4096 + half;
            let bytes = pattern(2048, (band % 251) as u8 ^ half as u8);
            disk.write_all_at(at, &bytes).unwrap();
            expected[at as usize..at as usize + 2048].copy_from_slice(&bytes);
        }
    }
    disk.finish().unwrap();
    expected
}

fn small_band_image(dir: &Path, name: &str, size: &str) -> std::path::PathBuf {
    let image = dir.join(name);
    let o = dimg(&[
        "create",
        "-size",
        size,
        "-fs",
        "NONE",
        "-layout",
        "NONE",
        "-imagekey",
        "sparse-band-size=8",
        s(&image),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    image
}

/// A sparse image grows band by band as it is written: bands appended in the order they are
/// first written, past the header node's 1,008 slots into a further index node, and read back
/// where they belong; libyal's pymodi (which reads images of one index node) reads the same disk.
#[test]
fn a_sparse_image_grows_band_by_band_through_its_index_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let image = small_band_image(tmp.path(), "two-nodes.sparseimage", "8m");
    let expected = write_bands_backwards(&image, 1536, 8 << 20);
    let verify = dimg(&["verify", s(&image), "--json"]);
    let want = dimg_e2e::sha256_bytes(&expected);
    assert!(stdout(&verify).contains(&want), "{}", stdout(&verify));
    let info = stdout(&dimg(&["info", s(&image)]));
    assert!(info.contains("1536 in 2 index node(s)"), "{info}");

    let image = small_band_image(tmp.path(), "one-node.sparseimage", "2m");
    let expected = write_bands_backwards(&image, 512, 2 << 20);
    assert_eq!(pymodi(&image), dimg_e2e::sha256_bytes(&expected));
}

/// hdiutil's compressed image's HFS+ volume over a shadow file, changed through the engine: the
/// writable disk as the shadow changes it, the volume's writer on its partition.
fn change_over_shadow(
    image: &Path,
    shadow: &Path,
    change: impl FnOnce(&dimg::fs::hfsplus::HfsChange),
) {
    use dimg::fs::VolumeMut;
    let base = container::open(image, None).unwrap().container.disk();
    let disk = container::shadow::open_writable(base, shadow).unwrap();
    let (_, places) = dimg::fs::places(&*disk).unwrap();
    let hfs = places
        .iter()
        .find(|p| {
            let part = dimg::io::Slice::new(disk.clone(), p.start, p.size);
            dimg::fs::identify(&part).unwrap() == Some(dimg::magic::Signature::HfsPlus)
        })
        .expect("an HFS+ partition");
    let part = std::sync::Arc::new(dimg::io::Slice::new(disk.clone(), hfs.start, hfs.size));
    let volume = dimg::fs::hfsplus::HfsChange::open(part).unwrap();
    change(&volume);
    volume.close().unwrap();
    disk.finish().unwrap();
}

/// What `dimg ls -R`... the names under the root of `image`'s volume, as `dimg ls` lists them
/// (with `-shadow` when given).
fn listed(image: &Path) -> String {
    let o = dimg(&["ls", s(image)]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

/// hdiutil's UDZO (read-only, compressed) changed over a shadow, then `resize -shadow` grows the
/// disk as the shadow changed it: the shadow takes the new size, and `convert -shadow` gives a
/// disk of that size whose volume holds the old files and the new one, First Aid and 7-Zip
/// agreeing. `compact -shadow` gives back the shadow's bands a file since removed held, the
/// volume staying whole. The image's SHA-256 never changes; refusals are one line each.
#[test]
fn resize_and_compact_take_a_shadow() {
    use dimg::fs::VolumeMut;
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("hdiutil.dmg");
    std::fs::copy(
        dimg_e2e::corpus().join("dmg/keramics-hfsplus-zlib.dmg"),
        &image,
    )
    .unwrap();
    let sha = dimg_e2e::sha256sum(&image);
    let shadow = tmp.path().join("hdiutil.dmg.shadow");
    let added = pattern(100_000, 9);
    change_over_shadow(&image, &shadow, |v| {
        v.create_file("/added.bin").unwrap();
        v.write("/added.bin", 0, &added).unwrap();
    });
    let old = listed(&image);
    assert!(!old.contains("added.bin"), "{old}");

    let o = dimg(&["resize", "-size", "16m", s(&image), "-shadow", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["new_size"], 16 << 20);
    assert_eq!(report["shadow"], s(&shadow));
    let o = dimg(&["resize", "-limits", s(&image), "-shadow", "--json"]);
    let limits: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(limits["current"], 16 << 20, "{limits}");

    let baked = |name: &str| {
        let out = tmp.path().join(name);
        let args = [
            "convert",
            s(&image),
            "-shadow",
            "-format",
            "UDRW",
            "-o",
            s(&out),
        ];
        let o = dimg(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = dimg(&["verify", "-fs", s(&out)]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        out
    };
    let grown = baked("grown.dmg");
    let info: serde_json::Value =
        serde_json::from_str(&stdout(&dimg(&["info", s(&grown), "--json"]))).unwrap();
    assert_eq!(info["disk_size"], 16 << 20, "{info}");
    let hfs = partition_with(&grown, "HFS+");
    assert!(hfs["size"].as_u64().unwrap() > 15 << 20, "{hfs}");
    let now = listed(&grown);
    for name in old.lines() {
        assert!(now.contains(name), "{name} kept: {now}");
    }
    let seven = peer("7zz", &["l", s(&grown)]);
    assert!(seven.contains("added.bin"), "{seven}");
    let out = tmp.path().join("out");
    let o = dimg(&[
        "extract",
        &format!("{}:/added.bin", s(&grown)),
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(out.join("added.bin")).unwrap() == added);
    assert_eq!(dimg_e2e::sha256sum(&image), sha, "the image is only read");

    // A large file written into the room the resize made, and removed: its blocks are free,
    // and the shadow's bands that held only them are given back.
    change_over_shadow(&image, &shadow, |v| {
        v.create_file("/big.bin").unwrap();
        v.write("/big.bin", 0, &pattern(4 << 20, 3)).unwrap();
    });
    change_over_shadow(&image, &shadow, |v| v.remove("/big.bin").unwrap());
    let before = std::fs::metadata(&shadow).unwrap().len();
    let o = dimg(&["compact", s(&image), "-shadow", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["bands_dropped"].as_u64().unwrap() >= 32, "{report}");
    let after = std::fs::metadata(&shadow).unwrap().len();
    assert!(after + (2 << 20) < before, "{before} → {after}");
    assert_eq!(listed(&baked("compacted.dmg")), now);
    assert_eq!(dimg_e2e::sha256sum(&image), sha, "the image is only read");

    // Refused in a line, nothing changed: a size below the volume's used blocks, a shadow that
    // is not there.
    let shadow_bytes = std::fs::read(&shadow).unwrap();
    for args in [
        vec!["resize", "-size", "1m", s(&image), "-shadow"],
        vec!["compact", s(&image), "-shadow", "missing.shadow"],
    ] {
        let o = dimg(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let said = stderr(&o);
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(
            said.contains("cannot be") || said.contains("does not exist"),
            "{said}"
        );
    }
    assert!(std::fs::read(&shadow).unwrap() == shadow_bytes);
    assert_eq!(dimg_e2e::sha256sum(&image), sha);
}
