//! Writing disc images: a cue sheet and the BIN it names, or a Nero image. Either holds the
//! source's tracks — a disc's own, or one data track for a disk of 2048-byte sectors — streamed
//! through one atomic output; both describe track positions the same way (frame 0 = LBA 0 =
//! INDEX 01 of a first track without pregap).

use super::job::{stream, Cancel, Progress};
use super::output::AtomicOutput;
use crate::container::optical::{SectorPart, Track, TrackMode};
use crate::container::sector::{bcd, Gap, RawSectors, COOKED, LEAD_PREGAP};
use crate::container::Container;
use crate::error::{Error, Result};
use crate::io::{Concat, ReadAt};
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

/// "mm:ss:ff" of a frame count (75 a second).
fn msf(frames: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        frames / 4500,
        frames / 75 % 60,
        frames % 75
    )
}

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
    let mut frame = 0;
    let mut tracks = tracks_of(container, output)?;
    for t in &mut tracks {
        let count = t.count();
        if let Some(raw) = RawSectors::new(t.sectors.clone(), t.mode, LEAD_PREGAP + frame) {
            t.mode = raw.mode();
            t.sectors = Arc::new(raw);
        }
        frame += count;
    }
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

/// Nero's code for a track mode (formats.md §d); subchannel modes are not written.
fn nero_mode(mode: TrackMode) -> Option<u8> {
    Some(match mode {
        TrackMode::Mode1_2048 => 0x00,
        TrackMode::Mode2_2336 => 0x03,
        TrackMode::Mode1_2352 => 0x05,
        TrackMode::Mode2_2352 => 0x06,
        TrackMode::Audio => 0x07,
        TrackMode::Cdg => return None,
    })
}

fn chunk(list: &mut Vec<u8>, id: &[u8; 4], body: &[u8]) {
    list.extend_from_slice(id);
    list.extend_from_slice(&(body.len() as u32).to_be_bytes());
    list.extend_from_slice(body);
}

/// Writes a Nero v2 image as Nero does for a disc-at-once burn: the lead pregap and every track's
/// sectors (Mode 2 as 2336 bytes without sync and header, Nero's form and the one libcdio
/// reads), then the cue points (CUEX), the track table (DAOX), SINF, MTYP, END! and the
/// NER5 footer. Data tracks of 2048-byte sectors stay so (Nero's mode 0x00). Returns its size.
pub(super) fn write_nrg(
    source: &Path,
    container: &dyn Container,
    output: &Path,
    overwrite: bool,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<u64> {
    let mut tracks = tracks_of(container, output)?;
    for t in &mut tracks {
        if t.mode == TrackMode::Mode2_2352 {
            t.mode = TrackMode::Mode2_2336;
            t.sectors = Arc::new(SectorPart::mode2_body(t.sectors.clone()));
        }
    }
    if let Some(t) = tracks.iter().find(|t| nero_mode(t.mode).is_none()) {
        return Err(refuse(
            output,
            &format!(
                "track {:02} is {}, which NRG images are not written with",
                t.number,
                t.mode.name()
            ),
        ));
    }
    // The two seconds before LBA 0, which Nero stores ahead of the first track.
    let lead: Arc<dyn ReadAt> = Arc::new(Gap::new(tracks[0].mode, 0, LEAD_PREGAP));
    let mut parts = vec![lead.clone()];
    parts.extend(tracks.iter().map(|t| t.sectors.clone()));
    let data = Concat::new(parts);
    let mut out = AtomicOutput::create(source, output, overwrite)?;
    stream(source, "Converting", &data, progress, cancel, |_, block| {
        out.write_sparse(block)
    })?;

    let adr_ctl = |t: &Track| {
        if t.mode == TrackMode::Audio {
            0x01
        } else {
            0x41
        }
    };
    let point = |cues: &mut Vec<u8>, ctl: u8, track: u8, index: u8, lba: i64| {
        cues.extend_from_slice(&[ctl, track, index, 0]);
        cues.extend_from_slice(&(lba as i32).to_be_bytes());
    };
    let mut cues = Vec::new();
    let mut dao = vec![0u8; 22];
    dao[18] = if tracks
        .iter()
        .any(|t| matches!(t.mode, TrackMode::Mode2_2336 | TrackMode::Mode2_2352))
    {
        0x20
    } else {
        0x00
    };
    dao[19] = 1;
    dao[20] = tracks[0].number;
    dao[21] = tracks[tracks.len() - 1].number;
    point(&mut cues, adr_ctl(&tracks[0]), 0, 0, -(LEAD_PREGAP as i64));
    let (mut lba, mut offset) = (0i64, 0u64);
    for (i, t) in tracks.iter().enumerate() {
        let size = t.mode.sector_size();
        let (mut pregap_at, mut pregap) = (offset + lead.size(), t.pregap as i64);
        if i == 0 {
            // The lead pregap belongs to track 1's INDEX 00.
            pregap_at = 0;
            pregap += LEAD_PREGAP as i64;
        }
        let start = lba + t.pregap as i64;
        if pregap > 0 {
            point(
                &mut cues,
                adr_ctl(t),
                bcd(u64::from(t.number)),
                0,
                start - pregap,
            );
        }
        point(&mut cues, adr_ctl(t), bcd(u64::from(t.number)), 1, start);
        let end = offset + lead.size() + t.sectors.size();
        let mut entry = vec![0u8; 12];
        entry.extend_from_slice(&(size as u16).to_be_bytes());
        entry.extend_from_slice(&[nero_mode(t.mode).expect("checked above"), 0, 0, 1]);
        for at in [
            pregap_at,
            end - t.count().saturating_sub(t.pregap) * size,
            end,
        ] {
            entry.extend_from_slice(&at.to_be_bytes());
        }
        dao.extend_from_slice(&entry);
        lba += t.count() as i64;
        offset += t.sectors.size();
    }
    point(&mut cues, adr_ctl(&tracks[tracks.len() - 1]), 0xAA, 1, lba);
    let dao_len = dao.len() as u32;
    dao[..4].copy_from_slice(&dao_len.to_be_bytes());

    let list_at = data.size();
    let mut list = Vec::new();
    chunk(&mut list, b"CUEX", &cues);
    chunk(&mut list, b"DAOX", &dao);
    chunk(&mut list, b"SINF", &(tracks.len() as u32).to_be_bytes());
    chunk(&mut list, b"MTYP", &1u32.to_be_bytes());
    chunk(&mut list, b"END!", &[]);
    list.extend_from_slice(b"NER5");
    list.extend_from_slice(&list_at.to_be_bytes());
    out.write_all(&list)?;
    cancel.check()?;
    out.finish()
}
