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
/// The block list header of journals dimg makes: room for 1,023 blocks.
const BLHDR_SIZE: u64 = 16 << 10;
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

/// Writes `dirty` (allocation blocks by number) to their places and makes them durable: the
/// last step of a transaction, and all of one on a volume without a journal.
pub(super) fn write_in_place(
    disk: &dyn WriteAt,
    block: u64,
    dirty: &BTreeMap<u64, Vec<u8>>,
) -> io::Result<()> {
    for (n, b) in dirty {
        disk.write_all_at(n * block, b)?;
    }
    disk.sync()
}

/// The journal newfs_hfs gives a volume of `volume` bytes: 512 KiB under 128 MiB, else 8 MiB for
/// every 100 GiB begun, at most 512 MiB.
pub(super) fn default_size(volume: u64) -> u64 {
    const GIB: u64 = 1 << 30;
    match volume {
        v if v < 128 << 20 => 512 << 10,
        v => ((v.div_ceil(100 * GIB)) * (8 << 20)).min(512 << 20),
    }
}

/// A journal info block for a journal of `size` bytes at byte `offset` of its volume.
pub(super) fn info_block(offset: u64, size: u64) -> Vec<u8> {
    let mut b = vec![0u8; 180];
    b[0..4].copy_from_slice(&IN_VOLUME.to_be_bytes());
    b[36..44].copy_from_slice(&offset.to_be_bytes());
    b[44..52].copy_from_slice(&size.to_be_bytes());
    b
}

/// The header of an empty journal of `size` bytes, little-endian as every Mac since Intel
/// writes it.
pub(super) fn fresh_header(size: u64) -> Vec<u8> {
    Journal::fresh(0, size).header()
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
    /// The info block asks for the journal to be made: nothing in it is to be read.
    needs_init: bool,
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
            little,
            ..Journal::fresh(at, size)
        };
        journal.needs_init = flags & NEEDS_INIT != 0;
        if journal.needs_init {
            return Ok(Some(journal));
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

    /// An empty journal of `size` bytes at byte `at` of the volume.
    fn fresh(at: u64, size: u64) -> Journal {
        Journal {
            at,
            size,
            jhdr_size: 512,
            blhdr_size: BLHDR_SIZE,
            little: true,
            start: 512,
            end: 512,
            sequence: 1,
            needs_init: false,
        }
    }

    /// Writes an empty journal where the info block asks for one to be made (newfs_hfs leaves
    /// that to the first mount), and says it is made.
    pub fn initialize(&mut self, disk: &dyn WriteAt, info_at: u64) -> io::Result<()> {
        if !self.needs_init {
            return Ok(());
        }
        self.write_header(disk)?;
        disk.write_all_at(info_at, &IN_VOLUME.to_be_bytes())?;
        disk.sync()?;
        self.needs_init = false;
        Ok(())
    }

    /// `N` bytes at `at` in big-endian order, whichever order the journal keeps them in.
    fn field<const N: usize>(&self, b: &[u8], at: usize) -> [u8; N] {
        let mut bytes: [u8; N] = b[at..at + N].try_into().expect("N bytes");
        if self.little {
            bytes.reverse();
        }
        bytes
    }

    /// Puts `bytes`, given big-endian, at `at` in the journal's order.
    fn put<const N: usize>(&self, b: &mut [u8], at: usize, mut bytes: [u8; N]) {
        if self.little {
            bytes.reverse();
        }
        b[at..at + N].copy_from_slice(&bytes);
    }

    fn u16_at(&self, b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes(self.field(b, at))
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(self.field(b, at))
    }

    fn u64_at(&self, b: &[u8], at: usize) -> u64 {
        u64::from_be_bytes(self.field(b, at))
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
        disk.write_all_at(self.at, &self.header())
    }

    /// The journal header as it stands, a sector long.
    fn header(&self) -> Vec<u8> {
        let mut h = vec![0u8; self.jhdr_size as usize];
        self.put(&mut h, 0, MAGIC.to_be_bytes());
        self.put(&mut h, 4, ENDIAN.to_be_bytes());
        self.put(&mut h, 8, self.start.to_be_bytes());
        self.put(&mut h, 16, self.end.to_be_bytes());
        self.put(&mut h, 24, self.size.to_be_bytes());
        self.put(&mut h, 32, (self.blhdr_size as u32).to_be_bytes());
        self.put(&mut h, 40, (self.jhdr_size as u32).to_be_bytes());
        self.put(&mut h, 44, self.sequence.to_be_bytes());
        let sum = checksum(&h[..44]);
        self.put(&mut h, 36, sum.to_be_bytes());
        h
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
            return write_in_place(disk, block, dirty);
        }
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = vec![0u8; self.blhdr_size as usize];
        let count = dirty.len() + 1;
        self.put(
            &mut header,
            0,
            ((self.blhdr_size / ENTRY as u64 - 1) as u16).to_be_bytes(),
        );
        self.put(&mut header, 2, (count as u16).to_be_bytes());
        self.put(
            &mut header,
            4,
            ((self.blhdr_size + bytes) as u32).to_be_bytes(),
        );
        self.put(&mut header, 12, FIRST_HEADER.to_be_bytes());
        self.put(&mut header, 16 + 12, self.sequence.to_be_bytes());
        for (i, (n, b)) in dirty.iter().enumerate() {
            let entry = (i + 1) * ENTRY;
            self.put(
                &mut header,
                entry,
                (n * block / self.jhdr_size).to_be_bytes(),
            );
            self.put(&mut header, entry + 8, (b.len() as u32).to_be_bytes());
        }
        let sum = checksum(&header[..BLHDR_CHECKSUMMED]);
        self.put(&mut header, 8, sum.to_be_bytes());
        let mut pos = self.write_wrapped(disk, self.end, &header)?;
        for b in dirty.values() {
            pos = self.write_wrapped(disk, pos, b)?;
        }
        disk.sync()?;
        // The transaction counts once the header says where it ends; until then (a failed
        // write), the journal is as it was.
        let before = (self.end, self.sequence.wrapping_sub(1));
        self.end = pos;
        if let Err(e) = self.write_header(disk).and_then(|()| disk.sync()) {
            (self.end, self.sequence) = before;
            return Err(e);
        }
        write_in_place(disk, block, dirty)?;
        // Written in place: the next transaction may overwrite this one. Not synced on its own;
        // if it is lost, a replay writes the same blocks again.
        self.start = self.end;
        self.write_header(disk)
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

    /// A disk in memory that fails every write after the first `left` — a crash at that moment.
    struct Crashing {
        bytes: std::sync::Mutex<Vec<u8>>,
        left: std::sync::atomic::AtomicUsize,
    }

    impl ReadAt for Crashing {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            self.bytes.lock().unwrap().read_at(offset, buf)
        }
        fn size(&self) -> u64 {
            self.bytes.lock().unwrap().len() as u64
        }
    }

    impl WriteAt for Crashing {
        fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
            use std::sync::atomic::Ordering::SeqCst;
            if self
                .left
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_err()
            {
                return Err(io::Error::other("crashed"));
            }
            let at = offset as usize;
            self.bytes.lock().unwrap()[at..at + buf.len()].copy_from_slice(buf);
            Ok(())
        }
        fn sync(&self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A transaction cut short at every write it makes: opened again, the journal replays it
    /// whole once its header says it is there, and leaves the blocks as they were before that.
    #[test]
    fn a_transaction_cut_short_is_replayed_whole_or_not_at_all() {
        const BLOCK: u64 = 4096;
        // Block 1: the info block; the journal from block 2 (128 KiB); blocks 40 and 41 changed.
        let mut volume = vec![0u8; 64 * BLOCK as usize];
        let info = info_block(2 * BLOCK, 128 << 10);
        volume[BLOCK as usize..BLOCK as usize + info.len()].copy_from_slice(&info);
        let header = fresh_header(128 << 10);
        volume[2 * BLOCK as usize..2 * BLOCK as usize + header.len()].copy_from_slice(&header);
        let old: Vec<Vec<u8>> = (0..2).map(|i| vec![0x10 + i; BLOCK as usize]).collect();
        let new: BTreeMap<u64, Vec<u8>> = (0..2u8)
            .map(|i| (40 + u64::from(i), vec![0xA0 + i; BLOCK as usize]))
            .collect();
        for (i, b) in old.iter().enumerate() {
            let at = (40 + i) * BLOCK as usize;
            volume[at..at + b.len()].copy_from_slice(b);
        }
        let blocks = |disk: &Crashing| -> Vec<Vec<u8>> {
            let bytes = disk.bytes.lock().unwrap();
            (40..42)
                .map(|n| bytes[n * BLOCK as usize..(n + 1) * BLOCK as usize].to_vec())
                .collect()
        };
        let mut outcomes = std::collections::BTreeSet::new();
        for writes in 0..12 {
            let disk = Crashing {
                bytes: std::sync::Mutex::new(volume.clone()),
                left: writes.into(),
            };
            let mut journal = Journal::open(&disk, BLOCK, 1).unwrap().unwrap();
            let finished = journal.commit(&disk, BLOCK, &new).is_ok();
            disk.left
                .store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
            let mut again = Journal::open(&disk, BLOCK, 1).unwrap().unwrap();
            again.replay(&disk).unwrap();
            let after = blocks(&disk);
            let whole = after == new.values().cloned().collect::<Vec<_>>();
            assert!(
                whole || after == old,
                "cut after {writes} writes: a mix of old and new"
            );
            assert!(!finished || whole, "a finished commit is whole");
            assert_eq!(again.pending(), 0);
            outcomes.insert(whole);
        }
        assert_eq!(
            outcomes.len(),
            2,
            "some cuts keep the old blocks, later ones the new"
        );
    }
}
