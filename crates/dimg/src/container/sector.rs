//! Raw 2352-byte CD-ROM sectors (ECMA-130, formats.md §e.2 and §e.4): what a cue/bin or NRG
//! image stores for a data track, built from the 2048 bytes a computer sees — sync pattern,
//! address header, EDC and the two Reed-Solomon parity blocks — and checked when read back.

use crate::io::ReadAt;
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

/// Writes the Mode 1 sector at absolute `address` (LBA + 150) holding `data`.
pub fn encode_mode1(address: u64, data: &[u8], sector: &mut [u8; RAW]) {
    sector[..12].copy_from_slice(&SYNC);
    sector[12] = bcd(address / 4500);
    sector[13] = bcd(address / 75 % 60);
    sector[14] = bcd(address % 75);
    sector[15] = 1;
    sector[16..16 + COOKED].copy_from_slice(data);
    let edc = edc(&sector[..EDC_AT]);
    sector[EDC_AT..EDC_AT + 4].copy_from_slice(&edc.to_le_bytes());
    sector[EDC_AT + 4..P_AT].fill(0);
    let p = parity(sector, P);
    sector[P_AT..Q_AT].copy_from_slice(&p);
    let q = parity(sector, Q);
    sector[Q_AT..].copy_from_slice(&q);
}

/// Whether a stored Mode 1 sector's EDC and both parity blocks are what its bytes give.
pub fn mode1_intact(sector: &[u8; RAW]) -> bool {
    sector[..12] == SYNC
        && sector[15] == 1
        && edc(&sector[..EDC_AT]).to_le_bytes() == sector[EDC_AT..EDC_AT + 4]
        && parity(sector, P) == sector[P_AT..Q_AT]
        && parity(sector, Q) == sector[Q_AT..]
}

/// A run of 2048-byte sectors seen as the raw Mode 1 sectors a CD holds, generated as they are
/// read; the first is at absolute `address`.
pub struct Mode1Sectors {
    cooked: Arc<dyn ReadAt>,
    address: u64,
}

impl Mode1Sectors {
    pub fn new(cooked: Arc<dyn ReadAt>, address: u64) -> Self {
        Mode1Sectors { cooked, address }
    }
}

impl ReadAt for Mode1Sectors {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use rayon::prelude::*;
        let end = (offset + buf.len() as u64).min(self.size());
        if offset >= end {
            return Ok(0);
        }
        let (first, last) = (offset / RAW as u64, (end - 1) / RAW as u64);
        let count = (last - first + 1) as usize;
        let mut data = vec![0u8; count * COOKED];
        self.cooked
            .read_exact_at(first * COOKED as u64, &mut data)?;
        let mut raw = vec![0u8; count * RAW];
        raw.par_chunks_mut(RAW)
            .zip(data.par_chunks(COOKED))
            .enumerate()
            .for_each(|(i, (sector, data))| {
                let sector: &mut [u8; RAW] = sector.try_into().expect("whole sectors");
                encode_mode1(self.address + first + i as u64, data, sector);
            });
        let from = (offset - first * RAW as u64) as usize;
        let n = (end - offset) as usize;
        buf[..n].copy_from_slice(&raw[from..from + n]);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.cooked.size() / COOKED as u64 * RAW as u64
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
}
