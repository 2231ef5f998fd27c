//! Images read where they live (issue #35): an `http://` URL goes everywhere a path does, read by
//! range requests from a local server (tests/judges/range_server.py) — against the corpus's
//! ground truth and the same image read from its file; servers that cannot serve an image are
//! named in one line.

mod common;

use common::{dimg, dimg_stdin, noise, s, stderr, stdout};
use dimg_e2e::RangeServer;
use std::fs;
use std::path::{Path, PathBuf};

/// A folder to serve holding copies of corpus images, by their corpus names' last part.
fn served(dir: &Path, files: &[&str]) -> PathBuf {
    let folder = dir.join("served");
    fs::create_dir(&folder).unwrap();
    for file in files {
        let name = Path::new(file).file_name().unwrap();
        fs::copy(dimg_e2e::corpus().join(file), folder.join(name)).unwrap();
    }
    folder
}

fn ok(o: &std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}", stderr(o));
    stdout(o)
}

fn sha256_of(path: &Path) -> String {
    dimg_e2e::sha256_bytes(&fs::read(path).unwrap())
}

/// `info`, `ls` (into the volume and on into a folder), `extract`, `convert` and `verify` of a
/// UDZO by URL give what its file gives and what its ground truth lists; an encrypted image by
/// URL opens with its passphrase and decodes to the corpus's disk.
#[test]
fn an_image_at_a_url_reads_as_its_file_does() {
    let dir = tempfile::tempdir().unwrap();
    let folder = served(
        dir.path(),
        &["dmg/kaitokit-hfs-zlib.dmg", "dmg/dmgwiz-aes256.dmg"],
    );
    let server = RangeServer::start(&folder, "ranges");
    let (file, url) = (
        folder.join("kaitokit-hfs-zlib.dmg"),
        server.url("kaitokit-hfs-zlib.dmg"),
    );
    let local = s(&file);
    for args in [
        &["ls", "-R"][..],
        &["ls", "-l"],
        &["checksum", "-type", "SHA256"],
        &["verify"],
    ] {
        let by_file = ok(&dimg(&[args, &[local]].concat()), local);
        let by_url = ok(&dimg(&[args, &[url.as_str()]].concat()), &url);
        assert_eq!(by_url, by_file.replace(local, &url), "{args:?}");
    }
    let info = ok(&dimg(&["info", &url]), &url);
    assert!(info.contains("UDZO (zlib-compressed)"), "{info}");
    let sub = format!("{url}:/sub");
    assert_eq!(
        ok(&dimg(&["ls", &sub]), &sub),
        ok(&dimg(&["ls", &format!("{local}:/sub")]), local)
    );
    // Every file as the ground truth has it (resource forks, kept as extended attributes where
    // the folder's file system keeps them, are judged by the browse tests).
    let out = dir.path().join("x");
    ok(&dimg(&["extract", &url, "-o", s(&out)]), &url);
    let truth =
        fs::read_to_string(dimg_e2e::corpus().join("expected-files/kaitokit-hfs-zlib.dmg.tsv"))
            .unwrap();
    let mut checked = 0;
    for line in truth
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains(":rsrc"))
    {
        let f: Vec<&str> = line.split('\t').collect();
        let path = out.join(f[0].strip_prefix("KaitoTest/").unwrap());
        assert_eq!(sha256_of(&path), f[2], "{}", f[0]);
        checked += 1;
    }
    assert!(checked >= 8, "{checked} files");
    let (raw_url, raw_file) = (dir.path().join("u.cdr"), dir.path().join("f.cdr"));
    ok(
        &dimg(&["convert", &url, "-format", "UDTO", "-o", s(&raw_url)]),
        &url,
    );
    ok(
        &dimg(&["convert", local, "-format", "UDTO", "-o", s(&raw_file)]),
        local,
    );
    assert_eq!(sha256_of(&raw_url), sha256_of(&raw_file));

    let truth = dimg_e2e::truths()
        .into_iter()
        .find(|t| t.file == "dmg/dmgwiz-aes256.dmg")
        .unwrap();
    let secret = server.url("dmgwiz-aes256.dmg");
    let raw = dir.path().join("secret.cdr");
    let o = dimg_stdin(
        &[
            "convert",
            &secret,
            "-stdinpass",
            "-format",
            "UDTO",
            "-o",
            s(&raw),
        ],
        truth.passphrase.as_deref().unwrap().as_bytes(),
    );
    ok(&o, &secret);
    assert_eq!(Some(sha256_of(&raw)), truth.sha256);
}

/// Listing the volume of a 48 MiB UDZO by URL reads a small part of it: the trailer, the block
/// tables and the chunks holding the catalog, not the files' data. Read whole (checksum, verify),
/// it gives what its file gives.
#[test]
fn listing_an_image_by_url_reads_little_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("noise.bin"), noise(48 << 20, 7)).unwrap();
    for k in 0..200 {
        fs::write(src.join(format!("note {k}.txt")), format!("note {k}\n")).unwrap();
    }
    let folder = dir.path().join("served");
    fs::create_dir(&folder).unwrap();
    let image = folder.join("big.dmg");
    ok(
        &dimg(&[
            "create",
            "-srcfolder",
            s(&src),
            "-format",
            "UDZO",
            s(&image),
        ]),
        "create",
    );
    let size = fs::metadata(&image).unwrap().len();
    let server = RangeServer::start(&folder, "ranges");
    let listed = ok(&dimg(&["ls", &server.url("big.dmg")]), "ls");
    assert_eq!(listed.lines().count(), 201, "{listed}");
    let read = server.served();
    assert!(
        read * 20 < size,
        "listing read {read} bytes of a {size}-byte image"
    );
    // Read whole, in order (the blocks ahead fetched in the background): the same bytes.
    let url = server.url("big.dmg");
    for what in [&["checksum", "-type", "SHA256"][..], &["verify"]] {
        let by_url = ok(&dimg(&[what, &[url.as_str()]].concat()), &url);
        let by_file = ok(&dimg(&[what, &[s(&image)]].concat()), "file");
        assert_eq!(by_url, by_file.replace(s(&image), &url), "{what:?}");
    }
}

/// A server that ignores ranges, a file that changes while it is read, a missing file: each is
/// one line naming the URL and what is wrong, and nothing is written.
#[test]
fn servers_that_cannot_serve_an_image_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = served(dir.path(), &["dmg/kaitokit-hfs-zlib.dmg"]);
    let name = "kaitokit-hfs-zlib.dmg";
    let whole = RangeServer::start(&folder, "whole");
    let changing = RangeServer::start(&folder, "changing");
    let out = dir.path().join("out");
    for (url, args, says) in [
        (whole.url(name), vec!["info"], "does not serve byte ranges"),
        (
            changing.url(name),
            vec!["extract", "-o", s(&out)],
            "changed on the server while it was being read",
        ),
        (whole.url("missing.dmg"), vec!["info"], "answered 404"),
    ] {
        let mut all = vec![args[0], url.as_str()];
        all.extend(&args[1..]);
        let o = dimg(&all);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{url}: {err}");
        assert!(
            err.starts_with(&format!("dimg: {url}: ")) && err.contains(says),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!out.exists(), "{url}: something was extracted");
    }
}
