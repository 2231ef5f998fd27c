//! The allocation file of an HFS+ volume being changed: a bit per allocation block, kept in
//! memory (a bit per 4 KiB: 32 MiB for a 1 TiB volume). Blocks freed are held until the next
//! commit, so that no file's new data lands in blocks the volume on disk still gives another.

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
        let mut bits = vec![0u8; len as usize];
        let mut done = 0u64;
        for &(start, count) in &file {
            if done == len {
                break;
            }
            let take = (u64::from(count) * block).min(len - done);
            store.disk.read_exact_at(
                u64::from(start) * block,
                &mut bits[done as usize..(done + take) as usize],
            )?;
            done += take;
        }
        if done < len {
            return Err(crate::error::FormatError::io(
                "HFS+ allocation file",
                0,
                format!("holds {done} bytes of the {len} its volume's blocks need"),
            ));
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

    /// `count` blocks, as few runs as it takes: right after `after` when that run is free (a
    /// file growing stays contiguous), else the first free runs from where the last ended.
    pub fn allocate(&mut self, count: u32, after: Option<u32>) -> io::Result<Vec<(u32, u32)>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        if count > self.free {
            return Err(no_space());
        }
        let mut runs = Vec::new();
        let mut left = count;
        let mut at = after.filter(|&a| a < self.total).unwrap_or(self.hint);
        let mut scanned = 0u64;
        while left > 0 {
            if scanned > u64::from(self.total) {
                return Err(no_space()); // the free count was wrong: refuse rather than loop
            }
            if at >= self.total {
                at = 0;
            }
            if self.bits[(at / 8) as usize] == 0xFF && at.is_multiple_of(8) {
                at += 8;
                scanned += 8;
                continue;
            }
            if self.used(at) {
                at += 1;
                scanned += 1;
                continue;
            }
            let start = at;
            while at < self.total && at - start < left && !self.used(at) {
                at += 1;
            }
            let len = at - start;
            scanned += u64::from(len);
            self.mark(start, len, true);
            self.free -= len;
            left -= len;
            runs.push((start, len));
        }
        self.hint = at;
        Ok(runs)
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
            // The n-th block of the allocation file, found through its extents.
            let mut skip = n;
            let Some(&(start, _)) = self.file.iter().find(|&&(_, count)| {
                let inside = skip < u64::from(count);
                if !inside {
                    skip -= u64::from(count);
                }
                inside
            }) else {
                continue;
            };
            let from = (n * block) as usize;
            let to = (from + block as usize).min(self.bits.len());
            if from < to {
                let at = (u64::from(start) + skip) * block;
                store.write(at, &self.bits[from..to])?;
            }
        }
        Ok(())
    }
}
