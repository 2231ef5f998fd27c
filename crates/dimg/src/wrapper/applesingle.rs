//! AppleSingle (RFC 1740): a magic number, a version, then a table of entries — ID, offset and
//! length — for the data fork (1), the resource fork (2), the real name (3) and the Finder info
//! (9, whose first eight bytes are the type and creator).

use super::MacFile;
use crate::bytes::{be16, be32, mac_roman};
use crate::error::FormatError;
use crate::io::{ReadAt, Slice};
use std::io;
use std::sync::Arc;

/// Entries a file can list: the RFC defines 15 kinds; more is damage.
const MAX_ENTRIES: usize = 64;

fn bad(at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io("AppleSingle header", at, problem)
}

/// AppleDouble's magic number (AppleSingle's is 0x00051600), and the version both write.
pub(super) const APPLE_DOUBLE: u32 = 0x0005_1607;
const VERSION_2: u32 = 0x0002_0000;

/// Writes `resource` as an AppleDouble file (RFC 1740) holding it alone: the header, one entry
/// (2, the resource fork), then the fork, streamed.
pub(super) fn write_apple_double(out: &mut dyn io::Write, resource: &dyn ReadAt) -> io::Result<()> {
    const HEADER: u32 = 26 + 12;
    let len = u32::try_from(resource.size())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a fork of 4 GiB or more"))?;
    let mut head = Vec::with_capacity(HEADER as usize);
    head.extend_from_slice(&APPLE_DOUBLE.to_be_bytes());
    head.extend_from_slice(&VERSION_2.to_be_bytes());
    head.extend_from_slice(&[0; 16]);
    head.extend_from_slice(&1u16.to_be_bytes());
    for field in [2, HEADER, len] {
        head.extend_from_slice(&field.to_be_bytes());
    }
    out.write_all(&head)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut at = 0;
    while at < resource.size() {
        let n = (resource.size() - at).min(buf.len() as u64) as usize;
        resource.read_exact_at(at, &mut buf[..n])?;
        out.write_all(&buf[..n])?;
        at += n as u64;
    }
    out.flush()
}

pub(super) fn open(source: &Arc<dyn ReadAt>) -> io::Result<MacFile> {
    let mut head = [0u8; 26];
    source.read_exact_at(0, &mut head)?;
    let count = usize::from(be16(&head, 24));
    if count > MAX_ENTRIES {
        return Err(bad(24, format!("{count} entries")));
    }
    let mut table = vec![0u8; 12 * count];
    source.read_exact_at(26, &mut table)?;
    let empty = || Arc::new(Vec::new()) as Arc<dyn ReadAt>;
    let mut file = MacFile {
        wrapper: "AppleSingle",
        name: String::new(),
        file_type: [0; 4],
        creator: [0; 4],
        data: empty(),
        resource: empty(),
    };
    for (i, e) in table.chunks_exact(12).enumerate() {
        let (id, at, len) = (be32(e, 0), u64::from(be32(e, 4)), u64::from(be32(e, 8)));
        if at + len > source.size() {
            return Err(bad(
                26 + 12 * i as u64,
                format!("entry {id} ({len} bytes at {at}) runs past the end of the file"),
            ));
        }
        let part = || Arc::new(Slice::new(source.clone(), at, len)) as Arc<dyn ReadAt>;
        let small = |max: u64| -> io::Result<Vec<u8>> {
            let mut b = vec![0u8; len.min(max) as usize];
            source.read_exact_at(at, &mut b)?;
            Ok(b)
        };
        match id {
            1 => file.data = part(),
            2 => file.resource = part(),
            3 => file.name = mac_roman(&small(255)?),
            9 if len >= 8 => {
                let info = small(8)?;
                file.file_type = info[..4].try_into().expect("4 bytes");
                file.creator = info[4..8].try_into().expect("4 bytes");
            }
            _ => {}
        }
    }
    Ok(file)
}
