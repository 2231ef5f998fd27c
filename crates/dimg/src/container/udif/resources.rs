//! Where the block tables live: the XML property list ("resource-fork" dictionary), or in old
//! images only a classic binary resource fork. Both yield the `blkx` resources in order.

use super::koly::Koly;
use super::licence::{self, Agreement};
use crate::container::resource_fork;
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
    /// The licence agreement macOS shows before attaching, if the image has one.
    pub agreement: Option<Agreement>,
}

/// The resources a licence agreement is made of, which are kept to read it.
const AGREEMENT_KINDS: [&str; 4] = ["LPic", "STR#", "TEXT", "RTF "];

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
    let mut agreement = Vec::new();
    for (kind, entries) in fork {
        let entries = entries
            .as_array()
            .ok_or_else(|| bad(format!("'{kind}' is not an array")))?;
        kinds.push((kind.clone(), entries.len()));
        if AGREEMENT_KINDS.contains(&kind.as_str()) {
            for entry in entries.iter().filter_map(|e| e.as_dictionary()) {
                let id = entry.get("ID").and_then(|v| v.as_string());
                let data = entry.get("Data").and_then(|v| v.as_data());
                if let (Some(id), Some(data)) = (id.and_then(|i| i.trim().parse().ok()), data) {
                    agreement.push((kind.clone(), id, data.to_vec()));
                }
            }
        }
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
        agreement: licence::read(&agreement),
    })
}

fn from_resource_fork(fork: &[u8], offset: u64) -> io::Result<Resources> {
    let all = resource_fork::parse(fork, offset, "UDIF resource fork")?;
    let kinds = resource_fork::kinds(&all);
    let agreement: Vec<(String, i64, Vec<u8>)> = all
        .iter()
        .filter(|r| AGREEMENT_KINDS.iter().any(|k| k.as_bytes() == r.kind))
        .map(|r| {
            (
                String::from_utf8_lossy(&r.kind).into_owned(),
                i64::from(r.id),
                r.data.clone(),
            )
        })
        .collect();
    let blkx: Vec<Blkx> = all
        .into_iter()
        .filter(|r| &r.kind == b"blkx")
        .map(|r| Blkx {
            id: i64::from(r.id),
            name: r.name,
            data: r.data,
        })
        .collect();
    if blkx.is_empty() {
        return Err(FormatError::io(
            "UDIF resource fork",
            offset,
            "no 'blkx' resources: nothing describes the disk",
        ));
    }
    Ok(Resources {
        blkx,
        kinds,
        source: "binary resource fork",
        agreement: licence::read(&agreement),
    })
}
