//! Burning, with no optical drive here: data discs are burnt for real onto libburn's `stdio:`
//! pseudo-drive (a file xorriso writes as it would a disc) and read back; discs with audio go to
//! cdrdao, whose command line is checked and which reads the cue sheet dimg prepares for it.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn burn_json(args: &[&str]) -> Value {
    let mut all = vec!["burn"];
    all.extend_from_slice(args);
    all.push("--json");
    let o = dimg(&all);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// A report's command line, as words.
fn words(command: &Value) -> Vec<&str> {
    command
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

/// The first `len` bytes of `path`, hashed by sha256sum.
fn sha256_head(path: &Path, len: u64) -> String {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() as u64 >= len, "{} is short", path.display());
    dimg_e2e::sha256_bytes(&bytes[..len as usize])
}

#[test]
fn data_discs_burn_onto_a_stdio_drive_and_read_back_as_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dimg_e2e::corpus();
    for (image, label) in [
        (corpus.join("iso/joliet.iso"), Some("K3b data project")),
        (corpus.join("cd/isofs-m1.cue"), None),
        (corpus.join("dmg/dmgwiz-zlib.dmg"), None),
    ] {
        // What the disc must hold: the data track as `convert -format ISO` gives it (a plain
        // disk for the DMG, whose disk is no CD).
        let expected = dir.path().join("expected.iso");
        let _ = std::fs::remove_file(&expected);
        let o = dimg(&["convert", s(&image), "-format", "ISO", "-o", s(&expected)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let disc = dir.path().join(format!(
            "{}.disc",
            image.file_name().unwrap().to_string_lossy()
        ));
        let device = format!("stdio:{}", disc.display());
        let report = burn_json(&[s(&image), "-device", &device, "-speed", "4"]);
        assert_eq!(report["burner"], "Xorriso", "{image:?}");
        let command = words(&report["command"]);
        assert_eq!(
            command[..6],
            [
                "xorriso",
                "-as",
                "cdrecord",
                "-v",
                &format!("dev={device}"),
                "speed=4"
            ]
        );
        let size = std::fs::metadata(&expected).unwrap().len();
        assert_eq!(report["verified"], size, "{image:?}");
        assert_eq!(report["sha256"], dimg_e2e::sha256sum(&expected));
        assert_eq!(sha256_head(&disc, size), dimg_e2e::sha256sum(&expected));
        if let Some(label) = label {
            // libcdio reads the burnt "disc" as the ISO it is.
            let said = peer("iso-info", &["-d", "-i", s(&disc)]);
            assert!(said.contains(label), "{said}");
        }
    }
    // -testburn: the drive's simulation; nothing reaches the disc.
    let disc = dir.path().join("simulated.disc");
    let report = burn_json(&[
        s(&corpus.join("iso/joliet.iso")),
        "-device",
        &format!("stdio:{}", disc.display()),
        "-testburn",
    ]);
    assert_eq!(report["simulated"], true);
    assert!(report["command"]
        .as_array()
        .unwrap()
        .contains(&Value::from("-dummy")));
    assert_eq!(std::fs::metadata(&disc).map(|m| m.len()).unwrap_or(0), 0);
}

#[test]
fn audio_and_mixed_discs_go_to_cdrdao_with_a_cue_sheet_it_reads() {
    let corpus = dimg_e2e::corpus();
    for image in [corpus.join("cd/cdda.cue"), corpus.join("cd/p1.nrg")] {
        let report = burn_json(&[
            s(&image),
            "-device",
            "/dev/sr7",
            "-speed",
            "8",
            "-testburn",
            "-eject",
            "-dry-run",
        ]);
        assert_eq!(report["burner"], "Cdrdao", "{image:?}");
        assert_eq!(report["dry_run"], true);
        let command = words(&report["command"]);
        assert_eq!(
            command[..8],
            [
                "cdrdao",
                "write",
                "--device",
                "/dev/sr7",
                "--speed",
                "8",
                "--simulate",
                "--eject"
            ]
        );
        assert!(command[8].ends_with("/disc.cue"), "{command:?}");

        // The cue sheet and BIN the burn prepares (convert's CUE writer): cdrdao parses it
        // and reads every block of it, from the sheet's folder as dimg runs it.
        let dir = tempfile::tempdir().unwrap();
        let cue = dir.path().join("disc.cue");
        let o = dimg(&["convert", s(&image), "-format", "CUE", "-o", s(&cue)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let toc = Command::new("cdrdao")
            .args(["show-toc", "disc.cue"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(toc.status.success(), "{}", stderr(&toc));
        let shown = stdout(&toc) + &stderr(&toc);
        assert!(shown.contains("Mode AUDIO"), "{shown}");
        if image.ends_with("p1.nrg") {
            // Its tracks are shorter than the 4 seconds the Red Book asks: cdrdao's check
            // refuses to burn or read it as a disc (a real drive would too).
            continue;
        }
        let read = Command::new("cdrdao")
            .args(["read-test", "disc.cue"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(read.status.success(), "{}", stderr(&read));
        let sectors = std::fs::metadata(dir.path().join("disc.bin"))
            .unwrap()
            .len()
            / 2352;
        let said = stdout(&read) + &stderr(&read);
        assert!(said.contains(&format!("Read {sectors} blocks")), "{said}");
    }
    // Without a drive cdrdao cannot burn: its own words, in one line, exit 1.
    let o = dimg(&[
        "burn",
        s(&corpus.join("cd/cdda.cue")),
        "-device",
        "/dev/sr7",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let said = stderr(&o);
    assert!(said.starts_with("dimg: cdrdao: the burn failed"), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
}
