//! APFS containers dimg makes (`create -fs APFS`), judged by others: apfsprogs' apfsck checks
//! every structure, libyal's fsapfsinfo and pyfsapfs open them, and dimg's own reader lists them.

mod common;
use common::*;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `apfsck` over `container` (reporting odd inconsistencies and unclean unmounts as well)
/// and asserts it finds nothing.
fn apfsck(container: &Path) {
    let o = Command::new(dimg_e2e::program("apfsck"))
        .args(["-cw", s(container)])
        .output()
        .expect("apfsck runs");
    assert!(
        o.status.success() && o.stdout.is_empty(),
        "apfsck {}: {}{}",
        container.display(),
        stdout(&o),
        stderr(&o)
    );
}

/// The APFS container of raw disk `raw`, copied to a file of its own: where the partition map
/// `dimg info` reads puts it, or the whole disk.
fn container_of(raw: &Path) -> PathBuf {
    let part = partition_with(raw, "APFS");
    let (start, size) = (
        part["start"].as_u64().unwrap(),
        part["size"].as_u64().unwrap(),
    );
    let bytes = fs::read(raw).unwrap();
    let out = raw.with_extension("container");
    fs::write(&out, &bytes[start as usize..(start + size) as usize]).unwrap();
    out
}

/// The volumes `dimg info --json` finds in `image`.
fn volumes(image: &Path) -> Vec<Value> {
    let json: Value = serde_json::from_str(&stdout(&dimg(&["info", s(image), "--json"]))).unwrap();
    json["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["file_system"] == "APFS")
        .flat_map(|p| p["volumes"].as_array().unwrap().clone())
        .collect()
}

/// pyfsapfs's view of `container`'s volumes: (name, case-insensitive, entries in the root).
fn pyfsapfs_volumes(container: &Path) -> Vec<(String, bool, i64)> {
    let script = r#"
import json, sys, pyfsapfs
c = pyfsapfs.container()
c.open(sys.argv[1])
out = []
for i in range(c.number_of_volumes):
    v = c.get_volume(i)
    out.append([v.name, v.get_root_directory().number_of_sub_file_entries])
json.dump(out, sys.stdout)
"#;
    let o = Command::new("python3")
        .args(["-c", script, s(container)])
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "pyfsapfs: {}", stderr(&o));
    let listed: Vec<(String, i64)> = serde_json::from_slice(&o.stdout).unwrap();
    // fsapfsinfo says the case rule: the incompatible feature flag 0x1 is case-insensitive.
    let info = peer("fsapfsinfo", &[s(container)]);
    let insensitive: Vec<bool> = info
        .lines()
        .filter(|l| l.trim_start().starts_with("Incompatible features") && !l.contains("(NX_"))
        .map(|l| {
            let hex = l.rsplit(": 0x").next().unwrap().trim();
            u64::from_str_radix(hex, 16).unwrap() & 1 != 0
        })
        .collect();
    assert_eq!(insensitive.len(), listed.len(), "{info}");
    listed
        .into_iter()
        .zip(insensitive)
        .map(|((name, entries), ci)| (name, ci, entries))
        .collect()
}

/// A blank `-fs APFS` or "Case-sensitive APFS" image is one container of one empty volume named
/// by `-volname`, in every partition layout (GPT by default) and every output format: apfsck
/// finds no problem in it, fsapfsinfo and pyfsapfs open it with its name and case rule, dimg
/// lists it empty.
#[test]
fn blank_apfs_containers_pass_apfsck_in_every_layout_and_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut made = Vec::new();
    for (fs_name, insensitive) in [("APFS", true), ("Case-sensitive APFS", false)] {
        for layout in [None, Some("NONE"), Some("SPUD"), Some("MBRSPUD")] {
            made.push((fs_name, insensitive, layout, "UDTO"));
        }
    }
    for format in [
        "UDRW", "UDRO", "UDZO", "UDBZ", "ULFO", "ULMO", "UDSP", "UDSB",
    ] {
        made.push(("APFS", true, None, format));
    }
    for (i, (fs_name, insensitive, layout, format)) in made.into_iter().enumerate() {
        let what = format!("{fs_name} {layout:?} {format}");
        let image = dir
            .path()
            .join(format!("blank{i}.{}", format.to_lowercase()));
        let label = format!("Blank {i}");
        let mut args = vec![
            "create", "-size", "200m", "-fs", fs_name, "-volname", &label,
        ];
        if let Some(layout) = layout {
            args.extend(["-layout", layout]);
        }
        args.extend(["-format", format, s(&image)]);
        let o = dimg(&args);
        assert!(o.status.success(), "{what}: {}", stderr(&o));

        let raw = match format {
            "UDTO" => image.clone(),
            _ => {
                let raw = dir.path().join(format!("blank{i}.cdr"));
                let o = dimg(&["convert", s(&image), "-format", "UDTO", "-o", s(&raw)]);
                assert!(o.status.success(), "{what}: {}", stderr(&o));
                raw
            }
        };
        let info = stdout(&dimg(&["info", s(&raw)]));
        match layout {
            None => assert!(info.contains("GUID partition table"), "{what}: {info}"),
            Some("NONE") => assert!(info.contains("whole disk"), "{what}: {info}"),
            _ => {}
        }
        let container = container_of(&raw);
        apfsck(&container);
        assert_eq!(
            pyfsapfs_volumes(&container),
            [(label.clone(), insensitive, 0)],
            "{what}"
        );
        let ours = volumes(&image);
        assert_eq!(ours.len(), 1, "{what}");
        assert_eq!(ours[0]["name"], label.as_str(), "{what}");
        assert_eq!(ours[0]["case_sensitive"], !insensitive, "{what}");
        let o = dimg(&["ls", s(&image)]);
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{what}");
        fs::remove_file(&container).unwrap();
    }
}

/// An encrypted image (the container layer) of an APFS volume opens with its passphrase, and the
/// container inside passes apfsck.
#[test]
fn encrypted_blank_apfs_image_opens_with_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("sealed.dmg");
    create_blank(&image, "150m", "APFS", Some(b"open sesame"));
    let raw = dir.path().join("sealed.cdr");
    let o = dimg_stdin(
        &[
            "convert",
            s(&image),
            "-format",
            "UDTO",
            "-stdinpass",
            "-o",
            s(&raw),
        ],
        b"open sesame",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    apfsck(&container_of(&raw));
    assert_eq!(volumes(&raw)[0]["name"], "untitled");
}
