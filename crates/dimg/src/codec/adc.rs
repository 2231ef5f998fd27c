//! Apple Data Compression: a byte-oriented LZ77 with a 64 KiB window (UDCO images).
//! Control byte `b`: high bit set → a literal run of (b & 0x7f) + 1 bytes; else bit 6 set → a
//! 3-byte match of length (b & 0x3f) + 4 at distance (next two bytes, big-endian) + 1; else a
//! 2-byte match of length (b >> 2) + 3 at distance ((b & 3) << 8 | next) + 1.

pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<(), String> {
    let (mut i, mut o) = (0usize, 0usize);
    let byte = |i: usize| {
        input
            .get(i)
            .copied()
            .ok_or_else(|| format!("ADC stream ends inside a code at byte {i}"))
    };
    while o < out.len() {
        let b = byte(i)?;
        if b & 0x80 != 0 {
            let len = usize::from(b & 0x7f) + 1;
            let src = input.get(i + 1..i + 1 + len).ok_or_else(|| {
                format!("ADC literal run at byte {i} passes the end of the stream")
            })?;
            let dst = out
                .get_mut(o..o + len)
                .ok_or_else(|| format!("ADC literal run at byte {i} overflows the chunk"))?;
            dst.copy_from_slice(src);
            i += 1 + len;
            o += len;
        } else {
            let (len, dist, code) = if b & 0x40 != 0 {
                let d = (usize::from(byte(i + 1)?) << 8) | usize::from(byte(i + 2)?);
                (usize::from(b & 0x3f) + 4, d + 1, 3)
            } else {
                let d = (usize::from(b & 3) << 8) | usize::from(byte(i + 1)?);
                (usize::from(b >> 2) + 3, d + 1, 2)
            };
            if dist > o {
                return Err(format!(
                    "ADC match at byte {i} reaches {dist} bytes back, before the chunk's start"
                ));
            }
            if o + len > out.len() {
                return Err(format!("ADC match at byte {i} overflows the chunk"));
            }
            // Byte by byte: a match may overlap the bytes it produces (run-length style).
            for k in 0..len {
                out[o + k] = out[o + k - dist];
            }
            i += code;
            o += len;
        }
    }
    if i != input.len() {
        return Err(format!(
            "ADC stream has {} bytes left over after the chunk is full",
            input.len() - i
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::decompress;

    #[test]
    fn literals_and_both_match_forms_including_overlap() {
        // "abc" literal; 2-byte code: len 3, dist 3 → "abc"; 3-byte code: len 4, dist 1 → "cccc".
        let input = [0x82, b'a', b'b', b'c', 0x00, 0x02, 0x40, 0x00, 0x00];
        let mut out = [0u8; 10];
        decompress(&input, &mut out).unwrap();
        assert_eq!(&out, b"abcabccccc");
    }

    #[test]
    fn malformed_streams_are_errors_not_panics() {
        let mut out = [0u8; 8];
        assert!(
            decompress(&[0x85, b'a'], &mut out).is_err(),
            "literal past the end"
        );
        assert!(
            decompress(&[0x00, 0x05], &mut out).is_err(),
            "match before the start"
        );
        assert!(
            decompress(&[0x87, 1, 2, 3, 4, 5, 6, 7, 8, 9], &mut out).is_err(),
            "left over"
        );
        assert!(
            decompress(&[0xff; 200], &mut out).is_err(),
            "literal overflows"
        );
        assert!(decompress(&[], &mut out).is_err(), "empty");
    }
}
