//! UDF read by dimg, judged by volumes other tools made: genisoimage -udf (UDF 1.02 bridge
//! discs, also read by 7-Zip), pycdlib (UDF 2.60 bridge discs with symbolic links) and mkudffs
//! (udftools: every revision from 1.02 to 2.60 on the media types that give physical, sparable,
//! virtual (VAT) and metadata partitions, whose figures udfinfo reads back). The UDF discs dimg
//! writes are read back by 7-Zip, udfinfo and dimg. Damaged copies are
//! clean errors or listings, never a panic, a hang or a runaway allocation.

mod common;
mod sweep;
use common::*;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

/// The readers' common tree (nesting, Latin-1 names, files of many blocks, a folder of many
/// entries), with what UDF adds: a name in 16-bit CS0 and an empty folder.
fn source(root: &Path, entries: usize) {
    fill(root, entries);
    fs::write(root.join("docs/\u{2603} snow \u{96ea}.txt"), "16-bit").unwrap();
    fs::create_dir(root.join("empty folder")).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    let f = fs::File::options()
        .write(true)
        .open(root.join("docs/\u{2603} snow \u{96ea}.txt"));
    f.unwrap().set_modified(when).unwrap();
}

fn genisoimage(src: &Path, image: &Path, label: &str) {
    peer(
        "genisoimage",
        &[
            "-quiet",
            "-input-charset",
            "utf-8",
            "-udf",
            "-R",
            "-J",
            "-V",
            label,
            "-o",
            s(image),
            s(src),
        ],
    );
}

/// A UDF 2.60 bridge disc pycdlib writes from `src` (files, folders and symbolic links); the
/// ISO 9660 side holds the same files under made-up names.
fn pycdlib(src: &Path, image: &Path) {
    let script = r#"
import io, os, sys, pycdlib
src, out = sys.argv[1], sys.argv[2]
iso = pycdlib.PyCdlib()
iso.new(udf='2.60', vol_ident='PY')
n = 0
for top, dirs, files in os.walk(src):
    dirs.sort(); files.sort()
    rel = os.path.relpath(top, src)
    base = '' if rel == '.' else '/' + rel
    for name in dirs + files:
        p, udf, n = os.path.join(top, name), base + '/' + name, n + 1
        if os.path.islink(p):
            iso.add_symlink(udf_symlink_path=udf, udf_target=os.readlink(p))
        elif os.path.isdir(p):
            iso.add_directory('/D%d' % n, udf_path=udf)
        else:
            data = open(p, 'rb').read()
            iso.add_fp(io.BytesIO(data), len(data), '/F%d.;1' % n, udf_path=udf)
iso.write(out)
"#;
    // Debian's pycdlib, whatever python3 comes first on the PATH.
    peer("/usr/bin/python3", &["-c", script, s(src), s(image)]);
}

/// What dimg lists, path by path: (kind, size).
fn listing(image: &Path, volume: Option<&str>) -> BTreeMap<String, (String, u64)> {
    let mut args = vec!["ls", "-R", "--json", s(image)];
    if let Some(v) = volume {
        args.extend(["--volume", v]);
    }
    let o = dimg(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let kind = e["kind"]["type"].as_str().unwrap().to_string();
            let size = match kind.as_str() {
                "directory" => 0,
                _ => e["size"].as_u64().unwrap(),
            };
            (e["name"].as_str().unwrap().to_string(), (kind, size))
        })
        .collect()
}

/// What 7-Zip lists of the image's UDF side.
fn seven_zip(image: &Path) -> BTreeMap<String, (String, u64)> {
    let out = peer("7zz", &["l", "-tudf", "-slt", s(image)]);
    let mut list = BTreeMap::new();
    for block in out.split("\n\n").filter(|b| b.contains("Path = ")) {
        let field = |name: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} = ")))
                .map(str::to_string)
        };
        if field("Type").is_some() {
            continue; // the archive's own block
        }
        let dir = field("Folder").as_deref() == Some("+");
        let size = field("Size").and_then(|v| v.parse().ok()).unwrap_or(0);
        let kind = if dir { "directory" } else { "file" };
        list.insert(
            field("Path").unwrap(),
            (kind.to_string(), if dir { 0 } else { size }),
        );
    }
    list
}

fn info_volumes(image: &Path) -> Vec<serde_json::Value> {
    let o = dimg(&["info", s(image), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    json["partitions"][0]["volumes"].as_array().unwrap().clone()
}

/// udfinfo's figures: label, bytes used, files, directories.
fn udfinfo(image: &Path) -> (String, u64, u64, u64) {
    let out = peer("udfinfo", &[s(image)]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("udfinfo gives no {name}: {out}"))
            .to_string()
    };
    let n = |name: &str| field(name).parse::<u64>().unwrap();
    (
        field("label"),
        n("usedblocks") * n("blocksize"),
        n("numfiles"),
        n("numdirs"),
    )
}

/// A UDF 1.02 bridge disc genisoimage made shows UDF's tree first: what 7-Zip lists, the
/// source's bytes and times when extracted, udfinfo's label, space used and counts; its ISO
/// 9660 side is the next volume, with the same tree through Rock Ridge.
#[test]
fn genisoimage_bridge_discs_read_as_their_source_and_as_7_zip_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source(&src, 300);
    let image = dir.path().join("bridge.iso");
    genisoimage(&src, &image, "BRIDGE");

    let udf = listing(&image, None);
    assert_eq!(udf, seven_zip(&image), "dimg's listing against 7-Zip's");
    let want = snapshot(&src, true);
    assert_eq!(udf.len(), want.len());

    let out = dir.path().join("out");
    let o = dimg(&["extract", s(&image), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(&snapshot(&out, true), &want, "the UDF side extracted");

    let (label, used, files, dirs) = udfinfo(&image);
    let volumes = info_volumes(&image);
    assert_eq!(volumes.len(), 2, "{volumes:#?}");
    assert_eq!(volumes[0]["name"], label.as_str());
    assert_eq!(volumes[0]["used"], used);
    assert_eq!(volumes[0]["counts"]["files"], files);
    assert_eq!(
        volumes[0]["counts"]["folders"],
        dirs - 1,
        "the root is not counted"
    );

    // The ISO 9660 side, through Rock Ridge: the same names and sizes.
    let iso = listing(&image, Some("0.1"));
    assert_eq!(iso, udf, "the ISO 9660 side");
}

/// A UDF 2.60 bridge disc pycdlib made (extended file entries, 16-bit names, symbolic links as
/// path components) extracts as its source: bytes, folders and link targets.
#[test]
fn pycdlib_udf_2_60_discs_extract_as_their_source_with_their_links() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source(&src, 100);
    std::os::unix::fs::symlink("frag-a.bin", src.join("link to big")).unwrap();
    std::os::unix::fs::symlink("../../README.txt", src.join("deep/1/2/up")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", src.join("docs/absolute")).unwrap();
    let image = dir.path().join("py.iso");
    pycdlib(&src, &image);
    let out = dir.path().join("out");
    let o = dimg(&["extract", s(&image), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // pycdlib 1.12 writes the month as the day of its timestamps: times are not compared. A
    // link that leaves the folder is listed, and extract leaves it out, as it does everywhere.
    let mut want = snapshot(&src, false);
    want.remove("docs/absolute");
    assert_same(&snapshot(&out, false), &want, "pycdlib's UDF 2.60");
    let o = dimg(&["ls", "-l", &format!("{}:/docs", s(&image))]);
    assert!(
        stdout(&o).contains("absolute -> /etc/hostname"),
        "{}",
        stdout(&o)
    );
    let udf = listing(&image, None);
    assert_eq!(
        udf.get("link to big"),
        Some(&("symlink".to_string(), "frag-a.bin".len() as u64)),
        "a link is as long as its target: {udf:#?}"
    );
    // The bridge's other side: UDF's volume first, as macOS mounts it, then ISO 9660's, where
    // pycdlib put every file and folder in the root under a made-up name.
    let volumes = info_volumes(&image);
    assert_eq!(volumes.len(), 2, "{volumes:#?}");
    assert_eq!(
        volumes[0]["name"],
        udfinfo(&image).0.as_str(),
        "UDF's label"
    );
    assert_eq!(volumes[1]["name"], "PY", "the primary volume descriptor's");
    let iso = listing(&image, Some("0.1"));
    let mut iso_sizes: Vec<(String, u64)> = iso.values().cloned().collect();
    let mut udf_sizes: Vec<(String, u64)> = udf
        .values()
        .filter(|(kind, _)| kind != "symlink")
        .cloned()
        .collect();
    iso_sizes.sort();
    udf_sizes.sort();
    assert_eq!(iso_sizes, udf_sizes, "the ISO 9660 side: {iso:#?}");
    assert!(iso.keys().all(|k| !k.contains('/')), "{iso:#?}");
}

/// mkudffs's volumes at every revision, on the media types that lay them out differently
/// (plain, sparable with its sparing tables, VAT on write-once media, the metadata partition
/// from 2.50): each opens with udfinfo's label, space used and counts, and lists the root as
/// 7-Zip does where 7-Zip reads the layout.
#[test]
fn mkudffs_volumes_of_every_revision_and_medium_open_as_udfinfo_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("hd", "1.02", "512"),
        ("hd", "1.50", "512"),
        ("hd", "2.01", "512"),
        ("hd", "2.01", "4096"),
        ("dvd", "2.01", "2048"),
        ("dvdram", "2.01", "2048"),
        ("cdrw", "1.50", "2048"),
        ("cdrw", "2.01", "2048"),
        ("cdr", "1.50", "2048"),
        ("cdr", "2.01", "2048"),
        ("cdr", "2.60", "2048"),
        ("dvdr", "2.50", "2048"),
        ("bdr", "2.50", "2048"),
        ("bdr", "2.60", "2048"),
    ];
    for (media, rev, block) in cases {
        let image = dir.path().join(format!("{media}-{rev}-{block}.img"));
        let label = format!("{media} {rev} \u{e9}");
        peer(
            "mkudffs",
            &[
                "--utf8",
                "--new-file",
                &format!("--media-type={media}"),
                &format!("--udfrev={rev}"),
                &format!("--blocksize={block}"),
                &format!("--label={label}"),
                s(&image),
                "20000",
            ],
        );
        let what = format!("mkudffs {media} {rev} {block}");
        let (udf_label, used, files, dirs) = udfinfo(&image);
        assert_eq!(udf_label, label, "{what}");
        let volumes = info_volumes(&image);
        assert_eq!(volumes.len(), 1, "{what}: {volumes:#?}");
        assert_eq!(volumes[0]["name"], label.as_str(), "{what}");
        assert_eq!(volumes[0]["used"], used, "{what}");
        assert_eq!(volumes[0]["counts"]["files"], files, "{what}");
        assert_eq!(volumes[0]["counts"]["folders"], dirs - 1, "{what}");
        let list = listing(&image, None);
        assert_eq!(list.len() as u64, files + dirs - 1, "{what}: {list:#?}");
        let o = Command::new("7zz")
            .args(["l", "-tudf", s(&image)])
            .output()
            .unwrap();
        if o.status.success() {
            assert_eq!(list, seven_zip(&image), "{what}: against 7-Zip");
        }
    }
}

/// Damaged copies of UDF volumes of every layout (cut, zeroed, bytes flipped where the
/// structures are), and a folder made its own ancestor: every command ends with a result or a
/// clean error, never a panic, a hang or a runaway allocation.
#[test]
fn damaged_udf_copies_are_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source(&src, 60);
    let mut images: Vec<(String, Vec<u8>)> = Vec::new();
    let bridge = dir.path().join("bridge.iso");
    genisoimage(&src, &bridge, "B");
    images.push(("genisoimage".into(), fs::read(&bridge).unwrap()));
    let py = dir.path().join("py.iso");
    pycdlib(&src, &py);
    images.push(("pycdlib".into(), fs::read(&py).unwrap()));
    for (media, rev) in [
        ("cdr", "2.01"),
        ("bdr", "2.50"),
        ("cdrw", "1.50"),
        ("hd", "2.01"),
    ] {
        let image = dir.path().join(format!("{media}.img"));
        peer(
            "mkudffs",
            &[
                "--new-file",
                &format!("--media-type={media}"),
                &format!("--udfrev={rev}"),
                s(&image),
                "3000",
            ],
        );
        images.push((format!("mkudffs {media}"), fs::read(&image).unwrap()));
    }
    let dimg_bin = Path::new(env!("CARGO_BIN_EXE_dimg"));
    let mut outcome = sweep::browse_damaged(dimg_bin, &images, 14, 3, dir.path(), "damaged.iso");
    assert_eq!(outcome.cases, 6 * 14);
    // A folder whose identifier names the root: a cycle the listing must not follow forever.
    let mut cycle = fs::read(&bridge).unwrap();
    make_ancestor(&mut cycle, "deep", "1");
    let image = dir.path().join("cycle.iso");
    fs::write(&image, &cycle).unwrap();
    let out = dir.path().join("out");
    outcome
        .failures
        .extend(sweep::browse(dimg_bin, &image, &out, "a cycle"));
    assert!(outcome.failures.is_empty(), "{:#?}", outcome.failures);
    // The cycle is cut where it closes: the tree lists, and the folder's contents once.
    let list = listing(&image, None);
    assert!(list.contains_key("deep/1"), "{list:#?}");
    assert!(
        !list.keys().any(|k| k.starts_with("deep/1/deep")),
        "{list:#?}"
    );
}

/// Points the file identifier of folder `child` (in folder `parent`, in the root) at the root
/// folder's ICB, its tag's CRC and checksum made whole again: the UDF tree gets a cycle.
fn make_ancestor(image: &mut [u8], parent: &str, child: &str) {
    let tag_id = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    // Identifiers are found by their 8-bit names: each FID whose name is `child` or `parent`,
    // and the root's ICB from the identifier of `parent` (the root's parent entry is another).
    let fid_named = |b: &[u8], name: &str| -> Vec<usize> {
        let mut at = Vec::new();
        for i in (0..b.len() - 40).step_by(4) {
            if tag_id(b, i) == 257 && b[i + 19] as usize == name.len() + 1 {
                let l_iu = u16::from_le_bytes([b[i + 36], b[i + 37]]) as usize;
                let n = &b[i + 38 + l_iu..i + 38 + l_iu + name.len() + 1];
                if n[0] == 8 && &n[1..] == name.as_bytes() {
                    at.push(i);
                }
            }
        }
        at
    };
    let parent_fid = fid_named(image, parent)[0];
    // The root is the parent entry (characteristics bit 3) of `parent`'s own directory: found
    // as any identifier with the parent bit that lies in the root's directory block, which
    // holds `parent`'s identifier.
    let block = parent_fid / 2048 * 2048;
    let root_icb = (block..parent_fid)
        .step_by(4)
        .find(|&i| tag_id(image, i) == 257 && image[i + 18] & 8 != 0)
        .map(|i| image[i + 20..i + 36].to_vec())
        .expect("the root's parent entry");
    for at in fid_named(image, child) {
        image[at + 20..at + 36].copy_from_slice(&root_icb);
        let len = (38
            + u16::from_le_bytes([image[at + 36], image[at + 37]]) as usize
            + image[at + 19] as usize
            + 3)
            & !3;
        dimg::fs::udf::seal_tag(&mut image[at..at + len]);
    }
}

/// A UDF 1.02 disc dimg writes (`makehybrid -udf`, `create -fs UDF`), and a 2.01 one, read back
/// as their source:
/// 7-Zip lists what dimg lists and extracts the same bytes and times, udfinfo reads its label,
/// revision and counts without complaint, and dimg extracts the source. Symlinks are left out
/// and said so.
#[test]
fn udf_discs_dimg_writes_read_back_through_7_zip_and_udfinfo() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source(&src, 300);
    for (name, len) in [
        ("block-1", 2047),
        ("block", 2048),
        ("block+1", 2049),
        ("one", 1),
        ("few MiB.bin", (3 << 20) + 5),
    ] {
        fs::write(src.join(name), noise(len, len as u64)).unwrap();
    }
    std::os::unix::fs::symlink("block", src.join("link")).unwrap();
    let image = dir.path().join("disc.iso");
    let o = dimg(&[
        "makehybrid",
        "-udf",
        "-o",
        s(&image),
        "-default-volume-name",
        "DIMG DISC",
        s(&src),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("link: a symlink to block, not kept"),
        "{}",
        stdout(&o)
    );
    fs::remove_file(src.join("link")).unwrap();
    let want = snapshot(&src, true);

    let listed = listing(&image, None);
    assert_eq!(listed, seven_zip(&image), "dimg's listing against 7-Zip's");
    assert_eq!(listed.len(), want.len());
    let by_7z = dir.path().join("7z");
    peer(
        "7zz",
        &["x", "-tudf", &format!("-o{}", s(&by_7z)), s(&image)],
    );
    assert_same(&snapshot(&by_7z, true), &want, "7-Zip's extraction");
    let out = dir.path().join("out");
    let o = dimg(&["extract", s(&image), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(&snapshot(&out, true), &want, "dimg's extraction");

    let said = peer("udfinfo", &[s(&image)]);
    assert!(said.contains("udfrev=1.02"), "{said}");
    assert!(said.contains("integrity=closed"), "{said}");
    let (label, used, files, dirs) = udfinfo(&image);
    assert_eq!(label, "DIMG DISC");
    let folders = want.values().filter(|e| e.0 == 'd').count() as u64;
    assert_eq!((files, dirs), (want.len() as u64 - folders, folders + 1));
    let volumes = info_volumes(&image);
    assert_eq!(volumes[0]["name"], "DIMG DISC");
    assert_eq!(volumes[0]["used"], used);

    // create -fs UDF makes the same kind of disc.
    let created = dir.path().join("created.cdr");
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(&src),
        "-fs",
        "UDF",
        "-format",
        "UDTO",
        s(&created),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(&created, None), listed);
    assert_eq!(udfinfo(&created).0, "src");

    // UDF 2.01: NSR03 and version 3 tags, read the same.
    let newer = dir.path().join("2.01.iso");
    let o = dimg(&[
        "makehybrid",
        "-udf",
        "-udf-version",
        "2.01",
        "-o",
        s(&newer),
        s(&src),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = peer("udfinfo", &[s(&newer)]);
    assert!(said.contains("udfrev=2.01"), "{said}");
    assert_eq!(seven_zip(&newer), listed, "7-Zip's listing of UDF 2.01");
    let out = dir.path().join("out 2.01");
    let o = dimg(&["extract", s(&newer), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(&snapshot(&out, true), &want, "UDF 2.01 extracted");
}
