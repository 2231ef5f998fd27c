//! Images read where they live: an `http://` or `https://` URL opens everywhere a path does (as
//! hdiutil attaches one), read by HTTP range requests through a bounded cache of blocks. The
//! blocks a read needs that are not cached are fetched together, several requests at once, and
//! sequential work also fetches the blocks after them. The object must not change while it is
//! read: every response must carry the ETag (or Last-Modified) the first one had.

use crate::io::ReadAt;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The cache's block, and the least a request asks for.
const BLOCK: u64 = 256 << 10;
/// Blocks the cache holds: 32 MiB.
const CACHED: usize = 128;
/// Blocks fetched beyond a read at most: the window grows from one, doubling with each read that
/// goes on where the last one ended (sequential work), and closes at a read elsewhere.
const AHEAD: u64 = 16;
/// Blocks one request asks for at most: a long run is fetched as several requests at once.
const PER_REQUEST: u64 = 4;

/// Whether `path` is an `http://` or `https://` URL rather than a file's path.
pub fn is_url(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|t| t.starts_with("http://") || t.starts_with("https://"))
}

/// An object on an HTTP server, read by ranges.
pub struct HttpSource {
    url: String,
    agent: ureq::Agent,
    size: u64,
    /// The object's version when first read: its ETag, else its Last-Modified.
    version: Option<String>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    blocks: HashMap<u64, Arc<[u8]>>,
    /// Cached blocks in the order fetched: the oldest goes first.
    order: VecDeque<u64>,
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
            .build();
        let mut source = HttpSource {
            url: url.to_string(),
            agent,
            size: 0,
            version: None,
            cache: Mutex::default(),
        };
        let response = source.request(0, 0)?;
        source.version = version_of(&response);
        source.size = content_range(&response, 0, 0)?;
        Ok(source)
    }

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
                    let why = [t.message().map(str::to_string), {
                        std::error::Error::source(&t).map(|e| e.to_string())
                    }];
                    let why: Vec<String> = why.into_iter().flatten().collect();
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

    /// Blocks `run` (consecutive), fetched as requests of at most [`PER_REQUEST`] blocks, all
    /// at once.
    fn fetch_run(&self, run: std::ops::Range<u64>) -> io::Result<Vec<(u64, Arc<[u8]>)>> {
        let pieces: Vec<std::ops::Range<u64>> = run
            .clone()
            .step_by(PER_REQUEST as usize)
            .map(|b| b..(b + PER_REQUEST).min(run.end))
            .collect();
        let fetched = std::thread::scope(|scope| {
            let handles: Vec<_> = pieces
                .iter()
                .map(|piece| {
                    scope.spawn(move || {
                        let start = piece.start * BLOCK;
                        let end = (piece.end * BLOCK).min(self.size);
                        self.fetch(start, end - start)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a fetch does not panic"))
                .collect::<io::Result<Vec<Vec<u8>>>>()
        })?;
        Ok(pieces
            .iter()
            .zip(fetched)
            .flat_map(|(piece, data)| {
                let blocks: Vec<(u64, Arc<[u8]>)> = piece
                    .clone()
                    .zip(data.chunks(BLOCK as usize))
                    .map(|(b, bytes)| (b, Arc::from(bytes)))
                    .collect();
                blocks
            })
            .collect())
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
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.size - offset);
        let (first, last) = (offset / BLOCK, (offset + n - 1) / BLOCK);
        let lock = || self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (mut have, missing) = {
            let mut cache = lock();
            cache.ahead = match offset == cache.next {
                true => (cache.ahead * 2).clamp(1, AHEAD),
                false => 0,
            };
            cache.next = offset + n;
            let upto = (last + cache.ahead).min(self.blocks() - 1);
            let mut have = HashMap::new();
            let mut missing = Vec::new();
            for b in first..=upto {
                match cache.blocks.get(&b) {
                    Some(data) => drop(have.insert(b, data.clone())),
                    None => missing.push(b),
                }
            }
            (have, missing)
        };
        // Runs of missing blocks, each fetched whole.
        let mut fetched = Vec::new();
        let mut k = 0;
        while k < missing.len() {
            let start = missing[k];
            while k + 1 < missing.len() && missing[k + 1] == missing[k] + 1 {
                k += 1;
            }
            fetched.extend(self.fetch_run(start..missing[k] + 1)?);
            k += 1;
        }
        {
            let mut cache = lock();
            for (b, data) in &fetched {
                if cache.blocks.insert(*b, data.clone()).is_none() {
                    cache.order.push_back(*b);
                }
            }
            while cache.order.len() > CACHED {
                let old = cache.order.pop_front().expect("more than none");
                cache.blocks.remove(&old);
            }
        }
        have.extend(fetched);
        let mut done = 0usize;
        for b in first..=last {
            let data = &have[&b];
            let from = (offset + done as u64 - b * BLOCK) as usize;
            let take = (data.len() - from).min(n as usize - done);
            buf[done..done + take].copy_from_slice(&data[from..from + take]);
            done += take;
        }
        Ok(done)
    }

    fn size(&self) -> u64 {
        self.size
    }
}
