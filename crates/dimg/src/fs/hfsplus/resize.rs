//! Growing and shrinking an HFS+ volume with its partition (`dimg resize`): the volume header
//! and its alternate, and the allocation bitmap, which gains an extent where the volume grows
//! past what it can count. A journaled volume is resized when its journal is empty (the journal
//! file stays where it is).

use super::journal::{Journal, JOURNALED};
use super::HEADER_AT;
use crate::bytes::{be32, be64};
use crate::error::FormatError;
use crate::io::ReadAt;
use std::io;

fn bad(what: &'static str, at: u64, problem: impl Into<String>) -> io::Error {
    FormatError::io(what, at, problem)
}

/// An HFS+ volume as resizing sees it: its header, its bitmap and its last used block.
pub struct Resizable {
    /// The volume's length, and its offset on the disk (for errors).
    length: u64,
    start: u64,
    header: Vec<u8>,
    block: u64,
    total: u64,
    /// The allocation bitmap, as stored, and where each of its extents lies (bytes).
    bitmap: Vec<u8>,
    bitmap_extents: Vec<(u64, u64)>,
    /// The last block in use, the alternate header's own block aside.
    last_used: u64,
}

impl Resizable {
    /// Reads the HFS+ volume `volume`, which starts at `start` of its disk.
    pub fn read(volume: &dyn ReadAt, start: u64) -> io::Result<Resizable> {
        let length = volume.size();
        let mut header = vec![0u8; 512];
        volume.read_exact_at(HEADER_AT, &mut header)?;
        let (block, total) = (u64::from(be32(&header, 40)), u64::from(be32(&header, 44)));
        if !block.is_power_of_two() || !(512..=1 << 20).contains(&block) || total * block > length {
            return Err(bad(
                "HFS+ volume header",
                start + HEADER_AT + 40,
                format!("{total} blocks of {block} bytes do not fit its {length}-byte partition"),
            ));
        }
        // A journal's changes not yet in place would be replayed over the resized volume.
        if be32(&header, 4) & JOURNALED != 0 && be32(&header, 12) != 0 {
            let journal = Journal::open(volume, block, be32(&header, 12))?;
            if journal.is_none_or(|j| j.pending() > 0) {
                return Err(bad(
                    "HFS+ journal",
                    start + HEADER_AT,
                    "holds changes not yet written to the volume (or is on another device): \
                     attach the image read/write once, which replays them, then resize it",
                ));
            }
        }
        let bitmap_extents: Vec<(u64, u64)> = (0..8)
            .map(|i| (be32(&header, 128 + 8 * i), be32(&header, 132 + 8 * i)))
            .filter(|&(_, n)| n > 0)
            .map(|(at, n)| (u64::from(at) * block, u64::from(n) * block))
            .collect();
        let stored: u64 = bitmap_extents.iter().map(|e| e.1).sum();
        // A bitmap larger than the volume is damage, and must not size an allocation.
        if stored > length || be64(&header, 112) > stored || stored < total.div_ceil(8) {
            return Err(bad(
                "HFS+ allocation file",
                start + HEADER_AT + 112,
                "its extents do not hold the bitmap (more lie in the extents B-tree)",
            ));
        }
        let mut bitmap = vec![0u8; stored as usize];
        let mut at = 0;
        for &(offset, len) in &bitmap_extents {
            volume.read_exact_at(offset, &mut bitmap[at..at + len as usize])?;
            at += len as usize;
        }
        let alternate = alternate_block(length, block, total);
        let used = |b: u64| bitmap[(b / 8) as usize] & (0x80 >> (b % 8)) != 0;
        let last_used = (0..total)
            .rev()
            .find(|&b| used(b) && Some(b) != alternate)
            .unwrap_or(0);
        Ok(Resizable {
            length,
            start,
            header,
            block,
            total,
            bitmap,
            bitmap_extents,
            last_used,
        })
    }

    /// The shortest the volume can be: its used blocks and its alternate header.
    pub fn minimum_length(&self) -> u64 {
        (self.last_used + 2) * self.block
    }

    /// The longest: as far as HFS+ counts blocks in 32 bits.
    pub fn maximum_length(&self) -> u64 {
        u64::from(u32::MAX) * self.block
    }

    /// What to write, each piece at its offset in the volume, for it to be `length` bytes.
    pub fn resized(&self, length: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let mut writes = Vec::new();
        let (start, block) = (self.start, self.block);
        let total = (length / block).min(u64::from(u32::MAX));
        let mut h = self.header.clone();
        // The bitmap: bits for blocks past the old end are free; more room where needed, in
        // the first blocks the growth adds.
        let mut bitmap = self.bitmap.clone();
        for b in self.total.min(total)..(bitmap.len() as u64 * 8) {
            bitmap[(b / 8) as usize] &= !(0x80 >> (b % 8));
        }
        let mut extents = self.bitmap_extents.clone();
        let needed = total.div_ceil(8).next_multiple_of(block);
        let mut added = 0;
        if needed > bitmap.len() as u64 {
            added = (needed - bitmap.len() as u64) / block;
            if extents.len() == 8 {
                return Err(bad(
                    "HFS+ allocation file",
                    start + HEADER_AT + 112,
                    "has no extent left to grow into",
                ));
            }
            bitmap.resize(needed as usize, 0);
            // The first free run that holds the new part, so that the volume can shrink again
            // down to its data.
            let used = |b: u64| bitmap[(b / 8) as usize] & (0x80 >> (b % 8)) != 0;
            let last = alternate_block(length, block, total).unwrap_or(total);
            let mut run = 0;
            let at = (1..last).find(|&b| {
                run = if used(b) { 0 } else { run + 1 };
                run == added
            });
            let Some(end) = at else {
                return Err(bad(
                    "HFS+ allocation file",
                    start + HEADER_AT + 112,
                    "needs more room than the volume has free",
                ));
            };
            extents.push(((end + 1 - added) * block, added * block));
        }
        let mut mark = |b: u64, used: bool| {
            let (byte, bit) = ((b / 8) as usize, 0x80u8 >> (b % 8));
            match used {
                true => bitmap[byte] |= bit,
                false => bitmap[byte] &= !bit,
            }
        };
        if let Some(old) = alternate_block(self.length, block, self.total) {
            if old < total {
                mark(old, false);
            }
        }
        if added > 0 {
            let (at, len) = extents[extents.len() - 1];
            for b in at / block..(at + len) / block {
                mark(b, true);
            }
        }
        if let Some(new) = alternate_block(length, block, total) {
            mark(new, true);
        }
        let used = (0..total)
            .filter(|&b| bitmap[(b / 8) as usize] & (0x80 >> (b % 8)) != 0)
            .count() as u64;
        h[44..48].copy_from_slice(&(total as u32).to_be_bytes());
        h[48..52].copy_from_slice(&((total - used) as u32).to_be_bytes());
        h[112..120].copy_from_slice(&(bitmap.len() as u64).to_be_bytes());
        h[124..128].copy_from_slice(&((bitmap.len() as u64 / block) as u32).to_be_bytes());
        for (i, &(at, len)) in extents.iter().enumerate() {
            h[128 + 8 * i..132 + 8 * i].copy_from_slice(&((at / block) as u32).to_be_bytes());
            h[132 + 8 * i..136 + 8 * i].copy_from_slice(&((len / block) as u32).to_be_bytes());
        }
        let mut from = 0;
        for &(at, len) in &extents {
            writes.push((at, bitmap[from..from + len as usize].to_vec()));
            from += len as usize;
        }
        writes.push((HEADER_AT, h.clone()));
        if self.length - 1024 + 512 <= length {
            writes.push((self.length - 1024, vec![0u8; 512]));
        }
        writes.push((length - 1024, h));
        Ok(writes)
    }
}

/// The allocation block that holds a volume's alternate header (1 KiB before its end), when it
/// falls inside the volume's counted blocks.
fn alternate_block(length: u64, block: u64, total: u64) -> Option<u64> {
    let b = (length - 1024) / block;
    (b < total).then_some(b)
}
