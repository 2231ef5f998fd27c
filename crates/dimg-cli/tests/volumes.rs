//! exFAT, NTFS and ext2/3/4 read by dimg, judged by volumes their own Debian tools made and
//! filled: mkfs.exfat + exfat-fuse, mkntfs + ntfs-3g, mke2fs -d. Each is extracted and listed,
//! and what dimg gives is compared with what the filling tool's own view shows (or the folder
//! mke2fs copied). The exFAT volumes dimg writes pass fsck.exfat and read back through
//! exfat-fuse. Damaged copies are clean errors, never a panic or a hang. Tests that mount
//! through FUSE take /tmp/dimg-e2e.lock's place by being run under it.

mod common;
mod sweep;
use common::*;

use dimg_e2e::program;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

fn run(tool: &str, args: &[&str]) -> String {
    let o = Command::new(program(tool)).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{tool} {args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The volume's bytes in all and free as the mounting peer counts them (statfs).
fn statfs(point: &Path) -> (u64, u64) {
    let out = run("stat", &["-f", "-c", "%S %b %f", s(point)]);
    let n: Vec<u64> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
    (n[1] * n[0], n[2] * n[0])
}

fn info_json(image: &Path) -> serde_json::Value {
    let o = dimg(&["info", s(image), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn volume_info(image: &Path) -> serde_json::Value {
    info_json(image)["partitions"][0]["volumes"][0].clone()
}

fn extract(image: &Path, out: &Path) {
    let o = dimg(&["extract", s(image), "-o", s(out)]);
    assert!(o.status.success(), "{}: {}", image.display(), stderr(&o));
}

/// The inode numbers `dimg ls --json` gives the entries of `folder`, by name.
fn inodes(image: &Path, folder: &str) -> std::collections::BTreeMap<String, u64> {
    let o = dimg(&["ls", "--json", &format!("{}:{folder}", s(image))]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["inode"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// exFAT made by mkfs.exfat and filled through exfat-fuse (on a loop device, as it wants a
/// block device): dimg extracts what exfat-fuse shows, names, bytes and times, counts the
/// space in use as exfat-fuse does, and finds names in another case through the up-case table.
#[test]
fn exfat_volumes_filled_by_exfat_fuse_extract_as_it_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("key.img");
    fs::File::create(&image).unwrap().set_len(48 << 20).unwrap();
    // 4 KiB clusters: the folder of 700 entries takes many, and so do the interleaved files.
    run("mkfs.exfat", &["-L", "USB KEY", "-c", "4096", s(&image)]);
    let point = dir.path().join("m");
    let mut mount = exfat_fuse(&image, &point, false);
    fill(&point, 700);
    let want = snapshot(&point, true);
    let (_, free) = statfs(&point);
    mount.unmount();

    let out = dir.path().join("out");
    extract(&image, &out);
    assert_same(&snapshot(&out, true), &want, "exFAT");
    let v = volume_info(&image);
    assert_eq!(v["name"], "USB KEY");
    // exfat-fuse counts the whole volume in its blocks, the cluster heap's free clusters free:
    // what the heap holds less what is free is in use.
    let boot = fs::read(&image).unwrap()[..512].to_vec();
    let cluster = 1u64 << (boot[108] + boot[109]);
    let heap = u64::from(u32::from_le_bytes(boot[92..96].try_into().unwrap())) * cluster;
    assert_eq!(
        v["used"].as_u64(),
        Some(heap - free),
        "bytes in use, as exfat-fuse's statfs"
    );
    assert_eq!(v["case_sensitive"], false);
    // The up-case table maps é to É: a lookup in capitals finds the file.
    let o = dimg(&[
        "ls",
        &format!("{}:/DOCS/CAF\u{c9} \u{dc}BER NA\u{cf}VE.TXT", s(&image)),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A chain that loops (frag-a.bin's second cluster points back to its first) is an error
    // naming the loop, not a hang.
    let bytes = fs::read(&image).unwrap();
    let (fat, first) = exfat_chain_start(&bytes, "frag-a.bin");
    let mut looped = bytes.clone();
    let second = u32::from_le_bytes(
        looped[fat + first * 4..fat + first * 4 + 4]
            .try_into()
            .unwrap(),
    );
    assert!((2..0xFFFF_FFF7).contains(&second), "frag-a.bin is chained");
    looped[fat + second as usize * 4..fat + second as usize * 4 + 4]
        .copy_from_slice(&(first as u32).to_le_bytes());
    let bad = dir.path().join("looped.img");
    fs::write(&bad, &looped).unwrap();
    let o = dimg(&[
        "extract",
        "-strict",
        s(&bad),
        "-o",
        s(&dir.path().join("x")),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("loops back to cluster"),
        "{}",
        stderr(&o)
    );
}

/// The volume GUID entry (a benign primary entry of the root, type 0xA0, with its set
/// checksum) put in a volume mkfs.exfat made is shown by `info` as Windows writes the GUID;
/// one whose checksum does not hold is not shown, and said so.
#[test]
fn an_exfat_volume_guid_entry_is_read_and_a_broken_one_named() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("guid.img");
    fs::File::create(&image).unwrap().set_len(8 << 20).unwrap();
    run("mkfs.exfat", &["-L", "GUID", s(&image)]);
    let mut b = fs::read(&image).unwrap();
    let sector = 1usize << b[108];
    let cluster = sector << b[109];
    let heap = u32::from_le_bytes(b[88..92].try_into().unwrap()) as usize * sector;
    let root_cluster = u32::from_le_bytes(b[96..100].try_into().unwrap()) as usize;
    let root = heap + (root_cluster - 2) * cluster;
    let free = (root..root + cluster)
        .step_by(32)
        .find(|&at| b[at] == 0)
        .expect("a free entry in the root's first cluster");
    let mut entry = [0u8; 32];
    entry[0] = 0xA0;
    let guid: Vec<u8> = (0x10..0x20).collect();
    entry[6..22].copy_from_slice(&guid);
    // The specification's entry set checksum: a 16-bit rotate-and-add over every byte but the
    // checksum's own two.
    let sum = entry
        .iter()
        .enumerate()
        .filter(|(i, _)| !matches!(i, 2 | 3))
        .fold(0u16, |sum, (_, &v)| {
            sum.rotate_right(1).wrapping_add(u16::from(v))
        });
    entry[2..4].copy_from_slice(&sum.to_le_bytes());
    b[free..free + 32].copy_from_slice(&entry);
    fs::write(&image, &b).unwrap();
    let facts = info_json(&image)["facts"].to_string();
    assert!(
        facts.contains("13121110-1514-1716-1819-1A1B1C1D1E1F"),
        "{facts}"
    );

    b[free + 10] ^= 0xFF;
    fs::write(&image, &b).unwrap();
    let facts = info_json(&image)["facts"].to_string();
    assert!(!facts.contains("Volume GUID"), "{facts}");
    assert!(
        facts.contains("GUID entry's checksum does not hold"),
        "{facts}"
    );
}

/// The FAT's offset and the first cluster of the root-folder file `name` in an exFAT volume.
fn exfat_chain_start(b: &[u8], name: &str) -> (usize, usize) {
    let sector = 1usize << b[108];
    let fat = u32::from_le_bytes(b[80..84].try_into().unwrap()) as usize * sector;
    let utf16: Vec<u8> = name.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    // The name entry (0xC1) follows the stream extension (0xC0) that holds the first cluster.
    let mut at = 0;
    loop {
        at += find(&b[at..], &utf16) + 1;
        let entry = (at - 1) / 32 * 32;
        if b[entry] == 0xC1 && b[entry - 32] == 0xC0 {
            let stream = &b[entry - 32..entry];
            return (
                fat,
                u32::from_le_bytes(stream[20..24].try_into().unwrap()) as usize,
            );
        }
    }
}

/// NTFS made by mkntfs and filled through ntfs-3g: a compressed folder (LZNT1), a sparse file,
/// an alternate data stream, a hard link, a symlink, a folder of 700 entries (a multi-block
/// index). dimg extracts what ntfs-3g shows, streams as extended attributes, and counts the
/// space in use as ntfs-3g does.
#[test]
fn ntfs_volumes_filled_by_ntfs_3g_extract_as_it_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("ntfs.img");
    fs::File::create(&image).unwrap().set_len(64 << 20).unwrap();
    run(
        "mkntfs",
        &["-q", "-F", "-f", "-L", "Windows Data", s(&image)],
    );
    let point = dir.path().join("m");
    fs::create_dir(&point).unwrap();
    let mut mount = PeerMount {
        point: point.clone(),
        device: None,
    };
    run(
        "ntfs-3g",
        &["-o", "streams_interface=windows", s(&image), s(&point)],
    );
    fill(&point, 700);
    // Files made in a folder marked compressed are compressed (FILE_ATTRIBUTE_COMPRESSED).
    let packed = point.join("packed");
    fs::create_dir(&packed).unwrap();
    xattr::set(&packed, "system.ntfs_attrib_be", &0x800u32.to_be_bytes()).unwrap();
    fs::write(
        packed.join("text.txt"),
        b"compressible text, ".repeat(50_000),
    )
    .unwrap();
    fs::write(packed.join("noise.bin"), noise(300_000, 11)).unwrap();
    let mut sparse = fs::File::create(point.join("sparse.bin")).unwrap();
    std::io::Seek::seek(&mut sparse, std::io::SeekFrom::Start(20 << 20)).unwrap();
    std::io::Write::write_all(&mut sparse, b"the end").unwrap();
    drop(sparse);
    fs::write(
        point.join("README.txt:Zone.Identifier"),
        b"[ZoneTransfer]\nZoneId=3\n",
    )
    .unwrap();
    fs::hard_link(point.join("README.txt"), point.join("docs/hard link.txt")).unwrap();
    fs::write(point.join("k.txt"), b"k").unwrap();
    std::os::unix::fs::symlink("docs/empty-target", point.join("a link")).unwrap();
    let attrib = xattr::get(packed.join("text.txt"), "system.ntfs_attrib_be")
        .unwrap()
        .unwrap();
    assert_ne!(
        u32::from_be_bytes(attrib[..4].try_into().unwrap()) & 0x800,
        0,
        "compressed"
    );
    let want = snapshot(&point, true);
    let (all, free) = statfs(&point);
    let used = all - free;
    mount.unmount();

    let out = dir.path().join("out");
    extract(&image, &out);
    assert_same(&snapshot(&out, true), &want, "NTFS");
    // 7-Zip reports a data error on the sparse file ntfs-3g wrote (a 20 MiB hole, then data),
    // which ntfs-3g and dimg read alike: it is left out of 7-Zip's part.
    seven_zip_agrees(&image, &out, &dir.path().join("7zz"), &["sparse.bin"]);
    assert_eq!(
        xattr::get(out.join("README.txt"), "user.Zone.Identifier")
            .unwrap()
            .as_deref(),
        Some(&b"[ZoneTransfer]\nZoneId=3\n"[..]),
        "the alternate data stream"
    );
    let v = volume_info(&image);
    assert_eq!(v["name"], "Windows Data");
    assert_eq!(
        v["used"].as_u64(),
        Some(used),
        "bytes in use, as ntfs-3g's statfs"
    );
    let root = inodes(&image, "/");
    let docs = inodes(&image, "/docs");
    assert_eq!(
        root["README.txt"], docs["hard link.txt"],
        "one record, two names"
    );
    assert!(
        !root.keys().any(|n| n.starts_with('$')),
        "no metafiles: {root:?}"
    );
    let ls = stdout(&dimg(&["ls", "-l", s(&image)]));
    assert!(ls.contains("README.txt:Zone.Identifier"), "{ls}");
    // Names are matched as the volume's $UpCase maps them: é is É, but the Kelvin sign is not
    // k, whatever Unicode's lower case says.
    for (path, found) in [
        ("/DOCS/CAF\u{c9} \u{dc}BER NA\u{cf}VE.TXT", true),
        ("/readme.TXT", true),
        ("/Empty", true),
        ("/K.TXT", true),
        ("/\u{212a}.txt", false),
    ] {
        let o = dimg(&["ls", &format!("{}:{path}", s(&image))]);
        assert_eq!(o.status.success(), found, "{path}: {}", stderr(&o));
    }

    // A torn MFT record (a sector whose end is not the update sequence number) is an error
    // naming it.
    let bytes = fs::read(&image).unwrap();
    let name: Vec<u8> = "many"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    // The folder's own record: a FILE record holding its name (not an index block naming it).
    let mut from = 0;
    let start = loop {
        let at = from + find(&bytes[from..], &name);
        let start = at / 1024 * 1024;
        if &bytes[start..start + 4] == b"FILE" {
            break start;
        }
        from = at + 1;
    };
    let mut torn = bytes.clone();
    torn[start + 510] ^= 0xFF;
    let bad = dir.path().join("torn.img");
    fs::write(&bad, &torn).unwrap();
    let o = dimg(&["ls", &format!("{}:/many", s(&bad))]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("update sequence number"),
        "{}",
        stderr(&o)
    );
}

/// 7-Zip's extraction of `image` into `x` agrees with dimg's, `out`: the same files with the
/// same bytes and the same folders. Set aside are what 7-Zip adds — its `[SYSTEM]` folder of
/// metafiles, each alternate data stream as a file `NAME:STREAM` (dimg keeps them as extended
/// attributes) — and links, which 7-Zip writes as files of their reparse data — and the files
/// `aside`, which 7-Zip cannot read.
fn seven_zip_agrees(image: &Path, out: &Path, x: &Path, aside: &[&str]) {
    let mut args = vec!["x".to_string(), "-y".into(), format!("-o{}", s(x))];
    args.extend(aside.iter().map(|name| format!("-x!{name}")));
    args.push(s(image).into());
    run("7zz", &args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut ours = snapshot(out, false);
    ours.retain(|path, _| !aside.contains(&path.as_str()));
    let theirs: Snapshot = snapshot(x, false)
        .into_iter()
        .filter(|(path, _)| !path.starts_with("[SYSTEM]") && !path.contains(':'))
        .filter(|(path, _)| ours.get(path).is_none_or(|(kind, ..)| *kind != 'l'))
        .collect();
    let ours: Snapshot = ours.into_iter().filter(|(_, e)| e.0 != 'l').collect();
    assert!(ours.len() > 700, "{} entries", ours.len());
    assert_same(&theirs, &ours, "7-Zip's extraction");
}

/// The tree mke2fs copies, with what only ext keeps: symlinks fast (in the inode) and slow (in
/// a block), hard links, a sparse file, extended attributes, permissions.
fn ext_source(root: &Path) {
    fill(root, 600);
    let big = noise(3 << 20, 13);
    fs::write(root.join("big.bin"), &big).unwrap();
    std::os::unix::fs::symlink("README.txt", root.join("fast link")).unwrap();
    let long = format!("{}/README.txt", "a-long-folder-name".repeat(8));
    std::os::unix::fs::symlink(&long, root.join("slow link")).unwrap();
    fs::hard_link(root.join("README.txt"), root.join("docs/hard link")).unwrap();
    let mut sparse = fs::File::create(root.join("sparse.bin")).unwrap();
    std::io::Seek::seek(&mut sparse, std::io::SeekFrom::Start(5 << 20)).unwrap();
    std::io::Write::write_all(&mut sparse, b"after the hole").unwrap();
    drop(sparse);
    xattr::set(
        root.join("README.txt"),
        "user.comment",
        b"kept beside the file",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(root.join("docs"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::set_permissions(root.join("big.bin"), fs::Permissions::from_mode(0o604)).unwrap();
}

/// ext2, ext3 and ext4 as mke2fs makes them from a folder (block maps with 1 KiB blocks,
/// extents, 32- and 64-bit descriptors, metadata_csum or not, inline data): each extracts as
/// the folder, with its links, attributes and permissions, and `info` gives its label and the
/// bytes in use that dumpe2fs reports.
#[test]
fn ext_volumes_made_by_mke2fs_extract_as_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    ext_source(&src);
    let mut want = snapshot(&src, true);
    // mke2fs adds the folder e2fsck puts lost files in.
    want.insert("lost+found".into(), ('d', String::new(), 0));
    for (name, tool, args) in [
        ("ext2-1k", "mkfs.ext2", &["-b", "1024"][..]),
        ("ext3", "mkfs.ext3", &[][..]),
        ("ext4", "mkfs.ext4", &[][..]),
        (
            "ext4-plain",
            "mkfs.ext4",
            &["-O", "^metadata_csum,^64bit"][..],
        ),
        (
            "ext4-inline",
            "mkfs.ext4",
            &["-O", "inline_data", "-I", "512"][..],
        ),
    ] {
        let image = dir.path().join(format!("{name}.img"));
        let mut all = vec!["-q", "-F", "-L", name, "-d", s(&src)];
        all.extend_from_slice(args);
        all.extend([s(&image), "40M"]);
        run(tool, &all);
        let out = dir.path().join(name);
        extract(&image, &out);
        assert_same(&snapshot(&out, true), &want, name);
        // debugfs's own copy of the tree: the same entries, bytes, links and times. Not for
        // inline data: Debian 12's debugfs (1.47.0) dumps such a file as the whole 60 bytes of
        // its inode's block area, zeros after the data ("0" comes out as 0x30 and 59 zeros).
        if !name.ends_with("inline") {
            let rdump = dir.path().join(format!("{name}-rdump"));
            fs::create_dir(&rdump).unwrap();
            run(
                "debugfs",
                &["-R", &format!("rdump / {}", s(&rdump)), s(&image)],
            );
            assert_same(&snapshot(&out, true), &snapshot(&rdump, true), name);
        }
        assert_eq!(
            xattr::get(out.join("README.txt"), "user.comment")
                .unwrap()
                .as_deref(),
            Some(&b"kept beside the file"[..]),
            "{name}"
        );
        for (path, mode) in [("docs", 0o750), ("big.bin", 0o604)] {
            let got = fs::metadata(out.join(path)).unwrap().mode() & 0o7777;
            assert_eq!(got, mode, "{name}: {path}");
        }
        let root = inodes(&image, "/");
        assert_eq!(
            root["README.txt"],
            inodes(&image, "/docs")["hard link"],
            "{name}"
        );
        let v = volume_info(&image);
        assert_eq!(v["name"], name);
        let stats = run("dumpe2fs", &["-h", s(&image)]);
        let field = |f: &str| -> u64 {
            stats
                .lines()
                .find_map(|l| l.strip_prefix(f))
                .unwrap_or_else(|| panic!("{f}"))
                .trim()
                .parse()
                .unwrap()
        };
        let used = (field("Block count:") - field("Free blocks:")) * field("Block size:");
        assert_eq!(v["used"].as_u64(), Some(used), "{name}");
    }
}

/// A volume whose journal needs recovery is read as it is, and `info` says so; a volume with a
/// feature dimg does not read is refused by the feature's name.
#[test]
fn ext_journals_needing_recovery_are_warned_of_and_unknown_features_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("kept.txt"), b"still here").unwrap();
    let image = dir.path().join("ext4.img");
    // Without metadata_csum, so that dumpe2fs reads the changed superblock as it is.
    let args = [
        "-q",
        "-F",
        "-O",
        "^metadata_csum",
        "-d",
        s(&src),
        s(&image),
        "8M",
    ];
    run("mkfs.ext4", &args);
    let clean = fs::read(&image).unwrap();
    let info = stdout(&dimg(&["info", s(&image)]));
    assert!(!info.contains("Warning"), "{info}");
    let feature = 1024 + 96;
    let mut dirty = clean.clone();
    dirty[feature] |= 0x4; // needs_recovery
    fs::write(&image, &dirty).unwrap();
    let o = run("dumpe2fs", &["-h", s(&image)]);
    assert!(
        o.contains("needs_recovery"),
        "dumpe2fs agrees the flag is needs_recovery"
    );
    let info = stdout(&dimg(&["info", s(&image)]));
    assert!(info.contains("needs recovery"), "{info}");
    let out = dir.path().join("out");
    extract(&image, &out);
    assert_eq!(fs::read(out.join("kept.txt")).unwrap(), b"still here");

    let mut encrypted = clean.clone();
    encrypted[feature + 2] |= 0x1; // encrypt (0x10000)
    fs::write(&image, &encrypted).unwrap();
    let o = dimg(&["ls", s(&image)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("encrypt"), "{}", stderr(&o));
}

/// The number after `after` in what debugfs said, in `radix`.
fn number_after(text: &str, after: &str, radix: u32) -> usize {
    let t = text
        .split(after)
        .nth(1)
        .unwrap_or_else(|| panic!("{after}: {text}"))
        .trim_start();
    let digits: String = t.chars().take_while(|c| c.is_digit(radix)).collect();
    usize::from_str_radix(&digits, radix).unwrap()
}

/// Where the inode of `path` is in an ext volume of 1 KiB blocks, as debugfs's imap says
/// ("located at block 1060, offset 0x0b00").
fn inode_offset(image: &Path, path: &str) -> usize {
    let imap = run("debugfs", &["-R", &format!("imap {path}"), s(image)]);
    number_after(&imap, "located at block ", 10) * 1024 + number_after(&imap, "offset 0x", 16)
}

/// An extent tree whose index leads back to its own node: a clean error naming the tree, not
/// a hang. The inode's root is made an index over a node that points at itself.
#[test]
fn damaged_ext_trees_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    let a = noise(1 << 20, 17);
    fs::write(src.join("a.bin"), &a).unwrap();
    let image = dir.path().join("ext4.img");
    // Without metadata_csum, whose inode checksum would catch the change before the loop.
    let args = [
        "-q",
        "-F",
        "-O",
        "^metadata_csum",
        "-b",
        "1024",
        "-d",
        s(&src),
        s(&image),
        "16M",
    ];
    run("mkfs.ext4", &args);
    let out = dir.path().join("out");
    extract(&image, &out);
    assert_eq!(fs::read(out.join("a.bin")).unwrap(), a);
    let inode = inode_offset(&image, "/a.bin");
    // "(0-1023):1172-2195".
    let stat = run("debugfs", &["-R", "stat /a.bin", s(&image)]);
    let data = number_after(&stat, "(0-1023):", 10);
    let node = |depth: u16, child: usize| {
        let mut n = vec![0x0A, 0xF3, 1, 0, 4, 0];
        n.extend(depth.to_le_bytes());
        n.extend([0; 4]); // generation
        n.extend(0u32.to_le_bytes()); // covers from block 0
        n.extend((child as u32).to_le_bytes());
        n.extend([0; 4]);
        n
    };
    let mut bytes = fs::read(&image).unwrap();
    let root = node(2, data);
    bytes[inode + 40..inode + 40 + root.len()].copy_from_slice(&root);
    let looped = node(1, data);
    bytes[data * 1024..data * 1024 + looped.len()].copy_from_slice(&looped);
    let bad = dir.path().join("looped.img");
    fs::write(&bad, &bytes).unwrap();
    let o = dimg(&[
        "extract",
        "--strict",
        s(&bad),
        "-o",
        s(&dir.path().join("x")),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("extent tree"), "{}", stderr(&o));
}

/// With metadata_csum, a change to the superblock, a group descriptor, an inode, an extent
/// tree node, a directory leaf block or an attribute block that leaves its checksum behind is an
/// error naming the structure — where e2fsck -n finds the same checksum wrong.
#[test]
fn ext_metadata_checksums_that_do_not_hold_are_errors_naming_the_structure() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    ext_source(&src);
    // An attribute too big for the inode goes in a block of its own.
    xattr::set(src.join("docs"), "user.big", &[b'x'; 600][..]).unwrap();
    let image = dir.path().join("csum.img");
    let args = [
        "-q",
        "-F",
        "-b",
        "1024",
        "-I",
        "256",
        "-d",
        s(&src),
        s(&image),
        "16M",
    ];
    run("mkfs.ext4", &args);
    let clean = fs::read(&image).unwrap();
    let stats = run("dumpe2fs", &["-h", s(&image)]);
    assert!(stats.contains("metadata_csum"), "{stats}");
    // Where each structure is, as debugfs says.
    let debugfs = |request: &str| run("debugfs", &["-R", request, s(&image)]);
    let readme = inode_offset(&image, "/README.txt");
    // many/ holds 600 entries, in an htree: its block 0 is the tree's root, block 1 a leaf;
    // its extents are many enough to need a tree node (ETB0).
    let many = debugfs("stat /many");
    let (many_node, many_leaf) = (
        number_after(&many, "(ETB0):", 10),
        number_after(&many, "(1):", 10),
    );
    let acl = number_after(&debugfs("stat /docs"), "File ACL:", 10);
    assert_ne!(acl, 0, "docs has an attribute block");
    let cases: Vec<(&str, usize, &str)> = vec![
        ("the superblock's label", 1024 + 120, "ext superblock"),
        (
            "group 0's descriptor's free count",
            2048 + 12,
            "ext group descriptor",
        ),
        (
            "README.txt's inode's modification time",
            readme + 16,
            "ext inode",
        ),
        (
            "many/'s extent tree node",
            many_node * 1024 + 20,
            "ext extent tree",
        ),
        (
            "a leaf block of many/",
            many_leaf * 1024 + 30,
            "ext directory block",
        ),
        (
            "docs/'s attribute block",
            acl * 1024 + 40,
            "ext extended-attribute block",
        ),
    ];
    for (what, at, structure) in cases {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x01;
        fs::write(&image, &bytes).unwrap();
        let o = Command::new("e2fsck")
            .args(["-fn", s(&image)])
            .output()
            .unwrap();
        let said = format!("{}{}", stdout(&o), stderr(&o)).to_lowercase();
        assert!(
            !o.status.success() && said.contains("checksum"),
            "{what}: e2fsck finds no checksum wrong: {said}"
        );
        let o = dimg(&[
            "extract",
            "--strict",
            s(&image),
            "-o",
            s(&dir.path().join("x")),
        ]);
        let _ = fs::remove_dir_all(dir.path().join("x"));
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(structure) && stderr(&o).contains("metadata_csum"),
            "{what}: {}",
            stderr(&o)
        );
    }
}

/// Damaged copies of the corpus's exFAT, NTFS and ext volumes and of volumes their own tools
/// made (cut, zeroed, bytes flipped where the structures are): every command ends with a
/// result or a clean error, never a panic, a hang or a runaway allocation.
#[test]
fn damaged_exfat_ntfs_and_ext_copies_are_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dimg_e2e::corpus();
    let mut images: Vec<(String, Vec<u8>)> = [
        "exfat/dissect-exfat.bin",
        "ntfs/dissect-ntfs.bin",
        "ext/dissect-ext4.bin",
    ]
    .iter()
    .map(|f| (f.to_string(), fs::read(corpus.join(f)).unwrap()))
    .collect();
    for (tool, args) in [
        ("mkfs.ext2", &["-q", "-F", "-b", "1024"][..]),
        ("mkfs.exfat", &[][..]),
        ("mkntfs", &["-q", "-F", "-f"][..]),
    ] {
        let src = dir.path().join("src");
        let _ = fs::remove_dir_all(&src);
        fs::create_dir(&src).unwrap();
        fill(&src, 40);
        let image = dir.path().join(format!("{tool}.img"));
        fs::File::create(&image).unwrap().set_len(8 << 20).unwrap();
        let mut all = args.to_vec();
        if tool == "mkfs.ext2" {
            all.extend(["-d", s(&src)]);
        }
        all.push(s(&image));
        run(tool, &all);
        images.push((tool.to_string(), fs::read(&image).unwrap()));
    }
    let dimg_bin = Path::new(env!("CARGO_BIN_EXE_dimg"));
    let outcome = sweep::browse_damaged(dimg_bin, &images, 14, 5, dir.path(), "damaged.img");
    assert!(outcome.failures.is_empty(), "{:#?}", outcome.failures);
    assert_eq!(outcome.cases, 6 * 14);
}

/// A folder of the sizes around a cluster (0, 1, 4095, 4096, 4097 bytes and a few MiB), nested
/// folders, long and non-ASCII names and a read-only file.
fn exfat_source(root: &Path) {
    fs::create_dir_all(root.join("nested/deeper/deepest")).unwrap();
    fs::create_dir_all(root.join("ünïcödé 文字")).unwrap();
    for (name, len) in [
        ("empty", 0),
        ("one byte", 1),
        ("cluster-1.bin", 4095),
        ("cluster.bin", 4096),
        ("cluster+1.bin", 4097),
        ("nested/deeper/few MiB.bin", (3 << 20) + 17),
        ("nested/deeper/deepest/x.txt", 100),
        ("ünïcödé 文字/café ÜBER naïve.txt", 12),
        (
            "a name longer than fifteen characters, spread over several name entries.text",
            30,
        ),
    ] {
        fs::write(root.join(name), noise(len, len as u64 + 7)).unwrap();
    }
    let read_only = root.join("one byte");
    let mut perms = fs::metadata(&read_only).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(&read_only, perms).unwrap();
}

/// exFAT that dimg writes, from a folder and blank: fsck.exfat finds nothing wrong, and dimg
/// and exfat-fuse read back the folder's names, bytes and times. Names exFAT cannot tell apart
/// are refused by name.
#[test]
fn exfat_volumes_dimg_writes_pass_fsck_and_read_back_through_exfat_fuse() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    exfat_source(&src);
    std::os::unix::fs::symlink("cluster.bin", src.join("link")).unwrap();
    let image = dir.path().join("key.cdr");
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(&src),
        "-fs",
        "ExFAT",
        "-volname",
        "USB KEY",
        "-layout",
        "NONE",
        "-format",
        "UDTO",
        s(&image),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("a symlink to cluster.bin, not kept"),
        "{}",
        stdout(&o)
    );
    fs::remove_file(src.join("link")).unwrap();
    let want = snapshot(&src, true);
    let blank = dir.path().join("blank.cdr");
    let o = dimg(&[
        "create",
        "-size",
        "40m",
        "-fs",
        "ExFAT",
        "-layout",
        "NONE",
        "-format",
        "UDTO",
        s(&blank),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::metadata(&blank).unwrap().len(), 40 << 20);
    for (made, entries) in [
        (&image, "directories 5, files 9"),
        (&blank, "directories 1, files 0"),
    ] {
        let said = run("fsck.exfat", &["-n", s(made)]);
        assert!(said.contains(&format!("clean. {entries}")), "{said}");
    }

    let out = dir.path().join("out");
    extract(&image, &out);
    assert_same(&snapshot(&out, true), &want, "dimg's reader");
    // exfat-fuse shows every file writable; dimg keeps the read-only attribute.
    let read_only = fs::metadata(out.join("one byte")).unwrap().permissions();
    assert!(read_only.readonly(), "the read-only attribute");
    assert_eq!(volume_info(&image)["name"], "USB KEY");

    let point = dir.path().join("m");
    let mut mount = exfat_fuse(&image, &point, true);
    let seen = snapshot(&point, true);
    mount.unmount();
    assert_same(&seen, &want, "exfat-fuse");

    fs::write(src.join("EMPTY"), b"").unwrap();
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(&src),
        "-fs",
        "ExFAT",
        s(&dir.path().join("x.dmg")),
    ]);
    assert!(
        stderr(&o).contains("empty: differs from \"EMPTY\" only in case"),
        "{}",
        stderr(&o)
    );
}
