//! The blocks of an HFS+ volume being changed. Metadata (B-tree nodes, the bitmap, the volume
//! header) is read through a bounded cache and written into dirty blocks held until the next
//! commit, which writes them as one transaction: through the journal where the volume has one,
//! so that a crash leaves the volume as it was before or after it, never between.

use super::journal::{write_in_place, Journal};
use crate::io::WriteAt;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::sync::Arc;

/// Clean blocks kept (bytes); metadata a lookup reads again is read once.
const CACHE_BYTES: u64 = 16 << 20;

pub(super) struct Store {
    pub disk: Arc<dyn WriteAt>,
    /// The allocation block size: the unit of the cache and of the dirty set.
    pub block: u64,
    clean: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
    /// Changed metadata blocks by number, written at the next commit.
    dirty: BTreeMap<u64, Vec<u8>>,
    pub journal: Option<Journal>,
}

impl Store {
    pub fn new(disk: Arc<dyn WriteAt>, block: u64, journal: Option<Journal>) -> Store {
        Store {
            disk,
            block,
            clean: HashMap::new(),
            order: VecDeque::new(),
            dirty: BTreeMap::new(),
            journal,
        }
    }

    /// Block `n` as it is now: changed, cached, or read from the disk (and then cached).
    fn block_of(&mut self, n: u64) -> io::Result<&mut Vec<u8>> {
        if self.dirty.contains_key(&n) {
            return Ok(self.dirty.get_mut(&n).expect("checked"));
        }
        if !self.clean.contains_key(&n) {
            let mut bytes = vec![0u8; self.block as usize];
            self.disk.read_exact_at(n * self.block, &mut bytes)?;
            if self.order.len() as u64 >= CACHE_BYTES / self.block {
                if let Some(old) = self.order.pop_front() {
                    self.clean.remove(&old);
                }
            }
            self.order.push_back(n);
            self.clean.insert(n, bytes);
        }
        Ok(self.clean.get_mut(&n).expect("cached"))
    }

    /// Metadata bytes at volume offset `at`.
    pub fn read(&mut self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let pos = at + done as u64;
            let (n, within) = (pos / self.block, (pos % self.block) as usize);
            let block = self.block_of(n)?;
            let take = (buf.len() - done).min(block.len() - within);
            buf[done..done + take].copy_from_slice(&block[within..within + take]);
            done += take;
        }
        Ok(())
    }

    /// Changes metadata bytes at volume offset `at`; they reach the disk at the next commit.
    pub fn write(&mut self, at: u64, bytes: &[u8]) -> io::Result<()> {
        let mut done = 0;
        while done < bytes.len() {
            let pos = at + done as u64;
            let (n, within) = (pos / self.block, (pos % self.block) as usize);
            if !self.dirty.contains_key(&n) {
                let current = self.block_of(n)?.clone();
                self.dirty.insert(n, current);
            }
            let block = self.dirty.get_mut(&n).expect("made dirty");
            let take = (bytes.len() - done).min(block.len() - within);
            block[within..within + take].copy_from_slice(&bytes[done..done + take]);
            done += take;
        }
        Ok(())
    }

    /// Zeros `count` blocks from block `start` on the disk at once, as file data is written:
    /// free blocks about to join a file that the volume on disk does not reach yet.
    pub fn zero(&mut self, start: u64, count: u64) -> io::Result<()> {
        let zeros = vec![0u8; self.block as usize];
        for n in start..start + count {
            self.clean.remove(&n);
            if let Some(block) = self.dirty.get_mut(&n) {
                block.fill(0);
            }
            self.disk.write_all_at(n * self.block, &zeros)?;
        }
        Ok(())
    }

    /// Bytes waiting for the next commit.
    pub fn pending(&self) -> u64 {
        self.dirty.len() as u64 * self.block
    }

    /// Writes every changed block: as one journal transaction, then in place (or only in place
    /// on a volume without a journal), and makes it durable. The blocks stay cached, clean.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let written = match &mut self.journal {
            Some(journal) => journal.commit(&self.disk, self.block, &self.dirty),
            None => write_in_place(&*self.disk, self.block, &self.dirty),
        };
        // Not written (a full disk under the image): the changes stay, to be written by the
        // next commit; the volume on disk is as the last commit left it.
        written?;
        let dirty = std::mem::take(&mut self.dirty);
        for (n, bytes) in dirty {
            if !self.clean.contains_key(&n) {
                self.order.push_back(n);
            }
            self.clean.insert(n, bytes);
        }
        while self.order.len() as u64 > CACHE_BYTES / self.block {
            if let Some(old) = self.order.pop_front() {
                self.clean.remove(&old);
            }
        }
        Ok(())
    }
}
