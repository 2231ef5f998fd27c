//! What cue/bin and NRG images share: a disc of tracks, each a run of sectors of its mode's size.
//! The disc's virtual disk is the cooked 2048-byte view of its first data track — what a
//! computer mounts — or, for an audio disc, the raw sectors of every track.

pub use super::sector::TrackMode;
use super::sector::{COOKED, FORM2_DATA, RAW};
use super::{Container, Fact};
use crate::io::{Concat, ReadAt};
use std::io;
use std::sync::Arc;

/// One track: its stored sectors (pregap included), in its mode's sector size.
#[derive(Clone)]
pub struct Track {
    pub number: u8,
    pub mode: TrackMode,
    pub sectors: Arc<dyn ReadAt>,
    /// Sectors of pregap stored before INDEX 01.
    pub pregap: u64,
}

impl Track {
    pub fn count(&self) -> u64 {
        self.sectors.size() / self.mode.sector_size()
    }
}

/// The same part of every sector of a run: `len` bytes at `at`, from sector `first` on — a data
/// track's 2048 bytes of user data, or a raw Mode 2 sector without its sync and header.
pub struct SectorPart {
    sectors: Arc<dyn ReadAt>,
    stride: u64,
    at: u64,
    len: u64,
    first: u64,
}

impl SectorPart {
    /// The 2048-byte user data of a data track's sectors from INDEX 01 on; `None` for audio.
    fn user_data(track: &Track) -> Option<Self> {
        Some(SectorPart {
            sectors: track.sectors.clone(),
            stride: track.mode.sector_size(),
            at: track.mode.user_data_at()?,
            len: COOKED as u64,
            first: track.pregap,
        })
    }

    /// Raw Mode 2 sectors as the 2336 bytes after their sync and header.
    pub fn mode2_body(raw: Arc<dyn ReadAt>) -> Self {
        SectorPart {
            sectors: raw,
            stride: RAW as u64,
            at: 16,
            len: TrackMode::Mode2_2336.sector_size(),
            first: 0,
        }
    }

    fn count(&self) -> u64 {
        (self.sectors.size() / self.stride).saturating_sub(self.first)
    }
}

impl ReadAt for SectorPart {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let sector = offset / self.len;
        if sector >= self.count() {
            return Ok(0);
        }
        let within = offset % self.len;
        let n = buf.len().min((self.len - within) as usize);
        let at = (self.first + sector) * self.stride + self.at + within;
        self.sectors.read_exact_at(at, &mut buf[..n])?;
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.count() * self.len
    }
}

/// The address (LBA) of each track's first stored sector: track 1's INDEX 01 is LBA 0, and each
/// track's stored sectors, gaps included, follow the track before it.
pub fn first_lbas(tracks: &[Track]) -> Vec<i64> {
    let mut next = -(tracks.first().map_or(0, |t| t.pregap) as i64);
    tracks
        .iter()
        .map(|t| {
            let lba = next;
            next += t.count() as i64;
            lba
        })
        .collect()
}

/// Which user data of a sector a [`UserData`] view reads.
#[derive(Clone, Copy)]
enum Form {
    /// 2048 bytes: Mode 1, Mode 2 Form 1.
    One,
    /// 2324 bytes: Mode 2 Form 2.
    Two,
}

/// Every track's user data, addressed by LBA: sector `n` at byte `n × 2048` (or `× 2324`).
struct UserData {
    tracks: Vec<Track>,
    first: Vec<i64>,
    form: Form,
}

impl UserData {
    fn per_sector(&self) -> u64 {
        match self.form {
            Form::One => COOKED as u64,
            Form::Two => FORM2_DATA as u64,
        }
    }
}

impl ReadAt for UserData {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let per = self.per_sector();
        let lba = (offset / per) as i64;
        let Some(i) = self.first.iter().rposition(|&first| first <= lba) else {
            return Ok(0);
        };
        let track = &self.tracks[i];
        let sector = (lba - self.first[i]) as u64;
        if sector >= track.count() {
            return Ok(0);
        }
        let at = match self.form {
            Form::One => track.mode.user_data_at(),
            Form::Two => track.mode.form2_data_at(),
        };
        let Some(at) = at else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "sector {lba} is in track {:02} ({}), which holds no {} data",
                    track.number,
                    track.mode.name(),
                    match self.form {
                        Form::One => "2048-byte",
                        Form::Two => "Mode 2 Form 2",
                    }
                ),
            ));
        };
        let within = offset % per;
        let n = buf.len().min((per - within) as usize);
        track.sectors.read_exact_at(
            sector * track.mode.sector_size() + at + within,
            &mut buf[..n],
        )?;
        Ok(n)
    }

    fn size(&self) -> u64 {
        let end = self
            .first
            .last()
            .zip(self.tracks.last())
            .map_or(0, |(&first, t)| first + t.count() as i64);
        end.max(0) as u64 * self.per_sector()
    }
}

/// A disc's user data by LBA, for the ISO 9660 volume of its first track: its files may lie in
/// later tracks and in Mode 2 Form 2 sectors.
pub struct DiscViews {
    /// Every track's 2048 bytes of user data, sector `lba` at `lba × 2048`.
    pub form1: Arc<dyn ReadAt>,
    /// Mode 2 Form 2 sectors' 2324 bytes, sector `lba` at `lba × FORM2_DATA`.
    pub form2: Arc<dyn ReadAt>,
}

/// The disc's user data views; None when the first track holds no data.
pub fn disc_views(tracks: &[Track]) -> Option<DiscViews> {
    tracks.first()?.mode.user_data_at()?;
    let first = first_lbas(tracks);
    let view = |form| -> Arc<dyn ReadAt> {
        Arc::new(UserData {
            tracks: tracks.to_vec(),
            first: first.clone(),
            form,
        })
    };
    Some(DiscViews {
        form1: view(Form::One),
        form2: view(Form::Two),
    })
}

/// A disc image, whatever file format held it.
pub struct Disc {
    pub tracks: Vec<Track>,
    pub facts: Vec<Fact>,
}

impl Container for Disc {
    fn disk(&self) -> Arc<dyn ReadAt> {
        match self.tracks.iter().find_map(SectorPart::user_data) {
            Some(data) => Arc::new(data),
            None => Arc::new(Concat::new(
                self.tracks.iter().map(|t| t.sectors.clone()).collect(),
            )),
        }
    }

    fn facts(&self) -> Vec<Fact> {
        let mut facts = self.facts.clone();
        for (t, first) in self.tracks.iter().zip(first_lbas(&self.tracks)) {
            let pregap = if t.pregap > 0 {
                format!(", {} in the pregap", t.pregap)
            } else {
                String::new()
            };
            facts.push(Fact::new(
                "Track",
                format!(
                    "{:02} {} at LBA {} — {} sectors{pregap}",
                    t.number,
                    t.mode.name(),
                    first + t.pregap as i64,
                    t.count()
                ),
            ));
        }
        facts
    }

    fn tracks(&self) -> Option<Vec<Track>> {
        Some(self.tracks.clone())
    }
}
