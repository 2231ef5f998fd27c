//! BinHex 4.0 (`.hqx`): after its notice line, text between two colons, six bits per
//! character, run-length coded with 0x90; inside, a header (name, type, creator, fork lengths),
//! the data fork and the resource fork, each followed by its CRC-16. Decoded whole: the text is
//! larger than what it holds, so a size cap bounds it.

use super::MacFile;
use crate::bytes::{be16, be32, crc16_xmodem, mac_roman};
use crate::error::FormatError;
use crate::io::ReadAt;
use crate::magic::BINHEX_NOTICE;
use std::io;
use std::sync::Arc;

const ALPHABET: &[u8; 64] = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr";
/// Bytes a BinHex file may expand to: old Mac files are small; this is a floppy many times over.
const MAX_DECODED: usize = 256 << 20;
/// Text read at most: enough for `MAX_DECODED` at BinHex's 4:3 expansion.
const MAX_TEXT: u64 = (MAX_DECODED as u64) * 4 / 3 + (1 << 20);

fn bad(problem: impl Into<String>) -> io::Error {
    FormatError::io("BinHex 4.0", 0, problem)
}

pub(super) fn open(source: &dyn ReadAt) -> io::Result<MacFile> {
    if source.size() > MAX_TEXT {
        return Err(bad(format!(
            "{} bytes of text: more than dimg decodes",
            source.size()
        )));
    }
    let mut text = vec![0u8; source.size() as usize];
    source.read_exact_at(0, &mut text)?;
    let bytes = decode(&text)?;
    // Header: name (Pascal string), version, type, creator, flags, data and resource lengths, CRC.
    let n = usize::from(*bytes.first().ok_or_else(|| bad("no header"))?);
    let header_len = 1 + n + 1 + 4 + 4 + 2 + 4 + 4;
    let header = bytes
        .get(..header_len + 2)
        .ok_or_else(|| bad("the header is cut short"))?;
    check(&header[..header_len], be16(header, header_len), "header")?;
    let at = 1 + n + 1;
    let (data, resource) = (
        be32(header, at + 10) as usize,
        be32(header, at + 14) as usize,
    );
    let data_at = header_len + 2;
    let resource_at = data_at + data + 2;
    if resource_at + resource + 2 > bytes.len() {
        return Err(bad(format!(
            "forks of {data} and {resource} bytes do not fit in the {} decoded",
            bytes.len()
        )));
    }
    check(
        &bytes[data_at..data_at + data],
        be16(&bytes, data_at + data),
        "data fork",
    )?;
    let r = &bytes[resource_at..resource_at + resource];
    check(r, be16(&bytes, resource_at + resource), "resource fork")?;
    Ok(MacFile {
        wrapper: "BinHex 4.0",
        name: mac_roman(&header[1..1 + n]),
        file_type: header[at..at + 4].try_into().expect("4 bytes"),
        creator: header[at + 4..at + 8].try_into().expect("4 bytes"),
        resource: Arc::new(r.to_vec()),
        data: Arc::new(bytes[data_at..data_at + data].to_vec()),
    })
}

fn check(bytes: &[u8], stored: u16, what: &str) -> io::Result<()> {
    match crc16_xmodem(bytes) == stored {
        true => Ok(()),
        false => Err(bad(format!("the {what} fails its CRC"))),
    }
}

/// The bytes between the colons after the notice: six bits a character, then run-length coded.
fn decode(text: &[u8]) -> io::Result<Vec<u8>> {
    let notice = text
        .windows(BINHEX_NOTICE.len())
        .position(|w| w == BINHEX_NOTICE)
        .ok_or_else(|| bad("no BinHex notice"))?;
    let start = notice
        + text[notice..]
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| bad("no ':' starts the data"))?
        + 1;
    let mut value = [0xFFu8; 256];
    for (i, &c) in ALPHABET.iter().enumerate() {
        value[usize::from(c)] = i as u8;
    }
    let mut packed = Vec::new();
    let (mut bits, mut count) = (0u32, 0);
    let mut ended = false;
    for &c in &text[start..] {
        match c {
            b':' => {
                ended = true;
                break;
            }
            b'\r' | b'\n' | b' ' | b'\t' => continue,
            _ => {}
        }
        let v = value[usize::from(c)];
        if v == 0xFF {
            return Err(bad(format!("the character {:?} is not BinHex", c as char)));
        }
        bits = bits << 6 | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            packed.push((bits >> count) as u8);
        }
    }
    if !ended {
        return Err(bad("the data has no closing ':'"));
    }
    // 0x90 n: the previous byte n-1 more times (n = 0: a 0x90 itself).
    let mut out: Vec<u8> = Vec::with_capacity(packed.len());
    let mut i = 0;
    while i < packed.len() {
        let b = packed[i];
        if b == 0x90 && i + 1 < packed.len() {
            let n = packed[i + 1];
            i += 2;
            match (n, out.last().copied()) {
                (0, _) => out.push(0x90),
                (n, Some(prev)) => out.extend(std::iter::repeat_n(prev, usize::from(n) - 1)),
                (_, None) => return Err(bad("a run with no byte to repeat")),
            }
        } else {
            out.push(b);
            i += 1;
        }
        if out.len() > MAX_DECODED {
            return Err(bad(format!("decodes to more than {MAX_DECODED} bytes")));
        }
    }
    Ok(out)
}
