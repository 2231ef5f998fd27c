//! CUE sheets (CDRWIN) and the BIN files they name (formats.md §e.1): every track of every FILE
//! as sectors of its mode, read from the BIN files in place. Errors name the sheet's line.

use super::optical::{Disc, Track, TrackMode};
use super::sector::{Gap, RawSectors, LEAD_PREGAP};
use super::{Container, Fact, Probe};
use crate::bytes::{le16, le32};
use crate::error::FormatError;
use crate::io::{Concat, FileSource, ReadAt, Slice};
use crate::magic::Signature;
use std::fmt::Write;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub static DRIVER: super::Driver = super::Driver {
    name: "CUE sheet and BIN files",
    probe,
    open,
};

fn probe(p: &Probe) -> u8 {
    p.certain_if(Signature::CueSheet)
}

const STRUCTURE: &str = "CUE sheet";

#[derive(Debug)]
struct CueTrack {
    number: u8,
    mode: TrackMode,
    line: usize,
    /// INDEX 00 and INDEX 01, in frames from the start of the FILE.
    index0: Option<u64>,
    index1: Option<u64>,
    /// PREGAP and POSTGAP: frames of silence (or empty data) the disc has and the FILE does not.
    pregap: u64,
    postgap: u64,
}

#[derive(Debug)]
struct CueFile {
    name: String,
    kind: FileKind,
    line: usize,
    tracks: Vec<CueTrack>,
}

/// How a FILE holds its sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// As they are.
    Binary,
    /// Audio samples big-endian: every 16-bit sample byte-swapped.
    Motorola,
    /// CD audio (16-bit stereo PCM at 44.1 kHz) in the data chunk of a RIFF WAVE file.
    Wave,
}

#[derive(Debug, Default)]
struct Sheet {
    catalog: Option<String>,
    title: Option<String>,
    files: Vec<CueFile>,
}

/// Words of a line; a double-quoted word keeps its spaces.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            out.push(chars.by_ref().take_while(|&c| c != '"').collect());
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push(w);
        }
    }
    out
}

/// "mm:ss:ff" as frames (75 a second).
fn msf(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split(':').collect();
    let [m, sec, f] = parts.as_slice() else {
        return None;
    };
    let num = |x: &str| {
        (!x.is_empty() && x.len() <= 3 && x.bytes().all(|b| b.is_ascii_digit()))
            .then(|| x.parse::<u64>().ok())
            .flatten()
    };
    let (m, sec, f) = (num(m)?, num(sec)?, num(f)?);
    (sec < 60 && f < 75).then_some((m * 60 + sec) * 75 + f)
}

fn parse(text: &str) -> Result<Sheet, String> {
    let mut sheet = Sheet::default();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let w = words(raw.trim_start_matches('\u{feff}'));
        let Some(keyword) = w.first() else { continue };
        let arg = |i: usize| w.get(i).map(String::as_str);
        let err = |what: String| Err(format!("line {line}: {what}"));
        match keyword.to_ascii_uppercase().as_str() {
            "REM" | "PERFORMER" | "SONGWRITER" | "FLAGS" | "ISRC" | "CDTEXTFILE" => {}
            "PREGAP" | "POSTGAP" => {
                let Some(frames) = arg(1).and_then(msf) else {
                    return err(format!(
                        "{keyword} needs a time mm:ss:ff (seconds < 60, frames < 75)"
                    ));
                };
                let Some(track) = sheet.files.last_mut().and_then(|f| f.tracks.last_mut()) else {
                    return err(format!("{keyword} before any TRACK"));
                };
                if keyword.eq_ignore_ascii_case("PREGAP") {
                    track.pregap = frames;
                } else {
                    track.postgap = frames;
                }
            }
            "TITLE" => {
                if sheet.files.is_empty() {
                    sheet.title = arg(1).map(str::to_string);
                }
            }
            "CATALOG" => match arg(1) {
                Some(c) if c.len() == 13 && c.bytes().all(|b| b.is_ascii_digit()) => {
                    sheet.catalog = Some(c.into())
                }
                Some(c) => return err(format!("CATALOG {c:?} is not a 13-digit number")),
                None => return err("CATALOG without its 13-digit number".into()),
            },
            "FILE" => {
                let (Some(name), Some(kind)) = (arg(1), arg(2)) else {
                    return err("FILE needs a name and a type".into());
                };
                let kind = match kind.to_ascii_uppercase().as_str() {
                    "BINARY" => FileKind::Binary,
                    "MOTOROLA" => FileKind::Motorola,
                    "WAVE" => FileKind::Wave,
                    "AIFF" | "MP3" => {
                        return err(format!(
                            "FILE of type {kind}: compressed or AIFF audio is not read (BINARY, MOTOROLA and WAVE are)"
                        ))
                    }
                    other => return err(format!("FILE of unknown type {other}")),
                };
                sheet.files.push(CueFile {
                    name: name.into(),
                    kind,
                    line,
                    tracks: Vec::new(),
                });
            }
            "TRACK" => {
                let Some(file) = sheet.files.last_mut() else {
                    return err("TRACK before any FILE".into());
                };
                let number = arg(1)
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|n| (1..=99).contains(n));
                let Some(number) = number else {
                    return err(format!(
                        "TRACK number {:?} is not 1 to 99",
                        arg(1).unwrap_or("")
                    ));
                };
                let Some(mode) = arg(2).and_then(TrackMode::parse) else {
                    return err(format!("unknown track mode {:?}", arg(2).unwrap_or("")));
                };
                file.tracks.push(CueTrack {
                    number,
                    mode,
                    line,
                    index0: None,
                    index1: None,
                    pregap: 0,
                    postgap: 0,
                });
            }
            "INDEX" => {
                let Some(track) = sheet.files.last_mut().and_then(|f| f.tracks.last_mut()) else {
                    return err("INDEX before any TRACK".into());
                };
                let Some(at) = arg(2).and_then(msf) else {
                    return err(format!(
                        "INDEX time {:?} is not mm:ss:ff (seconds < 60, frames < 75)",
                        arg(2).unwrap_or("")
                    ));
                };
                match arg(1).and_then(|i| i.parse::<u8>().ok()) {
                    Some(0) => track.index0 = Some(at),
                    Some(1) => track.index1 = Some(at),
                    Some(2..=99) => {}
                    _ => {
                        return err(format!(
                            "INDEX number {:?} is not 0 to 99",
                            arg(1).unwrap_or("")
                        ))
                    }
                }
            }
            other => return err(format!("unknown command {other}")),
        }
    }
    if let Some(t) = sheet
        .files
        .iter()
        .flat_map(|f| &f.tracks)
        .find(|t| t.index1.is_none())
    {
        return Err(format!(
            "line {}: TRACK {:02} has no INDEX 01",
            t.line, t.number
        ));
    }
    if sheet.files.iter().all(|f| f.tracks.is_empty()) {
        return Err("no TRACK".into());
    }
    Ok(sheet)
}

/// Big-endian 16-bit samples seen little-endian, as a BIN holds CD audio.
struct ByteSwapped(Arc<dyn ReadAt>);

impl ReadAt for ByteSwapped {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        // Read whole sample pairs, then hand back the part asked for.
        let size = self.0.size();
        if offset >= size {
            return Ok(0);
        }
        let start = offset & !1;
        let end = (offset + buf.len() as u64).min(size);
        let mut pairs = vec![0u8; (((end + 1) & !1).min(size) - start) as usize];
        self.0.read_exact_at(start, &mut pairs)?;
        for pair in pairs.chunks_exact_mut(2) {
            pair.swap(0, 1);
        }
        let (from, n) = ((offset - start) as usize, (end - offset) as usize);
        buf[..n].copy_from_slice(&pairs[from..from + n]);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.0.size()
    }
}

/// The PCM bytes of a WAVE file, which must be CD audio.
fn wave_samples(file: Arc<dyn ReadAt>, name: &str, line: usize) -> io::Result<Arc<dyn ReadAt>> {
    let bad = |what: &str| FormatError::io(STRUCTURE, 0, format!("line {line}: {name}: {what}"));
    let mut head = [0u8; 12];
    if file.size() < 12 {
        return Err(bad("too short for a WAVE file"));
    }
    file.read_exact_at(0, &mut head)?;
    if &head[..4] != b"RIFF" || &head[8..] != b"WAVE" {
        return Err(bad("not a RIFF WAVE file"));
    }
    let mut at = 12u64;
    let mut cd_audio = false;
    // Chunks are bounded by the file, so the walk ends.
    while at + 8 <= file.size() {
        let mut chunk = [0u8; 8];
        file.read_exact_at(at, &mut chunk)?;
        let len = u64::from(le32(&chunk, 4));
        let body = at + 8;
        match &chunk[..4] {
            b"fmt " if len >= 16 && body + 16 <= file.size() => {
                let mut fmt = [0u8; 16];
                file.read_exact_at(body, &mut fmt)?;
                cd_audio = le16(&fmt, 0) == 1
                    && le16(&fmt, 2) == 2
                    && le32(&fmt, 4) == 44_100
                    && le16(&fmt, 14) == 16;
            }
            b"data" => {
                if !cd_audio {
                    return Err(bad(
                        "its samples are not CD audio (16-bit stereo PCM at 44.1 kHz)",
                    ));
                }
                let len = len.min(file.size() - body);
                return Ok(Arc::new(Slice::new(file, body, len)));
            }
            _ => {}
        }
        at = body + len + (len & 1);
    }
    Err(bad("no data chunk"))
}

/// A FILE named by the sheet, beside it; sheets made on Windows name it in another case.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    let direct = dir.join(name);
    if direct.is_file() {
        return Some(direct);
    }
    let base = Path::new(name)
        .file_name()?
        .to_string_lossy()
        .to_lowercase();
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().to_lowercase() == base)
        })
}

fn open(sheet_bytes: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let mut text = vec![0u8; sheet_bytes.size() as usize];
    sheet_bytes.read_exact_at(0, &mut text)?;
    let sheet =
        parse(&String::from_utf8_lossy(&text)).map_err(|e| FormatError::io(STRUCTURE, 0, e))?;
    let dir = p.path.and_then(Path::parent).unwrap_or(Path::new("."));
    let mut tracks = Vec::new();
    for file in &sheet.files {
        // Not damage: the sheet is whole, a file it names is elsewhere.
        let path = find(dir, &file.name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "line {}: missing track file {} (not found beside the CUE sheet)",
                    file.line, file.name
                ),
            )
        })?;
        let raw: Arc<dyn ReadAt> = Arc::new(FileSource::open(&path)?);
        let bin: Arc<dyn ReadAt> = match file.kind {
            FileKind::Binary => raw,
            FileKind::Motorola => Arc::new(ByteSwapped(raw)),
            FileKind::Wave => wave_samples(raw, &file.name, file.line)?,
        };
        // Tracks follow each other in the file; a track's bytes start at its first index, and the
        // frames between two tracks' starts are sectors of the earlier track's size.
        let mut starts: Vec<(u64, u64)> = Vec::new(); // (first frame, first byte)
        for (i, t) in file.tracks.iter().enumerate() {
            let first = t
                .index0
                .unwrap_or(t.index1.expect("parse checked INDEX 01"));
            let byte = match starts.last() {
                None => first * t.mode.sector_size(),
                Some(&(prev_frame, _)) if first < prev_frame => {
                    let why = format!(
                        "line {}: TRACK {:02} starts before the track before it",
                        t.line, t.number
                    );
                    return Err(FormatError::io(STRUCTURE, 0, why));
                }
                Some(&(prev_frame, prev_byte)) => {
                    prev_byte + (first - prev_frame) * file.tracks[i - 1].mode.sector_size()
                }
            };
            starts.push((first, byte));
        }
        // A track that starts past the file is the one to name, not the one before it.
        if let Some((t, &(_, start))) = file
            .tracks
            .iter()
            .zip(&starts)
            .find(|(_, s)| s.1 >= bin.size())
        {
            return Err(FormatError::io(
                STRUCTURE,
                0,
                format!(
                    "line {}: TRACK {:02} starts at byte {start}, past the end of {} ({} bytes)",
                    t.line,
                    t.number,
                    file.name,
                    bin.size()
                ),
            ));
        }
        for (i, t) in file.tracks.iter().enumerate() {
            let start = starts[i].1;
            let end = starts.get(i + 1).map_or(bin.size(), |s| s.1);
            let size = t.mode.sector_size();
            let len = (end - start) / size * size;
            let stored_pregap = t.index0.map_or(0, |i0| t.index1.expect("checked") - i0);
            // Gaps the FILE leaves out are part of the disc: empty sectors, so that every later
            // track keeps its address when the disc is written out again.
            let address = LEAD_PREGAP + tracks.iter().map(Track::count).sum::<u64>();
            let stored = len / size;
            let sectors = Concat::new(vec![
                Arc::new(Gap::new(t.mode, address, t.pregap)),
                Arc::new(Slice::new(bin.clone(), start, len)),
                Arc::new(Gap::new(t.mode, address + t.pregap + stored, t.postgap)),
            ]);
            tracks.push(Track {
                number: t.number,
                mode: t.mode,
                sectors: Arc::new(sectors),
                pregap: t.pregap + stored_pregap,
            });
        }
    }
    let mut facts = vec![Fact::new(
        "Files",
        sheet
            .files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    )];
    facts.extend(sheet.catalog.map(|c| Fact::new("Catalog", c)));
    facts.extend(sheet.title.map(|t| Fact::new("Title", t)));
    Ok(Box::new(Disc { tracks, facts }))
}

// Writing: a cue sheet and the one BIN it names.

/// "mm:ss:ff" of a frame count (75 a second).
fn msf_text(frames: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        frames / 4500,
        frames / 75 % 60,
        frames % 75
    )
}

/// The tracks as a BIN holds them: data held without sync and header (2048-byte Mode 1,
/// 2336-byte Mode 2) becomes the raw 2352-byte sectors of a CD, which is what a BIN is for and
/// what libcdio and bchunk read; raw tracks stay as stored.
pub fn bin_tracks(mut tracks: Vec<Track>) -> Vec<Track> {
    let mut frame = 0;
    for t in &mut tracks {
        let count = t.count();
        if let Some(raw) = RawSectors::new(t.sectors.clone(), t.mode, LEAD_PREGAP + frame) {
            t.mode = raw.mode();
            t.sectors = Arc::new(raw);
        }
        frame += count;
    }
    tracks
}

/// The cue sheet of `tracks`, stored one after another in the BIN named `bin_name` (frame 0 =
/// LBA 0 = INDEX 01 of a first track without pregap).
pub fn sheet(bin_name: &str, tracks: &[Track]) -> String {
    let mut sheet = format!("FILE \"{bin_name}\" BINARY\n");
    let mut frame = 0;
    for t in tracks {
        let _ = writeln!(sheet, "  TRACK {:02} {}", t.number, t.mode.name());
        if t.pregap > 0 {
            let _ = writeln!(sheet, "    INDEX 00 {}", msf_text(frame));
        }
        let _ = writeln!(sheet, "    INDEX 01 {}", msf_text(frame + t.pregap));
        frame += t.count();
    }
    sheet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msf_and_words() {
        assert_eq!(msf("00:02:00"), Some(150));
        assert_eq!(msf("00:00:75"), None);
        assert_eq!(msf("00:60:00"), None);
        assert_eq!(msf("xx:yy:0"), None);
        assert_eq!(
            words(r#"FILE "My Disc.bin" BINARY"#),
            ["FILE", "My Disc.bin", "BINARY"]
        );
    }
}
