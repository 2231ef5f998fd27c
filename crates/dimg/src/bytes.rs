//! Fixed-width integers at an offset of an on-disk structure, and MacRoman text. Callers check
//! lengths first; a short slice is a bug in that check, not bad input.

pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

pub fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// UTF-16 big-endian text (HFS+ names, Joliet identifiers); unpaired surrogates become U+FFFD.
pub fn utf16_be(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// UTF-16 little-endian text (exFAT and NTFS names); unpaired surrogates become U+FFFD.
pub fn utf16_le(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// MacRoman's upper half (0x80–0xFF), as Apple maps it since Mac OS 8.5 (0xDB is the euro sign;
/// 0xF0 the Apple logo, in Unicode's private use area as Apple puts it).
const MAC_ROMAN: &str = "ÄÅÇÉÑÖÜáàâäãåçéèêëíìîïñóòôöõúùûü†°¢£§•¶ß®©™´¨≠ÆØ∞±≤≥¥µ∂∑∏π∫ªºΩæø\
¿¡¬√ƒ≈∆«»…\u{a0}ÀÃÕŒœ–—“”‘’÷◊ÿŸ⁄€‹›ﬁﬂ‡·‚„‰ÂÊÁËÈÍÎÏÌÓÔ\u{f8ff}ÒÚÛÙıˆ˜¯˘˙˚¸˝˛ˇ";

/// Text in MacRoman, the encoding of classic Mac names (Apple partition maps, HFS).
pub fn mac_roman(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0..=0x7F => char::from(b),
            _ => MAC_ROMAN
                .chars()
                .nth(usize::from(b - 0x80))
                .unwrap_or('\u{fffd}'),
        })
        .collect()
}

/// CRC-16/XMODEM (polynomial 0x1021, starting at 0), as MacBinary II and BinHex 4.0 use it.
pub fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) continued from `crc`, with neither
/// the usual inversion on entry nor on exit: ext4 keeps it so, seeded with !0 or another
/// checksum. The standard CRC-32C of `b` is `!crc32c(!0, b)`.
pub fn crc32c(crc: u32, bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    bytes.iter().fold(crc, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

/// A character in MacRoman, for names written to classic Mac structures: ASCII as it is, the
/// rest by MacRoman's table, '?' where it has none.
pub fn to_mac_roman(c: char) -> u8 {
    if c.is_ascii() {
        return c as u8;
    }
    (128..=255u8)
        .find(|&b| mac_roman(&[b]).starts_with(c))
        .unwrap_or(b'?')
}

/// Seeds a reproducible image's identifiers: a digest of what it holds.
pub type Seed = [u8; 32];

/// A version 4 UUID (RFC 4122 bits, in the byte order it is stored in): random, or for a
/// reproducible image derived from its `seed` and what it identifies (`what`), so that the same
/// contents give the same identifiers.
pub fn uuid(seed: Option<&Seed>, what: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut id = [0u8; 16];
    match seed {
        Some(seed) => id.copy_from_slice(
            &Sha256::new()
                .chain_update(seed)
                .chain_update(what)
                .finalize()[..16],
        ),
        None => getrandom::fill(&mut id).expect("the system's random source"),
    }
    id[6] = (id[6] & 0x0F) | 0x40;
    id[8] = (id[8] & 0x3F) | 0x80;
    id
}

/// A GUID constant's text in the byte order GPT and VHDX store it: the first three fields
/// little-endian, the rest as written.
pub fn guid_bytes(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("a GUID constant");
    }
    b[..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

/// A 16-byte identifier in the usual 8-4-4-4-12 form.
pub fn uuid_text(id: &[u8; 16]) -> String {
    let h = hex(id);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Lower-case hexadecimal, for digests.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest that hashes as it is fed.
pub type Hasher = Box<dyn sha2::digest::DynDigest + Send>;

/// A hasher for a digest named as XAR archives and `hdiutil checksum` name them ("sha1", "MD5",
/// "SHA256"...); `None` for a name dimg does not know.
pub fn hasher(name: &str) -> Option<Hasher> {
    use sha2::Digest;
    Some(match name.to_ascii_lowercase().replace('-', "").as_str() {
        "md5" => Box::new(md5::Md5::new()),
        "sha1" => Box::new(sha1::Sha1::new()),
        "sha224" => Box::new(sha2::Sha224::new()),
        "sha256" => Box::new(sha2::Sha256::new()),
        "sha384" => Box::new(sha2::Sha384::new()),
        "sha512" => Box::new(sha2::Sha512::new()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32c_gives_the_standard_check_value() {
        assert_eq!(!super::crc32c(!0, b"123456789"), 0xE306_9283);
    }

    #[test]
    fn mac_roman_has_every_upper_character_once() {
        assert_eq!(super::MAC_ROMAN.chars().count(), 128);
        assert_eq!(
            super::mac_roman(b"Disk \x80\xA5\xDB\xF0\xFF"),
            "Disk Ä•€\u{f8ff}ˇ"
        );
    }
}
