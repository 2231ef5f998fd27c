//! Raw 2352-byte CD-ROM sectors (ECMA-130, formats.md §e.2 and §e.4): what a cue/bin or NRG
//! image stores for a data track, built from the 2048 bytes a computer sees — sync pattern,
//! address header, EDC and the two Reed-Solomon parity blocks — and checked when read back.

use crate::io::ReadAt;
use serde::Serialize;
use std::io;
use std::sync::{Arc, OnceLock};

pub const RAW: usize = 2352;
pub const COOKED: usize = 2048;
/// Sectors before LBA 0: the two seconds a disc's first track starts after.
pub const LEAD_PREGAP: u64 = 150;

const SYNC: [u8; 12] = [0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0];
const EDC_AT: usize = 0x810;
const P_AT: usize = 0x81C;
const Q_AT: usize = 0x8C8;

struct Tables {
    edc: [u32; 256],
    /// Multiplication by α in GF(2⁸) with x⁸+x⁴+x³+x²+1.
    mul2: [u8; 256],
    /// Division by α+1.
    div3: [u8; 256],
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut t = Tables {
            edc: [0; 256],
            mul2: [0; 256],
            div3: [0; 256],
        };
        for i in 0..256usize {
            let mut edc = i as u32;
            for _ in 0..8 {
                edc = (edc >> 1) ^ if edc & 1 != 0 { 0xD801_8001 } else { 0 };
            }
            t.edc[i] = edc;
            let doubled = ((i << 1) ^ if i & 0x80 != 0 { 0x11D } else { 0 }) as u8;
            t.mul2[i] = doubled;
            t.div3[usize::from(doubled ^ i as u8)] = i as u8;
        }
        t
    })
}

/// The CD's error detection code: a reflected CRC-32 of polynomial 0x8001801B, no inversion.
pub fn edc(data: &[u8]) -> u32 {
    let table = &tables().edc;
    data.iter().fold(0u32, |edc, &b| {
        (edc >> 8) ^ table[((edc ^ u32::from(b)) & 0xFF) as usize]
    })
}

/// One Reed-Solomon parity block over the sector from its header on: P runs down 86 columns of
/// 24 bytes, Q along 52 diagonals of 43 (and so covers P). The two bytes of each 16-bit word
/// are separate planes.
fn parity(
    sector: &[u8; RAW],
    (majors, minors, mult, inc): (usize, usize, usize, usize),
) -> Vec<u8> {
    let t = tables();
    let src = &sector[12..];
    let size = majors * minors;
    let mut out = vec![0u8; 2 * majors];
    for major in 0..majors {
        let mut index = (major >> 1) * mult + (major & 1);
        let (mut a, mut b) = (0u8, 0u8);
        for _ in 0..minors {
            let x = src[index];
            index += inc;
            if index >= size {
                index -= size;
            }
            a ^= x;
            b ^= x;
            a = t.mul2[usize::from(a)];
        }
        a = t.div3[usize::from(t.mul2[usize::from(a)] ^ b)];
        out[major] = a;
        out[major + majors] = a ^ b;
    }
    out
}

const P: (usize, usize, usize, usize) = (86, 24, 2, 86);
const Q: (usize, usize, usize, usize) = (52, 43, 86, 88);

/// Two decimal digits as binary-coded decimal, as CD addresses and track numbers are stored.
pub fn bcd(n: u64) -> u8 {
    (((n / 10) << 4) | (n % 10)) as u8
}

/// The sync pattern and the address header of a sector at absolute `address` (LBA + 150).
fn header(address: u64, mode: u8, sector: &mut [u8; RAW]) {
    sector[..12].copy_from_slice(&SYNC);
    sector[12] = bcd(address / 4500);
    sector[13] = bcd(address / 75 % 60);
    sector[14] = bcd(address % 75);
    sector[15] = mode;
}

/// Writes the Mode 1 sector at absolute `address` (LBA + 150) holding `data`.
pub fn encode_mode1(address: u64, data: &[u8], sector: &mut [u8; RAW]) {
    header(address, 1, sector);
    sector[16..16 + COOKED].copy_from_slice(data);
    let edc = edc(&sector[..EDC_AT]);
    sector[EDC_AT..EDC_AT + 4].copy_from_slice(&edc.to_le_bytes());
    sector[EDC_AT + 4..P_AT].fill(0);
    let p = parity(sector, P);
    sector[P_AT..Q_AT].copy_from_slice(&p);
    let q = parity(sector, Q);
    sector[Q_AT..].copy_from_slice(&q);
}

fn parity_intact(sector: &[u8; RAW]) -> bool {
    parity(sector, P) == sector[P_AT..Q_AT] && parity(sector, Q) == sector[Q_AT..]
}

/// Whether a stored Mode 1 sector's EDC and both parity blocks are what its bytes give.
pub fn mode1_intact(sector: &[u8; RAW]) -> bool {
    sector[..12] == SYNC
        && sector[15] == 1
        && edc(&sector[..EDC_AT]).to_le_bytes() == sector[EDC_AT..EDC_AT + 4]
        && parity_intact(sector)
}

/// The XA subheader's submode bit that makes a Mode 2 sector Form 2 (2324 bytes of data, an
/// EDC and no parity) rather than Form 1 (2048 bytes, EDC and parity).
const FORM2: u8 = 0x20;
/// Where a Mode 2 sector's data starts: after the header and the subheader, which is stored twice.
pub const MODE2_DATA: usize = 24;
/// The user data of a Mode 2 Form 2 sector.
pub const FORM2_DATA: usize = 2324;
const FORM1_EDC_AT: usize = MODE2_DATA + COOKED;
const FORM2_EDC_AT: usize = MODE2_DATA + FORM2_DATA;

/// Whether a stored Mode 2 (CD-ROM XA) sector checks as its subheader's form says: Form 1 by
/// its EDC and parity (computed, as the standard says, as if the header were zero), Form 2 by
/// its EDC, which a writer may leave zero. Both copies of the subheader must agree.
pub fn mode2_intact(sector: &[u8; RAW]) -> bool {
    if sector[..12] != SYNC || sector[15] != 2 || sector[16..20] != sector[20..24] {
        return false;
    }
    let stored = |at: usize| &sector[at..at + 4];
    if sector[18] & FORM2 != 0 {
        let sum = stored(FORM2_EDC_AT);
        return sum == [0; 4] || edc(&sector[16..FORM2_EDC_AT]).to_le_bytes() == sum;
    }
    let mut headless = *sector;
    headless[12..16].fill(0);
    edc(&sector[16..FORM1_EDC_AT]).to_le_bytes() == stored(FORM1_EDC_AT) && parity_intact(&headless)
}

/// An empty sector of a data mode stored raw, at absolute `address`, as a burner writes the gap
/// before a track: zeros with the header and checks (Form 2 for Mode 2, as drives and vcdimager
/// write gaps). Returns the sector's stored bytes; `None` where an empty sector is all zeros
/// (silence, or a mode stored without header).
fn empty_sector(mode: TrackMode, address: u64, sector: &mut [u8; RAW]) -> Option<&[u8]> {
    sector.fill(0);
    match mode {
        TrackMode::Mode1_2352 => encode_mode1(address, &[0; COOKED], sector),
        TrackMode::Mode2_2352 | TrackMode::Mode2_2336 => {
            header(address, 2, sector);
            sector[18] = FORM2;
            sector[22] = FORM2;
            let edc = edc(&sector[16..FORM2_EDC_AT]);
            sector[FORM2_EDC_AT..].copy_from_slice(&edc.to_le_bytes());
        }
        TrackMode::Audio | TrackMode::Cdg | TrackMode::Mode1_2048 => return None,
    }
    Some(&sector[RAW - mode.sector_size() as usize..])
}

/// Sectors a disc has and its image does not store: a cue sheet's PREGAP and POSTGAP, the gap
/// before each track after the first on a disc written track-at-once. Made as they are read.
pub struct Gap {
    mode: TrackMode,
    /// The absolute address of the first.
    address: u64,
    count: u64,
}

impl Gap {
    pub fn new(mode: TrackMode, address: u64, count: u64) -> Self {
        Gap {
            mode,
            address,
            count,
        }
    }
}

impl ReadAt for Gap {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.mode.sector_size();
        let index = offset / size;
        if index >= self.count {
            return Ok(0);
        }
        let within = (offset % size) as usize;
        let n = buf.len().min(size as usize - within);
        let mut sector = [0u8; RAW];
        match empty_sector(self.mode, self.address + index, &mut sector) {
            Some(stored) => buf[..n].copy_from_slice(&stored[within..within + n]),
            None => buf[..n].fill(0),
        }
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.count * self.mode.sector_size()
    }
}

/// A track stored without sync and header — 2048-byte Mode 1 sectors, or 2336-byte Mode 2
/// ones — seen as the raw 2352-byte sectors a CD holds, made as they are read: Mode 1 gains its
/// EDC and parity, Mode 2 only its sync and header (its checks are in the 2336 bytes). The
/// first is at absolute `address`.
pub struct RawSectors {
    stored: Arc<dyn ReadAt>,
    mode: TrackMode,
    address: u64,
}

impl RawSectors {
    /// `None` for modes already raw, or with no header to make (audio).
    pub fn new(stored: Arc<dyn ReadAt>, mode: TrackMode, address: u64) -> Option<Self> {
        matches!(mode, TrackMode::Mode1_2048 | TrackMode::Mode2_2336).then_some(RawSectors {
            stored,
            mode,
            address,
        })
    }

    /// The mode of the sectors it makes.
    pub fn mode(&self) -> TrackMode {
        match self.mode {
            TrackMode::Mode2_2336 => TrackMode::Mode2_2352,
            _ => TrackMode::Mode1_2352,
        }
    }
}

impl ReadAt for RawSectors {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use rayon::prelude::*;
        let end = (offset + buf.len() as u64).min(self.size());
        if offset >= end {
            return Ok(0);
        }
        let from = self.mode.sector_size() as usize;
        let (first, last) = (offset / RAW as u64, (end - 1) / RAW as u64);
        let count = (last - first + 1) as usize;
        let mut data = vec![0u8; count * from];
        self.stored.read_exact_at(first * from as u64, &mut data)?;
        let mut raw = vec![0u8; count * RAW];
        raw.par_chunks_mut(RAW)
            .zip(data.par_chunks(from))
            .enumerate()
            .for_each(|(i, (sector, data))| {
                let sector: &mut [u8; RAW] = sector.try_into().expect("whole sectors");
                let address = self.address + first + i as u64;
                if self.mode == TrackMode::Mode1_2048 {
                    encode_mode1(address, data, sector);
                } else {
                    header(address, 2, sector);
                    sector[16..].copy_from_slice(data);
                }
            });
        let within = (offset - first * RAW as u64) as usize;
        let n = (end - offset) as usize;
        buf[..n].copy_from_slice(&raw[within..within + n]);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.stored.size() / self.mode.sector_size() * RAW as u64
    }
}

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
    pub(super) fn user_data_at(self) -> Option<u64> {
        match self {
            TrackMode::Mode1_2048 => Some(0),
            TrackMode::Mode1_2352 => Some(16),
            TrackMode::Mode2_2336 => Some(8),
            TrackMode::Mode2_2352 => Some(24),
            TrackMode::Audio | TrackMode::Cdg => None,
        }
    }

    /// Where the 2324 bytes of user data sit in a Mode 2 Form 2 sector; modes without Form 2
    /// sectors have none.
    pub(super) fn form2_data_at(self) -> Option<u64> {
        match self {
            TrackMode::Mode2_2336 => Some(8),
            TrackMode::Mode2_2352 => Some(MODE2_DATA as u64),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edc_is_the_cd_crc_not_zlibs() {
        // Check value of CRC-32/CD-ROM-EDC ("123456789"), from the CRC catalogue.
        assert_eq!(edc(b"123456789"), 0x6EC2_EDC4);
    }

    #[test]
    fn generated_sectors_check_and_damage_is_seen() {
        let data: Vec<u8> = (0..COOKED).map(|i| (i * 7 % 251) as u8).collect();
        let mut sector = [0u8; RAW];
        encode_mode1(150 + 4500, &data, &mut sector);
        assert_eq!(&sector[12..16], &[0x01, 0x02, 0x00, 0x01]);
        assert!(mode1_intact(&sector));
        for at in [20, EDC_AT + 1, P_AT + 3, Q_AT + 100] {
            let mut bad = sector;
            bad[at] ^= 0x10;
            assert!(!mode1_intact(&bad), "a flip at {at:#x} goes unseen");
        }
    }

    #[test]
    fn gaps_are_empty_sectors_that_check() {
        for (mode, intact) in [
            (
                TrackMode::Mode1_2352,
                mode1_intact as fn(&[u8; RAW]) -> bool,
            ),
            (TrackMode::Mode2_2352, mode2_intact),
        ] {
            let gap = Gap::new(mode, 150 + 4500, 2);
            let mut two = vec![0u8; 2 * RAW];
            gap.read_exact_at(0, &mut two).unwrap();
            for (i, sector) in two.chunks_exact(RAW).enumerate() {
                let sector: &[u8; RAW] = sector.try_into().unwrap();
                assert!(intact(sector), "{mode:?}");
                assert_eq!(&sector[12..15], &[0x01, 0x02, i as u8], "{mode:?}");
            }
        }
        let silence = Gap::new(TrackMode::Audio, 150, 3);
        let mut buf = vec![1u8; 3 * RAW];
        silence.read_exact_at(0, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
    }
}
