use crate::container::encrypted;
use crate::error::{Error, Result};
use crate::io::{FileSource, ReadAt};
use crate::magic::{self, Signature, Sniff};
use crate::secret::Passphrase;
use std::path::Path;

/// hdiutil isencrypted: the kind of encryption the file's magic number names, if any.
pub fn is_encrypted(path: &Path) -> Result<Option<&'static str>> {
    if !path.exists() && super::split_target(&path.to_string_lossy()).1 != "/" {
        // An image inside another: what opening it without a passphrase finds.
        let encryption =
            |s: &Signature| matches!(s, Signature::EncryptedV2 | Signature::EncryptedV1);
        return match super::open_image(path, None) {
            Ok(opened) => Ok(opened
                .signatures
                .into_iter()
                .find(encryption)
                .map(Signature::name)),
            Err(Error::PassphraseNeeded { .. }) => Ok(Some(Signature::EncryptedV2.name())),
            Err(e) => Err(e),
        };
    }
    let path = &crate::container::key_file(path);
    // A file, or on a server: its first bytes say.
    let file = match crate::remote::open_source(path) {
        // A sparse bundle without a token is not encrypted.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && path.ends_with("token") => {
            return Ok(None)
        }
        other => other.map_err(|e| Error::io(path, e))?,
    };
    if file.size() == 0 {
        return Ok(None);
    }
    let sniff = Sniff::read(&*file).map_err(|e| Error::io(path, e))?;
    Ok(magic::identify(&sniff)
        .into_iter()
        .find(|s| matches!(s, Signature::EncryptedV2 | Signature::EncryptedV1))
        .map(Signature::name))
}

/// hdiutil chpass: the image opens with `new` afterwards and no longer with `old`. Only the
/// wrapped key changes, in place; the encrypted data is not rewritten.
pub fn chpass(path: &Path, old: &Passphrase, new: &Passphrase) -> Result<()> {
    if is_encrypted(path)? != Some(Signature::EncryptedV2.name()) {
        return Err(Error::Refused {
            path: path.into(),
            reason: "is not an encrypted (encrcdsa v2) image".into(),
        });
    }
    // A sparse bundle keeps its key in its token.
    let key_file = crate::container::key_file(path);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&key_file)
        .map_err(|e| Error::io(&key_file, e))?;
    encrypted::chpass(&file, old, new, encrypted::DEFAULT_ITERATIONS)
        .map_err(|e| Error::io(&key_file, e))
}

/// How the keychain knows an encrypted image: its absolute path and the UUID its encryption
/// header carries. `None` for images that are not encrypted.
pub fn identity(path: &Path) -> Result<Option<String>> {
    // An image on a server is not kept in the keychain: its address is no file's identity.
    if crate::remote::is_url(path) || is_encrypted(path)?.is_none() {
        return Ok(None);
    }
    let key_file = crate::container::key_file(path);
    let file = FileSource::open(&key_file).map_err(|e| Error::io(&key_file, e))?;
    let Some(uuid) = encrypted::uuid(&file).map_err(|e| Error::io(path, e))? else {
        return Ok(None);
    };
    let absolute = path.canonicalize().map_err(|e| Error::io(path, e))?;
    Ok(Some(format!(
        "{}#{}",
        absolute.display(),
        crate::bytes::uuid_text(&uuid)
    )))
}
