//! HFS+ and HFSX (TN1150; formats.md §h.1): what the reader and the writer share — where the
//! volume header is, the catalog's fixed IDs, dates, and the way names are stored and ordered.

mod bitmap;
mod change;
mod check;
mod edit;
mod journal;
mod read;
mod resize;
mod store;
mod write;

pub use change::HfsChange;
pub use check::check;
pub use read::HfsPlus;
pub(super) use read::{more_extents, BTree, Fork, Overflow};
pub use resize::Resizable;
pub use write::{build, catalog_id, Built, Options, BLOCK};

use std::cmp::Ordering;
use unicode_normalization::UnicodeNormalization;

/// The volume header's offset from the volume's start (and the alternate's from its end).
const HEADER_AT: u64 = 1024;
/// The root folder's parent, and the root folder itself.
const ROOT_PARENT: u32 = 1;
const ROOT_FOLDER: u32 = 2;
/// Catalog node IDs below this are the volume's own files; these are some of them.
const FIRST_USER_ID: u32 = 16;
const EXTENTS_ID: u32 = 3;
const CATALOG_ID: u32 = 4;
const ALLOCATION_ID: u32 = 6;
const ATTRIBUTES_ID: u32 = 8;
/// Where the volume header keeps the forks of the volume's own files.
const ALLOCATION_FORK: usize = 112;
const EXTENTS_FORK: usize = 192;
const CATALOG_FORK: usize = 272;
const ATTRIBUTES_FORK: usize = 352;
/// Seconds from 1904-01-01 (HFS+ dates) to 1970-01-01.
const MAC_EPOCH: i64 = 2_082_844_800;

/// An HFS+ date as seconds since 1970; 0 means "never" (HFS shares the epoch).
pub(super) fn date(d: u32) -> Option<i64> {
    (d != 0).then(|| i64::from(d) - MAC_EPOCH)
}

/// Seconds since 1970 as an HFS+ date, clamped to what 32 bits hold.
pub(crate) fn mac_date(t: i64) -> u32 {
    (t + MAC_EPOCH).clamp(0, i64::from(u32::MAX)) as u32
}

/// The volume byte ranges (offset, length) of `len` bytes at `offset` in a fork of `extents`
/// (start, blocks); `None` when the extents end before them.
fn extent_pieces(
    extents: &[(u32, u32)],
    block: u64,
    offset: u64,
    len: u64,
) -> Option<Vec<(u64, u64)>> {
    let mut pieces = Vec::new();
    let (mut offset, mut left, mut base) = (offset, len, 0u64);
    for &(start, count) in extents {
        let bytes = u64::from(count) * block;
        if left > 0 && offset < base + bytes {
            let within = offset - base;
            let take = left.min(bytes - within);
            pieces.push((u64::from(start) * block + within, take));
            offset += take;
            left -= take;
        }
        base += bytes;
    }
    (left == 0).then_some(pieces)
}

/// A stored name's UTF-16 units, from its big-endian bytes.
fn units(b: &[u8]) -> Vec<u16> {
    stored_units(b).collect()
}

/// A name's UTF-16 units as stored (big-endian), decoded as they are read.
fn stored_units(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]))
}

/// A name as HFS+ stores it: decomposed UTF-16, POSIX ':' as '/'.
fn hfs_name(name: &str) -> Vec<u16> {
    name.nfd()
        .map(|c| if c == ':' { '/' } else { c })
        .collect::<String>()
        .encode_utf16()
        .collect()
}

/// HFS+'s case-insensitive order, folding as Unicode lower case does, as Apple's
/// FastUnicodeCompare table does for every script with case. NUL sorts after everything, so
/// that the private folders ("\0\0\0\0HFS+ Private Data") come last in the root.
fn fold(unit: u16) -> u16 {
    if unit == 0 {
        return 0xFFFF;
    }
    if unit < 0x80 {
        return u16::from((unit as u8).to_ascii_lowercase());
    }
    match char::from_u32(u32::from(unit)) {
        Some(c) => {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) if (l as u32) < 0x10000 => l as u32 as u16,
                _ => unit,
            }
        }
        None => unit,
    }
}

/// Format characters FastUnicodeCompare skips: joiners, direction marks and embeddings, the
/// deprecated format controls, and the byte-order mark.
fn ignorable(unit: u16) -> bool {
    matches!(unit, 0x200C..=0x200F | 0x202A..=0x202E | 0x206A..=0x206F | 0xFEFF)
}

fn compare_names(
    a: impl Iterator<Item = u16>,
    b: impl Iterator<Item = u16>,
    case_sensitive: bool,
) -> Ordering {
    if case_sensitive {
        a.cmp(b)
    } else {
        let key = |u: u16| (!ignorable(u)).then(|| fold(u));
        a.filter_map(key).cmp(b.filter_map(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_order_as_hfs_plus_compares_them() {
        let n = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        let compare = |a: &[u16], b: &[u16], case_sensitive| {
            compare_names(a.iter().copied(), b.iter().copied(), case_sensitive)
        };
        assert_eq!(compare(&n("ABC"), &n("abc"), false), Ordering::Equal);
        assert_eq!(compare(&n("ABC"), &n("abc"), true), Ordering::Less);
        assert_eq!(compare(&n("a\u{200D}b"), &n("AB"), false), Ordering::Equal);
        assert_eq!(
            compare(&n("\u{C9}T\u{C9}"), &n("\u{E9}t\u{E9}"), false),
            Ordering::Equal
        );
        assert_eq!(compare(&n("apple"), &n("Banana"), false), Ordering::Less);
        assert_eq!(compare(&n("apple"), &n("Banana"), true), Ordering::Greater);
        assert_eq!(hfs_name("caf\u{e9}:x"), n("cafe\u{301}/x"));
        // The private data folder ends the root where names fold, and starts it in HFSX.
        let private = n("\0\0\0\0HFS+ Private Data");
        assert_eq!(compare(&private, &n("zzz"), false), Ordering::Greater);
        assert_eq!(compare(&private, &n("zzz"), true), Ordering::Less);
    }
}
