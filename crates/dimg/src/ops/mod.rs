//! Whole jobs built from the layers. Long jobs report to a [`Progress`] sink and poll a [`Cancel`]
//! token; front ends decide how to show progress and when to cancel.

mod browse;
mod burn;
mod checksum;
mod compact;
mod convert;
mod create;
mod disc;
mod distribution;
mod encryption;
mod erase;
mod image_device;
mod info;
mod job;
mod output;
mod partition;
mod read_back;
pub mod request;
mod resize;
mod restore;
mod sparse;
pub mod text;
mod verify;

pub use crate::container::udif::licence::{Agreement, AgreementText};
pub use crate::container::Check;
pub use crate::partition::Layout;
pub use browse::{
    extract, extract_boot, list, list_tree, open_image, snapshot_named, snapshots, split_target,
    volumes, volumes_of, ExtractReport, FoundVolume, ImageVolumes, Listing, VolumeId,
};
pub use burn::{burn, BurnOptions, BurnReport, Burner};
pub use checksum::{checksum, ChecksumReport, TYPES as CHECKSUM_TYPES};
pub use compact::{compact, compact_shadow, CompactReport};
pub use convert::{convert, ConvertOptions, ConvertReport, Encryption, OutputFormat};
pub use create::{create, CreateOptions, CreateReport, FileSystem};
pub use distribution::{agreement_of, Distribution};
pub use encryption::{chpass, identity, is_encrypted};
pub use erase::{erase, EraseOptions, EraseReport, Scheme, VolumeFormat};
pub use image_device::{image_device, image_partition};
pub use info::{info, Abilities, ImageInfo, PartitionInfo, VolumeInfo};
pub use job::{Cancel, NoProgress, Progress};
pub use partition::{add_partition, delete_partition, resize_partition, PartitionReport};
pub use resize::{limits, limits_shadow, resize, resize_shadow, Limits, ResizeReport};
pub use restore::{restore, RestoreReport};
pub use verify::{verify, verify_volumes, FirstAidReport, VerifyReport, VolumeCheck};
