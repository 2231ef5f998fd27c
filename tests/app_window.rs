//! The real app window under Xvfb, driven through tauri-driver and WebKitWebDriver.

use dimg_e2e::{
    corpus, desktop_session, dimg_mounts, program, target_dir, tauri_driver, tempfile_dir, xvfb,
    Running, Session,
};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// The app's window on an X display of its own, in a desktop session (a session bus with GNOME
/// Keyring), driven through tauri-driver. One at a time: the tests share the machine's mounts.
/// Fields drop in order: the window first, the X server last, then the next test may start.
struct Desktop {
    app: Session,
    display: String,
    bus: String,
    _driver: Running,
    _session: Running,
    _x: Running,
    _turn: MutexGuard<'static, ()>,
}

impl Desktop {
    /// The app started with `images`, its keychain kept in `dir`/home.
    fn start(dir: &Path, images: &[&Path]) -> Desktop {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        // A test that failed holding it has dropped its window all the same.
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let (x, display) = xvfb();
        let (session, bus) = desktop_session(&dir.join("home"));
        let (driver, port) = tauri_driver(&display, &bus);
        Desktop {
            app: Session::start(port, &display, &app_binary(), images),
            display,
            bus,
            _driver: driver,
            _session: session,
            _x: x,
            _turn: turn,
        }
    }
}

/// The built app, which the tests drive.
fn app_binary() -> PathBuf {
    let app = target_dir().join("dimg-app");
    assert!(
        app.exists(),
        "{} is missing: build it first (cargo build -p dimg-app)",
        app.display()
    );
    app
}

fn sha256sum(path: &std::path::Path) -> String {
    let out = Command::new(program("sha256sum"))
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// Saves `target/e2e/NAME.png` in the system's (light) appearance and `NAME-dark.png` in the dark
/// one, chosen in View as a user would; the page's colours must follow each time.
fn shots(app: &Session, name: &str) {
    let dir = target_dir().join("../e2e");
    let background = |dark: bool| {
        let script = format!(
            "return matchMedia('(prefers-color-scheme: dark)').matches === {dark}
               && getComputedStyle(document.body).backgroundColor;"
        );
        let mut seen = json!(false);
        dimg_e2e::wait_until(
            "the appearance to change",
            std::time::Duration::from_secs(20),
            || {
                seen = app.script(&script, json!([]));
                seen != json!(false)
            },
        );
        seen
    };
    assert_eq!(background(false), json!("rgb(255, 255, 255)"));
    app.screenshot(&dir.join(format!("{name}.png")));
    app.script(
        "window.__TAURI__.event.emit('menu', 'appearance-dark');",
        json!([]),
    );
    assert_eq!(background(true), json!("rgb(30, 30, 32)"));
    app.screenshot(&dir.join(format!("{name}-dark.png")));
    app.script(
        "window.__TAURI__.event.emit('menu', 'appearance-system');",
        json!([]),
    );
    background(false);
}

/// What `dimg VERB --json IMAGE` says, the command line as a judge of what the window shows.
fn dimg_json(verb: &str, image: &std::path::Path) -> serde_json::Value {
    let out = Command::new(target_dir().join("dimg"))
        .args([verb, "--json"])
        .arg(image)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `dimg ARGS` (making the images a test needs), which must succeed.
fn dimg_ok(args: &[&str]) {
    let out = Command::new(target_dir().join("dimg"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dimg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The selected image's disk size as Details gives it: exact bytes, then sectors.
fn exact_disk_size(app: &Session) -> String {
    let size = app.script(
        "return document.getElementById('info-exact-disk-size').textContent;",
        json!([]),
    );
    size.as_str().unwrap().to_string()
}

/// Clicks the sidebar entry whose name is `name`.
fn select(app: &Session, name: &str) {
    let clicked = app.script(
        "const li = [...document.querySelectorAll('#images li.image')]
            .find(l => l.firstChild.textContent === arguments[0]);
         if (li) li.click();
         return !!li;",
        json!([name]),
    );
    assert_eq!(clicked, json!(true), "{name} is in the sidebar");
}

/// Waits for the job sheet's outcome, then presses Done (the sheet goes): the sentence, and the
/// report under Show Details (the command line's text).
fn job_outcome(app: &Session) -> (String, String) {
    app.wait_script(
        "the job's outcome in its sheet",
        "return !document.getElementById('sheet').hidden
           && !document.getElementById('job-done').hidden;",
    );
    let said = app.script(
        "return ['job-outcome', 'job-report'].map((id) => document.getElementById(id).textContent);",
        json!([]),
    );
    app.click("#job-close");
    app.wait_script(
        "the job sheet to close",
        "return document.getElementById('sheet').hidden;",
    );
    let text = |i: usize| said[i].as_str().unwrap().to_string();
    (text(0), text(1))
}

/// The value of `label` ("SHA-256") in a report's `  Label:  value` line.
fn reported(report: &str, label: &str) -> String {
    let line = report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{label}:")))
        .unwrap_or_else(|| panic!("no {label} in {report}"));
    line.trim().to_string()
}

/// Waits for the alert sheet, then presses OK: its sentence and its technical line.
fn alert(app: &Session) -> (String, String) {
    app.wait_script(
        "the alert",
        "return !document.getElementById('alert-sheet').hidden;",
    );
    let said = app.script(
        "return ['alert-text', 'alert-technical'].map((id) => document.getElementById(id).textContent);",
        json!([]),
    );
    app.click("#alert-close");
    let text = |i: usize| said[i].as_str().unwrap().to_string();
    (text(0), text(1))
}

#[test]
fn opens_images_from_the_command_line_shows_info_and_verifies_with_cancel() {
    let iso = corpus().join("iso/joliet.iso");
    let expected_sha = sha256sum(&iso);

    // A 64 GiB sparse ISO: its verify runs long enough to be cancelled from the sheet.
    let dir = tempfile_dir("window");
    let huge = dir.join("huge.iso");
    make_sparse_iso(&huge, 32 * 1024 * 1024);

    // Double-clicked files go to this "opener", which keeps a copy where the test can see it.
    let opened_copy = dir.join("opened-copy");
    let opener = dir.join("opener.sh");
    fs::write(
        &opener,
        format!("#!/bin/sh\ncp \"$1\" '{}'\n", opened_copy.display()),
    )
    .unwrap();
    fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::env::set_var("DIMG_OPEN_WITH", &opener);

    dimg_e2e::udisks();
    let dmg = corpus().join("dmg/dmgwiz-zlib.dmg");
    let desktop = Desktop::start(&dir, &[&iso, &huge, &dmg]);
    let (app, display, bus) = (&desktop.app, &desktop.display, &desktop.bus);

    app.wait_script(
        "three images in the sidebar",
        "return document.querySelectorAll('#images li.image').length === 3;",
    );
    select(app, "dmgwiz-zlib.dmg");
    assert_eq!(
        app.wait_text("#info-format", |t| t.contains("UDIF")),
        "Apple UDIF disk image"
    );
    // Summary first, as Disk Utility shows it: the volumes, their space, a capacity bar; the
    // container's facts wait under Details.
    assert_eq!(app.text("#info-volumes"), "empty (APFS)");
    assert_eq!(app.text("#info-used"), "20.5 KB", "rounded in the summary");
    assert_eq!(
        app.script(
            "return document.getElementById('info-exact-used').textContent;",
            json!([])
        ),
        json!("20,480 bytes (20.5 KB)"),
        "exact under Details"
    );
    assert!(app.text("#capacity-legend").ends_with("free"));
    let open = "return document.getElementById('info-details').open;";
    assert_eq!(
        app.script(open, json!([])),
        json!(false),
        "Details starts closed"
    );
    shots(app, "info-summary");
    app.click("#info-details summary");
    app.wait_script("Details open", open);
    shots(app, "info-details");
    let facts = app.text("#info-facts");
    assert!(facts.contains("UDZO (zlib-compressed)"), "{facts}");
    assert!(facts.contains("disk image (Apple_APFS : 4)"), "{facts}");
    // Its APFS container's volume is a row of the sidebar, named as the volume names itself.
    app.wait_script(
        "the APFS volume in the sidebar",
        "return [...document.querySelectorAll('#images li.volume')]
           .some((li) => li.firstChild.textContent === 'empty');",
    );
    assert!(app.text("#partitions").contains("empty"));
    // The volume's own line: file system, size, space, and its superblock's counts as `dimg
    // info` gives them.
    app.script(
        "[...document.querySelectorAll('#images li.volume')].find((li) => li.firstChild.textContent === 'empty').click();",
        json!([]),
    );
    let summary = app.wait_text("#volume-summary", |t| t.starts_with("APFS"));
    let info = dimg_json("info", &dmg);
    let apfs = info["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["file_system"] == "APFS")
        .unwrap();
    let counts = &apfs["volumes"][0]["counts"];
    assert!(
        summary.ends_with(&format!(
            "{} files, {} folders · not mounted",
            counts["files"], counts["folders"]
        )),
        "{summary}"
    );
    select(app, "dmgwiz-zlib.dmg");
    // Each row says its size, as Disk Utility's sidebar does.
    assert_eq!(
        app.text("#images li.image.selected .kind"),
        "Apple UDIF disk image · 10.5 MB"
    );
    // Menu clicks reach the page as "menu" events; the page must be allowed to listen for them
    // (and for drag-and-drop), which the window's capability grants.
    app.script("window.__TAURI__.event.emit('menu', 'about');", json!([]));
    assert!(app
        .wait_text("#status", |t| !t.is_empty())
        .starts_with("dimg — a disk image utility"));

    // A sparse bundle is a folder: dropped on the window, it opens as the image it is.
    let bundle = corpus().join("sparse/jief666-test1.sparsebundle");
    app.script(
        "window.__TAURI__.event.emit('tauri://drag-drop', { paths: [arguments[0]], position: { x: 0, y: 0 } });",
        json!([bundle.display().to_string()]),
    );
    assert_eq!(
        app.wait_text("#info-format", |t| t.contains("sparse bundle")),
        "Apple sparse bundle disk image"
    );

    select(app, "joliet.iso");
    assert_eq!(
        app.wait_text("#info-format", |t| !t.is_empty()),
        "raw disk image"
    );
    assert_eq!(app.text("#info-size"), "405.5 KB");
    assert!(app.text("#info-recognised").contains("ISO 9660"));
    let shown_path = std::path::PathBuf::from(app.text("#info-path"));
    assert_eq!(shown_path, iso.canonicalize().unwrap(), "the absolute path");

    app.click("#verify");
    app.wait_script(
        "the outcome",
        "return !document.getElementById('job-done').hidden;",
    );
    shots(app, "verified");
    let (outcome, report) = job_outcome(app);
    assert_eq!(
        outcome,
        "“joliet.iso” is OK: 405,504 bytes (405.5 KB) read."
    );
    assert_eq!(
        reported(&report, "SHA-256"),
        expected_sha,
        "the app's SHA-256 is sha256sum's"
    );
    shots(app, "app-window");

    select(app, "huge.iso");
    app.click("#verify");
    app.wait_text("#progress-text", |t| {
        t.contains("% —") && !t.starts_with("0%")
    });
    shots(app, "verify-progress");
    app.click("#cancel");
    assert_eq!(
        job_outcome(app),
        ("Verify was cancelled.".to_string(), String::new()),
        "said in the sheet, with no report"
    );

    // Images > Convert…: joliet.iso to UDZO beside a chosen name; qemu-img judges the result.
    select(app, "joliet.iso");
    app.click("#convert");
    let output = dir.join("joliet-converted.dmg");
    app.script(
        "document.getElementById('convert-format').value = 'UDZO';
         document.getElementById('convert-output').value = arguments[0];",
        json!([output.display().to_string()]),
    );
    shots(app, "convert-sheet");
    app.click("#convert-start");
    let (outcome, report) = job_outcome(app);
    assert!(
        outcome.starts_with("“joliet.iso” converted to UDZO: saved as “joliet-converted.dmg”, "),
        "{outcome}"
    );
    assert_eq!(reported(&report, "Format"), "UDZO");
    let raw = dir.join("back.raw");
    let qemu = std::process::Command::new(dimg_e2e::program("qemu-img"))
        .args(["convert", "-f", "dmg", "-O", "raw"])
        .arg(&output)
        .arg(&raw)
        .status()
        .unwrap();
    assert!(qemu.success());
    assert_eq!(
        sha256sum(&raw),
        expected_sha,
        "qemu-img reads the app's UDZO as the ISO"
    );

    // Convert… with 256-bit AES: the passwords must match; the image dimg then reads with that
    // password is the ISO.
    app.click("#convert");
    let sealed = dir.join("joliet-sealed.dmg");
    fill(
        app,
        json!({
            "convert-format": "UDZO", "convert-output": sealed.display().to_string(),
            "convert-encryption": "256", "convert-pass": "convert secret", "convert-pass2": "other",
        }),
    );
    app.click("#convert-start");
    assert_eq!(
        app.wait_text("#convert-error", |t| !t.is_empty()),
        "The passwords do not match."
    );
    fill(app, json!({ "convert-pass2": "convert secret" }));
    app.click("#convert-start");
    assert!(job_outcome(app).0.contains("saved as “joliet-sealed.dmg”"));
    assert_eq!(&fs::read(&sealed).unwrap()[..8], b"encrcdsa");
    let verified = dimg_e2e::run_with_input(
        &target_dir().join("dimg"),
        &["verify", "-stdinpass", "--json", sealed.to_str().unwrap()],
        b"convert secret",
    );
    let report: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(
        report["sha256"], expected_sha,
        "the sealed image holds the ISO"
    );

    // An encrypted image made by hdiutil, handed to the running window: the passphrase sheet, a
    // wrong try, then the right one.
    let truth = dimg_e2e::truths()
        .into_iter()
        .find(|t| t.passphrase.is_some())
        .unwrap();
    // A copy of its own: the keychain (the user's persistent kernel keyring) outlives this run
    // and knows images by path, so every run must ask for a new one.
    let encrypted = dir.join("encrypted-copy.dmg");
    fs::copy(truth.path(), &encrypted).unwrap();
    app.script(
        "window.openPath(arguments[0]);",
        json!([encrypted.display().to_string()]),
    );
    app.wait_script(
        "the passphrase sheet",
        "return !document.getElementById('passphrase-sheet').hidden;",
    );
    app.type_text("#passphrase", "not the passphrase");
    app.click("#passphrase-open");
    let said = app.wait_text("#passphrase-error", |t| !t.is_empty());
    assert_eq!(said, "Wrong password. Try again.");
    app.type_text("#passphrase", truth.passphrase.as_deref().unwrap());
    app.click("#passphrase-remember");
    shots(app, "passphrase-sheet");
    app.click("#passphrase-open");
    let said = app.wait_text("#status", |t| t.contains("keychain"));
    assert_eq!(said, "Password remembered in the desktop keychain.");
    let format = app.wait_text("#info-format", |t| t.contains("encrypted"));
    assert_eq!(format, "Apple encrypted disk image");
    assert!(app.text("#info-facts").contains("AES-256"));
    assert_eq!(
        app.text("#info-encryption"),
        "AES-256 (the image is encrypted)"
    );
    app.click("#verify");
    let (_, report) = job_outcome(app);
    assert_eq!(
        Some(reported(&report, "SHA-256")),
        truth.sha256,
        "the decrypted disk is the ground truth"
    );

    // Closed and opened again: the keychain answers, no sheet is shown.
    app.script("window.__TAURI__.event.emit('menu', 'close');", json!([]));
    app.wait_script(
        "the image to close",
        "return ![...document.querySelectorAll('#images li')].some(l => l.textContent.includes('encrypted-copy'));",
    );
    app.script(
        "window.openPath(arguments[0]);",
        json!([encrypted.display().to_string()]),
    );
    let format = app.wait_text("#info-format", |t| t.contains("encrypted"));
    assert_eq!(format, "Apple encrypted disk image");
    assert_eq!(
        app.script(
            "return document.getElementById('passphrase-sheet').hidden;",
            json!([])
        ),
        json!(true),
        "the remembered password was used"
    );
    forget_the_password(app, bus, &encrypted, truth.passphrase.as_deref().unwrap());
    browse_a_volume(app, &dir, &opened_copy, display);
    mount_and_eject(app, &iso, &dir.join("browse.iso"));
    new_images(app, &dir);
    second_launch(app, &app_binary(), display, bus);
    devices(app, &dir);
    fs::remove_dir_all(&dir).unwrap();
}

/// The vault (#30): File › New Image › Blank Image makes an AES-256 sparse bundle (Mac OS
/// Extended, Journaled: the sheet's default) and, by the same click, mounts it read/write. A file written into the
/// mount point by another process is in the image after Eject, which says when the image can
/// be unplugged; opened again with its password and mounted, the file reads back the same.
/// Images › Mount Read-Only then shows the lock mark, and the volume refuses writes. The
/// password is never on a command line or in the server's log.
#[test]
fn a_blank_encrypted_sparse_bundle_mounts_as_a_vault_to_write_into() {
    const PASSWORD: &str = "vault pass 7Qx!";
    let dir = tempfile_dir("vault");
    let desktop = Desktop::start(&dir, &[]);
    let app = &desktop.app;
    // Asked until the page, just started, listens to the menu.
    app.wait_script(
        "the blank image sheet",
        "const sheet = document.getElementById('new-sheet');
         if (sheet?.hidden) window.__TAURI__.event.emit('menu', 'new-blank');
         return sheet?.hidden === false;",
    );
    let vault = dir.join("vault.sparsebundle");
    fill(
        app,
        json!({
            "new-output": dir.join("vault.dmg").display().to_string(), "new-name": "VAULT",
            "new-size": "40", "new-encryption": "256",
        }),
    );
    // Chosen after the name is given, as a user would: the sheet renames it for the format.
    fill(app, json!({ "new-format": "UDSB" }));
    let chosen = app.script(
        "return [document.getElementById('new-output').value, document.getElementById('new-mount').checked];",
        json!([]),
    );
    assert_eq!(
        chosen,
        json!([vault.display().to_string(), true]),
        "named as a sparse bundle, mounted after creating unless unticked"
    );
    app.type_text("#new-pass", PASSWORD);
    app.type_text("#new-pass2", PASSWORD);
    shots(app, "vault-sheet");
    app.click("#new-start");
    let (outcome, _) = job_outcome(app);
    assert!(
        outcome.starts_with("Created “vault.sparsebundle”: ")
            && outcome.contains("“vault.sparsebundle” mounted at "),
        "{outcome}"
    );
    let point = PathBuf::from(mount_point_said(app, " mounted at "));
    assert_eq!(
        app.wait_text("#info-format", |t| !t.is_empty()),
        "Apple sparse bundle disk image"
    );
    // Its token holds the key: the engine says it is encrypted, though its format does not.
    assert_eq!(
        app.text("#info-encryption"),
        "AES-256 (the image is encrypted)"
    );
    assert_eq!(
        app.script(
            "return document.querySelector('#images li.image.selected').classList.contains('encrypted');",
            json!([])
        ),
        json!(true)
    );
    app.wait_script(
        "the vault's mount point in the sidebar",
        "return !!document.querySelector('#images li.volume .mount-point');",
    );
    assert_eq!(lock_marks(app), json!([]), "writable: no lock mark");

    // Neither the server's command line nor its log holds the password; it went down a pipe.
    let attached = Command::new(target_dir().join("dimg"))
        .args(["info", "--json"])
        .output()
        .unwrap();
    let attached: serde_json::Value = serde_json::from_slice(&attached.stdout).unwrap();
    let server = attached
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["image"] == json!(vault.canonicalize().unwrap()))
        .unwrap_or_else(|| panic!("the vault's server in {attached}"));
    assert_eq!(server["writable"], json!(true));
    let log = fs::read(server["log"].as_str().unwrap()).unwrap();
    assert!(
        !contains(&log, PASSWORD.as_bytes()),
        "the password in the server's log"
    );
    for cmdline in fs::read_dir("/proc").unwrap().flatten() {
        let argv = fs::read(cmdline.path().join("cmdline")).unwrap_or_default();
        assert!(
            !contains(&argv, PASSWORD.as_bytes()),
            "the password on the command line of {}",
            cmdline.path().display()
        );
    }

    // Written from outside the app, as a file manager would, then ejected through the app.
    let secret: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    {
        use std::io::Write;
        let mut file = fs::File::create(point.join("secret.bin")).unwrap();
        file.write_all(&secret).unwrap();
        file.sync_all().unwrap();
    }
    assert_eq!(app.text("#mount"), "Eject");
    shots(app, "vault-mounted");
    app.click("#mount");
    assert_eq!(
        app.wait_text("#status", |t| t.contains("ejected")),
        "“vault.sparsebundle” ejected: every change is written, and it can be safely unplugged."
    );
    assert!(
        !dimg_mounts().iter().any(|(_, p)| Path::new(p) == point),
        "{} is still mounted",
        point.display()
    );

    // Closed and opened again: the sheet asks for the password (it was not remembered).
    app.script("window.__TAURI__.event.emit('menu', 'close');", json!([]));
    app.script(
        "window.openPath(arguments[0]);",
        json!([vault.display().to_string()]),
    );
    app.wait_script(
        "the passphrase sheet",
        "return !document.getElementById('passphrase-sheet').hidden;",
    );
    app.type_text("#passphrase", PASSWORD);
    app.click("#passphrase-open");
    app.wait_text("#info-format", |t| t.contains("sparse bundle"));
    app.click("#mount");
    let point = PathBuf::from(mount_point_said(app, " mounted at "));
    assert_eq!(
        fs::read(point.join("secret.bin")).unwrap(),
        secret,
        "the file written before Eject"
    );
    app.click("#mount");
    app.wait_text("#status", |t| t.contains("safely unplugged"));

    // Images › Mount Read-Only: the lock mark, and the kernel refuses a write.
    app.script(
        "window.__TAURI__.event.emit('menu', 'mount-read-only');",
        json!([]),
    );
    let point = PathBuf::from(mount_point_said(app, " mounted read-only at "));
    app.wait_script(
        "the lock mark in the sidebar",
        "return !!document.querySelector('#images li.volume .read-only');",
    );
    assert_eq!(lock_marks(app), json!(["read-only"]));
    shots(app, "vault-read-only");
    let refused = fs::write(point.join("more.txt"), b"no").unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(30), "EROFS: {refused}");
    assert_eq!(fs::read(point.join("secret.bin")).unwrap(), secret);
    app.click("#mount");
    assert_eq!(
        app.wait_text("#status", |t| t.contains("ejected")),
        "vault.sparsebundle ejected."
    );

    // The command line finds the file in the image too.
    let listed = dimg_e2e::run_with_input(
        &target_dir().join("dimg"),
        &["ls", "-stdinpass", vault.to_str().unwrap()],
        PASSWORD.as_bytes(),
    );
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("secret.bin"),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    drop(desktop);
    fs::remove_dir_all(&dir).unwrap();
}

/// Images › First Aid… (#30): a clean HFS+ volume is OK; one whose volume header miscounts its
/// free blocks is named in a problem line, Repair says what it changed, and the command line's
/// First Aid then finds it clean. A compressed copy's repair is refused with the engine's
/// reason, and a mounted image's Repair waits for Eject.
#[test]
fn first_aid_names_a_damaged_volume_and_repairs_it() {
    let dir = tempfile_dir("first-aid");
    let blank = |name: &str| {
        let image = dir.join(name);
        dimg_ok(&[
            "create",
            "-size",
            "16m",
            "-fs",
            "JHFS+",
            image.to_str().unwrap(),
        ]);
        image
    };
    let clean = blank("clean.dmg");
    let damaged = blank("damaged.dmg");
    let stated = miscount_free_blocks(&damaged);
    let busy = dir.join("busy.dmg");
    fs::copy(&damaged, &busy).unwrap();
    let compressed = dir.join("compressed.dmg");
    dimg_ok(&[
        "convert",
        damaged.to_str().unwrap(),
        "-format",
        "UDZO",
        "-o",
        compressed.to_str().unwrap(),
    ]);

    let desktop = Desktop::start(&dir, &[&clean, &damaged, &busy, &compressed]);
    let app = &desktop.app;
    app.wait_script(
        "four images in the sidebar",
        "return document.querySelectorAll('#images li.image').length === 4;",
    );
    let report = first_aid(app, "clean.dmg");
    assert!(report[0].starts_with("Volume 1 (HFS+): OK ("), "{report:?}");
    assert_eq!(app.text("#first-aid-summary"), "1 volume checked: OK");
    assert_eq!(
        repair_button(app),
        json!([true, false]),
        "nothing to repair"
    );
    // Esc closes it, as every sheet.
    app.press(&["\u{E00C}"]);
    app.wait_script(
        "Esc to close the First Aid sheet",
        "return document.getElementById('first-aid-sheet').hidden;",
    );

    let report = first_aid(app, "damaged.dmg");
    assert!(
        report[0].starts_with("Volume 1 (HFS+): 1 problem ("),
        "{report:?}"
    );
    let problem = format!("volume header: its free block count says {stated}, ");
    assert!(report[1].starts_with(&problem), "{report:?}");
    assert_eq!(
        app.text("#first-aid-summary"),
        "1 volume checked: 1 problem"
    );
    shots(app, "first-aid");
    app.click("#first-aid-repair");
    app.wait_script(
        "the repair's report",
        "return !!document.querySelector('#first-aid-volumes .repaired');",
    );
    let repaired = app.text("#first-aid-volumes .repaired");
    assert!(
        repaired.starts_with(&format!("Repaired volume header: free blocks {stated} → ")),
        "{repaired}"
    );
    assert_eq!(
        app.wait_text("#first-aid-summary", |t| t.ends_with("made")),
        "1 volume checked: OK, 1 repair made"
    );
    assert_eq!(
        repair_button(app),
        json!([true, false]),
        "nothing left to repair"
    );
    shots(app, "first-aid-repaired");
    app.click("#first-aid-close");
    let judged = Command::new(target_dir().join("dimg"))
        .args(["verify", "-fs"])
        .arg(&damaged)
        .output()
        .unwrap();
    assert!(
        judged.status.success(),
        "{}",
        String::from_utf8_lossy(&judged.stdout)
    );

    // A compressed image cannot be written: the engine's refusal is said in the sheet.
    first_aid(app, "compressed.dmg");
    app.click("#first-aid-repair");
    let refused = app.wait_text("#first-aid-error", |t| !t.is_empty());
    assert!(refused.contains("convert it to UDRW first"), "{refused}");
    assert_eq!(repair_button(app), json!([false, true]));
    app.click("#first-aid-close");

    // Mounted, its server would go on serving the volume as it was: Eject first. (Read-only,
    // so that the mount leaves the damage for First Aid to find.)
    select(app, "busy.dmg");
    app.script(
        "window.__TAURI__.event.emit('menu', 'mount-read-only');",
        json!([]),
    );
    mount_point_said(app, " mounted read-only at ");
    app.wait_text("#mount", |t| t == "Eject");
    first_aid(app, "busy.dmg");
    assert_eq!(
        app.text("#first-aid-error"),
        "“busy.dmg” is mounted: eject it before repairing it."
    );
    assert_eq!(repair_button(app), json!([false, true]));
    app.click("#first-aid-close");
    app.click("#mount");
    app.wait_text("#status", |t| t.contains("ejected"));
    drop(desktop);
    fs::remove_dir_all(&dir).unwrap();
}

/// The First Aid sheet's Repair button: [hidden, disabled].
fn repair_button(app: &Session) -> serde_json::Value {
    app.script(
        "const b = document.getElementById('first-aid-repair'); return [b.hidden, b.disabled];",
        json!([]),
    )
}

/// Makes the HFS+ volume header of a blank UDRW image (its disk at the start of the file) count
/// one free block too few; the count it now states.
fn miscount_free_blocks(image: &Path) -> u32 {
    use std::os::unix::fs::FileExt;
    let info = dimg_json("info", image);
    let volume = info["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["file_system"] == "HFS+")
        .unwrap_or_else(|| panic!("no HFS+ partition in {info}"))["start"]
        .as_u64()
        .unwrap();
    // The volume header is 1024 bytes in; its free block count 48 bytes into it.
    let at = volume + 1024 + 48;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let mut count = [0u8; 4];
    file.read_exact_at(&mut count, at).unwrap();
    let stated = u32::from_be_bytes(count) - 1;
    file.write_all_at(&stated.to_be_bytes(), at).unwrap();
    stated
}

/// Selects `name` and runs Images › First Aid… on it: the sheet's report, a line each.
fn first_aid(app: &Session, name: &str) -> Vec<String> {
    select(app, name);
    app.script(
        "window.__TAURI__.event.emit('menu', 'first-aid');",
        json!([]),
    );
    app.wait_script(
        "the First Aid sheet",
        "return !document.getElementById('first-aid-sheet').hidden;",
    );
    let lines = app.script(
        "return [...document.querySelectorAll('#first-aid-volumes li')].map((li) => li.firstChild.textContent);",
        json!([]),
    );
    serde_json::from_value(lines).unwrap()
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What GNOME Keyring holds for `image` under the app's service, as libsecret's `secret-tool`
/// finds it: the item whose user attribute (the image's identity) begins with its path.
fn kept_in_keyring(bus: &str, image: &std::path::Path) -> Option<String> {
    let secret_tool = |args: &[&str]| {
        Command::new(program("secret-tool"))
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            .output()
            .unwrap()
    };
    // search prints each item's attributes on stderr, its secret on stdout.
    let found = secret_tool(&["search", "--all", "service", "dimg disk image"]);
    let prefix = format!("attribute.username = {}#", image.display());
    let identity = String::from_utf8_lossy(&found.stderr)
        .lines()
        .find_map(|l| {
            l.strip_prefix(prefix.as_str())
                .map(|uuid| format!("{}#{uuid}", image.display()))
        })?;
    let secret = secret_tool(&[
        "lookup",
        "service",
        "dimg disk image",
        "username",
        &identity,
    ]);
    Some(String::from_utf8(secret.stdout).unwrap())
}

/// The desktop keychain (GNOME Keyring over the Secret Service) holds the remembered password;
/// Images › Forget Password removes it, and the image asks again when it is next opened.
fn forget_the_password(app: &Session, bus: &str, image: &std::path::Path, passphrase: &str) {
    assert_eq!(
        kept_in_keyring(bus, image).as_deref(),
        Some(passphrase),
        "GNOME Keyring keeps the password"
    );
    app.script(
        "window.__TAURI__.event.emit('menu', 'forget-password');",
        json!([]),
    );
    let said = app.wait_text("#status", |t| t.starts_with("Password forgotten"));
    assert!(said.contains("encrypted-copy.dmg"), "{said}");
    assert_eq!(kept_in_keyring(bus, image), None, "forgotten");
    app.script("window.__TAURI__.event.emit('menu', 'close');", json!([]));
    app.script(
        "window.openPath(arguments[0]);",
        json!([image.display().to_string()]),
    );
    app.wait_script(
        "the passphrase sheet again",
        "return !document.getElementById('passphrase-sheet').hidden;",
    );
    assert_eq!(
        app.text("#passphrase-store"),
        "Kept in the desktop keychain."
    );
    app.type_text("#passphrase", passphrase);
    app.click("#passphrase-open");
    app.wait_text("#info-format", |t| t.contains("encrypted"));
    assert_eq!(kept_in_keyring(bus, image), None, "not remembered unasked");
}

/// A second launch with an image (a file manager's "Open With" on a running app) starts no
/// second window: it hands the image, named relative to its own folder, to the running window
/// over the session bus and exits; the window shows it beside the others.
fn second_launch(app: &Session, app_binary: &std::path::Path, display: &str, bus: &str) {
    let before = app.script(
        "return document.querySelectorAll('#images li.image').length;",
        json!([]),
    );
    let mut second = Command::new(app_binary)
        .arg("iso/deep-directory.iso")
        .current_dir(corpus())
        .env("DISPLAY", display)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .spawn()
        .unwrap();
    let mut exited = None;
    dimg_e2e::wait_until(
        "the second launch to hand over and exit",
        std::time::Duration::from_secs(30),
        || {
            exited = second.try_wait().unwrap();
            exited.is_some()
        },
    );
    assert!(exited.unwrap().success());
    select_when_shown(app, "deep-directory.iso");
    assert_eq!(
        std::path::PathBuf::from(
            app.wait_text("#info-path", |t| t.ends_with("deep-directory.iso"))
        ),
        corpus()
            .join("iso/deep-directory.iso")
            .canonicalize()
            .unwrap(),
        "the path resolved in the second launch's folder"
    );
    let after = app.script(
        "return document.querySelectorAll('#images li.image').length;",
        json!([]),
    );
    assert_eq!(after, json!(before.as_u64().unwrap() + 1));
    shots(app, "second-launch");
}

/// Devices: a loop device attached while the window runs appears under Devices with its FAT
/// partition; File › New Image › Image from Device… copies it into a UDZO, with progress, whose
/// disk is the device's bytes; detached, it leaves the sidebar.
fn devices(app: &Session, dir: &std::path::Path) {
    let src = dir.join("device-src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("on-the-stick.txt"), b"plugged in\n").unwrap();
    let disk = dir.join("stick.cdr");
    dimg_ok(&[
        "create",
        "-srcfolder",
        src.to_str().unwrap(),
        "-size",
        "16m",
        "-fs",
        "FAT32",
        "-volname",
        "STICK",
        "-layout",
        "GPTSPUD",
        "-format",
        "UDTO",
        disk.to_str().unwrap(),
    ]);
    // Told of devices by udisks2 (which the test started before the window, knowing the block
    // devices), not polling: the app's answer, asked again (it is settled once), then the page's.
    let told = app.script(
        "return window.__TAURI__.core.invoke('watch_devices');",
        json!([]),
    );
    assert_eq!(
        told,
        json!(true),
        "the app polls for devices: udisks2 would tell it of no change"
    );
    app.wait_script("the page to listen to udisks2", "return state.devicesTold;");
    let stick = dimg_e2e::LoopDevice::attach(&disk);
    let name = stick.0.file_name().unwrap().to_string_lossy().into_owned();
    app.wait_script(
        "the loop device under Devices",
        &format!(
            "const row = [...document.querySelectorAll('#devices li.device')]
               .find((li) => li.firstChild.textContent === '{name}');
             if (row) row.click();
             return !!row;"
        ),
    );
    assert_eq!(app.wait_text("#device-name", |t| t == name), name);
    assert!(
        app.text("#device-facts").contains("16,777,216 bytes"),
        "{}",
        app.text("#device-facts")
    );
    let partitions = app.wait_text("#device-partitions", |t| t.contains("FAT"));
    assert!(
        partitions.contains(&format!("{}", stick.partition(1).display())),
        "{partitions}"
    );
    assert!(app.text("#devices").contains(&format!("{name}p1")));
    shots(app, "devices");

    app.script(
        "window.__TAURI__.event.emit('menu', 'new-device');",
        json!([]),
    );
    assert_eq!(
        app.wait_text("#convert-name", |t| t.contains(&name)),
        format!("“{name}”")
    );
    let image = dir.join("stick.dmg");
    app.script(
        "document.getElementById('convert-format').value = 'UDZO';
         document.getElementById('convert-output').value = arguments[0];",
        json!([image.display().to_string()]),
    );
    app.click("#convert-start");
    let (outcome, _) = job_outcome(app);
    assert!(
        outcome.starts_with(&format!("{} imaged as “stick.dmg”", stick.0.display())),
        "{outcome}"
    );
    assert_eq!(
        app.wait_text("#info-name", |t| t == "stick.dmg"),
        "stick.dmg"
    );
    let verified = dimg_json("verify", &image);
    assert_eq!(
        verified["sha256"],
        sha256sum(&stick.0),
        "the image holds the device's bytes"
    );
    restore_and_burn(app, dir, &stick.0);
    erase_and_partition(app, &stick.0);
    drop(stick);
    app.wait_script(
        "the detached device to leave the sidebar",
        &format!(
            "return ![...document.querySelectorAll('#devices li.device')]
               .some((li) => li.firstChild.textContent === '{name}');"
        ),
    );
}

/// Clicks the row of `path` under Devices (a disk or a partition), once it is listed.
fn select_device(app: &Session, path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy();
    app.wait_script(
        &format!("{name} under Devices"),
        &format!(
            "const row = [...document.querySelectorAll('#devices li')]
               .find((li) => li.firstChild.textContent === '{name}');
             if (row) row.click();
             return !!row && state.device === '{}';",
            path.display()
        ),
    );
}

/// The device side, as Disk Utility's (#39), on the loop device: the running system's disk
/// cannot be erased or partitioned; Erase makes the disk a GPT with one ext4 volume (e2fsck
/// finds it clean), its button naming the disk and Cancel the default; Mount and Unmount go
/// through udisks2 (/proc/mounts agrees); Partition deletes that partition (its button naming
/// it) and adds one of 8 MB with an MS-DOS (FAT) volume (sgdisk -v and fsck.fat agree).
fn erase_and_partition(app: &Session, device: &Path) {
    let system = app.script(
        "return state.devices.find((d) => [d, ...d.partitions].some((x) => x.mount_points.includes('/')))?.path ?? null;",
        json!([]),
    );
    if let Some(system) = system.as_str() {
        select_device(app, Path::new(system));
        let menus = app.script("return window.menuState.enabled;", json!([]));
        assert_eq!(
            [&menus["erase"], &menus["partition"]],
            [&json!(false), &json!(false)],
            "{menus}"
        );
    }
    select_device(app, device);
    app.click("#erase");
    app.wait_script(
        "the Erase sheet",
        "return !document.getElementById('erase-sheet').hidden;",
    );
    // Esc cancels it, as every sheet.
    app.press(&["\u{E00C}"]);
    app.wait_script(
        "Esc to close the Erase sheet",
        "return document.getElementById('erase-sheet').hidden;",
    );
    app.click("#erase");
    app.wait_script(
        "the Erase sheet again",
        "return !document.getElementById('erase-sheet').hidden;",
    );
    let name = device.file_name().unwrap().to_string_lossy();
    assert_eq!(app.text("#erase-start"), format!("Erase “{name}”"));
    assert_eq!(
        app.script(
            "return [...document.querySelectorAll('#erase-sheet button.default')].map((b) => b.id);",
            json!([])
        ),
        json!(["erase-close"]),
        "Return cancels an erase"
    );
    fill(
        app,
        json!({ "erase-volume-name": "ERASED", "erase-format": "ext4", "erase-scheme": "GPT" }),
    );
    shots(app, "erase-sheet");
    app.click("#erase-start");
    let (outcome, report) = job_outcome(app);
    assert!(
        outcome.contains(" erased: a new ext4 volume “ERASED”"),
        "{outcome}"
    );
    let volume = PathBuf::from(reported(&report, "Volume"));
    judged_clean("e2fsck", &["-fn"], &volume);
    judged_clean("sgdisk", &["-v"], device);

    // Mount and Unmount, through udisks2.
    select_device(app, &volume);
    app.wait_text("#mount", |t| t == "Mount");
    app.click("#mount");
    let said = app.wait_text("#status", |t| t.starts_with("Mounted "));
    let point = said
        .rsplit(" at ")
        .next()
        .unwrap()
        .trim_end_matches('.')
        .to_string();
    let mounted = || {
        fs::read_to_string("/proc/mounts")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(point.as_str()))
    };
    assert!(mounted(), "{point} not in /proc/mounts");
    app.wait_text("#mount", |t| t == "Unmount");
    app.click("#mount");
    app.wait_text("#status", |t| t.starts_with("Unmounted "));
    assert!(!mounted(), "{point} still mounted");

    // Partition: the volume's partition deleted, then one of 8 MB added with a FAT volume.
    app.wait_text("#mount", |t| t == "Mount");
    app.click("#partition");
    app.wait_script(
        "the Partition sheet",
        "return !document.getElementById('partition-sheet').hidden;",
    );
    app.press(&["\u{E00C}"]);
    app.wait_script(
        "Esc to close the Partition sheet",
        "return document.getElementById('partition-sheet').hidden;",
    );
    app.click("#partition");
    app.wait_script(
        "the Partition sheet again",
        "return !document.getElementById('partition-sheet').hidden;",
    );
    fill(app, json!({ "partition-action": "delete" }));
    let part = volume.file_name().unwrap().to_string_lossy();
    assert_eq!(app.text("#partition-start"), format!("Delete “{part}”"));
    app.click("#partition-start");
    assert!(job_outcome(app).0.contains(" deleted: "));
    select_device(app, device);
    app.click("#partition");
    app.wait_script(
        "the Partition sheet for the disk",
        "return !document.getElementById('partition-sheet').hidden;",
    );
    fill(
        app,
        json!({ "partition-size": "8", "partition-format": "MS-DOS", "partition-volume-name": "ADDED" }),
    );
    app.click("#partition-start");
    let (outcome, report) = job_outcome(app);
    assert!(outcome.contains(" added: "), "{outcome}");
    // 8 MB, rounded up to whole MiB as udisks2 aligns partitions.
    assert!(
        reported(&report, "Size").starts_with("8,388,608 bytes"),
        "{report}"
    );
    assert_eq!(reported(&report, "File system"), "MS-DOS (FAT)");
    let added = report
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    judged_clean("fsck.fat", &["-n"], Path::new(&added));
    judged_clean("sgdisk", &["-v"], device);
}

/// A judge (`e2fsck -fn`, `fsck.fat -n`, `sgdisk -v`) run on `target` finds nothing wrong.
fn judged_clean(judge: &str, args: &[&str], target: &Path) {
    let out = Command::new(program(judge))
        .args(args)
        .arg(target)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let clean = out.status.success() && (judge != "sgdisk" || said.contains("No problems found"));
    assert!(clean, "{judge} {}: {said}", target.display());
}

/// Images › Restore… of a corpus DMG onto the loop device (the sheet names what will be
/// erased; the device then begins with the image's disk), and Images › Burn… of an ISO onto
/// libburn's stdio: pseudo-drive, read back.
fn restore_and_burn(app: &Session, dir: &std::path::Path, device: &std::path::Path) {
    let device = device.to_str().unwrap();
    let dmg = corpus().join("dmg/dmgwiz-zlib.dmg");
    let verified = dimg_json("verify", &dmg);
    select(app, "dmgwiz-zlib.dmg");
    let restore_sheet = "return !document.getElementById('restore-sheet').hidden;";
    app.script("window.__TAURI__.event.emit('menu', 'restore');", json!([]));
    app.wait_script("the Restore sheet", restore_sheet);
    // Esc closes it (and Return would too: Cancel is its default).
    app.press(&["\u{E00C}"]);
    app.wait_script(
        "Esc to close the Restore sheet",
        "return document.getElementById('restore-sheet').hidden;",
    );
    app.script("window.__TAURI__.event.emit('menu', 'restore');", json!([]));
    app.wait_script("the Restore sheet again", restore_sheet);
    app.script(
        "const t = document.getElementById('restore-target');
         t.value = arguments[0];
         t.dispatchEvent(new Event('change'));",
        json!([device]),
    );
    // The disk the running system is on is not offered.
    let offered = app.script(
        "return [...document.getElementById('restore-target').options].map((o) => o.value);",
        json!([]),
    );
    let system: Vec<String> = fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(1) == Some("/"))
        .filter_map(|l| l.split(' ').next().map(str::to_string))
        .filter(|d| d.starts_with("/dev/"))
        .collect();
    for disk in &system {
        assert!(
            !offered.as_array().unwrap().contains(&json!(disk)),
            "{disk} offered: {offered}"
        );
    }
    assert!(
        offered.as_array().unwrap().contains(&json!(device)),
        "{offered}"
    );
    let warning = app.text("#restore-warning");
    assert!(
        warning.starts_with(&format!("Everything on {device} (16,777,216 bytes")),
        "{warning}"
    );
    // The destructive button names what it erases, and is not the default: Return cancels.
    let name = Path::new(device).file_name().unwrap().to_string_lossy();
    assert_eq!(
        app.text("#restore-start"),
        format!("Erase “{name}” and Restore")
    );
    assert_eq!(
        app.script(
            "return [...document.querySelectorAll('#restore-sheet button.default')].map((b) => b.id);",
            json!([])
        ),
        json!(["restore-close"])
    );
    shots(app, "restore-sheet");
    app.click("#restore-start");
    let (outcome, report) = job_outcome(app);
    assert!(outcome.ends_with("read back identical."), "{outcome}");
    assert_eq!(
        reported(&report, "Verified"),
        "read back from the device: identical"
    );
    let size = verified["bytes"].as_u64().unwrap() as usize;
    let written = fs::read(device).unwrap();
    assert_eq!(
        dimg_e2e::sha256_bytes(&written[..size]),
        verified["sha256"],
        "the device holds the image's disk"
    );

    select(app, "joliet.iso");
    app.click("#burn");
    app.wait_script(
        "the Burn sheet",
        "return !document.getElementById('burn-sheet').hidden;",
    );
    // No optical drive here: the sheet says so, and Burn waits for a drive.
    assert!(!app.text("#burn-none").is_empty());
    assert_eq!(
        app.script(
            "return [document.getElementById('burn-device').options.length, document.getElementById('burn-start').disabled];",
            json!([])
        ),
        json!([0, true])
    );
    // libburn's stdio: pseudo-drive stands in for one, as a drive udisks2 listed would be.
    let disc = dir.join("burnt.disc");
    app.script(
        "const list = document.getElementById('burn-device');
         list.add(new Option('pseudo-drive', arguments[0]));
         list.value = arguments[0];
         list.dispatchEvent(new Event('change'));",
        json!([format!("stdio:{}", disc.display())]),
    );
    shots(app, "burn-sheet");
    app.click("#burn-start");
    let (outcome, _) = job_outcome(app);
    assert!(
        outcome.starts_with("“joliet.iso” onto") && outcome.contains("read back identical"),
        "{outcome}"
    );
    let iso = fs::read(corpus().join("iso/joliet.iso")).unwrap();
    assert_eq!(&fs::read(&disc).unwrap()[..iso.len()], &iso[..]);
}

/// Waits for `name` to appear in the sidebar, then selects it.
fn select_when_shown(app: &Session, name: &str) {
    dimg_e2e::wait_until(
        &format!("{name} in the sidebar"),
        std::time::Duration::from_secs(30),
        || {
            app.script(
                "return [...document.querySelectorAll('#images li.image')]
                   .some(l => l.firstChild.textContent === arguments[0]);",
                json!([name]),
            ) == json!(true)
        },
    );
    select(app, name);
}

/// Mount in the toolbar: the volume appears in the kernel's mount table, in the sidebar and the
/// info pane with its mount point; a mount made by `dimg attach` shows up as well; Eject (the
/// same button) takes each away.
fn mount_and_eject(app: &Session, joliet: &std::path::Path, browse_iso: &std::path::Path) {
    select(app, "browse.iso");
    app.click("#mount");
    // An ISO 9660 volume is never written: mounted read-only, with the lock mark.
    let point = mount_point_said(app, " mounted read-only at ");
    assert_eq!(lock_marks(app), json!(["read-only"]));
    assert!(
        dimg_mounts().iter().any(|(_, p)| *p == point),
        "{point} is not in /proc/mounts: {:?}",
        dimg_mounts()
    );
    assert_eq!(
        fs::read(std::path::Path::new(&point).join("top.txt")).unwrap(),
        b"at the top\n"
    );
    app.wait_script(
        "the mount point in the sidebar",
        "return !!document.querySelector('#images li.volume .mount-point');",
    );
    let shown = app.script(
        "return document.querySelector('#images li.volume .mount-point').textContent;",
        json!([]),
    );
    assert_eq!(shown, json!(format!("⏏ {point}")));
    assert!(app.text("#info-mounts").contains(&point));
    assert_eq!(app.text("#mount"), "Eject");
    shots(app, "mounted");

    // Attached from the command line: the window shows it too, and ejects it.
    let attach = Command::new(target_dir().join("dimg"))
        .arg("attach")
        .arg(joliet)
        .output()
        .unwrap();
    assert!(
        attach.status.success(),
        "{}",
        String::from_utf8_lossy(&attach.stderr)
    );
    select(app, "joliet.iso");
    app.wait_script(
        "the CLI's mount in the window",
        "return document.getElementById('mount').textContent === 'Eject';",
    );
    for name in ["joliet.iso", "browse.iso"] {
        select(app, name);
        app.click("#mount");
        app.wait_text("#status", |t| t.ends_with("ejected."));
    }
    let images = [
        joliet.canonicalize().unwrap(),
        browse_iso.canonicalize().unwrap(),
    ];
    let left: Vec<_> = dimg_mounts()
        .into_iter()
        .filter(|(source, _)| images.iter().any(|i| i.as_os_str() == source.as_str()))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        !std::path::Path::new(&point).exists(),
        "{point} is left behind"
    );
    app.wait_script(
        "no mount point in the sidebar",
        "return document.querySelectorAll('#images .mount-point').length === 0;",
    );
}

/// Waits for the status line to say where the selected image was mounted (`how`: " mounted at "
/// or " mounted read-only at "), and gives that mount point.
fn mount_point_said(app: &Session, how: &str) -> String {
    let mut said = String::new();
    dimg_e2e::wait_until("the mount", std::time::Duration::from_secs(60), || {
        let shown = app.script(
            "return [document.getElementById('status').textContent,
                     document.getElementById('alert-sheet').hidden ? '' : document.getElementById('alert-text').textContent];",
            json!([]),
        );
        said = shown[0].as_str().unwrap_or_default().to_string();
        assert_eq!(shown[1], "", "the mount failed");
        said.contains(" mounted")
    });
    said.rsplit_once(how)
        .unwrap_or_else(|| panic!("not{how}…: {said}"))
        .1
        .trim_end_matches('.')
        .to_string()
}

/// The titles of the lock marks on the sidebar's mounted volumes.
fn lock_marks(app: &Session) -> serde_json::Value {
    app.script(
        "return [...document.querySelectorAll('#images li.volume .mount-point .read-only')].map((l) => l.title);",
        json!([]),
    )
}

/// In the New Blank Image sheet (shown): a bare 40 MB volume of `fs` named `name`, saved as the
/// .cdr `file` in `dir`; returns it once the job says it was created.
fn blank_volume(app: &Session, dir: &Path, file: &str, name: &str, fs: &str) -> PathBuf {
    let out = dir.join(file);
    fill(
        app,
        json!({
            "new-output": out.display().to_string(), "new-name": name, "new-size": "40",
            "new-fs": fs, "new-format": "UDTO", "new-layout": "NONE", "new-mount": false,
        }),
    );
    app.click("#new-start");
    let (outcome, report) = job_outcome(app);
    assert!(
        outcome.starts_with(&format!("Created “{file}”")),
        "{outcome}: {report}"
    );
    out
}

/// Sets a sheet's fields by id.
fn fill(app: &Session, fields: serde_json::Value) {
    app.script(
        "for (const [id, value] of Object.entries(arguments[0])) {
           const e = document.getElementById(id);
           if (e.type === 'checkbox') e.checked = value; else e.value = value;
           e.dispatchEvent(new Event('change'));
         }",
        json!([fields]),
    );
}

/// File › New Image: from a folder (HFS+ in a UDRW, which 7-Zip reads back, then resized through
/// Images › Resize…) and blank (FAT32, encrypted), with the sheet's validation on the way; each
/// new image lands in the sidebar.
fn new_images(app: &Session, dir: &std::path::Path) {
    let src = dir.join("wizard-src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("hello.txt"), b"made by the wizard\n").unwrap();
    fs::write(src.join("sub/data.bin"), vec![42u8; 100_000]).unwrap();
    app.script(
        "window.__TAURI__.event.emit('menu', 'new-folder');",
        json!([]),
    );
    app.wait_script(
        "the New Image sheet",
        "return !document.getElementById('new-sheet').hidden;",
    );
    assert_eq!(app.text("#new-title"), "New Image from Folder");
    // Not mounted after creating: a mounted image is not resized.
    fill(
        app,
        json!({
            "new-folder": src.display().to_string(), "new-output": "", "new-name": "Wizard",
            "new-mount": false,
        }),
    );
    app.click("#new-start");
    assert_eq!(
        app.wait_text("#new-error", |t| !t.is_empty()),
        "Choose where to save the image."
    );
    let made = dir.join("wizard.dmg");
    fill(
        app,
        json!({ "new-output": made.display().to_string(), "new-format": "UDRW" }),
    );
    shots(app, "new-image-sheet");
    app.click("#new-start");
    let (said, _) = job_outcome(app);
    assert!(
        said.starts_with("Created “wizard.dmg”: 3 files and folders"),
        "{said}"
    );
    app.wait_script(
        "the new image in the sidebar",
        "return [...document.querySelectorAll('#images li.image')].some(l => l.firstChild.textContent === 'wizard.dmg');",
    );
    let listed = Command::new(program("7zz"))
        .args(["l", "-slt"])
        .arg(&made)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for path in ["Wizard/hello.txt", "Wizard/sub/data.bin"] {
        assert!(
            listed.contains(&format!("Path = {path}\n")),
            "7-Zip lists {path}: {listed}"
        );
    }

    // Images › Resize…: the sheet gives the sizes the image can take; a size past them is
    // refused in the sheet, one inside them resizes the read/write image and its volume.
    app.script("window.__TAURI__.event.emit('menu', 'resize');", json!([]));
    let limits = app.wait_text("#resize-limits", |t| t.starts_with("From "));
    assert!(limits.contains("; now "), "{limits}");
    fill(app, json!({ "resize-size": "100000000" }));
    app.click("#resize-start");
    assert!(app
        .wait_text("#resize-error", |t| !t.is_empty())
        .starts_with("Give a size from"));
    shots(app, "resize-sheet");
    fill(app, json!({ "resize-size": "20", "resize-size-unit": "6" }));
    app.click("#resize-start");
    assert!(job_outcome(app).0.starts_with("“wizard.dmg” resized to"));
    // 20 MB means 20,000,000 bytes here as in New Image: whole sectors, rounded up.
    assert!(exact_disk_size(app).starts_with("20,000,256 bytes"));
    let listed = Command::new(program("7zz"))
        .args(["l", "-slt"])
        .arg(&made)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("Path = Wizard/sub/data.bin\n"));

    // Blank, FAT32, encrypted: the passwords must match first.
    app.script(
        "window.__TAURI__.event.emit('menu', 'new-blank');",
        json!([]),
    );
    app.wait_script(
        "the blank image sheet",
        "return !document.getElementById('new-sheet').hidden && document.getElementById('new-title').textContent === 'New Blank Image';",
    );
    let blank = dir.join("blank-wizard.dmg");
    fill(
        app,
        json!({
            "new-output": blank.display().to_string(), "new-name": "BLANKONE", "new-size": "20",
            "new-fs": "FAT32", "new-encryption": "128", "new-pass": "wizard pass", "new-pass2": "typo",
            "new-mount": false,
        }),
    );
    app.click("#new-start");
    assert_eq!(
        app.wait_text("#new-error", |t| t.contains("match")),
        "The passwords do not match."
    );
    fill(app, json!({ "new-pass2": "wizard pass" }));
    app.click("#new-start");
    assert!(job_outcome(app).0.starts_with("Created “blank-wizard.dmg”"));
    // "20 MB" is 20,000,000 bytes, in whole sectors, as in Resize.
    app.wait_text("#info-disk-size", |t| !t.is_empty());
    assert!(exact_disk_size(app).starts_with("20,000,256 bytes"));
    assert_eq!(
        app.wait_text("#info-format", |t| t.contains("encrypted")),
        "Apple encrypted disk image"
    );
    assert!(
        app.text("#partitions").contains("BLANKONE"),
        "{}",
        app.text("#partitions")
    );

    // Images › Change Password…: the old password is checked, the new one typed twice.
    app.script("window.__TAURI__.event.emit('menu', 'chpass');", json!([]));
    app.wait_script(
        "the Change Password sheet",
        "return !document.getElementById('chpass-sheet').hidden;",
    );
    fill(
        app,
        json!({ "chpass-old": "not it", "chpass-new": "changed pass", "chpass-new2": "changed pass" }),
    );
    app.click("#chpass-start");
    assert_eq!(
        app.wait_text("#chpass-error", |t| !t.is_empty()),
        "The old password is wrong."
    );
    fill(
        app,
        json!({ "chpass-old": "wizard pass", "chpass-new2": "typo" }),
    );
    app.click("#chpass-start");
    assert_eq!(
        app.wait_text("#chpass-error", |t| t.contains("match")),
        "The new passwords do not match."
    );
    shots(app, "change-password-sheet");
    fill(app, json!({ "chpass-new2": "changed pass" }));
    app.click("#chpass-start");
    app.wait_text("#status", |t| {
        t.starts_with("Password changed for blank-wizard.dmg")
    });
    let opens = |pass: &str| {
        let args = ["info", blank.to_str().unwrap(), "-stdinpass"];
        dimg_e2e::run_with_input(&target_dir().join("dimg"), &args, pass.as_bytes())
            .status
            .success()
    };
    assert!(opens("changed pass") && !opens("wizard pass"));

    // Blank, APFS (#31): offered first, as Disk Utility offers it; apfsck passes the container.
    app.script(
        "window.__TAURI__.event.emit('menu', 'new-blank');",
        json!([]),
    );
    app.wait_script(
        "the blank image sheet",
        "return !document.getElementById('new-sheet').hidden && document.getElementById('new-title').textContent === 'New Blank Image';",
    );
    assert_eq!(
        app.script(
            "return [...document.getElementById('new-fs').options].slice(0, 2).map((o) => o.text);",
            json!([])
        ),
        json!(["APFS", "APFS (Case-sensitive)"])
    );
    // A .cdr, as the sheet names a UDTO image: the container itself, for apfsck.
    let made = blank_volume(app, dir, "apfs-wizard.cdr", "Wizard APFS", "APFS");
    judged_clean("apfsck", &["-cw"], &made);
    let info = dimg_json("info", &made);
    assert_eq!(info["partitions"][0]["file_system"], "APFS", "{info}");
    let volume = &info["partitions"][0]["volumes"][0];
    assert_eq!(volume["name"], "Wizard APFS", "{info}");
    assert_eq!(volume["case_sensitive"], false, "{info}");

    // ExFAT, as a USB key is formatted: Debian's fsck.exfat passes the volume.
    app.script(
        "window.__TAURI__.event.emit('menu', 'new-blank');",
        json!([]),
    );
    let exfat = blank_volume(app, dir, "exfat-wizard.cdr", "WIZKEY", "ExFAT");
    judged_clean("fsck.exfat", &["-n"], &exfat);
    assert_eq!(
        dimg_json("info", &exfat)["partitions"][0]["file_system"],
        "exFAT"
    );

    // A Disk Copy 4.2 floppy: the format picks a floppy's size and no partition map; MAME's
    // floptool reads the 800K GCR disk made, its HFS+ volume header in place.
    app.script(
        "window.__TAURI__.event.emit('menu', 'new-blank');",
        json!([]),
    );
    let floppy = dir.join("floppy.dmg");
    fill(
        app,
        json!({ "new-output": floppy.display().to_string(), "new-name": "FLOPPY", "new-mount": false }),
    );
    fill(app, json!({ "new-format": "DC42" }));
    let chosen = app.script(
        "return ['new-floppy', 'new-layout', 'new-output'].map(id => document.getElementById(id).value)
           .concat([document.getElementById('new-size-row').hidden]);",
        json!([]),
    );
    let floppy = dir.join("floppy.image");
    assert_eq!(
        chosen,
        json!(["1474560", "NONE", floppy.display().to_string(), true])
    );
    fill(app, json!({ "new-floppy": "819200" }));
    app.click("#new-start");
    assert!(job_outcome(app).0.starts_with("Created “floppy.image”"));
    assert!(app
        .wait_text("#info-format", |t| t.contains("Disk Copy"))
        .contains("Disk Copy 4.2"));
    let raw = dir.join("floppy.raw");
    let read = Command::new(program("floptool"))
        .args(["flopconvert", "dc42", "apple_gcr"])
        .arg(&floppy)
        .arg(&raw)
        .status()
        .unwrap();
    assert!(read.success());
    let raw = fs::read(&raw).unwrap();
    assert_eq!(raw.len(), 800 * 1024);
    assert_eq!(&raw[1024..1026], b"H+", "an HFS+ volume header");

    // ASIF, under Disk Utility's name, in New Image and in Convert: the image is named .asif
    // and opens as one.
    app.script(
        "window.__TAURI__.event.emit('menu', 'new-blank');",
        json!([]),
    );
    fill(
        app,
        json!({ "new-output": dir.join("vm.dmg").display().to_string(), "new-name": "VM", "new-size": "20", "new-mount": false }),
    );
    fill(app, json!({ "new-format": "ASIF" }));
    let asif = dir.join("vm.asif");
    assert_eq!(
        app.script(
            "return document.getElementById('new-output').value;",
            json!([])
        ),
        json!(asif.display().to_string())
    );
    app.click("#new-start");
    assert!(job_outcome(app).0.starts_with("Created “vm.asif”"));
    assert_eq!(
        app.wait_text("#info-format", |t| t.contains("ASIF")),
        "Apple sparse image format (ASIF)"
    );
    assert_eq!(
        app.script(
            "return document.querySelector('#convert-format option[value=ASIF]').textContent;",
            json!([])
        ),
        json!("ASIF (Apple Sparse Image Format)")
    );
}

/// The file browser: an ISO's volume in the sidebar, its folders expanding in place, Export… of
/// a selected file with the progress sheet, and a double-click that opens a copy.
fn browse_a_volume(
    app: &Session,
    dir: &std::path::Path,
    opened_copy: &std::path::Path,
    display: &str,
) {
    let src = dir.join("browse-src");
    fs::create_dir_all(src.join("docs/inner")).unwrap();
    fs::write(
        src.join("docs/readme.txt"),
        b"read me, from inside an image\n",
    )
    .unwrap();
    fs::write(src.join("docs/inner/deep.bin"), vec![7u8; 300_000]).unwrap();
    fs::write(src.join("top.txt"), b"at the top\n").unwrap();
    let iso = dir.join("browse.iso");
    let made = Command::new(program("genisoimage"))
        .args(["-quiet", "-R", "-J", "-V", "BROWSEME", "-o"])
        .arg(&iso)
        .arg(&src)
        .status()
        .unwrap();
    assert!(made.success());
    app.script(
        "window.openPath(arguments[0]);",
        json!([iso.display().to_string()]),
    );
    app.wait_script(
        "the ISO's volume in the sidebar",
        "const items = [...document.querySelectorAll('#images li')];
         const at = items.findIndex(l => l.classList.contains('image') && l.firstChild.textContent === 'browse.iso');
         const volume = items[at + 1];
         if (!volume || !volume.classList.contains('volume')) return false;
         volume.click();
         return true;",
    );
    assert_eq!(
        app.wait_text("#browser-name", |t| t == "BROWSEME"),
        "BROWSEME"
    );
    let names = |app: &Session| {
        app.script(
            "return [...document.querySelectorAll('#files tbody tr')].map(r => r.dataset.path);",
            json!([]),
        )
    };
    app.wait_script(
        "the root listing",
        "return document.querySelectorAll('#files tbody tr').length === 2;",
    );
    assert_eq!(names(app), json!(["/docs", "/top.txt"]));
    // A click on a folder's triangle opens it in place, under it.
    app.script(
        "document.querySelector('#files tr[data-path=\"/docs\"] .toggle').click();",
        json!([]),
    );
    app.wait_script(
        "docs opened",
        "return document.querySelectorAll('#files tbody tr').length === 4;",
    );
    assert_eq!(
        names(app),
        json!(["/docs", "/docs/inner", "/docs/readme.txt", "/top.txt"])
    );
    shots(app, "file-browser");

    // Export… of the selected file into a new folder.
    app.script(
        "document.querySelector('#files tr[data-path=\"/docs/readme.txt\"]').click();",
        json!([]),
    );
    app.click("#export");
    let exported = dir.join("exported");
    app.script(
        "document.getElementById('export-output').value = arguments[0];",
        json!([exported.display().to_string()]),
    );
    app.click("#export-start");
    let (said, report) = job_outcome(app);
    assert!(said.starts_with("Exported 1 files, 0 folders"), "{said}");
    assert!(report.contains("1 files, 0 folders"), "{report}");
    assert_eq!(
        fs::read(exported.join("readme.txt")).unwrap(),
        fs::read(src.join("docs/readme.txt")).unwrap()
    );

    // A double-click on a file extracts it and hands it to the opener.
    app.script(
        "document.querySelector('#files tr[data-path=\"/top.txt\"]')
            .dispatchEvent(new MouseEvent('dblclick', { bubbles: true }));",
        json!([]),
    );
    let said = app.wait_text("#status", |t| t.starts_with("Opened top.txt"));
    assert!(said.contains("dimg-open-"), "{said}");
    dimg_e2e::wait_until(
        "the opener's copy",
        std::time::Duration::from_secs(10),
        || fs::metadata(opened_copy).is_ok_and(|m| m.len() == 11),
    );
    assert_eq!(fs::read(opened_copy).unwrap(), b"at the top\n");
    drag_out(app, display);

    // The keyboard: ↑ from the volume selects its image (info shows), Return opens the volume,
    // Ctrl-I shows the image's info again, Delete closes the image.
    const UP: &str = "\u{E013}";
    const RETURN: &str = "\u{E007}";
    const CONTROL: &str = "\u{E009}";
    const DELETE: &str = "\u{E017}";
    app.press(&[UP]);
    assert_eq!(
        app.wait_text("#info-name", |t| t == "browse.iso"),
        "browse.iso"
    );
    app.press(&[RETURN]);
    app.wait_script(
        "Return opens the volume",
        "return !document.getElementById('browser').hidden;",
    );
    app.press(&[CONTROL, "i"]);
    app.wait_script(
        "Ctrl-I shows the image's info",
        "return !document.getElementById('info').hidden;",
    );
    shots(app, "keyboard");
    app.press(&[DELETE]);
    app.wait_script(
        "Delete closes the image",
        "return ![...document.querySelectorAll('#images li.image')].some(l => l.firstChild.textContent === 'browse.iso');",
    );
    // Opened again for what follows.
    app.script(
        "window.openPath(arguments[0]);",
        json!([iso.display().to_string()]),
    );
    app.wait_script(
        "browse.iso back in the sidebar",
        "return [...document.querySelectorAll('#images li.image')].some(l => l.firstChild.textContent === 'browse.iso');",
    );
}

/// Drag-out with a real pointer (xdotool, on the X server the window is on): top.txt dragged
/// from the browser starts a native drag of its extracted copy, which a drop target receives as
/// a file. The drop target here is the window's own sidebar, where a dropped file is opened as
/// an image: its path in the status is the file the drag carried.
fn drag_out(app: &Session, display: &str) {
    let xdotool = |args: &[&str]| {
        let done = Command::new(program("xdotool"))
            .args(args)
            .env("DISPLAY", display)
            .status()
            .unwrap();
        assert!(done.success(), "xdotool {args:?}");
    };
    let at = app.script(
        "const r = document.querySelector('#files tr[data-path=\"/top.txt\"]').getBoundingClientRect();
         // The page sits below the window's menu bar: the difference of outer and inner heights.
         const top = screenY + outerHeight - innerHeight;
         return [Math.round(screenX + r.left + 20), Math.round(top + r.top + r.height / 2)];",
        json!([]),
    );
    let (x, y) = (at[0].as_i64().unwrap(), at[1].as_i64().unwrap());
    xdotool(&["mousemove", &x.to_string(), &y.to_string()]);
    xdotool(&["mousedown", "1"]);
    for step in 1..=4 {
        xdotool(&[
            "mousemove",
            &(x + 6 * step).to_string(),
            &(y + 4 * step).to_string(),
        ]);
    }
    app.wait_text("#status", |t| t.starts_with("Drop top.txt"));
    for step in 1..=6 {
        let (to_x, to_y) = (x - (x - 100) * step / 6, y + (600 - y) * step / 6);
        xdotool(&["mousemove", &to_x.to_string(), &to_y.to_string()]);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    xdotool(&["mouseup", "1"]);
    let (said, technical) = alert(app);
    assert_eq!(
        said,
        "“top.txt” can't be opened because it isn't a disk image dimg recognises."
    );
    let dropped = technical.split(": not a disk image").next().unwrap();
    assert!(
        dropped.ends_with("/top.txt") && dropped.contains("dimg-drag-"),
        "{technical}"
    );
    assert_eq!(fs::read(dropped).unwrap(), b"at the top\n");
}

fn make_sparse_iso(path: &std::path::Path, sectors: u32) {
    let mut pvd = vec![0u8; 34816];
    let d = &mut pvd[32768..];
    d[0] = 1;
    d[1..6].copy_from_slice(b"CD001");
    d[80..84].copy_from_slice(&sectors.to_le_bytes());
    d[84..88].copy_from_slice(&sectors.to_be_bytes());
    d[128..130].copy_from_slice(&2048u16.to_le_bytes());
    fs::write(path, &pvd).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(u64::from(sectors) * 2048)
        .unwrap();
}

/// The sidebar names a volume as Disk Utility does, by its own name ("KaitoTest"), with its
/// partition in the detail line; each kind has its own icon (an image, a volume, an optical
/// disc, an APFS container), drawn differently. The browser's rows carry file-kind icons, Date
/// Modified keeps to one line at the default window size, and a click on a header sorts (the
/// order is remembered).
#[test]
fn the_sidebar_names_volumes_by_their_name_with_an_icon_per_kind() {
    let dir = tempfile_dir("sidebar");
    let hfs = corpus().join("dmg/kaitokit-hfs-zlib.dmg");
    let iso = corpus().join("iso/joliet.iso");
    let apfs = corpus().join("dmg/dmgwiz-zlib.dmg");
    let desktop = Desktop::start(&dir, &[&hfs, &iso, &apfs]);
    let app = &desktop.app;
    app.wait_script(
        "three images in the sidebar",
        "return document.querySelectorAll('#images li.image').length === 3;",
    );
    let rows = app.script(
        "return [...document.querySelectorAll('#images li')].map((li) => ({
           name: li.firstChild.textContent,
           detail: li.querySelector('.kind')?.textContent,
           icon: [...li.classList].find((c) => c.startsWith('icon-')),
           drawn: getComputedStyle(li, '::before').backgroundImage,
         }));",
        json!([]),
    );
    let rows = rows.as_array().unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} in the sidebar: {rows:?}"))
    };
    let kaito = row("KaitoTest");
    let detail = kaito["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("HFS+ · partition 1 “disk image”"),
        "{detail}"
    );
    assert_eq!(kaito["icon"], "icon-volume");
    assert_eq!(row("kaitokit-hfs-zlib.dmg")["icon"], "icon-disk-image");
    assert_eq!(row("APFS Container")["icon"], "icon-apfs-container");
    assert_eq!(row("empty")["icon"], "icon-volume");
    let joliet_volume = rows
        .iter()
        .find(|r| r["icon"] == "icon-optical-disc")
        .expect("the ISO's volume drawn as a disc");
    // Each kind drawn with its own picture.
    let kinds: std::collections::BTreeMap<String, String> = [
        kaito,
        row("kaitokit-hfs-zlib.dmg"),
        row("APFS Container"),
        joliet_volume,
    ]
    .iter()
    .map(|r| {
        (
            r["icon"].as_str().unwrap().to_string(),
            r["drawn"].as_str().unwrap().to_string(),
        )
    })
    .collect();
    let pictures: std::collections::BTreeSet<&String> = kinds.values().collect();
    assert_eq!(pictures.len(), 4, "{kinds:?}");
    assert!(pictures.iter().all(|p| p.contains(".svg")), "{kinds:?}");

    app.script(
        "[...document.querySelectorAll('#images li.volume')].find((li) => li.firstChild.textContent === 'KaitoTest').click();",
        json!([]),
    );
    app.wait_script(
        "the volume's files",
        "return document.querySelectorAll('#files tbody tr').length > 2;",
    );
    let listed = "return [...document.querySelectorAll('#files tbody tr')].map((r) => ({
           path: r.dataset.path,
           icon: r.querySelector('.file-icon').className,
           dateFits: r.cells[3].scrollWidth <= r.cells[3].clientWidth,
           height: r.getBoundingClientRect().height,
         }));";
    let before = app.script(listed, json!([]));
    let before = before.as_array().unwrap();
    let icons: std::collections::BTreeSet<&str> =
        before.iter().map(|r| r["icon"].as_str().unwrap()).collect();
    assert!(
        icons.contains("file-icon folder") && icons.contains("file-icon file"),
        "{icons:?}"
    );
    assert!(before.iter().all(|r| r["dateFits"] == true), "{before:?}");
    let heights: std::collections::BTreeSet<i64> = before
        .iter()
        .map(|r| r["height"].as_f64().unwrap().round() as i64)
        .collect();
    assert_eq!(heights.len(), 1, "every row one line high: {heights:?}");
    app.click("#files thead th:first-child");
    let after = app.script(listed, json!([]));
    let paths = |rows: &serde_json::Value| -> Vec<String> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_string())
            .collect()
    };
    let mut reversed = paths(&json!(before));
    reversed.reverse();
    assert_eq!(paths(&after), reversed, "a click on Name sorts Z to A");
    let kept = app.script(
        "return JSON.parse(localStorage.getItem('dimg.layout')).sort;",
        json!([]),
    );
    assert_eq!(kept, json!({"column": 0, "descending": true}));
    app.click("#files thead th:first-child");
    drop(desktop);
    let _ = fs::remove_dir_all(&dir);
}

/// The window behaves as a Mac user expects (#39): an image that cannot be opened is an alert
/// that leads with a sentence and adds nothing to the sidebar; the menus and the toolbar offer
/// only what the selection allows (a plain UDZO, an encrypted image, a read/write image,
/// nothing selected), and a disabled action chosen anyway does nothing; Esc closes every sheet
/// and Return confirms; the encrypted sparse bundle's summary says AES-128 with its lock; the
/// status line goes with its selection; the window's title is the selected item; the toolbar's
/// items keep their places as Mount becomes Eject; Ctrl+Q quits.
#[test]
fn behaves_as_a_mac_user_expects() {
    let dir = tempfile_dir("mac-behaviour");
    let udrw = dir.join("blank.dmg");
    dimg_ok(&[
        "create",
        "-size",
        "8m",
        "-fs",
        "HFS+",
        "-volname",
        "Blank",
        udrw.to_str().unwrap(),
    ]);
    let udzo = corpus().join("dmg/dmgwiz-zlib.dmg");
    let encrypted = dimg_e2e::truths()
        .into_iter()
        .find(|t| t.passphrase.is_some() && t.file.ends_with(".dmg"))
        .unwrap();
    let bundle = corpus().join("sparse/jief666-test1enc.sparsebundle");
    let desktop = Desktop::start(&dir, &[]);
    let (app, display) = (&desktop.app, &desktop.display);
    app.wait_script("the menus told", "return !!window.menuState;");
    // Nothing selected: only what needs no image.
    let menus = app.script("return window.menuState.enabled;", json!([]));
    for (item, on) in [
        ("new-blank", true),
        ("open", true),
        ("new-device", false),
        ("close", false),
        ("mount", false),
        ("eject", false),
        ("verify", false),
        ("convert", false),
        ("chpass", false),
    ] {
        assert_eq!(
            menus[item],
            json!(on),
            "{item} with nothing selected: {menus}"
        );
    }
    let toolbar = app.script(
        "return [...document.querySelectorAll('#toolbar button')].filter((b) => !b.disabled).map((b) => b.id);",
        json!([]),
    );
    assert_eq!(toolbar, json!(["new-image", "open"]));
    let open_with = |path: &Path, pass: &str| {
        app.script(
            "window.openPath(arguments[0], arguments[1] || null);",
            json!([path.display().to_string(), pass]),
        );
    };
    open_with(&udzo, "");
    open_with(&udrw, "");
    open_with(&encrypted.path(), encrypted.passphrase.as_deref().unwrap());
    open_with(&bundle, "foo");
    app.wait_script(
        "four images in the sidebar",
        "return document.querySelectorAll('#images li.image').length === 4;",
    );

    // A malformed cue sheet from the corpus: an alert, a sentence first, and no sidebar item.
    let bad = corpus().join("cd/bad-mode1.cue");
    app.script(
        "window.openPath(arguments[0]);",
        json!([bad.display().to_string()]),
    );
    let (said, technical) = alert(app);
    assert_eq!(
        said,
        "“bad-mode1.cue” can't be opened because part of its data is damaged."
    );
    let cli = Command::new(target_dir().join("dimg"))
        .arg("info")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        format!("dimg: {technical}"),
        String::from_utf8_lossy(&cli.stderr).trim_end(),
        "Details holds the command line's message"
    );
    // A sheet whose track file is elsewhere is not damaged: it misses a file.
    app.script(
        "window.openPath(arguments[0]);",
        json!([corpus().join("cd/p1.cue").display().to_string()]),
    );
    let (said, technical) = alert(app);
    assert_eq!(
        said,
        "“p1.cue” can't be opened because a file it needs can't be found."
    );
    assert!(
        technical.contains("missing track file BOING.BIN"),
        "{technical}"
    );
    assert_eq!(
        app.script(
            "return document.querySelectorAll('#images li.image').length;",
            json!([])
        ),
        json!(4),
        "nothing added"
    );

    // The encrypted sparse bundle: AES-128 in the summary, as in Details, and its lock.
    select(app, "jief666-test1enc.sparsebundle");
    assert_eq!(
        app.wait_text("#info-encryption", |t| t != "None"),
        "AES-128 (the image is encrypted)"
    );
    assert!(app.text("#info-facts").contains("AES-128"));
    assert_eq!(
        app.script(
            "return getComputedStyle(document.querySelector('#images li.image.selected'), '::after').backgroundImage;",
            json!([])
        )
        .as_str()
        .map(|s| s.contains("lock.svg")),
        Some(true),
        "the lock drawn on its row"
    );

    // The menus follow the selection.
    let enabled = |name: &str| {
        select(app, name);
        app.script("return window.menuState.enabled;", json!([]))
    };
    let menus = enabled("dmgwiz-zlib.dmg");
    for (item, on) in [
        ("mount", true),
        ("eject", false),
        ("verify", true),
        ("convert", true),
        ("resize", false),
        ("compact", false),
        ("chpass", false),
        ("forget-password", false),
        ("close", true),
    ] {
        assert_eq!(menus[item], json!(on), "{item} on a UDZO: {menus}");
    }
    let menus = enabled(encrypted.file.rsplit('/').next().unwrap());
    assert_eq!(menus["chpass"], json!(true), "{menus}");
    assert_eq!(menus["forget-password"], json!(true), "{menus}");
    assert_eq!(
        menus["resize"],
        json!(false),
        "an encrypted image is not resized: {menus}"
    );
    let menus = enabled("blank.dmg");
    assert_eq!(menus["resize"], json!(true), "{menus}");
    assert_eq!(menus["compact"], json!(false), "UDRW has no bands: {menus}");
    assert_eq!(menus["chpass"], json!(false), "{menus}");
    let menus = enabled("jief666-test1enc.sparsebundle");
    assert_eq!(menus["compact"], json!(true), "{menus}");
    // Chosen anyway (a key outrunning the menu): nothing happens, not even an error.
    select(app, "dmgwiz-zlib.dmg");
    app.script("window.__TAURI__.event.emit('menu', 'compact');", json!([]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        app.script(
            "return [...document.querySelectorAll('.sheet')].filter((s) => !s.hidden).map((s) => s.id);",
            json!([])
        ),
        json!([]),
        "no sheet, no alert"
    );

    // The status line goes with its selection.
    app.script("window.__TAURI__.event.emit('menu', 'about');", json!([]));
    app.wait_text("#status", |t| t.starts_with("dimg — "));
    select(app, "blank.dmg");
    assert_eq!(app.text("#status"), "", "the last selection's line is gone");

    // The window's title is the selected item.
    let titled = |title: &str| {
        Command::new(program("xdotool"))
            .args(["search", "--name", &format!("^{title}$")])
            .env("DISPLAY", display)
            .output()
            .unwrap()
            .status
            .success()
    };
    dimg_e2e::wait_until(
        "the window titled by the selection",
        std::time::Duration::from_secs(10),
        || titled("blank.dmg — dimg"),
    );

    // Esc cancels each sheet; each opens fresh.
    const ESCAPE: &str = "\u{E00C}";
    const RETURN: &str = "\u{E007}";
    for (menu, sheet, on) in [
        ("new-blank", "new-sheet", "blank.dmg"),
        ("new-folder", "new-sheet", "blank.dmg"),
        ("convert", "convert-sheet", "blank.dmg"),
        ("resize", "resize-sheet", "blank.dmg"),
        ("burn", "burn-sheet", "blank.dmg"),
        ("chpass", "chpass-sheet", "jief666-test1enc.sparsebundle"),
    ] {
        select(app, on);
        app.script(
            "window.__TAURI__.event.emit('menu', arguments[0]);",
            json!([menu]),
        );
        let shown = format!("return !document.getElementById('{sheet}').hidden;");
        app.wait_script(&format!("{sheet} for {menu}"), &shown);
        app.press(&[ESCAPE]);
        app.wait_script(
            &format!("Esc to close {sheet}"),
            &format!("return document.getElementById('{sheet}').hidden;"),
        );
    }
    // The browser's Export… sheet too, on the blank image's volume.
    app.script(
        "[...document.querySelectorAll('#images li.volume')].find((li) => li.firstChild.textContent === 'Blank').click();",
        json!([]),
    );
    app.click("#export");
    app.wait_script(
        "the Export sheet",
        "return !document.getElementById('export-sheet').hidden;",
    );
    app.press(&[ESCAPE]);
    app.wait_script(
        "Esc to close the Export sheet",
        "return document.getElementById('export-sheet').hidden;",
    );
    app.script(
        "window.__TAURI__.event.emit('menu', 'new-blank');",
        json!([]),
    );
    app.wait_script(
        "the New Image sheet",
        "return !document.getElementById('new-sheet').hidden;",
    );
    let fresh = app.script(
        "return ['new-name', 'new-output', 'new-size', 'new-size-unit'].map((id) => document.getElementById(id).value);",
        json!([]),
    );
    let home = PathBuf::from(std::env::var_os("HOME").unwrap());
    let folder = match home.join("Desktop") {
        desktop if desktop.is_dir() => desktop,
        _ => home,
    };
    assert_eq!(
        fresh,
        json!([
            "untitled",
            format!("{}/untitled.dmg", folder.display()),
            "100",
            "6"
        ]),
        "untitled, in the Desktop folder (else the home folder)"
    );
    app.press(&[ESCAPE]);

    // Return confirms: Convert of the UDZO starts at Return, and ends in its sheet.
    select(app, "dmgwiz-zlib.dmg");
    app.script("window.__TAURI__.event.emit('menu', 'convert');", json!([]));
    app.wait_script(
        "the Convert sheet",
        "return !document.getElementById('convert-sheet').hidden;",
    );
    let out = dir.join("by-return.dmg");
    fill(app, json!({ "convert-output": out.display().to_string() }));
    app.press(&[RETURN]);
    let (outcome, _) = job_outcome(app);
    assert!(outcome.contains("saved as “by-return.dmg”"), "{outcome}");
    assert!(out.exists());

    // Fixed-width toolbar items: Mount becoming Eject moves nothing.
    let places = "return [...document.querySelectorAll('#toolbar button')].map((b) => {
           const r = b.getBoundingClientRect(); return [b.id, Math.round(r.left), Math.round(r.width)]; });";
    select(app, "blank.dmg");
    let before = app.script(places, json!([]));
    app.click("#mount");
    mount_point_said(app, " mounted at ");
    app.wait_text("#mount", |t| t == "Eject");
    assert_eq!(
        app.script(places, json!([])),
        before,
        "the toolbar kept its places"
    );
    let widths: std::collections::BTreeSet<i64> = before
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[2].as_i64().unwrap())
        .collect();
    assert_eq!(widths.len(), 1, "one width for every item: {before}");
    let menus = app.script("return window.menuState.enabled;", json!([]));
    assert_eq!(
        [&menus["mount"], &menus["eject"], &menus["resize"]],
        [&json!(false), &json!(true), &json!(false)],
        "mounted: Eject, and no Resize: {menus}"
    );
    app.click("#mount");
    app.wait_text("#status", |t| t.contains("ejected"));
    shots(app, "toolbar");

    // At the smallest size the window takes, nothing scrolls sideways and every toolbar item shows.
    select(app, "blank.dmg");
    app.script(
        "[...document.querySelectorAll('#images li.volume')].find((li) => li.firstChild.textContent === 'Blank').click();",
        json!([]),
    );
    app.script(
        "window.__TAURI__.window.getCurrentWindow().setSize(new window.__TAURI__.dpi.LogicalSize(720, 420));",
        json!([]),
    );
    app.wait_script("the smallest window", "return innerWidth <= 720;");
    app.wait_script(
        "nothing wider than the window",
        "const pane = document.getElementById('pane');
         const last = [...document.querySelectorAll('#toolbar button')].pop().getBoundingClientRect();
         return pane.scrollWidth <= pane.clientWidth && last.right <= innerWidth
           && !document.getElementById('browser').hidden;",
    );
    shots(app, "smallest-window");
    // Back to the default size, which the next launch (another test) remembers.
    app.script(
        "window.__TAURI__.window.getCurrentWindow().setSize(new window.__TAURI__.dpi.LogicalSize(1024, 660));",
        json!([]),
    );
    app.wait_script(
        "the default size remembered",
        "return JSON.parse(localStorage.getItem('dimg.layout')).window?.[0] === 1024;",
    );

    // Ctrl+Q quits (the window goes; its mounts would stay, being servers of their own).
    select(app, "blank.dmg");
    dimg_e2e::wait_until(
        "the window titled by the image again",
        std::time::Duration::from_secs(10),
        || titled("blank.dmg — dimg"),
    );
    assert!(
        titled("(.* — )?dimg"),
        "the pattern the quit is checked by finds the window"
    );
    // Pressed again while xdotool fails: a window it found can be one GTK has just replaced
    // (BadWindow, seen on loaded runs).
    dimg_e2e::wait_until(
        "xdotool to press Ctrl+Q",
        std::time::Duration::from_secs(10),
        || {
            let keyed = Command::new(program("xdotool"))
                .args([
                    "search",
                    "--name",
                    "^blank.dmg — dimg$",
                    "windowfocus",
                    "key",
                    "--clearmodifiers",
                    "ctrl+q",
                ])
                .env("DISPLAY", display)
                .output()
                .unwrap();
            if !keyed.status.success() {
                eprintln!("xdotool: {}", String::from_utf8_lossy(&keyed.stderr));
            }
            // xdotool fails when one of the windows it matched was replaced, even though the
            // key reached the live one and the app quit: then no window is titled so.
            keyed.status.success() || !titled("blank.dmg — dimg")
        },
    );
    dimg_e2e::wait_until(
        "Ctrl+Q to quit the app (no window of dimg's left)",
        std::time::Duration::from_secs(20),
        || !titled("(.* — )?dimg"),
    );
    drop(desktop);
    let _ = fs::remove_dir_all(&dir);
}

/// The summary's facts come from the engine, as `dimg info --json` gives them (#39), for every
/// image of the corpus: its format, size, partition map, encryption, volumes and the space they
/// use and leave (an APFS container's volumes share one free space: counted once). An image the
/// command line cannot open is an alert in the window, and no sidebar item.
#[test]
fn the_summary_says_what_dimg_info_says_for_every_corpus_image() {
    let dir = tempfile_dir("summaries");
    let desktop = Desktop::start(&dir, &[]);
    let app = &desktop.app;
    app.wait_script("the page", "return !!window.openPath;");
    let grouped = |n: u64| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    // A judge of the summary's rounding, written apart from the engine's: the largest unit of
    // which the value rounds to at least 1 (1 KB = 1,000 bytes), in tenths.
    let decimal = |n: u64| {
        let units = ["KB", "MB", "GB", "TB"];
        let tenths = |k: i32| (n as f64 / 1000f64.powi(k) * 10.0).round() / 10.0;
        match (1..=units.len() as i32)
            .rev()
            .find(|&k| tenths(k - 1) >= 1000.0)
        {
            Some(k) => {
                let shown = format!("{:.1}", tenths(k));
                format!("{} {}", shown.trim_end_matches(".0"), units[k as usize - 1])
            }
            None => format!("{} bytes", grouped(n)),
        }
    };
    let (mut compared, mut refused) = (0, 0);
    for truth in dimg_e2e::truths() {
        let path = truth.path();
        let pass = truth.passphrase.clone().unwrap_or_default();
        let cli = dimg_e2e::run_with_input(
            &target_dir().join("dimg"),
            &["info", "--json", "-stdinpass", path.to_str().unwrap()],
            pass.as_bytes(),
        );
        let count = "return document.querySelectorAll('#images li.image').length;";
        let before = app.script(count, json!([]));
        app.script(
            "state.opened = null;
             window.openPath(arguments[0], arguments[1] || null).then((e) => { state.opened = e ? 'failed' : 'opened'; });",
            json!([path.display().to_string(), pass]),
        );
        app.wait_script(
            &format!("{} to open or fail", truth.file),
            "return state.opened !== null;",
        );
        if !cli.status.success() {
            let (said, _) = alert(app);
            assert!(
                said.contains(" can't be opened because "),
                "{}: {said}",
                truth.file
            );
            assert_eq!(
                app.script(count, json!([])),
                before,
                "{}: no sidebar item",
                truth.file
            );
            refused += 1;
            continue;
        }
        let info: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
        let shown = app.script(
            "return ['info-format', 'info-exact-disk-size', 'info-scheme', 'info-encryption', 'info-volumes', 'info-exact-used', 'info-exact-available', 'info-disk-size']
               .map((id) => document.getElementById(id).textContent);",
            json!([]),
        );
        let shown: Vec<String> = serde_json::from_value(shown).unwrap();
        let file = &truth.file;
        assert_eq!(shown[0], info["format"], "{file}");
        let disk = info["disk_size"].as_u64().unwrap();
        assert!(
            shown[1].starts_with(&format!("{} bytes", grouped(disk))),
            "{file}: {}",
            shown[1]
        );
        // The summary rounds it as a Mac does: decimal units, one decimal place at most.
        assert_eq!(shown[7], decimal(disk), "{file}");
        assert_eq!(shown[2], info["partition_scheme"], "{file}");
        let encryption = match info["encryption"].as_str() {
            Some(e) => format!("{e} (the image is encrypted)"),
            None => "None".into(),
        };
        assert_eq!(shown[3], encryption, "{file}");
        // Volumes as the engine lists them, and the space they use and leave.
        let (mut names, mut used, mut free) = (Vec::new(), 0u64, 0u64);
        for p in info["partitions"].as_array().unwrap() {
            let volumes = p["volumes"].as_array().unwrap();
            let fs = p["file_system"].as_str().unwrap_or_default();
            for v in volumes {
                let name = v["name"].as_str().unwrap();
                let role = v["role"]
                    .as_str()
                    .map(|r| format!(", {r}"))
                    .unwrap_or_default();
                names.push(format!(
                    "{} ({fs}{role})",
                    if name.is_empty() { "(untitled)" } else { name }
                ));
            }
            if let Some(first) = volumes.first() {
                let u: u64 = volumes
                    .iter()
                    .map(|v| v["used"].as_u64().unwrap_or(0))
                    .sum();
                used += u;
                free += first["available"]
                    .as_u64()
                    .unwrap_or_else(|| p["size"].as_u64().unwrap().saturating_sub(u));
            }
        }
        let names = if names.is_empty() {
            "none dimg can browse".to_string()
        } else {
            names.join(", ")
        };
        assert_eq!(shown[4], names, "{file}");
        if !names.starts_with("none") && used + free > 0 {
            assert!(
                shown[5].starts_with(&format!("{} bytes", grouped(used))),
                "{file}: used {}",
                shown[5]
            );
            assert!(
                shown[6].starts_with(&format!("{} bytes", grouped(free))),
                "{file}: free {}",
                shown[6]
            );
        }
        compared += 1;
        app.script("window.__TAURI__.event.emit('menu', 'close');", json!([]));
    }
    eprintln!("{compared} corpus images compared with dimg info; {refused} refused by both");
    assert!(compared >= 30, "only {compared} corpus images compared");
    drop(desktop);
    let _ = fs::remove_dir_all(&dir);
}

/// #31: a volume APFS encrypted by itself (the container dissect.apfs's makers encrypted on a
/// Mac, in an image that is not) is drawn locked and dimmed; selecting it asks for the volume's
/// password with its hint, not the image's, and never offers the keychain (it knows images by
/// their own encryption). A wrong password keeps the sheet up; the right one lists the volume
/// as its ground truth has it, and Mount serves it with the same password.
#[test]
fn a_locked_apfs_volume_asks_for_its_password_when_opened() {
    let dir = tempfile_dir("apfs-locked");
    let truth = dimg_e2e::truths()
        .into_iter()
        .find(|t| t.file == "apfs/dissect-encrypted.bin")
        .expect("the encrypted APFS container is in expected.tsv");
    let image = dir.join("locked-apfs.bin");
    fs::copy(truth.path(), &image).unwrap();
    let desktop = Desktop::start(&dir, &[&image]);
    let app = &desktop.app;
    app.wait_script(
        "the locked volume in the sidebar",
        "return [...document.querySelectorAll('#images li.volume')]
           .some((li) => li.firstChild.textContent === 'Encrypted');",
    );
    let classes = |app: &Session| {
        app.script(
            "return [...[...document.querySelectorAll('#images li.volume')]
               .find((li) => li.firstChild.textContent === 'Encrypted').classList];",
            json!([]),
        )
    };
    let before = classes(app);
    for class in ["encrypted", "locked"] {
        assert!(
            before.as_array().unwrap().contains(&json!(class)),
            "{before}"
        );
    }
    app.script(
        "[...document.querySelectorAll('#images li.volume')]
           .find((li) => li.firstChild.textContent === 'Encrypted').click();",
        json!([]),
    );
    app.wait_script(
        "the passphrase sheet",
        "return !document.getElementById('passphrase-sheet').hidden;",
    );
    assert_eq!(app.text("#passphrase-what"), "the volume");
    assert_eq!(
        app.text("#passphrase-name"),
        "“Encrypted” of “locked-apfs.bin”"
    );
    assert_eq!(app.text("#passphrase-hint"), "Hint: It's 'password'");
    assert_eq!(
        app.script(
            "return ['passphrase-remember-row', 'passphrase-store']
               .map((id) => document.getElementById(id).offsetParent === null);",
            json!([])
        ),
        json!([true, true]),
        "no keychain offered for a volume's password"
    );
    app.type_text("#passphrase", "not the password");
    app.click("#passphrase-open");
    let said = app.wait_text("#passphrase-error", |t| !t.is_empty());
    assert_eq!(said, "Wrong password. Try again.");
    app.type_text("#passphrase", truth.passphrase.as_deref().unwrap());
    shots(app, "passphrase-volume");
    app.click("#passphrase-open");

    // The root as the ground truth (dissect.apfs, unlocked) lists it.
    let files =
        fs::read_to_string(corpus().join("expected-files/dissect-encrypted.bin.tsv")).unwrap();
    let expected: std::collections::BTreeSet<String> = files
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next()?.strip_prefix("Encrypted/"))
        .map(|p| format!("/{}", p.split('/').next().unwrap()))
        .collect();
    // Its files are the ground truth's (which lists files only); the rest are its symlinks.
    app.wait_script(
        "the unlocked volume's listing",
        "return document.getElementById('passphrase-sheet').hidden
           && document.querySelectorAll('#files tbody tr').length > 0;",
    );
    let rows: Vec<(String, String)> = serde_json::from_value(app.script(
        "return [...document.querySelectorAll('#files tbody tr')]
           .map(r => [r.dataset.path, r.querySelector('.file-icon').className]);",
        json!([]),
    ))
    .unwrap();
    let (links, listed): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|(_, icon)| icon.ends_with(" link"));
    let listed: std::collections::BTreeSet<String> = listed.into_iter().map(|r| r.0).collect();
    assert_eq!(listed, expected);
    assert_eq!(links.len(), 2, "{links:?}");
    let after = classes(app);
    assert!(
        after.as_array().unwrap().contains(&json!("encrypted")),
        "{after}"
    );
    assert!(
        !after.as_array().unwrap().contains(&json!("locked")),
        "{after}"
    );

    // Mount: the volume served unlocked, a file as the ground truth has it.
    app.click("#mount");
    let point = mount_point_said(app, " mounted read-only at ");
    let (name, sha) = files
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f[0].starts_with("Encrypted/dir/") && f[1] != "0")
        .map(|f| {
            (
                f[0].trim_start_matches("Encrypted/").to_string(),
                f[2].to_string(),
            )
        })
        .expect("a file with data in the ground truth");
    assert_eq!(sha256sum(&Path::new(&point).join(&name)), sha, "{name}");
    app.click("#mount");
    app.wait_text("#status", |t| t.ends_with("ejected."));
    assert!(!Path::new(&point).exists(), "{point} is left behind");
    drop(desktop);
    fs::remove_dir_all(&dir).unwrap();
}

/// File › Open Location…: an image at an http:// address (here on a local range server) opens in
/// the sidebar, its volume lists what the ground truth lists, and it mounts read-only, a file read
/// through the mount as the ground truth has it; an address that is not http(s) is refused in the
/// sheet.
#[test]
fn file_open_location_opens_an_image_where_it_lives() {
    let dir = tempfile_dir("open-location");
    let folder = dir.join("served");
    fs::create_dir_all(&folder).unwrap();
    fs::copy(
        corpus().join("dmg/kaitokit-hfs-zlib.dmg"),
        folder.join("kaito.dmg"),
    )
    .unwrap();
    let server = dimg_e2e::RangeServer::start(&folder, "ranges");
    let desktop = Desktop::start(&dir, &[]);
    let app = &desktop.app;
    app.wait_script("the menus told", "return !!window.menuState;");
    assert_eq!(
        app.script(
            "return window.menuState.enabled['open-location'];",
            json!([])
        ),
        json!(true)
    );
    app.script(
        "window.__TAURI__.event.emit('menu', 'open-location');",
        json!([]),
    );
    app.wait_script(
        "the location sheet",
        "return !document.getElementById('location-sheet').hidden;",
    );
    app.type_text("#location-url", "ftp://example.com/image.dmg");
    app.click("#location-open");
    let said = app.wait_text("#location-error", |t| !t.is_empty());
    assert!(said.contains("http://"), "{said}");
    app.script(
        "document.getElementById('location-url').value = '';",
        json!([]),
    );
    app.type_text("#location-url", &server.url("kaito.dmg"));
    assert_eq!(app.text("#location-error"), "", "the error goes on typing");
    shots(app, "open-location");
    app.click("#location-open");
    app.wait_script(
        "the image's volume in the sidebar",
        "return [...document.querySelectorAll('#images li.volume')]
           .some((li) => li.firstChild.textContent === 'KaitoTest');",
    );
    app.script(
        "[...document.querySelectorAll('#images li.volume')]
           .find((li) => li.firstChild.textContent === 'KaitoTest').click();",
        json!([]),
    );
    app.wait_script(
        "the volume's listing",
        "return document.querySelectorAll('#files tbody tr').length > 0;",
    );
    let truth =
        fs::read_to_string(corpus().join("expected-files/kaitokit-hfs-zlib.dmg.tsv")).unwrap();
    let files: Vec<(String, String)> = truth
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains(":rsrc"))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .map(|f| {
            (
                f[0].trim_start_matches("KaitoTest").to_string(),
                f[2].to_string(),
            )
        })
        .collect();
    let listed: std::collections::BTreeSet<String> = serde_json::from_value(app.script(
        "return [...document.querySelectorAll('#files tbody tr')].map(r => r.dataset.path);",
        json!([]),
    ))
    .unwrap();
    let roots: std::collections::BTreeSet<String> = files
        .iter()
        .map(|(p, _)| format!("/{}", p.trim_start_matches('/').split('/').next().unwrap()))
        .collect();
    assert!(
        listed.is_superset(&roots),
        "{listed:?} lacks some of {roots:?}"
    );

    app.click("#mount");
    let point = mount_point_said(app, " mounted read-only at ");
    let (name, sha) = files.iter().find(|(p, _)| p == "/data.bin").unwrap();
    assert_eq!(&sha256sum(&Path::new(&point).join(&name[1..])), sha);
    app.click("#mount");
    app.wait_text("#status", |t| t.ends_with("ejected."));
    assert!(!Path::new(&point).exists(), "{point} is left behind");
    drop(desktop);
    fs::remove_dir_all(&dir).unwrap();
}
