//! Where the block tables live: the XML property list ("resource-fork" dictionary), or in old
//! images only a classic binary resource fork. Both yield the `blkx` resources in order.

use super::koly::Koly;
use crate::bytes::be32;
use crate::error::FormatError;
use crate::io::ReadAt;
use std::io;

/// One `blkx` resource: a partition's block table and its name.
pub struct Blkx {
    pub id: i64,
    pub name: String,
    pub data: Vec<u8>,
}

pub struct Resources {
    pub blkx: Vec<Blkx>,
    /// Every resource type present and how many of it, for `info` (blkx, plst, cSum, nsiz ...).
    pub kinds: Vec<(String, usize)>,
    /// Which of the two places they were read from.
    pub source: &'static str,
}

/// Property lists and resource forks larger than this are refused rather than read into memory
/// (qemu allows 16 MiB; a 1 TB UDZO image's plist is ~50 MiB of base64).
const MAX_METADATA: u64 = 256 << 20;

pub fn read(file: &dyn ReadAt, koly: &Koly) -> io::Result<Resources> {
    if koly.xml_length > 0 {
        let xml = read_region(file, koly.xml_offset, koly.xml_length, "UDIF property list")?;
        from_xml(&xml, koly.xml_offset)
    } else {
        let fork = read_region(
            file,
            koly.rsrc_fork_offset,
            koly.rsrc_fork_length,
            "UDIF resource fork",
        )?;
        from_resource_fork(&fork, koly.rsrc_fork_offset)
    }
}

fn read_region(
    file: &dyn ReadAt,
    offset: u64,
    len: u64,
    what: &'static str,
) -> io::Result<Vec<u8>> {
    if len > MAX_METADATA {
        return Err(FormatError::io(
            what,
            offset,
            format!("{len} bytes is more than the {MAX_METADATA} dimg accepts"),
        ));
    }
    let mut buf = vec![0; len as usize];
    file.read_exact_at(offset, &mut buf)?;
    Ok(buf)
}

fn from_xml(xml: &[u8], offset: u64) -> io::Result<Resources> {
    const S: &str = "UDIF property list";
    let bad = |p: String| FormatError::io(S, offset, p);
    let root = plist::Value::from_reader_xml(xml)
        .map_err(|e| bad(format!("not a valid XML property list ({e})")))?;
    let fork = root
        .as_dictionary()
        .and_then(|d| d.get("resource-fork"))
        .and_then(|v| v.as_dictionary())
        .ok_or_else(|| bad("no 'resource-fork' dictionary".into()))?;
    let mut kinds = Vec::new();
    let mut blkx = Vec::new();
    for (kind, entries) in fork {
        let entries = entries
            .as_array()
            .ok_or_else(|| bad(format!("'{kind}' is not an array")))?;
        kinds.push((kind.clone(), entries.len()));
        if kind != "blkx" {
            continue;
        }
        for (n, entry) in entries.iter().enumerate() {
            let d = entry
                .as_dictionary()
                .ok_or_else(|| bad(format!("blkx entry {n} is not a dictionary")))?;
            let data = d
                .get("Data")
                .and_then(|v| v.as_data())
                .ok_or_else(|| bad(format!("blkx entry {n} has no Data")))?;
            // CFName holds the name as text; a Japanese-locale hdiutil writes Name as its UTF-8
            // read as MacRoman ("ÔºàApple_HFS: 4Ôºâ" for "（Apple_HFS: 4）").
            let name = d
                .get("CFName")
                .or_else(|| d.get("Name"))
                .and_then(|v| v.as_string())
                .unwrap_or("");
            let id = d
                .get("ID")
                .and_then(|v| v.as_string())
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(n as i64);
            blkx.push(Blkx {
                id,
                name: name.to_string(),
                data: data.to_vec(),
            });
        }
    }
    if blkx.is_empty() {
        return Err(bad("no 'blkx' resources: nothing describes the disk".into()));
    }
    Ok(Resources {
        blkx,
        kinds,
        source: "XML property list",
    })
}

/// A classic Mac resource fork: a 16-byte header (data offset, map offset, data length, map
/// length), a map listing types and their references, and a data area of length-prefixed blobs.
fn from_resource_fork(fork: &[u8], offset: u64) -> io::Result<Resources> {
    const S: &str = "UDIF resource fork";
    let bad = |at: usize, p: &str| FormatError::io(S, offset + at as u64, p.to_string());
    let get = |at: usize, len: usize| {
        fork.get(at..at + len)
            .ok_or_else(|| bad(at, "reference points past the fork's end"))
    };
    let u16_at = |at: usize| get(at, 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let u32_at = |at: usize| get(at, 4).map(|b| be32(b, 0) as usize);
    let data_area = u32_at(0)?;
    let map = u32_at(4)?;
    let type_list = map + u16_at(map + 24)?;
    let name_list = map + u16_at(map + 26)?;
    let type_count = (u16_at(type_list)? + 1) & 0xFFFF;
    let mut kinds = Vec::new();
    let mut blkx = Vec::new();
    for t in 0..type_count {
        let entry = type_list + 2 + t * 8;
        let kind = String::from_utf8_lossy(get(entry, 4)?).into_owned();
        let count = u16_at(entry + 4)? + 1;
        let refs = type_list + u16_at(entry + 6)?;
        kinds.push((kind.clone(), count));
        if kind != "blkx" {
            continue;
        }
        for r in 0..count {
            let reference = refs + r * 12;
            let id = i64::from(i16::from_be_bytes(
                get(reference, 2)?.try_into().expect("2 bytes"),
            ));
            let name_offset = u16_at(reference + 2)?;
            let data_offset = u32_at(reference + 4)? & 0x00FF_FFFF;
            let name = if name_offset == 0xFFFF {
                String::new()
            } else {
                let at = name_list + name_offset;
                let len = usize::from(get(at, 1)?[0]);
                String::from_utf8_lossy(get(at + 1, len)?).into_owned()
            };
            let at = data_area + data_offset;
            let len = u32_at(at)?;
            blkx.push(Blkx {
                id,
                name,
                data: get(at + 4, len)?.to_vec(),
            });
        }
    }
    if blkx.is_empty() {
        return Err(bad(0, "no 'blkx' resources: nothing describes the disk"));
    }
    Ok(Resources {
        blkx,
        kinds,
        source: "binary resource fork",
    })
}
