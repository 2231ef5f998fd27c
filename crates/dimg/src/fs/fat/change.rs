//! A FAT volume changed in place (a read/write attach), through the `fatfs` crate it is built
//! with: every change goes straight to the disk under it; one lock serialises them, as fatfs
//! keeps its state in cells. New folders are put right as fatfs 0.3 leaves them ([`dots_first`]),
//! and the volume's free count is written when it is closed.

use super::read::Fat;
use super::write::{dots_first, fat_time};
use super::{Layout, ATTR_LONG_NAME, ENTRY};
use crate::fs::{components, days_from_civil, errno, lookup, split, Stat, VolumeMut};
use crate::io::{ReadAt, WriteAt};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex, MutexGuard};

/// The disk as fatfs takes it: a cursor over the volume's bytes. fatfs reads a directory entry
/// or a FAT entry at a time; the blocks read last are kept (written through, never behind), so
/// that a path lookup reads each block of its folders once rather than once per entry.
struct Cursor {
    disk: Arc<dyn WriteAt>,
    at: u64,
    kept: Arc<Mutex<Kept>>,
}

/// The blocks kept, oldest first; shared with [`FatChange`], which writes past fatfs once (a new
/// folder's first entries) and then forgets them.
#[derive(Default)]
struct Kept {
    blocks: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
}

/// Bytes of a kept block, and how many are kept (1 MiB).
const BLOCK: u64 = 4096;
const KEPT: usize = 256;

impl Read for Cursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (n, within) = (self.at / BLOCK, (self.at % BLOCK) as usize);
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if !kept.blocks.contains_key(&n) {
            let start = n * BLOCK;
            let len = self.disk.size().saturating_sub(start).min(BLOCK) as usize;
            let mut bytes = vec![0u8; len];
            self.disk.read_exact_at(start, &mut bytes)?;
            if kept.order.len() == KEPT {
                if let Some(old) = kept.order.pop_front() {
                    kept.blocks.remove(&old);
                }
            }
            kept.order.push_back(n);
            kept.blocks.insert(n, bytes);
        }
        let block = &kept.blocks[&n];
        let take = buf.len().min(block.len().saturating_sub(within));
        buf[..take].copy_from_slice(&block[within..within + take]);
        self.at += take as u64;
        Ok(take)
    }
}

impl Write for Cursor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.disk.write_all_at(self.at, buf)?;
        let end = self.at + buf.len() as u64;
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        for n in self.at / BLOCK..end.div_ceil(BLOCK) {
            if let Some(block) = kept.blocks.get_mut(&n) {
                let start = n * BLOCK;
                let (lo, hi) = (self.at.max(start), end.min(start + block.len() as u64));
                if lo < hi {
                    block[(lo - start) as usize..(hi - start) as usize]
                        .copy_from_slice(&buf[(lo - self.at) as usize..(hi - self.at) as usize]);
                }
            }
        }
        self.at = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Cursor {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let at = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(by) => self.disk.size().checked_add_signed(by),
            SeekFrom::Current(by) => self.at.checked_add_signed(by),
        };
        self.at = at.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.at)
    }
}

type FileSystem = fatfs::FileSystem<Cursor>;

/// fatfs's file system, moved to whichever thread holds the lock.
struct Held(FileSystem);

// SAFETY: FileSystem is not Send only because its options hold `&'static dyn` references to
// fatfs's default code-page converter and time provider, stateless statics that any thread may
// call; its cells are touched only by the thread holding `FatChange::fs`'s lock.
unsafe impl Send for Held {}

pub struct FatChange {
    disk: Arc<dyn WriteAt>,
    kept: Arc<Mutex<Kept>>,
    label: String,
    /// None once closed.
    fs: Mutex<Option<Held>>,
}

fn unix_time(t: fatfs::DateTime) -> i64 {
    let days = days_from_civil(
        i64::from(t.date.year),
        i64::from(t.date.month),
        i64::from(t.date.day),
    );
    days * 86_400
        + i64::from(t.time.hour) * 3600
        + i64::from(t.time.min) * 60
        + i64::from(t.time.sec)
}

fn stat_of(e: &fatfs::DirEntry<Cursor>) -> Stat {
    Stat {
        directory: e.is_dir(),
        size: if e.is_dir() { 0 } else { e.len() },
        modified: Some(unix_time(e.modified())),
        ..Stat::default()
    }
}

impl FatChange {
    /// The FAT volume on `disk` (a partition), to be changed.
    pub fn open(disk: Arc<dyn WriteAt>) -> io::Result<FatChange> {
        let label = Fat::open(disk.clone())
            .map(|fat| crate::fs::Volume::label(&fat))
            .unwrap_or_default();
        let kept = Arc::new(Mutex::new(Kept::default()));
        let cursor = Cursor {
            disk: disk.clone(),
            at: 0,
            kept: kept.clone(),
        };
        let options = fatfs::FsOptions::new().update_accessed_date(false);
        let fs = fatfs::FileSystem::new(cursor, options)?;
        Ok(FatChange {
            disk,
            kept,
            label,
            fs: Mutex::new(Some(Held(fs))),
        })
    }

    fn fs(&self) -> io::Result<MutexGuard<'_, Option<Held>>> {
        let guard = self.fs.lock().unwrap_or_else(|p| p.into_inner());
        match guard.is_some() {
            true => Ok(guard),
            false => Err(errno(libc::EROFS)),
        }
    }

    /// The entry at `path` (not the root), found as FAT finds names: without regard to case.
    fn entry<'a>(fs: &'a FileSystem, path: &str) -> io::Result<fatfs::DirEntry<'a, Cursor>> {
        let (parent, name) = split(path);
        let dir = match parent {
            "" => fs.root_dir(),
            p => fs.root_dir().open_dir(p)?,
        };
        for e in dir.iter() {
            let e = e?;
            if e.file_name().to_uppercase() == name.to_uppercase() {
                return Ok(e);
            }
        }
        Err(errno(libc::ENOENT))
    }

    fn file<'a>(fs: &'a FileSystem, path: &str) -> io::Result<fatfs::File<'a, Cursor>> {
        let e = Self::entry(fs, path)?;
        match e.is_dir() {
            true => Err(errno(libc::EISDIR)),
            false => Ok(e.to_file()),
        }
    }

    /// Runs `change`, which adds an entry to the folder `parent`. fatfs zeroes a cluster it
    /// adds to a folder, but not one it adds to the FAT32 root (to fatfs the root's file has no
    /// entry, so it is no folder): the root would grow into a cluster whose stale bytes read as
    /// entries after the new ones. Whatever follows the new entries there is cleared here.
    fn adding_to(&self, parent: &str, change: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        if !parent.is_empty() {
            return change();
        }
        let before = Fat::open(self.disk.clone())?.root_clusters()?.len();
        let changed = change();
        let fat = Fat::open(self.disk.clone())?;
        let grown = fat.root_clusters()?.split_off(before);
        // The new entries run from the first grown cluster's start through their short entry;
        // a change that failed wrote none worth keeping.
        let mut in_new_entries = changed.is_ok();
        for at in &grown {
            let mut bytes = vec![0u8; fat.cluster_bytes() as usize];
            self.disk.read_exact_at(*at, &mut bytes)?;
            let mut keep = 0;
            while in_new_entries && keep < bytes.len() {
                in_new_entries = bytes[keep + 11] == ATTR_LONG_NAME;
                keep += ENTRY;
            }
            bytes[keep..].fill(0);
            self.disk.write_all_at(*at, &bytes)?;
        }
        if !grown.is_empty() {
            self.forget_kept();
        }
        changed
    }

    /// After a write past fatfs, which its kept blocks do not see.
    fn forget_kept(&self) {
        *self.kept.lock().unwrap_or_else(|p| p.into_inner()) = Kept::default();
    }

    /// Zeros from the file's end up to `len`.
    fn grow(file: &mut fatfs::File<'_, Cursor>, len: u64) -> io::Result<()> {
        let end = file.seek(SeekFrom::End(0))?;
        let zeros = [0u8; 64 << 10];
        let mut left = len.saturating_sub(end);
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        Ok(())
    }
}

impl VolumeMut for FatChange {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn stat(&self, path: &str) -> io::Result<Stat> {
        let guard = self.fs()?;
        let fs = &guard.as_ref().expect("open").0;
        match path {
            "" => Ok(Stat {
                directory: true,
                ..Stat::default()
            }),
            _ => Ok(stat_of(&Self::entry(fs, path)?)),
        }
    }

    fn find(&self, parent: &str, name: &str) -> io::Result<(String, Stat)> {
        let guard = self.fs()?;
        let path = match parent {
            "" => name.to_string(),
            p => format!("{p}/{name}"),
        };
        let e = Self::entry(&guard.as_ref().expect("open").0, &path)?;
        Ok((e.file_name(), stat_of(&e)))
    }

    fn list(&self, path: &str) -> io::Result<Vec<(String, Stat)>> {
        let guard = self.fs()?;
        let fs = &guard.as_ref().expect("open").0;
        let dir = match path {
            "" => fs.root_dir(),
            _ => match Self::entry(fs, path)? {
                e if e.is_dir() => e.to_dir(),
                _ => return Err(errno(libc::ENOTDIR)),
            },
        };
        let mut out = Vec::new();
        for e in dir.iter() {
            let e = e?;
            let name = e.file_name();
            if name != "." && name != ".." {
                out.push((name, stat_of(&e)));
            }
        }
        Ok(out)
    }

    fn read(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let guard = self.fs()?;
        let mut file = Self::file(&guard.as_ref().expect("open").0, path)?;
        if file.seek(SeekFrom::Start(offset))? < offset {
            return Ok(0);
        }
        let mut done = 0;
        while done < buf.len() {
            match file.read(&mut buf[done..])? {
                0 => break,
                n => done += n,
            }
        }
        Ok(done)
    }

    fn write(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let guard = self.fs()?;
        let mut file = Self::file(&guard.as_ref().expect("open").0, path)?;
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > u64::from(u32::MAX))
        {
            // FAT counts a file's bytes in 32 bits.
            return Err(errno(libc::EFBIG));
        }
        Self::grow(&mut file, offset)?;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(data)?;
        file.flush()
    }

    fn create_file(&self, path: &str) -> io::Result<()> {
        let guard = self.fs()?;
        let fs = &guard.as_ref().expect("open").0;
        if Self::entry(fs, path).is_ok() {
            return Err(errno(libc::EEXIST));
        }
        self.adding_to(split(path).0, || fs.root_dir().create_file(path).map(drop))
    }

    fn create_dir(&self, path: &str) -> io::Result<()> {
        let guard = self.fs()?;
        let fs = &guard.as_ref().expect("open").0;
        if Self::entry(fs, path).is_ok() {
            return Err(errno(libc::EEXIST));
        }
        self.adding_to(split(path).0, || fs.root_dir().create_dir(path).map(drop))?;
        // Put its first entries right, where dimg's own reader finds the folder.
        let fat = Fat::open(self.disk.clone())?;
        let first = fat.first_cluster(&lookup(&fat, path)?)?;
        if let Some(first) = first {
            let mut boot = vec![0u8; 64];
            self.disk.read_exact_at(0, &mut boot)?;
            let at = Layout::read(&boot)?
                .span(u64::from(first), u64::from(first) + 1)
                .0;
            let mut head = vec![0u8; 4 * ENTRY];
            self.disk.read_exact_at(at, &mut head)?;
            let under_root = components(path).count() == 1;
            if let Some(fixed) = dots_first(&head, under_root) {
                self.disk.write_all_at(at, &fixed)?;
                self.forget_kept();
            }
        }
        Ok(())
    }

    fn set_len(&self, path: &str, len: u64) -> io::Result<()> {
        let guard = self.fs()?;
        let mut file = Self::file(&guard.as_ref().expect("open").0, path)?;
        if len > u64::from(u32::MAX) {
            return Err(errno(libc::EFBIG));
        }
        let end = file.seek(SeekFrom::End(0))?;
        match len < end {
            true => {
                file.seek(SeekFrom::Start(len))?;
                file.truncate()
            }
            false => Self::grow(&mut file, len),
        }
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        let guard = self.fs()?;
        let fs = &guard.as_ref().expect("open").0;
        let e = Self::entry(fs, path)?;
        if e.is_dir()
            && e.to_dir().iter().filter_map(Result::ok).any(|c| {
                let n = c.file_name();
                n != "." && n != ".."
            })
        {
            return Err(errno(libc::ENOTEMPTY));
        }
        let removed = fs.root_dir().remove(path);
        removed
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let guard = self.fs()?;
        let fs = &guard.as_ref().expect("open").0;
        let moving = Self::entry(fs, from)?;
        if let Ok(there) = Self::entry(fs, to) {
            let same = from.to_uppercase() == to.to_uppercase();
            match (moving.is_dir(), there.is_dir()) {
                _ if same => {}
                (false, true) => return Err(errno(libc::EISDIR)),
                (true, false) => return Err(errno(libc::ENOTDIR)),
                _ => {
                    drop(guard);
                    self.remove(to)?;
                    return self.rename(from, to);
                }
            }
        }
        if moving.is_dir() && (to.to_uppercase() + "/").starts_with(&(from.to_uppercase() + "/")) {
            // Into itself.
            return Err(errno(libc::EINVAL));
        }
        let root = fs.root_dir();
        self.adding_to(split(to).0, || root.rename(from, &root, to))
    }

    fn set_modified(&self, path: &str, time: i64) -> io::Result<()> {
        let guard = self.fs()?;
        let e = Self::entry(&guard.as_ref().expect("open").0, path)?;
        // A folder's time stays: fatfs sets only a file's.
        if !e.is_dir() {
            let mut file = e.to_file();
            // fatfs deprecates this for a clock-wide TimeProvider, which cannot set one file's
            // time to one the user chose.
            #[allow(deprecated)]
            file.set_modified(fat_time(time));
            file.flush()?;
        }
        Ok(())
    }

    fn space(&self) -> io::Result<(u64, u64, u64)> {
        let guard = self.fs()?;
        let stats = &guard.as_ref().expect("open").0.stats()?;
        let cluster = u64::from(stats.cluster_size());
        Ok((
            u64::from(stats.total_clusters()) * cluster,
            u64::from(stats.free_clusters()) * cluster,
            cluster,
        ))
    }

    fn sync(&self) -> io::Result<()> {
        self.disk.sync()
    }

    fn close(&self) -> io::Result<()> {
        let taken = self.fs.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(Held(fs)) = taken {
            fs.unmount()?;
        }
        self.disk.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::check::Unwatched;
    use crate::fs::Volume;
    use crate::io::FileSource;
    use std::collections::BTreeSet;

    /// A FAT32 root grown, by new files, new folders and a rename into it, over clusters that
    /// once held a file's bytes lists exactly the entries made, and checks clean.
    #[test]
    fn a_fat32_root_grown_over_old_bytes_holds_only_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fat32.img");
        let mut file = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let options = super::super::Options {
            volume_name: "ROOT".into(),
            fat32: true,
            size: Some(40 << 20),
        };
        super::super::write(&mut file, None, &options).unwrap();
        let disk: Arc<dyn WriteAt> = Arc::new(FileSource::from_file(file).unwrap());
        let fat = Fat::open(disk.clone()).unwrap();
        let root = fat.root_clusters().unwrap();
        assert_eq!(root.len(), 1, "a new root takes one cluster");
        // Every cluster past the root's as a former file left it: bytes that read as entries.
        let past = root[0] + fat.cluster_bytes();
        let stale = vec![b'A'; (disk.size() - past) as usize];
        disk.write_all_at(past, &stale).unwrap();

        let volume = FatChange::open(disk.clone()).unwrap();
        let mut made = BTreeSet::new();
        for i in 0..24 {
            let name = format!("a file with a long name {i:02}.txt");
            volume.create_file(&name).unwrap();
            made.insert(name);
        }
        for i in 0..8 {
            let name = format!("a folder {i}");
            volume.create_dir(&name).unwrap();
            made.insert(name);
        }
        volume.create_file("a folder 0/moved out.txt").unwrap();
        volume
            .rename("a folder 0/moved out.txt", "moved into the root.txt")
            .unwrap();
        made.insert("moved into the root.txt".into());
        volume.close().unwrap();

        let fat = Fat::open(disk.clone()).unwrap();
        assert!(fat.root_clusters().unwrap().len() > 2, "the root grew");
        let listed: BTreeSet<String> = fat
            .read_dir(&fat.root())
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(listed, made);
        let found = super::super::check(disk, &Unwatched).unwrap();
        assert!(found.problems.is_empty(), "{:?}", found.problems);
    }
}
