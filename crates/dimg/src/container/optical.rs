//! What cue/bin and NRG images share: a disc of tracks, each a run of sectors of its mode's size.
//! The disc's virtual disk is the cooked 2048-byte view of its first data track — what a
//! computer mounts — or, for an audio disc, the raw sectors of every track.

use super::{Container, Fact};
use crate::io::{Concat, ReadAt};
use serde::Serialize;
use std::io;
use std::sync::Arc;

/// A track's sector format, as cue sheets name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TrackMode {
    Audio,
    Mode1_2048,
    Mode1_2352,
    Mode2_2336,
    Mode2_2352,
    Cdg,
}

impl TrackMode {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "AUDIO" => TrackMode::Audio,
            "MODE1/2048" => TrackMode::Mode1_2048,
            "MODE1/2352" => TrackMode::Mode1_2352,
            "MODE2/2336" | "CDI/2336" => TrackMode::Mode2_2336,
            "MODE2/2352" | "CDI/2352" => TrackMode::Mode2_2352,
            "CDG" => TrackMode::Cdg,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TrackMode::Audio => "AUDIO",
            TrackMode::Mode1_2048 => "MODE1/2048",
            TrackMode::Mode1_2352 => "MODE1/2352",
            TrackMode::Mode2_2336 => "MODE2/2336",
            TrackMode::Mode2_2352 => "MODE2/2352",
            TrackMode::Cdg => "CDG",
        }
    }

    pub fn sector_size(self) -> u64 {
        match self {
            TrackMode::Mode1_2048 => 2048,
            TrackMode::Mode2_2336 => 2336,
            TrackMode::Cdg => 2448,
            _ => 2352,
        }
    }

    /// Where the 2048 bytes of user data sit in a sector of a data track: after the sync and
    /// header (mode 1), and the subheader too (mode 2 form 1).
    fn user_data_at(self) -> Option<u64> {
        match self {
            TrackMode::Mode1_2048 => Some(0),
            TrackMode::Mode1_2352 => Some(16),
            TrackMode::Mode2_2336 => Some(8),
            TrackMode::Mode2_2352 => Some(24),
            TrackMode::Audio | TrackMode::Cdg => None,
        }
    }
}

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

/// The 2048-byte user data of a data track's sectors, from INDEX 01 on.
struct Cooked {
    track: Track,
    at: u64,
}

impl ReadAt for Cooked {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let sector = offset / 2048 + self.track.pregap;
        if sector >= self.track.count() {
            return Ok(0);
        }
        let within = offset % 2048;
        let n = buf.len().min((2048 - within) as usize);
        let at = sector * self.track.mode.sector_size() + self.at + within;
        self.track.sectors.read_exact_at(at, &mut buf[..n])?;
        Ok(n)
    }

    fn size(&self) -> u64 {
        (self.track.count() - self.track.pregap.min(self.track.count())) * 2048
    }
}

/// A disc image, whatever file format held it.
pub struct Disc {
    pub tracks: Vec<Track>,
    pub facts: Vec<Fact>,
}

impl Container for Disc {
    fn disk(&self) -> Arc<dyn ReadAt> {
        let data = self
            .tracks
            .iter()
            .find_map(|t| Some((t, t.mode.user_data_at()?)));
        match data {
            Some((t, at)) => Arc::new(Cooked {
                track: t.clone(),
                at,
            }),
            None => Arc::new(Concat::new(
                self.tracks.iter().map(|t| t.sectors.clone()).collect(),
            )),
        }
    }

    fn facts(&self) -> Vec<Fact> {
        let mut facts = self.facts.clone();
        for t in &self.tracks {
            let pregap = if t.pregap > 0 {
                format!(", {} in the pregap", t.pregap)
            } else {
                String::new()
            };
            facts.push(Fact::new(
                "Track",
                format!(
                    "{:02} {} — {} sectors{pregap}",
                    t.number,
                    t.mode.name(),
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
