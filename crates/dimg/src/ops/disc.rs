//! Writing disc images: a cue sheet and the BIN it names, or a Nero image. Either holds the
//! source's tracks — a disc's own, or one data track for a disk of 2048-byte sectors — streamed
//! through one atomic output; both describe track positions the same way (frame 0 = LBA 0 =
//! INDEX 01 of a first track without pregap).

use super::job::{stream, Cancel, Progress};
use super::output::AtomicOutput;
use crate::container::optical::{Track, TrackMode};
use crate::container::sector::COOKED;
use crate::container::{cue, nrg, Container};
use crate::error::{Error, Result};
use crate::io::{Concat, ReadAt};
use std::path::Path;

fn refuse(output: &Path, reason: &str) -> Error {
    Error::Refused {
        path: output.into(),
        reason: reason.into(),
    }
}

/// The tracks the source has, or one MODE1/2048 track of its disk.
fn tracks_of(container: &dyn Container, output: &Path) -> Result<Vec<Track>> {
    if let Some(tracks) = container.tracks() {
        return Ok(tracks);
    }
    let disk = container.disk();
    if !disk.size().is_multiple_of(COOKED as u64) {
        return Err(refuse(
            output,
            "the source is not made of 2048-byte sectors, so it is no CD data track",
        ));
    }
    Ok(vec![Track {
        number: 1,
        mode: TrackMode::Mode1_2048,
        sectors: disk,
        pregap: 0,
    }])
}

/// Writes a disc image of the opened source to `output`; returns the size written.
pub(super) type Writer =
    fn(&Path, &dyn Container, &Path, bool, &dyn Progress, &Cancel) -> Result<u64>;

/// Writes the cue sheet `output` and, beside it with the same name and ".bin", every track's
/// sectors. Data held without sync and header (2048-byte Mode 1, 2336-byte Mode 2) is written as
/// the raw 2352-byte sectors of a CD, which is what a BIN is for and what libcdio and bchunk
/// read; raw tracks are copied as stored.
/// Returns the BIN's size. Both files appear only when both are complete.
pub(super) fn write_cue(
    source: &Path,
    container: &dyn Container,
    output: &Path,
    overwrite: bool,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<u64> {
    if !output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("cue"))
    {
        return Err(refuse(
            output,
            "a cue sheet's name must end in .cue (its BIN goes beside it)",
        ));
    }
    let tracks = cue::bin_tracks(tracks_of(container, output)?);
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
    let sheet = cue::sheet(&bin_name, &tracks);
    let mut cue = AtomicOutput::create(source, output, overwrite)?;
    cue.write_all(sheet.as_bytes())?;
    cancel.check()?;
    let size = bin.finish()?;
    cue.finish()?;
    Ok(size)
}

/// Writes a Nero v2 image as Nero does for a disc-at-once burn: the lead pregap and every track's
/// sectors, then its chunk list ([`nrg::chunk_list`]). Data tracks of 2048-byte sectors stay so
/// (Nero's mode 0x00). Returns its size.
pub(super) fn write_nrg(
    source: &Path,
    container: &dyn Container,
    output: &Path,
    overwrite: bool,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<u64> {
    let tracks = nrg::nero_tracks(tracks_of(container, output)?)
        .map_err(|reason| refuse(output, &reason))?;
    let data = nrg::sectors(&tracks);
    let mut out = AtomicOutput::create(source, output, overwrite)?;
    stream(source, "Converting", &data, progress, cancel, |_, block| {
        out.write_sparse(block)
    })?;
    out.write_all(&nrg::chunk_list(&tracks, data.size()))?;
    cancel.check()?;
    out.finish()
}
