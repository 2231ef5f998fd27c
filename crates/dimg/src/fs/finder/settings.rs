//! A distribution image's Finder window, as a settings file (JSON, or TOML by its extension)
//! says it with dmgbuild's names for the same things, so that one file serves both tools.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the Finder shows when the volume opens. Paths are relative to the settings file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The window's top-left corner and its size, in points: `[[x, y], [width, height]]`.
    pub window_rect: ((i64, i64), (i64, i64)),
    pub icon_size: f64,
    pub text_size: f64,
    /// A picture (PNG, with `NAME@2x.png` beside it for Retina screens, found by itself) or a
    /// colour (`#rgb`, `#rrggbb`).
    pub background: Option<String>,
    /// The volume's icon (an .icns file).
    pub icon: Option<PathBuf>,
    /// Where each item's icon is centred in the window, by name.
    pub icon_locations: BTreeMap<String, (u32, u32)>,
    /// Links to make at the root, by name: `{"Applications": "/Applications"}`.
    pub symlinks: BTreeMap<String, String>,
    /// Items whose extension the Finder hides.
    pub hide_extensions: Vec<String>,
    /// Items the Finder does not show.
    pub hide: Vec<String>,
    /// Label colours by item: grey, green, purple, blue, yellow, red or orange.
    pub labels: BTreeMap<String, String>,
    pub show_status_bar: bool,
    pub show_tab_view: bool,
    pub show_toolbar: bool,
    pub show_pathbar: bool,
    pub show_sidebar: bool,
    pub sidebar_width: i64,
    /// Keep icons arranged by: name, date-modified, date-created, date-added, date-last-opened,
    /// size, kind or label (none by default: where `icon_locations` puts them).
    pub arrange_by: Option<String>,
    pub grid_offset: (f64, f64),
    pub grid_spacing: f64,
    pub scroll_position: (f64, f64),
    pub show_icon_preview: bool,
    pub show_item_info: bool,
    /// Labels under the icons ("bottom") or beside them ("right").
    pub label_pos: String,
}

impl Default for Settings {
    /// dmgbuild's defaults.
    fn default() -> Self {
        Settings {
            window_rect: ((100, 100), (640, 280)),
            icon_size: 128.0,
            text_size: 16.0,
            background: None,
            icon: None,
            icon_locations: BTreeMap::new(),
            symlinks: BTreeMap::new(),
            hide_extensions: Vec::new(),
            hide: Vec::new(),
            labels: BTreeMap::new(),
            show_status_bar: false,
            show_tab_view: false,
            show_toolbar: false,
            show_pathbar: false,
            show_sidebar: false,
            sidebar_width: 180,
            arrange_by: None,
            grid_offset: (0.0, 0.0),
            grid_spacing: 100.0,
            scroll_position: (0.0, 0.0),
            show_icon_preview: false,
            show_item_info: false,
            label_pos: "bottom".into(),
        }
    }
}

/// The background as the settings give it.
#[derive(Debug, Clone, PartialEq)]
pub enum Background {
    /// Red, green and blue from 0 to 1.
    Colour([f64; 3]),
    Picture(PathBuf),
}

/// Settings read from a file, with the folder its paths are relative to.
#[derive(Debug, Clone)]
pub struct Layout {
    pub settings: Settings,
    /// The settings file, to name in errors.
    pub path: PathBuf,
}

impl Layout {
    /// Reads `path`: TOML when it ends in `.toml`, JSON otherwise.
    pub fn load(path: &Path) -> Result<Layout> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let refuse = |reason: String| Error::Refused {
            path: path.into(),
            reason,
        };
        let settings: Settings = match path.extension().is_some_and(|e| e == "toml") {
            true => {
                toml::from_str(&text).map_err(|e| refuse(format!("not valid settings: {e}")))?
            }
            false => serde_json::from_str(&text)
                .map_err(|e| refuse(format!("not valid settings: {e}")))?,
        };
        let layout = Layout {
            settings,
            path: path.into(),
        };
        layout.check()?;
        Ok(layout)
    }

    pub fn refuse(&self, reason: String) -> Error {
        Error::Refused {
            path: self.path.clone(),
            reason,
        }
    }

    /// A path the settings give, relative to the settings file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(path)
    }

    pub fn background(&self) -> Result<Option<Background>> {
        let Some(text) = &self.settings.background else {
            return Ok(None);
        };
        if let Some(hex) = text.strip_prefix('#') {
            return colour(hex)
                .map(|c| Some(Background::Colour(c)))
                .ok_or_else(|| {
                    self.refuse(format!("background {text} is not a #rgb or #rrggbb colour"))
                });
        }
        Ok(Some(Background::Picture(self.resolve(Path::new(text)))))
    }

    /// Finder's colour index (bits 1-3 of the Finder flags) of a label colour's name.
    pub fn label(&self, name: &str) -> Result<u16> {
        const LABELS: [&str; 7] = ["grey", "green", "purple", "blue", "yellow", "red", "orange"];
        let name = if name == "gray" { "grey" } else { name };
        LABELS
            .iter()
            .position(|l| *l == name)
            .map(|i| i as u16 + 1)
            .ok_or_else(|| {
                self.refuse(format!(
                    "label colour {name} is not one of {}",
                    LABELS.join(", ")
                ))
            })
    }

    /// What the Finder would refuse: sizes out of its range, names it cannot hold.
    fn check(&self) -> Result<()> {
        let s = &self.settings;
        if !(16.0..=512.0).contains(&s.icon_size) {
            return Err(self.refuse(format!("icon_size {} is not from 16 to 512", s.icon_size)));
        }
        if !(10.0..=16.0).contains(&s.text_size) {
            return Err(self.refuse(format!("text_size {} is not from 10 to 16", s.text_size)));
        }
        let ((_, _), (w, h)) = s.window_rect;
        if w <= 0 || h <= 0 {
            return Err(self.refuse(format!("window_rect's size {w}x{h} is not a window's")));
        }
        if !["bottom", "right"].contains(&s.label_pos.as_str()) {
            return Err(self.refuse(format!("label_pos {} is not bottom or right", s.label_pos)));
        }
        if let Some(by) = &s.arrange_by {
            if arrange_key(by).is_none() {
                return Err(self.refuse(format!("arrange_by {by} is not a Finder arrangement")));
            }
        }
        for name in s.symlinks.keys() {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(self.refuse(format!("symlinks: \"{name}\" is not a file name")));
            }
        }
        for label in s.labels.values() {
            self.label(label)?;
        }
        Ok(())
    }
}

/// The Finder's name for an arrangement.
pub fn arrange_key(by: &str) -> Option<&'static str> {
    Some(match by {
        "name" => "name",
        "date-modified" => "dateModified",
        "date-created" => "dateCreated",
        "date-added" => "dateAdded",
        "date-last-opened" => "dateLastOpened",
        "size" => "size",
        "kind" => "kind",
        "label" => "label",
        _ => return None,
    })
}

/// `rgb` or `rrggbb` in hexadecimal, as fractions of 255.
fn colour(hex: &str) -> Option<[f64; 3]> {
    let digits: Vec<u32> = hex.chars().map(|c| c.to_digit(16)).collect::<Option<_>>()?;
    let bytes: Vec<u32> = match digits.len() {
        3 => digits.iter().map(|d| d * 17).collect(),
        6 => digits.chunks(2).map(|p| p[0] * 16 + p[1]).collect(),
        _ => return None,
    };
    Some([0, 1, 2].map(|i| f64::from(bytes[i]) / 255.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_says_what_json_says() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("layout.json");
        let toml = dir.path().join("layout.toml");
        std::fs::write(
            &json,
            r##"{"window_rect": [[1, 2], [300, 200]], "icon_size": 64, "background": "#fff",
                "icon_locations": {"A.app": [10, 20]}, "symlinks": {"Applications": "/Applications"}}"##,
        )
        .unwrap();
        std::fs::write(
            &toml,
            "window_rect = [[1, 2], [300, 200]]\nicon_size = 64\nbackground = \"#fff\"\n\
             icon_locations = { \"A.app\" = [10, 20] }\nsymlinks = { Applications = \"/Applications\" }\n",
        )
        .unwrap();
        let (a, b) = (Layout::load(&json).unwrap(), Layout::load(&toml).unwrap());
        assert_eq!(a.settings, b.settings);
        assert_eq!(a.settings.icon_size, 64.0);
        assert_eq!(a.background().unwrap(), Some(Background::Colour([1.0; 3])));
    }
}
