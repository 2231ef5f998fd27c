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
