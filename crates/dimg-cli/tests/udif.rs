//! UDIF (.dmg) reading through the `dimg` binary: real images against their ground truth, the
//! legacy resource fork, and damaged images made from real ones.

mod common;
use common::*;

use dimg_e2e::{corpus, sha256sum, truths};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `dimg` under a 1 GiB address-space limit: an allocation sized by a damaged field fails the run.
fn dimg_capped(args: &[&str]) -> Output {
    Command::new("prlimit")
        .arg("--as=1073741824")
        .arg(env!("CARGO_BIN_EXE_dimg"))
        .args(args)
        .output()
        .expect("prlimit (util-linux) runs dimg")
}

fn convert_to_raw(image: &Path, out: &Path, flags: &[&str]) -> Output {
    let mut args = vec![
        "convert",
        image.to_str().unwrap(),
        "-format",
        "UDTO",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend(flags);
    dimg(&args)
}

#[test]
fn every_corpus_dmg_converts_to_its_ground_truth_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for t in truths().iter().filter(|t| t.kind == "dmg") {
        let out = dir.path().join(format!("{checked}.cdr"));
        // Encrypted images get their published passphrase on standard input.
        let run = |args: &[&str]| match &t.passphrase {
            Some(p) => dimg_stdin(&[args, &["-stdinpass"]].concat(), p.as_bytes()),
            None => dimg(args),
        };
        let o = run(&["convert", s(&t.path()), "-format", "UDTO", "-o", s(&out)]);
        assert!(o.status.success(), "{}: {}", t.file, stderr(&o));
        assert_eq!(Some(sha256sum(&out)), t.sha256, "{}", t.file);
        let v = run(&["verify", "--json", s(&t.path())]);
        assert!(v.status.success(), "{}: {}", t.file, stderr(&v));
        let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
        assert_eq!(report["sha256"].as_str(), t.sha256.as_deref());
        let checks = report["checks"].as_array().unwrap();
        assert!(
            checks.len() >= 2,
            "{}: the blkx and master checksums are checked",
            t.file
        );
        assert!(
            checks.iter().all(|c| c["ok"] == true),
            "{}: {checks:?}",
            t.file
        );
        checked += 1;
    }
    assert!(checked >= 10, "{checked} DMGs in the corpus");
}

#[test]
fn info_names_the_variant_and_the_partitions() {
    let cases = [
        ("dmgwiz-zlib.dmg", "UDZO"),
        ("dmgwiz-ro.dmg", "UDRO"),
        ("dmgwiz-adc.dmg", "UDCO"),
        ("dmgwiz-bzip2.dmg", "UDBZ"),
        ("dmgwiz-lzfse.dmg", "ULFO"),
        ("dmgwiz-lzma.dmg", "ULMO"),
    ];
    for (file, variant) in cases {
        let o = dimg(&[
            "info",
            "--json",
            corpus().join("dmg").join(file).to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["format"], "Apple UDIF disk image");
        assert_eq!(v["disk_size"], 10_510_336);
        let facts = v["facts"].as_array().unwrap();
        let fact = |label: &str| -> Vec<String> {
            facts
                .iter()
                .filter(|f| f["label"] == label)
                .map(|f| f["value"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(
            fact("Variant")[0].starts_with(variant),
            "{file}: {:?}",
            fact("Variant")
        );
        let blkx = fact("blkx");
        assert_eq!(blkx.len(), 8, "{file}");
        assert!(
            blkx[4].contains("disk image (Apple_APFS : 4) — sectors 40+20448"),
            "{file}: {blkx:?}"
        );
    }
}

/// The trailer fields a test rewrites.
struct Trailer {
    at: usize,
}

impl Trailer {
    fn of(image: &[u8]) -> Self {
        let at = image.len() - 512;
        assert_eq!(&image[at..at + 4], b"koly");
        Trailer { at }
    }
    fn u64_at(&self, image: &[u8], field: usize) -> u64 {
        u64::from_be_bytes(
            image[self.at + field..self.at + field + 8]
                .try_into()
                .unwrap(),
        )
    }
    fn set_u64(&self, image: &mut [u8], field: usize, v: u64) {
        image[self.at + field..self.at + field + 8].copy_from_slice(&v.to_be_bytes());
    }
}

const XML_OFFSET: usize = 0xD8;
const XML_LENGTH: usize = 0xE0;
const SECTOR_COUNT: usize = 0x1EC;

/// Rewrites a real image's block tables: `edit` gets each blkx resource's Data (a mish table).
/// The data fork stays; a new property list and trailer follow it.
fn repack(image: &[u8], edit: impl Fn(usize, &mut Vec<u8>)) -> Vec<u8> {
    let k = Trailer::of(image);
    let (xo, xl) = (
        k.u64_at(image, XML_OFFSET) as usize,
        k.u64_at(image, XML_LENGTH) as usize,
    );
    let mut plist = plist::Value::from_reader_xml(&image[xo..xo + xl]).unwrap();
    let blkx = plist.as_dictionary_mut().unwrap()["resource-fork"]
        .as_dictionary_mut()
        .unwrap()["blkx"]
        .as_array_mut()
        .unwrap();
    for (n, entry) in blkx.iter_mut().enumerate() {
        let data = entry.as_dictionary_mut().unwrap().get_mut("Data").unwrap();
        let mut bytes = data.as_data().unwrap().to_vec();
        edit(n, &mut bytes);
        *data = plist::Value::Data(bytes);
    }
    let mut xml = Vec::new();
    plist.to_writer_xml(&mut xml).unwrap();
    let mut out = image[..xo].to_vec();
    out.extend_from_slice(&xml);
    let mut trailer = image[k.at..].to_vec();
    trailer[XML_OFFSET..XML_OFFSET + 8].copy_from_slice(&(xo as u64).to_be_bytes());
    trailer[XML_LENGTH..XML_LENGTH + 8].copy_from_slice(&(xml.len() as u64).to_be_bytes());
    out.extend_from_slice(&trailer);
    out
}

/// The mish entry of chunk `n`: type, sector start, sector count, offset, length.
fn chunk_field(table: &mut [u8], n: usize, field: usize) -> &mut [u8] {
    let at = 204 + 40 * n + field;
    &mut table[at..at + if field == 0 { 4 } else { 8 }]
}

fn first_chunk_of_type(table: &[u8], t: u32) -> Option<usize> {
    let count = u32::from_be_bytes(table[200..204].try_into().unwrap()) as usize;
    (0..count).find(|&n| table[204 + 40 * n..208 + 40 * n] == t.to_be_bytes())
}

#[test]
fn the_legacy_binary_resource_fork_is_read_when_there_is_no_property_list() {
    let t = truths()
        .into_iter()
        .find(|t| t.file.ends_with("non_null_data_offset.dmg"))
        .unwrap();
    let mut image = fs::read(t.path()).unwrap();
    let k = Trailer::of(&image);
    assert!(
        k.u64_at(&image, 0x30) > 0,
        "this 2003 image also carries a binary resource fork"
    );
    k.set_u64(&mut image, XML_LENGTH, 0);
    let dir = tempfile::tempdir().unwrap();
    let stub = dir.path().join("stub.dmg");
    fs::write(&stub, &image).unwrap();
    let info = dimg(&["info", stub.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("binary resource fork"));
    let out = dir.path().join("stub.cdr");
    let o = convert_to_raw(&stub, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(Some(sha256sum(&out)), t.sha256);
}

fn corpus_dmg(name: &str) -> Vec<u8> {
    fs::read(corpus().join("dmg").join(name)).unwrap()
}

/// Damaged copies of real images, and what the one-line error must name.
fn damaged() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let zlib = corpus_dmg("dmgwiz-zlib.dmg");
    let k = Trailer::of(&zlib);
    let mut cases = Vec::new();

    let mut cut = zlib.clone();
    cut.drain(..4096);
    cases.push(("front cut off", cut, "UDIF koly trailer"));
    let mut v = zlib.clone();
    v[k.at + 7] = 5;
    cases.push(("koly version 5", v, "version 5 (expected 4)"));
    let mut v = zlib.clone();
    k.set_u64(&mut v, SECTOR_COUNT, u64::MAX / 3);
    cases.push(("absurd disk size", v, "sector count"));
    let mut v = zlib.clone();
    k.set_u64(&mut v, SECTOR_COUNT, 10);
    cases.push((
        "disk smaller than its chunks",
        v,
        "runs past the disk's 10 sectors",
    ));
    let mut v = zlib.clone();
    let xml = k.u64_at(&zlib, XML_OFFSET) as usize;
    v[xml + 300..xml + 340].fill(b'<');
    cases.push(("garbled property list", v, "UDIF property list"));
    let mut v = zlib.clone();
    k.set_u64(&mut v, XML_LENGTH, 1 << 40);
    cases.push(("property list past the end", v, "property list"));

    // An edit for `repack`: sets a field of each table's first zlib chunk.
    let first_zlib_chunk = |field: usize, value: u64| {
        move |_: usize, t: &mut Vec<u8>| {
            if let Some(n) = first_chunk_of_type(t, 0x8000_0005) {
                chunk_field(t, n, field).copy_from_slice(&value.to_be_bytes());
            }
        }
    };
    cases.push((
        "chunk past the data fork",
        repack(&zlib, first_zlib_chunk(24, 1 << 40)),
        "points past the end of the data fork",
    ));
    cases.push((
        "absurd chunk sector count",
        repack(&zlib, first_zlib_chunk(16, 1 << 50)),
        "runs past the table's",
    ));
    cases.push((
        "unknown chunk type",
        repack(&zlib, |i, t| {
            if i == 3 {
                chunk_field(t, 0, 0).copy_from_slice(&0x1234_5678u32.to_be_bytes());
            }
        }),
        "unknown type 0x12345678",
    ));
    cases.push((
        "mish table of the wrong length",
        repack(&zlib, |i, t| {
            if i == 0 {
                t.truncate(t.len() - 3);
            }
        }),
        "UDIF mish block table",
    ));
    cases
}

#[test]
fn damaged_images_get_a_clear_error_naming_the_structure() {
    let dir = tempfile::tempdir().unwrap();
    for (what, bytes, expect) in damaged() {
        let path = dir.path().join("damaged.dmg");
        fs::write(&path, &bytes).unwrap();
        for verb in [
            &["info"][..],
            &["verify"],
            &["convert", "-format", "UDTO", "-o", "/nonexistent/x"],
        ] {
            let mut args = vec![verb[0], path.to_str().unwrap()];
            args.extend(&verb[1..]);
            let o = dimg_capped(&args);
            let e = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{what}, {verb:?}: {e}");
            assert_eq!(e.lines().count(), 1, "{what}: {e}");
            assert!(
                e.contains("damaged.dmg") && e.contains(expect),
                "{what}, {verb:?}: want {expect:?} in {e}"
            );
        }
    }
}

/// Flips bytes in the middle of the first compressed chunk of each codec's image.
#[test]
fn corrupt_compressed_data_is_an_error_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    for (file, t, codec) in [
        ("dmgwiz-zlib.dmg", 0x8000_0005u32, "zlib"),
        ("dmgwiz-bzip2.dmg", 0x8000_0006, "bzip2"),
        ("dmgwiz-lzfse.dmg", 0x8000_0007, "LZFSE"),
        ("dmgwiz-lzma.dmg", 0x8000_0008, "LZMA"),
        ("dmgwiz-adc.dmg", 0x8000_0004, "ADC"),
    ] {
        let mut image = corpus_dmg(file);
        let k = Trailer::of(&image);
        // The APFS partition's table (blkx 4) holds the real data chunks.
        let (xo, xl) = (
            k.u64_at(&image, XML_OFFSET) as usize,
            k.u64_at(&image, XML_LENGTH) as usize,
        );
        let plist = plist::Value::from_reader_xml(&image[xo..xo + xl]).unwrap();
        let table = plist.as_dictionary().unwrap()["resource-fork"]
            .as_dictionary()
            .unwrap()["blkx"]
            .as_array()
            .unwrap()[4]
            .as_dictionary()
            .unwrap()["Data"]
            .as_data()
            .unwrap()
            .to_vec();
        let n = first_chunk_of_type(&table, t).expect("a compressed chunk");
        let at = 204 + 40 * n;
        let offset = u64::from_be_bytes(table[at + 24..at + 32].try_into().unwrap()) as usize;
        let length = u64::from_be_bytes(table[at + 32..at + 40].try_into().unwrap()) as usize;
        for b in &mut image[offset + length / 3..offset + length / 3 + 16] {
            *b ^= 0x5A;
        }
        let case = dir.path().join(codec);
        fs::create_dir(&case).unwrap();
        let path = case.join(file);
        fs::write(&path, &image).unwrap();
        let out: PathBuf = case.join("out.cdr");
        let o = dimg_capped(&[
            "convert",
            path.to_str().unwrap(),
            "-format",
            "UDTO",
            "-o",
            out.to_str().unwrap(),
        ]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{file}: {e}");
        assert!(e.contains("UDIF chunk") && e.contains(codec), "{file}: {e}");
        let left: Vec<_> = fs::read_dir(&case)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left.len(),
            1,
            "{file}: only the damaged image remains, not {left:?}"
        );
    }
}

#[test]
fn checksum_mismatches_fail_verify_and_name_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    // A wrong stored CRC for the APFS partition.
    let zlib = repack(&corpus_dmg("dmgwiz-zlib.dmg"), |i, t| {
        if i == 4 {
            t[0x48] ^= 0xFF;
        }
    });
    // A changed byte in a raw chunk of a UDRO image: its partition and the data fork both fail.
    let mut ro = corpus_dmg("dmgwiz-ro.dmg");
    ro[20 * 1024 + 100] ^= 1;
    for (name, bytes, failed) in [
        (
            "crc.dmg",
            zlib,
            vec!["blkx 3 'disk image (Apple_APFS : 4)' CRC32", "master CRC32"],
        ),
        ("flip.dmg", ro, vec!["data fork CRC32"]),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, &bytes).unwrap();
        let o = dimg(&["verify", "--json", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["ok"], false);
        let bad: Vec<&str> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["ok"] == false)
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for f in &failed {
            assert!(
                bad.iter().any(|b| b == f),
                "{name}: {f} should fail, failed: {bad:?}"
            );
        }
        assert!(stderr(&o).contains("checksum mismatch"), "{}", stderr(&o));
    }
}

#[test]
fn convert_refuses_to_overwrite_the_source_or_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.dmg");
    fs::copy(corpus().join("dmg/dmgwiz-zlib.dmg"), &src).unwrap();
    let before = fs::read(&src).unwrap();
    let o = convert_to_raw(&src, &src, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is the source image itself"),
        "{}",
        stderr(&o)
    );
    let link = dir.path().join("hard.cdr");
    fs::hard_link(&src, &link).unwrap();
    let o = convert_to_raw(&src, &link, &["-ov"]);
    assert!(
        stderr(&o).contains("is the source image itself"),
        "a hard link is the source too: {}",
        stderr(&o)
    );
    assert_eq!(fs::read(&src).unwrap(), before, "the source is untouched");

    let existing = dir.path().join("exists.cdr");
    fs::write(&existing, b"keep me").unwrap();
    let o = convert_to_raw(&src, &existing, &[]);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(fs::read(&existing).unwrap(), b"keep me");
    let o = convert_to_raw(&src, &existing, &["-ov"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::metadata(&existing).unwrap().len(), 10_510_336);
}

#[test]
fn encrypted_images_need_the_right_passphrase_and_never_show_it() {
    let t = truths()
        .into_iter()
        .find(|t| t.passphrase.is_some())
        .expect("an encrypted image");
    let image = t.path();
    let pass = t.passphrase.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let none = dimg_stdin(&["info", s(&image)], b"");
    assert_eq!(none.status.code(), Some(1));
    assert!(
        stderr(&none).contains("the image is encrypted: a passphrase is needed"),
        "{}",
        stderr(&none)
    );
    let wrong = dimg_stdin(&["info", s(&image), "-stdinpass"], b"hunter2-not-it");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).trim_end().ends_with("wrong passphrase"),
        "{}",
        stderr(&wrong)
    );
    // `echo pass |` adds a newline; it still unlocks.
    let echoed = dimg_stdin(
        &["info", "--json", s(&image), "-stdinpass"],
        format!("{pass}\n").as_bytes(),
    );
    assert!(echoed.status.success(), "{}", stderr(&echoed));
    let v: serde_json::Value = serde_json::from_slice(&echoed.stdout).unwrap();
    assert_eq!(v["format"], "Apple encrypted disk image");

    // Damage is not a wrong passphrase: a bad version, and a cut-off file, name the header.
    let bytes = fs::read(&image).unwrap();
    let mut bad_version = bytes.clone();
    bad_version[11] = 9;
    let cut = bytes[..bytes.len() / 2].to_vec();
    for (name, damaged, expect) in [
        ("v.dmg", bad_version, "version 9 (expected 2)"),
        ("cut.dmg", cut, "truncated"),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, damaged).unwrap();
        let o = dimg_stdin(&["info", s(&path), "-stdinpass"], pass.as_bytes());
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(
            stderr(&o).contains("encrcdsa header") && stderr(&o).contains(expect),
            "{name}: {}",
            stderr(&o)
        );
    }

    // The passphrase appears in no output, and in no file dimg leaves behind.
    let out = dir.path().join("plain.dmg");
    let mut said = Vec::new();
    for args in [
        vec!["info", s(&image), "-stdinpass"],
        vec!["verify", s(&image), "-stdinpass"],
        vec![
            "convert",
            s(&image),
            "-format",
            "UDZO",
            "-o",
            s(&out),
            "-stdinpass",
        ],
    ] {
        let o = dimg_stdin(&args, pass.as_bytes());
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        said.extend(o.stdout);
        said.extend(o.stderr);
    }
    assert!(!String::from_utf8_lossy(&said).contains(&pass));
    for entry in fs::read_dir(dir.path()).unwrap() {
        let contents = fs::read(entry.unwrap().path()).unwrap();
        assert!(!contents.windows(pass.len()).any(|w| w == pass.as_bytes()));
    }
}

/// hdiutil on a Japanese-locale Mac writes each blkx Name as its UTF-8 read as MacRoman; CFName
/// holds the text, and is what info shows.
#[test]
fn partition_names_come_from_cfname() {
    let image = dimg_e2e::corpus().join("dmg/kaitokit-hfs-zlib.dmg");
    let info = stdout(&dimg(&["info", image.to_str().unwrap()]));
    assert!(info.contains("disk image（Apple_HFS: 4）"), "{info}");
    assert!(!info.contains("Ôº"), "{info}");
}
