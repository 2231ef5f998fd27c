//! Distribution images (`dimg create -srcfolder DIR -settings FILE`): what a release pipeline
//! hands out, made on any machine without attaching anything. The Finder layout is the file
//! system's (`fs::finder`); this decides where it applies.

use crate::error::{Error, Result};
use crate::fs::finder;
use crate::fs::tree::Tree;
use std::path::{Path, PathBuf};

/// What makes an image a distribution image; the default adds nothing.
#[derive(Clone, Debug, Default)]
pub struct Distribution {
    /// The Finder window's settings file (JSON, or TOML by its extension).
    pub settings: Option<PathBuf>,
}

/// Lays `tree` out as the settings say, for a volume named `volume_name` (HFS+ or HFSX if
/// `hfs_plus`); what it gives must live until the volume has been read.
pub fn lay_out(
    distribution: &Distribution,
    tree: Option<&mut Tree>,
    hfs_plus: bool,
    volume_name: &str,
    output: &Path,
) -> Result<Option<finder::Applied>> {
    let Some(settings) = &distribution.settings else {
        return Ok(None);
    };
    let refuse = |reason: &str| Error::Refused {
        path: output.into(),
        reason: reason.into(),
    };
    let tree =
        tree.ok_or_else(|| refuse("a Finder layout is for a folder's image (-srcfolder)"))?;
    if !hfs_plus {
        return Err(refuse(
            "a Finder layout needs an HFS+ volume (-fs HFS+, HFSX, JHFS+ or JHFSX)",
        ));
    }
    let layout = finder::Layout::load(settings)?;
    finder::apply(&layout, tree, volume_name).map(Some)
}
