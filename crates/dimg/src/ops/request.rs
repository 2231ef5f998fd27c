//! A request for a new image in hdiutil's words (format names, partition maps, encryptions,
//! sizes such as "100m"), read into the option types of [`convert`](super::convert) and
//! [`create`](super::create). The command line and the app both read them here, so they take
//! the same words and refuse with the same messages. Format and file-system names parse as
//! [`OutputFormat`] and [`FileSystem`](super::FileSystem) themselves.

use super::{ConvertOptions, Encryption, Layout, OutputFormat};
use crate::secret::Passphrase;
use std::sync::Arc;

/// A size as hdiutil's -size takes it: "100m", "2g", "512k", "4096b" or plain bytes.
pub fn size(text: &str) -> Result<u64, String> {
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = lower.split_at(
        lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len()),
    );
    let shift = match unit {
        "" | "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("size {text}: use a number with b, k, m, g or t")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("size {text} is not a size dimg can make"))
}

/// A partition map by hdiutil's name (-layout).
pub fn layout(name: &str) -> Result<Layout, String> {
    Layout::parse(name).ok_or_else(|| format!("layout {name}: use GPTSPUD, SPUD, MBRSPUD or NONE"))
}

/// The AES key size an encryption's name (-encryption) asks for, in bits.
pub fn key_bits(name: &str) -> Result<u32, String> {
    match name.to_ascii_uppercase().as_str() {
        "AES-128" | "AES128" => Ok(128),
        "AES-256" | "AES256" => Ok(256),
        _ => Err(format!(
            "{name} is not an encryption dimg writes (AES-128, AES-256)"
        )),
    }
}

/// A new image's output settings as a form asks for them: the format by name, whether an
/// existing file may be replaced, and the AES key size with the password typed for it, which
/// must be there (a form cannot ask again, as the command line does).
pub fn convert_options(
    format: &str,
    overwrite: bool,
    key_bits: Option<u32>,
    password: Option<String>,
) -> Result<ConvertOptions, String> {
    let mut options = ConvertOptions::new(format.parse::<OutputFormat>()?);
    options.overwrite = overwrite;
    if let Some(bits) = key_bits {
        let typed = password.unwrap_or_default();
        if typed.is_empty() {
            return Err("an encrypted image needs a password".into());
        }
        let passphrase = Arc::new(Passphrase::new(typed.into_bytes()));
        options.encryption = Some(Encryption::new(bits, passphrase));
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_hdiutil_units_and_refuse_what_dimg_cannot_make() {
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("512K"), Ok(512 << 10));
        assert_eq!(size("2g"), Ok(2 << 30));
        assert!(size("10q").unwrap_err().starts_with("size 10q"));
        assert!(size("0m").is_err());
        assert!(size("99999999999t").is_err());
    }

    #[test]
    fn an_encrypted_image_from_a_form_needs_its_password() {
        let refused = convert_options("UDZO", false, Some(256), Some(String::new()));
        assert_eq!(refused.unwrap_err(), "an encrypted image needs a password");
        let options = convert_options("udzo", true, Some(256), Some("pw".into())).unwrap();
        assert_eq!(options.format, OutputFormat::Udzo);
        assert!(options.overwrite);
        assert_eq!(options.encryption.map(|e| e.key_bits), Some(256));
        assert!(convert_options("UDZO", false, None, None)
            .unwrap()
            .encryption
            .is_none());
    }
}
