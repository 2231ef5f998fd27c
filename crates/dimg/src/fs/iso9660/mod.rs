//! ISO 9660 (ECMA-119) with Joliet and Rock Ridge, and El Torito boot catalogs: what the reader
//! and the writer share.

pub mod el_torito;
mod read;
mod write;

pub use read::Iso9660;
pub use write::{build, Built, Options, Shared};

use crate::io::ReadAt;
use std::sync::Arc;

/// A logical sector: 2,048 bytes, the unit of every extent and descriptor.
const SECTOR: u64 = 2048;

/// A CD's sectors by LBA, beyond the 2048-byte view of its first track that the volume opens on:
/// every track's 2,048 bytes of user data, and the larger payload of a Mode 2 Form 2 sector
/// (Video CD streams, CD-i and PlayStation audio and video), which that view cannot show. A disc
/// image provides them; the reader needs nothing else of the disc.
pub trait DiscSectors: Send + Sync {
    /// Every track's user data, sector `lba` at `lba × 2048`.
    fn form1(&self) -> Arc<dyn ReadAt>;
    /// Mode 2 Form 2 user data, sector `lba` at `lba × form2_sector()`.
    fn form2(&self) -> Arc<dyn ReadAt>;
    /// Bytes of user data in one Form 2 sector.
    fn form2_sector(&self) -> u64;
}
