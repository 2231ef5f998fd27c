//! `dimg`: hdiutil-style verbs over the engine's operations. This is the only place (with the app)
//! that talks to people: it parses arguments, draws progress, prints results and maps errors to
//! exit codes.

mod args;
mod docs;
mod output;
mod progress;

use clap::Parser;
use dimg::ops::{self, text, Cancel};
use dimg::Error;
use std::process::ExitCode;
use std::sync::Arc;
use zeroize::Zeroizing;

use args::{Cli, Command, PartitionAction, PassArgs};
use dimg::Passphrase;
use output::Output;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

fn main() -> ExitCode {
    let cli = Cli::parse_from(args::hdiutil_style(std::env::args_os()));
    let cancel = Cancel::new();
    let on_interrupt = cancel.clone();
    // Ctrl-C, SIGTERM or SIGHUP asks a job that watches for it to stop and clean up; a command
    // that writes nothing, or a second signal, ends the process at once (one stuck in a read
    // that never returns, too). If the handler cannot be installed, signals end the process
    // the default way.
    let at_once = matches!(
        cli.command,
        Command::Info { .. }
            | Command::Ls { .. }
            | Command::List { .. }
            | Command::Mount { .. }
            | Command::Unmount { .. }
            | Command::Isencrypted { .. }
            | Command::Generate { .. }
    );
    let handled = ctrlc::set_handler(move || {
        if at_once || on_interrupt.is_cancelled() {
            std::process::exit(130);
        }
        on_interrupt.cancel();
    });
    if handled.is_ok() {
        deliver_signals_to_the_handler();
    }
    match run(cli, &cancel) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Engine(Error::Cancelled)) => {
            eprintln!("dimg: cancelled");
            ExitCode::from(130)
        }
        Err(Failure::Engine(e @ Error::CancelledPartway { .. })) => {
            eprintln!("dimg: {e}");
            ExitCode::from(130)
        }
        Err(Failure::Engine(e)) => {
            eprintln!("dimg: {e}");
            ExitCode::FAILURE
        }
        Err(Failure::Checks(message)) => {
            eprintln!("dimg: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Usage(message)) => {
            eprintln!("dimg: {message}");
            ExitCode::from(2)
        }
    }
}

/// Why a command did not succeed.
enum Failure {
    Engine(Error),
    /// The job ran, and what it found is bad (a verify with failed checks).
    Checks(String),
    /// The command line does not say enough, as clap's own usage errors (exit 2).
    Usage(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Engine(e)
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread it starts from now on, so
/// that the kernel hands them to the handler's thread (started before, so not blocking them). A
/// signal delivered to a thread stuck in the kernel (a read from a file server that does not
/// answer) would wait there with it, and the handler would never run.
fn deliver_signals_to_the_handler() {
    // SAFETY: a signal set built with the libc calls for it, applied to this thread's own mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// What `create -srcdevice` copies.
enum Behind {
    Device(std::path::PathBuf),
    /// A volume dimg mounted has no block device: behind it is its partition of the image
    /// (index 0: the whole disk), which nothing writes to.
    Volume(std::path::PathBuf, u32),
}

/// The image and partition behind `spec` when it is the mount point of a volume dimg attached.
fn dimg_volume(spec: &Path) -> Option<(std::path::PathBuf, u32)> {
    let point = spec.canonicalize().ok()?;
    dimg_mount::attached().into_iter().find_map(|a| {
        a.mounts
            .iter()
            .find(|m| m.mount_point == point)
            .and_then(|m| m.volume.as_ref())
            .map(|v| (a.image.clone(), v.partition))
    })
}

/// All of standard input, as a passphrase (`-stdinpass`): read once, shared by every use.
fn stdin_passphrase(pass: PassArgs) -> dimg::Result<Option<Arc<Passphrase>>> {
    if !pass.stdinpass {
        return Ok(None);
    }
    let bytes = read_stdin()?;
    Ok(Some(Arc::new(Passphrase::from_stdin(bytes.to_vec()))))
}

fn read_stdin() -> dimg::Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(Vec::new());
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(Path::new("standard input"), e))?;
    Ok(bytes)
}

/// A hidden prompt on the terminal.
fn ask(prompt: &str) -> dimg::Result<Passphrase> {
    let typed =
        rpassword::prompt_password(prompt).map_err(|e| Error::io(Path::new("terminal"), e))?;
    Ok(Passphrase::new(typed.into_bytes()))
}

fn name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// Runs `job` with the passphrase the user gave on standard input, or, when the image turns out
/// to be encrypted, typed at a hidden prompt on a terminal.
fn unlocked<T>(
    image: &Path,
    given: Option<&Passphrase>,
    job: impl Fn(Option<&Passphrase>) -> dimg::Result<T>,
) -> dimg::Result<T> {
    match job(given) {
        Err(Error::PassphraseNeeded { .. })
            if given.is_none() && std::io::stdin().is_terminal() =>
        {
            let typed = ask(&format!("Enter password to access \"{}\": ", name(image)))?;
            job(Some(&typed))
        }
        other => other,
    }
}

/// The volume the arguments name: -volume as given, at the snapshot -snapshot names.
fn volume_of(
    image: &Path,
    passphrase: Option<&Passphrase>,
    arg: &args::VolumeArg,
) -> dimg::Result<Option<ops::VolumeId>> {
    match &arg.snapshot {
        None => Ok(arg.volume),
        Some(name) => ops::snapshot_named(image, passphrase, arg.volume, name).map(Some),
    }
}

/// A long job on `image` with a progress bar on the terminal, asking for a passphrase if needed.
fn with_bar<T>(
    image: &Path,
    pass: PassArgs,
    job: impl Fn(Option<&Passphrase>, &progress::Bar) -> dimg::Result<T>,
) -> Result<T, Failure> {
    let given = stdin_passphrase(pass)?;
    let bar = progress::Bar::new();
    let done = unlocked(image, given.as_deref(), |p| job(p, &bar));
    bar.finish();
    Ok(done?)
}

/// The passphrase for a new encrypted image: standard input, or typed twice on a terminal.
fn new_passphrase(image: &Path, given: Option<Arc<Passphrase>>) -> dimg::Result<Arc<Passphrase>> {
    if let Some(p) = given {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused {
            path: image.into(),
            reason: "needs a passphrase for the new image: give it with -stdinpass".into(),
        });
    }
    let prompt = format!("Enter a new password to secure \"{}\": ", name(image));
    let first = ask(&prompt)?;
    let again = ask("Re-enter new password: ")?;
    if !first.candidates().eq(again.candidates()) {
        return Err(Error::Refused {
            path: image.into(),
            reason: "the two passwords differ".into(),
        });
    }
    Ok(Arc::new(first))
}

fn run(cli: Cli, cancel: &Cancel) -> Result<(), Failure> {
    match cli.command {
        Command::Info {
            image: None,
            output,
            ..
        } => {
            Output::from(output).print(&dimg_mount::attached(), output::attached_text);
        }
        Command::Info {
            image: Some(image),
            pass,
            output,
        } => {
            let given = stdin_passphrase(pass)?;
            let info = unlocked(&image, given.as_deref(), |p| ops::info(&image, p))?;
            Output::from(output).print(&info, text::info);
        }
        Command::Verify {
            image,
            fs: true,
            repair,
            pass,
            output,
        } => {
            let report = with_bar(&image, pass, |p, bar| {
                ops::verify_volumes(&image, p, repair, bar, cancel)
            })?;
            Output::from(output).print(&report, text::first_aid);
            let left: usize = report.volumes.iter().map(|v| v.problems.len()).sum();
            if left > 0 {
                return Err(Failure::Checks(format!(
                    "{}: its volumes have problems ({left})",
                    image.display()
                )));
            }
        }
        Command::Checksum {
            image,
            kind,
            pass,
            output,
        } => {
            let report = with_bar(&image, pass, |p, bar| {
                ops::checksum(&image, p, &kind, bar, cancel)
            })?;
            Output::from(output).print(&report, text::checksum);
        }
        Command::Verify {
            image,
            pass,
            output,
            ..
        } => {
            let report = with_bar(&image, pass, |p, bar| ops::verify(&image, p, bar, cancel))?;
            Output::from(output).print(&report, text::verify);
            if !report.ok {
                let failed: Vec<&str> = report
                    .checks
                    .iter()
                    .filter(|c| !c.ok)
                    .map(|c| c.name.as_str())
                    .collect();
                return Err(Failure::Checks(format!(
                    "{}: checksum mismatch: {}",
                    image.display(),
                    failed.join(", ")
                )));
            }
        }
        Command::Compact {
            image,
            shadow,
            pass,
            output,
        } => {
            let shadow = shadow_file(shadow, &image);
            let report = with_bar(&image, pass, |p, bar| match &shadow {
                Some(shadow) => ops::compact_shadow(&image, p, shadow, cancel),
                None => ops::compact(&image, p, bar, cancel),
            })?;
            Output::from(output).print(&report, text::compact);
        }
        Command::Resize {
            image,
            size: Some(size),
            limits: false,
            shadow,
            pass,
            output,
        } => {
            let shadow = shadow_file(shadow, &image);
            let report = with_bar(&image, pass, |p, bar| match &shadow {
                Some(shadow) => ops::resize_shadow(&image, p, shadow, size, cancel),
                None => ops::resize(&image, p, size, bar, cancel),
            })?;
            Output::from(output).print(&report, text::resize);
        }
        Command::Resize {
            image,
            shadow,
            pass,
            output,
            ..
        } => {
            let given = stdin_passphrase(pass)?;
            let shadow = shadow_file(shadow, &image);
            let limits = unlocked(&image, given.as_deref(), |p| match &shadow {
                Some(shadow) => ops::limits_shadow(&image, p, shadow),
                None => ops::limits(&image, p),
            })?;
            Output::from(output).print(&limits, output::limits_text);
        }
        Command::Convert {
            image,
            format,
            output,
            shadow,
            write,
            pass,
            print,
        } => {
            let given = stdin_passphrase(pass)?;
            let format = match format.or_else(|| named_format(&output, true)) {
                Some(f) => f,
                None => {
                    return Err(Failure::Usage(format!(
                        "{}: give -format (its extension names no format)",
                        output.display()
                    )))
                }
            };
            let mut options = write_options(format, write, &output, given.clone())?;
            options.shadow = shadow_file(shadow, &image);
            let bar = progress::Bar::new();
            let report = unlocked(&image, given.as_deref(), |p| {
                ops::convert(&image, p, &output, &options, &bar, cancel)
            });
            bar.finish();
            Output::from(print).print(&report?, text::convert);
        }
        Command::Create {
            output,
            srcdevice: Some(spec),
            skip_unreadable,
            format,
            kind,
            write,
            pass,
            print,
            ..
        } => {
            let given = stdin_passphrase(pass)?;
            let source = match dimg_volume(&spec) {
                Some((image, index)) => Behind::Volume(image, index),
                None => Behind::Device(dimg::device::resolve(&spec)?),
            };
            if let Behind::Device(device) = &source {
                if let Some(point) = dimg::device::describe(device)?.mounted_at().first() {
                    eprintln!(
                        "dimg: {} is mounted at {}: the copy of a file system in use may be inconsistent",
                        device.display(),
                        point.display()
                    );
                }
            }
            let format = format
                .or(kind)
                .or_else(|| named_format(&output, true))
                .unwrap_or(ops::OutputFormat::Udzo);
            let options = write_options(format, write, &output, given)?;
            let bar = progress::Bar::new();
            let report = match source {
                Behind::Volume(image, index) => {
                    ops::image_partition(&image, None, index, &output, &options, &bar, cancel)
                }
                Behind::Device(device) => {
                    ops::image_device(&device, &output, &options, skip_unreadable, &bar, cancel)
                }
            };
            bar.finish();
            Output::from(print).print(&report?, text::convert);
        }
        Command::Create {
            output,
            srcfolder,
            size,
            fs,
            volname,
            layout,
            format,
            kind,
            write,
            distribution,
            pass,
            print,
            apfs_encrypt,
            srcdevice: None,
            skip_unreadable: _,
        } => {
            let given = stdin_passphrase(pass)?;
            // The volume's files' compression, apart from the image's own.
            let mut write = write;
            let apfs_compression = write.imagekey.iter().find_map(|k| match k {
                args::ImageKey::ApfsCompress(how) => Some(*how),
                _ => None,
            });
            write
                .imagekey
                .retain(|k| !matches!(k, args::ImageKey::ApfsCompress(_)));
            let apfs_encryption = match apfs_encrypt {
                true => Some(new_passphrase(&output, given.clone())?),
                false => None,
            };
            let from_folder = srcfolder.is_some();
            let format = format
                .or(kind)
                .or_else(|| named_format(&output, from_folder))
                .unwrap_or(ops::OutputFormat::default_for(from_folder));
            let options = ops::CreateOptions {
                file_system: fs.unwrap_or(ops::FileSystem::HfsPlus),
                volume_name: volname.unwrap_or_else(|| volume_name(srcfolder.as_deref())),
                size,
                layout,
                output: write_options(format, write, &output, given)?,
                distribution: distribution
                    .distribution(std::env::var("SOURCE_DATE_EPOCH").ok())
                    .map_err(Failure::Usage)?,
                apfs_encryption,
                apfs_compression,
            };
            let bar = progress::Bar::new();
            let report = ops::create(srcfolder.as_deref(), &output, &options, &bar, cancel);
            bar.finish();
            Output::from(print).print(&report?.written, text::convert);
        }
        Command::Burn {
            image,
            device,
            speed,
            testburn,
            noverify,
            eject,
            dry_run,
            pass,
            output,
        } => {
            let given = stdin_passphrase(pass)?;
            let options = ops::BurnOptions {
                device,
                speed,
                simulate: testburn,
                verify: !noverify,
                eject,
            };
            let bar = progress::Bar::new();
            let report = unlocked(&image, given.as_deref(), |p| {
                ops::burn(&image, p, &options, dry_run, &bar, cancel)
            });
            bar.finish();
            Output::from(output).print(&report?, text::burn);
        }
        Command::List { output } => {
            Output::from(output).print(&dimg::device::list()?, output::devices_text);
        }
        Command::Restore {
            image,
            target,
            noverify,
            force,
            pass,
            output,
        } => {
            let given = stdin_passphrase(pass)?;
            if !force {
                confirm_overwrite(&target)?;
            }
            let bar = progress::Bar::new();
            let report = unlocked(&image, given.as_deref(), |p| {
                ops::restore(&image, p, &target, !noverify, &bar, cancel)
            });
            bar.finish();
            Output::from(output).print(&report?, text::restore);
        }
        Command::Erase {
            device,
            fs,
            name,
            scheme,
            change,
        } => {
            if !change.force {
                confirm(&device, ("erase it", "erase it"), "not erased")?;
            }
            let options = ops::EraseOptions {
                format: fs,
                name,
                scheme,
            };
            let bar = progress::Bar::new();
            let report = ops::erase(&device, &options, &bar, cancel);
            bar.finish();
            Output::from(change.output).print(&report?, text::erase);
        }
        Command::Partition { device, action } => {
            let bar = progress::Bar::new();
            let (report, change) = match action {
                PartitionAction::Add {
                    size,
                    fs,
                    name,
                    change,
                } => (
                    ops::add_partition(&device, size, fs, &name, &bar, cancel),
                    change,
                ),
                PartitionAction::Delete { change } => {
                    if !change.force {
                        confirm(&device, ("delete it", "delete it"), "not deleted")?;
                    }
                    (ops::delete_partition(&device), change)
                }
                PartitionAction::Resize { size, change } => {
                    (ops::resize_partition(&device, size), change)
                }
            };
            bar.finish();
            Output::from(change.output).print(&report?, text::partition);
        }
        Command::Mount { device, output } => {
            let mounted = dimg::device::mount(&device)?;
            Output::from(output).print(&mounted, output::mounted_text);
        }
        Command::Unmount {
            target,
            force,
            output,
        } => {
            let unmounted = dimg::device::unmount(&target, force)?;
            Output::from(output).print(&unmounted, output::unmounted_text);
        }
        Command::Makehybrid {
            source,
            output,
            iso: _,
            joliet: _,
            hfs,
            udf,
            udf_version,
            volname,
            ov,
            print,
        } => {
            let mut write = ops::ConvertOptions::new(ops::OutputFormat::Udto);
            write.overwrite = ov;
            let options = ops::CreateOptions {
                file_system: match (hfs, udf) {
                    (true, _) => ops::FileSystem::Hybrid,
                    (_, true) if udf_version.as_deref() == Some("2.01") => ops::FileSystem::Udf201,
                    (_, true) => ops::FileSystem::Udf,
                    _ => ops::FileSystem::Iso,
                },
                volume_name: volname.unwrap_or_else(|| volume_name(Some(&source))),
                size: None,
                layout: None,
                output: write,
                distribution: ops::Distribution::default(),
                apfs_encryption: None,
                apfs_compression: None,
            };
            let bar = progress::Bar::new();
            let report = ops::create(Some(&source), &output, &options, &bar, cancel);
            bar.finish();
            Output::from(print).print(&report?.written, text::convert);
        }
        Command::Chpass {
            image,
            oldstdinpass,
            newstdinpass,
        } => {
            let (old, new) =
                match (oldstdinpass, newstdinpass) {
                    (true, true) => {
                        // hdiutil's convention: old and new on standard input, split by a NUL.
                        let bytes = read_stdin()?;
                        let mut parts = bytes.splitn(2, |&b| b == 0);
                        let old = Passphrase::from_stdin(parts.next().unwrap_or_default().to_vec());
                        let new = Passphrase::from_stdin(parts.next().unwrap_or_default().to_vec());
                        (old, Arc::new(new))
                    }
                    (false, false) => {
                        let old = ask(&format!("Enter password to access \"{}\": ", name(&image)))?;
                        (old, new_passphrase(&image, None)?)
                    }
                    _ => return Err(Failure::Engine(Error::Refused {
                        path: image,
                        reason:
                            "give both -oldstdinpass and -newstdinpass, or neither (to be asked)"
                                .into(),
                    })),
                };
            ops::chpass(&image, &old, &new)?;
            eprintln!("dimg: passphrase of {} changed", image.display());
        }
        Command::Ls {
            target,
            snapshots: true,
            volume,
            pass,
            output,
            ..
        } => {
            let (image, _) = args::image_and_path(&target);
            let given = stdin_passphrase(pass)?;
            let list = unlocked(&image, given.as_deref(), |p| {
                ops::snapshots(&image, p, volume_of(&image, p, &volume)?)
            })?;
            Output::from(output).print(&list, output::snapshots_text);
        }
        Command::Ls {
            target,
            long,
            recursive,
            volume,
            pass,
            output,
            ..
        } => {
            let (image, path) = args::image_and_path(&target);
            let given = stdin_passphrase(pass)?;
            let listing = unlocked(&image, given.as_deref(), |p| {
                let which = volume_of(&image, p, &volume)?;
                if recursive {
                    ops::list_tree(&image, p, which, &path)
                } else {
                    ops::list(&image, p, which, &path)
                }
            })?;
            let text = if long {
                output::listing_long
            } else {
                output::listing_short
            };
            Output::from(output).print(&listing, text);
            for w in &listing.warnings {
                eprintln!("dimg: {}: warning: {w}", image.display());
            }
        }
        Command::Extract {
            target,
            output,
            strict,
            boot,
            volume,
            pass,
            print,
        } => {
            let (image, path) = args::image_and_path(&target);
            let report = with_bar(&image, pass, |p, bar| match boot {
                true => ops::extract_boot(
                    &image,
                    p,
                    volume_of(&image, p, &volume)?,
                    &output,
                    bar,
                    cancel,
                ),
                false => ops::extract(
                    &image,
                    p,
                    volume_of(&image, p, &volume)?,
                    &path,
                    &output,
                    strict,
                    bar,
                    cancel,
                ),
            })?;
            Output::from(print).print(&report, text::extract);
            if !report.unreadable.is_empty() {
                for what in &report.unreadable {
                    eprintln!("dimg: {}: cannot read {what}", image.display());
                }
                return Err(Failure::Checks(format!(
                    "{}: {} could not be read; everything else is in {}",
                    image.display(),
                    match report.unreadable.len() {
                        1 => "1 item".to_string(),
                        n => format!("{n} items"),
                    },
                    output.display()
                )));
            }
        }
        Command::Attach {
            image,
            mountpoint,
            volume,
            nomount,
            readonly,
            readwrite,
            shadow,
            foreground,
            served,
            agree,
            pass,
            output,
        } => {
            if served.is_none() {
                accept_agreement(&image, agree)?;
            }
            // A snapshot is found by name before the server starts; on an encrypted image, give
            // it as -volume N@TRANSACTION (the server asks for the passphrase).
            let which = volume_of(&image, None, &volume)?;
            let request = dimg_mount::Request {
                mount_point: mountpoint,
                volume: which,
                nomount,
                access: match (readonly, readwrite) {
                    (true, _) => dimg_mount::Access::ReadOnly,
                    (_, true) => dimg_mount::Access::ReadWrite,
                    _ => dimg_mount::Access::AsTheImageAllows,
                },
                shadow: shadow_file(shadow, &image),
                image,
            };
            match (foreground, served) {
                (_, Some(log)) => {
                    let given = stdin_passphrase(pass)?;
                    let server = dimg_mount::serve(&request, given.as_deref(), &log)?;
                    dimg_mount::hand_over(server.attachment())
                        .map_err(|e| Error::io(Path::new("standard output"), e))?;
                    server.wait(cancel);
                }
                (true, None) => {
                    let given = stdin_passphrase(pass)?;
                    let log = Path::new("standard error");
                    let server = unlocked(&request.image, given.as_deref(), |p| {
                        dimg_mount::serve(&request, p, log)
                    })?;
                    Output::from(output).print(server.attachment(), output::attachment_text);
                    server.wait(cancel);
                }
                (false, None) => {
                    let attachment = attach_in_background(&request, pass)?;
                    Output::from(output).print(&attachment, output::attachment_text);
                }
            }
        }
        Command::Detach {
            target,
            force,
            output,
        } => {
            let report = dimg_mount::detach(&target, force).map_err(Failure::Checks)?;
            Output::from(output).print(&report, output::detached_text);
        }
        Command::Isencrypted { image, output } => {
            let kind = ops::is_encrypted(&image)?;
            let report = output::Encrypted {
                path: image,
                encrypted: kind.is_some(),
                encryption: kind,
            };
            Output::from(output).print(&report, output::encrypted_text);
        }
        Command::Generate { what, dir } => docs::generate(what, dir.as_deref())
            .map_err(|e| Error::io(dir.as_deref().unwrap_or(Path::new("-")), e))?,
    }
    Ok(())
}

/// The shadow file `-shadow` names; `IMAGE.shadow` when it names none (hdiutil's default).
fn shadow_file(given: Option<Option<PathBuf>>, image: &Path) -> Option<PathBuf> {
    given.map(|path| path.unwrap_or_else(|| dimg::container::shadow::default_path(image)))
}

/// Starts a mount server for `request` in the background (this program, `attach -foreground`),
/// handing it the passphrase through a pipe: from standard input, or asked for here when the
/// image turns out to be encrypted.
fn attach_in_background(
    request: &dimg_mount::Request,
    pass: PassArgs,
) -> Result<dimg_mount::Attachment, Failure> {
    let image = &request.image;
    let passphrase = match pass.stdinpass {
        true => Some(read_stdin()?),
        false if ops::is_encrypted(image)?.is_some() && std::io::stdin().is_terminal() => {
            let typed = rpassword::prompt_password(format!(
                "Enter password to access \"{}\": ",
                name(image)
            ))
            .map_err(|e| Error::io(Path::new("terminal"), e))?;
            Some(Zeroizing::new(typed.into_bytes()))
        }
        false => None,
    };
    let exe = std::env::current_exe().map_err(|e| Error::io(Path::new("dimg"), e))?;
    dimg_mount::spawn_attach(&exe, request, passphrase.as_deref().map(|p| p.as_slice())).map_err(
        |reason| {
            // The server's own errors name the image already (by its full path).
            let full = std::fs::canonicalize(image).unwrap_or_else(|_| image.clone());
            match reason.starts_with(&format!("{}: ", full.display())) {
                true => Failure::Checks(reason),
                false => Failure::Checks(format!("{}: {reason}", image.display())),
            }
        },
    )
}

/// Asks at the terminal before a device is overwritten.
fn confirm_overwrite(target: &Path) -> Result<(), Failure> {
    confirm(target, ("overwrite it", "restore onto it"), "not restored")
}

/// Asks at the terminal before what is on a device is destroyed, naming it, its model, its
/// size and the volumes that will be lost; a non-terminal standard input cannot answer, so
/// there `-force` is needed. `doing` is what `-force` does without asking, and what typing yes
/// does.
fn confirm(target: &Path, doing: (&str, &str), not_done: &str) -> Result<(), Failure> {
    let (forced, asked) = doing;
    let about = dimg::device::describe(target)?;
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(format!(
            "{}: give -force to {forced} without asking (standard input is not a terminal)",
            target.display()
        )));
    }
    let volumes: Vec<String> = about
        .all()
        .into_iter()
        .filter_map(|d| {
            let fs = d.file_system.as_ref()?;
            Some(match &d.label {
                Some(label) => format!("“{label}” ({fs}) on {}", d.path.display()),
                None => format!("an unnamed {fs} volume on {}", d.path.display()),
            })
        })
        .collect();
    let volumes = match volumes.is_empty() {
        true => String::new(),
        false => format!("; its volumes: {}", volumes.join(", ")),
    };
    eprint!(
        "Everything on {} ({}, {} bytes{volumes}) will be lost. Type yes to {asked}: ",
        target.display(),
        about.model.as_deref().unwrap_or("no model name"),
        about.size
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::io(Path::new("standard input"), e))?;
    match answer.trim() {
        "yes" => Ok(()),
        _ => Err(Failure::Usage(format!("{}: {not_done}", target.display()))),
    }
}

/// The format an output's extension names, when no -format is given.
fn named_format(output: &Path, from_folder: bool) -> Option<ops::OutputFormat> {
    ops::OutputFormat::for_name(output, from_folder).map(|formats| formats[0])
}

/// Convert's and create's output settings from the command line.
fn write_options(
    format: ops::OutputFormat,
    write: args::WriteArgs,
    output: &Path,
    given: Option<Arc<Passphrase>>,
) -> Result<ops::ConvertOptions, Failure> {
    let mut options = ops::ConvertOptions::new(format);
    options.overwrite = write.ov;
    if let Some(bits) = write.encryption {
        let new = new_passphrase(output, given)?;
        let mut e = ops::Encryption::new(bits, new);
        e.iterations = write.pbkdf2_iterations.unwrap_or(e.iterations);
        options.encryption = Some(e);
    }
    for key in write.imagekey {
        match key {
            args::ImageKey::ZlibLevel(n) => options.zlib_level = Some(n),
            args::ImageKey::SparseBandSize(n) => options.sparse_band_sectors = Some(n),
            args::ImageKey::ApfsCompress(_) => {
                return Err(Failure::Usage(
                    "apfs-compress compresses the files of a new APFS volume: create -srcfolder \
                     … -fs APFS"
                        .into(),
                ))
            }
            args::ImageKey::AsifChunkSize(n) => options.asif_chunk = Some(n),
        }
    }
    Ok(options)
}

/// A new volume's default name: its folder's, as hdiutil names it, or "untitled".
fn volume_name(folder: Option<&Path>) -> String {
    folder
        .and_then(|f| f.canonicalize().ok())
        .and_then(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "untitled".into())
}

/// An image with a licence agreement is attached once it is agreed to, as macOS asks: with
/// -agree, or by answering y on a terminal after reading it; a script that says neither is
/// refused.
fn accept_agreement(image: &Path, agree: bool) -> Result<(), Failure> {
    let Some(agreement) = ops::agreement_of(image)? else {
        return Ok(());
    };
    if agree {
        return Ok(());
    }
    let refuse = |reason: &str| dimg::Error::Refused {
        path: image.into(),
        reason: reason.into(),
    };
    if !std::io::stdin().is_terminal() {
        return Err(refuse(
            "has a licence agreement: read it with dimg info, and attach with -agree to accept it",
        )
        .into());
    }
    let first = &agreement.languages[0];
    println!("{}\n", first.text);
    eprint!(
        "Agree to the licence agreement above ({})? [y/N] ",
        first.language
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| dimg::Error::io(image, e))?;
    match answer.trim().eq_ignore_ascii_case("y") || answer.trim().eq_ignore_ascii_case("yes") {
        true => Ok(()),
        false => Err(refuse("its licence agreement was not accepted").into()),
    }
}
