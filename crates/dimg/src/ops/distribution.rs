//! Distribution images (`dimg create -srcfolder DIR -settings FILE`): what a release pipeline
//! hands out, made on any machine without attaching anything. The Finder layout is the file
//! system's (`fs::finder`); this decides where it applies.

use crate::container;
use crate::container::udif::licence::{self, Agreement, Licence};
use crate::error::{Error, Result};
use crate::fs::finder;
use crate::fs::tree::Tree;
use std::path::{Path, PathBuf};

/// What makes an image a distribution image; the default adds nothing.
#[derive(Clone, Debug, Default)]
pub struct Distribution {
    /// The Finder window's settings file (JSON, or TOML by its extension).
    pub settings: Option<PathBuf>,
    /// Licence agreements, each `FILE` (English) or `LANGUAGE:FILE` (`de:FILE`, `en_GB:FILE`),
    /// plain UTF-8 text or RTF; the first is the default.
    pub sla: Vec<String>,
}

/// The licence agreement `distribution` asks for, read from its files, for an image that is
/// UDIF if `udif`.
pub fn agreement(distribution: &Distribution, udif: bool, output: &Path) -> Result<Vec<Licence>> {
    if !distribution.sla.is_empty() && !udif {
        return Err(Error::Refused {
            path: output.into(),
            reason: "a licence agreement goes in a UDIF image (UDZO, ULFO, UDRW ...)".into(),
        });
    }
    let mut licences: Vec<Licence> = Vec::new();
    for spec in &distribution.sla {
        let (language, file) = match spec.split_once(':') {
            Some((code, file)) if licence::language(code).is_some() => {
                (licence::language(code).expect("just found"), file)
            }
            _ => (&licence::LANGUAGES[0], spec.as_str()),
        };
        let path = Path::new(file);
        let refuse = |reason: String| Error::Refused {
            path: path.into(),
            reason,
        };
        if licences.iter().any(|l| l.language.code == language.code) {
            return Err(refuse(format!("a second agreement in {}", language.name)));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = match bytes.starts_with(b"{\\rtf1") {
            true => bytes,
            false => licence::plain_text(
                std::str::from_utf8(&bytes)
                    .map_err(|_| refuse("is neither RTF nor UTF-8 text".into()))?,
            ),
        };
        licences.push(Licence { language, text });
    }
    Ok(licences)
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

/// The licence agreement of the image at `path`, which `attach` shows before anything else
/// (none where the image is encrypted: its resources are sealed until it is unlocked).
pub fn agreement_of(path: &Path) -> Result<Option<Agreement>> {
    match container::open(path, None) {
        Ok(opened) => Ok(opened.container.agreement()),
        Err(Error::PassphraseNeeded { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
