//! What the end-to-end tests need to drive the real app: an X server, tauri-driver in front of
//! WebKitWebDriver, and a small W3C WebDriver client. Everything started is killed on drop.

use serde_json::{json, Value};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// `target/<profile>`: where cargo put this test binary's siblings, such as `dimg-app`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/corpus` beside the repository.
pub fn corpus() -> PathBuf {
    let dir = repo_root().join("../shared/corpus");
    assert!(dir.exists(), "the corpus is expected at {}", dir.display());
    dir
}

/// One row of `expected.tsv`: an image and its ground truth.
pub struct Truth {
    pub file: String,
    pub kind: String,
    pub passphrase: Option<String>,
    /// `None` for bad inputs, which have no decoded form.
    pub sha256: Option<String>,
    pub notes: String,
}

impl Truth {
    pub fn path(&self) -> PathBuf {
        corpus().join(&self.file)
    }
    /// The decoded view the truth is about: "disk", "iso", "raw" or "file".
    pub fn view(&self) -> &str {
        self.notes
            .strip_prefix("view:")
            .map(|v| v.split([';', ' ']).next().unwrap_or(""))
            .unwrap_or("")
    }
}

pub fn truths() -> Vec<Truth> {
    let tsv = std::fs::read_to_string(corpus().join("expected.tsv")).unwrap();
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let some = |s: &str| (s != "-").then(|| s.to_string());
            Truth {
                file: f[0].into(),
                kind: f[1].into(),
                passphrase: some(f[2]),
                sha256: some(f[3]),
                notes: f[6].into(),
            }
        })
        .collect()
}

/// SHA-256 of a file, by the independent `sha256sum`.
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new(program("sha256sum"))
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// SHA-256 of bytes in memory, by the independent `sha256sum`.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new(program("sha256sum"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()[..64].to_string()
}

/// Runs `program` with `args` and `input` on its standard input (how `-stdinpass` hands over a
/// passphrase, never in argv), and gives what it did.
pub fn run_with_input(program: &Path, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A loop device over a file, standing in for a disk (root only), detached when dropped. Its
/// partitions are added as udev would after `losetup -P` (a container may have no udev):
/// `partx -u` adds them and drops any a device detached before left behind; the nodes come from
/// devtmpfs. Where udev runs, its probing of each change is waited for (`udevadm settle`), so
/// that udev has named its file systems when attach returns (udisks2 learns of them a moment
/// later) and nothing holds it when it is detached.
pub struct LoopDevice(pub PathBuf);

fn udev_settle() {
    let _ = Command::new("udevadm")
        .args(["settle", "--timeout=10"])
        .stderr(Stdio::null())
        .status();
}

impl LoopDevice {
    pub fn attach(file: &Path) -> LoopDevice {
        let device = LoopDevice::just_attached(file);
        let _ = Command::new("partx")
            .arg("-u")
            .arg(&device.0)
            .stderr(Stdio::null())
            .status();
        udev_settle();
        device
    }

    /// The loop device as `losetup --find --show` hands it to a user: the kernel has it, but
    /// nothing is waited for, so udev and udisks2 may not know it yet; no partitions are added.
    pub fn just_attached(file: &Path) -> LoopDevice {
        let o = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        LoopDevice(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    }

    /// Its partition `n`, which must be there.
    pub fn partition(&self, n: u32) -> PathBuf {
        let p = PathBuf::from(format!("{}p{n}", self.0.display()));
        assert!(p.exists(), "{} has no partition {n}", self.0.display());
        p
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // Partitions added by partx outlive the loop device unless taken away first.
        udev_settle();
        let _ = Command::new("partx").arg("-d").arg(&self.0).status();
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// udisks2 on the system bus, as a desktop has it, started here where nothing started it (a CI
/// machine or a container has no init): the system bus, udev (from whose database udisks2
/// learns the disks), then udisksd, each only if absent, and made to learn the block devices if
/// it started before udev; they are left running for later tests.
/// Root only; `.ci/setup` installs udisks2.
pub fn udisks() {
    static STARTED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut started = STARTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *started {
        return;
    }
    let run = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let socket = Path::new("/run/dbus/system_bus_socket");
    if std::os::unix::net::UnixStream::connect(socket).is_err() {
        let _ = std::fs::remove_file("/run/dbus/pid");
        std::fs::create_dir_all("/run/dbus").unwrap();
        assert!(
            run("dbus-daemon", &["--system", "--fork"]),
            "dbus-daemon --system"
        );
    }
    if !run("udevadm", &["control", "--ping"]) {
        assert!(
            run("/lib/systemd/systemd-udevd", &["--daemon"]),
            "systemd-udevd --daemon"
        );
        // udev learns the disks there already: a change event for each makes it probe them.
        run(
            "udevadm",
            &["trigger", "--action=change", "--subsystem-match=block"],
        );
        udev_settle();
    }
    let ask_bus = |method: &str| {
        let service = format!("string:{UDISKS}");
        let mut args = vec![service.as_str()];
        args.extend((method == "StartServiceByName").then_some("uint32:0"));
        system_bus_call(
            "org.freedesktop.DBus",
            "/",
            &format!("org.freedesktop.DBus.{method}"),
            &args,
        )
    };
    // Started as the bus starts it on demand (its service file's Exec line, where no systemd is).
    if !ask_bus("NameHasOwner").contains("boolean true") {
        ask_bus("StartServiceByName");
        wait_until("udisks2 on the system bus", Duration::from_secs(20), || {
            ask_bus("NameHasOwner").contains("boolean true")
        });
    }
    // udisks2 learns the block devices from udev: one started before udev (by anything asking
    // for it on the bus) knows none until a change event for each tells it.
    let knows_block_devices = || {
        system_bus_call(
            UDISKS,
            "/org/freedesktop/UDisks2",
            "org.freedesktop.DBus.ObjectManager.GetManagedObjects",
            &[],
        )
        .contains("org.freedesktop.UDisks2.Block")
    };
    if !knows_block_devices() {
        run(
            "udevadm",
            &["trigger", "--action=change", "--subsystem-match=block"],
        );
        udev_settle();
        wait_until(
            "udisks2 to learn the block devices",
            Duration::from_secs(20),
            knows_block_devices,
        );
    }
    *started = true;
}

const UDISKS: &str = "org.freedesktop.UDisks2";

/// What `method` of `object` at `destination` on the system bus answers (`dbus-send`'s words),
/// given `args` in `dbus-send`'s notation; empty where it does not answer.
fn system_bus_call(destination: &str, object: &str, method: &str, args: &[&str]) -> String {
    let o = Command::new("dbus-send")
        .args(["--system", "--print-reply"])
        .arg(format!("--dest={destination}"))
        .args([object, method])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether udisks2 knows `device` (`/dev/NAME`) as holding something: it has caught up with a
/// loop device attached to a file.
pub fn udisks_knows(device: &Path) -> bool {
    let name = device.file_name().unwrap().to_string_lossy();
    let size = system_bus_call(
        UDISKS,
        &format!("/org/freedesktop/UDisks2/block_devices/{name}"),
        "org.freedesktop.DBus.Properties.Get",
        &["string:org.freedesktop.UDisks2.Block", "string:Size"],
    );
    size.split_whitespace()
        .last()
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// Finds a program on PATH or in cargo's bin folder; the tests need it, so its absence fails.
pub fn program(name: &str) -> PathBuf {
    let cargo_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(cargo_bin)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: .ci/test installs it"))
}

/// A fresh folder for one test's files.
pub fn tempfile_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dimg-e2e-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// dimg's mounts in the kernel's table: (source image, mount point).
pub fn dimg_mounts() -> Vec<(String, String)> {
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(2) == Some("fuse.dimg"))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].to_string(), f[1].replace("\\040", " "))
        })
        .collect()
}

/// Installs dimg's desktop files into `data` (standing in for /usr/share, as an XDG_DATA_HOME):
/// what the package puts in /usr/share/applications and /usr/share/mime (tauri.conf.json's deb
/// files: the mounter's entry, the defaults, the MIME types) and the app's own entry (the deb's
/// desktop template), then builds the caches a package's triggers build.
pub fn install_desktop_files(data: &Path) {
    let conf: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tauri.conf.json")).unwrap(),
    )
    .unwrap();
    let deb = &conf["bundle"]["linux"]["deb"];
    let files = deb["files"].as_object().expect("bundle.linux.deb.files");
    let app_entry = (
        "/usr/share/applications/dimg.desktop",
        deb["desktopTemplate"]
            .as_str()
            .expect("bundle.linux.deb.desktopTemplate"),
    );
    let installed = files
        .iter()
        .map(|(to, from)| (to.as_str(), from.as_str().unwrap()))
        .filter(|(to, _)| {
            to.starts_with("/usr/share/applications/") || to.starts_with("/usr/share/mime/")
        })
        .chain([app_entry]);
    for (to, from) in installed {
        let to = data.join(to.strip_prefix("/usr/share/").unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo_root().join(from), &to).unwrap();
    }
    for (tool, dir) in [
        ("update-desktop-database", "applications"),
        ("update-mime-database", "mime"),
    ] {
        let done = Command::new(program(tool))
            .arg(data.join(dir))
            .env("XDG_DATA_HOME", data)
            .status()
            .unwrap();
        assert!(done.success(), "{tool}");
    }
}

/// A process killed when the guard drops, even when the test panics.
pub struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        sleep(Duration::from_millis(100));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An Xvfb server on a display it picks itself (`-displayfd`: the server takes the first display
/// whose lock it can create, so tests starting servers at once never race for one); returns it
/// and its DISPLAY value once it accepts connections.
pub fn xvfb() -> (Running, String) {
    use std::io::BufRead;
    let mut child = Command::new(program("Xvfb"))
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb starts");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("Xvfb says its display within 60 s");
    let n: u32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Xvfb exited before saying its display (said {line:?})"));
    (running, format!(":{n}"))
}

/// What a desktop login gives the app: a D-Bus session bus, and GNOME Keyring's Secret Service
/// on it with the login keyring unlocked (kept in `home`). The bus ends when the guard drops,
/// and the keyring daemon with it.
pub fn desktop_session(home: &Path) -> (Running, String) {
    use std::io::{BufRead, Write};
    std::fs::create_dir_all(home).unwrap();
    let mut bus = Command::new(program("dbus-daemon"))
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon starts");
    let mut address = String::new();
    std::io::BufReader::new(bus.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let running = Running(bus);
    let address = address.trim().to_string();
    assert!(address.starts_with("unix:"), "the bus's address: {address}");
    let mut keyring = Command::new(program("gnome-keyring-daemon"))
        .args(["--unlock", "--components=secrets"])
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("gnome-keyring-daemon starts");
    // The login keyring's password, on stdin as a login manager hands it over.
    keyring.stdin.take().unwrap().write_all(b"login").unwrap();
    assert!(keyring.wait().unwrap().success(), "gnome-keyring-daemon");
    (running, address)
}

/// tauri-driver on a free port, forwarding to WebKitWebDriver, both on `display`, the app they
/// start on the session bus at `bus`.
pub fn tauri_driver(display: &str, bus: &str) -> (Running, u16) {
    let port = free_port();
    let native = free_port();
    let child = Command::new(program("tauri-driver"))
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("DISPLAY", display)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env("PATH", path_with_webdriver())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tauri-driver starts");
    let running = Running(child);
    // tauri-driver listens before the WebKitWebDriver it starts does; a session needs both.
    wait_until("tauri-driver", Duration::from_secs(20), || {
        [port, native]
            .iter()
            .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
    });
    (running, port)
}

fn path_with_webdriver() -> std::ffi::OsString {
    let webdriver = program("WebKitWebDriver");
    let mut dirs: Vec<PathBuf> = vec![webdriver.parent().unwrap().to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A W3C WebDriver session; the app is started by the driver and closed when this drops.
pub struct Session {
    base: String,
    /// The X display the window is on, where screenshots are taken.
    display: String,
}

impl Session {
    /// Starts `app` with `args` through tauri-driver on `port`, its window on `display`.
    pub fn start(port: u16, display: &str, app: &Path, args: &[&Path]) -> Session {
        let args: Vec<String> = args.iter().map(|a| a.display().to_string()).collect();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": app, "args": args}
        }}});
        let url = format!("http://127.0.0.1:{port}");
        // A connection the driver drops before it answers (seen once on a CI rehearsal: the
        // WebKit driver behind tauri-driver not ready for its first session) is asked again;
        // an answer that refuses the session is not.
        let mut tries = 0;
        let v = loop {
            tries += 1;
            match ureq::post(&format!("{url}/session"))
                .timeout(Duration::from_secs(120))
                .send_json(caps.clone())
            {
                Ok(r) => break r.into_json::<Value>().expect("JSON reply")["value"].take(),
                Err(ureq::Error::Transport(e)) if tries < 3 => {
                    eprintln!("POST {url}/session: {e}; asking again");
                    sleep(Duration::from_secs(2));
                }
                Err(e) => panic!("POST {url}/session: {e}"),
            }
        };
        let id = v["sessionId"].as_str().expect("a session id").to_string();
        Session {
            base: format!("{url}/session/{id}"),
            display: display.to_string(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(method, &format!("{}{path}", self.base), body)
    }

    /// Runs `script` in the page (W3C execute/sync) and returns its value.
    pub fn script(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().expect("an element").to_string()
    }

    pub fn text(&self, css: &str) -> String {
        let id = self.element(css);
        self.call("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Types `text` into the element, as a user at the keyboard would.
    pub fn type_text(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Presses `keys` together at the keyboard (W3C actions), as a chord: each down in order, then
    /// each up. Keys are WebDriver's code points, e.g. "\u{E015}" for the down arrow.
    pub fn press(&self, keys: &[&str]) {
        let down = keys.iter().map(|k| json!({"type": "keyDown", "value": k}));
        let up = keys
            .iter()
            .rev()
            .map(|k| json!({"type": "keyUp", "value": k}));
        let actions: Vec<Value> = down.chain(up).collect();
        self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
        self.call("DELETE", "/actions", None);
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Waits until the text of `css` satisfies `ready`, and returns it.
    pub fn wait_text(&self, css: &str, ready: impl Fn(&str) -> bool) -> String {
        let mut text = String::new();
        wait_until(&format!("text of {css}"), Duration::from_secs(60), || {
            text = self.text(css);
            ready(&text)
        });
        text
    }

    /// Waits until `script` returns true.
    pub fn wait_script(&self, what: &str, script: &str) {
        wait_until(what, Duration::from_secs(60), || {
            self.script(script, json!([])) == json!(true)
        });
    }

    /// Saves the window, menu bar and page, as the X server shows it (ImageMagick's `import`): what is on
    /// the screen, whichever way WebKit draws it (WebDriver's own screenshot waits forever when
    /// WebKit draws without its DMA-BUF renderer, as the app has it where there is no GPU).
    pub fn screenshot(&self, to: &Path) {
        let window = self.script(
            "return [outerWidth, outerHeight, screenX, screenY].map(Math.round);",
            json!([]),
        );
        let n = |i: usize| window[i].as_i64().expect("a window dimension");
        let crop = format!("{}x{}+{}+{}", n(0), n(1), n(2), n(3));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let saved = Command::new(program("import"))
            .args(["-display", &self.display, "-window", "root", "-crop", &crop])
            .arg(to)
            .status()
            .expect("ImageMagick's import runs");
        assert!(saved.success(), "import {}", to.display());
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.base).call();
    }
}

fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    let request = ureq::request(method, url).timeout(Duration::from_secs(120));
    let response = match body {
        Some(b) => request.send_json(b),
        None => request.call(),
    };
    match response {
        Ok(r) => r.into_json::<Value>().expect("JSON reply")["value"].take(),
        Err(ureq::Error::Status(code, r)) => {
            panic!(
                "{method} {url} -> {code}: {}",
                r.into_string().unwrap_or_default()
            )
        }
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// An HTTP server of `folder`'s files (tests/judges/range_server.py) in `mode` ("ranges",
/// "whole" or "changing"), each answer held back `delay_ms` (a distant server's round trip),
/// stopped when dropped.
pub struct RangeServer {
    child: Child,
    port: u16,
    count: PathBuf,
}

impl RangeServer {
    pub fn start(folder: &Path, mode: &str) -> RangeServer {
        Self::with_delay(folder, mode, 0)
    }

    pub fn with_delay(folder: &Path, mode: &str, delay_ms: u32) -> RangeServer {
        let count = folder.with_extension(format!("{mode}-served"));
        // A count left by an earlier server of the same folder is not this one's.
        let _ = std::fs::remove_file(&count);
        let script = repo_root().join("crates/dimg-cli/tests/judges/range_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(folder)
            .arg(mode)
            .arg(&count)
            .arg(delay_ms.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line.trim().parse().expect("the server says its port");
        RangeServer { child, port, count }
    }

    /// The URL of `name` in the folder.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    /// Bytes of files the server has sent.
    pub fn served(&self) -> u64 {
        std::fs::read_to_string(&self.count).map_or(0, |t| t.trim().parse().unwrap_or(0))
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
