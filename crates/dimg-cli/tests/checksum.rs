//! `dimg checksum -type TYPE`, as `hdiutil checksum`: the plain types over the image's disk,
//! judged by crc32 (libarchive-zip-perl), md5sum and the sha*sum tools on qemu-img's raw disk;
//! the UDIF types over the data fork, judged the same way on the bytes the koly trailer names.

mod common;
use common::*;

use dimg_e2e::corpus;
use std::fs;
use std::path::Path;

/// The checksum `dimg checksum` prints, in lower case.
fn dimg_checksum(image: &Path, kind: &str) -> String {
    let o = dimg(&["checksum", s(image), "-type", kind]);
    assert!(o.status.success(), "{kind}: {}", stderr(&o));
    let said = stdout(&o);
    let value = said
        .trim()
        .strip_prefix(&format!("calculated {kind} $"))
        .unwrap_or_else(|| panic!("{kind}: {said}"));
    value.to_ascii_lowercase()
}

/// What a judge tool prints first for `file`.
fn judged(tool: &str, file: &Path) -> String {
    peer(tool, &[s(file)])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn every_type_equals_the_judges_over_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("noise"), noise(400_000, 9)).unwrap();
    let made = dir.path().join("made.dmg");
    create_hfs_image(&src, "UDZO", &made);
    for image in [made, corpus().join("dmg/dmgwiz-zlib.dmg")] {
        let raw = dir.path().join("disk.raw");
        let _ = fs::remove_file(&raw);
        peer(
            "qemu-img",
            &["convert", "-f", "dmg", "-O", "raw", s(&image), s(&raw)],
        );
        // The data fork, where the koly trailer says it is.
        let bytes = fs::read(&image).unwrap();
        let koly = &bytes[bytes.len() - 512..];
        let at = u64::from_be_bytes(koly[0x18..0x20].try_into().unwrap()) as usize;
        let len = u64::from_be_bytes(koly[0x20..0x28].try_into().unwrap()) as usize;
        let fork = dir.path().join("fork");
        fs::write(&fork, &bytes[at..at + len]).unwrap();
        for (kind, tool, over) in [
            ("CRC32", "crc32", &raw),
            ("MD5", "md5sum", &raw),
            ("SHA1", "sha1sum", &raw),
            ("SHA256", "sha256sum", &raw),
            ("SHA384", "sha384sum", &raw),
            ("SHA512", "sha512sum", &raw),
            ("UDIF-CRC32", "crc32", &fork),
            ("UDIF-MD5", "md5sum", &fork),
        ] {
            assert_eq!(
                dimg_checksum(&image, kind),
                judged(tool, over),
                "{} {kind}",
                image.display()
            );
        }
    }
}

#[test]
fn udif_types_of_other_images_and_unknown_types_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.img");
    fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
    let o = dimg(&["checksum", s(&raw), "-type", "UDIF-MD5"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a UDIF image"), "{}", stderr(&o));
    let o = dimg(&["checksum", s(&raw), "-type", "CRC28"]);
    assert!(
        stderr(&o).contains("SHA512"),
        "the types are named: {}",
        stderr(&o)
    );
}
