//! A signed image's embedded code signature, where the koly trailer points (read only): a
//! SuperBlob indexing a CodeDirectory (the hashes of the image, their kind, the identifier and
//! team) and a CMS signature over it.

use crate::bytes::be32;

/// Signatures larger than this are not read (a real one is a few KiB to a few hundred).
const MAX_SIGNATURE: u64 = 16 << 20;

const SUPER_BLOB: u32 = 0xFADE_0CC0;
const CODE_DIRECTORY: u32 = 0xFADE_0C02;
const BLOB_WRAPPER: u32 = 0xFADE_0B01;
/// The SuperBlob's slot of the CMS signature.
const CMS_SLOT: u32 = 0x10000;

/// What the signature says, in a line: the CodeDirectory's hash kind, identifier, team and page
/// count, and the CMS signature's size; or what is wrong with it.
pub fn describe(blob: &[u8]) -> String {
    match parse(blob) {
        Ok(text) => text,
        Err(problem) => format!("{} bytes, not a code signature: {problem}", blob.len()),
    }
}

/// Whether a signature of `length` bytes may be read to describe it.
pub fn readable(length: u64) -> bool {
    length <= MAX_SIGNATURE
}

fn field(blob: &[u8], at: usize) -> Result<u32, String> {
    blob.get(at..at + 4)
        .map(|_| be32(blob, at))
        .ok_or_else(|| format!("ends before byte {}", at + 4))
}

/// A NUL-terminated string at `at`.
fn string_at(blob: &[u8], at: usize) -> Result<String, String> {
    let rest = blob.get(at..).ok_or("a string lies outside it")?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or("a string has no end")?;
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

fn parse(blob: &[u8]) -> Result<String, String> {
    if field(blob, 0)? != SUPER_BLOB {
        return Err("no SuperBlob".into());
    }
    let count = field(blob, 8)? as usize;
    let mut about = Vec::new();
    let mut cms = None;
    for i in 0..count.min(blob.len() / 8) {
        let (slot, offset) = (field(blob, 12 + 8 * i)?, field(blob, 16 + 8 * i)? as usize);
        let inner = blob.get(offset..).ok_or("a slot points outside it")?;
        match (slot, field(inner, 0)?) {
            (0, CODE_DIRECTORY) => about.push(code_directory(inner)?),
            (CMS_SLOT, BLOB_WRAPPER) => cms = Some(field(inner, 4)?.saturating_sub(8)),
            _ => {}
        }
    }
    if about.is_empty() {
        return Err("no CodeDirectory".into());
    }
    about.push(match cms {
        Some(0) | None => "no CMS signature (ad hoc)".into(),
        Some(n) => format!("CMS signature of {n} bytes"),
    });
    Ok(about.join(", "))
}

fn code_directory(cd: &[u8]) -> Result<String, String> {
    let version = field(cd, 8)?;
    let identifier = string_at(cd, field(cd, 20)? as usize)?;
    let pages = field(cd, 28)?;
    let hash = match cd.get(37).ok_or("the CodeDirectory ends early")? {
        1 => "SHA-1",
        2 => "SHA-256",
        3 => "SHA-256 (truncated)",
        4 => "SHA-384",
        _ => "unknown hash",
    };
    let team = match version >= 0x20200 {
        true => match field(cd, 48)? as usize {
            0 => None,
            at => Some(string_at(cd, at)?),
        },
        false => None,
    };
    Ok(format!(
        "CodeDirectory {hash}, identifier “{identifier}”{}, {pages} pages",
        team.map(|t| format!(", team {t}")).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SuperBlob of a CodeDirectory (version 2.2, `hash_type`, team "TEAM123") and a CMS
    /// wrapper of `cms` bytes, laid out as the format says.
    fn signature(hash_type: u8, cms: usize) -> Vec<u8> {
        let mut cd = vec![0u8; 64];
        cd[0..4].copy_from_slice(&CODE_DIRECTORY.to_be_bytes());
        cd[8..12].copy_from_slice(&0x20200u32.to_be_bytes());
        cd[20..24].copy_from_slice(&64u32.to_be_bytes());
        cd[28..32].copy_from_slice(&3u32.to_be_bytes());
        cd[37] = hash_type;
        cd.extend_from_slice(b"com.example.tool\0");
        let team = cd.len() as u32;
        cd[48..52].copy_from_slice(&team.to_be_bytes());
        cd.extend_from_slice(b"TEAM123\0");
        let len = cd.len() as u32;
        cd[4..8].copy_from_slice(&len.to_be_bytes());
        let mut wrapper = BLOB_WRAPPER.to_be_bytes().to_vec();
        wrapper.extend_from_slice(&(8 + cms as u32).to_be_bytes());
        wrapper.extend(std::iter::repeat_n(0x30, cms));
        let mut blob = SUPER_BLOB.to_be_bytes().to_vec();
        let first = 12 + 16;
        blob.extend_from_slice(&((first + cd.len() + wrapper.len()) as u32).to_be_bytes());
        blob.extend_from_slice(&2u32.to_be_bytes());
        for (slot, at) in [(0, first), (CMS_SLOT, first + cd.len())] {
            blob.extend_from_slice(&slot.to_be_bytes());
            blob.extend_from_slice(&(at as u32).to_be_bytes());
        }
        blob.extend(cd);
        blob.extend(wrapper);
        blob
    }

    #[test]
    fn a_signature_names_its_hash_identifier_team_and_cms() {
        assert_eq!(
            describe(&signature(2, 4000)),
            "CodeDirectory SHA-256, identifier “com.example.tool”, team TEAM123, 3 pages, \
             CMS signature of 4000 bytes"
        );
        assert!(describe(&signature(1, 0)).ends_with("no CMS signature (ad hoc)"));
    }

    #[test]
    fn a_truncated_or_foreign_blob_is_described_not_trusted() {
        let whole = signature(2, 100);
        for cut in [0, 3, 11, 30, 60, 90] {
            assert!(
                describe(&whole[..cut]).contains("not a code signature"),
                "{cut}"
            );
        }
        assert!(describe(b"not a superblob at all").contains("no SuperBlob"));
    }
}
