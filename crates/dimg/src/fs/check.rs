//! What First Aid (`dimg verify -fs`) finds in a volume and the repairs it may make, shared by
//! the checkers of the file systems it knows (`hfsplus::check`, `fat::check`). A checker only
//! reads; a repair comes back as bytes to write, or as an edit of the volume's structures made
//! through the file system's own editor, which `ops` applies through the image.

use crate::io::WriteAt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

/// One thing wrong with a volume: the structure or file it is in, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub structure: String,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.structure, self.what)
    }
}

/// A change that is safe to make: what it changes, as one line, and the bytes it writes at
/// offsets of the volume.
#[derive(Debug)]
pub struct Repair {
    pub what: String,
    pub writes: Vec<(u64, Vec<u8>)>,
}

/// Repairs that change a volume's structures (records taken out of or put into a B-tree),
/// which cannot be bytes worked out beforehand: made on the volume given, as one change, they
/// say what they changed, a line each.
pub struct Edit(pub Box<EditVolume>);

/// An edit made on a volume, giving what it changed.
pub type EditVolume = dyn FnOnce(Arc<dyn WriteAt>) -> io::Result<Vec<String>> + Send;

impl std::fmt::Debug for Edit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Edit")
    }
}

/// What a checker found in one volume.
#[derive(Debug, Default)]
pub struct Findings {
    pub problems: Vec<Problem>,
    /// The repairs for those of the problems that can be mended safely.
    pub repairs: Vec<Repair>,
    /// The structural repairs, made before the others (which a check after them works out
    /// anew).
    pub edit: Option<Edit>,
    /// What was checked, by name ("files", "catalog nodes"...).
    pub counted: BTreeMap<&'static str, u64>,
}

impl Findings {
    pub(crate) fn problem(&mut self, structure: impl Into<String>, what: impl Into<String>) {
        self.problems.push(Problem {
            structure: structure.into(),
            what: what.into(),
        });
    }

    /// Records a problem found while reading a structure (`e` names what was wrong), for checks
    /// that go on without it.
    pub(crate) fn failed(&mut self, structure: &str, e: io::Error) {
        self.problem(structure, e.to_string());
    }
}

/// How a checker reports its progress and learns that it should stop: `ops` ties it to its
/// `Progress` sink and `Cancel` token.
pub trait Watch {
    fn begin(&self, phase: &str, total: u64);
    fn advance(&self, done: u64);
    fn cancelled(&self) -> bool;
}

/// A watcher for tests: nothing to show, never cancelled.
#[cfg(test)]
pub(crate) struct Unwatched;

#[cfg(test)]
impl Watch for Unwatched {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn cancelled(&self) -> bool {
        false
    }
}

/// `Err(Interrupted)` once the watcher has cancelled: checkers call it between steps.
pub(crate) fn go_on(watch: &dyn Watch) -> io::Result<()> {
    match watch.cancelled() {
        true => Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled")),
        false => Ok(()),
    }
}

/// A set of numbered things (blocks, nodes, clusters) as one bit each.
pub(crate) struct Bits(Vec<u8>);

impl Bits {
    pub(crate) fn new(count: u64) -> Self {
        Bits(vec![0u8; count.div_ceil(8) as usize])
    }
    pub(crate) fn get(&self, n: u64) -> bool {
        self.0
            .get((n / 8) as usize)
            .is_some_and(|b| b & (0x80 >> (n % 8)) != 0)
    }
    /// Sets bit `n`; whether it was set already.
    pub(crate) fn set(&mut self, n: u64) -> bool {
        match self.0.get_mut((n / 8) as usize) {
            Some(b) => {
                let was = *b & (0x80 >> (n % 8)) != 0;
                *b |= 0x80 >> (n % 8);
                was
            }
            None => false,
        }
    }
}
