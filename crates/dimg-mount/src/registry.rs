//! What is attached: each server's record (`<pid>.json` in the state folder) checked against the
//! kernel's mount table, which is the truth about which mounts are still there. Detaching goes
//! through fusermount3, so it works for a user's own mounts without root, and also clears a mount
//! whose server is gone. On macOS the table is getmntinfo's and `umount` detaches (macFUSE lets
//! a mount's owner unmount it).

use crate::{place, Attachment};
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The mount table's type for dimg's mounts.
#[cfg(target_os = "linux")]
const FS_TYPE: &str = "fuse.dimg";

/// Where servers keep their records and logs: `$XDG_RUNTIME_DIR/dimg`, else `/tmp/dimg-UID`,
/// made private to the user.
pub fn state_dir() -> io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = crate::handler::mounting_user().0;
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("dimg"),
        None => std::env::temp_dir().join(format!("dimg-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    // In a shared /tmp, someone else could have made it first.
    if std::fs::symlink_metadata(&dir)?.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} belongs to another user", dir.display()),
        ));
    }
    Ok(dir)
}

/// A new, empty log file for a server about to start.
pub fn new_log() -> io::Result<PathBuf> {
    let dir = state_dir()?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    Ok(dir.join(format!("server-{}-{stamp}.log", std::process::id())))
}

fn record_path(pid: u32) -> io::Result<PathBuf> {
    Ok(state_dir()?.join(format!("{pid}.json")))
}

fn unsaved_path(pid: u32) -> io::Result<PathBuf> {
    Ok(state_dir()?.join(format!("{pid}.unsaved")))
}

/// Said by a server whose volume or disk could not be brought up to date as it closed, for the
/// `detach` that waits for it to end.
pub(crate) fn report_unsaved(what: &str) {
    use std::io::Write;
    let file = unsaved_path(std::process::id()).and_then(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    });
    if let Ok(mut file) = file {
        let _ = writeln!(file, "{what}");
    }
}

/// What server `pid` could not write as it ended, taken (once).
fn take_unsaved(pid: u32) -> Vec<String> {
    let Ok(path) = unsaved_path(pid) else {
        return Vec::new();
    };
    let said = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    said.lines().map(str::to_string).collect()
}

/// Writes a server's record (atomically: a reader never sees half of it).
pub(crate) fn record(attachment: &Attachment) -> io::Result<()> {
    let path = record_path(attachment.pid)?;
    let temporary = path.with_extension("json.new");
    std::fs::write(&temporary, serde_json::to_vec_pretty(attachment)?)?;
    std::fs::rename(&temporary, &path)
}

/// Takes away a finished server's record, log and the folders it made.
pub(crate) fn forget(attachment: &Attachment) {
    // A folder still mounted on (or not empty) is refused by rmdir itself, and stays.
    for m in attachment.mounts.iter().filter(|m| m.created) {
        let _ = std::fs::remove_dir(&m.mount_point);
    }
    if let Ok(path) = record_path(attachment.pid) {
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(&attachment.log);
}

/// The mount points of dimg's mounts in the kernel's table.
#[cfg(target_os = "linux")]
fn mounted() -> HashSet<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    table
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fs_type = right.split(' ').next()?;
            let point = left.split(' ').nth(4)?;
            (fs_type == FS_TYPE).then(|| PathBuf::from(unescape(point)))
        })
        .collect()
}

/// The mount points of macFUSE's mounts in the kernel's table (macFUSE keeps no subtype: a
/// mount is dimg's by its record, or by the user naming it to detach).
#[cfg(target_os = "macos")]
fn mounted() -> HashSet<PathBuf> {
    use std::ffi::CStr;
    let mut table: *mut libc::statfs = std::ptr::null_mut();
    // SAFETY: getmntinfo points `table` at its own buffer of the count it returns.
    let count = unsafe { libc::getmntinfo(&mut table, libc::MNT_NOWAIT) };
    if table.is_null() || count <= 0 {
        return HashSet::new();
    }
    // SAFETY: `count` statfs records, valid until the next getmntinfo on this thread.
    let table = unsafe { std::slice::from_raw_parts(table, count as usize) };
    let text = |field: &[libc::c_char]| {
        // SAFETY: the kernel NUL-terminates each name within its field.
        unsafe { CStr::from_ptr(field.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    table
        .iter()
        .filter(|m| text(&m.f_fstypename).starts_with("macfuse"))
        .map(|m| PathBuf::from(text(&m.f_mntonname)))
        .collect()
}

/// The mount table writes space, tab, newline and backslash as octal escapes.
#[cfg(any(target_os = "linux", test))]
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let text = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(target_os = "linux")]
fn alive(pid: u32) -> bool {
    // A zombie has given up its mounts: it is as good as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|s| !s.trim_start().starts_with('Z'))
    })
}

/// Whether the process `pid` is there (it may be a zombie, which has given up its mounts: a
/// server's parent reaps it).
#[cfg(target_os = "macos")]
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Every attached image, with the mounts that are still there. Records of servers that are
/// gone and left no mount behind are cleared on the way.
pub fn attached() -> Vec<Attachment> {
    let Ok(dir) = state_dir() else {
        return Vec::new();
    };
    let mounted = mounted();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Some(mut a) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Attachment>(&b).ok())
        else {
            continue;
        };
        a.running = alive(a.pid);
        a.mounts.retain(|m| mounted.contains(&m.mount_point));
        match (a.running, a.mounts.is_empty()) {
            (false, true) => forget(&a),
            _ => found.push(a),
        }
    }
    found.sort_by_key(|a| a.pid);
    found
}

/// What `detach` did.
#[derive(Debug, serde::Serialize)]
pub struct Detached {
    pub image: Option<PathBuf>,
    pub unmounted: Vec<PathBuf>,
    /// Processes that still had files open on a volume `force` took away ("pid 42 (bash)"):
    /// everything they wrote before is in the image; what they read or write after fails.
    pub cut_off: Vec<String>,
}

/// Unmounts every mount of the image `target` names, or the one mount it names, and lets the
/// server end, its image brought up to date. A busy mount is refused with the processes that
/// hold it, unless `force`: then it is taken away from them (a read-only one lazily, gone once
/// they let go; a writable one at once, so that its server writes its last changes and ends).
/// An error says what the server could not write as it ended.
pub fn detach(target: &Path, force: bool) -> Result<Detached, String> {
    let absolute = place::resolved(target);
    let image = match dimg::remote::is_url(target) {
        true => Some(target.to_path_buf()),
        false => std::fs::canonicalize(target).ok(),
    };
    let all = attached();
    let mine: Vec<&Attachment> = all
        .iter()
        .filter(|a| {
            image.as_ref().is_some_and(|i| *i == a.image)
                || a.mounts.iter().any(|m| m.mount_point == absolute)
        })
        .collect();
    let mut report = Detached {
        image: mine.first().map(|a| a.image.clone()),
        unmounted: Vec::new(),
        cut_off: Vec::new(),
    };
    let points: Vec<PathBuf> = match mine.is_empty() {
        // A dimg mount nobody recorded (another state folder, a lost record): still ours to clear.
        true if mounted().contains(&absolute) => vec![absolute.clone()],
        true => {
            return Err(format!(
                "{}: nothing of dimg's is attached there",
                target.display()
            ))
        }
        false => mine
            .iter()
            .flat_map(|a| a.mounts.iter().map(|m| m.mount_point.clone()))
            .collect(),
    };
    // The FUSE connections of writable mounts taken from processes, cut off once unmounted.
    #[cfg(target_os = "linux")]
    let mut busy = Vec::new();
    for point in points {
        let holders = match force {
            true => holders(&point),
            false => Vec::new(),
        };
        // The kernel's number for the mount's FUSE connection, known only while it is mounted.
        #[cfg(target_os = "linux")]
        let connection = connection_of(&point);
        unmount(&point, force)?;
        if !holders.is_empty() {
            report.cut_off.extend(holders);
            #[cfg(target_os = "linux")]
            busy.extend(connection);
        }
        report.unmounted.push(point);
    }
    let mut unsaved = Vec::new();
    for a in mine {
        #[cfg(target_os = "linux")]
        if a.writable && !busy.is_empty() {
            cut_off(&busy);
        }
        await_end(a);
        unsaved.extend(take_unsaved(a.pid));
    }
    match unsaved.is_empty() {
        true => Ok(report),
        false => Err(format!(
            "{}: detached, but {}",
            target.display(),
            unsaved.join("; ")
        )),
    }
}

/// The FUSE connection of the mount at `point` (its device's minor number, which names it
/// under /sys/fs/fuse/connections).
#[cfg(target_os = "linux")]
fn connection_of(point: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(point).ok()?.dev();
    Some(libc::minor(dev))
}

/// Ends FUSE connections whose mounts were taken away while processes held them: the kernel
/// fails those processes' requests, and the server, its connection gone, closes its volume and
/// ends. Through the kernel's fusectl files (mounted here when the system has not), which the
/// mount's owner may write. macOS has no such files: there `umount -f` takes a mount away at
/// once.
#[cfg(target_os = "linux")]
fn cut_off(connections: &[u32]) {
    let control = Path::new("/sys/fs/fuse/connections");
    let empty = std::fs::read_dir(control).is_ok_and(|mut d| d.next().is_none());
    if empty {
        let _ = Command::new("mount")
            .args(["-t", "fusectl", "fusectl"])
            .arg(control)
            .output();
    }
    for n in connections {
        let _ = std::fs::write(control.join(n.to_string()).join("abort"), "1");
    }
}

/// fusermount3 (`-z`: lazily); `umount` (`-f`: at once) on macOS.
fn unmount(point: &Path, force: bool) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    let (tool, forced, missing) = ("fusermount3", "-z", "fusermount3 (from Debian's fuse3)");
    #[cfg(target_os = "macos")]
    let (tool, forced, missing) = ("umount", "-f", "umount");
    let mut command = Command::new(tool);
    #[cfg(target_os = "linux")]
    command.arg("-u");
    if force {
        command.arg(forced);
    }
    let output = command
        .arg(point)
        .output()
        .map_err(|e| format!("{missing} cannot be run: {e}"))?;
    if output.status.success() || !mounted().contains(point) {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    if said.contains("busy") {
        let holders = holders(point);
        let who = match holders.is_empty() {
            true => "a process".to_string(),
            false => holders.join(", "),
        };
        return Err(format!(
            "{}: the volume is busy: {who} has files or folders open on it \
             (close them, or detach with -force)",
            point.display()
        ));
    }
    Err(format!(
        "{}: cannot unmount: {}",
        point.display(),
        said.trim()
    ))
}

/// "pid 42 (bash)" for every process with a file, folder or working folder under `point`.
#[cfg(target_os = "linux")]
fn holders(point: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for proc_entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = proc_entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let base = proc_entry.path();
        let fds = std::fs::read_dir(base.join("fd"))
            .into_iter()
            .flatten()
            .flatten();
        let links = ["cwd", "root", "exe"]
            .iter()
            .map(|l| base.join(l))
            .chain(fds.map(|e| e.path()));
        let holds = links
            .filter_map(|l| std::fs::read_link(l).ok())
            .any(|target| target.starts_with(point));
        if holds && pid != std::process::id() {
            let name = std::fs::read_to_string(base.join("comm")).unwrap_or_default();
            found.push(format!("pid {pid} ({})", name.trim()));
        }
    }
    found
}

/// "pid 42 (bash)" for every process with a file, folder or working folder on the volume
/// mounted at `point`, as lsof (given a mount point) lists them: `p42` then `cbash`, each field
/// on a line.
#[cfg(target_os = "macos")]
fn holders(point: &Path) -> Vec<String> {
    let Ok(out) = Command::new("lsof")
        .args(["-F", "pc", "--"])
        .arg(point)
        .output()
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut pid = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match line.split_at_checked(1) {
            Some(("p", n)) => pid = n.parse().unwrap_or(0),
            Some(("c", name)) if pid != 0 && pid != std::process::id() => {
                found.push(format!("pid {pid} ({name})"))
            }
            _ => {}
        }
    }
    found
}

/// Gives a server whose mounts are gone a moment to end by itself, then asks it to.
fn await_end(a: &Attachment) {
    let gone = |within: Duration| {
        let deadline = Instant::now() + within;
        while alive(a.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        !alive(a.pid)
    };
    // A server that may have changed the image is bringing it up to date (a UDRW's checksums
    // over the whole disk): it is waited for, never stopped halfway.
    if a.writable {
        while alive(a.pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
    } else if !gone(Duration::from_secs(5)) {
        // SAFETY: kill only sends a signal to the server's pid.
        unsafe { libc::kill(a.pid as i32, libc::SIGTERM) };
        gone(Duration::from_secs(2));
    }
    // The server cleans up after itself; one that was killed cannot.
    forget(a);
}

#[cfg(test)]
mod tests {
    #[test]
    fn mount_table_escapes_are_undone() {
        assert_eq!(
            super::unescape(r"/media/root/My\040Disk\134x"),
            r"/media/root/My Disk\x"
        );
        assert_eq!(super::unescape(r"/plain"), "/plain");
    }
}
