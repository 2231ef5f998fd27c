//! Installer packages and `.xip` archives (XAR) browsed as volumes, judged by libarchive's bsdtar
//! (the XAR and the cpio inside), Python's lzma (pbzx) and 7-Zip. The packages are built by
//! tests/judges/make_pkg.py from the format, as xar and mkbom are not in Debian.

mod common;
use common::*;

use std::fs;
use std::path::{Path, PathBuf};

/// What a payload installs: nesting, an empty file, an incompressible file, a symlink, a hard
/// link, a set time.
fn payload_tree(root: &Path) {
    for (path, bytes) in [
        ("bin/tool", b"#!/bin/sh\necho tool\n".to_vec()),
        ("share/doc/blob", noise(300_000, 7)),
        ("share/doc/text", b"abc".repeat(100_000)),
        ("empty", Vec::new()),
    ] {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
    }
    std::os::unix::fs::symlink("../bin/tool", root.join("share/link")).unwrap();
    fs::hard_link(root.join("bin/tool"), root.join("share/hard")).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    for entry in walk(root).into_iter().filter(|e| !e.is_symlink()) {
        let f = fs::File::options()
            .write(!entry.is_dir())
            .read(entry.is_dir())
            .open(&entry)
            .unwrap();
        f.set_modified(when).unwrap();
    }
}

fn make_pkg(out: &Path, payload: &Path, args: &[&str]) {
    let o = judge_script("make_pkg.py")
        .args([s(out), "--payload", s(payload)])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "make_pkg.py {args:?}: {}", stderr(&o));
}

/// A package `name` made by make_pkg.py with `args` from a fresh payload tree, in a new folder.
fn package(name: &str, args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    payload_tree(&src);
    let pkg = dir.path().join(name);
    make_pkg(&pkg, &src, args);
    (dir, pkg)
}

/// The files bsdtar takes out of `archive` into the new folder `into`.
fn bsdtar_extract(archive: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    peer("bsdtar", &["-xf", s(archive), "-C", s(into)]);
}

/// What a payload installs, as the judges decode it: pbzx by Python's lzma, then bsdtar (which
/// reads gzip itself).
fn payload_truth(payload: &Path, into: &Path) {
    let cpio = payload.with_extension("cpio");
    match fs::read(payload).unwrap().starts_with(b"pbzx") {
        true => {
            let o = judge_script("pbzx_decode.py")
                .args([s(payload), s(&cpio)])
                .output()
                .unwrap();
            assert!(o.status.success(), "pbzx_decode.py: {}", stderr(&o));
        }
        false => fs::copy(payload, &cpio).map(|_| ()).unwrap(),
    }
    bsdtar_extract(&cpio, into);
}

/// Every path 7-Zip lists in the XAR `archive`, its table of contents left out.
fn seven_zip_paths(archive: &Path) -> Vec<String> {
    let listing = peer("7zz", &["l", "-slt", "-txar", s(archive)]);
    let mut paths: Vec<String> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("Path = "))
        .skip(1) // the archive itself
        .filter(|p| *p != "[TOC].xml")
        .map(String::from)
        .collect();
    paths.sort();
    paths
}

/// Every path `dimg ls -R` lists under `target`, the payloads' folders left out.
fn dimg_paths(target: &str) -> Vec<String> {
    let o = dimg(&["ls", "-R", target]);
    assert!(o.status.success(), "{target}: {}", stderr(&o));
    let mut paths: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| !l.contains(".contents"))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    paths.sort();
    paths
}

#[test]
fn packages_list_and_extract_as_bsdtar_lzma_and_seven_zip_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    payload_tree(&src);
    let source = snapshot(&src, true);
    // (kind, cpio, payload compression, XAR encoding of the files, checksum)
    let variants = [
        ("product", "odc", "pbzx", "none", "sha1"),
        ("product", "newc", "gzip", "gzip", "md5"),
        ("component", "newc", "pbzx", "bzip2", "sha1"),
        ("component", "odc", "none", "xz", "md5"),
    ];
    for (n, (kind, cpio, compress, encoding, checksum)) in variants.into_iter().enumerate() {
        let what = format!("{kind} {cpio} {compress} {encoding} {checksum}");
        let pkg = dir.path().join(format!("{n}.pkg"));
        make_pkg(
            &pkg,
            &src,
            &[
                "--kind",
                kind,
                "--cpio",
                cpio,
                "--compress",
                compress,
                "--encoding",
                encoding,
                "--checksum",
                checksum,
            ],
        );
        // The archive's own files, as bsdtar extracts them.
        let xar_truth = dir.path().join(format!("{n}.bsdtar"));
        bsdtar_extract(&pkg, &xar_truth);
        let out = dir.path().join(format!("{n}.out"));
        let o = dimg(&["extract", s(&pkg), "-o", s(&out)]);
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        let mut got = snapshot(&out, true);
        got.retain(|path, _| !path.contains("Payload.contents"));
        assert_same(
            &got,
            &snapshot(&xar_truth, true),
            &format!("{what}: XAR files"),
        );

        // What the payload installs, under its install location.
        let component = match kind {
            "product" => "org.example.tool.pkg/",
            _ => "",
        };
        let truth = dir.path().join(format!("{n}.cpio-truth"));
        payload_truth(&xar_truth.join(format!("{component}Payload")), &truth);
        let want = snapshot(&truth, true);
        assert_same(&want, &source, &format!("{what}: the judges' payload"));
        let installed = out.join(format!("{component}Payload.contents/usr/local"));
        assert_same(
            &snapshot(&installed, true),
            &want,
            &format!("{what}: payload"),
        );

        // 7-Zip names the same files.
        assert_eq!(seven_zip_paths(&pkg), dimg_paths(s(&pkg)), "{what}: 7-Zip");

        let o = dimg(&["verify", s(&pkg)]);
        assert!(o.status.success(), "{what}: {}", stdout(&o));
        let checked = stdout(&o)
            .lines()
            .filter(|l| l.trim_start().starts_with("ok "))
            .count();
        assert!(checked >= 4, "{what}: {checked} checks: {}", stdout(&o));
    }
}

#[test]
fn info_shows_what_the_package_says() {
    let (_dir, pkg) = package(
        "tool.pkg",
        &[
            "--kind",
            "product",
            "--identifier",
            "org.example.widget",
            "--version",
            "2.5.1",
            "--install-location",
            "/Applications",
            "--title",
            "Widget & Co",
        ],
    );
    let o = dimg(&["info", "--json", s(&pkg)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fact = |label: &str| -> Vec<String> {
        info["facts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["label"] == label)
            .map(|f| f["value"].as_str().unwrap().to_string())
            .collect()
    };
    // An archive, named as one: not a disk laid out byte for byte.
    assert_eq!(info["format"], "XAR archive (installer package or .xip)");
    assert!(fact("Layout").is_empty(), "{info}");
    assert_eq!(fact("Title"), ["Widget & Co"]);
    assert_eq!(fact("Product"), ["org.example.widget 2.5.1"]);
    assert_eq!(fact("Minimum macOS"), ["11.0"]);
    let package = fact("Package");
    assert_eq!(package.len(), 1);
    assert!(
        package[0].starts_with("org.example.widget 2.5.1, installs at /Applications"),
        "{package:?}"
    );
    let volume = &info["partitions"][0]["volumes"][0];
    assert_eq!(volume["name"], "Widget & Co");
    // The payload shows under its install location.
    let o = dimg(&[
        "ls",
        &format!(
            "{}:/org.example.widget.pkg/Payload.contents/Applications/bin",
            s(&pkg)
        ),
    ]);
    assert_eq!(stdout(&o).trim(), "tool", "{}", stderr(&o));
}

#[test]
fn a_xip_extracts_as_its_decoded_cpio_holds() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    payload_tree(&src);
    // More than one of Apple's 16 MiB pbzx chunks.
    fs::write(
        src.join("share/large"),
        b"a line of text\n".repeat(1_200_000),
    )
    .unwrap();
    let xip = dir.path().join("Tool.xip");
    make_pkg(&xip, &src, &["--kind", "xip", "--compress", "pbzx"]);
    let xar_truth = dir.path().join("bsdtar");
    bsdtar_extract(&xip, &xar_truth);
    let truth = dir.path().join("truth");
    payload_truth(&xar_truth.join("Content"), &truth);
    let out = dir.path().join("out");
    let o = dimg(&[
        "extract",
        &format!("{}:/Content.contents", s(&xip)),
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(&snapshot(&out, true), &snapshot(&truth, true), "xip");
}

#[test]
fn damaged_checksums_fail_verify_naming_what_is_damaged() {
    let (_dir, pkg) = package("tool.pkg", &["--kind", "product", "--compress", "gzip"]);
    let good = fs::read(&pkg).unwrap();
    // A byte of the payload (the heap's largest file, in its middle), then of the TOC checksum
    // (the heap's first bytes).
    let toc_end = 28 + u64::from_be_bytes(good[8..16].try_into().unwrap()) as usize;
    for (at, names) in [
        (good.len() - 150_000, "org.example.tool.pkg/Payload"),
        (toc_end + 3, "table of contents"),
    ] {
        let mut bad = good.clone();
        bad[at] ^= 0x55;
        fs::write(&pkg, &bad).unwrap();
        let o = dimg(&["verify", s(&pkg)]);
        assert!(!o.status.success(), "byte {at}: {}", stdout(&o));
        let said = stdout(&o);
        let failed: Vec<&str> = said
            .lines()
            .filter(|l| l.trim_start().starts_with("MISMATCH"))
            .collect();
        assert!(
            failed.iter().any(|l| l.contains(names)),
            "byte {at}: {said}"
        );
    }
}

#[test]
fn damaged_packages_give_clean_errors() {
    let (_dir, pkg) = package(
        "tool.pkg",
        &[
            "--kind",
            "product",
            "--compress",
            "pbzx",
            "--chunk",
            "65536",
        ],
    );
    let good = fs::read(&pkg).unwrap();
    // A byte flipped at 150 places in turn, and the file cut at several: dimg answers, never
    // panics.
    let damaged = (0..good.len()).step_by(good.len() / 150).map(|at| {
        let mut bad = good.clone();
        bad[at] ^= 0xA5;
        bad
    });
    let cut = [20, 100, 600, good.len() / 2, good.len() - 1].map(|n| good[..n].to_vec());
    for (n, bytes) in damaged.chain(cut).enumerate() {
        fs::write(&pkg, &bytes).unwrap();
        for args in [vec!["ls", "-R", s(&pkg)], vec!["info", s(&pkg)]] {
            let o = dimg(&args);
            let err = stderr(&o);
            assert!(!err.contains("panicked"), "case {n} {args:?}: {err}");
            if !o.status.success() {
                assert!(
                    err.contains(s(&pkg)),
                    "case {n}: the error names the file: {err}"
                );
            }
        }
    }
}
