//! Burn: an image onto a CD, DVD or BD through an existing burning engine, never a SCSI layer of
//! dimg's own. A data disc (an ISO, a TOAST, a data-only CUE or NRG, any other disk) goes to
//! libburn through `xorriso -as cdrecord`; a disc with audio or several tracks goes to `cdrdao`
//! as a cue sheet with raw tracks. The image is first written in the form the burner reads (by
//! the same writers as `convert`), into a temporary folder that goes when the job ends.

use super::convert::{ConvertOptions, OutputFormat};
use super::job::{Cancel, Progress};
use super::read_back::sha256_head;
use crate::container::optical::TrackMode;
use crate::{container, Error, Passphrase, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to burn (also what the app's Burn sheet sends).
#[derive(Clone, Debug, Deserialize)]
pub struct BurnOptions {
    /// The drive: `/dev/sr0`, or libburn's `stdio:FILE` pseudo-drive.
    pub device: String,
    /// Write speed, as a multiple of the medium's base speed.
    pub speed: Option<u32>,
    /// The drive's simulation mode: everything but the laser.
    pub simulate: bool,
    /// Read the data track back from the disc and compare it.
    pub verify: bool,
    pub eject: bool,
}

/// Which engine burns an image, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Burner {
    /// libburn, for one data track.
    Xorriso,
    /// cdrdao, for audio, mixed-mode and several tracks, written raw.
    Cdrdao,
}

#[derive(Debug, Serialize)]
pub struct BurnReport {
    pub image: PathBuf,
    pub device: String,
    pub burner: Burner,
    /// The burner's command line as it was run (or would be, for a dry run).
    pub command: Vec<String>,
    pub simulated: bool,
    /// Only the plan was made (`dry_run`): nothing was prepared or burnt.
    pub dry_run: bool,
    /// Bytes of the data track read back and found equal, when verified.
    pub verified: Option<u64>,
    /// SHA-256 of what was burnt (the data track), when it was read back.
    pub sha256: Option<String>,
}

/// The engine for a disc whose tracks are `modes` (none: a disk that is not a CD image).
pub fn burner_for(modes: &[TrackMode]) -> Burner {
    match modes {
        [] | [TrackMode::Mode1_2048 | TrackMode::Mode1_2352] => Burner::Xorriso,
        _ => Burner::Cdrdao,
    }
}

/// The command that burns `prepared` (the ISO or disk for xorriso, the cue sheet for cdrdao).
pub fn command(burner: Burner, prepared: &Path, options: &BurnOptions) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    match burner {
        Burner::Xorriso => {
            args.extend(["xorriso", "-as", "cdrecord", "-v"].map(String::from));
            args.push(format!("dev={}", options.device));
            args.extend(options.speed.map(|s| format!("speed={s}")));
            args.extend(options.simulate.then(|| "-dummy".to_string()));
            args.extend(options.eject.then(|| "-eject".to_string()));
            args.push("-data".into());
        }
        Burner::Cdrdao => {
            args.extend(["cdrdao", "write", "--device"].map(String::from));
            args.push(options.device.clone());
            if let Some(s) = options.speed {
                args.extend(["--speed".to_string(), s.to_string()]);
            }
            args.extend(options.simulate.then(|| "--simulate".to_string()));
            args.extend(options.eject.then(|| "--eject".to_string()));
        }
    }
    args.push(prepared.display().to_string());
    args
}

/// Burns `image` as `options` say; with `dry_run`, only says how (the command, with the
/// prepared file's name as it would be). Cancel ends the burner and the job.
pub fn burn(
    image: &Path,
    passphrase: Option<&Passphrase>,
    options: &BurnOptions,
    dry_run: bool,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<BurnReport> {
    let opened = container::open(image, passphrase)?;
    let modes: Vec<TrackMode> = opened
        .container
        .tracks()
        .unwrap_or_default()
        .iter()
        .map(|t| t.mode)
        .collect();
    let burner = burner_for(&modes);
    let (format, name) = match (burner, modes.is_empty()) {
        (Burner::Cdrdao, _) => (OutputFormat::Cue, "disc.cue"),
        (Burner::Xorriso, true) => (OutputFormat::Udto, "disk.cdr"),
        (Burner::Xorriso, false) => (OutputFormat::Iso, "disc.iso"),
    };
    let folder = tempfile::Builder::new()
        .prefix("dimg-burn-")
        .tempdir()
        .map_err(|e| Error::io(&std::env::temp_dir(), e))?;
    let prepared = folder.path().join(name);
    let mut report = BurnReport {
        image: image.to_path_buf(),
        device: options.device.clone(),
        burner,
        command: command(burner, &prepared, options),
        simulated: options.simulate,
        dry_run,
        verified: None,
        sha256: None,
    };
    if dry_run {
        return Ok(report);
    }
    super::convert::write(
        image,
        &*opened.container,
        &prepared,
        &ConvertOptions::new(format),
        progress,
        cancel,
    )?;
    progress.begin("Burning", 0);
    run(&report.command, folder.path(), cancel)?;
    // Only a data track that reached the disc is read back (and only then is it hashed).
    if burner == Burner::Xorriso && options.verify && !options.simulate {
        let size = std::fs::metadata(&prepared)
            .map_err(|e| Error::io(&prepared, e))?
            .len();
        let burnt = sha256_head(&prepared, None, "Hashing the image", progress, cancel)?;
        let disc = PathBuf::from(
            options
                .device
                .strip_prefix("stdio:")
                .unwrap_or(&options.device),
        );
        let read = sha256_head(&disc, Some(size), "Verifying the disc", progress, cancel)?;
        if read != burnt {
            return Err(Error::Refused {
                path: disc,
                reason: format!(
                    "read back, the disc differs from the image (SHA-256 {read}, the image's {burnt})"
                ),
            });
        }
        report.sha256 = Some(burnt);
        report.verified = Some(size);
    }
    Ok(report)
}

/// Runs the burner in `folder` (cdrdao finds a cue sheet's BIN from its working folder),
/// ending it on a cancel; its own words are the error when it fails.
fn run(command: &[String], folder: &Path, cancel: &Cancel) -> Result<()> {
    let program = Path::new(&command[0]);
    let mut child = Command::new(program)
        .args(&command[1..])
        .current_dir(folder)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(program, e))?;
    // Its messages, read aside so that a chatty burner never blocks on a full pipe.
    let mut stderr = child.stderr.take().expect("piped stderr");
    let said = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::io(program, e))? {
            break status;
        }
        if cancel.is_cancelled() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Cancelled);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let said = said.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let last = said
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message");
    Err(Error::Refused {
        path: program.to_path_buf(),
        reason: format!("the burn failed ({status}): {}", last.trim()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> BurnOptions {
        BurnOptions {
            device: "/dev/sr0".into(),
            speed: Some(8),
            simulate: true,
            verify: true,
            eject: true,
        }
    }

    #[test]
    fn data_discs_go_to_libburn_and_the_rest_to_cdrdao() {
        assert_eq!(burner_for(&[]), Burner::Xorriso);
        assert_eq!(burner_for(&[TrackMode::Mode1_2352]), Burner::Xorriso);
        assert_eq!(burner_for(&[TrackMode::Audio]), Burner::Cdrdao);
        assert_eq!(
            burner_for(&[TrackMode::Mode1_2352, TrackMode::Audio]),
            Burner::Cdrdao
        );
        assert_eq!(burner_for(&[TrackMode::Mode2_2352]), Burner::Cdrdao);
    }

    #[test]
    fn command_lines_name_the_drive_speed_simulation_and_eject() {
        let iso = Path::new("/tmp/x/disc.iso");
        assert_eq!(
            command(Burner::Xorriso, iso, &options()).join(" "),
            "xorriso -as cdrecord -v dev=/dev/sr0 speed=8 -dummy -eject -data /tmp/x/disc.iso"
        );
        let cue = Path::new("/tmp/x/disc.cue");
        assert_eq!(
            command(Burner::Cdrdao, cue, &options()).join(" "),
            "cdrdao write --device /dev/sr0 --speed 8 --simulate --eject /tmp/x/disc.cue"
        );
        let plain = BurnOptions {
            speed: None,
            simulate: false,
            eject: false,
            ..options()
        };
        assert_eq!(
            command(Burner::Xorriso, iso, &plain).join(" "),
            "xorriso -as cdrecord -v dev=/dev/sr0 -data /tmp/x/disc.iso"
        );
    }
}
