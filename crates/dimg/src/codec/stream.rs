//! Streams decoded as they are read: an installer package's files (zlib, gzip, bzip2, XZ) and
//! the payloads inside them, which may be far larger than memory and carry no index to seek by.

use crate::io::ReadAt;
use std::io::{self, Read};
use std::sync::Mutex;

/// How a stream is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Stored,
    Zlib,
    Gzip,
    Bzip2,
    Xz,
}

/// A byte stream that can be sent to another thread.
pub type Stream = Box<dyn Read + Send>;

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Stored => "stored",
            Encoding::Zlib => "zlib",
            Encoding::Gzip => "gzip",
            Encoding::Bzip2 => "bzip2",
            Encoding::Xz => "XZ",
        }
    }

    /// What `input` decodes to.
    pub fn decoder(self, input: Stream) -> Stream {
        match self {
            Encoding::Stored => input,
            Encoding::Zlib => Box::new(flate2::read::ZlibDecoder::new(input)),
            Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Encoding::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(input)),
            // A hostile header could ask for a 4 GiB dictionary.
            Encoding::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
                input,
                true,
                super::XZ_MEMORY_KIB,
            )),
        }
    }
}

/// Opens a stream anew, from its start.
pub type Reopen = Box<dyn Fn() -> io::Result<Stream> + Send + Sync>;

/// A decoded stream of known length, read at any offset. A read that goes on from where the last
/// one ended goes on decoding; one before it decodes again from the start. Its readers go mostly
/// forward: a file extracted in order, an archive's files in the archive's order.
pub struct Forward {
    reopen: Reopen,
    size: u64,
    /// Where the decoder is, and the decoder; none after a failed read.
    cursor: Mutex<Option<(u64, Stream)>>,
}

impl Forward {
    pub fn new(size: u64, reopen: Reopen) -> Self {
        Forward {
            reopen,
            size,
            cursor: Mutex::new(None),
        }
    }
}

/// Reads into all of `buf` unless the stream ends first; how many bytes were read.
pub fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads and drops `n` bytes; how many there were before the stream ended.
pub fn skip(r: &mut dyn Read, n: u64) -> io::Result<u64> {
    io::copy(&mut r.take(n), &mut io::sink())
}

impl ReadAt for Forward {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        let (mut at, mut stream) = match cursor.take() {
            Some((at, stream)) if at <= offset => (at, stream),
            _ => (0, (self.reopen)()?),
        };
        let want = buf.len().min((self.size - offset) as usize);
        at += skip(&mut stream, offset - at)?;
        let got = match at == offset {
            true => read_full(&mut stream, &mut buf[..want])?,
            false => 0,
        };
        if at < offset || got < want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the stream ends at byte {}, before the {} it should hold",
                    at + got as u64,
                    self.size
                ),
            ));
        }
        *cursor = Some((at + got as u64, stream));
        Ok(got)
    }
    fn size(&self) -> u64 {
        self.size
    }
}
