//! A double-click on an image, as a file manager does it (`gio open IMAGE`), on a desktop of the
//! test's own: an X display, a session bus with GNOME Keyring, dimg's desktop files installed,
//! and a stand-in file manager registered for folders that records what it is asked to open.
//! The mounter's dialogs are driven with xdotool; the sentence each shows is also on its
//! standard error, which `gio open` hands down to it.

use dimg_e2e::{
    corpus, desktop_session, dimg_mounts, install_desktop_files, program, target_dir, tempfile_dir,
    wait_until, xvfb, Running,
};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// One at a time: the tests share the machine's mounts. Fields drop in order, the X server
/// last.
struct Desktop {
    dir: PathBuf,
    /// Every image double-clicked, detached when the test ends however it ends.
    clicked: std::cell::RefCell<Vec<PathBuf>>,
    display: String,
    bus: String,
    _session: Running,
    _x: Running,
    _turn: MutexGuard<'static, ()>,
}

impl Desktop {
    fn start(test: &str) -> Desktop {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile_dir(test);
        install_desktop_files(&dir.join("data"));
        // The stand-in file manager: records each folder it is given.
        let files = dir.join("stand-in-files");
        let record = dir.join("opened.txt");
        fs::write(
            &files,
            format!("#!/bin/sh\necho \"$1\" >> '{}'\n", record.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&files, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            dir.join("data/applications/stand-in-files.desktop"),
            format!(
                "[Desktop Entry]\nType=Application\nName=Files\nExec={} %u\n\
                 MimeType=inode/directory;\n",
                files.display()
            ),
        )
        .unwrap();
        fs::create_dir_all(dir.join("config")).unwrap();
        fs::write(
            dir.join("config/mimeapps.list"),
            "[Default Applications]\ninode/directory=stand-in-files.desktop;\n",
        )
        .unwrap();
        let (x, display) = xvfb();
        let (session, bus) = desktop_session(&dir.join("home"));
        Desktop {
            dir,
            clicked: Default::default(),
            display,
            bus,
            _session: session,
            _x: x,
            _turn: turn,
        }
    }

    /// A program run on this desktop, as its file manager would run it.
    fn command(&self, name: &str) -> Command {
        let path = std::env::join_paths(
            std::iter::once(target_dir())
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        let mut command = Command::new(program(name));
        command
            .env("PATH", path)
            .env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("HOME", self.dir.join("home"))
            .env("XDG_DATA_HOME", self.dir.join("data"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_DATA_DIRS", "/usr/share")
            .env_remove("XDG_CURRENT_DESKTOP")
            .env_remove("DIMG_OPEN_WITH")
            .env_remove("XDG_RUNTIME_DIR");
        command
    }

    /// A double-click on `image`: `gio open`, the mounter's standard error kept in said.txt.
    fn double_click(&self, image: &Path) {
        self.clicked.borrow_mut().push(image.to_path_buf());
        let said = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("said.txt"))
            .unwrap();
        let done = self
            .command("gio")
            .arg("open")
            .arg(image)
            .stderr(said)
            .status()
            .unwrap();
        assert!(done.success(), "gio open {}", image.display());
    }

    /// What the mounter said on standard error so far.
    fn said(&self) -> String {
        fs::read_to_string(self.dir.join("said.txt")).unwrap_or_default()
    }

    /// What the stand-in file manager was asked to open, in order.
    fn opened(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("opened.txt"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn xdotool(&self, args: &[&str]) -> String {
        let out = self.command("xdotool").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The window whose title starts with `title`, once it is shown.
    fn window(&self, title: &str) -> String {
        let pattern = format!("^{}", title.replace('.', "\\."));
        let mut found = String::new();
        wait_until(
            &format!("the window “{title}”"),
            Duration::from_secs(30),
            || {
                found = self.xdotool(&["search", "--onlyvisible", "--name", &pattern]);
                !found.is_empty()
            },
        );
        found.lines().next().unwrap().to_string()
    }

    fn gone(&self, title: &str) {
        let pattern = format!("^{}", title.replace('.', "\\."));
        wait_until(
            &format!("the window “{title}” to close"),
            Duration::from_secs(30),
            || {
                self.xdotool(&["search", "--onlyvisible", "--name", &pattern])
                    .is_empty()
            },
        );
    }

    /// Types `keys` into the window titled `title`: text, or `key:NAME` for one key.
    fn type_into(&self, title: &str, keys: &[&str]) {
        let window = self.window(title);
        self.xdotool(&["windowfocus", "--sync", &window]);
        for k in keys {
            match k.strip_prefix("key:") {
                Some(key) => self.xdotool(&["key", key]),
                None => self.xdotool(&["type", "--delay", "30", k]),
            };
        }
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for image in self.clicked.borrow().iter().filter(|i| mounts_of(i) > 0) {
            let _ = Command::new(target_dir().join("dimg"))
                .args(["detach", "--force"])
                .arg(image)
                .status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The mount point of `image`'s volume, once mounted.
fn mounted(image: &Path) -> String {
    let image = fs::canonicalize(image).unwrap();
    let mut point = None;
    wait_until(
        &format!("{} to be mounted", image.display()),
        Duration::from_secs(60),
        || {
            point = dimg_mounts()
                .into_iter()
                .find(|(source, _)| Path::new(source) == image)
                .map(|(_, p)| p);
            point.is_some()
        },
    );
    point.unwrap()
}

fn mounts_of(image: &Path) -> usize {
    let image = fs::canonicalize(image).unwrap();
    dimg_mounts()
        .iter()
        .filter(|(source, _)| Path::new(source) == image)
        .count()
}

/// The server serving `image`, from `dimg info --json` (every attached image).
fn server_of(image: &Path) -> u32 {
    let image = fs::canonicalize(image).unwrap();
    let out = Command::new(target_dir().join("dimg"))
        .args(["info", "--json"])
        .output()
        .unwrap();
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|a| Path::new(a["image"].as_str().unwrap()) == image)
        .and_then(|a| a["pid"].as_u64())
        .expect("a server for the image") as u32
}

/// The sidebar's eject, as GTK's places sidebar does it for a mount GIO can unmount but not
/// eject (a FUSE mount has no drive): `gio mount -u`. The volume goes, and its server ends.
fn eject(desktop: &Desktop, point: &str, server: u32) {
    let listed = desktop
        .command("gio")
        .args(["mount", "-li"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let entry = listed
        .split("Mount(")
        .find(|m| m.contains(&format!("-> file://{}", point.replace(' ', "%20"))))
        .unwrap_or_else(|| panic!("GIO lists {point}: {listed}"));
    assert!(entry.contains("can_unmount=1"), "{entry}");
    let done = desktop
        .command("gio")
        .args(["mount", "-u", point])
        .output()
        .unwrap();
    assert!(done.status.success(), "gio mount -u: {done:?}");
    assert!(!dimg_mounts().iter().any(|(_, p)| p == point));
    wait_until("the server to end", Duration::from_secs(30), || {
        !Path::new(&format!("/proc/{server}")).exists()
    });
}

/// A corpus DMG: its volume is mounted under /media/$USER, where GIO lists it, and the file
/// manager is asked to open it. A second double-click opens it again without a second mount.
/// The sidebar's eject takes it away and ends its server.
#[test]
fn a_double_click_mounts_the_volume_and_opens_it_in_the_file_manager() {
    let desktop = Desktop::start("double-click");
    let image = corpus().join("dmg/kaitokit-hfs-zlib.dmg");
    desktop.double_click(&image);
    let point = mounted(&image);
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    assert_eq!(point, format!("/media/{user}/KaitoTest"));
    wait_until("the file manager", Duration::from_secs(30), || {
        !desktop.opened().is_empty()
    });
    assert!(
        desktop.opened()[0].ends_with(&point),
        "{:?}",
        desktop.opened()
    );
    desktop.double_click(&image);
    wait_until("the file manager again", Duration::from_secs(30), || {
        desktop.opened().len() == 2
    });
    assert!(desktop.opened()[1].ends_with(&point));
    assert_eq!(mounts_of(&image), 1, "mounted once");
    eject(&desktop, &point, server_of(&image));
}

/// An AES-256 image asks for its password: a wrong one says so in a sentence and mounts
/// nothing; the right one, with Remember ticked, mounts it; once ejected, a double-click
/// mounts it again without asking (the keychain has the password).
#[test]
fn an_encrypted_image_asks_for_its_password_and_the_keychain_remembers_it() {
    let desktop = Desktop::start("encrypted");
    let image = desktop.dir.join("secret.dmg");
    fs::copy(corpus().join("dmg/dmgwiz-aes256.dmg"), &image).unwrap();
    desktop.double_click(&image);
    desktop.type_into("Password: secret.dmg", &["not it", "key:Return"]);
    desktop.type_into("Could not mount: secret.dmg", &["key:Return"]);
    desktop.gone("Could not mount: secret.dmg");
    assert!(
        desktop
            .said()
            .contains("The password you entered for “secret.dmg” is not correct"),
        "{}",
        desktop.said()
    );
    assert_eq!(mounts_of(&image), 0, "nothing mounted");
    desktop.double_click(&image);
    // The password, then Tab to "Remember password in my keychain", ticked with space, and
    // back to the password to press Return.
    desktop.type_into(
        "Password: secret.dmg",
        &[
            "test123",
            "key:Tab",
            "key:space",
            "key:shift+Tab",
            "key:Return",
        ],
    );
    let point = mounted(&image);
    assert!(fs::read_dir(&point).is_ok());
    assert!(
        desktop
            .said()
            .contains("Password remembered in the desktop keychain"),
        "{}",
        desktop.said()
    );
    eject(&desktop, &point, server_of(&image));
    // Nobody types now: were the password asked for again, it would never be mounted.
    desktop.double_click(&image);
    let point = mounted(&image);
    wait_until("the file manager again", Duration::from_secs(30), || {
        desktop.opened().len() == 2
    });
    eject(&desktop, &point, server_of(&image));
}

/// An audio CD has no volume: the dialog says what the image holds and mounts nothing.
#[test]
fn an_image_with_nothing_to_mount_says_what_it_holds() {
    let desktop = Desktop::start("nothing");
    let image = corpus().join("cd/cdda.cue");
    desktop.double_click(&image);
    desktop.type_into("Nothing to mount: cdda.cue", &["key:Return"]);
    desktop.gone("Nothing to mount: cdda.cue");
    let said = desktop.said();
    assert!(
        said.contains("“cdda.cue” has no volume dimg can mount") && said.contains("AUDIO"),
        "{said}"
    );
    assert_eq!(mounts_of(&image), 0);
    assert!(desktop.opened().is_empty());
}

/// A read/write image (UDRW, HFS+) mounts writable; a file written into it is in the image
/// once the sidebar's eject has ended the server (it writes everything before it ends).
#[test]
fn a_read_write_image_mounts_writable_and_its_changes_are_kept_on_eject() {
    let desktop = Desktop::start("writable");
    let image = desktop.dir.join("Blank.dmg");
    let dimg = target_dir().join("dimg");
    let made = Command::new(&dimg)
        .args([
            "create",
            "--size",
            "8m",
            "--fs",
            "HFS+",
            "--volname",
            "Blank",
        ])
        .args(["--format", "UDRW"])
        .arg(&image)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    desktop.double_click(&image);
    let point = mounted(&image);
    let options = fs::read_to_string("/proc/mounts").unwrap();
    let line = options.lines().find(|l| l.contains(&point)).unwrap();
    assert!(line.contains(" rw,"), "{line}");
    fs::write(
        Path::new(&point).join("kept.txt"),
        b"written through the mount\n",
    )
    .unwrap();
    eject(&desktop, &point, server_of(&image));
    let listed = Command::new(&dimg).arg("ls").arg(&image).output().unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("kept.txt"),
        "{listed:?}"
    );
}
