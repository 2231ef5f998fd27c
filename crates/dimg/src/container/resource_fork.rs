//! Classic Mac resource forks (Inside Macintosh: More Macintosh Toolbox, "Resource Manager"): a
//! 16-byte header (data offset, map offset, data length, map length), a map listing the types
//! and each one's references (ID, name, data offset), and a data area of length-prefixed blobs.
//! Old UDIF images keep their block tables in one; NDIF images their block maps.

use crate::bytes::be32;
use crate::error::FormatError;
use std::io;

/// Resources a fork may list: far more than any Mac file has.
const MAX_RESOURCES: usize = 16_384;

/// One resource: its type, ID, name and bytes.
pub struct Resource {
    pub kind: [u8; 4],
    pub id: i16,
    pub name: String,
    pub data: Vec<u8>,
}

/// Every resource of `fork`; `offset` (where the fork lies in its file) and `what` name it in
/// errors. Every reference is checked against the fork, which bounds every allocation.
pub fn parse(fork: &[u8], offset: u64, what: &'static str) -> io::Result<Vec<Resource>> {
    let bad = |at: usize, p: &str| FormatError::io(what, offset + at as u64, p.to_string());
    let get = |at: usize, len: usize| {
        at.checked_add(len)
            .and_then(|end| fork.get(at..end))
            .ok_or_else(|| bad(at, "reference points past the fork's end"))
    };
    let u16_at = |at: usize| get(at, 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let u32_at = |at: usize| get(at, 4).map(|b| be32(b, 0) as usize);
    let data_area = u32_at(0)?;
    let map = u32_at(4)?;
    let type_list = map + u16_at(map + 24)?;
    let name_list = map + u16_at(map + 26)?;
    let type_count = (u16_at(type_list)? + 1) & 0xFFFF;
    let mut out = Vec::new();
    // References may share one blob: the copies together are held to the fork's own size.
    let mut copied = 0usize;
    for t in 0..type_count {
        let entry = type_list + 2 + t * 8;
        let kind: [u8; 4] = get(entry, 4)?.try_into().expect("4 bytes");
        let count = u16_at(entry + 4)? + 1;
        let refs = type_list + u16_at(entry + 6)?;
        for r in 0..count {
            let reference = refs + r * 12;
            let id = i16::from_be_bytes(get(reference, 2)?.try_into().expect("2 bytes"));
            let name_offset = u16_at(reference + 2)?;
            let data_offset = u32_at(reference + 4)? & 0x00FF_FFFF;
            let name = if name_offset == 0xFFFF {
                String::new()
            } else {
                let at = name_list + name_offset;
                let len = usize::from(get(at, 1)?[0]);
                crate::bytes::mac_roman(get(at + 1, len)?)
            };
            let at = data_area + data_offset;
            let len = u32_at(at)?;
            copied += len;
            if copied > fork.len() || out.len() == MAX_RESOURCES {
                return Err(bad(reference, "more resources than the fork holds"));
            }
            out.push(Resource {
                kind,
                id,
                name,
                data: get(at + 4, len)?.to_vec(),
            });
        }
    }
    Ok(out)
}

/// Each type present and how many of it, in order, for `info` ("blkx", "plst", "cSum" ...).
pub fn kinds(resources: &[Resource]) -> Vec<(String, usize)> {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for r in resources {
        let kind = crate::bytes::mac_roman(&r.kind);
        match kinds.last_mut() {
            Some((k, n)) if *k == kind => *n += 1,
            _ => kinds.push((kind, 1)),
        }
    }
    kinds
}
