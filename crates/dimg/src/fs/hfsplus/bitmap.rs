//! The allocation file of an HFS+ volume being changed: a bit per allocation block, kept in
//! memory (a bit per 4 KiB: 32 MiB for a 1 TiB volume). Blocks freed are held until the next
//! commit, so that no file's new data lands in blocks the volume on disk still gives another.

use super::extent_pieces;
use super::store::Store;
use std::collections::BTreeSet;
use std::io;

pub(super) struct Bitmap {
    bits: Vec<u8>,
    total: u32,
    free: u32,
    /// Blocks of the allocation file changed since the last commit.
    changed: BTreeSet<u64>,
    /// Freed since the last commit: still marked used until then.
    held: Vec<(u32, u32)>,
    /// Where the last allocation ended: the next looks from there.
    hint: u32,
    /// The allocation file's extents (start, count) and the volume's block size.
    file: Vec<(u32, u32)>,
    block: u64,
}

fn no_space() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

impl Bitmap {
    /// The bitmap of a volume of `total` blocks, read from the allocation file's `extents`.
    pub fn read(store: &mut Store, file: Vec<(u32, u32)>, total: u32) -> io::Result<Bitmap> {
        let block = store.block;
        let len = u64::from(total).div_ceil(8);
        let pieces = extent_pieces(&file, block, 0, len).ok_or_else(|| {
            crate::error::FormatError::io(
                "HFS+ allocation file",
                0,
                format!("its extents hold fewer than the {len} bytes its volume's blocks need"),
            )
        })?;
        let mut bits = vec![0u8; len as usize];
        let mut done = 0usize;
        for (at, piece) in pieces {
            store
                .disk
                .read_exact_at(at, &mut bits[done..done + piece as usize])?;
            done += piece as usize;
        }
        let used: u32 = (0..total)
            .filter(|&b| bits[(b / 8) as usize] & (0x80 >> (b % 8)) != 0)
            .count() as u32;
        Ok(Bitmap {
            bits,
            total,
            free: total - used,
            changed: BTreeSet::new(),
            held: Vec::new(),
            hint: 0,
            file,
            block,
        })
    }

    pub fn free(&self) -> u32 {
        self.free
    }

    /// Whether blocks released wait for the next commit to be free.
    pub fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    fn used(&self, b: u32) -> bool {
        self.bits[(b / 8) as usize] & (0x80 >> (b % 8)) != 0
    }

    fn mark(&mut self, start: u32, count: u32, used: bool) {
        for b in start..start + count {
            let (byte, bit) = ((b / 8) as usize, 0x80u8 >> (b % 8));
            match used {
                true => self.bits[byte] |= bit,
                false => self.bits[byte] &= !bit,
            }
        }
        let bits_per_block = self.block * 8;
        for n in u64::from(start) / bits_per_block..=u64::from(start + count - 1) / bits_per_block {
            self.changed.insert(n);
        }
    }

    /// `count` blocks in as few runs as it can: those right after `after` while they are free
    /// (a file growing stays in one piece), then the first free run that holds the rest, from
    /// where the last allocation ended; only when no run is long enough, free runs as they come.
    pub fn allocate(&mut self, count: u32, after: Option<u32>) -> io::Result<Vec<(u32, u32)>> {
        if count > self.free {
            return Err(no_space());
        }
        let mut runs = Vec::new();
        let mut left = count;
        if let Some(start) = after.filter(|&a| a < self.total && !self.used(a)) {
            let len = self.free_run(start, left);
            self.take(start, len, &mut runs);
            left -= len;
        }
        if left > 0 {
            if let Some(start) = self.first_run(left, true) {
                self.take(start, left, &mut runs);
                left = 0;
            }
        }
        while left > 0 {
            // Free blocks are counted, so a run is there; a wrong count ends in an error here.
            let start = self.first_run(1, false).ok_or_else(no_space)?;
            let len = self.free_run(start, left);
            self.take(start, len, &mut runs);
            left -= len;
        }
        Ok(runs)
    }

    fn take(&mut self, start: u32, len: u32, runs: &mut Vec<(u32, u32)>) {
        if len > 0 {
            self.mark(start, len, true);
            self.free -= len;
            self.hint = start + len;
            runs.push((start, len));
        }
    }

    /// Free blocks from `start` on, at most `most`.
    fn free_run(&self, start: u32, most: u32) -> u32 {
        let mut at = start;
        while at < self.total && at - start < most && !self.used(at) {
            at += 1;
        }
        at - start
    }

    /// The first block of a free run at least `len` long (any run, unless `whole`), looking
    /// from the hint round to it; whole bytes of used blocks are skipped at once.
    fn first_run(&self, len: u32, whole: bool) -> Option<u32> {
        let total = u64::from(self.total);
        let mut scanned = 0u64;
        let mut at = u64::from(self.hint) % total.max(1);
        while scanned < total {
            if at >= total {
                at = 0;
            }
            let byte = self.bits[(at / 8) as usize];
            if at.is_multiple_of(8) && byte == 0xFF {
                at += 8;
                scanned += 8;
                continue;
            }
            if self.used(at as u32) {
                at += 1;
                scanned += 1;
                continue;
            }
            let run = self.free_run(at as u32, len);
            if run >= len || (!whole && run > 0) {
                return Some(at as u32);
            }
            at += u64::from(run);
            scanned += u64::from(run);
        }
        None
    }

    /// Blocks no longer used; they become free at the next commit.
    pub fn release(&mut self, start: u32, count: u32) {
        if count > 0 {
            self.held.push((start, count));
        }
    }

    /// Frees what was released and writes the changed part of the allocation file.
    pub fn write(&mut self, store: &mut Store) -> io::Result<()> {
        for (start, count) in std::mem::take(&mut self.held) {
            let end = start.saturating_add(count).min(self.total);
            if start < end {
                self.mark(start, end - start, false);
                self.free += end - start;
            }
        }
        let block = self.block;
        for n in std::mem::take(&mut self.changed) {
            // The n-th block of the allocation file, where its extents put it.
            let from = (n * block) as usize;
            let to = (from + block as usize).min(self.bits.len());
            if from >= to {
                continue;
            }
            let pieces = extent_pieces(&self.file, block, from as u64, (to - from) as u64);
            let mut done = from;
            for (at, piece) in pieces.unwrap_or_default() {
                store.write(at, &self.bits[done..done + piece as usize])?;
                done += piece as usize;
            }
        }
        Ok(())
    }
}
