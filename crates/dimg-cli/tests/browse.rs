//! Browsing and extracting volumes through the `dimg` binary, judged by the folders independent
//! tools built images from, and by the corpus's recorded listings.

mod common;
use common::*;
use dimg::wrapper::crc16_xmodem;

use dimg_e2e::{program, truths};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A folder with what ISO trees must carry: nesting, long and Unicode names, an empty file,
/// a multi-megabyte file, a symlink, set modification times.
fn source_tree(root: &Path) {
    let files: [(&str, Vec<u8>); 6] = [
        ("README.txt", b"read me\n".to_vec()),
        (
            "docs/a long file name with spaces.md",
            b"spaces\n".repeat(100),
        ),
        ("docs/caf\u{e9} \u{fc}ber na\u{ef}ve.txt", "Unicode".into()),
        ("deep/1/2/3/4/5/6/7/8/9/leaf.bin", vec![7u8; 3000]),
        ("empty", Vec::new()),
        (
            "big/data.bin",
            (0..5_000_000u32).map(|i| (i * 31 % 251) as u8).collect(),
        ),
    ];
    for (path, bytes) in files {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
    }
    std::os::unix::fs::symlink("README.txt", root.join("link-to-readme")).unwrap();
    // A fixed time for every file, so that mtimes can be compared exactly.
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    for entry in walk(root) {
        if !entry.is_symlink() {
            let f = fs::File::options()
                .write(!entry.is_dir())
                .read(entry.is_dir())
                .open(&entry)
                .unwrap();
            f.set_modified(when).unwrap();
        }
    }
}

fn make_iso(tool: &str, args: &[&str], src: &Path, out: &Path) {
    let mut cmd = Command::new(program(tool));
    if tool == "xorriso" {
        cmd.args(["-as", "mkisofs"]);
    }
    let status = cmd
        .args(args)
        .args(["-quiet", "-o", s(out), s(src)])
        .status()
        .unwrap();
    assert!(status.success(), "{tool} {args:?}");
}

#[test]
fn rock_ridge_and_joliet_isos_extract_exactly_as_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source_tree(&src);
    let want = snapshot(&src, true);
    for (tool, args) in [
        ("genisoimage", ["-R", "-J", "-joliet-long"]),
        ("xorriso", ["-R", "-J", "-joliet-long"]),
    ] {
        let iso = dir.path().join(format!("{tool}.iso"));
        make_iso(tool, &args, &src, &iso);
        let out = dir.path().join(format!("{tool}.out"));
        let o = dimg(&["extract", s(&iso), "-o", s(&out)]);
        assert!(o.status.success(), "{tool}: {}", stderr(&o));
        assert_same(&snapshot(&out, true), &want, tool);

        let ls = dimg(&["ls", "--json", &format!("{}:/docs", s(&iso))]);
        let v: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
        let mut names: Vec<&str> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "a long file name with spaces.md",
                "caf\u{e9} \u{fc}ber na\u{ef}ve.txt"
            ]
        );

        // One file on its own.
        let one = dir.path().join(format!("{tool}.one"));
        let o = dimg(&[
            "extract",
            &format!("{}:/big/data.bin", s(&iso)),
            "-o",
            s(&one),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            fs::read(one.join("data.bin")).unwrap(),
            fs::read(src.join("big/data.bin")).unwrap()
        );
    }
}

#[test]
fn joliet_only_and_plain_isos_fall_back_to_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source_tree(&src);
    fs::remove_file(src.join("link-to-readme")).unwrap(); // neither tree can carry a symlink
    let iso = dir.path().join("joliet.iso");
    // -D: without Rock Ridge, genisoimage drops folders deeper than ISO 9660's 8 levels.
    make_iso("genisoimage", &["-J", "-joliet-long", "-D"], &src, &iso);
    let out = dir.path().join("j.out");
    assert!(dimg(&["extract", s(&iso), "-o", s(&out)]).status.success());
    assert_same(&snapshot(&out, false), &snapshot(&src, false), "Joliet");

    let plain = dir.path().join("plain.iso");
    make_iso("genisoimage", &["-D"], &src, &plain);
    let ls = stdout(&dimg(&["ls", s(&plain)]));
    assert!(
        ls.lines().any(|l| l == "README.TXT"),
        "8.3 names without the version: {ls}"
    );
}

/// Every corpus image with a recorded listing extracts to it: ISO 9660, bare HFS+, and HFS+ in
/// A named stream of `path` in the image's first browsable volume, through the library.
fn read_stream(image: &Path, path: &str, stream: &str) -> Vec<u8> {
    let opened = dimg::container::open(image, None).unwrap();
    let disk = opened.container.disk();
    let (_, parts) = dimg::fs::places(&*disk).unwrap();
    let volume = parts
        .iter()
        .find_map(|p| {
            dimg::fs::mount(std::sync::Arc::new(p.open(disk.clone())), None)
                .ok()
                .and_then(|v| v.into_iter().next())
        })
        .unwrap();
    let entry = dimg::fs::lookup(&*volume, path).unwrap();
    let data = volume.open_stream(&entry, stream).unwrap();
    let mut bytes = vec![0u8; data.size() as usize];
    data.read_exact_at(0, &mut bytes).unwrap();
    bytes
}

/// GPT in UDZO/ULMO. Listings also name forks and extended attributes as "file:name": where
/// "file" itself was extracted (a name like "forward:slash" is a file of its own), they are its
/// extended attributes ("user.name"; the resource fork "user.com.apple.ResourceFork").
#[test]
fn corpus_images_extract_to_their_recorded_listings() {
    let mut checked = 0;
    for t in truths() {
        let name = Path::new(&t.file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let listing = dimg_e2e::corpus()
            .join("expected-files")
            .join(format!("{name}.tsv"));
        let (Ok(text), None) = (fs::read_to_string(&listing), &t.passphrase) else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x");
        let o = dimg(&["extract", s(&t.path()), "-o", s(&out)]);
        let unverified: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# unverified:"))
            .flat_map(str::split_whitespace)
            .collect();
        let why = stderr(&o);
        if !o.status.success() && out.exists() {
            // Extracted but for files no tool could verify: exactly those are named.
            let named: Vec<&str> = why
                .lines()
                .filter(|l| l.contains("cannot read /"))
                .collect();
            assert_eq!(named.len(), unverified.len(), "{}: {why}", t.file);
            for name in &unverified {
                assert!(why.contains(&format!("/{name}: ")), "{}: {why}", t.file);
            }
        } else if !o.status.success() {
            // Not browsable yet: APFS (#14) and classic HFS (#16). A clean, one-line refusal
            // naming the image, and nothing left behind.
            let not_yet = ["cannot be browsed yet", "no file system dimg can browse"];
            assert!(not_yet.iter().any(|n| why.contains(n)), "{}: {why}", t.file);
            assert_eq!(
                (o.status.code(), why.lines().count()),
                (Some(1), 1),
                "{why}"
            );
            assert!(
                !out.exists(),
                "{}: a failed extraction left {}",
                t.file,
                s(&out)
            );
            continue;
        }
        // 7-Zip and pyfshfs put the volume's name first; dimg extracts the volume's contents.
        let listed: serde_json::Value =
            serde_json::from_str(&stdout(&dimg(&["ls", s(&t.path()), "--json"]))).unwrap();
        let mut prefix = format!("{}/", listed["volume"].as_str().unwrap());
        let rows = text.lines().filter(|l| !l.starts_with('#'));
        // Some readers name the volume their own way ("Untitled"): a first component that
        // every row shares and the volume does not hold is that name.
        let first = |l: &str| l.split_once('/').map(|(f, _)| format!("{f}/"));
        if let Some(shared) = rows.clone().next().and_then(first) {
            if rows.clone().all(|l| l.starts_with(&shared)) && !out.join(&shared).exists() {
                prefix = shared;
            }
        }
        let prefixed = rows.clone().all(|l| l.starts_with(&prefix));
        let strip = |p: &str| -> String {
            match prefixed {
                true => p[prefix.len()..].to_string(),
                false => p.to_string(),
            }
        };
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split('\t').collect();
            let path = strip(f[0]);
            let stream = path
                .rsplit_once(':')
                .filter(|(base, _)| out.join(base).exists());
            let got = match stream {
                Some((base, stream)) => {
                    let attribute = match stream {
                        "rsrc" => "user.com.apple.ResourceFork".to_string(),
                        other => format!("user.{other}"),
                    };
                    // `ls -l` of its folder lists it: "@ ----   <size>   <file>:<stream>".
                    let (folder, file) = base.rsplit_once('/').unwrap_or(("", base));
                    let target = format!("{}:/{folder}", s(&t.path()));
                    let listed = stdout(&dimg(&["ls", "-l", &target]));
                    let line = format!("{file}:{stream}");
                    let shown = listed.lines().find(|l| l.ends_with(&line));
                    let size = shown.and_then(|l| l.split_whitespace().nth(2));
                    assert_eq!(size, Some(f[1]), "{}: ls -l {folder}: {listed}", t.file);
                    match xattr::get(out.join(base), &attribute).unwrap() {
                        Some(value) => value,
                        // ext4 keeps an attribute in one block: a larger one is reported as not
                        // kept, and read through the library instead.
                        None => {
                            let why = format!("{file}: stream {stream} not kept as {attribute}");
                            assert!(
                                stdout(&o).contains(&why),
                                "{}: {why}: {}",
                                t.file,
                                stdout(&o)
                            );
                            read_stream(&t.path(), base, stream)
                        }
                    }
                }
                None => {
                    fs::read(out.join(&path)).unwrap_or_else(|e| panic!("{}: {path}: {e}", t.file))
                }
            };
            assert_eq!(got.len().to_string(), f[1], "{}: {path}", t.file);
            assert_eq!(dimg_e2e::sha256_bytes(&got), f[2], "{}: {path}", t.file);
        }
        checked += 1;
    }
    assert!(checked >= 8, "{checked} listings checked");
}

/// xorriso's hybrid: an APM whose Apple_HFS partition is an HFS+ volume over the same files as
/// the ISO 9660 tree across the whole disc. Both views extract as the source.
#[test]
fn an_hfs_plus_volume_made_by_xorriso_extracts_as_its_source() {
    use unicode_normalization::UnicodeNormalization;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source_tree(&src);
    let iso = dir.path().join("hybrid.iso");
    make_iso("xorriso", &["-R", "-hfsplus"], &src, &iso);
    let info = stdout(&dimg(&["info", s(&iso)]));
    assert!(
        info.contains("Apple partition map") && info.contains("HFS+"),
        "{info}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&dimg(&["info", s(&iso), "--json"]))).unwrap();
    let parts = json["partitions"].as_array().unwrap();
    assert_eq!(parts[0]["index"], 0, "the whole disc comes first");
    assert_eq!(parts[0]["file_system"], "ISO 9660");
    let hfs = parts
        .iter()
        .find(|p| p["file_system"] == "HFS+")
        .expect("an HFS+ partition")["index"]
        .to_string();

    let iso_side = dir.path().join("iso-side");
    let o = dimg(&["extract", s(&iso), "-o", s(&iso_side)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(
        &snapshot(&iso_side, true),
        &snapshot(&src, true),
        "ISO side",
    );

    let out = dir.path().join("out");
    let o = dimg(&["extract", "-volume", &hfs, s(&iso), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // HFS+ stores names decomposed and dimg shows them as stored, as macOS does.
    let decomposed: Snapshot = snapshot(&src, true)
        .into_iter()
        .map(|(k, v)| (k.nfd().collect(), v))
        .collect();
    assert_same(&snapshot(&out, true), &decomposed, "xorriso -hfsplus");
}

#[test]
fn damaged_hfs_plus_headers_are_clear_errors() {
    let raw = fs::read(dimg_e2e::corpus().join("raw/dfvfs-hfsplus.raw")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let catalog_first_block =
        u32::from_be_bytes(raw[1024 + 272 + 16..1024 + 272 + 20].try_into().unwrap()) as usize;
    let block = u32::from_be_bytes(raw[1024 + 40..1024 + 44].try_into().unwrap()) as usize;
    let header_node = catalog_first_block * block;
    // (what, where, the bytes written there, what the error must say)
    let cases: [(&str, usize, Vec<u8>, &str); 4] = [
        (
            "block size",
            1024 + 40,
            3u32.to_be_bytes().to_vec(),
            "block size 3",
        ),
        (
            "catalog past the end",
            1024 + 272 + 16,
            u32::MAX.to_be_bytes().to_vec(),
            "past the end of the volume",
        ),
        (
            "root node 0",
            header_node + 16,
            vec![0; 4],
            "node 0 is outside the tree",
        ),
        (
            "node size",
            header_node + 32,
            7u16.to_be_bytes().to_vec(),
            "node size 7",
        ),
    ];
    for (what, at, bytes, expect) in cases {
        let mut v = raw.clone();
        v[at..at + bytes.len()].copy_from_slice(&bytes);
        let path = dir.path().join("d.raw");
        fs::write(&path, &v).unwrap();
        let o = dimg(&["ls", s(&path)]);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains(expect), "{what}: {}", stderr(&o));
    }
}

/// Offset of the first occurrence of `needle` in `hay`.
#[test]
fn hostile_isos_stop_safely_and_write_nothing_outside() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/evilname"), b"x").unwrap();
    fs::write(src.join("dotdotxx"), b"y").unwrap();
    let iso = dir.path().join("base.iso");
    make_iso("genisoimage", &["-R"], &src, &iso);
    let base = fs::read(&iso).unwrap();

    // Rock Ridge names rewritten to "../../evi" and "..", same lengths as stored.
    let mut names = base.clone();
    let at = find(&names, b"NM\x0d\x01\x00evilname");
    names[at + 5..at + 13].copy_from_slice(b"a/../../");
    let at = find(&names, b"NM\x0d\x01\x00dotdotxx");
    names[at + 2] = 7; // NM length 7: the name is ".."
    names[at + 5..at + 7].copy_from_slice(b"..");
    let crafted = dir.path().join("names.iso");
    fs::write(&crafted, &names).unwrap();
    let out = dir.path().join("names.out");
    let o = dimg(&["extract", s(&crafted), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stdout(&o);
    assert!(said.contains("extracted as \"a:..:..:\""), "{said}");
    assert!(said.contains("an entry named \"..\", skipped"), "{said}");
    let everything: Vec<PathBuf> = walk(dir.path());
    assert!(
        everything.iter().all(|p| p.starts_with(&src)
            || p.starts_with(&out)
            || p.extension().is_some_and(|e| e == "iso")),
        "{everything:?}"
    );

    // The directory "sub" pointed back at the root: a loop, cut.
    let mut looped = base.clone();
    let root_lba = u32::from_le_bytes(base[32768 + 158..32768 + 162].try_into().unwrap());
    let root_len = u32::from_le_bytes(base[32768 + 166..32768 + 170].try_into().unwrap());
    let at = find(&looped, b"\x03SUB");
    let record = at - 32; // the identifier length sits at offset 32 of the record
    looped[record + 2..record + 6].copy_from_slice(&root_lba.to_le_bytes());
    looped[record + 6..record + 10].copy_from_slice(&root_lba.to_be_bytes());
    looped[record + 10..record + 14].copy_from_slice(&root_len.to_le_bytes());
    looped[record + 14..record + 18].copy_from_slice(&root_len.to_be_bytes());
    let loop_iso = dir.path().join("loop.iso");
    fs::write(&loop_iso, &looped).unwrap();
    let out = dir.path().join("loop.out");
    let o = Command::new("timeout")
        .arg("20")
        .arg(env!("CARGO_BIN_EXE_dimg"))
        .args(["extract", s(&loop_iso), "-o", s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("a directory loop"), "{}", stdout(&o));

    // An occupied destination is refused.
    let o = dimg(&["extract", s(&iso), "-o", s(&src)]);
    assert!(
        stderr(&o).contains("exists and is not empty"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_cancelled_extraction_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let cancel = dimg::ops::Cancel::new();
    cancel.cancel();
    let iso = dimg_e2e::corpus().join("iso/joliet.iso");
    let r = dimg::ops::extract(
        &iso,
        None,
        None,
        "/",
        &out,
        false,
        &dimg::ops::NoProgress,
        &cancel,
    );
    assert!(matches!(r, Err(dimg::Error::Cancelled)), "{r:?}");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no folder, no staging folder"
    );
}

/// FAT16 and FAT32 volumes made by mkfs.fat and filled by mtools (which keep the files' times),
/// extracted and compared with the folder they were filled from.
#[test]
fn fat_volumes_made_by_dosfstools_and_mtools_extract_as_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source_tree(&src); // times are even seconds: FAT keeps 2-second steps
    fs::remove_file(src.join("link-to-readme")).unwrap(); // FAT has no symlinks
    for (bits, kib) in [("16", "32768"), ("32", "65536")] {
        let img = dir.path().join(format!("fat{bits}.img"));
        let made = Command::new(program("mkfs.fat"))
            .args(["-C", "-F", bits, "-n", "DIMGTEST", s(&img), kib])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(made.success());
        let mut copy = Command::new(program("mcopy"));
        copy.env("MTOOLS_SKIP_CHECK", "1")
            .env("TZ", "UTC")
            .args(["-s", "-m", "-i", s(&img)]);
        for e in fs::read_dir(&src).unwrap() {
            copy.arg(e.unwrap().path());
        }
        assert!(copy.arg("::/").status().unwrap().success());
        let fsck = Command::new(program("fsck.fat"))
            .args(["-n", "-v", s(&img)])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&fsck.stdout);
        assert!(fsck.status.success(), "{said}");
        // fsck.fat: "2048 bytes per cluster" … "fat16.img: 9 files, 49/9971 clusters".
        let line = |marker: &str| said.lines().find(|l| l.ends_with(marker)).unwrap();
        let cluster: u64 = line(" bytes per cluster")
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let counts = line(" clusters").split_whitespace().rev().nth(1).unwrap();
        let used = counts.split('/').next().unwrap().parse::<u64>().unwrap() * cluster;

        let json: serde_json::Value =
            serde_json::from_str(&stdout(&dimg(&["info", s(&img), "--json"]))).unwrap();
        let part = &json["partitions"][0];
        assert_eq!(part["file_system"], "FAT");
        assert_eq!(part["volumes"][0]["name"], "DIMGTEST");
        assert_eq!(
            part["volumes"][0]["used"], used,
            "FAT{bits} bytes in use, as fsck.fat counts them"
        );
        let out = dir.path().join(format!("fat{bits}.out"));
        let o = dimg(&["extract", s(&img), "-o", s(&out)]);
        assert!(o.status.success(), "FAT{bits}: {}", stderr(&o));
        assert_same(
            &snapshot(&out, true),
            &snapshot(&src, true),
            &format!("FAT{bits}"),
        );
    }
}

/// The HFS+ side of xorriso's hybrid, damaged in its catalog B-tree the ways a hostile image
/// would: every case ends in a clear error or a complete, bounded listing, never a hang or a
/// panic, and nothing is written outside the target.
#[test]
fn hostile_hfs_plus_catalogs_stop_safely() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source_tree(&src);
    let iso = dir.path().join("hybrid.iso");
    make_iso("xorriso", &["-R", "-hfsplus"], &src, &iso);
    let part = partition_with(&iso, "HFS+");
    let (index, start) = (
        part["index"].to_string(),
        part["start"].as_u64().unwrap() as usize,
    );
    let base = fs::read(&iso).unwrap();
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]) as usize;
    let be32 = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let header = start + 1024;
    let block = be32(&base, header + 40);
    let catalog = start + be32(&base, header + 272 + 16) * block;
    let node_size = be16(&base, catalog + 14 + 18);
    let (root, first_leaf) = (
        be32(&base, catalog + 14 + 2),
        be32(&base, catalog + 14 + 10),
    );
    let node = |n: usize| catalog + n * node_size;

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // The first leaf's forward link points at itself.
    let mut looped = base.clone();
    looped[node(first_leaf)..][..4].copy_from_slice(&(first_leaf as u32).to_be_bytes());
    cases.push(("leaf loop", looped));
    // The root claims 65535 records.
    let mut huge = base.clone();
    huge[node(root) + 10..][..2].copy_from_slice(&u16::MAX.to_be_bytes());
    cases.push(("huge record count", huge));
    // The root's records swapped: keys out of order.
    let mut unordered = base.clone();
    let end = node(root) + node_size;
    let (a, b) = (be16(&base, end - 2), be16(&base, end - 4));
    unordered[end - 2..end].copy_from_slice(&(b as u16).to_be_bytes());
    unordered[end - 4..end - 2].copy_from_slice(&(a as u16).to_be_bytes());
    cases.push(("keys out of order", unordered));
    // The catalog's first extent starts past the end of the volume.
    let mut past = base.clone();
    past[header + 272 + 16..][..4].copy_from_slice(&u32::MAX.to_be_bytes());
    cases.push(("extent past the volume", past));
    // The header names a root node outside the tree.
    let mut outside = base.clone();
    outside[catalog + 14 + 2..][..4].copy_from_slice(&0x00FF_FFFFu32.to_be_bytes());
    cases.push(("root outside the tree", outside));

    for (what, bytes) in cases {
        let image = dir.path().join("hostile.iso");
        fs::write(&image, &bytes).unwrap();
        let out = dir.path().join("out");
        let _ = fs::remove_dir_all(&out);
        let started = std::time::Instant::now();
        let o = dimg(&["extract", "-volume", &index, s(&image), "-o", s(&out)]);
        assert!(started.elapsed().as_secs() < 20, "{what}: took too long");
        assert!(!stderr(&o).contains("panicked"), "{what}: {}", stderr(&o));
        if !o.status.success() {
            assert_eq!(o.status.code(), Some(1), "{what}");
            assert!(
                stderr(&o).contains("hostile.iso: HFS+"),
                "{what}: {}",
                stderr(&o)
            );
            assert!(!out.exists(), "{what}: a failed extraction leaves nothing");
        }
        let stray: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !["src", "hybrid.iso", "hostile.iso", "out"].contains(&n.as_str()))
            .collect();
        assert!(stray.is_empty(), "{what}: {stray:?}");
    }
}

/// `info` names each volume and says how much of it is used, as 7-Zip reads the HFS+ header.
#[test]
fn info_reports_volume_names_and_use_as_7zip_does() {
    let image = dimg_e2e::corpus().join("dmg/keramics-hfsplus-zlib.dmg");
    let hfs = partition_with(&image, "HFS+");
    let listed = Command::new(program("7zz"))
        .args(["l", "-slt", s(&image)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    let text = text
        .split("Type = HFS\n")
        .nth(1)
        .expect("7-Zip opens the HFS+ volume");
    let field = |name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} = ")))
            .unwrap();
        line.split(" = ").nth(1).unwrap().parse().unwrap()
    };
    // 7-Zip's HFS handler: "Physical Size" is the volume, "Free Space" what is not used.
    assert_eq!(hfs["size"].as_u64().unwrap(), field("Physical Size"));
    assert_eq!(
        hfs["volumes"][0]["used"].as_u64().unwrap(),
        field("Physical Size") - field("Free Space")
    );
    assert_eq!(hfs["volumes"][0]["name"], "hfsplus_test");
}

/// Paths are found as people type them: composed Unicode finds HFS+'s decomposed names, and any
/// case finds a name on a case-insensitive HFS+ — but not once its catalog says HFSX with
/// binary (case-sensitive) keys.
#[test]
fn hfs_plus_lookups_follow_unicode_forms_and_the_volumes_case_rule() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source_tree(&src);
    let iso = dir.path().join("hybrid.iso");
    make_iso("xorriso", &["-R", "-hfsplus"], &src, &iso);
    let part = partition_with(&iso, "HFS+");
    let (volume, start) = (
        part["index"].to_string(),
        part["start"].as_u64().unwrap() as usize,
    );
    let cat = |image: &Path, path: &str| {
        dimg(&[
            "ls",
            "-l",
            "-volume",
            &volume,
            &format!("{}:{path}", s(image)),
        ])
    };
    // "café über naïve.txt" as typed (composed), stored decomposed.
    let composed = "/DOCS/caf\u{e9} \u{fc}ber na\u{ef}ve.txt";
    let o = cat(&iso, "/docs");
    assert!(
        stdout(&o).contains("cafe\u{301} u\u{308}ber nai\u{308}ve.txt"),
        "{}",
        stdout(&o)
    );
    let o = cat(&iso, &composed.replace("DOCS", "docs"));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cat(&iso, composed);
    assert!(o.status.success(), "case-insensitive HFS+: {}", stderr(&o));

    // The same volume as HFSX with binary keys: "HX", version 5 in the volume header, 0xBC in
    // the catalog's.
    let mut bytes = fs::read(&iso).unwrap();
    let header = start + 1024;
    bytes[header..header + 4].copy_from_slice(b"HX\0\x05");
    let block = u32::from_be_bytes(bytes[header + 40..header + 44].try_into().unwrap()) as usize;
    let first = u32::from_be_bytes(bytes[header + 288..header + 292].try_into().unwrap()) as usize;
    bytes[start + first * block + 14 + 37] = 0xBC;
    let hfsx = dir.path().join("hfsx.iso");
    fs::write(&hfsx, &bytes).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&dimg(&["info", s(&hfsx), "--json"]))).unwrap();
    assert!(json["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["file_system"] == "HFSX"));
    let o = cat(&hfsx, &composed.replace("DOCS", "docs"));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cat(&hfsx, composed);
    assert_eq!(o.status.code(), Some(1), "HFSX tells DOCS from docs");
    assert!(
        stderr(&o).contains("no such file on the volume"),
        "{}",
        stderr(&o)
    );
}

/// A volume mkudffs made with its defaults (UDF 2.01 on a 64 MiB file), once named and refused
/// as a file system dimg did not browse, now lists: an empty root, under udfinfo's label.
/// (exFAT, NTFS and ext: tests/volumes.rs; UDF in depth: tests/udf.rs.)
#[test]
fn a_default_mkudffs_volume_is_browsed() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("mkudffs.img");
    fs::File::create(&image).unwrap().set_len(64 << 20).unwrap();
    let made = Command::new(program("mkudffs"))
        .arg(&image)
        .output()
        .unwrap();
    assert!(made.status.success(), "mkudffs");
    let o = dimg(&["ls", s(&image)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "an empty root");
    let info = Command::new("udfinfo").arg(&image).output().unwrap();
    let label = String::from_utf8_lossy(&info.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("label=").map(str::to_string))
        .expect("udfinfo gives the label");
    let o = dimg(&["info", s(&image)]);
    assert!(
        stdout(&o).contains(&format!("volume “{label}”")),
        "{}",
        stdout(&o)
    );
}

/// A journaled HFS+ volume whose journal still holds changes is read as last written, and
/// `info` says so; a clean journal (start = end) says nothing. The journal is set up on a
/// volume dimg made, as TN1150 lays it out, in both byte orders a Mac may have written.
#[test]
fn a_dirty_hfs_plus_journal_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a.txt"), b"journaled").unwrap();
    let image = dir.path().join("plain.img");
    let made = dimg(&[
        "create",
        "-srcfolder",
        s(&src),
        "-layout",
        "NONE",
        "-format",
        "UDTO",
        s(&image),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let base = fs::read(&image).unwrap();
    let total = u32::from_be_bytes(base[1024 + 44..1024 + 48].try_into().unwrap()) as usize;
    // A 16 KiB journal in the free blocks before the alternate header's.
    let (info_block, journal_block) = (total - 7, total - 6);
    for (case, start, end, little) in [
        ("clean", 512u64, 512u64, false),
        ("dirty", 512, 4608, false),
        ("dirty, little-endian", 512, 4608, true),
    ] {
        let mut v = base.clone();
        let attributes = u32::from_be_bytes(v[1028..1032].try_into().unwrap()) | 1 << 13;
        v[1028..1032].copy_from_slice(&attributes.to_be_bytes());
        v[1036..1040].copy_from_slice(&(info_block as u32).to_be_bytes());
        let jib = info_block * 4096;
        v[jib..jib + 4].copy_from_slice(&1u32.to_be_bytes());
        v[jib + 36..jib + 44].copy_from_slice(&((journal_block * 4096) as u64).to_be_bytes());
        v[jib + 44..jib + 52].copy_from_slice(&(16u64 << 10).to_be_bytes());
        let j = journal_block * 4096;
        let word = |x: u64| {
            if little {
                x.to_le_bytes()
            } else {
                x.to_be_bytes()
            }
        };
        let half = |x: u32| {
            if little {
                x.to_le_bytes()
            } else {
                x.to_be_bytes()
            }
        };
        v[j..j + 4].copy_from_slice(if little { b"xLNJ" } else { b"JNLx" });
        v[j + 4..j + 8].copy_from_slice(&half(0x1234_5678));
        v[j + 8..j + 16].copy_from_slice(&word(start));
        v[j + 16..j + 24].copy_from_slice(&word(end));
        v[j + 24..j + 32].copy_from_slice(&word(16 << 10));
        v[j + 32..j + 36].copy_from_slice(&half(4096)); // block list header
        v[j + 40..j + 44].copy_from_slice(&half(512)); // header
                                                       // TN1150's checksum over the header, its own field zero.
        let sum = !v[j..j + 44]
            .iter()
            .fold(0u32, |c, &b| (c << 8) ^ c.wrapping_add(u32::from(b)));
        v[j + 36..j + 40].copy_from_slice(&half(sum));
        let patched = dir.path().join("journaled.img");
        fs::write(&patched, &v).unwrap();
        let info = stdout(&dimg(&["info", s(&patched)]));
        let warned = info.contains("its journal holds 4096 bytes of changes not yet written");
        assert_eq!(warned, case != "clean", "{case}: {info}");
        let listed = stdout(&dimg(&["ls", s(&patched)]));
        assert_eq!(listed, "a.txt\n", "{case}: the volume still reads");
    }
}

/// A file that cannot be read (here two of a real volume's files, compressed with decmpfs types
/// no reader decodes: 5 and 13) is left out and named, on stderr and in the report; every other
/// file lands as its ground truth says, and the exit status is 1. `-strict` is all or nothing.
#[test]
fn extract_leaves_out_what_cannot_be_read_and_names_it() {
    let image = dimg_e2e::corpus().join("dmg/kaitokit-hfs-decmpfs.dmg");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let o = dimg(&["extract", s(&image), "-o", s(&out), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let said = stderr(&o);
    for name in ["type5.bin", "type13.bin"] {
        assert!(said.contains(&format!("cannot read /{name}: ")), "{said}");
        assert!(!out.join(name).exists(), "{name} was written");
    }
    assert!(said.contains("2 items could not be read"), "{said}");
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["unreadable"].as_array().unwrap().len(), 2);
    let listing = dimg_e2e::corpus().join("expected-files/kaitokit-hfs-decmpfs.dmg.tsv");
    let mut checked = 0;
    for line in fs::read_to_string(listing)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split('\t').collect();
        let data = fs::read(out.join(f[0].strip_prefix("KaitoDecmpfs/").unwrap())).unwrap();
        assert_eq!(
            (data.len().to_string(), dimg_e2e::sha256_bytes(&data)),
            (f[1].into(), f[2].into()),
            "{}",
            f[0]
        );
        checked += 1;
    }
    assert_eq!(checked, 11);
    let strict = dir.path().join("strict");
    let o = dimg(&["extract", s(&image), "-o", s(&strict), "-strict"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("compression type"), "{}", stderr(&o));
    assert!(!strict.exists(), "-strict left a folder");
}

/// An ISO as `hdiutil makehybrid -iso -joliet` writes it: Rock Ridge areas without NM entries
/// (here genisoimage's, each NM turned into an "AA" entry, the signature Apple's own entries
/// use, which readers skip), primary names without ";1" (-N), and a Joliet tree. Names come from
/// Rock Ridge's NM, then Joliet, then the primary tree: here Joliet's, as macOS and 7-Zip show
/// them; without the Joliet tree, the primary names, without ";1" or a trailing ".".
#[test]
fn iso_names_come_from_nm_then_joliet_then_the_primary_tree() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("Mixed Case Folder")).unwrap();
    fs::write(src.join("Mixed Case Folder/inner file.txt"), b"inside\n").unwrap();
    fs::write(src.join("Long File Name.text"), b"long\n").unwrap();
    fs::write(src.join("README"), b"plain\n").unwrap();
    let names_of = |image: &Path| -> Vec<String> {
        let listed = stdout(&dimg(&["ls", "-R", s(image)]));
        let mut names: Vec<String> = listed.lines().map(str::to_string).collect();
        names.sort();
        names
    };
    for joliet in [true, false] {
        let image = dir.path().join(format!("joliet-{joliet}.iso"));
        let mut args = vec!["-quiet", "-R", "-N", "-o", s(&image)];
        if joliet {
            args.insert(1, "-J");
        }
        args.push(s(&src));
        peer("genisoimage", &args);
        // Rock Ridge with NM: its names.
        assert!(names_of(&image).contains(&"Mixed Case Folder/inner file.txt".to_string()));
        let mut bytes = fs::read(&image).unwrap();
        let mut patched = 0;
        for i in 0..bytes.len() - 4 {
            if &bytes[i..i + 2] == b"NM" && bytes[i + 3] == 1 && bytes[i + 2] >= 5 {
                bytes[i..i + 2].copy_from_slice(b"AA");
                patched += 1;
            }
        }
        assert!(patched >= 4, "{patched} NM entries");
        fs::write(&image, &bytes).unwrap();
        let names = names_of(&image);
        if joliet {
            assert_eq!(
                names,
                [
                    "Long File Name.text",
                    "Mixed Case Folder/",
                    "Mixed Case Folder/inner file.txt",
                    "README"
                ]
            );
            let out = dir.path().join("extracted");
            let o = dimg(&["extract", s(&image), "-o", s(&out)]);
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(
                fs::read(out.join("Mixed Case Folder/inner file.txt")).unwrap(),
                b"inside\n"
            );
        } else {
            assert_eq!(names.len(), 4, "{names:?}");
            for name in &names {
                assert!(!name.contains(';') && !name.ends_with('.'), "{name}");
                assert_eq!(name, &name.to_uppercase(), "a primary name: {name}");
            }
            assert!(names.contains(&"README".to_string()), "{names:?}");
        }
    }
}

/// Labels are fixed-width fields padded with spaces, or by some writers with NULs: info shows
/// the name, as the sidebar and mount points do.
#[test]
fn volume_labels_are_shown_without_their_padding() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"a\n").unwrap();
    let image = dir.path().join("label.iso");
    peer(
        "genisoimage",
        &["-quiet", "-V", "TEST_DISK", "-o", s(&image), s(&src)],
    );
    let mut bytes = fs::read(&image).unwrap();
    // The primary volume descriptor's 32-byte label: "TEST_DISK", then NULs instead of spaces.
    let label = 16 * 2048 + 40;
    assert_eq!(&bytes[label..label + 10], b"TEST_DISK ");
    bytes[label + 9..label + 32].fill(0);
    fs::write(&image, &bytes).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&stdout(&dimg(&["info", s(&image), "--json"]))).unwrap();
    assert_eq!(info["partitions"][0]["volumes"][0]["name"], "TEST_DISK");
}

/// A copy cut short (a download that stopped): it opens, info says it is truncated, verify
/// fails, and extract takes every file that lies inside what is left, naming the others.
#[test]
fn a_truncated_copy_extracts_what_it_still_holds() {
    let source = dimg_e2e::corpus().join("raw/dfvfs-hfsplus.raw");
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.raw");
    // The catalog survives; two files' data and one more item lie past the cut.
    fs::write(&cut, &fs::read(&source).unwrap()[..1_140_000]).unwrap();
    let o = dimg(&["info", s(&cut)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("cut short (truncated?)"),
        "{}",
        stdout(&o)
    );
    let o = dimg(&["verify", s(&cut)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("the file is truncated"),
        "{}",
        stderr(&o)
    );
    let out = dir.path().join("x");
    let o = dimg(&["extract", s(&cut), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    let said = stderr(&o);
    assert_eq!(said.matches("cannot read /").count(), 3, "{said}");
    let listing = dimg_e2e::corpus().join("expected-files/dfvfs-hfsplus.raw.tsv");
    let (mut present, mut absent) = (0, 0);
    for line in fs::read_to_string(listing)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split('\t').collect();
        let path = f[0].strip_prefix("hfsplus_test/").unwrap();
        if path.contains(':') {
            continue; // streams
        }
        match fs::read(out.join(path)) {
            Ok(data) => {
                assert_eq!(
                    dimg_e2e::sha256_bytes(&data),
                    f[2],
                    "{path}: as stored, never half"
                );
                present += 1;
            }
            Err(_) => {
                assert!(
                    said.contains(&format!("cannot read /{path}: ")),
                    "{path}: {said}"
                );
                absent += 1;
            }
        }
    }
    assert_eq!((present, absent), (5, 2));
}

/// A MacBinary II file (the format hfsutils' `hcopy -m` takes): a 128-byte header with the name,
/// type, creator, fork lengths and its CRC-16, then each fork padded to 128 bytes.
fn macbinary(name: &[u8], data: &[u8], resource: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 128];
    h[1] = name.len() as u8;
    h[2..2 + name.len()].copy_from_slice(name);
    h[65..73].copy_from_slice(b"TEXTttxt");
    h[83..87].copy_from_slice(&(data.len() as u32).to_be_bytes());
    h[87..91].copy_from_slice(&(resource.len() as u32).to_be_bytes());
    h[122] = 129;
    h[123] = 129;
    let crc = crc16_xmodem(&h[..124]);
    h[124..126].copy_from_slice(&crc.to_be_bytes());
    for fork in [data, resource] {
        h.extend_from_slice(fork);
        h.resize(h.len().next_multiple_of(128), 0);
    }
    h
}

/// The resource fork in an AppleDouble file, by RFC 1740's layout: magic 0x00051607, version
/// 2, 16 bytes of filler, an entry count, then (id, offset, length) entries; the fork is id 2.
fn apple_double_fork(path: &Path) -> Vec<u8> {
    let f = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let be32 = |at: usize| u32::from_be_bytes(f[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(
        (be32(0), be32(4)),
        (0x0005_1607, 0x0002_0000),
        "{}",
        path.display()
    );
    let count = u16::from_be_bytes([f[24], f[25]]) as usize;
    (0..count)
        .map(|i| 26 + 12 * i)
        .find(|&e| be32(e) == 2)
        .map(|e| f[be32(e + 4)..be32(e + 4) + be32(e + 8)].to_vec())
        .expect("a resource fork entry")
}

/// hfsutils with its own HOME: it keeps the mounted volume's name in ~/.hcwd.
fn hfsutils(home: &Path, tool: &str, args: &[&str]) -> String {
    let o = Command::new(program(tool))
        .args(args)
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A volume header's count of files, read as its maker wrote it: the HFS+ volume macOS made in
/// keramics' UDZO holds as many files as its recorded listing names (the header's folders are
/// not compared: it counts the hidden private folders too, which no listing shows).
#[test]
fn an_hfs_plus_header_counts_the_files_macos_made() {
    let image = dimg_e2e::corpus().join("dmg/keramics-hfsplus-zlib.dmg");
    let listing = dimg_e2e::corpus().join("expected-files/keramics-hfsplus-zlib.dmg.tsv");
    let files = fs::read_to_string(listing)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    let info: serde_json::Value =
        serde_json::from_str(&stdout(&dimg(&["info", s(&image), "--json"]))).unwrap();
    let hfs_plus = info["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["file_system"] == "HFS+")
        .expect("an HFS+ partition");
    assert_eq!(hfs_plus["volumes"][0]["counts"]["files"], files);
}

/// Classic HFS volumes made by hfsutils (hformat, hmkdir, hcopy): nested folders, a MacRoman
/// name, a file with a resource fork; dimg lists what hls lists and extracts each fork as hcopy
/// reads it back. A genisoimage -hfs hybrid's two sides (ISO 9660 and the APM's HFS partition)
/// both extract to the source folder.
#[test]
fn classic_hfs_volumes_read_as_hfsutils_reads_them() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let image = dir.path().join("classic.img");
    fs::File::create(&image)
        .unwrap()
        .set_len(1_474_560)
        .unwrap();
    hfsutils(home, "hformat", &["-l", "Classic Test", s(&image)]);
    hfsutils(home, "hmkdir", &[":Folder"]);
    hfsutils(home, "hmkdir", &[":Folder:Sub"]);
    let data = noise(70_000, 9);
    let resource = noise(3_000, 10);
    // "Café" in MacRoman: é is 0x8E.
    let bin = dir.path().join("cafe.bin");
    fs::write(&bin, macbinary(b"Caf\x8e Menu", &data, &resource)).unwrap();
    hfsutils(home, "hcopy", &["-m", s(&bin), ":Folder:Sub:"]);
    let plain = dir.path().join("plain.txt");
    fs::write(&plain, b"no resource fork\n").unwrap();
    hfsutils(home, "hcopy", &["-r", s(&plain), ":"]);
    // A fork larger than any Linux file system keeps as an extended attribute, as applications'
    // are.
    let big_fork = noise(100_000, 12);
    let app = dir.path().join("app.bin");
    fs::write(&app, macbinary(b"Big App", b"", &big_fork)).unwrap();
    hfsutils(home, "hcopy", &["-m", s(&app), ":"]);
    let listed = hfsutils(home, "hls", &["-R", ":"]);
    hfsutils(home, "humount", &[]);

    let info: serde_json::Value =
        serde_json::from_str(&stdout(&dimg(&["info", s(&image), "--json"]))).unwrap();
    assert_eq!(info["partitions"][0]["file_system"], "HFS");
    assert_eq!(info["partitions"][0]["volumes"][0]["name"], "Classic Test");
    // The master directory block counts what hfsutils made: two files, two folders.
    assert_eq!(
        info["partitions"][0]["volumes"][0]["counts"],
        serde_json::json!({ "files": 3, "folders": 2 })
    );
    let ours = stdout(&dimg(&["ls", "-R", s(&image)]));
    // hls prints names in MacRoman, which is not UTF-8: é (0x8E) reads back as U+FFFD.
    for (name, by_hls) in [
        ("Folder", "Folder"),
        ("Sub", "Sub"),
        ("Café Menu", "Caf\u{FFFD} Menu"),
        ("plain.txt", "plain.txt"),
    ] {
        assert!(listed.contains(by_hls), "hls: {listed}");
        assert!(ours.contains(name), "dimg: {ours}");
    }
    let out = dir.path().join("x");
    let o = dimg(&["extract", s(&image), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = out.join("Folder/Sub/Café Menu");
    assert_eq!(fs::read(&file).unwrap(), data);
    let kept = xattr::get(&file, "user.com.apple.ResourceFork")
        .unwrap()
        .unwrap();
    assert_eq!(kept, resource);
    assert_eq!(
        fs::read(out.join("plain.txt")).unwrap(),
        b"no resource fork\n"
    );
    // The large fork beside its file as AppleDouble, read here by RFC 1740's layout.
    assert!(
        !stderr(&o).contains("Big App") && !stdout(&o).contains("not kept"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read(out.join("Big App")).unwrap(), b"");
    assert_eq!(apple_double_fork(&out.join("._Big App")), big_fork);
    // Made into an HFS+ volume again, `._Big App` is the fork of Big App, not a file; on FAT,
    // which has no forks, it stays the file macOS would leave there.
    let again = dir.path().join("again.dmg");
    let o = dimg(&["create", "-srcfolder", s(&out), "-fs", "HFS+", s(&again)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed_again = stdout(&dimg(&["ls", s(&again)]));
    assert!(
        listed_again.contains("Big App") && !listed_again.contains("._"),
        "{listed_again}"
    );
    let out_again = dir.path().join("x-again");
    let o = dimg(&["extract", s(&again), "-o", s(&out_again)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(apple_double_fork(&out_again.join("._Big App")), big_fork);
    let fat = dir.path().join("fat.img");
    let o = dimg(&["create", "-srcfolder", s(&out), "-fs", "FAT", s(&fat)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&dimg(&["ls", s(&fat)])).contains("._Big App"));
    // hcopy reads the same forks back out of the volume.
    hfsutils(home, "hmount", &[s(&image)]);
    let back = dir.path().join("back.bin");
    let o = Command::new(program("hcopy"))
        .arg("-m")
        .arg(std::ffi::OsStr::from_bytes(b":Folder:Sub:Caf\x8e Menu"))
        .arg(&back)
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(o.status.success(), "hcopy: {}", stderr(&o));
    hfsutils(home, "humount", &[]);
    let back = fs::read(&back).unwrap();
    assert_eq!(&back[128..128 + data.len()], &data[..]);

    // A hybrid CD: ISO 9660 for everyone, HFS behind an Apple partition map for Macs.
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    fs::write(src.join("readme.txt"), b"hybrid\n").unwrap();
    fs::write(src.join("docs/data.bin"), noise(50_000, 11)).unwrap();
    let hybrid = dir.path().join("hybrid.iso");
    peer(
        "genisoimage",
        &["-quiet", "-r", "-hfs", "-part", "-o", s(&hybrid), s(&src)],
    );
    let info: serde_json::Value =
        serde_json::from_str(&stdout(&dimg(&["info", s(&hybrid), "--json"]))).unwrap();
    let sides: Vec<(String, String)> = info["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["file_system"] == "ISO 9660" || p["file_system"] == "HFS")
        .map(|p| {
            (
                p["index"].to_string(),
                p["file_system"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(sides.len(), 2, "{info}");
    for (index, file_system) in sides {
        let out = dir.path().join(format!("side-{index}"));
        let o = dimg(&["extract", s(&hybrid), "-volume", &index, "-o", s(&out)]);
        assert!(o.status.success(), "{file_system}: {}", stderr(&o));
        assert_eq!(
            fs::read(out.join("readme.txt")).unwrap(),
            b"hybrid\n",
            "{file_system}"
        );
        assert_eq!(
            fs::read(out.join("docs/data.bin")).unwrap(),
            noise(50_000, 11),
            "{file_system}"
        );
    }
}

/// Folder hard links, as Time Machine makes them: a file record of type `fdrp`, creator `MACS`,
/// whose iNode number is the linked folder's ID. Built here in a copy of the dfvfs volume (the
/// record layout of TN1150's hard-link section): `passwords.txt` becomes a link to `a_directory`,
/// which then shows its files at both places; a link inside the folder it names is a loop, which
/// listing and extraction cut and report.
#[test]
fn folder_hard_links_show_the_folder_at_every_link() {
    let raw = fs::read(dimg_e2e::corpus().join("raw/dfvfs-hfsplus.raw")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut linked = raw.clone();
    folder_hard_link(&mut linked, "passwords.txt", "a_directory");
    let image = dir.path().join("linked.raw");
    fs::write(&image, &linked).unwrap();
    let listed = stdout(&dimg(&["ls", "-R", s(&image)]));
    for name in ["a_file", "another_file", "a_resourcefork"] {
        assert!(
            listed.contains(&format!("passwords.txt/{name}\n")),
            "{listed}"
        );
        assert!(
            listed.contains(&format!("a_directory/{name}\n")),
            "{listed}"
        );
    }
    let out = dir.path().join("x");
    let o = dimg(&["extract", s(&image), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        snapshot(&out.join("passwords.txt"), false),
        snapshot(&out.join("a_directory"), false)
    );

    // A link to a_directory inside a_directory: a loop, entered once and reported.
    let mut looped = raw.clone();
    folder_hard_link(&mut looped, "another_file", "a_directory");
    let image = dir.path().join("loop.raw");
    fs::write(&image, &looped).unwrap();
    let o = dimg(&["ls", "-R", s(&image)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("y");
    let o = dimg(&["extract", s(&image), "-o", s(&out), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cut = report["neutralised"].to_string();
    assert!(
        cut.contains("a_directory/another_file: a directory loop"),
        "{cut}"
    );
    assert!(out.join("a_directory/another_file").is_dir());
}
