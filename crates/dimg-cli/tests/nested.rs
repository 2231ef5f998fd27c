//! Images inside images: a path goes on into an image file found in a volume
//! ("outer.dmg:/Packages/inner.dmg:/path"), read through the volume that holds it. Judged by the
//! folders the inner images were made from, qemu-img's raw disks and the corpus's recorded disk
//! digests.

mod common;
use common::*;

use dimg_e2e::{sha256sum, truths};
use std::fs;
use std::path::{Path, PathBuf};

/// A tree to put in the innermost image.
fn inner_tree(root: &Path) {
    for (path, bytes) in [
        ("docs/readme.txt", b"inner readme\n".to_vec()),
        ("data/noise.bin", noise(700_000, 3)),
        ("empty", Vec::new()),
    ] {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
    }
    std::os::unix::fs::symlink("docs/readme.txt", root.join("link")).unwrap();
}

/// A DMG holding a package whose payload holds a DMG, that DMG beside it, and one cut short:
/// (the outer image, the folder the inner image was made from).
fn chain(dir: &Path) -> (PathBuf, PathBuf) {
    let src = dir.join("src");
    inner_tree(&src);
    let outer_src = dir.join("outer");
    fs::create_dir_all(outer_src.join("Packages")).unwrap();
    let inner = outer_src.join("Packages/inner.dmg");
    create_hfs_image(&src, "UDZO", &inner);
    let cut = fs::read(&inner).unwrap();
    fs::write(outer_src.join("Packages/cut.dmg"), &cut[..cut.len() / 3]).unwrap();
    // The package installs the inner image at /Library/Images.
    let payload = dir.join("payload");
    fs::create_dir_all(&payload).unwrap();
    fs::copy(&inner, payload.join("inner.dmg")).unwrap();
    let o = judge_script("make_pkg.py")
        .arg(outer_src.join("Packages/tool.pkg"))
        .args(["--payload", s(&payload), "--kind", "product"])
        .args([
            "--compress",
            "pbzx",
            "--install-location",
            "/Library/Images",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let outer = dir.join("outer.dmg");
    create_hfs_image(&outer_src, "UDZO", &outer);
    (outer, src)
}

#[test]
fn ls_extract_and_convert_go_through_images_inside_images() {
    let dir = tempfile::tempdir().unwrap();
    let (outer, src) = chain(dir.path());
    let want = snapshot(&src, true);
    let o = s(&outer);
    let through_pkg = format!(
        "{o}:/Packages/tool.pkg:/org.example.tool.pkg/Payload.contents/Library/Images/inner.dmg"
    );
    for (n, inner) in [format!("{o}:/Packages/inner.dmg"), through_pkg]
        .iter()
        .enumerate()
    {
        let out = dir.path().join(format!("out{n}"));
        let x = dimg(&["extract", &format!("{inner}:/"), "-o", s(&out)]);
        assert!(x.status.success(), "{inner}: {}", stderr(&x));
        assert_same(&snapshot(&out, true), &want, inner);

        let ls = dimg(&["ls", &format!("{inner}:/docs")]);
        assert_eq!(stdout(&ls).trim(), "readme.txt", "{}", stderr(&ls));

        // The inner image converted to a raw disk is what qemu-img makes of it alone.
        let raw = dir.path().join(format!("raw{n}.cdr"));
        let c = dimg(&["convert", inner, "-format", "UDTO", "-o", s(&raw)]);
        assert!(c.status.success(), "{inner}: {}", stderr(&c));
        let qemu = dir.path().join(format!("qemu{n}.raw"));
        let inner_file = dir.path().join("outer/Packages/inner.dmg");
        peer(
            "qemu-img",
            &[
                "convert",
                "-f",
                "dmg",
                "-O",
                "raw",
                s(&inner_file),
                s(&qemu),
            ],
        );
        assert_eq!(sha256sum(&raw), sha256sum(&qemu), "{inner}");

        let info = dimg(&["info", "--json", inner]);
        assert!(info.status.success(), "{}", stderr(&info));
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["format"], "Apple UDIF disk image", "{inner}");
    }
}

#[test]
fn a_damaged_inner_image_is_an_error_naming_the_whole_path() {
    let dir = tempfile::tempdir().unwrap();
    let (outer, _) = chain(dir.path());
    let cut = format!("{}:/Packages/cut.dmg", s(&outer));
    for args in [
        vec!["ls".to_string(), format!("{cut}:/")],
        vec!["info".to_string(), cut.clone()],
        vec!["verify".to_string(), cut.clone()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = dimg(&args);
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains(&cut), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // A payload that is no image is said to be none, by its whole path.
    let payload = format!(
        "{}:/Packages/tool.pkg:/org.example.tool.pkg/Payload",
        s(&outer)
    );
    let o = dimg(&["ls", &format!("{payload}:/")]);
    assert!(
        stderr(&o).contains(&format!("{payload}: not a disk image")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn corpus_images_inside_a_dmg_convert_to_their_recorded_disks() {
    let dir = tempfile::tempdir().unwrap();
    let holder = dir.path().join("holder");
    fs::create_dir_all(&holder).unwrap();
    let picked: Vec<_> = truths()
        .into_iter()
        .filter(|t| t.file.starts_with("dmg/dmgwiz-") && t.passphrase.is_none())
        .filter(|t| {
            ["zlib", "bzip2", "lzfse"]
                .iter()
                .any(|k| t.file.contains(k))
        })
        .collect();
    assert_eq!(picked.len(), 3, "the corpus's dmgwiz images");
    for t in &picked {
        let name = Path::new(&t.file).file_name().unwrap();
        fs::copy(t.path(), holder.join(name)).unwrap();
    }
    let outer = dir.path().join("holder.dmg");
    create_hfs_image(&holder, "UDZO", &outer);
    for t in &picked {
        let name = Path::new(&t.file).file_name().unwrap().to_str().unwrap();
        let raw = dir.path().join(format!("{name}.cdr"));
        let inner = format!("{}:/{name}", s(&outer));
        let o = dimg(&["convert", &inner, "-format", "UDTO", "-o", s(&raw)]);
        assert!(o.status.success(), "{inner}: {}", stderr(&o));
        assert_eq!(Some(sha256sum(&raw)), t.sha256, "{inner}");
    }
}
