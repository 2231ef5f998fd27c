//! Writing disc images: a cue sheet and the BIN it names.

use super::output::AtomicOutput;
use super::{stream, Cancel, Progress};
use crate::container::optical::{Track, TrackMode};
use crate::container::Opened;
use crate::error::{Error, Result};
use crate::io::Concat;
use std::fmt::Write;
use std::path::Path;

/// "mm:ss:ff" of a frame count (75 a second).
fn msf(frames: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        frames / 4500,
        frames / 75 % 60,
        frames % 75
    )
}

/// Writes the cue sheet `output` and, beside it with the same name and ".bin", every track's
/// stored sectors. A source that is not a disc becomes one MODE1/2048 data track. Returns the
/// BIN's size. Both files appear only when both are complete.
pub(super) fn write_cue(
    source: &Path,
    opened: &Opened,
    output: &Path,
    overwrite: bool,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<u64> {
    let refuse = |reason: &str| Error::Refused {
        path: output.into(),
        reason: reason.into(),
    };
    if !output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("cue"))
    {
        return Err(refuse(
            "a cue sheet's name must end in .cue (its BIN goes beside it)",
        ));
    }
    let tracks = match opened.container.tracks() {
        Some(tracks) => tracks,
        None => {
            let disk = opened.container.disk();
            if !disk.size().is_multiple_of(2048) {
                return Err(refuse(
                    "the source is not made of 2048-byte sectors, so it is no CD data track",
                ));
            }
            vec![Track {
                number: 1,
                mode: TrackMode::Mode1_2048,
                sectors: disk,
                pregap: 0,
            }]
        }
    };
    let bin_path = output.with_extension("bin");
    let bin_name = bin_path
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let mut bin = AtomicOutput::create(source, &bin_path, overwrite)?;
    let all = Concat::new(tracks.iter().map(|t| t.sectors.clone()).collect());
    stream(source, "Converting", &all, progress, cancel, |_, block| {
        bin.write_all(block)
    })?;

    let mut sheet = format!("FILE \"{bin_name}\" BINARY\n");
    let mut frame = 0;
    for t in &tracks {
        let _ = writeln!(sheet, "  TRACK {:02} {}", t.number, t.mode.name());
        if t.pregap > 0 {
            let _ = writeln!(sheet, "    INDEX 00 {}", msf(frame));
        }
        let _ = writeln!(sheet, "    INDEX 01 {}", msf(frame + t.pregap));
        frame += t.count();
    }
    let mut cue = AtomicOutput::create(source, output, overwrite)?;
    cue.write_all(sheet.as_bytes())?;
    cancel.check()?;
    let size = bin.finish()?;
    cue.finish()?;
    Ok(size)
}
