//! AES-XTS-128 over 512-byte units (IEEE 1619), as APFS encrypts a volume's blocks and its
//! keybags: kept apart from the keybags (crypto.rs) so that reading blocks (block.rs) needs
//! only this. An APFS block's eight units have their tweaks worked out first and then all 256
//! AES blocks go through the cipher in one call, which AES-NI pipelines; a long run is shared
//! among the cores. One block at a time (as the `xts-mode` crate goes) made unlocking cost
//! nearly half again the time of reading a volume.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes128;

/// Bytes of an XTS data unit as APFS uses it.
const UNIT: usize = 512;
const BLOCKS: usize = UNIT / 16;
/// Units worked at once: an APFS block's eight.
const BATCH: usize = 8;
/// Bytes from which a run is decrypted on every core: below it, starting threads costs more.
const PARALLEL_FROM: usize = 256 << 10;

/// An AES-XTS-128 key (two AES-128 keys) that decrypts 512-byte units in place; its key
/// schedules are wiped when it is dropped.
pub(super) struct XtsKey {
    data: Aes128,
    tweak: Aes128,
}

impl XtsKey {
    /// From 32 bytes: the data key, then the tweak key.
    pub(super) fn new(key: &[u8; 32]) -> XtsKey {
        XtsKey {
            data: Aes128::new_from_slice(&key[..16]).expect("16 bytes"),
            tweak: Aes128::new_from_slice(&key[16..]).expect("16 bytes"),
        }
    }

    /// Encrypts `buf` (whole 512-byte units) as [`XtsKey::decrypt`] decrypts it.
    pub(super) fn encrypt(&self, buf: &mut [u8], sector: u64) {
        self.area(buf, sector, |blocks| self.data.encrypt_blocks(blocks));
    }

    /// Decrypts `buf` (whole 512-byte units) whose first unit has tweak `sector`.
    pub fn decrypt(&self, buf: &mut [u8], sector: u64) {
        self.area(buf, sector, |blocks| self.data.decrypt_blocks(blocks));
    }

    /// Each unit of `buf` through `cipher`, its tweak `sector` counted on from the first; a
    /// long run shared among the machine's cores.
    fn area(&self, buf: &mut [u8], sector: u64, cipher: impl Fn(&mut [aes::Block]) + Sync) {
        debug_assert_eq!(buf.len() % UNIT, 0);
        // Asked once: the standard library reads the cgroup's files each time.
        static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let cores =
            *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if buf.len() < PARALLEL_FROM || cores == 1 {
            return self.run(buf, u128::from(sector), &cipher);
        }
        let share = (buf.len() / cores).next_multiple_of(UNIT * BATCH);
        std::thread::scope(|scope| {
            for (n, part) in (0u128..).zip(buf.chunks_mut(share)) {
                let first = u128::from(sector) + n * (share / UNIT) as u128;
                let cipher = &cipher;
                scope.spawn(move || self.run(part, first, cipher));
            }
        });
    }

    /// `area`'s work on one core.
    fn run(&self, buf: &mut [u8], sector: u128, cipher: &impl Fn(&mut [aes::Block])) {
        for (n, units) in (0u128..).zip(buf.chunks_mut(UNIT * BATCH)) {
            self.units(units, sector + n * BATCH as u128, cipher);
        }
    }

    /// Up to [`BATCH`] data units (16-byte blocks, no ciphertext stealing: APFS needs none),
    /// the first of which has unit number `sector`: each block XORed with its tweak on both
    /// sides of `cipher`, every tweak and then every block through AES in one call.
    fn units(&self, units: &mut [u8], sector: u128, cipher: &impl Fn(&mut [aes::Block])) {
        debug_assert!(units.len().is_multiple_of(16) && units.len() <= UNIT * BATCH);
        let count = units.len().div_ceil(UNIT);
        let mut firsts = [aes::Block::default(); BATCH];
        for (n, first) in (0u128..).zip(&mut firsts[..count]) {
            *first = (sector + n).to_le_bytes().into();
        }
        self.tweak.encrypt_blocks(&mut firsts[..count]);
        // Each block's tweak: its unit's first, times α in GF(2^128) once for each block
        // before it in the unit, the bytes little-endian (IEEE 1619 §5.2).
        let mut tweaks = [0u128; BLOCKS * BATCH];
        let mut blocks = [aes::Block::default(); BLOCKS * BATCH];
        let mut t = 0u128;
        for (i, ((bytes, block), tweak)) in units
            .chunks_exact(16)
            .zip(&mut blocks)
            .zip(&mut tweaks)
            .enumerate()
        {
            t = match i % BLOCKS {
                0 => u128::from_le_bytes(firsts[i / BLOCKS].into()),
                _ => (t << 1) ^ if t >> 127 == 1 { 0x87 } else { 0 },
            };
            *tweak = t;
            let x = u128::from_le_bytes(bytes.try_into().expect("16 bytes")) ^ t;
            *block = x.to_le_bytes().into();
        }
        cipher(&mut blocks[..units.len() / 16]);
        for ((block, bytes), t) in blocks.iter().zip(units.chunks_exact_mut(16)).zip(&tweaks) {
            let x = u128::from_le_bytes((*block).into()) ^ t;
            bytes.copy_from_slice(&x.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn xts_is_ieee_1619_with_the_data_key_first_and_units_taking_consecutive_tweaks() {
        // IEEE P1619 XTS-AES-128 vector 2: data key 11…, tweak key 22…, tweak 0x3333333333.
        let key: Vec<u8> = [[0x11u8; 16], [0x22; 16]].concat();
        let xts = XtsKey::new(&key.try_into().unwrap());
        let cipher = hex("c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0");
        let mut unit = cipher.clone();
        xts.units(&mut unit, 0x33_3333_3333, &|b| xts.data.decrypt_blocks(b));
        assert_eq!(unit, [0x44; 32]);
        xts.units(&mut unit, 0x33_3333_3333, &|b| xts.data.encrypt_blocks(b));
        assert_eq!(unit, cipher);
        // A run of 512-byte units (more than a batch, and long enough to be shared among
        // cores) decrypts as each unit alone with the tweak counted on.
        let source: Vec<u8> = (0..PARALLEL_FROM as u32 + 9 * 512)
            .map(|i| (i * 7) as u8)
            .collect();
        let mut whole = source.clone();
        xts.decrypt(&mut whole, 40);
        let mut alone = source.clone();
        for (n, unit) in (40..).zip(alone.chunks_mut(512)) {
            xts.decrypt(unit, n);
        }
        assert_eq!(whole, alone);
        xts.encrypt(&mut whole, 40);
        assert_eq!(whole, source);
    }

    #[test]
    fn a_whole_unit_matches_ieee_1619_vector_4() {
        // IEEE P1619 vector 4: keys 2718…/3141…, data unit 0, 512 bytes 00 01 … ff 00 … ff;
        // its ciphertext's first and last 16 bytes (OpenSSL agrees).
        let key = hex("2718281828459045235360287471352631415926535897932384626433832795");
        let xts = XtsKey::new(&key.try_into().unwrap());
        let mut unit: Vec<u8> = (0..512u32).map(|i| i as u8).collect();
        xts.encrypt(&mut unit, 0);
        assert_eq!(unit[..16], hex("27a7479befa1d476489f308cd4cfa6e2"));
        assert_eq!(unit[496..], hex("0a282df920147beabe421ee5319d0568"));
    }
}
