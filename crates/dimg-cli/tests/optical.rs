//! Disc images (cue/bin, NRG) through the `dimg` binary: the corpus's ground truth, cue sheet
//! errors that name their line, and libcdio's cd-info and bchunk as judges of what dimg writes.

mod common;
use common::*;

use dimg_e2e::{corpus, program, sha256sum, truths};
use std::fs;
use std::path::Path;
use std::process::Command;

#[test]
fn corpus_discs_read_as_their_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for t in truths()
        .iter()
        .filter(|t| matches!(t.kind.as_str(), "cue" | "nrg") && t.sha256.is_some())
    {
        let (format, out) = match t.view() {
            "iso" => ("ISO", dir.path().join(format!("{checked}.iso"))),
            "raw" => ("CUE", dir.path().join(format!("{checked}.cue"))),
            other => panic!("{}: view {other}", t.file),
        };
        let o = dimg(&["convert", s(&t.path()), "-format", format, "-o", s(&out)]);
        assert!(o.status.success(), "{}: {}", t.file, stderr(&o));
        // Raw views are the BIN dimg writes beside its cue sheet.
        let decoded = if format == "CUE" {
            out.with_extension("bin")
        } else {
            out
        };
        assert_eq!(Some(sha256sum(&decoded)), t.sha256, "{}", t.file);
        checked += 1;
    }
    assert_eq!(checked, 3, "isofs-m1.cue, cdda.cue, p1.nrg");
}

#[test]
fn malformed_cue_sheets_name_the_line() {
    let cases = [
        (
            "bad-cat1.cue",
            "line 4: CATALOG without its 13-digit number",
        ),
        (
            "bad-cat2.cue",
            "line 4: CATALOG \"167890123\" is not a 13-digit number",
        ),
        (
            "bad-cat3.cue",
            "line 4: CATALOG \"123456789b123\" is not a 13-digit number",
        ),
        (
            "bad-mode1.cue",
            "line 6: unknown track mode \"MODE3_FORM1\"",
        ),
        ("bad-msf-1.cue", "line 7: INDEX time \"00:00:100\""),
        ("bad-msf-2.cue", "line 7: INDEX time \"00:90:00\""),
        ("bad-msf-3.cue", "line 7: INDEX time \"xx:yy:0\""),
        ("p1.cue", "line 4: missing track file BOING.BIN"),
    ];
    for (file, expect) in cases {
        let o = dimg(&["info", s(&corpus().join("cd").join(file))]);
        assert_eq!(o.status.code(), Some(1), "{file}");
        assert!(stderr(&o).contains(expect), "{file}: {}", stderr(&o));
    }
}

#[test]
fn a_track_past_its_file_and_a_cut_nrg_footer_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("short.bin"), vec![0u8; 2352 * 10]).unwrap();
    let sheet = dir.path().join("long.cue");
    fs::write(&sheet, "FILE \"short.bin\" BINARY\n  TRACK 01 AUDIO\n    INDEX 01 00:00:00\n  TRACK 02 AUDIO\n    INDEX 01 00:01:00\n").unwrap();
    let o = dimg(&["info", s(&sheet)]);
    assert!(
        stderr(&o).contains("line 4: TRACK 02 starts at byte 176400, past the end of short.bin"),
        "{}",
        stderr(&o)
    );
    let no_file = dir.path().join("nofile.cue");
    fs::write(&no_file, "TRACK 01 MODE1/2352\n  INDEX 01 00:00:00\n").unwrap();
    let o = dimg(&["info", s(&no_file)]);
    assert!(
        stderr(&o).contains("nofile.cue: CUE sheet at offset 0: line 1: TRACK before any FILE"),
        "{}",
        stderr(&o)
    );

    let nrg = fs::read(corpus().join("cd/p1.nrg")).unwrap();
    for (name, bytes) in [
        ("cut.nrg", {
            let mut v = nrg.clone();
            let n = v.len();
            v[n - 8..].copy_from_slice(&u64::MAX.to_be_bytes());
            v
        }),
        ("nochunks.nrg", {
            let mut v = nrg.clone();
            let n = v.len();
            v[n - 8..].copy_from_slice(&((n - 20) as u64).to_be_bytes());
            v
        }),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        let o = dimg(&["info", s(&path)]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(stderr(&o).contains("NRG"), "{name}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn cd_info_and_bchunk_accept_what_dimg_writes() {
    let dir = tempfile::tempdir().unwrap();
    // The Nero image as cue/bin: libcdio sees the same two audio tracks at LSN 150 and 300.
    let cue = dir.path().join("p1.cue");
    assert!(dimg(&[
        "convert",
        s(&corpus().join("cd/p1.nrg")),
        "-format",
        "CUE",
        "-o",
        s(&cue)
    ])
    .status
    .success());
    let info = Command::new(program("cd-info"))
        .args(["--no-device-info", "--cue-file", s(&cue)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        text.contains("1: 00:04:00  000150 audio") && text.contains("2: 00:06:00  000300 audio"),
        "{text}"
    );

    // A MODE1/2352 data disc through dimg's cue/bin: bchunk gets back the ISO the truth names.
    let m1 = dir.path().join("m1.cue");
    assert!(dimg(&[
        "convert",
        s(&corpus().join("cd/isofs-m1.cue")),
        "-format",
        "CUE",
        "-o",
        s(&m1)
    ])
    .status
    .success());
    let out = dir.path().join("back");
    let b = Command::new(program("bchunk"))
        .args([s(&m1.with_extension("bin")), s(&m1), s(&out)])
        .output()
        .unwrap();
    assert!(b.status.success());
    let truth = truths()
        .into_iter()
        .find(|t| t.file == "cd/isofs-m1.cue")
        .unwrap();
    assert_eq!(
        Some(sha256sum(&dir.path().join("back01.iso"))),
        truth.sha256
    );
}

fn convert(from: &Path, format: &str, to: &Path) -> String {
    let o = dimg(&["convert", s(from), "-format", format, "-o", s(to)]);
    assert!(o.status.success(), "{format}: {}", stderr(&o));
    stdout(&o)
}

/// A folder of files big and small, for a data disc several stream blocks long.
fn source_folder(root: &Path) {
    fs::create_dir_all(root.join("docs/deeper")).unwrap();
    fs::write(root.join("big.dat"), noise(9 << 20, 0x2545_F491_4F6C_DD1D)).unwrap();
    fs::write(root.join("docs/readme.txt"), b"hello from dimg\n").unwrap();
    fs::write(root.join("docs/deeper/odd size.bin"), noise(70_001, 7)).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
}

/// The corpus's MODE1/2352 disc was mastered by another tool: dimg regenerates every one of its
/// raw sectors (sync, address, EDC, P and Q parity) byte for byte from the 2048-byte data alone,
/// and `dimg verify` checks them — and finds a single flipped byte.
#[test]
fn raw_sectors_regenerate_a_real_disc_byte_for_byte_and_verify_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let real = corpus().join("cd/isofs-m1.cue");
    let iso = dir.path().join("m1.iso");
    convert(&real, "ISO", &iso);
    let cue = dir.path().join("m1.cue");
    convert(&iso, "CUE", &cue);
    assert_eq!(
        sha256sum(&cue.with_extension("bin")),
        sha256sum(&corpus().join("cd/isofs-m1.bin")),
        "every sector as the mastering tool wrote it"
    );
    assert!(fs::read_to_string(&cue)
        .unwrap()
        .contains("TRACK 01 MODE1/2352"));

    let o = dimg(&["verify", s(&real)]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o)
            .contains("ok        track 01 sector EDC/ECC (stored 302 sectors, computed 0 damaged)"),
        "{}",
        stdout(&o)
    );
    let mut bin = fs::read(cue.with_extension("bin")).unwrap();
    bin[2352 * 100 + 700] ^= 0x01;
    fs::write(cue.with_extension("bin"), &bin).unwrap();
    let o = dimg(&["verify", s(&cue)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("1 damaged, the first at sector 100"),
        "{}",
        stdout(&o)
    );
}

/// An ISO made by genisoimage, through dimg's cue/bin and NRG writers, judged by bchunk, cd-info,
/// nrg2iso, iat and 7-Zip — and back through dimg.
#[test]
fn an_iso_through_cue_and_nrg_is_accepted_by_every_peer() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source_folder(&src);
    let iso = dir.path().join("disc.iso");
    peer(
        "genisoimage",
        &[
            "-quiet",
            "-R",
            "-J",
            "-V",
            "DIMGTEST",
            "-o",
            s(&iso),
            s(&src),
        ],
    );
    let iso_size = fs::metadata(&iso).unwrap().len();

    // cue/bin: bchunk gives the ISO back; cd-info sees one data track holding ISO 9660; every
    // sector checks, also those cut by dimg's stream blocks (the BIN is several blocks long).
    let cue = dir.path().join("disc.cue");
    convert(&iso, "CUE", &cue);
    let bin = cue.with_extension("bin");
    assert_eq!(fs::metadata(&bin).unwrap().len(), iso_size / 2048 * 2352);
    peer("bchunk", &[s(&bin), s(&cue), s(&dir.path().join("bchunk"))]);
    assert_eq!(sha256sum(&dir.path().join("bchunk01.iso")), sha256sum(&iso));
    let info = peer(
        "cd-info",
        &["--no-device-info", "--no-cddb", "--cue-file", s(&cue)],
    );
    assert!(info.contains("1: 00:02:00  000000 data"), "{info}");
    assert!(info.contains("CD-ROM with ISO 9660 filesystem"), "{info}");
    assert!(info.contains("label `DIMGTEST"), "{info}");
    assert!(dimg(&["verify", s(&cue)]).status.success());

    // NRG: nrg2iso strips Nero's 150-sector lead pregap and keeps the rest, so its output is the
    // ISO followed by exactly the chunk list; iat finds the ISO alone; 7-Zip lists the files.
    let nrg = dir.path().join("disc.nrg");
    convert(&iso, "NRG", &nrg);
    let nrg_size = fs::metadata(&nrg).unwrap().len();
    let stripped = dir.path().join("nrg2iso.iso");
    peer("nrg2iso", &[s(&nrg), s(&stripped)]);
    let stripped = fs::read(&stripped).unwrap();
    assert_eq!(stripped.len() as u64, nrg_size - 150 * 2048);
    assert!(stripped[..iso_size as usize] == fs::read(&iso).unwrap()[..]);
    assert_eq!(&stripped[iso_size as usize..][..4], b"CUEX");
    let by_iat = dir.path().join("iat.iso");
    peer("iat", &[s(&nrg), s(&by_iat)]);
    assert_eq!(sha256sum(&by_iat), sha256sum(&iso));
    let listed = peer("7zz", &["l", "-slt", s(&nrg)]);
    for name in [
        "big.dat",
        "docs/readme.txt",
        "docs/deeper/odd size.bin",
        "empty",
    ] {
        assert!(
            listed.contains(&format!("Path = {name}\n")),
            "7-Zip misses {name}"
        );
    }

    // And dimg reads both back: the same ISO, the same BIN.
    let back = dir.path().join("back.iso");
    convert(&nrg, "ISO", &back);
    assert_eq!(sha256sum(&back), sha256sum(&iso));
    // libcdio's iso-info reads ISO files only (not BINs, not even real ones): it reads this one.
    let listed = peer("iso-info", &["--no-header", "-f", "-i", s(&back)]);
    for name in [
        "/big.dat",
        "/docs/readme.txt",
        "/docs/deeper/odd size.bin",
        "/empty",
    ] {
        // "  9437184 /big.dat": size, then the path.
        let line = listed.lines().find(|l| l.ends_with(&format!(" {name}")));
        let size = line.and_then(|l| l.split_whitespace().next());
        let want = fs::metadata(src.join(&name[1..]))
            .unwrap()
            .len()
            .to_string();
        assert_eq!(size, Some(want.as_str()), "iso-info on {name}: {listed}");
    }
    let again = dir.path().join("again.cue");
    convert(&nrg, "CUE", &again);
    assert_eq!(sha256sum(&again.with_extension("bin")), sha256sum(&bin));
}

/// Audio survives cue/bin → NRG → cue/bin, and libcdio reads dimg's NRG's track list as it reads
/// Nero's own.
#[test]
fn audio_tracks_survive_nrg_and_cue_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.cue");
    convert(&corpus().join("cd/p1.nrg"), "CUE", &first);
    let nrg = dir.path().join("mine.nrg");
    convert(&first, "NRG", &nrg);
    let second = dir.path().join("second.cue");
    convert(&nrg, "CUE", &second);
    assert_eq!(
        sha256sum(&second.with_extension("bin")),
        sha256sum(&first.with_extension("bin"))
    );
    assert_eq!(
        fs::read_to_string(&second)
            .unwrap()
            .replace("second.bin", "first.bin"),
        fs::read_to_string(&first).unwrap()
    );
    let tracks = |image: &Path| {
        let text = peer(
            "cd-info",
            &["--no-device-info", "--no-cddb", "-i", s(image)],
        );
        text.lines()
            .filter(|l| l.contains(" audio ") || l.contains("leadout"))
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    let theirs = tracks(&corpus().join("cd/p1.nrg"));
    assert_eq!(theirs.len(), 3, "{theirs:?}");
    assert_eq!(tracks(&nrg), theirs);
}

/// A mixed-mode disc (data, then audio): CUE and NRG keep both tracks; an ISO keeps the data
/// track and says so.
#[test]
fn a_mixed_mode_disc_keeps_its_tracks_or_says_what_it_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.cue");
    convert(&corpus().join("cd/isofs-m1.cue"), "CUE", &data);
    let sheet = dir.path().join("mixed.cue");
    fs::copy(corpus().join("cd/cdda.bin"), dir.path().join("audio.bin")).unwrap();
    fs::write(
        &sheet,
        "FILE \"data.bin\" BINARY\n  TRACK 01 MODE1/2352\n    INDEX 01 00:00:00\n\
         FILE \"audio.bin\" BINARY\n  TRACK 02 AUDIO\n    INDEX 00 00:00:00\n    INDEX 01 00:02:00\n",
    )
    .unwrap();
    let iso = dir.path().join("mixed.iso");
    let said = convert(&sheet, "ISO", &iso);
    assert!(
        said.contains("Note:            the disc has 2 tracks; ISO holds only track 01's data"),
        "{said}"
    );
    let truth = truths()
        .into_iter()
        .find(|t| t.file == "cd/isofs-m1.cue")
        .unwrap();
    assert_eq!(Some(sha256sum(&iso)), truth.sha256);

    let nrg = dir.path().join("mixed.nrg");
    convert(&sheet, "NRG", &nrg);
    let back = dir.path().join("back.cue");
    convert(&nrg, "CUE", &back);
    let mut joined = fs::read(dir.path().join("data.bin")).unwrap();
    joined.extend(fs::read(dir.path().join("audio.bin")).unwrap());
    assert!(fs::read(back.with_extension("bin")).unwrap() == joined);
    let info = peer(
        "cd-info",
        &["--no-device-info", "--no-cddb", "--cue-file", s(&back)],
    );
    assert!(info.contains("1: 00:02:00  000000 data"), "{info}");
    // 302 data sectors, then the audio track's 150-sector pregap.
    assert!(info.contains("2: 00:08:02  000452 audio"), "{info}");
}

#[test]
fn disc_formats_refuse_encryption_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["CUE", "NRG"] {
        let out = dir.path().join(format!("x.{}", format.to_lowercase()));
        let o = dimg_stdin(
            &[
                "convert",
                s(&corpus().join("iso/joliet.iso")),
                "-format",
                format,
                "-encryption",
                "-stdinpass",
                "-o",
                s(&out),
            ],
            b"secret",
        );
        assert_eq!(o.status.code(), Some(1), "{format}");
        assert!(
            stderr(&o).contains("images cannot be encrypted"),
            "{}",
            stderr(&o)
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

/// Bootable ISOs from genisoimage (BIOS, no emulation) and xorriso (a 1.44M floppy and a UEFI
/// no-emulation image): dimg reports the catalog as xorriso does, shows the files as the source
/// folder, and extracts what 7-Zip extracts: the tree, and with `-boot` its [BOOT] folder.
#[test]
fn el_torito_boot_images_are_reported_and_extract_as_7zip_does() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source_folder(&src);
    fs::create_dir(src.join("boot")).unwrap();
    fs::write(src.join("boot/loader.bin"), vec![0xEBu8; 5000]).unwrap();
    let mut floppy = vec![0u8; 1_474_560];
    floppy[510..512].copy_from_slice(&[0x55, 0xAA]);
    fs::write(src.join("boot/floppy.img"), &floppy).unwrap();
    let genisoimage = dir.path().join("bios.iso");
    peer(
        "genisoimage",
        &[
            "-quiet",
            "-R",
            "-J",
            "-b",
            "boot/loader.bin",
            "-c",
            "boot/boot.cat",
            "-no-emul-boot",
            "-boot-load-size",
            "4",
            "-o",
            s(&genisoimage),
            s(&src),
        ],
    );
    let xorriso = dir.path().join("two.iso");
    peer(
        "xorriso",
        &[
            "-as",
            "mkisofs",
            "-quiet",
            "-R",
            "-J",
            "-b",
            "boot/floppy.img",
            "-c",
            "boot/boot.cat",
            "-eltorito-alt-boot",
            "-e",
            "boot/loader.bin",
            "-no-emul-boot",
            "-o",
            s(&xorriso),
            s(&src),
        ],
    );
    for (iso, images) in [(&genisoimage, 1), (&xorriso, 2)] {
        // xorriso's report: "El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4          34"
        let report = peer("xorriso", &["-indev", s(iso), "-report_el_torito", "plain"]);
        let theirs: Vec<(String, String, String)> = report
            .lines()
            .filter(|l| l.starts_with("El Torito boot img :"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let n = f.len();
                (
                    f[n - 7].to_string(),
                    f[n - 2].to_string(),
                    f[n - 1].to_string(),
                )
            })
            .collect();
        assert_eq!(theirs.len(), images, "{report}");
        let info = stdout(&dimg(&["info", s(iso)]));
        let ours: Vec<&str> = info.lines().filter(|l| l.contains("Boot image:")).collect();
        assert_eq!(ours.len(), images, "{info}");
        for ((platform, load, lba), line) in theirs.iter().zip(&ours) {
            let platform = if platform == "BIOS" {
                "x86 BIOS"
            } else {
                platform.as_str()
            };
            assert!(line.contains(platform), "{line} vs {platform}");
            assert!(
                line.contains(&format!("at sector {lba}")),
                "{line} vs LBA {lba}"
            );
            if line.contains("no emulation") {
                assert!(
                    line.contains(&format!("loads {load} × 512 bytes")),
                    "{line}"
                );
            }
        }

        let ours_dir = dir.path().join("dimg-out");
        let sevenz_dir = dir.path().join("7z-out");
        let _ = fs::remove_dir_all(&ours_dir);
        let _ = fs::remove_dir_all(&sevenz_dir);
        let o = dimg(&["extract", s(iso), "-o", s(&ours_dir)]);
        assert!(o.status.success(), "{}", stderr(&o));
        peer(
            "7zz",
            &["x", "-y", &format!("-o{}", s(&sevenz_dir)), s(iso)],
        );
        // The volume is the disc's tree; 7-Zip adds its [BOOT] folder, which `extract -boot`
        // gives, file for file.
        let ours = snapshot(&ours_dir, false);
        let mut theirs = snapshot(&sevenz_dir, false);
        let boot_by_7z: std::collections::BTreeMap<_, _> = theirs
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("[BOOT]/")
                    .map(|n| (n.to_string(), v.clone()))
            })
            .collect();
        theirs.retain(|name, _| !name.starts_with("[BOOT]"));
        assert_eq!(ours, theirs, "{}", iso.display());
        let mut files = ours.clone();
        files.retain(|name, _| name != "boot/boot.cat");
        assert_eq!(files, snapshot(&src, false), "{}", iso.display());
        let boot_dir = dir.path().join("dimg-boot");
        let _ = fs::remove_dir_all(&boot_dir);
        let o = dimg(&["extract", s(iso), "-boot", "-o", s(&boot_dir)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let boot = snapshot(&boot_dir, false);
        assert_eq!(boot.len(), images);
        assert_eq!(boot, boot_by_7z, "{}", iso.display());
    }
    let floppy_out = dir.path().join("dimg-boot/1-Boot-1.44M.img");
    assert!(fs::read(floppy_out).unwrap() == floppy);
    // A disc without a boot catalog says so.
    let o = dimg(&[
        "extract",
        s(&corpus().join("iso/joliet.iso")),
        "-boot",
        "-o",
        s(&dir.path().join("none")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("has no boot images"), "{}", stderr(&o));
}

/// A .toast is the disc's 2048-byte sectors: written from an ISO or from a UDZO holding one,
/// it is that ISO byte for byte, and it opens as what it holds.
#[test]
fn toast_images_are_the_discs_sectors() {
    let dir = tempfile::tempdir().unwrap();
    let iso = corpus().join("iso/joliet.iso");
    let toast = dir.path().join("disc.toast");
    convert(&iso, "TOAST", &toast);
    assert_eq!(sha256sum(&toast), sha256sum(&iso));
    let udzo = dir.path().join("disc.dmg");
    convert(&iso, "UDZO", &udzo);
    let again = dir.path().join("again.toast");
    convert(&udzo, "TOAST", &again);
    assert_eq!(sha256sum(&again), sha256sum(&iso));
    let info = stdout(&dimg(&["info", s(&toast)]));
    assert!(info.contains("Recognised:      ISO 9660"), "{info}");
    let o = dimg(&["ls", s(&toast)]);
    assert_eq!(stdout(&o), stdout(&dimg(&["ls", s(&iso)])));
}

/// Audio held as a RIFF WAVE file or as big-endian (MOTOROLA) samples reads as the same BIN
/// audio; a WAVE that is not CD audio is refused by name and line.
#[test]
fn wave_and_motorola_files_read_as_cd_audio() {
    let dir = tempfile::tempdir().unwrap();
    let pcm = fs::read(corpus().join("cd/cdda.bin")).unwrap();
    let wave = |channels: u16| {
        let mut w = b"RIFF".to_vec();
        w.extend((36 + 12 + pcm.len() as u32).to_le_bytes());
        w.extend(b"WAVEfmt ");
        w.extend(16u32.to_le_bytes());
        for field in [1u16, channels] {
            w.extend(field.to_le_bytes());
        }
        w.extend(44_100u32.to_le_bytes());
        w.extend((44_100 * 2 * u32::from(channels)).to_le_bytes());
        w.extend((2 * channels).to_le_bytes());
        w.extend(16u16.to_le_bytes());
        // A chunk of odd length before the samples: its pad byte must be skipped.
        w.extend(b"LIST\x03\0\0\0abc\0data");
        w.extend((pcm.len() as u32).to_le_bytes());
        w.extend(&pcm);
        w
    };
    fs::write(dir.path().join("song.wav"), wave(2)).unwrap();
    fs::write(dir.path().join("mono.wav"), wave(1)).unwrap();
    let swapped: Vec<u8> = pcm.chunks(2).flat_map(|p| [p[1], p[0]]).collect();
    fs::write(dir.path().join("song.be"), swapped).unwrap();
    for (sheet, file) in [
        ("wave.cue", "\"song.wav\" WAVE"),
        ("moto.cue", "song.be MOTOROLA"),
    ] {
        let path = dir.path().join(sheet);
        fs::write(
            &path,
            format!("FILE {file}\n  TRACK 01 AUDIO\n    INDEX 01 00:00:00\n"),
        )
        .unwrap();
        let out = dir.path().join(format!("out-{sheet}"));
        convert(&path, "CUE", &out);
        assert_eq!(
            sha256sum(&out.with_extension("bin")),
            sha256sum(&corpus().join("cd/cdda.bin")),
            "{sheet}"
        );
    }
    let mono = dir.path().join("mono.cue");
    fs::write(
        &mono,
        "REM mono\nFILE \"mono.wav\" WAVE\n  TRACK 01 AUDIO\n    INDEX 01 00:00:00\n",
    )
    .unwrap();
    let o = dimg(&["info", s(&mono)]);
    assert!(
        stderr(&o).contains("line 2: mono.wav: its samples are not CD audio"),
        "{}",
        stderr(&o)
    );
}

/// PREGAP and POSTGAP are silence the disc has and the BIN does not: dimg keeps the disc's
/// layout through CUE and NRG, as cdrdao (which honours both) reads the sheets.
#[test]
fn unstored_gaps_keep_every_track_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(corpus().join("cd/cdda.bin"), dir.path().join("g.bin")).unwrap();
    let sheet = dir.path().join("gaps.cue");
    fs::write(
        &sheet,
        "FILE \"g.bin\" BINARY\n  TRACK 01 AUDIO\n    INDEX 01 00:00:00\n    POSTGAP 00:01:00\n\
         \x20 TRACK 02 AUDIO\n    PREGAP 00:02:00\n    INDEX 01 00:02:00\n",
    )
    .unwrap();
    // cdrdao finds a sheet's FILE from its working directory.
    let toc = |cue: &Path| {
        let o = Command::new(program("cdrdao"))
            .args(["show-toc", s(cue)])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{said}{}", stderr(&o));
        said[said.find("TRACK  1").expect("a TOC")..].to_string()
    };
    let want = toc(&sheet);
    assert!(
        want.contains("END    00:03:00(   225)") && want.contains("START  00:05:00(   375)"),
        "{want}"
    );
    let cue = dir.path().join("out.cue");
    convert(&sheet, "CUE", &cue);
    assert_eq!(toc(&cue), want, "dimg's cue sheet");
    let nrg = dir.path().join("out.nrg");
    convert(&sheet, "NRG", &nrg);
    let again = dir.path().join("again.cue");
    convert(&nrg, "CUE", &again);
    assert_eq!(toc(&again), want, "through NRG");
}

/// cd-info's track list: (number, LSN) of each track.
fn cd_info_tracks(image: &Path) -> Vec<(u32, u64)> {
    let text = peer(
        "cd-info",
        &["--no-header", "--no-device-info", "-i", s(image)],
    );
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let number = w.first()?.strip_suffix(':')?.parse().ok()?;
            (number < 100).then_some((number, w.get(2)?.parse().ok()?))
        })
        .collect()
}

/// dimg's track list: (number, LBA of INDEX 01) from `info`.
fn dimg_tracks(image: &Path) -> Vec<(u32, u64)> {
    let o = dimg(&["info", s(image)]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("Track:")?;
            let w: Vec<&str> = rest.split_whitespace().collect();
            Some((w[0].parse().ok()?, w[4].parse().ok()?))
        })
        .collect()
}

/// cd-info's ISO 9660 listing of the files: (path in upper case, size, LSN, Form 2).
fn cd_info_files(image: &Path) -> Vec<(String, u64, u64, bool)> {
    let text = peer(
        "cd-info",
        &[
            "--no-header",
            "--no-device-info",
            "--iso9660",
            "-i",
            s(image),
        ],
    );
    let mut dir = String::new();
    let mut files = Vec::new();
    for line in text.lines() {
        if let Some(d) = line.strip_suffix(":").filter(|d| d.starts_with('/')) {
            dir = d.to_uppercase();
        } else if line.trim_start().starts_with('-') {
            // "---2-xrxrxr 0 0 [fn 01] [LSN    450]    866852 (   763904) Jul ... avseq01.dat"
            let (head, tail) = line.split_once("[LSN").unwrap();
            let (lsn, rest) = tail.split_once(']').unwrap();
            let w: Vec<&str> = rest.split_whitespace().collect();
            let name = w.last().unwrap().to_uppercase();
            files.push((
                format!("{dir}{name}"),
                w[0].parse().unwrap(),
                lsn.trim().parse().unwrap(),
                head.trim_start().starts_with("---2"),
            ));
        }
    }
    files
}

/// A file's bytes as the disc holds them, from the raw sectors cd-read gives: 2048 bytes a sector
/// for Form 1, and for Form 2 the 2324 after the 8-byte subheader (ECMA-130 and CD-XA). cd-read's
/// own `-m m2f2` output starts each sector at the subheader instead, so it is not used.
fn cd_read_file(image: &Path, lsn: u64, size: u64, form2: bool, out: &Path) -> Vec<u8> {
    let (per, at) = if form2 { (2324, 24) } else { (2048, 24) };
    let count = size.div_ceil(per);
    peer(
        "cd-read",
        &[
            "--no-header",
            "-i",
            s(image),
            "-m",
            "audio",
            "-s",
            &lsn.to_string(),
            "-n",
            &count.to_string(),
            "-o",
            s(out),
        ],
    );
    let raw = fs::read(out).unwrap();
    let mut data: Vec<u8> = raw
        .chunks_exact(2352)
        .flat_map(|sector| sector[at..at + per as usize].to_vec())
        .collect();
    data.truncate(size as usize);
    data
}

/// Every file of a Video CD as libcdio lists and reads it: the track list, each file's size
/// (Form 2 files at 2324 bytes a sector) and its bytes; the streams' sectors are the MPEG that
/// ffmpeg made, as vcdxrip gives them back. The same through dimg's CUE and NRG output.
#[test]
fn video_cd_tracks_and_form2_files_read_as_libcdio_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let (cue, streams) = video_cd(dir.path(), "vcd2");
    let nrg = dir.path().join("dimg.nrg");
    convert(&cue, "NRG", &nrg);
    let again = dir.path().join("again.cue");
    convert(&nrg, "CUE", &again);
    assert_eq!(
        sha256sum(&again.with_extension("bin")),
        sha256sum(&cue.with_extension("bin")),
        "CUE → NRG → CUE gives vcdimager's BIN back"
    );
    let theirs = cd_info_files(&cue);
    assert_eq!(theirs.len(), 4, "{theirs:?}");
    // iso-info reads ISO files only: dimg's ISO of the first track, whose records give the sizes.
    let iso = dir.path().join("track1.iso");
    convert(&cue, "ISO", &iso);
    let listed = peer("iso-info", &["--no-header", "-l", "-i", s(&iso)]);
    for (path, size, _, _) in &theirs {
        let name = path.rsplit('/').next().unwrap().to_lowercase();
        let line = listed.lines().find(|l| l.ends_with(&format!(" {name}")));
        let shown = line.and_then(|l| l.split(']').nth(2)?.split_whitespace().next());
        assert_eq!(
            shown,
            Some(size.to_string().as_str()),
            "iso-info on {path}: {listed}"
        );
    }
    assert!(theirs.iter().filter(|f| f.3).count() == 2, "{theirs:?}");
    for image in [&cue, &nrg] {
        let tracks = cd_info_tracks(image);
        assert_eq!(tracks.len(), 3, "{tracks:?}");
        assert_eq!(dimg_tracks(image), tracks, "{}", image.display());
        assert_eq!(cd_info_files(image), theirs, "{}", image.display());
        let o = dimg(&["ls", "-l", "-R", s(image)]);
        let listed: Vec<(String, u64)> = stdout(&o)
            .lines()
            .filter(|l| l.starts_with('-'))
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (format!("/{}", w[w.len() - 1]), w[2].parse().unwrap())
            })
            .collect();
        let sizes: Vec<(String, u64)> = theirs.iter().map(|f| (f.0.clone(), f.1)).collect();
        assert_eq!(listed.len(), sizes.len(), "{listed:?}");
        assert!(sizes.iter().all(|f| listed.contains(f)), "{listed:?}");
        let out = dir.path().join(format!(
            "x-{}",
            image.file_name().unwrap().to_string_lossy()
        ));
        let o = dimg(&["extract", s(image), "-o", s(&out)]);
        assert!(o.status.success(), "{}", stderr(&o));
        for (path, size, lsn, form2) in &theirs {
            let got = fs::read(out.join(&path[1..])).unwrap();
            assert_eq!(got.len() as u64, *size, "{path}");
            let want = cd_read_file(&cue, *lsn, *size, *form2, &dir.path().join("read"));
            assert!(got == want, "{path} differs from the disc's sectors");
        }
    }
    // vcdimager pads each stream with empty sectors; the rest is the MPEG, pack for pack.
    let ripped = dir.path().join("rip");
    fs::create_dir(&ripped).unwrap();
    let o = std::process::Command::new(dimg_e2e::program("vcdxrip"))
        .args(["-q", "-c", s(&cue), "-o", s(&ripped.join("videocd.xml"))])
        .current_dir(&ripped)
        .output()
        .unwrap();
    assert!(o.status.success(), "vcdxrip: {}", stderr(&o));
    for (i, stream) in streams.iter().enumerate() {
        let ours = fs::read(
            dir.path()
                .join(format!("x-vcd2.cue/MPEGAV/AVSEQ0{}.DAT", i + 1)),
        )
        .unwrap();
        let packs: Vec<u8> = ours
            .chunks_exact(2324)
            .filter(|pack| pack.iter().any(|&b| b != 0))
            .flatten()
            .copied()
            .collect();
        let rip = fs::read(ripped.join(format!("avseq0{}.mpg", i + 1))).unwrap();
        assert!(packs == rip, "stream {} is not what vcdxrip rips", i + 1);
        assert!(
            rip == fs::read(stream).unwrap(),
            "vcdxrip gives back ffmpeg's stream"
        );
    }
}

/// A Super Video CD's MPEG-2 file extracts as the stream ffmpeg made (vcdimager stores its
/// packs without padding), with cd-info's size.
#[test]
fn super_video_cd_stream_extracts_as_ffmpeg_made_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cue, streams) = video_cd(dir.path(), "svcd");
    let theirs = cd_info_files(&cue);
    let (_, size, _, form2) = theirs
        .iter()
        .find(|f| f.0 == "/MPEG2/AVSEQ01.MPG")
        .unwrap_or_else(|| panic!("{theirs:?}"));
    assert!(form2);
    let target = format!("{}:/MPEG2/AVSEQ01.MPG", s(&cue));
    let o = dimg(&["extract", &target, "-o", s(&dir.path().join("x"))]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = fs::read(dir.path().join("x/AVSEQ01.MPG")).unwrap();
    assert_eq!(got.len() as u64, *size);
    assert!(got == fs::read(&streams[0]).unwrap());
    assert_eq!(dimg_tracks(&cue), cd_info_tracks(&cue));
}

/// A track-at-once NRG, built here to the ETN2 layout libcdio reads (the published one, in
/// libcdio's and libmirage's parsers): the Video CD's tracks stored back to back as 2336-byte
/// Mode 2 sectors from INDEX 01 on, each entry {offset u64, length u64, mode u32 = 3, LSN u32 =
/// offset / 2336, 0 u64}, then SINF, MTYP, END! and the NER5 footer. The two-second gaps before
/// tracks 2 and 3 are in no byte of the file.
#[test]
fn track_at_once_nrg_keeps_the_discs_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let (cue, _) = video_cd(dir.path(), "vcd2");
    let bin = fs::read(cue.with_extension("bin")).unwrap();
    let tracks = cd_info_tracks(&cue);
    let leadout = bin.len() as u64 / 2352;
    let mut data = Vec::new();
    let mut entries = Vec::new();
    for (i, &(_, lsn)) in tracks.iter().enumerate() {
        let end = tracks.get(i + 1).map_or(leadout, |t| t.1 - 150);
        let offset = data.len() as u64;
        for sector in bin[lsn as usize * 2352..end as usize * 2352].chunks_exact(2352) {
            data.extend_from_slice(&sector[16..]);
        }
        entries.extend_from_slice(&offset.to_be_bytes());
        entries.extend_from_slice(&(data.len() as u64 - offset).to_be_bytes());
        entries.extend_from_slice(&3u32.to_be_bytes());
        entries.extend_from_slice(&((offset / 2336) as u32).to_be_bytes());
        entries.extend_from_slice(&0u64.to_be_bytes());
    }
    let list_at = data.len() as u64;
    for (id, body) in [
        (b"ETN2", entries),
        (b"SINF", 1u32.to_be_bytes().to_vec()),
        (b"MTYP", 1u32.to_be_bytes().to_vec()),
        (b"END!", Vec::new()),
    ] {
        data.extend_from_slice(id);
        data.extend_from_slice(&(body.len() as u32).to_be_bytes());
        data.extend_from_slice(&body);
    }
    data.extend_from_slice(b"NER5");
    data.extend_from_slice(&list_at.to_be_bytes());
    let tao = dir.path().join("tao.nrg");
    fs::write(&tao, &data).unwrap();

    assert_eq!(cd_info_tracks(&tao), tracks, "libcdio places the tracks");
    assert_eq!(dimg_tracks(&tao), tracks);
    // The gaps come back as the empty Form 2 sectors vcdimager wrote: the whole BIN, bit for bit.
    let back = dir.path().join("back.cue");
    convert(&tao, "CUE", &back);
    assert_eq!(
        sha256sum(&back.with_extension("bin")),
        sha256sum(&cue.with_extension("bin"))
    );
    let out = dir.path().join("x");
    assert!(dimg(&["extract", s(&tao), "-o", s(&out)]).status.success());
    for (path, size, lsn, form2) in cd_info_files(&cue) {
        let want = cd_read_file(&cue, lsn, size, form2, &dir.path().join("read"));
        assert!(fs::read(out.join(&path[1..])).unwrap() == want, "{path}");
    }
}

/// `verify` checks Mode 2 sectors by their form: a flipped byte in a Form 1 sector or in a Form
/// 2 one is found; a Form 2 sector whose EDC the writer left zero is not damage.
#[test]
fn verify_checks_mode2_form1_and_form2_sectors() {
    let dir = tempfile::tempdir().unwrap();
    let (cue, _) = video_cd(dir.path(), "vcd2");
    let o = dimg(&["verify", s(&cue)]);
    assert!(o.status.success(), "{}", stdout(&o));
    let bin_path = cue.with_extension("bin");
    let clean = fs::read(&bin_path).unwrap();
    let verify_with = |change: &dyn Fn(&mut Vec<u8>)| {
        let mut bin = clean.clone();
        change(&mut bin);
        fs::write(&bin_path, &bin).unwrap();
        let o = dimg(&["verify", s(&cue)]);
        (o.status.code(), stdout(&o))
    };
    // Sector 16 is the primary volume descriptor (Form 1); 500 is stream data (Form 2).
    assert_eq!(clean[16 * 2352 + 18] & 0x20, 0);
    assert_eq!(clean[500 * 2352 + 18] & 0x20, 0x20);
    let (code, said) = verify_with(&|b| b[16 * 2352 + 100] ^= 1);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("track 01 sector EDC/ECC (stored 300 sectors, computed 1 damaged, the first at sector 16)"), "{said}");
    let (code, said) = verify_with(&|b| b[500 * 2352 + 1000] ^= 1);
    assert_eq!(code, Some(1), "{said}");
    // Counted from the track's first stored sector: its pregap, at LBA 300.
    assert!(
        said.contains("track 02 sector EDC/ECC (stored 447 sectors, computed 1 damaged, the first at sector 200)"),
        "{said}"
    );
    let (code, said) = verify_with(&|b| b[500 * 2352 + 2348..501 * 2352].fill(0));
    assert_eq!(code, Some(0), "{said}");
}
