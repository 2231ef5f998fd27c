//! NTFS (libyal's "New Technologies File System (NTFS)" documentation, ntfs-3g's layout.h): the
//! boot sector, update-sequence fixups, runlists, LZNT1 and times, which the reader (and any
//! later tool) share.

mod read;

pub use read::Ntfs;

use crate::bytes::{le16, le64};
use crate::error::FormatError;
use crate::io::ReadAt;
use std::io;

const ATTR_STANDARD_INFORMATION: u32 = 0x10;
const ATTR_ATTRIBUTE_LIST: u32 = 0x20;
const ATTR_FILE_NAME: u32 = 0x30;
const ATTR_VOLUME_NAME: u32 = 0x60;
const ATTR_VOLUME_INFORMATION: u32 = 0x70;
const ATTR_DATA: u32 = 0x80;
const ATTR_INDEX_ROOT: u32 = 0x90;
const ATTR_INDEX_ALLOCATION: u32 = 0xA0;
const ATTR_REPARSE_POINT: u32 = 0xC0;
const ATTR_END: u32 = 0xFFFF_FFFF;

const FLAG_COMPRESSED: u16 = 0x0001;
const FLAG_ENCRYPTED: u16 = 0x4000;
const RECORD_IN_USE: u16 = 0x01;
const RECORD_DIRECTORY: u16 = 0x02;
const NAMESPACE_DOS: u8 = 2;

const RECORD_MFT: u64 = 0;
const RECORD_VOLUME: u64 = 3;
const RECORD_ROOT: u64 = 5;
const RECORD_BITMAP: u64 = 6;
const RECORD_UPCASE: u64 = 10;
/// Records below this are the volume's own (metafiles and reserved ones).
const FIRST_USER_RECORD: u64 = 24;

const TAG_SYMLINK: u32 = 0xA000_000C;
const TAG_MOUNT_POINT: u32 = 0xA000_0003;

fn bad(structure: &'static str, at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(structure, at, problem)
}

/// What the boot sector says.
#[derive(Clone, Copy, Debug)]
struct Boot {
    cluster: u64,
    clusters: u64,
    mft: u64,
    record: u64,
}

impl Boot {
    fn read(source: &dyn ReadAt) -> io::Result<Boot> {
        let mut b = [0u8; 512];
        source.read_exact_at(0, &mut b)?;
        let what = "NTFS boot sector";
        if &b[3..11] != b"NTFS    " {
            return Err(bad(what, 3, "no NTFS signature"));
        }
        let sector = u64::from(le16(&b, 11));
        let per_cluster = match b[13] {
            n @ 0..=0x80 => u64::from(n),
            n => 1u64.checked_shl(256 - u32::from(n)).unwrap_or(0),
        };
        let cluster = sector * per_cluster;
        if !(256..=4096).contains(&sector)
            || !sector.is_power_of_two()
            || cluster == 0
            || cluster > 2 << 20
        {
            return Err(bad(
                what,
                11,
                format!("{sector}-byte sectors, {per_cluster} a cluster"),
            ));
        }
        let size = |v: u8| match v as i8 {
            n @ 1.. => u64::from(n as u8) * cluster,
            n => 1u64.checked_shl(u32::from(n.unsigned_abs())).unwrap_or(0),
        };
        let record = size(b[64]);
        if !(512..=65536).contains(&record) || !record.is_power_of_two() {
            return Err(bad(what, 64, format!("MFT records of {record} bytes")));
        }
        let clusters = le64(&b, 40) / per_cluster;
        let mft = le64(&b, 48);
        if mft >= clusters {
            return Err(bad(
                what,
                48,
                format!("the MFT at cluster {mft} of a volume of {clusters}"),
            ));
        }
        Ok(Boot {
            cluster,
            clusters,
            mft,
            record,
        })
    }
}

/// Applies a multi-sector structure's update sequence (MFT records, index blocks): the last two
/// bytes of each 512-byte stride must hold the sequence number, and get back what it replaced.
fn fixup(b: &mut [u8], what: &'static str, at: u64) -> io::Result<()> {
    let (offset, count) = (usize::from(le16(b, 4)), usize::from(le16(b, 6)));
    if count == 0 || offset + 2 * count > b.len() || (count - 1) * 512 > b.len() {
        return Err(bad(
            what,
            at,
            format!(
                "an update sequence of {count} at {offset} in {} bytes",
                b.len()
            ),
        ));
    }
    let usn = [b[offset], b[offset + 1]];
    for i in 1..count {
        let end = i * 512 - 2;
        if b[end..end + 2] != usn {
            return Err(bad(
                what,
                at + end as u64,
                format!(
                    "sector {} does not end with the update sequence number (torn write)",
                    i - 1
                ),
            ));
        }
        let (lo, hi) = (b[offset + 2 * i], b[offset + 2 * i + 1]);
        b[end] = lo;
        b[end + 1] = hi;
    }
    Ok(())
}

/// A run of clusters: its length, and its first cluster or None for a sparse run.
type Run = (u64, Option<u64>);

/// A runlist ("mapping pairs"): each run a header byte giving the sizes of its length and its
/// signed offset from the previous run's cluster (no offset: sparse).
fn runlist(b: &[u8], clusters: u64) -> Result<Vec<Run>, String> {
    let (mut runs, mut at, mut lcn) = (Vec::new(), 0usize, 0i64);
    while at < b.len() && b[at] != 0 {
        let (len_size, off_size) = (usize::from(b[at] & 0xF), usize::from(b[at] >> 4));
        if len_size == 0 || len_size > 8 || off_size > 8 || at + 1 + len_size + off_size > b.len() {
            return Err(format!("a run header {:#04x} at byte {at}", b[at]));
        }
        let field = |from: usize, n: usize| {
            let mut v = [0u8; 8];
            v[..n].copy_from_slice(&b[from..from + n]);
            // Sign-extend the offset from its top byte.
            if n > 0 && n < 8 && b[from + n - 1] & 0x80 != 0 {
                v[n..].fill(0xFF);
            }
            i64::from_le_bytes(v)
        };
        let mut length_bytes = [0u8; 8];
        length_bytes[..len_size].copy_from_slice(&b[at + 1..at + 1 + len_size]);
        let length = u64::from_le_bytes(length_bytes);
        let start = match off_size {
            0 => None,
            n => {
                lcn = lcn
                    .checked_add(field(at + 1 + len_size, n))
                    .filter(|&l| l >= 0)
                    .ok_or_else(|| format!("a run before cluster 0 at byte {at}"))?;
                let first = lcn as u64;
                if first.checked_add(length).is_none_or(|end| end > clusters) {
                    return Err(format!(
                        "a run of {length} clusters at cluster {first}, past the volume's {clusters}"
                    ));
                }
                Some(first)
            }
        };
        if length == 0 {
            return Err(format!("a run of no clusters at byte {at}"));
        }
        runs.push((length, start));
        at += 1 + len_size + off_size;
    }
    Ok(runs)
}

/// LZNT1: chunks of up to 4 KiB of output, each a 2-byte header (size, and whether it is
/// compressed), then groups of a flag byte and eight literals or back-references whose offset
/// takes more bits the further into the chunk they are. At most `limit` bytes come out.
fn lznt1(input: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(limit.min(1 << 20));
    let mut at = 0;
    while at + 2 <= input.len() && out.len() < limit {
        let header = le16(input, at);
        at += 2;
        if header == 0 {
            break;
        }
        let end = at + usize::from(header & 0xFFF) + 1;
        if end > input.len() {
            return Err(format!("a chunk of {} bytes past the data's end", end - at));
        }
        if header & 0x8000 == 0 {
            out.extend_from_slice(&input[at..end]);
            at = end;
            continue;
        }
        let chunk = out.len();
        while at < end {
            let flags = input[at];
            at += 1;
            for bit in 0..8 {
                if at >= end {
                    break;
                }
                if flags >> bit & 1 == 0 {
                    out.push(input[at]);
                    at += 1;
                    continue;
                }
                if at + 2 > end {
                    return Err("a back-reference cut by the chunk's end".into());
                }
                let token = le16(input, at);
                at += 2;
                let written = out.len() - chunk;
                let mut bits = 0;
                let mut i = written.saturating_sub(1);
                while i >= 0x10 {
                    bits += 1;
                    i >>= 1;
                }
                let distance = usize::from(token >> (12 - bits)) + 1;
                let length = usize::from(token & (0xFFF >> bits)) + 3;
                if distance > written || written + length > 4096 {
                    return Err(format!(
                        "a back-reference {distance} bytes back at byte {written} of a chunk"
                    ));
                }
                let from = out.len() - distance;
                for k in 0..length {
                    let byte = out[from + k];
                    out.push(byte);
                }
            }
        }
        if out.len() - chunk > 4096 {
            return Err("a chunk of more than 4 KiB".into());
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// A Windows FILETIME (100 ns since 1601) as seconds since 1970.
fn unix(filetime: u64) -> Option<i64> {
    (filetime != 0).then(|| (filetime / 10_000_000) as i64 - 11_644_473_600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runlists_decode_signed_offsets_and_sparse_runs() {
        // 16 clusters at 0x100, 8 sparse, 4 at 0x100 - 0x10 = 0xF0.
        let b = [0x21, 0x10, 0x00, 0x01, 0x01, 0x08, 0x11, 0x04, 0xF0, 0x00];
        assert_eq!(
            runlist(&b, 0x1000).unwrap(),
            [(16, Some(0x100)), (8, None), (4, Some(0xF0))]
        );
        assert!(runlist(&b, 0x105).is_err(), "a run past the volume");
        assert!(
            runlist(&[0x11, 0x04, 0x80, 0x00], 0x1000).is_err(),
            "before cluster 0"
        );
        assert!(runlist(&[0x31, 0x04], 0x1000).is_err(), "cut short");
    }

    #[test]
    fn lznt1_takes_literals_and_back_references() {
        // "abc" then a reference 3 back of 6 bytes: "abcabcabc".
        let token: u16 = (2 << 12) | 3; // 3 bytes in: 4 offset bits, so offset-1 = 2 << 12
        let mut chunk = vec![0b0000_1000, b'a', b'b', b'c'];
        chunk.extend(token.to_le_bytes());
        let header = 0xB000u16 | (chunk.len() as u16 - 1);
        let mut data = header.to_le_bytes().to_vec();
        data.extend(&chunk);
        assert_eq!(lznt1(&data, 4096).unwrap(), b"abcabcabc");
        assert_eq!(lznt1(&data, 5).unwrap(), b"abcab");
        let mut far = data.clone();
        far[2] = 0b0000_0001; // the reference comes first: nothing to refer to
        assert!(lznt1(&far, 4096).is_err());
        // An uncompressed chunk is copied.
        let raw = [0x02u8, 0x30, 1, 2, 3];
        assert_eq!(lznt1(&raw, 4096).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn fixups_restore_sector_ends_and_catch_torn_writes() {
        let mut b = vec![0u8; 1024];
        b[4..8].copy_from_slice(&[0x30, 0, 3, 0]);
        b[0x30..0x36].copy_from_slice(&[7, 7, 0xAA, 0xBB, 0xCC, 0xDD]);
        b[510..512].copy_from_slice(&[7, 7]);
        b[1022..1024].copy_from_slice(&[7, 7]);
        let mut ok = b.clone();
        fixup(&mut ok, "test", 0).unwrap();
        assert_eq!(
            (&ok[510..512], &ok[1022..1024]),
            (&[0xAA, 0xBB][..], &[0xCC, 0xDD][..])
        );
        b[1022] = 8;
        assert!(fixup(&mut b, "test", 0).is_err());
    }
}
