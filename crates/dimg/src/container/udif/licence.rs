//! A licence agreement in a UDIF image's resources, as `hdiutil udifrez` put it there and macOS
//! shows it before attaching: `LPic` maps each system language to its resources (IDs 5000 plus
//! the language's ID), `STR#` holds the language's name and button texts, `TEXT` (MacRoman) or
//! `RTF ` its agreement, and `TMPL` describes `LPic` for resource editors.

use crate::bytes::{mac_roman, to_mac_roman};

/// A language macOS shows an agreement in: its locale code, name, system language ID and the
/// six strings of its dialog (language, Agree, Disagree, Print, Save, the explanation).
#[derive(Debug)]
pub struct Language {
    pub code: &'static str,
    pub name: &'static str,
    pub id: u16,
    pub buttons: &'static [&'static str; 6],
}

const ENGLISH: [&str; 6] = [
    "English",
    "Agree",
    "Disagree",
    "Print",
    "Save",
    "If you agree with the terms of this license, press \"Agree\" to install the software.  \
     If you do not agree, press \"Disagree\".",
];

const GERMAN: [&str; 6] = [
    "Deutsch",
    "Akzeptieren",
    "Ablehnen",
    "Drucken",
    "Sichern...",
    "Klicken Sie in \"Akzeptieren\", wenn Sie mit den Bestimmungen des Software-Lizenzvertrags \
     einverstanden sind. Falls nicht, bitte \"Ablehnen\" anklicken. Sie können die Software nur \
     installieren, wenn Sie \"Akzeptieren\" angeklickt haben.",
];

/// The languages whose dialog texts dimg knows, by locale and Mac system language ID.
pub const LANGUAGES: &[Language] = &[
    Language {
        code: "en_US",
        name: "English",
        id: 0,
        buttons: &ENGLISH,
    },
    Language {
        code: "en_GB",
        name: "English (UK)",
        id: 2,
        buttons: &ENGLISH,
    },
    Language {
        code: "en_AU",
        name: "English (Australian)",
        id: 15,
        buttons: &ENGLISH,
    },
    Language {
        code: "en_IE",
        name: "English (Ireland)",
        id: 108,
        buttons: &ENGLISH,
    },
    Language {
        code: "de_DE",
        name: "German",
        id: 3,
        buttons: &GERMAN,
    },
    Language {
        code: "de_CH",
        name: "German (Swiss)",
        id: 19,
        buttons: &GERMAN,
    },
    Language {
        code: "de_AT",
        name: "German (Austrian)",
        id: 92,
        buttons: &GERMAN,
    },
];

/// The language of a locale code ("de_DE") or a bare language ("de": its first locale).
pub fn language(code: &str) -> Option<&'static Language> {
    let code = code.replace('-', "_");
    LANGUAGES
        .iter()
        .find(|l| l.code.eq_ignore_ascii_case(&code))
        .or_else(|| {
            LANGUAGES
                .iter()
                .find(|l| l.code[..2].eq_ignore_ascii_case(&code))
        })
}

/// One language's agreement.
#[derive(Debug, Clone)]
pub struct Licence {
    pub language: &'static Language,
    /// RTF as it is (it starts `{\rtf1`), or plain text.
    pub text: Vec<u8>,
}

impl Licence {
    fn is_rtf(&self) -> bool {
        self.text.starts_with(b"{\\rtf1")
    }
}

/// A resource to put in the image's resource fork.
pub struct Resource {
    pub kind: &'static str,
    pub id: i64,
    pub name: String,
    pub data: Vec<u8>,
}

/// The template of `LPic` that resource editors read (ResEdit's TMPL format).
fn lpic_template() -> Vec<u8> {
    let mut t = Vec::new();
    for (label, kind) in [
        ("Default Language ID", "DWRD"),
        ("Count", "OCNT"),
        ("****", "LSTC"),
        ("sys lang ID", "DWRD"),
        ("local res ID (offset from 5000", "DWRD"),
        ("2-byte language?", "DWRD"),
        ("****", "LSTE"),
    ] {
        t.push(label.len() as u8);
        t.extend_from_slice(label.as_bytes());
        t.extend_from_slice(kind.as_bytes());
    }
    t
}

fn mac_roman_bytes(text: &str) -> Vec<u8> {
    text.chars().map(to_mac_roman).collect()
}

/// The resources of an agreement in `licences` (the first is the default).
pub fn resources(licences: &[Licence]) -> Vec<Resource> {
    if licences.is_empty() {
        return Vec::new();
    }
    let mut lpic = 5000u16.to_be_bytes().to_vec();
    lpic.extend_from_slice(&(licences.len() as u16).to_be_bytes());
    let mut out = vec![Resource {
        kind: "TMPL",
        id: 128,
        name: "LPic".into(),
        data: lpic_template(),
    }];
    for licence in licences {
        let language = licence.language;
        let id = 5000 + i64::from(language.id);
        let mut strings = 6u16.to_be_bytes().to_vec();
        for s in language.buttons {
            let bytes = mac_roman_bytes(s);
            strings.push(bytes.len().min(255) as u8);
            strings.extend_from_slice(&bytes[..bytes.len().min(255)]);
        }
        out.push(Resource {
            kind: "STR#",
            id,
            name: language.name.into(),
            data: strings,
        });
        out.push(Resource {
            kind: if licence.is_rtf() { "RTF " } else { "TEXT" },
            id,
            name: format!("{} SLA", language.name),
            data: licence.text.clone(),
        });
        for n in [language.id, language.id, 0] {
            lpic.extend_from_slice(&n.to_be_bytes());
        }
    }
    out.push(Resource {
        kind: "LPic",
        id: 5000,
        name: String::new(),
        data: lpic,
    });
    out
}

/// Plain text as `TEXT` holds it: MacRoman ('?' for what it has no character for).
pub fn plain_text(text: &str) -> Vec<u8> {
    mac_roman_bytes(text)
}

/// An agreement read from an image: each language's name and text, the default first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Agreement {
    pub languages: Vec<AgreementText>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgreementText {
    /// The language as its `STR#` names it ("English"), or its system ID where none does.
    pub language: String,
    /// "TEXT" or "RTF".
    pub format: &'static str,
    /// Plain text (RTF as it is).
    pub text: String,
}

/// The agreement in `fork` (resource kind → (ID, data) list), if it has an `LPic`.
pub fn read(fork: &[(String, i64, Vec<u8>)]) -> Option<Agreement> {
    let find = |kind: &str, id: i64| {
        fork.iter()
            .find(|(k, i, _)| k == kind && *i == id)
            .map(|(_, _, d)| d)
    };
    let lpic = find("LPic", 5000)?;
    let word = |at: usize| {
        lpic.get(at..at + 2)
            .map(|b| i64::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let count = word(2)? as usize;
    let mut languages = Vec::new();
    for n in 0..count {
        let (system, offset) = (word(4 + 6 * n)?, word(6 + 6 * n)?);
        let id = 5000 + offset;
        let (format, text) = match (find("TEXT", id), find("RTF ", id)) {
            // Classic Mac text ends its lines in CR.
            (Some(t), _) => ("TEXT", mac_roman(t).replace('\r', "\n")),
            (None, Some(r)) => ("RTF", String::from_utf8_lossy(r).into_owned()),
            (None, None) => continue,
        };
        let language = find("STR#", id)
            .and_then(|s| s.get(3..3 + usize::from(*s.get(2)?)))
            .map_or_else(|| format!("language {system}"), mac_roman);
        languages.push(AgreementText {
            language,
            format,
            text,
        });
    }
    (!languages.is_empty()).then_some(Agreement { languages })
}
