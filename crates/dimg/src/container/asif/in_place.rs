//! An ASIF image changed in place (a read/write attach). A chunk not stored yet is written whole
//! at the end of the file on its first write (zeros around what is written), and only then named
//! by its table's entry, so that a crash leaves every entry pointing at a whole chunk. A table
//! not stored yet is written the same way, and then listed in a new version of the directory,
//! written over the directory not in force and raised above it only once complete: a crash leaves
//! the older directory in force.

use super::writer::{directory, entry};
use super::{Chunks, Read};
use crate::io::{band_span, past_end, ReadAt, WriteAt};
use std::io;
use std::sync::{Arc, Mutex};

pub(super) struct Growing {
    file: Arc<dyn WriteAt>,
    chunks: Arc<Chunks>,
    /// The directories and the file's end; held while a chunk is added.
    state: Mutex<State>,
}

struct State {
    /// The directory in force: its version, and each table's chunk number.
    version: u64,
    tables: Vec<u64>,
    /// Where the directory in force is, and where the next version goes.
    current: u64,
    spare: u64,
    /// The first chunk of the file nothing uses.
    end_chunk: u64,
}

impl Growing {
    pub(super) fn new(file: Arc<dyn WriteAt>, read: &Read) -> Growing {
        Growing {
            file,
            chunks: read.chunks.clone(),
            state: Mutex::new(State {
                version: read.directory.version,
                tables: read.directory.tables.clone(),
                current: read.directory.at,
                spare: read.spare.at,
                end_chunk: read.end_chunk,
            }),
        }
    }

    /// Stores logical chunk `chunk`, whose bytes from `within` are `data`, at the end of the file.
    fn add_chunk(&self, chunk: u64, within: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Another writer may have added it while this one waited.
        if let Some(start) = self.chunks.offset_of(chunk) {
            return self.file.write_all_at(start + within, data);
        }
        let g = self.chunks.geometry;
        let (t, e) = g.slot(chunk);
        let new_table = state.tables[t as usize] == 0;
        let table = match new_table {
            true => {
                let number = state.end_chunk;
                self.file
                    .write_all_at(number * g.chunk, &vec![0u8; g.table_bytes() as usize])?;
                state.end_chunk += 1;
                number
            }
            false => state.tables[t as usize],
        };
        let number = state.end_chunk;
        let start = number * g.chunk;
        let mut whole = vec![0u8; g.chunk as usize];
        whole[within as usize..within as usize + data.len()].copy_from_slice(data);
        self.file.write_all_at(start, &whole)?;
        state.end_chunk += 1;
        self.file
            .write_all_at(table * g.chunk + 8 * e as u64, &entry(number))?;
        if new_table {
            self.list_table(&mut state, t, table)?;
        }
        self.chunks
            .at
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chunk, start);
        Ok(())
    }

    /// Lists table `t`, in chunk `table`, in the next version of the directory: the spare one
    /// is written with every table, made durable, and only then given its version.
    fn list_table(&self, state: &mut State, t: u64, table: u64) -> io::Result<()> {
        state.tables[t as usize] = table;
        let version = state.version + 1;
        let bytes = directory(version, &state.tables);
        self.file.write_all_at(state.spare + 8, &bytes[8..])?;
        self.file.sync()?;
        self.file.write_all_at(state.spare, &bytes[..8])?;
        state.version = version;
        std::mem::swap(&mut state.current, &mut state.spare);
        Ok(())
    }
}

impl ReadAt for Growing {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.chunks.read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.chunks.size
    }
    fn zeros_until(&self, offset: u64) -> u64 {
        self.chunks.zeros_until(offset)
    }
}

impl WriteAt for Growing {
    fn write_all_at(&self, mut offset: u64, mut buf: &[u8]) -> io::Result<()> {
        let (size, chunk_size) = (self.chunks.size, self.chunks.geometry.chunk);
        past_end(offset, buf.len(), size)?;
        while let Some((chunk, within, n)) =
            band_span(offset, buf.len(), chunk_size, size).filter(|_| !buf.is_empty())
        {
            match self.chunks.offset_of(chunk) {
                Some(start) => self.file.write_all_at(start + within, &buf[..n])?,
                None => self.add_chunk(chunk, within, &buf[..n])?,
            }
            offset += n as u64;
            buf = &buf[n..];
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync()
    }
}
