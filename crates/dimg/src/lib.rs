//! The dimg engine: every disk-image format, partition map, file system and operation.
//!
//! Data flows up through four layers, each knowing only the one below it through a small trait:
//! bytes ([`io::ReadAt`]) → containers ([`container`]: an image file becomes a virtual disk) →
//! partitions ([`partition`]) → file systems ([`fs`]). [`ops`] builds whole jobs from the layers;
//! they report to a [`ops::Progress`] sink, obey a [`ops::Cancel`] token and never print.

mod bytes;
pub mod codec;
pub mod container;
pub mod device;
pub mod error;
pub mod fs;
pub mod io;
pub mod magic;
pub mod ops;
pub mod partition;
pub mod remote;
pub mod secret;
pub mod wrapper;

pub use error::{Error, FormatError, Result};
pub use secret::Passphrase;
