//! How quick the app feels, on this machine under Xvfb (a benchmark, not a test: its figures go
//! in the README). Build the release app first: `cargo build --release -p dimg-app`.
//! - First paint: from spawning `dimg-app IMAGE` to the page's first frame with the sidebar
//!   drawn, and to that image's info shown. Once cold (the page cache dropped, when root), then
//!   warm, the median and worst of ten.
//! - Opening a corpus DMG in the running window until its info is on screen.
//! - Responsiveness: WebDriver clicks (find the element, click it) answered by the window while
//!   a 1 GiB convert to UDZO keeps every core busy, against the same clicks with nothing running.

use dimg_e2e::{corpus, desktop_session, target_dir, tauri_driver, xvfb, Session};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let app = target_dir().join("dimg-app");
    assert!(
        app.exists(),
        "build it first: cargo build --release -p dimg-app"
    );
    let dir = target_dir().join("../bench");
    std::fs::create_dir_all(&dir).unwrap();
    let (_x, display) = xvfb();
    let (_bus, bus) = desktop_session(&dir.join("home"));
    let image = corpus().join("dmg/dmgwiz-zlib.dmg");

    let cold = drop_page_cache().then(|| first_paint(&app, &display, &bus, &image, None));
    if let Some((window, info)) = cold {
        println!(
            "first paint, cold: window {window} ms, {} info {info} ms",
            name(&image)
        );
    } else {
        println!("first paint, cold: not measured (dropping the page cache needs root)");
    }
    // As the app starts here (no GPU: WebKit's DMA-BUF renderer off), and with WebKit's default
    // renderer for comparison, launches alternating.
    let (mut chosen, mut default) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        chosen.push(first_paint(&app, &display, &bus, &image, None));
        default.push(first_paint(&app, &display, &bus, &image, Some("0")));
    }
    for (how, launches) in [
        ("as the app starts", chosen),
        ("WebKit's default renderer", default),
    ] {
        let (window, info): (Vec<u64>, Vec<u64>) = launches.into_iter().unzip();
        println!(
            "first paint, warm, {how} (10 launches): window median {} ms, worst {} ms; {} info median {} ms, worst {} ms",
            median(&window),
            window.iter().max().unwrap(),
            name(&image),
            median(&info),
            info.iter().max().unwrap()
        );
    }

    responsiveness(&app, &display, &bus, &dir);
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

fn drop_page_cache() -> bool {
    let synced = Command::new("sync").status().is_ok_and(|s| s.success());
    synced && std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// One launch: milliseconds from spawning the app to its window's first frame, and to the
/// image's info on screen, as the app says them on stderr (`DIMG_APP_TIMING`);
/// `disable_dmabuf` sets WEBKIT_DISABLE_DMABUF_RENDERER ("0" keeps WebKit's default).
fn first_paint(
    app: &Path,
    display: &str,
    bus: &str,
    image: &Path,
    disable_dmabuf: Option<&str>,
) -> (u64, u64) {
    let start = epoch_ms();
    let mut child = Command::new(app)
        .arg(image)
        .envs(disable_dmabuf.map(|v| ("WEBKIT_DISABLE_DMABUF_RENDERER", v)))
        .env("DISPLAY", display)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env("DIMG_APP_TIMING", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let window = said("window", &mut lines) - start;
    let info = said("info", &mut lines) - start;
    child.kill().unwrap();
    child.wait().unwrap();
    (window, info)
}

/// The wall-clock milliseconds at which the app says its first `moment` frame was drawn.
fn said(moment: &str, lines: &mut impl Iterator<Item = String>) -> u64 {
    let prefix = format!("dimg-app: first {moment} painted at ");
    let line = lines
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("the app never said its first {moment} frame"));
    line[prefix.len()..]
        .trim_end_matches(" ms")
        .parse()
        .unwrap()
}

/// Round trips of WebDriver clicks (element lookup and click), in milliseconds.
fn clicks(app: &Session, css: &str, count: usize) -> Vec<u64> {
    (0..count)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            let started = Instant::now();
            app.click(css);
            started.elapsed().as_millis() as u64
        })
        .collect()
}

fn responsiveness(app_binary: &Path, display: &str, bus: &str, dir: &Path) {
    let big = random_image(dir, 1 << 30);
    let (_driver, port) = tauri_driver(display, bus);
    let app = Session::start(port, display, app_binary, &[&big]);
    app.wait_script(
        "the image's info",
        "return document.getElementById('info-name').textContent === 'random-1g.img';",
    );
    // Opening a corpus DMG in the running window until its info is on screen (the page's own
    // clock: the open request, then the frame after the info pane is drawn).
    let opens: Vec<u64> = (0..10)
        .map(|_| {
            let ms = app.script(
                "const started = performance.now();
                 return window.openPath(arguments[0])
                   .then(() => new Promise(requestAnimationFrame))
                   .then(() => new Promise(requestAnimationFrame))
                   .then(() => Math.round(performance.now() - started));",
                json!([corpus().join("dmg/dmgwiz-zlib.dmg").display().to_string()]),
            );
            ms.as_u64().expect("milliseconds")
        })
        .collect();
    println!(
        "opening dmgwiz-zlib.dmg in the running window until its info shows (10 times): median {} ms, worst {} ms",
        median(&opens),
        opens.iter().max().unwrap()
    );
    let idle = clicks(&app, "#images li.image", 20);
    let out = dir.join("random-1g.dmg");
    let _ = std::fs::remove_file(&out);
    app.click("#convert");
    app.script(
        "document.getElementById('convert-format').value = 'UDZO';
         document.getElementById('convert-output').value = arguments[0];",
        json!([out.display().to_string()]),
    );
    let started = Instant::now();
    app.click("#convert-start");
    app.wait_script(
        "the progress sheet",
        "return !document.getElementById('sheet').hidden;",
    );
    let busy = clicks(&app, "#progress-phase", 30);
    let still_running = app.script(
        "return !document.getElementById('sheet').hidden;",
        json!([]),
    ) == json!(true);
    app.wait_text("#convert-saved", |t| t.contains("random-1g.dmg"));
    let converted = started.elapsed();
    println!(
        "responsiveness: clicks with nothing running median {} ms, worst {} ms; during the 1 GiB convert \
         (UDZO, {:.1} s{}) median {} ms, worst {} ms",
        median(&idle),
        idle.iter().max().unwrap(),
        converted.as_secs_f64(),
        if still_running { "" } else { "; it ended before the last click" },
        median(&busy),
        busy.iter().max().unwrap()
    );
    let _ = std::fs::remove_file(&out);
}

/// `target/bench/random-1g.img`: incompressible bytes, so that the convert works its hardest.
fn random_image(dir: &Path, bytes: u64) -> PathBuf {
    let path = dir.join("random-1g.img");
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(bytes) {
        let made = Command::new("head")
            .args(["-c", &bytes.to_string(), "/dev/urandom"])
            .stdout(std::fs::File::create(&path).unwrap())
            .status()
            .unwrap();
        assert!(made.success());
    }
    path
}
