//! A file manager offers dimg for every image kind: the bundle's file associations, the Linux
//! .desktop entries and the MIME types they name must agree, and the entries must be valid. A
//! double-click runs the mounter (`dimg-mounter.desktop`); the app stays in Open With.

use dimg_e2e::{program, repo_root};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

/// Every extension the product promises to open from a file manager.
const PROMISED: &[&str] = &[
    "dmg",
    "iso",
    "toast",
    "nrg",
    "cue",
    "bin",
    "img",
    "cdr",
    "sparseimage",
    "asif",
    "image",
    "dc42",
    "dsk",
    "dart",
    "hqx",
];

fn associations() -> Vec<(String, String)> {
    let conf: Value =
        serde_json::from_str(&fs::read_to_string(repo_root().join("tauri.conf.json")).unwrap())
            .unwrap();
    conf["bundle"]["fileAssociations"]
        .as_array()
        .expect("bundle.fileAssociations")
        .iter()
        .flat_map(|a| {
            let mime = a["mimeType"].as_str().expect("a mimeType").to_string();
            a["ext"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |e| (e.as_str().unwrap().to_string(), mime.clone()))
        })
        .collect()
}

/// The app's entry, and the mounter's (the default handler).
const ENTRIES: [&str; 2] = ["dimg.desktop", "dimg-mounter.desktop"];

fn desktop_mime_types() -> BTreeSet<String> {
    entry_mime_types("dimg.desktop")
}

fn entry_mime_types(entry: &str) -> BTreeSet<String> {
    let entry = fs::read_to_string(repo_root().join("src-tauri/linux").join(entry)).unwrap();
    let line = entry
        .lines()
        .find_map(|l| l.strip_prefix("MimeType="))
        .expect("a MimeType line");
    line.split(';')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn every_promised_extension_is_associated_and_listed_in_the_desktop_entry() {
    let assoc = associations();
    let desktop = desktop_mime_types();
    for ext in PROMISED {
        let (_, mime) = assoc
            .iter()
            .find(|(e, _)| e == ext)
            .unwrap_or_else(|| panic!(".{ext} has no file association in tauri.conf.json"));
        assert!(
            desktop.contains(mime),
            "{mime} (.{ext}) is missing from dimg.desktop"
        );
    }
}

#[test]
fn every_mime_type_is_known_to_shared_mime_info_or_defined_by_us() {
    let ours = fs::read_to_string(repo_root().join("src-tauri/linux/dimg-mime.xml")).unwrap();
    let system = fs::read_to_string("/usr/share/mime/packages/freedesktop.org.xml")
        .expect("shared-mime-info is installed");
    for mime in desktop_mime_types() {
        let declared = format!("type=\"{mime}\"");
        assert!(
            ours.contains(&declared) || system.contains(&declared),
            "{mime} is neither in shared-mime-info nor in dimg-mime.xml"
        );
    }
}

#[test]
fn the_desktop_entries_validate() {
    for entry in ENTRIES {
        let out = Command::new(program("desktop-file-validate"))
            .arg(repo_root().join("src-tauri/linux").join(entry))
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && report.trim().is_empty(),
            "{entry}: {report}"
        );
    }
}

/// Installed as the package installs them, the mounter is the default for every image type the
/// app opens, by xdg-utils' reckoning and by GIO's (what a file manager's double-click uses); the
/// app is still offered for each (Open With), and the mounter stays out of the menus.
#[test]
fn the_mounter_is_the_default_for_every_image_type_and_the_app_stays_in_open_with() {
    let dir = dimg_e2e::tempfile_dir("defaults");
    let (data, config) = (dir.join("data"), dir.join("config"));
    fs::create_dir_all(&config).unwrap();
    // Another handler of the same types installed beside dimg (as an archive manager is),
    // whose name sorts first: the mounter must be the default by being named so, not by luck.
    let rival = data.join("applications/a-rival.desktop");
    fs::create_dir_all(rival.parent().unwrap()).unwrap();
    let types: Vec<String> = desktop_mime_types().into_iter().collect();
    fs::write(
        &rival,
        format!(
            "[Desktop Entry]\nType=Application\nName=Rival\nExec=true %F\nMimeType={};\n",
            types.join(";")
        ),
    )
    .unwrap();
    dimg_e2e::install_desktop_files(&data);
    let mounter = fs::read_to_string(data.join("applications/dimg-mounter.desktop")).unwrap();
    assert!(mounter.lines().any(|l| l == "NoDisplay=true"), "{mounter}");
    assert_eq!(
        entry_mime_types("dimg-mounter.desktop"),
        desktop_mime_types()
    );
    // GIO ignores an entry whose program is not on PATH: dimg-app is, where it is installed.
    let path = std::env::join_paths(std::iter::once(dimg_e2e::target_dir()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let run = |program_name: &str, args: &[&str]| {
        let out = Command::new(program(program_name))
            .args(args)
            .env("PATH", &path)
            .env("XDG_DATA_HOME", &data)
            .env("XDG_CONFIG_HOME", &config)
            .env("XDG_DATA_DIRS", "/usr/share")
            .env("XDG_CONFIG_DIRS", &config)
            .env_remove("XDG_CURRENT_DESKTOP")
            .output()
            .unwrap();
        assert!(out.status.success(), "{program_name} {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    for mime in desktop_mime_types() {
        let by_xdg = run("xdg-mime", &["query", "default", &mime]);
        assert_eq!(by_xdg.trim(), "dimg-mounter.desktop", "xdg-mime, {mime}");
        let by_gio = run("gio", &["mime", &mime]);
        assert!(
            by_gio.contains(&format!(
                "Default application for “{mime}”: dimg-mounter.desktop"
            )),
            "gio, {mime}: {by_gio}"
        );
        let registered = by_gio
            .split("Registered applications:")
            .nth(1)
            .unwrap_or_default();
        assert!(
            registered.lines().any(|l| l.trim() == "dimg.desktop"),
            "the app in Open With for {mime}: {by_gio}"
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// The entry's "Mount" action (a file manager's right-click) runs `dimg attach` on the file: its
/// volume appears where the file manager shows removable media, and detach takes it away.
#[test]
fn the_mount_action_attaches_the_file() {
    let entry = fs::read_to_string(repo_root().join("src-tauri/linux/dimg.desktop")).unwrap();
    let action = entry
        .split("[Desktop Action Mount]")
        .nth(1)
        .expect("a Mount action");
    let exec = action
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .unwrap();
    let image = dimg_e2e::corpus().join("iso/copying-rr.iso");
    let words: Vec<String> = exec
        .split_whitespace()
        .map(|w| match w {
            "%f" => image.display().to_string(),
            other => other.to_string(),
        })
        .collect();
    assert_eq!(words[0], "dimg", "the action runs the dimg command");
    let dimg = dimg_e2e::target_dir().join("dimg");
    let out = Command::new(&dimg)
        .args(&words[1..])
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attached: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let point = std::path::PathBuf::from(attached["mounts"][0]["mount_point"].as_str().unwrap());
    assert!(point.starts_with("/media"), "{}", point.display());
    assert_eq!(fs::metadata(point.join("COPYING")).unwrap().len(), 17992);
    let out = Command::new(&dimg)
        .arg("detach")
        .arg(&point)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!point.exists());
}

/// Started where there is no display, the app says so in one line and exits, instead of GTK's
/// backtrace.
#[test]
fn without_a_display_the_app_says_so_in_one_line() {
    let app = dimg_e2e::target_dir().join("dimg-app");
    let out = Command::new(&app)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains("no display") && said.contains(".ci/app") && said.contains("dimg"),
        "{said}"
    );
}
