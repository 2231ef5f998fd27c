//! New images from folders and blank ones, through the `dimg` binary, judged by independent
//! readers: xorriso, libcdio's iso-info and 7-Zip for ISO 9660; fsck.fat and mtools for FAT;
//! sgdisk for the partition map. dimg reads everything back too.

mod common;
use common::*;

use dimg_e2e::program;
use std::fs;
use std::path::Path;
use std::process::Command;

/// A folder with what trips writers up: deep paths, composed and decomposed Unicode, empty and
/// large files, long names, a symlink, spaces; `extra` small files spread over 10 folders.
fn source(root: &Path, extra: usize) {
    let files: Vec<(String, Vec<u8>)> = vec![
        ("README.txt".into(), b"read me\n".to_vec()),
        ("deep/1/2/3/4/5/6/7/8/9/10/leaf.bin".into(), noise(3000, 1)),
        ("unicode/nfc/caf\u{e9}.txt".into(), b"NFC".to_vec()),
        ("unicode/nfd/cafe\u{301}.txt".into(), b"NFD".to_vec()),
        (
            "unicode/日本語のファイル名.txt".into(),
            "漢字".as_bytes().to_vec(),
        ),
        ("empty".into(), Vec::new()),
        ("big/random.bin".into(), noise(3_000_000, 2)),
        (
            "spaces in a name/and another one.md".into(),
            b"x".repeat(5000),
        ),
    ];
    for (path, bytes) in files.into_iter().chain((0..extra).map(|i| {
        (
            format!("many/{:02}/file-{i:05}.txt", i % 10),
            format!("{i}\n").into_bytes(),
        )
    })) {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
    }
    std::os::unix::fs::symlink("../README.txt", root.join("unicode/link to readme")).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    for p in walk(root) {
        if fs::symlink_metadata(&p).unwrap().is_file() {
            fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
    }
}

fn create(args: &[&str]) -> String {
    let o = dimg(&[&["create"][..], args].concat());
    assert!(o.status.success(), "create {args:?}: {}", stderr(&o));
    stdout(&o)
}

/// ISO 9660 images of trees of 1, 1,000 and a few odd files: xorriso extracts them (Rock Ridge)
/// exactly as the folder; iso-info lists every path and size; 7-Zip (Joliet) extracts every
/// file's contents; dimg reads them back; a UDZO of the same folder holds the same ISO.
#[test]
fn iso_images_from_folders_read_back_by_every_peer() {
    for extra in [0usize, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        source(&src, extra);
        let iso = dir.path().join("made.iso");
        create(&[
            "-srcfolder",
            s(&src),
            "-fs",
            "ISO",
            "-format",
            "UDTO",
            s(&iso),
        ]);
        let want = snapshot(&src, true);

        let by_xorriso = dir.path().join("xorriso");
        peer(
            "xorriso",
            &[
                "-osirrox",
                "on",
                "-indev",
                s(&iso),
                "-extract",
                "/",
                s(&by_xorriso),
            ],
        );
        assert_same(&snapshot(&by_xorriso, true), &want, "xorriso");

        // Rock Ridge names: iso-info's Joliet decoding cuts long non-ASCII names short (it does
        // the same on genisoimage's images).
        let listed = peer(
            "iso-info",
            &["--no-header", "--no-joliet", "-f", "-i", s(&iso)],
        );
        for (name, &(kind, _, _)) in &want {
            if kind != 'f' {
                continue;
            }
            let size = fs::metadata(src.join(name)).unwrap().len();
            let line = format!("{size} /{name}");
            assert!(
                listed.lines().any(|l| l.trim_start() == line),
                "iso-info misses {line}"
            );
        }

        let by_7z = dir.path().join("7z");
        peer("7zz", &["x", "-y", &format!("-o{}", s(&by_7z)), s(&iso)]);
        let sevenz = snapshot(&by_7z, true);
        for (name, (kind, body, _)) in &want {
            if *kind != 'l' {
                let (k, b, _) = sevenz.get(name).unwrap_or_else(|| panic!("7-Zip: {name}"));
                assert!((k, b) == (kind, body), "7-Zip: {name}");
            }
        }

        let by_dimg = dir.path().join("dimg");
        assert!(dimg(&["extract", s(&iso), "-o", s(&by_dimg)])
            .status
            .success());
        assert_same(&snapshot(&by_dimg, true), &want, "dimg");

        let udzo = dir.path().join("made.dmg");
        create(&["-srcfolder", s(&src), "-fs", "ISO", s(&udzo)]);
        let back = dir.path().join("back.iso");
        assert!(
            dimg(&["convert", s(&udzo), "-format", "ISO", "-o", s(&back)])
                .status
                .success()
        );
        let listed_back = peer("xorriso", &["-indev", s(&back), "-find", "/"]);
        assert_eq!(
            listed_back.lines().filter(|l| l.starts_with('\'')).count(),
            want.len() + 1
        );
    }
}

/// A file of more than 4 GiB becomes a multi-extent file every peer reads whole. (Sparse: the
/// source and the ISO take little disk.)
#[test]
fn files_over_4_gib_are_multi_extent() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    let huge = src.join("huge.bin");
    let size = (4u64 << 30) + 123_456;
    let f = fs::File::create(&huge).unwrap();
    f.set_len(size).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"the end", size - 7).unwrap();
    let iso = dir.path().join("huge.iso");
    create(&[
        "-srcfolder",
        s(&src),
        "-fs",
        "ISO",
        "-format",
        "UDTO",
        s(&iso),
    ]);
    let found = peer(
        "xorriso",
        &["-indev", s(&iso), "-find", "/huge.bin", "-exec", "lsdl"],
    );
    assert!(found.contains(&format!(" {size} ")), "{found}");
    let listed = peer("7zz", &["l", s(&iso)]);
    assert!(
        listed.contains(&format!("{size}  huge.bin")) || listed.contains(&format!(" {size} ")),
        "{listed}"
    );
    let o = dimg(&["ls", "-l", s(&iso)]);
    assert!(
        stdout(&o).contains(&format!("{size:>14}")),
        "{}",
        stdout(&o)
    );
}

/// FAT images from a folder pass fsck.fat, and mtools copies the same tree back out (symlinks
/// are reported as not kept: FAT has none); blank FAT32 images in a GPT pass sgdisk's check.
#[test]
fn fat_images_pass_fsck_and_mtools_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source(&src, 100);
    for fs_name in ["FAT", "FAT32"] {
        let img = dir.path().join(format!("{fs_name}.img"));
        let said = create(&[
            "-srcfolder",
            s(&src),
            "-fs",
            fs_name,
            "-layout",
            "NONE",
            "-format",
            "UDTO",
            "-volname",
            "dimgtest",
            s(&img),
        ]);
        assert!(
            said.contains("link to readme: a symlink to ../README.txt, not kept"),
            "{said}"
        );
        let fsck = peer("fsck.fat", &["-n", "-v", s(&img)]);
        assert!(
            fsck.contains(if fs_name == "FAT32" { "FAT32" } else { "FAT16" }) || fs_name == "FAT",
            "{fsck}"
        );
        let out = dir.path().join(format!("{fs_name}-mtools"));
        fs::create_dir(&out).unwrap();
        peer("mcopy", &["-s", "-m", "-i", s(&img), "::/*", s(&out)]);
        let mut want = snapshot(&src, true);
        want.remove("unicode/link to readme");
        assert_same(&snapshot(&out, true), &want, fs_name);
        assert!(peer("mlabel", &["-s", "-i", s(&img), "::"]).contains("DIMGTEST"));
    }
    let blank = dir.path().join("blank.dmg");
    create(&[
        "-size",
        "40m",
        "-fs",
        "FAT32",
        "-volname",
        "EMPTY",
        s(&blank),
    ]);
    let raw = dir.path().join("blank.raw");
    assert!(
        dimg(&["convert", s(&blank), "-format", "UDTO", "-o", s(&raw)])
            .status
            .success()
    );
    assert_eq!(
        fs::metadata(&raw).unwrap().len(),
        40 << 20,
        "-size is the whole image"
    );
    let checked = peer("sgdisk", &["-v", s(&raw)]);
    assert!(checked.contains("No problems found"), "{checked}");
    let listed = peer("sgdisk", &["-p", s(&raw)]);
    assert!(listed.contains("0700  EMPTY"), "{listed}");
    let info = stdout(&dimg(&["info", s(&blank)]));
    assert!(info.contains("volume “EMPTY”"), "{info}");
}

/// Requests that cannot be met are refused by name, and nothing is left behind.
#[test]
fn bad_requests_are_clear_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source(&src, 0);
    let out = dir.path().join("out.dmg");
    let nowhere = dir.path().join("nowhere");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["-srcfolder", s(&src), "-fs", "FAT", "-size", "1m", s(&out)],
            "does not fit in 1048576 bytes".into(),
        ),
        (vec!["-srcfolder", s(&nowhere), s(&out)], "nowhere".into()),
        (
            vec!["-size", "10m", "-fs", "ISO", s(&out)],
            "an ISO 9660 volume is made from a folder".into(),
        ),
        (
            vec!["-srcfolder", s(&src), "-fs", "APFS", "-size", "1m", s(&out)],
            "does not fit in".into(),
        ),
        (vec!["-size", "10q", s(&out)], "size 10q".into()),
    ];
    for (args, said) in cases {
        let o = dimg(&[&["create"][..], &args].concat());
        assert_ne!(o.status.code(), Some(0), "{args:?}");
        assert!(stderr(&o).contains(&said), "{args:?}: {}", stderr(&o));
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("src")], "{args:?}");
    }
    // A name FAT cannot hold, and names that differ only in case.
    fs::write(src.join("what?.txt"), b"?").unwrap();
    let o = dimg(&["create", "-srcfolder", s(&src), "-fs", "FAT32", s(&out)]);
    assert!(
        stderr(&o).contains("what?.txt: its name holds '?', which FAT names cannot"),
        "{}",
        stderr(&o)
    );
    fs::remove_file(src.join("what?.txt")).unwrap();
    fs::write(src.join("readme.TXT"), b"case").unwrap();
    let o = dimg(&["create", "-srcfolder", s(&src), "-fs", "FAT32", s(&out)]);
    assert!(stderr(&o).contains("only in case"), "{}", stderr(&o));
    // A name that is not UTF-8 cannot go into any image file system.
    fs::remove_file(src.join("readme.TXT")).unwrap();
    let odd =
        src.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"caf\xE9.txt"));
    fs::write(&odd, b"Latin-1 name").unwrap();
    let o = dimg(&["create", "-srcfolder", s(&src), s(&out)]);
    assert!(
        stderr(&o).contains("its name is not valid UTF-8"),
        "{}",
        stderr(&o)
    );
    fs::remove_file(&odd).unwrap();
    // An unreadable file is named. Root reads everything, so as root dimg runs as "nobody"
    // (setpriv, util-linux), for whom a mode-000 file is unreadable as for any user.
    let locked = src.join("locked.txt");
    fs::write(&locked, b"secret").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    for d in [dir.path(), &src] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    }
    let as_root = fs::File::open(&locked).is_ok();
    let mut cmd = if as_root {
        let mut c = Command::new(program("setpriv"));
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_dimg"),
        ]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_dimg"))
    };
    let o = cmd
        .args(["create", "-srcfolder", s(&src), s(&out)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("locked.txt: Permission denied"),
        "{}",
        stderr(&o)
    );
    fs::remove_file(&locked).unwrap();
    // An existing output needs -ov.
    fs::write(&out, b"keep me").unwrap();
    let o = dimg(&["create", "-size", "1m", "-fs", "NONE", s(&out)]);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(fs::read(&out).unwrap(), b"keep me");
}

/// Names as HFS+ stores them: decomposed (what 7-Zip and dimg show for an HFS+ volume).
fn decomposed(snapshot: Snapshot) -> Snapshot {
    use unicode_normalization::UnicodeNormalization;
    snapshot
        .into_iter()
        .map(|(k, v)| (k.nfd().collect(), v))
        .collect()
}

/// HFS+ images of trees of 1, 1,000 and 100,000 files (deep paths, composed and decomposed
/// names, empty and large files, a symlink): 7-Zip lists and extracts every file byte for byte,
/// and dimg extracts the whole tree with its times; in a GPT inside a UDZO, as hdiutil makes
/// them, and bare.
#[test]
fn hfs_plus_images_from_folders_read_back_by_7zip_and_dimg() {
    for extra in [0usize, 1000, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        source(&src, extra);
        let want = decomposed(snapshot(&src, true));
        let dmg = dir.path().join("made.dmg");
        create(&["-srcfolder", s(&src), "-volname", "Made by dimg", s(&dmg)]);
        let info = stdout(&dimg(&["info", s(&dmg)]));
        assert!(
            info.contains("GUID partition table") && info.contains("HFS+"),
            "{info}"
        );
        assert!(info.contains("volume “Made by dimg”"), "{info}");

        let by_dimg = dir.path().join("dimg");
        let o = dimg(&["extract", s(&dmg), "-o", s(&by_dimg)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_same(
            &snapshot(&by_dimg, true),
            &want,
            &format!("dimg, {extra} more files"),
        );

        // 7-Zip reads the raw HFS+ volume; it puts the volume's name first.
        let raw = dir.path().join("made.img");
        create(&[
            "-srcfolder",
            s(&src),
            "-volname",
            "Made by dimg",
            "-layout",
            "NONE",
            "-format",
            "UDTO",
            s(&raw),
        ]);
        let listed = peer("7zz", &["l", "-slt", s(&raw)]);
        let paths = listed
            .lines()
            .filter(|l| l.starts_with("Path = Made by dimg/"))
            .count();
        assert_eq!(paths, want.len(), "7-Zip lists every entry");
        let by_7z = dir.path().join("7z");
        // 7-Zip refuses to extract a symlink with ".." in its target ("dangerous link").
        let no_link = "-xr!link to readme";
        peer(
            "7zz",
            &["x", "-y", no_link, &format!("-o{}", s(&by_7z)), s(&raw)],
        );
        let got = snapshot(&by_7z.join("Made by dimg"), true);
        for (name, entry) in &want {
            if entry.0 == 'l' {
                assert!(
                    listed.contains(&format!("Path = Made by dimg/{name}\n")),
                    "7-Zip lists {name}"
                );
                continue;
            }
            // Contents (by digest) and, for files, the time.
            let got = got
                .get(name)
                .unwrap_or_else(|| panic!("7-Zip: {name} missing"));
            assert_eq!(got, entry, "7-Zip: {name}");
        }
    }
}

/// HFS+ folds case and Unicode form; HFSX tells case apart. Names one volume cannot keep
/// apart are refused, naming the file.
#[test]
fn hfs_plus_and_hfsx_case_rules() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("readme"), b"lower").unwrap();
    fs::write(src.join("README"), b"upper").unwrap();
    let plus = dir.path().join("plus.dmg");
    let o = dimg(&["create", "-srcfolder", s(&src), s(&plus)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("this volume cannot tell from"),
        "{}",
        stderr(&o)
    );
    assert!(!plus.exists());
    let x = dir.path().join("x.dmg");
    create(&["-srcfolder", s(&src), "-fs", "HFSX", s(&x)]);
    let info = stdout(&dimg(&["info", s(&x)]));
    assert!(info.contains("HFSX"), "{info}");
    let out = dir.path().join("out");
    assert!(dimg(&["extract", s(&x), "-o", s(&out)]).status.success());
    assert_eq!(fs::read(out.join("readme")).unwrap(), b"lower");
    assert_eq!(fs::read(out.join("README")).unwrap(), b"upper");
    // A blank HFS+ image of a given size, and a folder that does not fit one.
    let blank = dir.path().join("blank.dmg");
    create(&["-size", "20m", "-volname", "Blank", s(&blank)]);
    let raw = dir.path().join("blank.raw");
    assert!(
        dimg(&["convert", s(&blank), "-format", "UDTO", "-o", s(&raw)])
            .status
            .success()
    );
    assert_eq!(fs::metadata(&raw).unwrap().len(), 20 << 20);
    assert!(stdout(&dimg(&["info", s(&blank)])).contains("volume “Blank”"));
    let listed = peer("7zz", &["l", s(&raw)]);
    assert!(listed.contains("Type = HFS"), "{listed}");
    fs::remove_file(src.join("README")).unwrap();
    fs::write(src.join("big"), noise(3 << 20, 5)).unwrap();
    let small = dir.path().join("small.dmg");
    let o = dimg(&["create", "-srcfolder", s(&src), "-size", "1m", s(&small)]);
    assert!(stderr(&o).contains("does not fit in"), "{}", stderr(&o));
}

/// `makehybrid -hfs`: one disc, two views over the same file data — ISO 9660 (xorriso extracts
/// it as the folder) and HFS+ in an Apple partition map (7-Zip reads that partition, cut out of
/// the disc, and dimg extracts it as the folder) — so the files are stored once.
#[test]
fn hybrid_discs_show_the_same_tree_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source(&src, 200);
    let want = snapshot(&src, true);
    let iso = dir.path().join("hybrid.iso");
    let o = dimg(&[
        "makehybrid",
        "-hfs",
        "-iso",
        "-joliet",
        "-o",
        s(&iso),
        s(&src),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let only_iso = dir.path().join("only.iso");
    assert!(dimg(&["makehybrid", "-o", s(&only_iso), s(&src)])
        .status
        .success());
    let (both, one) = (
        fs::metadata(&iso).unwrap().len(),
        fs::metadata(&only_iso).unwrap().len(),
    );
    assert!(
        both < one + one / 4,
        "the files are stored once: {both} vs {one}"
    );

    let by_xorriso = dir.path().join("xorriso");
    peer(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-indev",
            s(&iso),
            "-extract",
            "/",
            s(&by_xorriso),
        ],
    );
    assert_same(&snapshot(&by_xorriso, true), &want, "ISO side, by xorriso");

    let hfs = partition_with(&iso, "HFS+");
    let by_dimg = dir.path().join("dimg-hfs");
    let index = hfs["index"].to_string();
    assert!(
        dimg(&["extract", "-volume", &index, s(&iso), "-o", s(&by_dimg)])
            .status
            .success()
    );
    assert_same(
        &snapshot(&by_dimg, true),
        &decomposed(want.clone()),
        "HFS+ side, by dimg",
    );

    let (start, size) = (
        hfs["start"].as_u64().unwrap(),
        hfs["size"].as_u64().unwrap(),
    );
    let disc = fs::read(&iso).unwrap();
    let partition = dir.path().join("hfs.img");
    fs::write(&partition, &disc[start as usize..(start + size) as usize]).unwrap();
    let listed = peer("7zz", &["l", "-slt", s(&partition)]);
    let volume = hfs["volumes"][0]["name"].as_str().unwrap().to_string();
    for name in decomposed(want).keys() {
        let path = format!("Path = {}/{name}\n", s(&src).rsplit('/').next().unwrap());
        assert!(
            listed.contains(&path),
            "7-Zip's HFS+ listing misses {name} ({volume})"
        );
    }
}

/// Each partition map `create` writes is read by the partition tools: parted for the Apple map
/// (SPUD) and GPT, sfdisk for MBR; the volume inside reads back in dimg.
#[test]
fn partition_maps_are_read_by_parted_and_sfdisk() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source(&src, 0);
    for (layout, fs_name, tool, args, expect) in [
        ("SPUD", "HFS+", "parted", &["-s"][..], "hfs+         Mapped"),
        (
            "GPTSPUD",
            "HFS+",
            "parted",
            &["-s"][..],
            "hfs+         Mapped",
        ),
        (
            "MBRSPUD",
            "FAT32",
            "sfdisk",
            &["-d"][..],
            "start=        2048, size=",
        ),
    ] {
        let raw = dir.path().join(format!("{layout}.img"));
        create(&[
            "-srcfolder",
            s(&src),
            "-fs",
            fs_name,
            "-volname",
            "Mapped",
            "-layout",
            layout,
            "-format",
            "UDTO",
            s(&raw),
        ]);
        let mut a: Vec<&str> = args.to_vec();
        a.push(s(&raw));
        if tool == "parted" {
            a.push("print");
        }
        let said = peer(tool, &a);
        assert!(said.contains(expect), "{layout}: {said}");
        let out = dir.path().join(format!("{layout}.out"));
        assert!(
            dimg(&["extract", s(&raw), "-o", s(&out)]).status.success(),
            "{layout}"
        );
        assert!(out.join("README.txt").exists(), "{layout}");
    }
}

/// Extended attributes ("user." ones) go into HFS+ as attributes — in their B-tree record, or
/// in blocks of their own past 3,802 bytes — and `user.com.apple.ResourceFork` as the resource
/// fork: 7-Zip extracts each as the stream it is, and `dimg extract` turns them back into the
/// same attributes, so Mac files survive a trip through Linux.
#[test]
fn extended_attributes_and_resource_forks_go_into_hfs_plus() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("folder")).unwrap();
    fs::write(src.join("doc.txt"), b"data fork").unwrap();
    fs::write(src.join("folder/big.bin"), b"x").unwrap();
    // ext4 keeps a file's attributes in one 4 KiB block: the large one is the file's only one.
    let big = noise(3900, 3);
    let streams: Vec<(&str, &str, Vec<u8>)> = vec![
        ("doc.txt", "com.apple.ResourceFork", noise(2000, 4)),
        ("doc.txt", "note", b"a short attribute".to_vec()),
        ("folder", "tag", b"blue".to_vec()),
        ("folder/big.bin", "large", big),
    ];
    for (path, name, value) in &streams {
        xattr::set(src.join(path), format!("user.{name}"), value)
            .unwrap_or_else(|e| panic!("the test folder must keep user attributes: {path}: {e}"));
    }
    let raw = dir.path().join("attrs.img");
    create(&[
        "-srcfolder",
        s(&src),
        "-volname",
        "attrs",
        "-layout",
        "NONE",
        "-format",
        "UDTO",
        s(&raw),
    ]);

    let by_7z = dir.path().join("7z");
    peer("7zz", &["x", "-sns", &format!("-o{}", s(&by_7z)), s(&raw)]);
    for (path, name, value) in &streams {
        let stream = if *name == "com.apple.ResourceFork" {
            "rsrc"
        } else {
            name
        };
        let file = by_7z.join("attrs").join(format!("{path}:{stream}"));
        assert!(
            fs::read(&file).unwrap() == *value,
            "7-Zip: {}",
            file.display()
        );
    }

    let out = dir.path().join("out");
    let o = dimg(&["extract", s(&raw), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (path, name, value) in &streams {
        let got = xattr::get(out.join(path), format!("user.{name}")).unwrap();
        assert!(got.as_ref() == Some(value), "dimg: {path} user.{name}");
    }
    assert_eq!(fs::read(out.join("doc.txt")).unwrap(), b"data fork");
}

/// libfshfs (Debian's fshfsinfo) reads the HFS+ volumes dimg writes, with and without extended
/// attributes: it refuses a volume without an attributes B-tree, which newfs_hfs always makes.
#[test]
fn libfshfs_reads_the_hfs_plus_volumes_dimg_writes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    fs::write(src.join("docs/readme.txt"), b"read me\n").unwrap();
    fs::write(src.join("top.txt"), b"top\n").unwrap();
    for with_attributes in [false, true] {
        if with_attributes {
            xattr::set(src.join("top.txt"), "user.note", b"kept").unwrap();
        }
        let image = dir.path().join(format!("attributes-{with_attributes}.cdr"));
        let o = dimg(&[
            "create",
            "-srcfolder",
            s(&src),
            "-layout",
            "NONE",
            "-format",
            "UDTO",
            s(&image),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let hierarchy = peer("fshfsinfo", &["-H", s(&image)]);
        let listed: Vec<&str> = hierarchy.lines().filter(|l| l.starts_with('/')).collect();
        assert_eq!(
            listed,
            ["/", "/docs", "/docs/readme.txt", "/top.txt"],
            "{hierarchy}"
        );
        // Each entry tells when it was added to its folder, as macOS records it: here, when
        // the source file last changed.
        for path in ["/docs", "/docs/readme.txt", "/top.txt"] {
            let entry = peer("fshfsinfo", &["-F", path, s(&image)]);
            let field = |name: &str| {
                entry
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(name))
                    .map(|v| v.trim_start_matches(['\t', ' ', ':']).to_string())
                    .unwrap_or_else(|| panic!("{path}: no {name} in {entry}"))
            };
            assert_eq!(field("Added time"), field("Modification time"), "{path}");
        }
    }
}
