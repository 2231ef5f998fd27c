//! Runs the built `dimg` binary as a user or script would.

mod common;
use common::*;
use dimg_e2e::program;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A minimal ISO 9660 volume: a primary volume descriptor that declares `sectors` 2048-byte
/// sectors, and a byte pattern so that digests depend on every block.
fn iso_sample(sectors: u32) -> Vec<u8> {
    let mut v: Vec<u8> = (0..sectors as usize * 2048)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    write_pvd(&mut v[32768..34816], sectors);
    v
}

fn write_pvd(pvd: &mut [u8], sectors: u32) {
    pvd.fill(0);
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[6] = 1;
    pvd[80..84].copy_from_slice(&sectors.to_le_bytes());
    pvd[84..88].copy_from_slice(&sectors.to_be_bytes());
    pvd[128..130].copy_from_slice(&2048u16.to_le_bytes());
    pvd[130..132].copy_from_slice(&2048u16.to_be_bytes());
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn tool_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed as an independent judge ({e}); .ci/test installs it")
        });
    assert!(out.status.success(), "{program} failed");
    stdout(&out)
}

#[test]
fn info_describes_a_raw_iso_for_people_and_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let iso = write(dir.path(), "sample.iso", &iso_sample(64));
    let path = iso.to_str().unwrap();

    let text = dimg(&["info", path]);
    assert!(text.status.success(), "{}", stderr(&text));
    let t = stdout(&text);
    assert!(t.contains("raw disk image"), "{t}");
    assert!(t.contains("ISO 9660"), "{t}");
    assert!(t.contains("131,072 bytes (131.1 KB)"), "{t}");

    let json = dimg(&["info", path, "--json"]);
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("--json is JSON");
    assert_eq!(v["format"], "raw disk image");
    assert_eq!(v["file_size"], 131072);
    assert_eq!(v["sectors"], 256);
    assert_eq!(v["partitions"][0]["file_system"], "ISO 9660");

    // hdiutil spelling: one dash.
    let pl = dimg(&["imageinfo", "-plist", path]);
    assert!(pl.status.success(), "{}", stderr(&pl));
    let v: plist::Value = plist::from_bytes(&pl.stdout).expect("-plist is a property list");
    let d = v.as_dictionary().unwrap();
    assert_eq!(d["format"].as_string(), Some("raw disk image"));
    assert_eq!(d["disk_size"].as_unsigned_integer(), Some(131072));
}

#[test]
fn verify_digests_match_independent_tools() {
    let dir = tempfile::tempdir().unwrap();
    // 5 MiB + a bit: more than one streaming block, and not a multiple of it.
    let iso = write(dir.path(), "v.iso", &iso_sample(2600));
    let path = iso.to_str().unwrap();
    let out = dimg(&["verify", path, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let sha = tool_output("sha256sum", &[path]);
    assert_eq!(v["sha256"], sha.split_whitespace().next().unwrap());
    let crc = tool_output(
        "python3",
        &[
            "-c",
            "import sys,zlib; print('%08x' % zlib.crc32(open(sys.argv[1],'rb').read()))",
            path,
        ],
    );
    assert_eq!(v["crc32"], crc.trim());
    assert_eq!(v["bytes"], 2600 * 2048);

    let text = stdout(&dimg(&["verify", path]));
    assert!(
        text.contains(sha.split_whitespace().next().unwrap()),
        "{text}"
    );
}

#[test]
fn bad_input_gets_one_clear_message_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut udif = vec![0u8; 4096];
    udif[4096 - 512..4096 - 508].copy_from_slice(b"koly");
    let mut sparse = vec![0u8; 4096];
    sparse[..4].copy_from_slice(b"sprs");
    let cases = [
        (write(dir.path(), "empty.img", b""), "the file is empty"),
        (
            write(dir.path(), "notes.dmg", b"just some text\n"),
            "not a disk image I know",
        ),
        (
            write(dir.path(), "stub.dmg", &udif),
            "UDIF koly trailer at offset 3584: version 0 (expected 4)",
        ),
        (
            write(dir.path(), "s.sparseimage", &sparse),
            "sparse image header at offset 8: 0 sectors per band",
        ),
        (dir.path().join("missing.iso"), "No such file"),
        (dir.path().to_path_buf(), "Info.plist is missing"),
    ];
    for (file, expect) in cases {
        let path = file.to_str().unwrap();
        for verb in ["info", "verify"] {
            let out = dimg(&[verb, path]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{verb} {path}: {err}");
            assert!(out.stdout.is_empty(), "{verb} {path} printed a result");
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(err.starts_with("dimg: ") && err.contains(path), "{err}");
            assert!(
                err.contains(expect),
                "{verb} {path}: expected {expect:?} in {err}"
            );
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(dimg(&["verify"]).status.code(), Some(2));
    assert_eq!(dimg(&["frobnicate", "x"]).status.code(), Some(2));
    assert_eq!(
        dimg(&["info", "x", "--json", "--plist"]).status.code(),
        Some(2)
    );
}

#[test]
fn interrupt_cancels_a_running_verify_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // 64 GiB, sparse: far longer to hash than the test waits.
    let sectors = 32 * 1024 * 1024;
    let path = dir.path().join("huge.iso");
    let file = fs::File::create(&path).unwrap();
    let mut head = vec![0u8; 34816];
    write_pvd(&mut head[32768..], sectors);
    std::io::Write::write_all(&mut &file, &head).unwrap();
    file.set_len(u64::from(sectors) * 2048).unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_dimg"))
        .args(["verify", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim(), "dimg: cancelled");
    assert!(out.stdout.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cancel took too long"
    );
}

/// The real images in ../shared/corpus, with their ground truth.
mod corpus {
    use super::*;
    use dimg_e2e::truths;

    #[test]
    fn bare_images_verify_to_their_ground_truth() {
        let mut checked = 0;
        for t in truths().iter().filter(|t| t.view() == "file") {
            let out = dimg(&["verify", "--json", t.path().to_str().unwrap()]);
            assert!(out.status.success(), "{}: {}", t.file, stderr(&out));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["sha256"].as_str(), t.sha256.as_deref(), "{}", t.file);
            checked += 1;
        }
        assert!(checked >= 6, "only {checked} bare images in the corpus");
    }

    #[test]
    fn every_image_is_recognised_by_content_or_refused_cleanly() {
        let expect = |file: &str| -> &str {
            match file {
                f if f.ends_with("aes256.dmg") => "encrypted: a passphrase is needed",
                f if f.ends_with("enc.sparsebundle") => "encrypted: a passphrase is needed",
                f if f.ends_with(".sparsebundle") => "sparse bundle",
                f if f.ends_with(".dmg") => "UDIF",
                f if f.ends_with(".nrg") => "NRG",
                f if f.ends_with(".cue") => "CUE",
                f if f.contains("apfs") => "APFS",
                f if f.ends_with("hfsplus.raw") => "HFS+",
                f if f.starts_with("ntfs/") => "NTFS",
                f if f.starts_with("exfat/") => "exFAT",
                f if f.starts_with("ext/") => "ext2/3/4",
                _ => "ISO 9660",
            }
        };
        for t in truths() {
            let out = dimg(&["info", t.path().to_str().unwrap()]);
            let all = format!("{}{}", stdout(&out), stderr(&out));
            assert!(!all.contains("panicked"), "{}: {all}", t.file);
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{}: {all}",
                t.file
            );
            // Pre-Mac OS X images (#21) are opened by their issue: until then, a clean answer
            // is all there is to ask.
            if matches!(t.kind.as_str(), "dc42" | "dart" | "hfs") {
                continue;
            }
            assert!(
                all.contains(expect(&t.file)),
                "{}: expected {} in {all}",
                t.file,
                expect(&t.file)
            );
        }
    }
}

/// The format an output's name stands for, when -format is not given: what `info` then says the
/// written image is, for every extension dimg names formats by (`create` from a folder and
/// blank, `convert`); and for each, a -format its name contradicts is refused with nothing
/// written.
#[test]
fn output_names_choose_the_format_and_contradictions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a.txt"), b"named by its extension\n").unwrap();
    let iso = write(dir.path(), "source.iso", &iso_sample(64));
    // (extension, what info says from a folder, blank, converted; a -format it contradicts)
    let table = [
        (
            "dmg",
            "UDZO (zlib-compressed)",
            "UDRW (read/write)",
            "UDZO (zlib-compressed)",
            "UDSP",
        ),
        (
            "iso",
            "raw disk image",
            "raw disk image",
            "raw disk image",
            "UDZO",
        ),
        (
            "cdr",
            "raw disk image",
            "raw disk image",
            "raw disk image",
            "ISO",
        ),
        (
            "sparseimage",
            "Apple sparse disk image",
            "Apple sparse disk image",
            "Apple sparse disk image",
            "UDRW",
        ),
        (
            "sparsebundle",
            "Apple sparse bundle disk image",
            "Apple sparse bundle disk image",
            "Apple sparse bundle disk image",
            "UDSP",
        ),
        (
            "toast",
            "raw disk image",
            "raw disk image",
            "raw disk image",
            "UDTO",
        ),
        ("nrg", "", "", "Nero disc image (NRG)", "UDTO"),
        ("cue", "", "", "CUE sheet and BIN files", "NRG"),
    ];
    let said = |image: &Path| stdout(&dimg(&["info", s(image)]));
    for (ext, from_folder, blank, converted, wrong) in table {
        let fs_arg = if matches!(ext, "iso" | "toast") {
            "ISO"
        } else {
            "HFS+"
        };
        if !from_folder.is_empty() {
            let out = dir.path().join(format!("folder.{ext}"));
            let o = dimg(&["create", "-srcfolder", s(&src), "-fs", fs_arg, s(&out)]);
            assert!(o.status.success(), "{ext}: {}", stderr(&o));
            assert!(said(&out).contains(from_folder), "{ext}: {}", said(&out));
        }
        if !blank.is_empty() && fs_arg != "ISO" {
            let out = dir.path().join(format!("blank.{ext}"));
            let o = dimg(&["create", "-size", "10m", s(&out)]);
            assert!(o.status.success(), "{ext}: {}", stderr(&o));
            assert!(said(&out).contains(blank), "{ext}: {}", said(&out));
        }
        let out = dir.path().join(format!("converted.{ext}"));
        let o = dimg(&["convert", s(&iso), "-o", s(&out)]);
        assert!(o.status.success(), "{ext}: {}", stderr(&o));
        assert!(said(&out).contains(converted), "{ext}: {}", said(&out));

        let refused = dir.path().join(format!("refused.{ext}"));
        for args in [
            vec!["convert", s(&iso), "-format", wrong, "-o", s(&refused)],
            vec![
                "create",
                "-srcfolder",
                s(&src),
                "-format",
                wrong,
                s(&refused),
            ],
        ] {
            let o = dimg(&args);
            let why = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {why}");
            assert!(
                why.contains(&format!("is named .{ext}, which holds"))
                    && why.contains(&format!("not {wrong}")),
                "{why}"
            );
            assert!(!refused.exists(), "{args:?} wrote {}", refused.display());
        }
    }
    // A name that says nothing: create keeps hdiutil's default, convert asks for -format.
    let out = dir.path().join("plain.img");
    let o = dimg(&["create", "-srcfolder", s(&src), s(&out)]);
    assert!(said(&out).contains("UDZO"), "{}", stderr(&o));
    let o = dimg(&["convert", s(&iso), "-o", s(&dir.path().join("x.img"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("give -format"), "{}", stderr(&o));
}

/// What holds no image is refused by name at once: a FIFO (opening one waits for a writer that
/// may never come), a character device. Run under `timeout -s KILL`, so that a hang fails the
/// test instead of stopping it.
#[test]
fn fifos_and_character_devices_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.dmg");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out = dir.path().join("out.dmg");
    for (source, what) in [(s(&fifo), "a FIFO"), ("/dev/zero", "a character device")] {
        for args in [
            &["info", source][..],
            &["ls", source],
            &["verify", source],
            &["convert", source, "-format", "UDZO", "-o", s(&out)],
        ] {
            let o = Command::new("timeout")
                .args(["-s", "KILL", "20", env!("CARGO_BIN_EXE_dimg")])
                .args(args)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
            assert!(
                stderr(&o).contains(&format!("{source}: is {what}, not an image file or a disk")),
                "{args:?}: {}",
                stderr(&o)
            );
        }
    }
    assert!(!out.exists());
}

/// The verbs `dimg --help` lists (clap's own `help` left out).
fn verbs() -> Vec<String> {
    let help = stdout(&dimg(&["--help"]));
    let listed = help.split("Commands:").nth(1).expect("a Commands section");
    listed
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|v| v != "help")
        .collect()
}

/// What the package installs (#36), made from the CLI's own definitions: a man page for dimg
/// and one for every verb it lists, each accepted by `man --warnings` without a warning and
/// naming the verb's options; a bash completion script that loads (`complete -p dimg`) and
/// offers every verb; `--version` naming the commit it was built from.
#[test]
fn man_pages_completions_and_the_version_come_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let o = dimg(&["generate", "man", tmp.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let verbs = verbs();
    assert!(verbs.len() >= 20, "{verbs:?}");
    let mut pages: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let mut wanted: Vec<String> = verbs.iter().map(|v| format!("dimg-{v}.1")).collect();
    wanted.push("dimg.1".into());
    wanted.sort();
    assert_eq!(pages, wanted, "a page for dimg and for each verb");
    for page in &pages {
        let shown = Command::new(program("man"))
            .args(["--warnings", "-l"])
            .arg(tmp.path().join(page))
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(
            shown.status.success() && shown.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&shown.stderr)
        );
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(text.contains("SYNOPSIS"), "{page}: {text}");
    }
    let convert = fs::read_to_string(tmp.path().join("dimg-convert.1")).unwrap();
    assert!(convert.contains("format") && convert.contains("encryption"));

    // Loaded into bash, the script completes `dimg <Tab>` with every verb.
    let script = tmp.path().join("dimg.bash");
    let o = dimg(&["generate", "complete-bash"]);
    assert!(o.status.success(), "{}", stderr(&o));
    fs::write(&script, &o.stdout).unwrap();
    let completed = Command::new(program("bash"))
        .arg("-c")
        .arg(format!(
            "source '{}' && complete -p dimg && COMP_WORDS=(dimg '') COMP_CWORD=1 COMP_LINE='dimg ' COMP_POINT=5 && _dimg dimg '' dimg && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&completed.stdout);
    assert!(
        completed.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&completed.stderr)
    );
    let offered: Vec<&str> = said.lines().skip(1).collect();
    for verb in &verbs {
        assert!(
            offered.contains(&verb.as_str()),
            "{verb} not offered: {offered:?}"
        );
    }
    for shell in ["complete-zsh", "complete-fish"] {
        let o = dimg(&["generate", shell]);
        assert!(
            o.status.success() && stdout(&o).contains("convert"),
            "{shell}"
        );
    }

    // --version names the commit HEAD is, where the tests run from a checkout.
    let version = stdout(&dimg(&["--version"]));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    if head.status.success() {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
        assert!(version.contains(&format!("(commit {head}")), "{version}");
    }
}
