//! Distribution images (#33): the Finder layout a settings file asks for, judged by the Python
//! packages the Mac tooling itself uses (ds-store, mac-alias, dmgbuild), libyal's pyfshfs and
//! fshfsinfo, 7-Zip, and qemu-img decoding the image.

mod common;

use common::{dimg, judge_script, noise, s, stderr};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Finder flags in a catalog record's Finder info (bytes 8-9 of its first 16).
const HAS_CUSTOM_ICON: u16 = 0x0400;
const EXTENSION_HIDDEN: u16 = 0x0010;
const IS_INVISIBLE: u16 = 0x4000;

/// An app folder to distribute: an app bundle and a read-me.
fn app_folder(root: &Path) -> PathBuf {
    let src = root.join("src");
    fs::create_dir_all(src.join("Tool.app/Contents/MacOS")).unwrap();
    fs::write(src.join("Tool.app/Contents/Info.plist"), b"<plist/>").unwrap();
    fs::write(src.join("Tool.app/Contents/MacOS/tool"), noise(5000, 3)).unwrap();
    fs::write(src.join("Read Me.txt"), b"read me\n").unwrap();
    src
}

/// `dimg create -srcfolder SRC -settings SETTINGS ARGS… IMAGE`, which must succeed; gives the
/// image decoded by qemu-img to a raw disk, and where its HFS+ volume starts.
fn laid_out(src: &Path, settings: &Path, args: &[&str], image: &Path) -> (PathBuf, u64) {
    let mut all = vec!["create", "-srcfolder", s(src), "-settings", s(settings)];
    all.extend(args);
    all.push(s(image));
    let o = dimg(&all);
    assert!(o.status.success(), "{}", stderr(&o));
    let raw = image.with_extension("raw");
    common::peer("qemu-img", &["convert", "-O", "raw", s(image), s(&raw)]);
    let offset = common::partition_with(image, "HFS+")["start"]
        .as_u64()
        .unwrap();
    (raw, offset)
}

/// What finder_layout.py (pyfshfs, ds-store, mac-alias, and dmgbuild unless `without`) says of
/// the volume.
fn judge(
    raw: &Path,
    offset: u64,
    settings: &Path,
    src: &Path,
    without: &[&str],
) -> serde_json::Value {
    let o = judge_script("finder_layout.py")
        .args([s(raw), &offset.to_string(), s(settings), s(src)])
        .args(without)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("finder_layout.py: {}", stderr(&o)));
    assert!(
        o.status.success(),
        "{:#}\n{}",
        report["failures"],
        stderr(&o)
    );
    report
}

/// The Finder flags of the catalog record `name` of `kind` (1 folder, 2 file) in a raw volume.
fn finder_flags(volume: &[u8], name: &str, kind: u16) -> u16 {
    let data = common::catalog_record(volume, name, kind);
    u16::from_be_bytes([volume[data + 56], volume[data + 57]])
}

#[test]
fn a_finder_layout_is_what_ds_store_mac_alias_and_dmgbuild_make_of_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let src = app_folder(dir.path());
    let art = dir.path().join("art");
    fs::create_dir(&art).unwrap();
    let png = |n: usize, seed| [&b"\x89PNG\r\n\x1a\n"[..], &noise(n, seed)].concat();
    fs::write(art.join("backdrop.png"), png(3000, 1)).unwrap();
    fs::write(art.join("backdrop@2x.png"), png(9000, 2)).unwrap();
    fs::write(
        art.join("Tool.icns"),
        [&b"icns"[..], &noise(600, 4)].concat(),
    )
    .unwrap();
    let settings = art.join("layout.json");
    fs::write(
        &settings,
        r##"{
            "window_rect": [[200, 120], [600, 400]],
            "icon_size": 96, "text_size": 13,
            "background": "backdrop.png",
            "icon": "Tool.icns",
            "symlinks": {"Applications": "/Applications"},
            "icon_locations": {"Tool.app": [150, 180], "Applications": [450, 180],
                               "Read Me.txt": [300, 320]},
            "hide_extensions": ["Tool.app"],
            "labels": {"Read Me.txt": "red"}
        }"##,
    )
    .unwrap();
    let image = dir.path().join("Tool.dmg");
    let (raw, offset) = laid_out(&src, &settings, &["-volname", "Tool 1.0"], &image);

    let report = judge(&raw, offset, &settings, &src, &[]);
    let names: Vec<&str> = report["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for name in [
        ".DS_Store",
        ".VolumeIcon.icns",
        ".background",
        "Applications",
        "Tool.app",
    ] {
        assert!(names.contains(&name), "pyfshfs lists {names:?}");
    }
    // dmgbuild's records are all dimg's; dimg adds the background's bookmark.
    assert_eq!(report["dmgbuild_records"], 7, "{report}");
    assert_eq!(
        report["beyond_dmgbuild"],
        serde_json::json!([[".", "pBBk"]])
    );

    let hierarchy = common::peer("fshfsinfo", &["-o", &offset.to_string(), "-H", s(&raw)]);
    for path in [
        "/.background/backdrop.png",
        "/.background/backdrop@2x.png",
        "/.DS_Store",
        "/.VolumeIcon.icns",
        "/Applications",
    ] {
        assert!(
            hierarchy.lines().any(|l| l == path),
            "fshfsinfo -H: {hierarchy}"
        );
    }
    let by_7z = dir.path().join("7z");
    common::peer("7zz", &["x", "-y", &format!("-o{}", s(&by_7z)), s(&raw)]);
    let volume_dir = by_7z.join("Tool 1.0");
    assert_eq!(
        fs::read(volume_dir.join(".background/backdrop@2x.png")).unwrap(),
        png(9000, 2)
    );
    assert_eq!(
        fs::read(volume_dir.join(".VolumeIcon.icns")).unwrap(),
        fs::read(art.join("Tool.icns")).unwrap()
    );
    assert!(volume_dir.join("Applications").is_symlink(), "7-Zip");
    assert_eq!(report["links"]["Applications"], "/Applications", "pyfshfs");

    // The Finder flags dmgbuild asks SetFile for (C: custom icon, E: extension hidden, V:
    // invisible) are in the catalog, and the label colour (red, 6) too.
    let disk = fs::read(&raw).unwrap();
    let volume = &disk[offset as usize..];
    let asked = report["dmgbuild_flags"].as_object().unwrap();
    assert_eq!(asked["."], serde_json::json!(["C"]));
    for (name, letters) in asked {
        let (record, kind) = match name.as_str() {
            "." => ("Tool 1.0", 1),
            "Tool.app" => ("Tool.app", 1),
            other => (other, 2),
        };
        let flags = finder_flags(volume, record, kind);
        for letter in letters.as_array().unwrap() {
            let bit = match letter.as_str().unwrap() {
                "C" => HAS_CUSTOM_ICON,
                "E" => EXTENSION_HIDDEN,
                "V" => IS_INVISIBLE,
                other => panic!("dmgbuild asked for flag {other}"),
            };
            assert_eq!(flags & bit, bit, "{name}: flags {flags:#06x}");
        }
    }
    assert_eq!(finder_flags(volume, "Read Me.txt", 2) & 0x000E, 6 << 1);
}

#[test]
fn a_colour_background_and_a_window_of_many_icons_span_several_pages() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    let mut locations = serde_json::Map::new();
    for i in 0..400 {
        let name = format!("document number {i:03}.txt");
        fs::write(src.join(&name), name.as_bytes()).unwrap();
        locations.insert(
            name,
            serde_json::json!([20 + i % 20 * 90, 20 + i / 20 * 90]),
        );
    }
    let settings = dir.path().join("layout.json");
    let layout = serde_json::json!({
        "window_rect": [[10, 10], [1800, 1000]],
        "icon_size": 48, "text_size": 12,
        "background": "#336699",
        "icon_locations": locations,
    });
    fs::write(&settings, layout.to_string()).unwrap();
    let image = dir.path().join("many.dmg");
    let (raw, offset) = laid_out(&src, &settings, &["-fs", "JHFS+"], &image);
    // dmgbuild's ds-store fails to split the pages it inserts into: ds-store reads dimg's.
    let report = judge(&raw, offset, &settings, &src, &["--no-dmgbuild"]);
    // 400 icon locations and the folder's 4 records: more than one 4 KiB page holds.
    assert_eq!(report["records"], 404, "{report}");
}

#[test]
fn settings_the_folder_or_file_system_cannot_follow_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = app_folder(dir.path());
    let image = dir.path().join("out.dmg");
    let cases = [
        (
            r#"{"icon_locations": {"Missing.app": [1, 2]}}"#,
            "HFS+",
            "Missing.app",
        ),
        (r#"{"icon_size": 2000}"#, "HFS+", "icon_size"),
        (r##"{"background": "#12345"}"##, "HFS+", "colour"),
        (r#"{"window": 3}"#, "HFS+", "window"),
        (r#"{"labels": {"Read Me.txt": "pink"}}"#, "HFS+", "pink"),
        ("{}", "FAT32", "HFS+"),
    ];
    for (i, (text, file_system, says)) in cases.into_iter().enumerate() {
        let settings = dir.path().join(format!("bad{i}.json"));
        fs::write(&settings, text).unwrap();
        let o = dimg(&[
            "create",
            "-srcfolder",
            s(&src),
            "-settings",
            s(&settings),
            "-fs",
            file_system,
            s(&image),
        ]);
        assert!(!o.status.success(), "{text} was taken");
        let said = stderr(&o);
        assert!(said.contains(says), "{text}: {said}");
        if file_system == "HFS+" {
            assert!(said.contains(s(&settings)), "{text}: {said}");
        }
        assert!(!image.exists(), "{text}: an image was left");
    }
}

/// What sla_resources.py says of `image`'s agreement against dmgbuild's licensing module given
/// `specs` (LOCALE=FILE).
fn judge_agreement(image: &Path, specs: &[String]) -> serde_json::Value {
    let o = judge_script("sla_resources.py")
        .arg(image)
        .args(specs)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("sla_resources.py: {}", stderr(&o)));
    assert!(o.status.success(), "{:#}", report["failures"]);
    report
}

#[test]
fn a_licence_agreement_is_what_dmgbuild_makes_and_attach_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = app_folder(dir.path());
    let english = dir.path().join("licence.txt");
    fs::write(
        &english,
        "Terms of use.\nUse it kindly — and déjà vu is fine.\n",
    )
    .unwrap();
    let german = dir.path().join("lizenz.rtf");
    fs::write(
        &german,
        "{\\rtf1\\ansi Nutzungsbedingungen\\par Seien Sie nett.}",
    )
    .unwrap();
    let image = dir.path().join("Tool.dmg");
    let german_spec = format!("de:{}", s(&german));
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(&src),
        "-sla",
        s(&english),
        "-sla",
        &german_spec,
        s(&image),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let report = judge_agreement(
        &image,
        &[
            format!("en_US={}", s(&english)),
            format!("de_DE={}", s(&german)),
        ],
    );
    for kind in ["LPic", "STR#", "TEXT", "RTF ", "TMPL"] {
        assert!(report["compared"][kind].as_u64() >= Some(1), "{report}");
    }

    // dimg reads back what it wrote: each language and its text.
    let o = dimg(&["info", s(&image), "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let languages = info["agreement"]["languages"].as_array().unwrap();
    assert_eq!(languages.len(), 2, "{info}");
    assert_eq!(languages[0]["language"], "English");
    assert_eq!(languages[0]["format"], "TEXT");
    assert_eq!(languages[0]["text"], fs::read_to_string(&english).unwrap());
    assert_eq!(languages[1]["language"], "Deutsch");
    assert_eq!(languages[1]["format"], "RTF");
    assert_eq!(languages[1]["text"], fs::read_to_string(&german).unwrap());

    // A script that does not say -agree is refused before anything is attached.
    let o = common::dimg_stdin(&["attach", s(&image), "-nomount"], b"");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("-agree"), "{}", stderr(&o));
}

#[test]
fn agreements_the_image_cannot_carry_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = app_folder(dir.path());
    let text = dir.path().join("licence.txt");
    fs::write(&text, "Terms.\n").unwrap();
    let latin1 = dir.path().join("latin1.txt");
    fs::write(&latin1, b"caf\xe9\n").unwrap();
    let twice = format!("en_US:{}", s(&text));
    let cases: [(&[&str], &str); 3] = [
        (&["-sla", s(&text), "-format", "UDTO"], "UDIF"),
        (&["-sla", s(&latin1)], "UTF-8"),
        (&["-sla", s(&text), "-sla", &twice], "second agreement"),
    ];
    for (args, says) in cases {
        let image = dir.path().join("out.dmg");
        let mut all = vec!["create", "-srcfolder", s(&src)];
        all.extend(args);
        all.push(s(&image));
        let o = dimg(&all);
        assert!(!o.status.success(), "{args:?} was taken");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(!image.exists());
    }
}

/// `dimg create -srcfolder ROOT/src -settings ROOT/art/layout.json -sla ROOT/art/licence.txt
/// -volname Tool OUT` with SOURCE_DATE_EPOCH set to `epoch`; gives the image's SHA-256.
fn reproducible_build(root: &Path, epoch: &str, out: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_dimg"))
        .args([
            "create",
            "-srcfolder",
            s(&root.join("src")),
            "-volname",
            "Tool",
        ])
        .args(["-settings", s(&root.join("art/layout.json"))])
        .args(["-sla", s(&root.join("art/licence.txt")), s(out)])
        .env("SOURCE_DATE_EPOCH", epoch)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(fs::read(out).unwrap()))
}

/// Sets the modification time of `path` (a file or folder) and everything in it.
fn touch_all(path: &Path, when: std::time::SystemTime) {
    if path.is_dir() {
        for e in fs::read_dir(path).unwrap() {
            touch_all(&e.unwrap().path(), when);
        }
    }
    fs::File::open(path).unwrap().set_modified(when).unwrap();
}

#[test]
fn the_same_folder_and_settings_give_the_same_bytes_under_source_date_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let day = std::time::Duration::from_secs(86_400);
    let copies: Vec<PathBuf> = ["first", "second copy"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let root = dir.path().join(name);
            app_folder(&root);
            let art = root.join("art");
            fs::create_dir(&art).unwrap();
            fs::write(art.join("back.png"), noise(2000, 9)).unwrap();
            fs::write(art.join("licence.txt"), "Terms.\n").unwrap();
            fs::write(
                art.join("layout.json"),
                r#"{"background": "back.png", "symlinks": {"Applications": "/Applications"},
                    "icon_locations": {"Tool.app": [100, 100], "Applications": [300, 100]}}"#,
            )
            .unwrap();
            // Copied at different times: every date on disk differs, all after the epoch.
            touch_all(&root, std::time::SystemTime::now() - day * (i as u32 + 1));
            root
        })
        .collect();
    let epoch = "1700000000";
    let a = reproducible_build(&copies[0], epoch, &dir.path().join("a.dmg"));
    let b = reproducible_build(&copies[1], epoch, &dir.path().join("b.dmg"));
    assert_eq!(a, b, "two builds of the same tree");
    // The epoch is what dates the volume: a day later is another image.
    let later = reproducible_build(&copies[1], "1700086400", &dir.path().join("c.dmg"));
    assert_ne!(a, later);

    // 7-Zip reads every entry dated at the epoch (2023-11-14 22:13:20 UTC), none at its copy's.
    let raw = dir.path().join("a.raw");
    common::peer(
        "qemu-img",
        &[
            "convert",
            "-O",
            "raw",
            s(&dir.path().join("a.dmg")),
            s(&raw),
        ],
    );
    let listing = common::peer("7zz", &["l", "-slt", s(&raw)]);
    let dates: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("Modified = "))
        .collect();
    assert!(dates.len() >= 8, "{listing}");
    assert!(
        dates.iter().all(|d| *d == "2023-11-14 22:13:20"),
        "{dates:?}"
    );
}
