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

/// A greedy encoder: at each position the most recent earlier occurrence of the next three
/// bytes (found through a hash table) is extended as far as a code allows; shorter matches are
/// gathered into literal runs of up to 128 bytes.
pub fn compress(input: &[u8]) -> Vec<u8> {
    const WINDOW: usize = 1 << 16;
    const HASH_BITS: u32 = 14;
    let hash = |i: usize| {
        let v = u32::from(input[i]) | u32::from(input[i + 1]) << 8 | u32::from(input[i + 2]) << 16;
        (v.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)) as usize
    };
    let mut heads = vec![usize::MAX; 1 << HASH_BITS];
    let mut out = Vec::with_capacity(input.len() / 2 + input.len() / 128 + 1);
    let mut literals = 0usize; // pending literal bytes ending at i
    let flush = |out: &mut Vec<u8>, end: usize, count: &mut usize| {
        let mut start = end - *count;
        while start < end {
            let n = (end - start).min(128);
            out.push(0x80 | (n - 1) as u8);
            out.extend_from_slice(&input[start..start + n]);
            start += n;
        }
        *count = 0;
    };
    let mut i = 0;
    while i < input.len() {
        let mut best = (0usize, 0usize); // (length, distance)
        if i + 3 <= input.len() {
            let h = hash(i);
            let candidate = heads[h];
            heads[h] = i;
            if candidate != usize::MAX && i - candidate <= WINDOW {
                let dist = i - candidate;
                let max = if dist <= 1024 {
                    67
                } else {
                    67.min(input.len() - i)
                };
                let len = input[i..]
                    .iter()
                    .zip(&input[candidate..])
                    .take(max.min(input.len() - i))
                    .take_while(|(a, b)| a == b)
                    .count();
                let usable = if dist <= 1024 && len < 4 {
                    len >= 3
                } else {
                    len >= 4
                };
                if usable {
                    best = (len, dist);
                }
            }
        }
        let (len, dist) = best;
        if len == 0 {
            literals += 1;
            i += 1;
            continue;
        }
        flush(&mut out, i, &mut literals);
        let d = dist - 1;
        if len <= 18 && dist <= 1024 {
            out.push((((len - 3) << 2) | (d >> 8)) as u8);
            out.push(d as u8);
        } else {
            out.push(0x40 | (len - 4) as u8);
            out.push((d >> 8) as u8);
            out.push(d as u8);
        }
        // Index the positions the match covers, so later data can refer to them.
        for k in i + 1..(i + len).min(input.len().saturating_sub(2)) {
            heads[hash(k)] = k;
        }
        i += len;
    }
    flush(&mut out, input.len(), &mut literals);
    out
}

#[cfg(test)]
mod tests {
    use super::{compress, decompress};

    #[test]
    fn the_encoder_round_trips_text_zeros_and_noise() {
        let mut data = b"the quick brown fox jumps over the lazy dog; ".repeat(500);
        data.extend(vec![0u8; 70_000]);
        data.extend((0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8));
        data.extend(b"abcabcabcabd");
        let packed = compress(&data);
        assert!(
            packed.len() < data.len() / 4,
            "{} of {}",
            packed.len(),
            data.len()
        );
        let mut out = vec![0u8; data.len()];
        decompress(&packed, &mut out).unwrap();
        assert!(out == data);
        assert!(compress(&[]).is_empty());
        let mut one = [0u8; 1];
        decompress(&compress(b"x"), &mut one).unwrap();
        assert_eq!(&one, b"x");
    }

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
