//! AES-XTS-128 over 512-byte units, as APFS encrypts a volume's blocks and its keybags: kept
//! apart from the keybags (crypto.rs) so that reading blocks (block.rs) needs only this.

use aes::cipher::KeyInit;
use aes::Aes128;
use xts_mode::Xts128;

/// An AES-XTS-128 key (two AES-128 keys) that decrypts 512-byte units in place; its key
/// schedules are wiped when it is dropped.
pub(super) struct XtsKey(Xts128<Aes128>);

impl XtsKey {
    /// From 32 bytes: the data key, then the tweak key.
    pub(super) fn new(key: &[u8; 32]) -> XtsKey {
        let data = Aes128::new_from_slice(&key[..16]).expect("16 bytes");
        let tweak = Aes128::new_from_slice(&key[16..]).expect("16 bytes");
        XtsKey(Xts128::new(data, tweak))
    }

    /// Encrypts `buf` (whole 512-byte units) as [`XtsKey::decrypt`] decrypts it.
    pub(super) fn encrypt(&self, buf: &mut [u8], sector: u64) {
        debug_assert_eq!(buf.len() % 512, 0);
        self.0
            .encrypt_area(buf, 512, u128::from(sector), xts_mode::get_tweak_default);
    }

    /// Decrypts `buf` (whole 512-byte units) whose first unit has tweak `sector`.
    pub fn decrypt(&self, buf: &mut [u8], sector: u64) {
        debug_assert_eq!(buf.len() % 512, 0);
        self.0
            .decrypt_area(buf, 512, u128::from(sector), xts_mode::get_tweak_default);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xts_is_ieee_1619_with_the_data_key_first_and_units_taking_consecutive_tweaks() {
        // IEEE P1619 XTS-AES-128 vector 2: data key 11…, tweak key 22…, tweak 0x3333333333.
        let key: Vec<u8> = [[0x11u8; 16], [0x22; 16]].concat();
        let xts = XtsKey::new(&key.try_into().unwrap());
        let cipher = "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0";
        let mut unit: Vec<u8> = (0..cipher.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&cipher[i..i + 2], 16).unwrap())
            .collect();
        xts.0
            .decrypt_sector(&mut unit, xts_mode::get_tweak_default(0x33_3333_3333));
        assert_eq!(unit, [0x44; 32]);
        // A run of 512-byte units decrypts as each unit alone with the tweak counted on.
        let source: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
        let mut whole = source.clone();
        xts.decrypt(&mut whole, 40);
        let mut halves = source.clone();
        xts.decrypt(&mut halves[..512], 40);
        xts.decrypt(&mut halves[512..], 41);
        assert_eq!(whole, halves);
    }
}
