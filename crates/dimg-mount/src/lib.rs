//! Attaching images: each volume dimg can browse becomes a read-only FUSE mount where the desktop
//! shows removable volumes, or (`nomount`) the decoded disk becomes a file, read/write where the
//! image can be written. The engine knows nothing
//! of FUSE; this crate translates its [`dimg::fs::Volume`] and [`dimg::io::ReadAt`] into FUSE
//! requests, and both front ends (the CLI and the app) attach, list and detach through it.
//!
//! A server is one process per image. It keeps a state file (what it mounted, its pid, its log)
//! in [`registry::state_dir`], so that any front end can list and detach what is attached, and
//! `/proc/self/mountinfo` says which of those mounts are still there.
//!
//! macOS, by design: fuser speaks to macFUSE and FUSE-T too, so the same servers would run there;
//! for the formats macOS reads natively, handing the image to `hdiutil attach` is the better
//! choice (its own drivers, Finder integration), with this crate for the rest.

mod change_fs;
mod disk_fs;
mod handler;
pub mod place;
pub mod registry;
mod server;
mod volume_fs;

pub use registry::{attached, detach, Detached};
pub use server::{hand_over, serve, spawn_attach, Server};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What to attach.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub image: PathBuf,
    /// Where the one volume goes (hdiutil's -mountpoint); by default a folder named after the
    /// volume where the file manager shows removable media.
    pub mount_point: Option<PathBuf>,
    /// Only this volume (as `dimg info` numbers them).
    pub volume: Option<dimg::ops::VolumeId>,
    /// Attach the disk only, as files: no volume is mounted.
    pub nomount: bool,
    pub access: Access,
    /// Writes go to this shadow file (a sparse image, made if missing), never to the image
    /// (hdiutil's -shadow): any image's disk can then be written.
    pub shadow: Option<PathBuf>,
}

/// Whether an attach may change the image (hdiutil's -readonly and -readwrite).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Read/write where the image can be written (UDRW, sparse images and bundles, raw disks),
    /// read-only for the rest.
    #[default]
    AsTheImageAllows,
    ReadOnly,
    /// Read/write, or refused.
    ReadWrite,
}

/// An attached image: what one server serves.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attachment {
    pub image: PathBuf,
    /// The server's process.
    pub pid: u32,
    /// Where the server writes what went wrong while it served.
    pub log: PathBuf,
    pub mounts: Vec<Mounted>,
    /// Whether the server still runs (a killed server may leave a dead mount for detach to clear).
    #[serde(default = "running")]
    pub running: bool,
    /// Whether it may change the image: detach then waits while the server brings the image up
    /// to date.
    #[serde(default)]
    pub writable: bool,
}

fn running() -> bool {
    true
}

/// One mount of an attachment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mounted {
    /// The volume, as `dimg info` numbers them (its partition; 0: the whole disk); none for the
    /// disk folder of `nomount`.
    pub volume: Option<dimg::ops::VolumeId>,
    /// "HFS+", "ISO 9660"..., or "disk" for `nomount`'s folder of disk files.
    pub file_system: String,
    /// The volume's name.
    pub name: String,
    pub mount_point: PathBuf,
    /// The files of a `nomount` folder: the whole disk, then each partition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
    /// Whether attach made the folder, so that detach takes it away again.
    pub created: bool,
}
