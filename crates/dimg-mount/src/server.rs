//! One server per attached image: it mounts, records itself in the registry, serves until every
//! mount is gone or it is told to stop, then cleans up. `spawn_attach` starts one in the
//! background, as `hdiutil attach` leaves its volumes mounted after it returns.

use crate::change_fs::ChangeFs;
use crate::disk_fs::{DiskFs, ServedDisk};
use crate::volume_fs::VolumeFs;
use crate::{place, registry, Access, Attachment, Mounted, Request};
use dimg::container::{self, shadow::Shadowed};
use dimg::fs::exfat::ExFatChange;
use dimg::fs::fat::FatChange;
use dimg::fs::hfsplus::HfsChange;
use dimg::fs::VolumeMut;
use dimg::io::{ReadAt, Slice, WriteAt};
use dimg::magic::Signature;
use dimg::ops::{self, Cancel};
use dimg::{Error, Passphrase};
use fuser::{BackgroundSession, Config, Filesystem, MountOption, SessionACL};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Request threads per mount: parallel readers of different files decode on different cores.
const THREADS: usize = 4;

pub struct Server {
    attachment: Attachment,
    sessions: Vec<BackgroundSession>,
}

/// Mounts what `request` asks for and records the attachment. The mounts are served from
/// threads of this process until [`Server::wait`] returns.
pub fn serve(
    request: &Request,
    passphrase: Option<&Passphrase>,
    log: &Path,
) -> dimg::Result<Server> {
    // Request threads and decoders each get a malloc arena by default, which costs a long-lived
    // server tens of megabytes of fragments; two arenas serve them as fast.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; called before the threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let image = absolute(&request.image).map_err(|e| Error::io(&request.image, e))?;
    let refuse = |reason: String| Error::Refused {
        path: image.clone(),
        reason,
    };
    let image_time = std::fs::metadata(&image)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let origin = image.display().to_string();
    let (opened, writable) = match &request.shadow {
        Some(path) => shadowed(&image, passphrase, path, request.access)?,
        None => open_for(&image, passphrase, request.access)?,
    };
    if request.nomount {
        let disk = served_disk(&image, &opened, writable)?;
        refuse_alongside(&image, disk.writable.is_some())?;
        let mut server = Server::new(&image, log, disk.writable.is_some());
        let folder = match &request.mount_point {
            Some(p) => p.clone(),
            None => {
                let name = image.file_name().unwrap_or_default().to_string_lossy();
                let disks = registry::state_dir().map_err(|e| Error::io(&image, e))?;
                place::free_mount_point(&disks, &format!("{name} disk"))
                    .map_err(|e| Error::io(&disks, e))?
            }
        };
        let fs = DiskFs::new(origin, disk, image_time);
        let files = fs.names().map(str::to_string).collect();
        server.mount(fs, &folder, "disk", None, &image, files)?;
        registry::record(&server.attachment).map_err(|e| Error::io(&image, e))?;
        return Ok(server);
    }
    let found = ops::volumes_of(&opened, &image, passphrase, request.volume)?;
    if found.volumes.is_empty() {
        return Err(Error::io(&image, found.no_volume()));
    }
    // A volume still locked would answer every read with an error: it is not mounted. Where
    // nothing else is, why it is locked is the answer (a passphrase is needed, or is wrong).
    let (locked, volumes): (Vec<_>, Vec<_>) = found
        .volumes
        .into_iter()
        .partition(|v| v.volume.locked().is_some());
    if let (true, Some(why)) = (
        volumes.is_empty(),
        locked.first().and_then(|v| v.volume.locked()),
    ) {
        return Err(Error::io(&image, why));
    }
    if request.mount_point.is_some() && volumes.len() > 1 {
        let which: Vec<String> = volumes.iter().map(|v| v.id.to_string()).collect();
        return Err(refuse(format!(
            "holds {} volumes ({}): choose one with -volume N to give it -mountpoint",
            volumes.len(),
            which.join(", ")
        )));
    }
    // Volumes dimg can change (FAT, exFAT, HFS+, HFSX) on a disk that can be written are mounted
    // read/write.
    let kinds: Vec<Option<Signature>> = volumes
        .iter()
        .map(|v| {
            dimg::fs::identify(&v.partition.open(found.disk.clone()))
                .ok()
                .flatten()
        })
        .collect();
    let changeable = |kind: &Option<Signature>| {
        writable.is_some()
            && matches!(
                kind,
                Some(Signature::Fat | Signature::ExFat | Signature::HfsPlus | Signature::Hfsx)
            )
    };
    if request.access == Access::ReadWrite {
        if let Some((v, kind)) = volumes.iter().zip(&kinds).find(|(_, k)| !changeable(k)) {
            return Err(refuse(format!(
                "volume {} is {}, which dimg does not write yet (it writes FAT, exFAT, HFS+ \
                 and HFSX volumes); attach -nomount serves the disk read/write",
                v.id,
                kind.map_or("no file system dimg knows", |s| s.name())
            )));
        }
    }
    // Each changeable volume opened for changing; one that cannot be changed safely (an HFS+
    // volume left dirty) is mounted read-only, saying why in the server's log — or refused
    // where read/write was asked.
    let mut changes: Vec<Option<Arc<dyn VolumeMut>>> = Vec::with_capacity(volumes.len());
    for (v, kind) in volumes.iter().zip(&kinds) {
        let Some(disk) = writable.as_ref().filter(|_| changeable(kind)) else {
            changes.push(None);
            continue;
        };
        let part: Arc<dyn WriteAt> = Arc::new(Slice::new(
            disk.clone(),
            v.partition.start,
            v.partition.size,
        ));
        let opened: io::Result<Arc<dyn VolumeMut>> = match kind {
            Some(Signature::Fat) => FatChange::open(part).map(|f| Arc::new(f) as _),
            Some(Signature::ExFat) => ExFatChange::open(part).map(|f| Arc::new(f) as _),
            _ => HfsChange::open(part).map(|h| Arc::new(h) as _),
        };
        match opened {
            Ok(change) => changes.push(Some(change)),
            Err(e)
                if e.kind() == io::ErrorKind::PermissionDenied
                    && request.access != Access::ReadWrite =>
            {
                eprintln!("volume {}: {e}", v.id);
                changes.push(None);
            }
            Err(e) => return Err(refuse(format!("volume {}: {e}", v.id))),
        }
    }
    let any_changeable = changes.iter().any(Option::is_some);
    refuse_alongside(&image, any_changeable)?;
    let mut server = Server::new(&image, log, any_changeable);
    for (
        (
            ops::FoundVolume {
                partition,
                id,
                volume,
            },
            kind,
        ),
        change,
    ) in volumes.into_iter().zip(kinds).zip(changes)
    {
        let name = volume.label();
        let file_system = kind.map_or("volume", |s| s.name());
        let folder = match &request.mount_point {
            Some(p) => p.clone(),
            None => place::volumes_folder()
                .and_then(|f| place::free_mount_point(&f, &name))
                .map_err(|e| Error::io(Path::new("/media"), e))?,
        };
        let origin = format!("{origin} (volume {id})");
        let mounted = (Some(id), name);
        match change {
            Some(change) => {
                let fs = ChangeFs::new(change, origin);
                server.mount(fs, &folder, file_system, Some(mounted), &image, Vec::new())?;
            }
            None => {
                let fs = VolumeFs::new(volume, origin, partition.size, image_time);
                server.mount(fs, &folder, file_system, Some(mounted), &image, Vec::new())?;
            }
        }
    }
    registry::record(&server.attachment).map_err(|e| Error::io(&image, e))?;
    Ok(server)
}

/// The image's file as an absolute path (a URL as it is); a path on into an image inside it
/// ("outer.dmg:/inner.dmg") keeps that part as given.
fn absolute(image: &Path) -> std::io::Result<std::path::PathBuf> {
    if dimg::remote::is_url(image) {
        return Ok(image.to_path_buf());
    }
    let (outer, inner) = match image.to_str() {
        Some(text) if !image.exists() => dimg::ops::split_target(text),
        _ => return std::fs::canonicalize(image),
    };
    let real = std::fs::canonicalize(&outer)?;
    match inner.as_str() {
        "/" => Ok(real),
        _ => Ok(format!("{}:{inner}", real.display()).into()),
    }
}

/// The image opened as `access` allows: to be written (with its writable disk) where its format
/// can be and its file may be, else to be read; refused, saying why, where read/write was asked
/// of one that cannot be.
fn open_for(
    image: &Path,
    passphrase: Option<&Passphrase>,
    access: Access,
) -> dimg::Result<(container::Opened, Option<Arc<dyn WriteAt>>)> {
    let refuse = |reason: String| Error::Refused {
        path: image.to_path_buf(),
        reason,
    };
    // A file without write permission is attached read-only, as the Finder does, even for root;
    // so is an image inside another image, which is read through the volume holding it.
    let locked = std::fs::metadata(image).map_or(true, |m| m.permissions().readonly());
    if access == Access::ReadWrite && locked {
        return Err(refuse(
            "has no write permission, is inside another image or is on a server, so it attaches \
             read-only"
                .into(),
        ));
    }
    let opened = match access {
        _ if access == Access::ReadOnly || locked => dimg::ops::open_image(image, passphrase)?,
        _ => container::open_writable(image, passphrase)?,
    };
    let writable = opened.container.writable();
    if access == Access::ReadWrite && writable.is_none() {
        return Err(refuse(format!(
            "is a read-only or compressed {}, so it attaches read-only; to change its disk, \
             attach it with -nomount -shadow: the changes go to a shadow file beside it",
            opened.format
        )));
    }
    Ok((opened, writable))
}

/// The image read as its shadow file changes it: the image only read, the shadow opened to be
/// written (unless read-only was asked), so that what the disk or its volumes write they read.
fn shadowed(
    image: &Path,
    passphrase: Option<&Passphrase>,
    shadow: &Path,
    access: Access,
) -> dimg::Result<(container::Opened, Option<Arc<dyn WriteAt>>)> {
    let container::Opened {
        format,
        container: inner,
        signatures,
        file_size,
    } = container::open(image, passphrase)?;
    let (container, writable): (Box<dyn container::Container>, _) = match access {
        Access::ReadOnly => {
            let read = Shadowed::open(inner, shadow).map_err(|e| Error::io(shadow, e))?;
            (Box::new(read), None)
        }
        _ => {
            let disk = container::shadow::open_writable(inner.disk(), shadow)
                .map_err(|e| Error::io(shadow, e))?;
            (
                Box::new(Shadowed::over(inner, disk.clone(), shadow)),
                Some(disk),
            )
        }
    };
    let opened = container::Opened {
        format,
        container,
        signatures,
        file_size,
    };
    Ok((opened, writable))
}

/// The disk `nomount` serves: the image's (as its shadow changes it, where there is one),
/// written through when `writable`, and its partitions.
fn served_disk(
    image: &Path,
    opened: &container::Opened,
    writable: Option<Arc<dyn WriteAt>>,
) -> dimg::Result<ServedDisk> {
    // Read through the writer where there is one: what it writes, the disk then reads.
    let disk = match &writable {
        Some(w) => w.clone() as Arc<dyn ReadAt>,
        None => opened.container.disk(),
    };
    let (_, partitions) = dimg::fs::places(&*disk).map_err(|e| Error::io(image, e))?;
    Ok(ServedDisk {
        disk,
        writable,
        partitions,
    })
}

/// Refuses to attach an image already attached read/write, or to attach one read/write while it
/// is attached at all: one writer, and no reader with a stale view of what it writes.
fn refuse_alongside(image: &Path, writable: bool) -> dimg::Result<()> {
    let clash = registry::attached()
        .into_iter()
        .find(|a| a.running && a.image == image && (writable || a.writable));
    let Some(other) = clash else {
        return Ok(());
    };
    let at = other
        .mounts
        .first()
        .map_or("(no mount)".into(), |m| m.mount_point.display().to_string());
    Err(Error::Refused {
        path: image.to_path_buf(),
        reason: format!(
            "is already attached{} at {at} (server {}): detach it first",
            if other.writable { " read/write" } else { "" },
            other.pid
        ),
    })
}

impl Server {
    fn new(image: &Path, log: &Path, writable: bool) -> Server {
        Server {
            attachment: Attachment {
                image: image.to_path_buf(),
                pid: std::process::id(),
                log: log.to_path_buf(),
                mounts: Vec::new(),
                running: true,
                writable,
            },
            sessions: Vec::new(),
        }
    }

    pub fn attachment(&self) -> &Attachment {
        &self.attachment
    }

    fn mount(
        &mut self,
        fs: impl Filesystem,
        folder: &Path,
        file_system: &str,
        volume: Option<(Option<ops::VolumeId>, String)>,
        image: &Path,
        files: Vec<String>,
    ) -> dimg::Result<()> {
        let created = match std::fs::create_dir(folder) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && folder.is_dir() => false,
            Err(e) => return Err(Error::io(folder, e)),
        };
        // Recorded as the mount table will name it.
        let folder = &place::resolved(folder);
        let session = fuser::spawn_mount(fs, folder, &config(image, self.attachment.writable));
        let session = match session {
            Ok(s) => s,
            Err(e) => {
                if created {
                    let _ = std::fs::remove_dir(folder);
                }
                return Err(Error::io(folder, e));
            }
        };
        self.sessions.push(session);
        let (volume, name) = volume.unwrap_or((None, "disk".into()));
        self.attachment.mounts.push(Mounted {
            volume,
            file_system: file_system.into(),
            name,
            mount_point: folder.to_path_buf(),
            files: files.iter().map(|name| folder.join(name)).collect(),
            created,
        });
        Ok(())
    }

    /// Serves until every mount is gone (detach, `fusermount3 -u`) or `stop` is cancelled (Ctrl-C,
    /// SIGTERM), then unmounts what is left, takes away the folders it made and its record.
    pub fn wait(mut self, stop: &Cancel) {
        loop {
            self.sessions.retain(|s| !s.guard.is_finished());
            if self.sessions.is_empty() || stop.is_cancelled() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for session in self.sessions.drain(..) {
            if let Err(e) = session.umount_and_join() {
                eprintln!(
                    "dimg mount: {}: unmounting: {e}",
                    self.attachment.image.display()
                );
            }
        }
        registry::forget(&self.attachment);
    }
}

/// Mount options: read-only unless `writable`, named after the image in the mount table, and
/// unmounted by fusermount3 if the server dies, where fuse.conf lets a user ask for that.
fn config(image: &Path, writable: bool) -> Config {
    // fusermount3 splits its options at commas.
    let source = image.display().to_string().replace([',', '\\'], "_");
    let mut config = Config::default();
    config.mount_options = vec![
        if writable {
            MountOption::RW
        } else {
            MountOption::RO
        },
        MountOption::FSName(source),
        MountOption::Subtype("dimg".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoAtime,
    ];
    if auto_unmount_allowed() {
        config.mount_options.push(MountOption::AutoUnmount);
        config.acl = SessionACL::RootAndOwner;
    }
    config.n_threads = Some(THREADS);
    config
}

/// fusermount3 unmounts after a dead server only with allow_other/allow_root, which a user may
/// ask for only where /etc/fuse.conf says `user_allow_other`.
fn auto_unmount_allowed() -> bool {
    crate::handler::mounting_user().0 == 0
        || std::fs::read_to_string("/etc/fuse.conf").is_ok_and(|conf| {
            conf.lines()
                .any(|l| l.split('#').next().unwrap_or("").trim() == "user_allow_other")
        })
}

/// In a server started by [`spawn_attach`]: hands the attachment to the waiting front end on
/// standard output, then lets go of it (the server outlives the front end).
pub fn hand_over(attachment: &Attachment) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, attachment)?;
    out.write_all(b"\n")?;
    out.flush()?;
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    use std::os::fd::AsRawFd;
    // SAFETY: both descriptors are open; dup2 replaces standard output with /dev/null.
    if unsafe { libc::dup2(null.as_raw_fd(), 1) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Starts a server for `request` in the background: `dimg attach IMAGE --foreground …` run
/// from `dimg` (the command line, whose hidden `--served LOG` calls [`serve`] then
/// [`hand_over`]), given the passphrase on standard input. Returns what it attached, or its
/// error.
pub fn spawn_attach(
    dimg: &Path,
    request: &Request,
    passphrase: Option<&[u8]>,
) -> Result<Attachment, String> {
    let log = registry::new_log().map_err(|e| format!("cannot make a server log: {e}"))?;
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new(dimg);
    command
        .args(attach_args(request, passphrase.is_some()))
        .arg("--served")
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file);
    // Its own session: no terminal's Ctrl-C or hang-up reaches it.
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and the only call between fork and exec.
    unsafe {
        command.pre_exec(|| match libc::setsid() {
            -1 => Err(io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: cannot start: {e}", dimg.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A server that failed before reading it closes the pipe: its log says why.
        let _ = stdin.write_all(passphrase.unwrap_or_default());
    }
    let mut report = String::new();
    let read = child
        .stdout
        .take()
        .map(|mut o| o.read_to_string(&mut report));
    if let (Some(Ok(_)), Ok(attachment)) = (read, serde_json::from_str::<Attachment>(&report)) {
        return Ok(attachment);
    }
    let _ = child.wait();
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let reason = said
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("the mount server stopped without saying why")
        .trim_start_matches("dimg: ");
    Err(reason.to_string())
}

/// `dimg attach`'s arguments for serving `request` in the foreground, the passphrase read from
/// standard input when `stdinpass`.
fn attach_args(request: &Request, stdinpass: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "attach".into(),
        request.image.clone().into(),
        "--foreground".into(),
    ];
    if let Some(point) = &request.mount_point {
        args.extend(["--mountpoint".into(), point.into()]);
    }
    if let Some(n) = request.volume {
        args.extend(["--volume".into(), n.to_string().into()]);
    }
    if request.nomount {
        args.push("--nomount".into());
    }
    if let Some(shadow) = &request.shadow {
        args.extend(["--shadow".into(), shadow.into()]);
    }
    match request.access {
        Access::AsTheImageAllows => {}
        Access::ReadOnly => args.push("--readonly".into()),
        Access::ReadWrite => args.push("--readwrite".into()),
    }
    if stdinpass {
        args.push("--stdinpass".into());
    }
    args
}
