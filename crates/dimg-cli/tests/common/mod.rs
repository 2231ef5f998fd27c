//! What every CLI test does: run the built `dimg` and read what it said.
// Each test file uses its own subset of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn dimg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dimg"))
        .args(args)
        .output()
        .expect("dimg runs")
}

/// `dimg` with `input` on its standard input (how `-stdinpass` gets a passphrase).
pub fn dimg_stdin(args: &[&str], input: &[u8]) -> Output {
    dimg_e2e::run_with_input(Path::new(env!("CARGO_BIN_EXE_dimg")), args, input)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// An HFS+ image of `folder` in `format`, made by `dimg create`, which must succeed.
pub fn create_hfs_image(folder: &Path, format: &str, image: &Path) {
    let o = dimg(&[
        "create",
        "-srcfolder",
        s(folder),
        "-fs",
        "HFS+",
        "-format",
        format,
        s(image),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Text that compresses, each 4 KiB a little different: a UDZO of it is zlib chunks, which a
/// flipped byte breaks (see `damage_middle`).
pub fn compressible(len: u32) -> Vec<u8> {
    (0..len)
        .map(|i| b"disk image chunk\n"[(i % 17) as usize] ^ (i >> 12) as u8 & 1)
        .collect()
}

/// Flips 64 bytes in the middle of `image` (inside one chunk's compressed stream), so that
/// reading that chunk fails; returns the image's bytes as they are now.
pub fn damage_middle(image: &Path) -> Vec<u8> {
    let mut bytes = fs::read(image).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5A;
    }
    fs::write(image, &bytes).unwrap();
    bytes
}

/// Pseudo-random bytes (xorshift), reproducible.
pub fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// Every entry under `root` (symlinks not followed).
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// path → (kind, SHA-256 of the contents or the link target, mtime) for every entry under
/// `root`; symlinks' own times are left out (they cannot be set without lutimes).
pub fn snapshot(root: &Path, with_times: bool) -> Snapshot {
    walk(root)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&p).unwrap();
            let mtime = if with_times {
                std::os::unix::fs::MetadataExt::mtime(&meta)
            } else {
                0
            };
            let (kind, body) = if meta.is_symlink() {
                let target = fs::read_link(&p).unwrap();
                ('l', target.to_string_lossy().into_owned())
            } else if meta.is_dir() {
                ('d', String::new())
            } else {
                // In process: trees of 100,000 files are compared, a sha256sum each would crawl.
                let digest = <sha2::Sha256 as sha2::Digest>::digest(fs::read(&p).unwrap());
                ('f', digest.iter().map(|b| format!("{b:02x}")).collect())
            };
            (rel, (kind, body, if kind == 'f' { mtime } else { 0 }))
        })
        .collect()
}

pub type Snapshot = BTreeMap<String, (char, String, i64)>;

/// Equal snapshots, or a failure that lists only the entries that differ.
pub fn assert_same(got: &Snapshot, want: &Snapshot, what: &str) {
    let keys: std::collections::BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    let differ: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .map(|k| format!("{k}: got {:?}, want {:?}", got.get(k), want.get(k)))
        .collect();
    assert!(differ.is_empty(), "{what}: {differ:#?}");
}

/// Runs a peer tool that must succeed, and gives what it printed. mtools is told not to check
/// the images it is handed, and every tool reads times in UTC.
pub fn peer(tool: &str, args: &[&str]) -> String {
    let o = Command::new(dimg_e2e::program(tool))
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(o.status.success(), "{tool} {args:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The partition `dimg info --json` says holds `file_system`.
pub fn partition_with(image: &Path, file_system: &str) -> serde_json::Value {
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&dimg(&["info", s(image), "--json"]))).unwrap();
    json["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["file_system"] == file_system)
        .unwrap_or_else(|| panic!("{}: no {file_system} partition", image.display()))
        .clone()
}

/// Where the catalog record keyed by `name` (UTF-16BE) of `kind` (1 folder, 2 file) starts its
/// data, in a raw HFS+ volume: the key is its length, parent ID and name; the data follows.
pub fn catalog_record(volume: &[u8], name: &str, kind: u16) -> usize {
    let utf16: Vec<u8> = name.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    let mut from = 0;
    loop {
        let at = from + find(&volume[from..], &utf16);
        let length = u16::from_be_bytes([volume[at - 2], volume[at - 1]]) as usize;
        let key = at - 8;
        let key_len = u16::from_be_bytes([volume[key], volume[key + 1]]) as usize;
        let data = key + 2 + key_len;
        if length == name.encode_utf16().count()
            && u16::from_be_bytes([volume[data], volume[data + 1]]) == kind
        {
            return data;
        }
        from = at + 1;
    }
}

/// Makes the file record `file` of a raw HFS+ volume a folder hard link to folder `folder`, as
/// TN1150 lays them out: type `fdrp`, creator `MACS`, the folder's ID as its iNode number.
pub fn folder_hard_link(volume: &mut [u8], file: &str, folder: &str) {
    let target = catalog_record(volume, folder, 1);
    let id: [u8; 4] = volume[target + 8..target + 12].try_into().unwrap();
    let link = catalog_record(volume, file, 2);
    volume[link + 48..link + 56].copy_from_slice(b"fdrpMACS");
    volume[link + 44..link + 48].copy_from_slice(&id);
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("the bytes are there")
}

/// The disk `dimg convert -format UDTO` decodes from `image`.
pub fn decoded(image: &Path, passphrase: Option<&[u8]>) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("disk.cdr");
    let args = ["convert", s(image), "-format", "UDTO", "-o", s(&out)];
    let o = match passphrase {
        Some(p) => dimg_stdin(&[&args[..], &["-stdinpass"]].concat(), p),
        None => dimg(&args),
    };
    assert!(o.status.success(), "{}: {}", image.display(), stderr(&o));
    fs::read(&out).unwrap()
}

/// A Video CD (VCD 2.0) or Super Video CD made by vcdimager from MPEG streams ffmpeg makes: an
/// ISO 9660 track of Mode 2 Form 1 sectors, then one Form 2 track per stream. Returns the cue
/// sheet and the streams.
pub fn video_cd(dir: &Path, kind: &str) -> (PathBuf, Vec<PathBuf>) {
    let (target, size, sources) = match kind {
        "vcd2" => ("pal-vcd", "352x288", &["testsrc", "testsrc2"][..]),
        _ => ("pal-svcd", "480x576", &["testsrc"][..]),
    };
    let mut streams = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let mpeg = dir.join(format!("{kind}-{i}.mpg"));
        let video = format!("{source}=duration={}:size={size}:rate=25", 3 + i);
        let audio = format!("sine=frequency={}:duration={}", 440 + 200 * i, 3 + i);
        peer(
            "ffmpeg",
            &[
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                &video,
                "-f",
                "lavfi",
                "-i",
                &audio,
                "-target",
                target,
                s(&mpeg),
            ],
        );
        streams.push(mpeg);
    }
    let cue = dir.join(format!("{kind}.cue"));
    let mut args = vec!["-t", kind, "-c", s(&cue)];
    let bin = cue.with_extension("bin");
    args.extend(["-b", s(&bin)]);
    args.extend(streams.iter().map(|p| s(p)));
    peer("vcdimager", &args);
    (cue, streams)
}

/// What libyal's pymodi reads as the disk of `image` (for a bundle: its Info.plist, handed every
/// band as a file object, an empty one where a band is missing), as a SHA-256.
pub fn pymodi(image: &Path) -> String {
    let script = r#"
import hashlib, io, os, sys, pymodi
path = sys.argv[1]
h = pymodi.handle()
if os.path.isdir(path):
    h.open(os.path.join(path, "Info.plist"))
    size = h.get_media_size()
    import plistlib
    band = plistlib.load(open(os.path.join(path, "Info.plist"), "rb"))["band-size"]
    files = []
    for n in range((size + band - 1) // band):
        p = os.path.join(path, "bands", "%x" % n)
        files.append(open(p, "rb") if os.path.exists(p) else io.BytesIO(b""))
    h.open_band_data_files_as_file_objects(files)
else:
    h.open(path)
digest = hashlib.sha256()
left = h.get_media_size()
while left:
    chunk = h.read_buffer(min(left, 1 << 20))
    digest.update(chunk)
    left -= len(chunk)
print(digest.hexdigest())
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", script, s(image)])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pymodi on {}: {}",
        image.display(),
        stderr(&o)
    );
    stdout(&o).trim().to_string()
}

/// A blank image of `size` with file system `fs` made by `dimg create` (its format from the
/// name), sealed with AES-256 and `passphrase` when one is given; the create must succeed.
pub fn create_blank(image: &Path, size: &str, fs: &str, passphrase: Option<&[u8]>) {
    let mut args = vec!["create", "-size", size, "-fs", fs];
    if passphrase.is_some() {
        args.extend(["-encryption", "AES-256", "-stdinpass"]);
    }
    args.push(s(image));
    let o = dimg_stdin(&args, passphrase.unwrap_or_default());
    assert!(o.status.success(), "{}: {}", image.display(), stderr(&o));
}

/// A tree with what the readers must get right: nesting, long and Unicode names, an empty
/// file, files of many clusters (written interleaved, so that their clusters alternate), a
/// folder of many entries (several directory or index blocks).
pub fn fill(root: &Path, entries: usize) {
    let files: [(&str, Vec<u8>); 5] = [
        ("README.txt", b"read me\n".to_vec()),
        (
            "docs/a long file name with spaces and more.md",
            b"spaces\n".repeat(700),
        ),
        ("docs/Caf\u{e9} \u{dc}ber na\u{ef}ve.txt", "Unicode".into()),
        ("deep/1/2/3/4/5/6/7/8/leaf.bin", noise(3000, 3)),
        ("empty", Vec::new()),
    ];
    for (path, bytes) in files {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
    }
    // Two files written a piece at a time, in turn.
    let (a, b) = (noise(1_500_000, 5), noise(1_200_000, 7));
    let mut fa = fs::File::create(root.join("frag-a.bin")).unwrap();
    let mut fb = fs::File::create(root.join("frag-b.bin")).unwrap();
    for i in (0..a.len()).step_by(40_000) {
        use std::io::Write;
        fa.write_all(&a[i..(i + 40_000).min(a.len())]).unwrap();
        fa.sync_all().unwrap();
        if i < b.len() {
            fb.write_all(&b[i..(i + 40_000).min(b.len())]).unwrap();
            fb.sync_all().unwrap();
        }
    }
    fs::create_dir(root.join("many")).unwrap();
    for i in 0..entries {
        fs::write(
            root.join(format!("many/entry number {i:05}.txt")),
            i.to_string(),
        )
        .unwrap();
    }
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    for entry in walk(root) {
        if entry.is_file() && !entry.is_symlink() {
            let f = fs::File::options().write(true).open(&entry).unwrap();
            f.set_modified(when).unwrap();
        }
    }
}

/// `python3 tests/judges/NAME`: a judge script of this suite, for the caller's arguments.
pub fn judge_script(name: &str) -> Command {
    let mut python = Command::new("python3");
    python.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/judges")
            .join(name),
    );
    python
}

/// Every entry of every volume as pyfsapfs reads it (tests/judges/pyfsapfs_walk.py).
pub fn judged(image: &Path) -> Vec<serde_json::Value> {
    judged_with(image, None)
}

/// [`judged`], its encrypted volumes unlocked with `password`.
pub fn judged_with(image: &Path, password: Option<&str>) -> Vec<serde_json::Value> {
    let o = judge_script("pyfsapfs_walk.py")
        .arg(image)
        .args(password)
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "pyfsapfs: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The volumes `fsapfsinfo` names: (name, case-insensitive), in the container's order.
pub fn fsapfsinfo_volumes(image: &Path) -> Vec<(String, bool)> {
    let text = peer("fsapfsinfo", &[s(image)]);
    let field = |line: &str, name: &str| {
        line.trim()
            .strip_prefix(name)
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
    };
    let names = text.lines().filter_map(|l| field(l, "Name"));
    // Its incompatible-features line is the volume's: bit 0x1 is case-insensitivity.
    let insensitive = text
        .lines()
        .filter_map(|l| field(l, "Incompatible features"))
        .map(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap() & 1 == 1);
    names.zip(insensitive).collect()
}

/// The APFS volumes `dimg info --json` finds in `image`.
pub fn apfs_volumes(image: &Path) -> Vec<serde_json::Value> {
    let info: serde_json::Value =
        serde_json::from_str(&stdout(&dimg(&["info", s(image), "--json"]))).unwrap();
    info["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["file_system"] == "APFS")
        .flat_map(|p| p["volumes"].as_array().unwrap().clone())
        .collect()
}

/// A FUSE mount made by a peer, unmounted when dropped (and its loop device let go).
pub struct PeerMount {
    pub point: PathBuf,
    pub device: Option<String>,
}

impl PeerMount {
    pub fn unmount(&mut self) {
        if self.point.exists() {
            let _ = Command::new("fusermount3")
                .args(["-u", s(&self.point)])
                .output();
            // fusermount returns before a fuseblk server has written everything back.
            for _ in 0..100 {
                let table = fs::read_to_string("/proc/self/mountinfo").unwrap();
                if !table.contains(s(&self.point)) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        if let Some(device) = self.device.take() {
            for _ in 0..50 {
                let o = Command::new("losetup")
                    .args(["-d", &device])
                    .output()
                    .unwrap();
                if o.status.success() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}

impl Drop for PeerMount {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// `image` mounted by exfat-fuse at `point` (made here) through a loop device, as it wants a
/// block device.
pub fn exfat_fuse(image: &Path, point: &Path, read_only: bool) -> PeerMount {
    let loop_args = [&["-f", "--show"][..], if read_only { &["-r"] } else { &[] }].concat();
    let device = peer("losetup", &[&loop_args[..], &[s(image)]].concat())
        .trim()
        .to_string();
    fs::create_dir(point).unwrap();
    let mount = PeerMount {
        point: point.into(),
        device: Some(device.clone()),
    };
    let options: &[&str] = if read_only { &["-o", "ro"] } else { &[] };
    peer(
        "mount.exfat-fuse",
        &[options, &[&device, s(point)]].concat(),
    );
    mount
}
