//! Files whose bytes lie in runs on the volume, with holes between them: what the extent-based
//! readers (exFAT, NTFS, ext) put together, each run checked against the volume before a byte is
//! read, and runs looked up lazily where a file's map could be too large to hold (ext's block
//! maps and extent trees).

use crate::io::{Concat, ReadAt, Slice, Zeros};
use std::io;
use std::sync::Arc;

/// A piece of a file: `len` bytes at `at` on the volume, or `len` zeros (a hole, or bytes past
/// what was written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Disk { at: u64, len: u64 },
    Zeros(u64),
}

impl Piece {
    pub(crate) fn len(&self) -> u64 {
        match *self {
            Piece::Disk { len, .. } | Piece::Zeros(len) => len,
        }
    }
}

/// Appends `piece`, joining it to the last one where they continue each other.
pub(crate) fn push(pieces: &mut Vec<Piece>, piece: Piece) {
    if piece.len() == 0 {
        return;
    }
    match (pieces.last_mut(), piece) {
        (
            Some(Piece::Disk { at, len }),
            Piece::Disk {
                at: next,
                len: more,
            },
        ) if *at + *len == next => *len += more,
        (Some(Piece::Zeros(len)), Piece::Zeros(more)) => *len += more,
        _ => pieces.push(piece),
    }
}

/// The pieces cut to `size` bytes, bytes from `valid` on read as zeros; an error (from `short`)
/// when they hold fewer than `size` bytes or a piece lies past the end of `source`.
pub(crate) fn assemble(
    source: &Arc<dyn ReadAt>,
    pieces: &[Piece],
    size: u64,
    valid: u64,
    short: impl Fn(String) -> io::Error,
) -> io::Result<Arc<dyn ReadAt>> {
    let mut parts: Vec<Arc<dyn ReadAt>> = Vec::new();
    let mut done = 0u64;
    for &piece in pieces {
        if done >= size {
            break;
        }
        let len = piece.len().min(size - done);
        let from_disk = valid.saturating_sub(done).min(len);
        match piece {
            Piece::Disk { at, .. } => {
                if at.checked_add(len).is_none_or(|end| end > source.size()) {
                    return Err(short(format!(
                        "a run of {len} bytes at offset {at} lies past the volume's end ({} bytes)",
                        source.size()
                    )));
                }
                if from_disk > 0 {
                    parts.push(Arc::new(Slice::new(source.clone(), at, from_disk)));
                }
                if len > from_disk {
                    parts.push(Arc::new(Zeros(len - from_disk)));
                }
            }
            Piece::Zeros(_) => parts.push(Arc::new(Zeros(len))),
        }
        done += len;
    }
    if done < size {
        return Err(short(format!("its runs hold {done} of its {size} bytes")));
    }
    Ok(match parts.len() {
        1 => parts.remove(0),
        _ => Arc::new(Concat::new(parts)),
    })
}

/// Why a cluster chain could not be followed.
pub(crate) enum ChainError {
    /// It reached a cluster that is not on the volume.
    Outside(u32),
    /// It came back to a cluster it had passed.
    Loop(u32),
    Io(io::Error),
}

/// The clusters of the chain from `first`, at most `limit` of them: `next` gives a cluster's
/// successor, None at the chain's end. A chain that loops or leaves the volume (`holds`) stops
/// with the cluster where it did.
pub(crate) fn follow_chain(
    first: u32,
    limit: u64,
    holds: impl Fn(u32) -> bool,
    mut next: impl FnMut(u32) -> io::Result<Option<u32>>,
) -> Result<Vec<u32>, ChainError> {
    let (mut clusters, mut seen, mut n) = (Vec::new(), std::collections::HashSet::new(), first);
    while (clusters.len() as u64) < limit {
        if !holds(n) {
            return Err(ChainError::Outside(n));
        }
        if !seen.insert(n) {
            return Err(ChainError::Loop(n));
        }
        clusters.push(n);
        match next(n).map_err(ChainError::Io)? {
            Some(following) => n = following,
            None => break,
        }
    }
    Ok(clusters)
}

/// How many of the first `bits` bits of an allocation bitmap are set, read 64 KiB at a time.
pub(crate) fn count_set_bits(data: &dyn ReadAt, bits: u64) -> io::Result<u64> {
    let len = data.size().min(bits.div_ceil(8));
    let (mut set, mut at, mut chunk) = (0u64, 0u64, vec![0u8; 1 << 16]);
    while at < len {
        let n = chunk.len().min((len - at) as usize);
        data.read_exact_at(at, &mut chunk[..n])?;
        for (i, &b) in chunk[..n].iter().enumerate() {
            let bit = (at + i as u64) * 8;
            let b = match bits - bit {
                1..8 => b & ((1u8 << (bits - bit)) - 1),
                _ => b,
            };
            set += u64::from(b.count_ones());
        }
        at += n as u64;
    }
    Ok(set)
}

/// Where a file's block lies: the run holding logical block `block`, as (first logical block of
/// the run, its physical block or None for a hole, its length in blocks).
pub(crate) trait Locate: Send + Sync {
    fn locate(&self, block: u64) -> io::Result<(u64, Option<u64>, u64)>;
}

/// A file read through a [`Locate`]: each read finds its run on demand, so no map is held.
pub(crate) struct Mapped<L: Locate> {
    pub source: Arc<dyn ReadAt>,
    pub map: L,
    pub block: u64,
    pub size: u64,
}

impl<L: Locate> ReadAt for Mapped<L> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min((self.size - offset) as usize);
        let logical = offset / self.block;
        let (first, physical, blocks) = self.map.locate(logical)?;
        if first > logical || first.saturating_add(blocks) <= logical || blocks == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the map of a file gave no run for its block {logical}"),
            ));
        }
        let run_end = first.saturating_add(blocks).saturating_mul(self.block);
        let n = n.min(run_end.saturating_sub(offset).min(usize::MAX as u64) as usize);
        match physical {
            None => {
                buf[..n].fill(0);
                Ok(n)
            }
            Some(p) => {
                let at = (p + (logical - first))
                    .checked_mul(self.block)
                    .map(|a| a + offset % self.block)
                    .filter(|a| a.saturating_add(n as u64) <= self.source.size())
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("block {logical} of a file lies past the volume's end"),
                        )
                    })?;
                self.source.read_exact_at(at, &mut buf[..n])?;
                Ok(n)
            }
        }
    }

    fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_join_cut_and_read_zeros_past_valid_data() {
        let source: Arc<dyn ReadAt> = Arc::new((0..=99u8).collect::<Vec<u8>>());
        let mut pieces = Vec::new();
        push(&mut pieces, Piece::Disk { at: 10, len: 5 });
        push(&mut pieces, Piece::Disk { at: 15, len: 5 });
        push(&mut pieces, Piece::Zeros(3));
        push(&mut pieces, Piece::Disk { at: 50, len: 10 });
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        let short = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let file = assemble(&source, &pieces, 20, 16, short).unwrap();
        let mut got = vec![0xFFu8; 20];
        file.read_exact_at(0, &mut got).unwrap();
        let mut want: Vec<u8> = (10..20).collect();
        want.extend([0, 0, 0, 50, 51, 52, 0, 0, 0, 0]);
        assert_eq!(got, want, "bytes past the valid 16 are zeros, the hole too");
        let file = assemble(&source, &pieces, 18, 18, short).unwrap();
        file.read_exact_at(0, &mut got[..18]).unwrap();
        assert_eq!(&got[10..18], &[0, 0, 0, 50, 51, 52, 53, 54]);
        assert!(assemble(&source, &pieces, 40, 40, short).is_err());
        let past = [Piece::Disk { at: 95, len: 10 }];
        assert!(assemble(&source, &past, 10, 10, short).is_err());
    }
}
