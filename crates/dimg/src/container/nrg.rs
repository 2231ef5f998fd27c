//! Nero images (formats.md §d): track data first, then a chunk list found through the footer —
//! "NER5" + u64 (version 2) or "NERO" + u32 (version 1). Tracks come from the DAO chunk
//! (DAOX/DAOI) or, for track-at-once discs, from ETN2/ETNF.

use crate::bytes::{be16, be32, be64};

use super::optical::{Disc, SectorPart, Track, TrackMode};
use super::sector::{bcd, Gap, LEAD_PREGAP};
use super::{Container, Fact, Probe};
use crate::error::FormatError;
use crate::io::{Concat, ReadAt, Slice};
use crate::magic::Signature;
use std::io;
use std::sync::Arc;

pub static DRIVER: super::Driver = super::Driver {
    name: "Nero disc image (NRG)",
    probe,
    open,
};

fn probe(p: &Probe) -> u8 {
    if p.signatures.contains(&Signature::NeroV2) || p.signatures.contains(&Signature::NeroV1) {
        100
    } else {
        0
    }
}

const STRUCTURE: &str = "NRG chunk list";
const MAX_CHUNKS: usize = 1024;
const MAX_CHUNK_BYTES: u64 = 1 << 20;
/// The gap before each track after the first on a disc written track-at-once: two seconds.
const TAO_GAP: u64 = 150;
/// The longest gap believed: a minute.
const MAX_TAO_GAP: u64 = 4500;

/// Nero's mode codes (libmirage's findings); subchannel variants are not read yet.
fn mode(code: u8, at: u64) -> io::Result<TrackMode> {
    Ok(match code {
        0x00 | 0x02 => TrackMode::Mode1_2048,
        0x03 => TrackMode::Mode2_2336,
        0x05 => TrackMode::Mode1_2352,
        0x06 => TrackMode::Mode2_2352,
        0x07 => TrackMode::Audio,
        0x0F..=0x11 => {
            return Err(FormatError::io(
                STRUCTURE,
                at,
                "tracks with subchannel data are not read yet",
            ))
        }
        other => {
            return Err(FormatError::io(
                STRUCTURE,
                at,
                format!("unknown track mode code 0x{other:02X}"),
            ))
        }
    })
}

fn open(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let size = file.size();
    let tail = &p.sniff.tail;
    let (version, list) = if p.signatures.contains(&Signature::NeroV2) {
        (2, be64(tail, tail.len() - 8))
    } else {
        (1, u64::from(be32(tail, tail.len() - 4)))
    };
    let footer = if version == 2 { 12 } else { 8 };
    if list >= size - footer {
        return Err(FormatError::io(
            "NRG footer",
            size - footer,
            format!("chunk list offset {list} is past the data"),
        ));
    }
    let mut tracks: Vec<Track> = Vec::new();
    let mut facts = vec![Fact::new(
        "Version",
        if version == 2 { "2 (NER5)" } else { "1 (NERO)" },
    )];
    // Where the disc's first track begins, as an LBA: -150 when Nero stored the lead pregap.
    let mut first_lba: Option<i64> = None;
    let mut at = list;
    for _ in 0..MAX_CHUNKS {
        let mut head = [0u8; 8];
        if at + 8 > size - footer + 4 {
            return Err(FormatError::io(STRUCTURE, at, "ends without END!"));
        }
        file.read_exact_at(at, &mut head)?;
        let (id, len) = (&head[0..4], u64::from(be32(&head, 4)));
        if id == b"END!" && tracks.is_empty() {
            return Err(FormatError::io(
                STRUCTURE,
                list,
                "no DAO or TAO chunk describes a track",
            ));
        }
        if id == b"END!" {
            // Sectors before LBA 0 are the lead-in's pregap, not part of the program area that
            // raw dumps (and cue/bin images) hold.
            if let (Some(lba @ ..=-1), Some(first)) = (first_lba, tracks.first_mut()) {
                let skip = lba.unsigned_abs().min(first.pregap);
                let size = first.mode.sector_size();
                let stored = first.sectors.size();
                first.sectors = Arc::new(Slice::new(
                    first.sectors.clone(),
                    skip * size,
                    stored - skip * size,
                ));
                first.pregap -= skip;
            }
            return Ok(Box::new(Disc { tracks, facts }));
        }
        if len > MAX_CHUNK_BYTES || at + 8 + len > size {
            return Err(FormatError::io(
                STRUCTURE,
                at,
                format!(
                    "chunk {} of {len} bytes does not fit",
                    String::from_utf8_lossy(id)
                ),
            ));
        }
        let mut d = vec![0u8; len as usize];
        file.read_exact_at(at + 8, &mut d)?;
        match id {
            b"DAOX" | b"DAOI" => {
                let wide = id == b"DAOX";
                let entry = if wide { 42 } else { 30 };
                if d.len() < 22 {
                    return Err(FormatError::io(
                        STRUCTURE,
                        at,
                        "DAO chunk shorter than its header",
                    ));
                }
                let (first, last) = (d[20], d[21]);
                for (i, e) in d[22..]
                    .chunks_exact(entry)
                    .enumerate()
                    .take(usize::from(last.saturating_sub(first)) + 1)
                {
                    let sector = u64::from(be16(e, 12));
                    let m = mode(e[14], at)?;
                    let off = |k: usize| {
                        if wide {
                            be64(e, 18 + 8 * k)
                        } else {
                            u64::from(be32(e, 18 + 4 * k))
                        }
                    };
                    let (pregap, start, end) = (off(0), off(1), off(2));
                    if sector != m.sector_size() || pregap > start || start > end || end > list {
                        return Err(FormatError::io(STRUCTURE, at, format!("track {} at {pregap}..{start}..{end} ({sector}-byte sectors) does not fit", i + 1)));
                    }
                    tracks.push(Track {
                        number: first.saturating_add(i as u8),
                        mode: m,
                        sectors: Arc::new(Slice::new(
                            file.clone(),
                            pregap,
                            (end - pregap) / sector * sector,
                        )),
                        pregap: (start - pregap) / sector,
                    });
                }
            }
            // Track-at-once: the tracks lie back to back in the file, each entry's LSN counts
            // sectors of the file, and on the disc every track after the first begins after a
            // two-second gap the file leaves out (libcdio's reading too).
            b"ETN2" | b"ETNF" if tracks.is_empty() => {
                let wide = id == b"ETN2";
                let entry = if wide { 32 } else { 20 };
                let mut end = 0u64; // the LBA after the last track so far
                for (i, e) in d.chunks_exact(entry).enumerate() {
                    let (offset, length, code, lsn) = if wide {
                        (be64(e, 0), be64(e, 8), e[19], be32(e, 20))
                    } else {
                        (
                            u64::from(be32(e, 0)),
                            u64::from(be32(e, 4)),
                            e[11],
                            be32(e, 12),
                        )
                    };
                    let m = mode(code, at)?;
                    let number = i as u8 + 1;
                    if offset + length > list {
                        return Err(FormatError::io(
                            STRUCTURE,
                            at,
                            format!("track {number} does not fit before the chunk list"),
                        ));
                    }
                    let lba = u64::from(lsn) + TAO_GAP * i as u64;
                    let gap = if i == 0 { 0 } else { lba.wrapping_sub(end) };
                    if gap > MAX_TAO_GAP {
                        return Err(FormatError::io(
                            STRUCTURE,
                            at,
                            format!("track {number} at LSN {lsn} overlaps the track before it or lies far past it"),
                        ));
                    }
                    let len = length / m.sector_size() * m.sector_size();
                    end = lba.max(end) + len / m.sector_size();
                    tracks.push(Track {
                        number,
                        mode: m,
                        sectors: Arc::new(Concat::new(vec![
                            Arc::new(Gap::new(m, LEAD_PREGAP + lba - gap, gap)),
                            Arc::new(Slice::new(file.clone(), offset, len)),
                        ])),
                        pregap: gap,
                    });
                }
            }
            // Cue points: {adr/ctl, track (BCD), index (BCD), pad, LBA or MSF}; track 0 is the
            // lead-in, 0xAA the lead-out.
            b"CUEX" | b"CUES" => {
                for e in d.chunks_exact(8) {
                    if e[1] == 0x01 && e[2] == 0x00 && first_lba.is_none() {
                        first_lba = Some(if id == b"CUEX" {
                            i64::from(i32::from_be_bytes(e[4..8].try_into().expect("4 bytes")))
                        } else {
                            let bcd = |b: u8| i64::from(b >> 4) * 10 + i64::from(b & 0x0F);
                            (bcd(e[5]) * 60 + bcd(e[6])) * 75 + bcd(e[7]) - 150
                        });
                    }
                }
            }
            b"MTYP" if d.len() >= 4 => {
                facts.push(Fact::new("Media type", format!("0x{:X}", be32(&d, 0))))
            }
            _ => {}
        }
        at += 8 + len;
    }
    Err(FormatError::io(
        STRUCTURE,
        list,
        format!("more than {MAX_CHUNKS} chunks"),
    ))
}

// Writing, as Nero lays out a disc-at-once image.

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

/// The tracks as an NRG holds them: Mode 2 as 2336 bytes without sync and header (Nero's form,
/// and the one libcdio reads); refused, naming the track, for a mode NRG is not written with.
pub fn nero_tracks(mut tracks: Vec<Track>) -> Result<Vec<Track>, String> {
    for t in &mut tracks {
        if t.mode == TrackMode::Mode2_2352 {
            t.mode = TrackMode::Mode2_2336;
            t.sectors = Arc::new(SectorPart::mode2_body(t.sectors.clone()));
        }
    }
    match tracks.iter().find(|t| nero_mode(t.mode).is_none()) {
        Some(t) => Err(format!(
            "track {:02} is {}, which NRG images are not written with",
            t.number,
            t.mode.name()
        )),
        None => Ok(tracks),
    }
}

/// The two seconds before LBA 0, which Nero stores ahead of the first track.
fn lead(tracks: &[Track]) -> Gap {
    Gap::new(tracks[0].mode, 0, LEAD_PREGAP)
}

/// The image's sectors: the lead pregap, then every track's.
pub fn sectors(tracks: &[Track]) -> Concat {
    let mut parts: Vec<Arc<dyn ReadAt>> = vec![Arc::new(lead(tracks))];
    parts.extend(tracks.iter().map(|t| t.sectors.clone()));
    Concat::new(parts)
}

/// What follows the sectors (`list_at` bytes of them): the cue points (CUEX), the track table
/// (DAOX), SINF, MTYP, END! and the NER5 footer.
pub fn chunk_list(tracks: &[Track], list_at: u64) -> Vec<u8> {
    let lead = lead(tracks);
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

    let mut list = Vec::new();
    chunk(&mut list, b"CUEX", &cues);
    chunk(&mut list, b"DAOX", &dao);
    chunk(&mut list, b"SINF", &(tracks.len() as u32).to_be_bytes());
    chunk(&mut list, b"MTYP", &1u32.to_be_bytes());
    chunk(&mut list, b"END!", &[]);
    list.extend_from_slice(b"NER5");
    list.extend_from_slice(&list_at.to_be_bytes());
    list
}
