//! LZVN, Apple's small-window LZ77 (HFS+ and APFS compressed files, types 7 and 8; the "bvxn"
//! blocks of LZFSE). Each instruction is an opcode byte, maybe a few operand bytes, then up to a
//! few literals, then a match copied from `distance` bytes back; a match may reuse the previous
//! distance. The stream ends with the end-of-stream opcode 0x06.
//!
//! Opcodes by their bit patterns (L: literal count, M: match length, D: distance):
//! - `LLMMMDDD dddddddd` small distance: L, M+3, D (11 bits)
//! - `LLMMM111 dddddddd dddddddd` large distance: L, M+3, D (16 bits, little-endian)
//! - `LLMMM110` previous distance (from 0x40 on; below it: 0x06 end, 0x0E/0x16 nop, the rest undefined)
//! - `101LLMMM` + 16 bits `DDDDDDDDDDDDDDmm` medium distance: L, (MMMmm)+3, D (14 bits)
//! - `1110LLLL` literals only (`11100000 llllllll`: 16 + l), `1111MMMM` match at the previous
//!   distance (`11110000 mmmmmmmm`: 16 + m); 0x70–0x7F are undefined.

/// Decodes `input` into exactly `out.len()` bytes. Output past that is not written: the decoder
/// stops once `out` is full, as Apple's does.
pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<(), String> {
    let byte = |at: usize| {
        input
            .get(at)
            .map(|&b| usize::from(b))
            .ok_or_else(|| format!("the stream ends inside the instruction at byte {at}"))
    };
    let (mut i, mut o, mut previous) = (0usize, 0usize, 0usize);
    while o < out.len() {
        let op = byte(i)?;
        let (literals, length, distance, size) = match op {
            0x06 => break,
            0x0E | 0x16 => (0, 0, previous, 1),
            0x70..=0x7F => return Err(format!("undefined opcode {op:#04x} at byte {i}")),
            0xA0..=0xBF => {
                let word = byte(i + 1)? | byte(i + 2)? << 8;
                let length = ((op & 7) << 2 | word & 3) + 3;
                ((op >> 3) & 3, length, word >> 2, 3)
            }
            0xE0 => (byte(i + 1)? + 16, 0, previous, 2),
            0xE1..=0xEF => (op & 0x0F, 0, previous, 1),
            0xF0 => (0, byte(i + 1)? + 16, previous, 2),
            0xF1..=0xFF => (0, op & 0x0F, previous, 1),
            _ if op & 7 == 6 && op < 0x40 => {
                return Err(format!("undefined opcode {op:#04x} at byte {i}"))
            }
            _ if op & 7 == 6 => (op >> 6, ((op >> 3) & 7) + 3, previous, 1),
            _ if op & 7 == 7 => {
                let distance = byte(i + 1)? | byte(i + 2)? << 8;
                (op >> 6, ((op >> 3) & 7) + 3, distance, 3)
            }
            _ => {
                let distance = (op & 7) << 8 | byte(i + 1)?;
                (op >> 6, ((op >> 3) & 7) + 3, distance, 2)
            }
        };
        i += size;
        let from = input
            .get(i..i + literals)
            .ok_or_else(|| format!("{literals} literals at byte {i} run past the stream"))?;
        let n = literals.min(out.len() - o);
        out[o..o + n].copy_from_slice(&from[..n]);
        (i, o) = (i + literals, o + n);
        if length > 0 {
            if distance == 0 || distance > o {
                return Err(format!(
                    "a match reaches {distance} bytes back from byte {o} of the output"
                ));
            }
            // Byte by byte: a match may overlap what it is writing (a run).
            for _ in 0..length.min(out.len() - o) {
                out[o] = out[o - distance];
                o += 1;
            }
            previous = distance;
        }
    }
    match o == out.len() {
        true => Ok(()),
        false => Err(format!("the stream ends after {o} of {} bytes", out.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::decompress;

    fn decode(input: &[u8], len: usize) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; len];
        decompress(input, &mut out).map(|()| out)
    }

    #[test]
    // The bits are grouped as the opcode's fields, not in nibbles.
    #[allow(clippy::unusual_byte_groupings)]
    fn every_instruction_kind_decodes() {
        let mut s = vec![0xE3, b'a', b'b', b'c']; // 3 literals: "abc"
        s.extend([0b01_000_000, 3, b'd']); // small distance: "d", then 3 from 3 back: "bcd"
        s.extend([0b01_001_110, b'e']); // previous distance: "e", then 4 from 3 back: "cdec"
        s.extend([0b101_00_000, 0b0000_0101, 0]); // medium: 4 from 1 back: "cccc"
        s.extend([0b00_000_111, 2, 0]); // large distance: 3 from 2 back: "ccc"
        s.extend([0xE0, 0]); // 16 + 0 literals
        s.extend([b'x'; 16]);
        s.extend([0xF0, 0]); // 16 + 0 at the previous distance
        s.extend([0x0E, 0x06, 0, 0, 0, 0, 0, 0, 0]); // nop, end, padding
        let mut want = b"abcdbcdecdecccccccc".to_vec();
        want.extend([b'x'; 32]);
        assert_eq!(decode(&s, want.len()).unwrap(), want);
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        assert!(decode(&[0x70], 4).is_err()); // undefined
        assert!(decode(&[0x1E], 4).is_err()); // undefined
        assert!(decode(&[0b00_000_000, 5], 8).is_err()); // a match before any output
        assert!(decode(&[0xE5, b'a'], 5).is_err()); // literals past the end
        assert!(decode(&[0xE1, b'a', 0x06], 5).is_err()); // ends early
        assert!(decode(&[0xE0], 40).is_err()); // operand missing
                                               // Output never overruns: a long match stops where the output ends.
        assert_eq!(
            decode(&[0xE1, b'z', 0x00, 1, 0xF0, 200, 0x06], 10).unwrap(),
            vec![b'z'; 10]
        );
        for seed in 0..2000u32 {
            let noise: Vec<u8> = (0..64)
                .map(|k| (seed.wrapping_mul(2_654_435_761) >> (k % 24)) as u8 ^ k as u8)
                .collect();
            let _ = decode(&noise, 256);
        }
    }
}
