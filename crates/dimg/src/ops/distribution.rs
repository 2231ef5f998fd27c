//! Distribution images (`dimg create -srcfolder DIR -settings FILE`): what a release pipeline
//! hands out, made on any machine without attaching anything. The Finder layout is the file
//! system's (`fs::finder`); this decides where it applies.

use crate::bytes::Seed;
use crate::container::udif::licence::{self, Agreement, Licence};
use crate::error::{Error, Result};
use crate::fs::finder;
use crate::fs::tree::{NodeKind, Tree};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What makes an image a distribution image; the default adds nothing.
#[derive(Clone, Debug, Default)]
pub struct Distribution {
    /// The Finder window's settings file (JSON, or TOML by its extension).
    pub settings: Option<PathBuf>,
    /// Licence agreements, each `FILE` (English) or `LANGUAGE:FILE` (`de:FILE`, `en_GB:FILE`),
    /// plain UTF-8 text or RTF; the first is the default.
    pub sla: Vec<String>,
    /// Byte-identical output (`SOURCE_DATE_EPOCH`, `-reproducible`): every date is at most this
    /// (seconds since 1970), owners are fixed and identifiers derive from the contents.
    pub epoch: Option<i64>,
}

/// The owner every file of a reproducible image gets: macOS's "unknown" user and group, which
/// a disk image's volume shows as whoever mounts it.
const UNKNOWN_OWNER: u32 = 99;

/// Makes `tree` the same wherever and whenever it was copied: dates after `epoch` become
/// `epoch`, owners [`UNKNOWN_OWNER`].
pub fn settle(tree: &mut Tree, epoch: i64) {
    for node in &mut tree.nodes {
        node.modified = node.modified.min(epoch);
        node.times.clamp_to(epoch);
        node.uid = UNKNOWN_OWNER;
        node.gid = UNKNOWN_OWNER;
    }
}

/// A reproducible image's seed: a digest of the volume's name and of every entry's path, kind,
/// size, link, mode, date and attributes (not of the files' bytes, which would mean reading them
/// all twice), and of the agreement's.
pub fn seed(tree: Option<&Tree>, volume_name: &str, agreement: &[Licence]) -> Seed {
    let mut digest = Sha256::new();
    let mut put = |bytes: &[u8]| {
        digest.update((bytes.len() as u64).to_be_bytes());
        digest.update(bytes);
    };
    put(volume_name.as_bytes());
    for node in tree.iter().flat_map(|t| &t.nodes) {
        put(node.name.as_bytes());
        let (kind, size, link) = match &node.kind {
            NodeKind::File { size } => (b'f', *size, ""),
            NodeKind::Directory { children } => (b'd', children.len() as u64, ""),
            NodeKind::Symlink { target } => (b'l', 0, target.as_str()),
        };
        put(&[kind]);
        put(&size.to_be_bytes());
        put(link.as_bytes());
        put(&[node.mode, node.uid, node.gid]
            .map(u32::to_be_bytes)
            .concat());
        put(&node.modified.to_be_bytes());
        for (name, value) in &node.streams {
            put(name.as_bytes());
            put(value);
        }
    }
    for licence in agreement {
        put(licence.language.code.as_bytes());
        put(&licence.text);
    }
    digest.finalize().into()
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
    finder::apply(&layout, tree, volume_name, distribution.epoch).map(Some)
}

/// The licence agreement of the image at `path`, which `attach` shows before anything else
/// (none where the image is encrypted: its resources are sealed until it is unlocked).
pub fn agreement_of(path: &Path) -> Result<Option<Agreement>> {
    // Wherever the image is: a file, or a file inside another image's volume.
    match super::browse::open_image(path, None) {
        Ok(opened) => Ok(opened.container.agreement()),
        Err(Error::PassphraseNeeded { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
