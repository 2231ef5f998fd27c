//! Disc images (cue/bin, NRG) through the `dimg` binary: the corpus's ground truth, cue sheet
//! errors that name their line, and libcdio's cd-info and bchunk as judges of what dimg writes.

mod common;
use common::*;

use dimg_e2e::{corpus, program, sha256sum, truths};
use std::fs;
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
