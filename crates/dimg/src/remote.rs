//! Images read where they live: an `http://` or `https://` URL opens everywhere a path does (as
//! hdiutil attaches one), read by HTTP range requests through a bounded cache of blocks. The
//! blocks a read needs that are not cached or coming are fetched at once, several requests in
//! parallel; sequential work also has the blocks after it fetched in the background, in a window
//! that grows while the reads go on in order, so that a distant server's round trips overlap.
//! The object must not change while it is read: every response must carry the ETag (or
//! Last-Modified) the first one had.

use crate::io::{FileSource, ReadAt};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The cache's block, and the least a request asks for.
const BLOCK: u64 = 256 << 10;
/// Blocks the cache holds: 48 MiB, the read-ahead window and what reads take.
const CACHED: usize = 192;
/// Blocks fetched beyond a read at most (32 MiB): the window grows from one, doubling with each
/// read that goes on where the last one ended (sequential work), and closes at a read elsewhere.
const AHEAD: u64 = 128;
/// Blocks one request asks for at most: a long run is fetched as several requests at once. The
/// background fetches ask for whole ones only (but at the end): fewer, larger requests.
const PER_REQUEST: u64 = 8;

/// Whether `path` is an `http://` or `https://` URL rather than a file's path.
pub fn is_url(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|t| t.starts_with("http://") || t.starts_with("https://"))
}

/// The file at `path` to be read: on its server when `path` is a URL.
pub fn open_source(path: &Path) -> io::Result<Arc<dyn ReadAt>> {
    Ok(match is_url(path) {
        true => Arc::new(HttpSource::open(&path.to_string_lossy())?),
        false => Arc::new(FileSource::open(path)?),
    })
}

/// An object on an HTTP server, read by ranges.
pub struct HttpSource {
    shared: Arc<Shared>,
}

/// What the reads and the background fetches share.
struct Shared {
    url: String,
    agent: ureq::Agent,
    size: u64,
    /// The object's version when first read: its ETag, else its Last-Modified.
    version: Option<String>,
    cache: Mutex<Cache>,
    /// Told when fetched blocks arrive (or a fetch gives up).
    arrived: Condvar,
}

#[derive(Default)]
struct Cache {
    blocks: HashMap<u64, Arc<[u8]>>,
    /// Cached blocks in the order fetched: the oldest goes first.
    order: VecDeque<u64>,
    /// Blocks being fetched.
    coming: HashSet<u64>,
    /// Where the last read ended, and the blocks fetched beyond a read now.
    next: u64,
    ahead: u64,
}

fn problem(what: impl Into<String>) -> io::Error {
    io::Error::other(what.into())
}

impl HttpSource {
    /// Asks for the object's first byte: the answer gives its size and version, and shows that
    /// the server serves ranges.
    pub fn open(url: &str) -> io::Result<HttpSource> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(20))
            .timeout_read(Duration::from_secs(60))
            // As many connections kept as background requests go at once.
            .max_idle_connections_per_host((AHEAD / PER_REQUEST) as usize * 2)
            .build();
        let mut shared = Shared {
            url: url.to_string(),
            agent,
            size: 0,
            version: None,
            cache: Mutex::default(),
            arrived: Condvar::new(),
        };
        let response = shared.request(0, 0)?;
        shared.version = version_of(&response);
        shared.size = content_range(&response, 0, 0)?;
        Ok(HttpSource {
            shared: Arc::new(shared),
        })
    }
}

impl Shared {
    /// A 206 answer to a request for bytes `start..=end`.
    fn request(&self, start: u64, end: u64) -> io::Result<ureq::Response> {
        let response = self
            .agent
            .get(&self.url)
            .set("Range", &format!("bytes={start}-{end}"))
            .call()
            .map_err(|e| match e {
                ureq::Error::Status(code, r) => {
                    problem(format!("the server answered {code} {}", r.status_text()))
                }
                ureq::Error::Transport(t) => {
                    let why: Vec<String> = (t.message().map(str::to_string).into_iter())
                        .chain(std::error::Error::source(&t).map(|e| e.to_string()))
                        .collect();
                    problem(format!(
                        "cannot reach the server: {} ({})",
                        t.kind(),
                        why.join(": ")
                    ))
                }
            })?;
        match response.status() {
            206 => Ok(response),
            200 => Err(problem(
                "the server does not serve byte ranges (it sent the whole file), which reading \
                 an image where it lives needs",
            )),
            code => Err(problem(format!(
                "the server answered {code} to a range request"
            ))),
        }
    }

    /// Bytes `start..start + len` of the object, from a server that still has the version
    /// first read.
    fn fetch(&self, start: u64, len: u64) -> io::Result<Vec<u8>> {
        let response = self.request(start, start + len - 1)?;
        if version_of(&response) != self.version {
            return Err(problem(
                "the file changed on the server while it was being read",
            ));
        }
        if content_range(&response, start, start + len - 1)? != self.size {
            return Err(problem("the file's size changed on the server"));
        }
        let mut data = vec![0u8; len as usize];
        response
            .into_reader()
            .read_exact(&mut data)
            .map_err(|e| problem(format!("the server's answer ended early: {e}")))?;
        Ok(data)
    }

    fn blocks(&self) -> u64 {
        self.size.div_ceil(BLOCK)
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fetches `blocks` (marked coming by the caller) into the cache: each run of consecutive
    /// ones as requests of at most [`PER_REQUEST`] blocks, all at once, each piece cached as it
    /// arrives. Blocks not fetched are no longer coming.
    fn fetch_blocks(&self, blocks: &[u64]) -> io::Result<()> {
        let mut pieces: Vec<std::ops::Range<u64>> = Vec::new();
        for &b in blocks {
            match pieces.last_mut() {
                Some(p) if p.end == b && p.end - p.start < PER_REQUEST => p.end += 1,
                _ => pieces.push(b..b + 1),
            }
        }
        let results: Vec<io::Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = pieces
                .iter()
                .map(|piece| scope.spawn(move || self.fetch_piece(piece.clone())))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a fetch does not panic"))
                .collect()
        });
        results.into_iter().collect()
    }

    fn fetch_piece(&self, piece: std::ops::Range<u64>) -> io::Result<()> {
        let start = piece.start * BLOCK;
        let fetched = self.fetch(start, (piece.end * BLOCK).min(self.size) - start);
        let mut cache = self.lock();
        for b in piece.clone() {
            cache.coming.remove(&b);
        }
        if let Ok(data) = &fetched {
            for (b, bytes) in piece.zip(data.chunks(BLOCK as usize)) {
                if cache.blocks.insert(b, Arc::from(bytes)).is_none() {
                    cache.order.push_back(b);
                }
            }
            while cache.order.len() > CACHED {
                let old = cache.order.pop_front().expect("more than none");
                cache.blocks.remove(&old);
            }
        }
        self.arrived.notify_all();
        fetched.map(drop)
    }
}

/// The object's version as the server names it.
fn version_of(response: &ureq::Response) -> Option<String> {
    response
        .header("ETag")
        .or_else(|| response.header("Last-Modified"))
        .map(str::to_string)
}

/// The object's size from a 206 answer's `Content-Range: bytes START-END/SIZE`, which must be
/// the range asked for.
fn content_range(response: &ureq::Response, start: u64, end: u64) -> io::Result<u64> {
    let header = response.header("Content-Range").unwrap_or_default();
    let parsed = header
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('/'))
        .and_then(|(range, size)| {
            let (from, to) = range.split_once('-')?;
            Some((from.parse().ok()?, to.parse().ok()?, size.parse().ok()?))
        });
    match parsed {
        Some((from, to, size)) if (from, to) == (start, end) && to < size => Ok(size),
        _ => Err(problem(format!(
            "the server's Content-Range {header:?} is not the range asked for ({start}-{end})"
        ))),
    }
}

impl ReadAt for HttpSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let shared = &self.shared;
        if offset >= shared.size || buf.is_empty() {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(shared.size - offset);
        let (first, last) = (offset / BLOCK, (offset + n - 1) / BLOCK);
        let mut cache = shared.lock();
        cache.ahead = match offset == cache.next {
            true => (cache.ahead * 2).clamp(1, AHEAD),
            false => 0,
        };
        cache.next = offset + n;
        // The blocks after this read, fetched in the background for the reads to come.
        let wanted =
            |cache: &Cache, b: &u64| !cache.blocks.contains_key(b) && !cache.coming.contains(b);
        let end = (last + cache.ahead).min(shared.blocks() - 1);
        let ahead: Vec<u64> = (last + 1..=end).filter(|b| wanted(&cache, b)).collect();
        let whole =
            ahead.len() as u64 >= PER_REQUEST || ahead.last() == Some(&(shared.blocks() - 1));
        if !ahead.is_empty() && whole {
            cache.coming.extend(&ahead);
            let background = self.shared.clone();
            std::thread::spawn(move || background.fetch_blocks(&ahead));
        }
        // Each block in turn: copied when cached, waited for when coming, else fetched with
        // the others missing from here on.
        let mut done = 0usize;
        let mut b = first;
        while b <= last {
            if let Some(data) = cache.blocks.get(&b) {
                let from = (offset + done as u64 - b * BLOCK) as usize;
                let take = (data.len() - from).min(n as usize - done);
                buf[done..done + take].copy_from_slice(&data[from..from + take]);
                done += take;
                b += 1;
            } else if cache.coming.contains(&b) {
                cache = shared
                    .arrived
                    .wait(cache)
                    .unwrap_or_else(|p| p.into_inner());
            } else {
                let missing: Vec<u64> = (b..=last).filter(|b| wanted(&cache, b)).collect();
                cache.coming.extend(&missing);
                drop(cache);
                shared.fetch_blocks(&missing)?;
                cache = shared.lock();
            }
        }
        Ok(done)
    }

    fn size(&self) -> u64 {
        self.shared.size
    }
}
