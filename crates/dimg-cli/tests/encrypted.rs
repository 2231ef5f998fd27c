//! Encrypted images through the `dimg` binary: writing, reading back, chpass, isencrypted.

mod common;
use common::*;

use dimg_e2e::{corpus, sha256sum};
use std::fs;
use std::path::Path;

const PASS: &str = "correct horse battery";

fn encrypt(source: &Path, format: &str, bits: &str, out: &Path) {
    let args = [
        "convert",
        s(source),
        "-format",
        format,
        "-encryption",
        bits,
        "-o",
        s(out),
        "-stdinpass",
    ];
    let o = dimg_stdin(&args, PASS.as_bytes());
    assert!(o.status.success(), "{format} {bits}: {}", stderr(&o));
}

#[test]
fn aes_128_and_256_over_raw_and_udzo_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let iso = corpus().join("iso/joliet.iso");
    let want = sha256sum(&iso);
    for bits in ["AES-128", "AES-256"] {
        for format in ["UDTO", "UDZO"] {
            let image = dir.path().join(format!("{bits}.{format}.dmg"));
            encrypt(&iso, format, bits, &image);
            let bytes = fs::read(&image).unwrap();
            assert_eq!(&bytes[..8], b"encrcdsa");
            // Nothing of the plaintext shows: the ISO's volume descriptor magic is hidden.
            assert!(!bytes.windows(5).any(|w| w == b"CD001"), "{bits} {format}");
            let back = dir.path().join("back.raw");
            let args = [
                "convert",
                s(&image),
                "-format",
                "UDTO",
                "-o",
                s(&back),
                "-ov",
                "-stdinpass",
            ];
            let o = dimg_stdin(&args, PASS.as_bytes());
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(sha256sum(&back), want, "{bits} {format}: encrypt → decrypt");
            let info = dimg_stdin(
                &["info", "--json", s(&image), "-stdinpass"],
                PASS.as_bytes(),
            );
            let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
            let facts = v["facts"].to_string();
            assert!(facts.contains(&format!("{bits} (encrcdsa v2)")), "{facts}");
            let is = dimg(&["isencrypted", s(&image)]);
            assert_eq!(
                stdout(&is),
                "encrypted: YES (Apple encrypted disk image (encrcdsa v2))\n"
            );
        }
    }
    assert_eq!(stdout(&dimg(&["isencrypted", s(&iso)])), "encrypted: NO\n");
}

#[test]
fn chpass_rewraps_the_key_and_leaves_the_data_alone() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("c.dmg");
    encrypt(&corpus().join("iso/joliet.iso"), "UDZO", "AES-256", &image);
    let before = fs::read(&image).unwrap();
    let o = dimg_stdin(
        &["chpass", s(&image), "-oldstdinpass", "-newstdinpass"],
        format!("{PASS}\0new one").as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let after = fs::read(&image).unwrap();
    assert_eq!(before.len(), after.len());
    assert_eq!(
        before[0x1DE00..],
        after[0x1DE00..],
        "the encrypted data is untouched"
    );
    // The key pointer (type, offset, size) at 0x4C names the passphrase's key descriptor.
    let at = u64::from_be_bytes(before[0x50..0x58].try_into().unwrap()) as usize;
    let size = u64::from_be_bytes(before[0x58..0x60].try_into().unwrap()) as usize;
    assert_ne!(
        before[at..at + size],
        after[at..at + size],
        "the key descriptor changed"
    );
    assert_eq!(before[..at], after[..at], "nothing before it changed");
    assert_eq!(
        before[at + size..],
        after[at + size..],
        "nothing after it changed"
    );

    let new = dimg_stdin(&["verify", s(&image), "-stdinpass"], b"new one");
    assert!(new.status.success(), "{}", stderr(&new));
    let old = dimg_stdin(&["verify", s(&image), "-stdinpass"], PASS.as_bytes());
    assert!(
        stderr(&old).ends_with("wrong passphrase\n"),
        "{}",
        stderr(&old)
    );
    let wrong = dimg_stdin(
        &["chpass", s(&image), "-oldstdinpass", "-newstdinpass"],
        b"nope\0x",
    );
    assert!(
        stderr(&wrong).ends_with("wrong passphrase\n"),
        "{}",
        stderr(&wrong)
    );
    let plain = dimg(&[
        "chpass",
        s(&corpus().join("iso/joliet.iso")),
        "-oldstdinpass",
        "-newstdinpass",
    ]);
    assert!(
        stderr(&plain).contains("is not an encrypted"),
        "{}",
        stderr(&plain)
    );
}

#[test]
fn a_new_encrypted_image_needs_a_passphrase_not_from_argv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("n.dmg");
    // No terminal and no -stdinpass: refused, nothing written.
    let o = dimg_stdin(
        &[
            "convert",
            s(&corpus().join("iso/joliet.iso")),
            "-format",
            "UDZO",
            "-encryption",
            "-o",
            s(&out),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("needs a passphrase for the new image"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    // There is no option that takes a passphrase as an argument.
    let help = stdout(&dimg(&["convert", "--help"]));
    assert!(!help.to_lowercase().contains("--passphrase") && !help.contains("--password"));
}

#[test]
fn the_passphrase_is_in_no_output_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("p.dmg");
    encrypt(&corpus().join("iso/joliet.iso"), "UDRO", "AES-128", &image);
    let mut said = Vec::new();
    for args in [
        vec!["info", s(&image), "-stdinpass"],
        vec!["verify", "--json", s(&image), "-stdinpass"],
    ] {
        for pass in [PASS.as_bytes(), b"a wrong passphrase"] {
            let o = dimg_stdin(&args, pass);
            said.extend(o.stdout);
            said.extend(o.stderr);
        }
    }
    let said = String::from_utf8_lossy(&said);
    assert!(said.contains("wrong passphrase"));
    assert!(
        !said.contains(PASS) && !said.contains("a wrong passphrase"),
        "{said}"
    );
    for entry in fs::read_dir(dir.path()).unwrap() {
        let bytes = fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(PASS.len()).any(|w| w == PASS.as_bytes()));
    }
}

/// Debian's vfdecrypt handles one variant: AES-128 with 1000 PBKDF2 rounds (it ignores the
/// header's count) and the key descriptor where older hdiutil put it. dimg writes that variant on
/// request, and qemu-img and dmg2img then read the decrypted UDZO as the original disk.
#[test]
fn vfdecrypt_decrypts_legacy_aes_128_images_and_peers_read_what_it_gives() {
    let dir = tempfile::tempdir().unwrap();
    let iso = corpus().join("iso/joliet.iso");
    let want = sha256sum(&iso);
    for format in ["UDZO", "UDTO"] {
        let image = dir.path().join(format!("legacy.{format}.dmg"));
        let args = [
            "convert",
            s(&iso),
            "-format",
            format,
            "-encryption",
            "AES-128",
            "-pbkdf2-iterations",
            "1000",
        ];
        let o = dimg_stdin(
            &[&args[..], &["-o", s(&image), "-stdinpass"]].concat(),
            PASS.as_bytes(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let inner = dir.path().join(format!("{format}.inner"));
        let vf = std::process::Command::new(dimg_e2e::program("vfdecrypt"))
            .args(["-i", s(&image), "-p", PASS, "-o", s(&inner)])
            .output()
            .unwrap();
        assert!(vf.status.success());
        if format == "UDTO" {
            assert_eq!(sha256sum(&inner), want, "vfdecrypt gives the raw disk");
            continue;
        }
        for reader in ["qemu-img", "dmg2img"] {
            let raw = dir.path().join(format!("{reader}.raw"));
            let args: Vec<&str> = match reader {
                "qemu-img" => vec!["convert", "-f", "dmg", "-O", "raw", s(&inner), s(&raw)],
                _ => vec!["-s", "-i", s(&inner), "-o", s(&raw)],
            };
            let status = std::process::Command::new(dimg_e2e::program(reader))
                .args(&args)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            assert_eq!(
                sha256sum(&raw),
                want,
                "{reader} reads the UDZO vfdecrypt gave"
            );
        }
    }
}

#[test]
fn new_images_use_hdiutil_strength_key_derivation_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("d.dmg");
    encrypt(&corpus().join("iso/joliet.iso"), "UDZO", "AES-256", &image);
    let bytes = fs::read(&image).unwrap();
    let pointer = u64::from_be_bytes(bytes[0x50..0x58].try_into().unwrap()) as usize;
    let rounds = u32::from_be_bytes(bytes[pointer + 8..pointer + 12].try_into().unwrap());
    assert_eq!(rounds, 250_000);
    let too_few = dimg(&[
        "convert",
        s(&image),
        "-format",
        "UDZO",
        "-encryption",
        "-pbkdf2-iterations",
        "10",
        "-o",
        "x",
    ]);
    assert_eq!(
        too_few.status.code(),
        Some(2),
        "fewer than 1000 rounds are refused"
    );
}
