//! Where volumes appear: where the desktop's file manager shows removable media. GIO lists a
//! mount as a volume when it lies under `/media/`, under `/run/media/$USER/`, or in the home
//! folder outside hidden folders; udisks mounts under `/media/$USER/` on Debian.

use std::io;
use std::path::{Path, PathBuf};

/// The folder new volumes go in: `/media/$USER` where it can be made or written (root, or a
/// desktop whose udisks made it), else `/run/media/$USER`, else `~/Volumes` (GIO shows those too).
pub fn volumes_folder() -> io::Result<PathBuf> {
    let user = user_name();
    let is_root = crate::handler::mounting_user().0 == 0;
    for parent in ["/media", "/run/media"] {
        let folder = Path::new(parent).join(&user);
        if is_root {
            std::fs::create_dir_all(&folder)?;
            return Ok(folder);
        }
        if writable(&folder) {
            return Ok(folder);
        }
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no home folder (HOME is unset)"))?;
    let folder = home.join("Volumes");
    std::fs::create_dir_all(&folder)?;
    Ok(folder)
}

/// A folder for volume `name` in `folder` that nothing else uses: the name as it is, then
/// "name 1", "name 2"... as macOS numbers clashes in /Volumes. An empty folder left behind by an
/// earlier mount is taken again.
pub fn free_mount_point(folder: &Path, name: &str) -> io::Result<PathBuf> {
    let name = folder_name(name);
    for n in 0..1000u32 {
        let candidate = match n {
            0 => folder.join(&name),
            n => folder.join(format!("{name} {n}")),
        };
        match std::fs::symlink_metadata(&candidate) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(candidate),
            Ok(m) if m.is_dir() && is_empty(&candidate) && !is_mount_point(&candidate) => {
                return Ok(candidate)
            }
            _ => {}
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{}: a thousand volumes named {name} are mounted",
            folder.display()
        ),
    ))
}

/// A volume name as a folder name: trimmed, '/' shown as ':' (as macOS does), never hidden or empty.
pub fn folder_name(name: &str) -> String {
    let name = name.trim().replace(['/', '\0'], ":");
    match name.trim_start_matches('.') {
        "" => "Untitled".into(),
        visible => visible.to_string(),
    }
}

/// `path` without symlinks or '..', as the kernel's mount table names it. A mount whose server
/// died cannot be resolved itself ("not connected"), so its folder is resolved instead.
pub fn resolved(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => match std::fs::canonicalize(parent) {
            Ok(parent) => parent.join(name),
            Err(_) => absolute,
        },
        _ => absolute,
    }
}

/// Whether `path` is the root of a mount (a different device from its parent).
pub fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = path.parent().unwrap_or(Path::new("/"));
    match (std::fs::metadata(path), std::fs::metadata(parent)) {
        (Ok(m), Ok(p)) => m.dev() != p.dev(),
        // A mount whose server died answers "not connected": still a mount.
        _ => true,
    }
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; access only reads it.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

fn user_name() -> String {
    if let Some(user) = std::env::var_os("USER").filter(|u| !u.is_empty()) {
        return user.to_string_lossy().into_owned();
    }
    // SAFETY: getpwuid returns a pointer into static storage or null; it is read at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    "root".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashing_names_are_numbered_as_macos_numbers_them() {
        let dir = tempfile_dir();
        let first = free_mount_point(&dir, "  DISK  ").unwrap();
        assert_eq!(first, dir.join("DISK"));
        std::fs::create_dir(&first).unwrap();
        std::fs::write(first.join("x"), b"busy").unwrap();
        let second = free_mount_point(&dir, "DISK").unwrap();
        assert_eq!(second, dir.join("DISK 1"));
        std::fs::write(&second, b"a file").unwrap();
        assert_eq!(free_mount_point(&dir, "DISK").unwrap(), dir.join("DISK 2"));
        // An empty folder left behind is taken again.
        std::fs::remove_file(first.join("x")).unwrap();
        assert_eq!(free_mount_point(&dir, "DISK").unwrap(), first);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn folder_names_are_never_hidden_empty_or_nested() {
        assert_eq!(folder_name("a/b"), "a:b");
        assert_eq!(folder_name(".hidden"), "hidden");
        assert_eq!(folder_name("   "), "Untitled");
        assert_eq!(folder_name("CDROM                           "), "CDROM");
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dimg-place-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
