//! First Aid (`dimg verify -fs [-repair]`): the volumes dimg makes and the corpus's HFS+ volumes
//! (made by macOS) check clean; damaged copies are each named in one line; the repair mends
//! what it says and a second check is clean, as fsck.fat judges the FAT volumes and fshfsinfo
//! still reads the HFS+ ones. (Debian's hpfsck cannot judge: it sizes every volume, a file or
//! a loop device alike, as 0 blocks, and refuses clean ones made by macOS and by dimg.)

mod common;

use common::*;
use dimg_e2e::{corpus, program, truths};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A folder of 30 files and two nested folders, one file with a long name.
fn source(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir_all(src.join("sub/deeper")).unwrap();
    for i in 1..=30u32 {
        fs::write(
            src.join(format!("file{i}.bin")),
            noise(3000 * i as usize, u64::from(i)),
        )
        .unwrap();
    }
    fs::write(src.join("sub/A Long File Name Here.txt"), b"hello\n").unwrap();
    fs::write(src.join("sub/deeper/a"), b"x").unwrap();
    src
}

/// A read/write (UDRW) image of `src` in file system `fs`, and where its volume starts: a UDRW
/// keeps its disk at the start of the file, so the volume's bytes are the file's from there.
fn image(dir: &Path, src: &Path, fs: &str) -> (PathBuf, u64, u64) {
    let out = dir.join(format!("{}.dmg", fs.replace('+', "P")));
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(src),
        "-fs",
        fs,
        "-format",
        "UDRW",
        s(&out),
    ]);
    assert!(o.status.success(), "{fs}: {}", stderr(&o));
    let kind = match fs {
        f if f.starts_with("FAT") => "FAT",
        "JHFS+" => "HFS+",
        f => f,
    };
    let p = partition_with(&out, kind);
    (
        out,
        p["start"].as_u64().unwrap(),
        p["size"].as_u64().unwrap(),
    )
}

/// `verify -fs` (with `-repair`) as JSON, and its exit code.
fn first_aid(image: &Path, repair: bool) -> (serde_json::Value, Option<i32>) {
    let mut args = vec!["verify", "-fs", s(image), "--json"];
    if repair {
        args.insert(2, "-repair");
    }
    let o = dimg(&args);
    let json = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("{}: {}", image.display(), stderr(&o)));
    (json, o.status.code())
}

/// Every problem line of a report, as the text output gives them: "structure: what".
fn problems(report: &serde_json::Value) -> Vec<String> {
    report["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["problems"].as_array().unwrap().clone())
        .map(|p| {
            format!(
                "{}: {}",
                p["structure"].as_str().unwrap(),
                p["what"].as_str().unwrap()
            )
        })
        .collect()
}

fn repairs(report: &serde_json::Value) -> Vec<String> {
    report["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["repaired"].as_array().unwrap().clone())
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// The one problem a damaged copy has: it is named in one line that starts with `structure`.
fn assert_one_problem(image: &Path, structure: &str) -> String {
    let (report, code) = first_aid(image, false);
    let lines = problems(&report);
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(structure), "{lines:?}");
    let text = stdout(&dimg(&["verify", "-fs", s(image)]));
    assert!(text.contains(&lines[0]), "{text}");
    lines[0].clone()
}

/// Repairs `image`: the repair says what it changed, a second check is clean, and the image's
/// own checksums were brought up to date.
fn assert_repaired(image: &Path, expected: &[&str]) {
    let (report, code) = first_aid(image, true);
    assert_eq!(code, Some(0), "{:?}", problems(&report));
    let made = repairs(&report);
    assert_eq!(made.len(), expected.len(), "{made:?}");
    for (m, e) in made.iter().zip(expected) {
        assert!(m.starts_with(e), "{made:?}");
    }
    let (again, code) = first_aid(image, false);
    assert_eq!(code, Some(0), "{:?}", problems(&again));
    let o = dimg(&["verify", s(image)]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn write_at(path: &Path, at: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, at).unwrap();
}

fn read_at(path: &Path, at: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0u8; len];
    fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut b, at)
        .unwrap();
    b
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(b[at..at + 4].try_into().unwrap()))
}

/// The volume's bytes copied out to a file of their own, for a peer tool to judge.
fn volume_file(image: &Path, start: u64, size: u64, dir: &Path) -> PathBuf {
    let out = dir.join("volume.raw");
    fs::write(&out, read_at(image, start, size as usize)).unwrap();
    out
}

/// What `fsck.fat -n` says of the volume, and whether it found it clean.
fn fsck_fat(volume: &Path) -> (bool, String) {
    let o = Command::new(program("fsck.fat"))
        .args(["-n", s(volume)])
        .output()
        .unwrap();
    (o.status.success(), format!("{}{}", stdout(&o), stderr(&o)))
}

#[test]
fn volumes_dimg_makes_check_clean() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    for fs in ["HFS+", "HFSX", "FAT", "FAT32"] {
        let (img, start, size) = image(dir.path(), &src, fs);
        let blank = dir
            .path()
            .join(format!("blank-{}.dmg", fs.replace('+', "P")));
        let o = dimg(&["create", "-size", "40m", "-fs", fs, s(&blank)]);
        assert!(o.status.success(), "{}", stderr(&o));
        for (image, files) in [(&img, 32), (&blank, 0)] {
            let (report, code) = first_aid(image, false);
            assert_eq!(code, Some(0), "{fs}: {:?}", problems(&report));
            let volumes = report["volumes"].as_array().unwrap();
            assert_eq!(volumes.len(), 1, "{fs}: {report}");
            assert_eq!(volumes[0]["checked"], true, "{fs}");
            assert_eq!(volumes[0]["counted"]["files"], files, "{fs}: {report}");
        }
        let text = stdout(&dimg(&["verify", "-fs", s(&img)]));
        assert!(text.ends_with("1 volume checked: OK\n"), "{text}");
        if fs.starts_with("FAT") {
            let (clean, said) = fsck_fat(&volume_file(&img, start, size, dir.path()));
            assert!(clean, "{fs}: {said}");
        }
    }
}

/// Every HFS+ volume of the corpus (made by macOS: journaled, hard links, attributes, overflow
/// extents, compressed files) and every APFS container (made by macOS: encrypted, with pending
/// frees in its free queue, snapshots of transactions) checks clean — a container carved short
/// has that one problem; no image makes First Aid fail otherwise.
#[test]
fn corpus_volumes_check_clean() {
    let started = std::time::Instant::now();
    let (mut hfs, mut apfs) = (0, 0);
    for t in truths().iter().filter(|t| t.sha256.is_some()) {
        let path = t.path();
        let mut args = vec!["verify", "-fs", s(&path), "--json"];
        if t.passphrase.is_some() {
            args.push("-stdinpass");
        }
        let o = dimg_stdin(
            &args,
            t.passphrase.as_deref().unwrap_or_default().as_bytes(),
        );
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!all.contains("panicked"), "{}: {all}", t.file);
        if o.stdout.is_empty() {
            // Images dimg cannot open (pre-Mac OS X ones) are refused in a line, not checked.
            assert_eq!(o.status.code(), Some(1), "{}: {all}", t.file);
            continue;
        }
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // "carved after 442 blocks": the container superblock declares more than the image holds.
        let carved = t
            .notes
            .split("carved after ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next());
        for v in report["volumes"].as_array().unwrap() {
            let lines: Vec<String> = problems(&serde_json::json!({ "volumes": [v] }));
            match carved {
                Some(blocks) => {
                    assert_eq!(lines.len(), 1, "{}: {lines:?}", t.file);
                    assert!(
                        lines[0].ends_with(&format!("the container holds {blocks}")),
                        "{}: {lines:?}",
                        t.file
                    );
                }
                None => assert_eq!(lines, Vec::<String>::new(), "{}", t.file),
            }
            hfs += usize::from(v["file_system"] == "HFS+" && v["checked"] == true);
            apfs += usize::from(v["file_system"] == "APFS" && v["checked"] == true);
        }
        let code = if carved.is_some() { 1 } else { 0 };
        assert_eq!(o.status.code(), Some(code), "{}: {all}", t.file);
    }
    assert!(hfs >= 7, "only {hfs} HFS+ volumes in the corpus");
    assert!(apfs >= 9, "only {apfs} APFS containers in the corpus");
    eprintln!(
        "{hfs} HFS+ volumes and {apfs} APFS containers checked in {:?}",
        started.elapsed()
    );
}

#[test]
fn damaged_hfs_plus_is_named_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let (clean, start, size) = image(dir.path(), &src, "HFS+");
    let header = read_at(&clean, start + 1024, 512);
    let block = u64::from(be32(&header, 40));
    let bitmap = u64::from(be32(&header, 112 + 16)) * block;
    let catalog = u64::from(be32(&header, 272 + 16)) * block;
    let listing = |image: &Path| {
        let volume = volume_file(image, start, size, dir.path());
        peer("fshfsinfo", &["-H", s(&volume)])
    };
    let before = listing(&clean);
    let copy = |name: &str| {
        let p = dir.path().join(name);
        fs::copy(&clean, &p).unwrap();
        p
    };

    // The header's file count, one too many: fixed in the header and its alternate.
    let count = copy("count.dmg");
    write_at(
        &count,
        start + 1024 + 32,
        &(be32(&header, 32) + 1).to_be_bytes(),
    );
    let line = assert_one_problem(&count, "volume header");
    assert_eq!(
        line,
        "volume header: its file count says 33, the catalog holds 32"
    );
    assert_repaired(&count, &["volume header: file count 33 → 32"]);
    assert_eq!(
        read_at(&count, start + size - 1024 + 32, 4),
        32u32.to_be_bytes()
    );
    assert_eq!(listing(&count), before);

    // A block of the catalog marked free: the bitmap is rebuilt from the extents.
    let free = copy("bitmap.dmg");
    let catalog_block = catalog / block;
    let byte = start + bitmap + catalog_block / 8;
    let bits = read_at(&free, byte, 1)[0] & !(0x80 >> (catalog_block % 8));
    write_at(&free, byte, &[bits]);
    let line = assert_one_problem(&free, "allocation file");
    assert!(line.contains("marks 1 blocks in use free"), "{line}");
    assert!(line.contains("of catalog file"), "{line}");
    assert_repaired(&free, &["allocation file: 1 blocks marked in use"]);
    assert_eq!(listing(&free), before);

    // A folder's valence: mended in its catalog record.
    let valence = copy("valence.dmg");
    let volume = read_at(&valence, start, size as usize);
    let record = catalog_record(&volume, "sub", 1) as u64;
    write_at(&valence, start + record + 4, &7u32.to_be_bytes());
    let line = assert_one_problem(&valence, "/sub");
    assert_eq!(line, "/sub: its valence says 7 items, it holds 2");
    assert_repaired(&valence, &["/sub: valence 7 → 2"]);
    assert_eq!(listing(&valence), before);

    // The first leaf's forward link, cut: named, and not something First Aid mends.
    let link = copy("link.dmg");
    let node_size = u64::from(u16::from_be_bytes(
        read_at(&link, start + catalog + 14 + 18, 2)
            .try_into()
            .unwrap(),
    ));
    let first_leaf = u64::from(be32(&read_at(&link, start + catalog + 14 + 10, 4), 0));
    write_at(
        &link,
        start + catalog + first_leaf * node_size,
        &0u32.to_be_bytes(),
    );
    let line = assert_one_problem(&link, "catalog file");
    assert!(
        line.starts_with(&format!(
            "catalog file: node {first_leaf} links to nodes 0 (before) and 0 (after)"
        )),
        "{line}"
    );
    let (report, code) = first_aid(&link, true);
    assert_eq!((code, problems(&report)), (Some(1), vec![line]));
    assert!(repairs(&report).is_empty());
}

/// A corpus UDZO made by hdiutil, as UDRW in `dir`, with where its HFS+ volume starts and how
/// long it is.
fn corpus_udrw(dir: &Path, name: &str) -> (PathBuf, u64, u64) {
    let out = dir.join(format!("rw-{name}"));
    let from = corpus().join("dmg").join(name);
    let o = dimg(&["convert", s(&from), "-format", "UDRW", "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = partition_with(&out, "HFS+");
    (
        out,
        p["start"].as_u64().unwrap(),
        p["size"].as_u64().unwrap(),
    )
}

/// The hard-link pair hdiutil made in the corpus's HFS+ DMGs (`readme.txt` and
/// `hardlink-to-readme` in kaitokit's, `testfile1` and `file_hardlink1` in keramics's) checks
/// clean and is counted. In a copy, each damage to the pair is named in a line: the iNode's
/// link count (repaired, as fshfsinfo and 7-Zip agree after), a link's place in the chain, a
/// link to an iNode that is not there, an iNode no link names.
#[test]
fn hard_links_are_checked_against_their_inodes() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["kaitokit-hfs-zlib.dmg", "keramics-hfsplus-zlib.dmg"] {
        let (report, code) = first_aid(&corpus().join("dmg").join(name), false);
        assert_eq!(code, Some(0), "{name}: {:?}", problems(&report));
        assert_eq!(report["volumes"][0]["counted"]["hard links"], 2, "{name}");
    }
    let (clean, start, size) = corpus_udrw(dir.path(), "kaitokit-hfs-zlib.dmg");
    let volume = read_at(&clean, start, size as usize);
    let (first, second) = (
        catalog_record(&volume, "hardlink-to-readme", 2),
        catalog_record(&volume, "readme.txt", 2),
    );
    // A link's BSD `special` field holds its iNode's number; the iNode is named after it.
    let number = be32(&volume, first + 44);
    assert_eq!(be32(&volume, second + 44), number);
    let inode = catalog_record(&volume, &format!("iNode{number}"), 2);
    let inode_path = format!("/\\u{{0}}\\u{{0}}\\u{{0}}\\u{{0}}HFS+ Private Data/iNode{number}");
    // The chain hdiutil wrote: the iNode's reserved1 names the first link; each link names
    // its previous and next links in its BSD owner and group fields.
    let (first_id, second_id) = (be32(&volume, first + 8), be32(&volume, second + 8));
    assert_eq!(be32(&volume, inode + 4), first_id);
    assert_eq!(
        (be32(&volume, first + 32), be32(&volume, first + 36)),
        (0, second_id)
    );
    assert_eq!(
        (be32(&volume, second + 32), be32(&volume, second + 36)),
        (first_id, 0)
    );
    let copy = |label: &str, at: usize, value: u32| {
        let p = dir.path().join(format!("{label}.dmg"));
        fs::copy(&clean, &p).unwrap();
        write_at(&p, start + at as u64, &value.to_be_bytes());
        p
    };
    let listing = |image: &Path| {
        let volume = volume_file(image, start, size, dir.path());
        (
            peer("fshfsinfo", &["-H", s(&volume)]),
            peer("7zz", &["l", s(&volume)])
                .lines()
                .filter(|l| l.contains("readme"))
                .map(str::to_string)
                .collect::<Vec<_>>(),
        )
    };
    let before = listing(&clean);
    assert_eq!(before.1.len(), 2, "{:?}", before.1);

    // The iNode's link count, one too many: mended in its record.
    let count = copy("count", inode + 44, 3);
    let line = assert_one_problem(&count, &inode_path);
    assert_eq!(
        line,
        format!("{inode_path}: its link count says 3, 2 hard links name it")
    );
    assert_repaired(&count, &[&format!("{inode_path}: link count 3 → 2")]);
    assert_eq!(read_at(&count, start + inode as u64 + 44, 4), [0, 0, 0, 2]);
    assert_eq!(listing(&count), before);

    // The second link's previous link, cut: named, and not something First Aid mends.
    let chain = copy("chain", second + 32, 0);
    let line = assert_one_problem(&chain, "/readme.txt");
    assert_eq!(
        line,
        format!(
            "/readme.txt: its previous hard link says CNID 0, where the chain of {inode_path} \
             has CNID {first_id} before it"
        )
    );
    let (report, code) = first_aid(&chain, true);
    assert_eq!((code, problems(&report)), (Some(1), vec![line]));
    assert!(repairs(&report).is_empty());

    // The first link's next link, cut: the chain leaves the second out.
    let short = copy("short", first + 36, 0);
    let line = assert_one_problem(&short, &inode_path);
    assert_eq!(
        line,
        format!("{inode_path}: its chain of hard links leaves out /readme.txt")
    );

    // A link to an iNode there is not; the iNode then has one link fewer than it counts.
    let stray = copy("stray", first + 44, number + 1000);
    let lines = problems(&first_aid(&stray, false).0);
    let missing = format!(
        "/hardlink-to-readme: is a file hard link to iNode{}, which is not in its private folder",
        number + 1000
    );
    assert!(lines.contains(&missing), "{lines:?}");
    let fewer = format!("{inode_path}: its link count says 2, 1 hard link names it");
    assert!(lines.contains(&fewer), "{lines:?}");

    // Both links sent elsewhere: the iNode is an orphan.
    let orphan = copy("orphan", first + 44, number + 1000);
    write_at(
        &orphan,
        start + second as u64 + 44,
        &(number + 1000).to_be_bytes(),
    );
    let lines = problems(&first_aid(&orphan, false).0);
    let alone = format!("{inode_path}: no hard link names it (an orphaned iNode)");
    assert!(lines.contains(&alone), "{lines:?}");

    // A folder hard link (type fdrp) to a folder that is not in the private directory data
    // folder, in a volume dimg made.
    let src = source(dir.path());
    let (made, start, size) = image(dir.path(), &src, "HFS+");
    let mut volume = read_at(&made, start, size as usize);
    folder_hard_link(&mut volume, "file1.bin", "sub");
    write_at(&made, start, &volume);
    let sub = be32(&volume, catalog_record(&volume, "sub", 1) + 8);
    let line = assert_one_problem(&made, "/file1.bin");
    assert_eq!(
        line,
        format!("/file1.bin: is a folder hard link to folder CNID {sub}, which is not in its private folder")
    );
}

/// Takes the catalog record that starts at byte `record` of the volume out of its leaf node, as
/// if it had never been written: the records after it move up, the node counts one fewer, and
/// so does the tree's header. The catalog is in one extent at `catalog` (as dimg makes it), and
/// the record is not its node's first (whose key its index record repeats).
fn take_out_record(volume: &mut [u8], catalog: usize, record: usize) {
    let size = usize::from(u16::from_be_bytes([
        volume[catalog + 32],
        volume[catalog + 33],
    ]));
    let node = catalog + (record - catalog) / size * size;
    let b = &mut volume[node..node + size];
    let count = usize::from(u16::from_be_bytes([b[10], b[11]]));
    let offset = |b: &[u8], j: usize| {
        usize::from(u16::from_be_bytes([
            b[size - 2 * (j + 1)],
            b[size - 2 * j - 1],
        ]))
    };
    let i = (0..count)
        .find(|&j| offset(b, j) <= record - node && record - node < offset(b, j + 1))
        .expect("the record is in its node");
    assert!(i > 0, "the record starts its node");
    let (from, to, free) = (offset(b, i), offset(b, i + 1), offset(b, count));
    let len = to - from;
    b.copy_within(to..free, from);
    b[free - len..free].fill(0);
    for j in i..count {
        let moved = (offset(b, j + 1) - len) as u16;
        b[size - 2 * (j + 1)..size - 2 * j].copy_from_slice(&moved.to_be_bytes());
    }
    b[size - 2 * (count + 1)..size - 2 * count].fill(0);
    b[10..12].copy_from_slice(&(count as u16 - 1).to_be_bytes());
    let leaves = catalog + 14 + 6;
    let records = be32(volume, leaves) - 1;
    volume[leaves..leaves + 4].copy_from_slice(&records.to_be_bytes());
}

/// Where the thread record of CNID `id` starts in the volume: its key is the CNID and no name.
fn thread_record(volume: &[u8], id: u32) -> usize {
    let mut key = vec![0, 6];
    key.extend_from_slice(&id.to_be_bytes());
    key.extend_from_slice(&[0, 0, 0]);
    key.push(if id == 2 { 3 } else { 4 });
    find(volume, &key)
}

/// A file record taken out of the catalog leaves its thread record orphaned; a thread record
/// taken out leaves its file without one. On HFS+ and on journaled HFS+, `verify -fs` names
/// each, `-repair` takes the orphan out and writes the missing thread through the B-tree
/// editor (the journal's, on the journaled volume), then mends the counts and the bitmap the
/// lost file leaves wrong; the volume then checks clean and fshfsinfo and 7-Zip list it.
#[test]
fn orphaned_and_missing_thread_records_are_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    for fs in ["HFS+", "JHFS+"] {
        let (clean, start, size) = image(dir.path(), &src, fs);
        let volume = read_at(&clean, start, size as usize);
        let header = &volume[1024..1536];
        let catalog = (be32(header, 272 + 16) * be32(header, 40)) as usize;
        let judged = |image: &Path| {
            let volume = volume_file(image, start, size, dir.path());
            let listed = peer("7zz", &["l", s(&volume)]);
            (peer("fshfsinfo", &["-H", s(&volume)]), listed)
        };

        // file7.bin's record, gone: its thread is orphaned, and the counts and the bitmap
        // still hold it.
        let lost = dir.path().join(format!("{fs}-lost.dmg"));
        let mut bytes = volume.clone();
        // Its key: length, parent (the root, CNID 2), name length and name.
        let name: Vec<u8> = "file7.bin"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let mut key = ((6 + name.len()) as u16).to_be_bytes().to_vec();
        key.extend_from_slice(&[0, 0, 0, 2, 0, name.len() as u8 / 2]);
        key.extend_from_slice(&name);
        let record = find(&bytes, &key);
        let id = be32(&bytes, record + key.len() + 8);
        take_out_record(&mut bytes, catalog, record);
        fs::copy(&clean, &lost).unwrap();
        write_at(&lost, start, &bytes);
        let (report, code) = first_aid(&lost, false);
        let lines = problems(&report);
        assert_eq!(code, Some(1));
        let orphan = format!(
            "catalog file: the thread record of CNID {id} has no file or folder (an orphaned thread)"
        );
        assert!(lines.contains(&orphan), "{fs}: {lines:?}");
        // The journal's header (on the journaled volume), where its info block says it is.
        let journal = |image: &Path| -> Option<Vec<u8>> {
            let info = u64::from(be32(header, 12)) * u64::from(be32(header, 40));
            let at = u64::from_be_bytes(read_at(image, start + info + 36, 8).try_into().unwrap());
            (fs == "JHFS+").then(|| read_at(image, start + at, 48))
        };
        let before = journal(&lost);
        let (report, code) = first_aid(&lost, true);
        assert_eq!(code, Some(0), "{fs}: {:?}", problems(&report));
        // The catalog was changed through the journal: a transaction went through it.
        assert!(before.is_none() || journal(&lost) != before, "{fs}");
        let made = repairs(&report);
        assert_eq!(
            made[0],
            format!("catalog file: removed the orphaned thread record of CNID {id}"),
            "{fs}"
        );
        // The source's 32 files, 30 of them and sub at the root, which also holds the journal's
        // two files on a journaled volume.
        let files = be32(header, 32);
        let root = 31 + files - 32;
        for expected in [
            format!("volume header: file count {files} → {}", files - 1),
            format!("/: valence {root} → {}", root - 1),
        ] {
            assert!(made.contains(&expected), "{fs}: {made:?}");
        }
        for begins in [
            "volume header: free blocks ",
            "allocation file: 0 blocks marked in use, ",
        ] {
            assert!(made.iter().any(|m| m.starts_with(begins)), "{fs}: {made:?}");
        }
        assert_eq!(made.len(), 5, "{fs}: {made:?}");
        assert_eq!(first_aid(&lost, false).1, Some(0), "{fs}");
        let (_, listed) = judged(&lost);
        assert!(
            !listed.contains("file7.bin") && listed.contains("file8.bin"),
            "{listed}"
        );

        // The thread record of sub/deeper/a, gone.
        let threadless = dir.path().join(format!("{fs}-threadless.dmg"));
        let mut bytes = volume.clone();
        let id = be32(&bytes, catalog_record(&bytes, "a", 2) + 8);
        let thread = thread_record(&bytes, id);
        take_out_record(&mut bytes, catalog, thread);
        fs::copy(&clean, &threadless).unwrap();
        write_at(&threadless, start, &bytes);
        let line = assert_one_problem(&threadless, "/sub/deeper/a");
        assert_eq!(line, "/sub/deeper/a: has no thread record");
        assert_repaired(&threadless, &["/sub/deeper/a: thread record written"]);
        assert_eq!(judged(&threadless), judged(&clean), "{fs}");
    }
}

/// Sets FAT entry `n` (of `bits` bits) of the FAT at `fat` to `value`.
fn set_entry(image: &Path, fat: u64, bits: u64, n: u64, value: u32) {
    match bits {
        12 => {
            let at = fat + n * 3 / 2;
            let pair = u16::from_le_bytes(read_at(image, at, 2).try_into().unwrap());
            let value = value as u16 & 0xFFF;
            let pair = match n % 2 {
                0 => pair & 0xF000 | value,
                _ => pair & 0x000F | value << 4,
            };
            write_at(image, at, &pair.to_le_bytes());
        }
        16 => write_at(image, fat + n * 2, &(value as u16).to_le_bytes()),
        _ => write_at(image, fat + n * 4, &value.to_le_bytes()),
    }
}

/// A FAT32 and a small FAT (FAT12) volume: a FAT copy that differs, two chains cross-linked,
/// FAT32's free count; fsck.fat finds the same and, after the repair, nothing.
#[test]
fn damaged_fat_is_named_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    for fs in ["FAT32", "FAT"] {
        let (clean, start, size) = image(dir.path(), &src, fs);
        let boot = read_at(&clean, start, 512);
        let sector = le16(&boot, 11);
        let fat32 = le16(&boot, 22) == 0;
        let fat_sectors = if fat32 {
            le32(&boot, 36)
        } else {
            le16(&boot, 22)
        };
        let total = match le16(&boot, 19) {
            0 => le32(&boot, 32),
            n => n,
        };
        let fats_end = le16(&boot, 14) + u64::from(boot[16]) * fat_sectors;
        let data = fats_end + (le16(&boot, 17) * 32).div_ceil(sector);
        let bits = match (total - data) / u64::from(boot[13]) {
            0..4085 => 12,
            4085..65525 => 16,
            _ => 32,
        };
        let fat1 = start + le16(&boot, 14) * sector;
        let fat2 = fat1 + fat_sectors * sector;
        let copy = |name: &str| {
            let p = dir.path().join(format!("{fs}-{name}"));
            fs::copy(&clean, &p).unwrap();
            p
        };

        // FAT 2's entry for cluster 7 changed.
        let copies = copy("copies.dmg");
        set_entry(&copies, fat2, bits, 7, 0x555);
        let line = assert_one_problem(&copies, "FAT 2");
        assert!(line.contains("differs from FAT 1"), "{line}");
        let (clean_before, said) = fsck_fat(&volume_file(&copies, start, size, dir.path()));
        assert!(!clean_before && said.contains("FATs differ"), "{said}");
        assert_repaired(&copies, &["FAT 2: copied from FAT 1"]);
        let (clean_after, said) = fsck_fat(&volume_file(&copies, start, size, dir.path()));
        assert!(clean_after && !said.contains("differ"), "{said}");

        // file1.bin's first cluster leads into file2.bin's chain, in both FATs.
        let cross = copy("cross.dmg");
        // A FAT file's inode, as dimg lists it, is its first cluster.
        let listing: serde_json::Value =
            serde_json::from_str(&stdout(&dimg(&["ls", s(&cross), "--json"]))).unwrap();
        let first = |name: &str| {
            listing["entries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == name)
                .and_then(|e| e["inode"].as_u64())
                .unwrap_or_else(|| panic!("{name} in the root"))
        };
        let (a, b) = (first("file1.bin"), first("file2.bin"));
        for fat in [fat1, fat2] {
            set_entry(&cross, fat, bits, a, b as u32 + 1);
        }
        let (report, code) = first_aid(&cross, false);
        let lines = problems(&report);
        assert_eq!(code, Some(1));
        let shared = format!(
            "/file2.bin: shares cluster {} with /file1.bin (cross-linked)",
            b + 1
        );
        assert!(lines.contains(&shared), "{lines:?}");
        let (_, said) = fsck_fat(&volume_file(&cross, start, size, dir.path()));
        assert!(
            said.contains("/file1.bin  and\n/file2.bin\n  share clusters."),
            "{said}"
        );
        assert_eq!(bits, if fat32 { 32 } else { 12 }, "{fs}");

        if fat32 {
            // FSInfo's free count, wrong.
            let info = copy("fsinfo.dmg");
            let at = start + le16(&boot, 48) * sector + 488;
            write_at(&info, at, &12345u32.to_le_bytes());
            let line = assert_one_problem(&info, "FSInfo sector");
            assert!(line.starts_with("FSInfo sector: its free count says 12345 clusters"));
            assert_repaired(&info, &["FSInfo sector: free count 12345 → "]);
            let (clean, said) = fsck_fat(&volume_file(&info, start, size, dir.path()));
            assert!(clean && !said.contains("Free cluster summary"), "{said}");
        }
    }
}

#[test]
fn repair_of_a_compressed_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let image = dir.path().join("ro.dmg");
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(&src),
        "-format",
        "UDZO",
        s(&image),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = fs::read(&image).unwrap();
    let o = dimg(&["verify", "-fs", "-repair", s(&image)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("read-only or compressed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read(&image).unwrap(), before);
    let o = dimg(&["verify", "-repair", s(&image)]);
    assert_eq!(o.status.code(), Some(2), "-repair needs -fs");
}

/// The first block of the APFS container `bytes` (blocks of 4 KiB) that `is` says is the one.
fn apfs_block(bytes: &[u8], is: impl Fn(&[u8]) -> bool) -> usize {
    bytes
        .chunks_exact(4096)
        .position(is)
        .expect("the container has the block")
}

/// Whether `apfsck` finds `container` clean.
fn apfsck_clean(container: &Path) -> (bool, String) {
    let o = Command::new(program("apfsck"))
        .args(["-cw", s(container)])
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&o), stderr(&o));
    (o.status.success() && said.is_empty(), said)
}

/// APFS containers dimg writes — from a folder, blank, case-sensitive, in a GPT, encrypted by
/// APFS — check clean, as apfsck finds those it can judge; damaged copies are each named in one
/// line, and apfsck rejects each too: a block in use cleared from the space manager's bitmap,
/// a free block set in it, the volume's file count off by one (its checksum made right), and a
/// flipped byte in the file-system tree (its checksum then wrong).
#[test]
fn apfs_containers_check_clean_and_damage_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let bare = dir.path().join("bare.img");
    let made = |args: &[&str], input: &[u8]| {
        let o = dimg_stdin(args, input);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    let create = ["create", "-srcfolder", s(&src), "-layout", "NONE"];
    made(
        &[&create[..], &["-fs", "APFS", "-format", "UDTO", s(&bare)]].concat(),
        b"",
    );
    let (gpt, _, _) = image(dir.path(), &src, "APFS");
    let cs = dir.path().join("cs.img");
    made(
        &[
            &create[..],
            &["-fs", "Case-sensitive APFS", "-format", "UDTO", s(&cs)],
        ]
        .concat(),
        b"",
    );
    let blank = dir.path().join("blank.dmg");
    made(&["create", "-size", "40m", "-fs", "APFS", s(&blank)], b"");
    let sealed = dir.path().join("sealed.img");
    let encrypt = [
        "-fs",
        "APFS",
        "-apfs-encrypt",
        "-stdinpass",
        "-format",
        "UDTO",
        s(&sealed),
    ];
    made(&[&create[..], &encrypt[..]].concat(), b"pass");
    for (image, files) in [
        (&bare, 32),
        (&gpt, 32),
        (&cs, 32),
        (&blank, 0),
        (&sealed, -1),
    ] {
        let (report, code) = first_aid(image, false);
        assert_eq!(
            code,
            Some(0),
            "{}: {:?}",
            image.display(),
            problems(&report)
        );
        let volume = &report["volumes"][0];
        assert_eq!(volume["file_system"], "APFS");
        assert_eq!(volume["checked"], true);
        match files {
            // An encrypted volume's tree is not read without its password: the rest is checked.
            -1 => assert_eq!(volume["counted"]["locked volumes"], 1, "{report}"),
            n => assert_eq!(volume["counted"]["files"], n, "{report}"),
        }
        assert!(
            volume["counted"]["blocks in use"].as_u64().unwrap() > 60,
            "{report}"
        );
    }
    for image in [&bare, &cs] {
        let (clean, said) = apfsck_clean(image);
        assert!(clean, "{said}");
    }

    let bytes = fs::read(&bare).unwrap();
    let volume = apfs_block(&bytes, |b| &b[32..36] == b"APSB");
    // The first chunk's bitmap: the space manager's chunk info block names it.
    let cib = apfs_block(&bytes, |b| {
        u32::from_le_bytes(b[24..28].try_into().unwrap()) == 0x4000_0007
    });
    let bitmap = u64::from_le_bytes(bytes[cib * 4096 + 64..][..8].try_into().unwrap()) as usize;
    let blocks = u64::from_le_bytes(bytes[40..48].try_into().unwrap()) as usize;
    let fs_root = apfs_block(&bytes, |b| {
        b[24..28] == 2u32.to_le_bytes() && b[28..32] == 0x0Eu32.to_le_bytes()
    });
    let sealed_again = |b: &mut [u8]| {
        let sum = dimg::fs::apfs::checksum(b);
        b[..8].copy_from_slice(&sum.to_le_bytes());
    };
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let damages: [(&str, Damage, &str); 4] = [
        (
            "cleared",
            Box::new(move |b| b[bitmap * 4096 + volume / 8] ^= 1 << (volume % 8)),
            &format!("space manager: block {volume} is in use but marked free"),
        ),
        (
            "set",
            Box::new(move |b| b[bitmap * 4096 + (blocks - 1) / 8] ^= 1 << ((blocks - 1) % 8)),
            &format!(
                "space manager: block {} is marked in use but used by nothing",
                blocks - 1
            ),
        ),
        (
            "count",
            Box::new(move |b| {
                let sb = &mut b[volume * 4096..][..4096];
                sb[184] += 1;
                sealed_again(sb);
            }),
            "volume 1: its superblock counts 33 files, its tree holds 32",
        ),
        (
            "checksum",
            Box::new(move |b| b[fs_root * 4096 + 200] ^= 0x10),
            &format!("file-system tree: block {fs_root} fails its Fletcher-64 checksum"),
        ),
    ];
    for (name, damage, line) in damages {
        let copy = dir.path().join(format!("{name}.img"));
        let mut b = bytes.clone();
        damage(&mut b);
        fs::write(&copy, &b).unwrap();
        assert_eq!(
            assert_one_problem(&copy, line.split(':').next().unwrap()),
            line,
            "{name}"
        );
        let (clean, said) = apfsck_clean(&copy);
        assert!(!clean, "{name}: apfsck finds nothing");
        eprintln!("{name}: apfsck says {}", said.trim());
    }
}
