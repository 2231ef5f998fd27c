//! The HFS+ journal (TN1150 "Journal"; Apple's hfs_journal.c): a circular buffer after the
//! journal header, holding transactions — block list headers, each followed by the blocks it
//! lists — not yet written to their places. The header and the block lists are in the byte
//! order of the Mac that wrote them (little-endian on every Mac since Intel); block numbers count
//! `jhdr_size` units (512 bytes) from the volume's start.

use crate::bytes::{be32, be64};
use crate::error::FormatError;
use crate::io::{ReadAt, WriteAt};
use std::collections::BTreeMap;
use std::io;

/// The volume header's attribute: the volume has a journal.
pub(super) const JOURNALED: u32 = 1 << 13;
const MAGIC: u32 = 0x4A4E_4C78;
const ENDIAN: u32 = 0x1234_5678;
/// Journal info block flags.
const IN_VOLUME: u32 = 1;
const NEEDS_INIT: u32 = 4;
/// Block list header flags: check block checksums; first header of a transaction.
const CHECK_CHECKSUMS: u32 = 1;
const FIRST_HEADER: u32 = 2;
/// Bytes of a block list header the checksum covers, and of one block entry.
const BLHDR_CHECKSUMMED: usize = 32;
const ENTRY: usize = 16;

fn bad(structure: &'static str, problem: impl Into<String>) -> io::Error {
    FormatError::io(structure, 0, problem)
}

/// TN1150's checksum: every byte folded in, the result inverted.
fn checksum(bytes: &[u8]) -> u32 {
    !bytes
        .iter()
        .fold(0u32, |c, &b| (c << 8) ^ c.wrapping_add(u32::from(b)))
}

pub(super) struct Journal {
    /// The journal header's byte offset in the volume.
    at: u64,
    size: u64,
    jhdr_size: u64,
    blhdr_size: u64,
    little: bool,
    start: u64,
    end: u64,
    sequence: u32,
}

impl Journal {
    /// The journal whose info block is allocation block `info_block`; `None` when it is on
    /// another device.
    pub fn open(disk: &dyn ReadAt, block: u64, info_block: u32) -> io::Result<Option<Journal>> {
        let mut info = [0u8; 52];
        disk.read_exact_at(u64::from(info_block) * block, &mut info)?;
        let flags = be32(&info, 0);
        if flags & IN_VOLUME == 0 {
            return Ok(None);
        }
        let (at, size) = (be64(&info, 36), be64(&info, 44));
        if size < 4096 || at.checked_add(size).is_none_or(|end| end > disk.size()) {
            return Err(bad(
                "HFS+ journal info block",
                format!("a journal of {size} bytes at {at} does not fit the volume"),
            ));
        }
        let mut h = [0u8; 48];
        disk.read_exact_at(at, &mut h)?;
        let little = match (
            u32::from_le_bytes(h[4..8].try_into().expect("4")),
            be32(&h, 4),
        ) {
            (ENDIAN, _) => true,
            (_, ENDIAN) => false,
            _ if flags & NEEDS_INIT != 0 => true,
            _ => return Err(bad("HFS+ journal header", "has no byte-order mark")),
        };
        let mut journal = Journal {
            at,
            size,
            jhdr_size: 512,
            blhdr_size: 4096,
            little,
            start: 512,
            end: 512,
            sequence: 0,
        };
        if flags & NEEDS_INIT != 0 {
            return Ok(Some(journal)); // made fresh at the first commit
        }
        if journal.u32_at(&h, 0) != MAGIC {
            return Err(bad("HFS+ journal header", "has no JNLx magic"));
        }
        let mut zeroed = h;
        zeroed[36..40].fill(0);
        if checksum(&zeroed[..44]) != journal.u32_at(&h, 36) {
            return Err(bad("HFS+ journal header", "fails its checksum"));
        }
        journal.start = journal.u64_at(&h, 8);
        journal.end = journal.u64_at(&h, 16);
        journal.blhdr_size = u64::from(journal.u32_at(&h, 32));
        journal.jhdr_size = u64::from(journal.u32_at(&h, 40));
        journal.sequence = journal.u32_at(&h, 44);
        let sane = journal.u64_at(&h, 24) == size
            && (512..=65536).contains(&journal.jhdr_size)
            && journal.jhdr_size.is_power_of_two()
            && (4096..=size / 4).contains(&journal.blhdr_size)
            && (journal.jhdr_size..size).contains(&journal.start)
            && (journal.jhdr_size..size).contains(&journal.end);
        if !sane {
            return Err(bad(
                "HFS+ journal header",
                format!(
                    "states start {}, end {}, size {}, block list header {} and header {} bytes",
                    journal.start,
                    journal.end,
                    journal.u64_at(&h, 24),
                    journal.blhdr_size,
                    journal.jhdr_size
                ),
            ));
        }
        Ok(Some(journal))
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let bytes = b[at..at + 4].try_into().expect("4 bytes");
        match self.little {
            true => u32::from_le_bytes(bytes),
            false => u32::from_be_bytes(bytes),
        }
    }

    fn u64_at(&self, b: &[u8], at: usize) -> u64 {
        let bytes = b[at..at + 8].try_into().expect("8 bytes");
        match self.little {
            true => u64::from_le_bytes(bytes),
            false => u64::from_be_bytes(bytes),
        }
    }

    fn put32(&self, b: &mut [u8], at: usize, v: u32) {
        let bytes = if self.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        b[at..at + 4].copy_from_slice(&bytes);
    }

    fn put64(&self, b: &mut [u8], at: usize, v: u64) {
        let bytes = if self.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        b[at..at + 8].copy_from_slice(&bytes);
    }

    /// Bytes of the circular buffer.
    fn buffer(&self) -> u64 {
        self.size - self.jhdr_size
    }

    /// Bytes of transactions waiting to be written to the volume.
    pub fn pending(&self) -> u64 {
        (self.end + self.buffer() - self.start) % self.buffer()
    }

    /// The most block bytes one transaction can carry: one block list header's worth, and
    /// never more than half the buffer.
    pub fn capacity(&self, block: u64) -> u64 {
        let entries = self.blhdr_size / ENTRY as u64 - 1;
        (entries * block).min((self.buffer() - self.blhdr_size) / 2)
    }

    /// Reads `buf.len()` bytes of the buffer from `pos`, wrapping at its end.
    fn read_wrapped(&self, disk: &dyn ReadAt, pos: u64, buf: &mut [u8]) -> io::Result<u64> {
        let mut pos = pos;
        let mut done = 0;
        while done < buf.len() {
            let take = ((self.size - pos) as usize).min(buf.len() - done);
            disk.read_exact_at(self.at + pos, &mut buf[done..done + take])?;
            done += take;
            pos += take as u64;
            if pos == self.size {
                pos = self.jhdr_size;
            }
        }
        Ok(pos)
    }

    fn write_wrapped(&self, disk: &dyn WriteAt, pos: u64, bytes: &[u8]) -> io::Result<u64> {
        let mut pos = pos;
        let mut done = 0;
        while done < bytes.len() {
            let take = ((self.size - pos) as usize).min(bytes.len() - done);
            disk.write_all_at(self.at + pos, &bytes[done..done + take])?;
            done += take;
            pos += take as u64;
            if pos == self.size {
                pos = self.jhdr_size;
            }
        }
        Ok(pos)
    }

    fn write_header(&self, disk: &dyn WriteAt) -> io::Result<()> {
        let mut h = vec![0u8; self.jhdr_size as usize];
        self.put32(&mut h, 0, MAGIC);
        self.put32(&mut h, 4, ENDIAN);
        self.put64(&mut h, 8, self.start);
        self.put64(&mut h, 16, self.end);
        self.put64(&mut h, 24, self.size);
        self.put32(&mut h, 32, self.blhdr_size as u32);
        self.put32(&mut h, 40, self.jhdr_size as u32);
        self.put32(&mut h, 44, self.sequence);
        let sum = checksum(&h[..44]);
        self.put32(&mut h, 36, sum);
        disk.write_all_at(self.at, &h)
    }

    /// Writes every transaction between start and end to its place, then marks the journal
    /// empty. A damaged block list stops it with an error: the volume is then not changed.
    pub fn replay(&mut self, disk: &dyn WriteAt) -> io::Result<()> {
        let mut pos = self.start;
        let mut header = vec![0u8; self.blhdr_size as usize];
        let mut data = Vec::new();
        let mut budget = self.buffer();
        while pos != self.end {
            let at = pos;
            let after_header = self.read_wrapped(disk, pos, &mut header)?;
            let (max, count) = (self.u16_at(&header, 0), self.u16_at(&header, 2));
            let used = u64::from(self.u32_at(&header, 4));
            let mut zeroed = header[..BLHDR_CHECKSUMMED].to_vec();
            zeroed[8..12].fill(0);
            let fits = count >= 1
                && count <= max
                && (usize::from(count) * ENTRY) <= header.len()
                && (self.blhdr_size..=budget).contains(&used);
            if !fits || checksum(&zeroed) != self.u32_at(&header, 8) {
                return Err(bad(
                    "HFS+ journal",
                    format!("the block list at {at} is damaged, so its changes cannot be replayed"),
                ));
            }
            let check = self.u32_at(&header, 12) & CHECK_CHECKSUMS != 0;
            let mut blocks_at = after_header;
            let mut left = used - self.blhdr_size;
            for i in 1..usize::from(count) {
                let entry = &header[i * ENTRY..(i + 1) * ENTRY];
                let (bnum, bsize) = (self.u64_at(entry, 0), u64::from(self.u32_at(entry, 8)));
                if bsize > left {
                    return Err(bad(
                        "HFS+ journal",
                        format!("block list at {at} overruns itself"),
                    ));
                }
                data.resize(bsize as usize, 0);
                blocks_at = self.read_wrapped(disk, blocks_at, &mut data)?;
                left -= bsize;
                if check && checksum(&data) != self.u32_at(entry, 12) {
                    return Err(bad(
                        "HFS+ journal",
                        format!("a block listed at {at} fails its checksum"),
                    ));
                }
                if bnum != u64::MAX {
                    let place = bnum
                        .checked_mul(self.jhdr_size)
                        .filter(|p| p + bsize <= self.at || *p >= self.at + self.size);
                    match place {
                        Some(p) => disk.write_all_at(p, &data)?,
                        None => return Err(bad("HFS+ journal", format!("block {bnum} listed at {at} is inside the journal or past the volume"))),
                    }
                }
            }
            budget -= used;
            pos = self.jhdr_size + (pos - self.jhdr_size + used) % self.buffer();
        }
        disk.sync()?;
        self.start = self.end;
        self.write_header(disk)?;
        disk.sync()
    }

    fn u16_at(&self, b: &[u8], at: usize) -> u16 {
        let bytes = b[at..at + 2].try_into().expect("2 bytes");
        match self.little {
            true => u16::from_le_bytes(bytes),
            false => u16::from_be_bytes(bytes),
        }
    }

    /// Writes `dirty` (allocation blocks by number) as one transaction: into the journal, its
    /// end moved past it, then each block to its place; then the journal is empty again. A set
    /// too large for one transaction is written in place (the caller commits long before).
    pub fn commit(
        &mut self,
        disk: &dyn WriteAt,
        block: u64,
        dirty: &BTreeMap<u64, Vec<u8>>,
    ) -> io::Result<()> {
        let bytes: u64 = dirty.values().map(|b| b.len() as u64).sum();
        if bytes > self.capacity(block) {
            for (n, b) in dirty {
                disk.write_all_at(n * block, b)?;
            }
            return disk.sync();
        }
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = vec![0u8; self.blhdr_size as usize];
        let count = dirty.len() + 1;
        self.put16(&mut header, 0, (self.blhdr_size / ENTRY as u64 - 1) as u16);
        self.put16(&mut header, 2, count as u16);
        self.put32(&mut header, 4, (self.blhdr_size + bytes) as u32);
        self.put32(&mut header, 12, FIRST_HEADER);
        self.put32(&mut header, 16 + 12, self.sequence);
        for (i, (n, b)) in dirty.iter().enumerate() {
            let entry = (i + 1) * ENTRY;
            self.put64(&mut header, entry, n * block / self.jhdr_size);
            self.put32(&mut header, entry + 8, b.len() as u32);
        }
        let sum = checksum(&header[..BLHDR_CHECKSUMMED]);
        self.put32(&mut header, 8, sum);
        let mut pos = self.write_wrapped(disk, self.end, &header)?;
        for b in dirty.values() {
            pos = self.write_wrapped(disk, pos, b)?;
        }
        disk.sync()?;
        self.end = pos;
        self.write_header(disk)?;
        disk.sync()?;
        for (n, b) in dirty {
            disk.write_all_at(n * block, b)?;
        }
        disk.sync()?;
        // Written in place: the next transaction may overwrite this one. Not synced on its own;
        // if it is lost, a replay writes the same blocks again.
        self.start = self.end;
        self.write_header(disk)
    }

    fn put16(&self, b: &mut [u8], at: usize, v: u16) {
        let bytes = if self.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        b[at..at + 2].copy_from_slice(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The header and a block list header of a journal macOS wrote (the corpus's
    /// jief666-test1.sparsebundle), their checksum fields zeroed as the checksum is taken.
    #[test]
    fn checksums_match_a_journal_macos_wrote() {
        let mut header = hex("784c4e4a78563412002e030000000000002e0300000000000000080000000000002000000381ea0800020000");
        header[36..40].fill(0);
        assert_eq!(checksum(&header), 0x08EA_8103);
        let mut list = hex("ff010400004200003dede030030000000000000000000000000000002da5a700");
        list[8..12].fill(0);
        assert_eq!(checksum(&list), 0x30E0_ED3D);
    }
}
