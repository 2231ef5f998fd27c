//! Distribution images' Finder layout (`dimg create -settings FILE`): what dmgbuild, appdmg and
//! create-dmg make with hdiutil and a running Finder, made here from the settings alone. The
//! layout adds to the folder's tree what the Finder reads when the volume opens: the root's
//! `.DS_Store` (window, icon view, background, positions), the background pictures in a hidden
//! `.background/` folder, the volume icon `.VolumeIcon.icns`, links such as `Applications`, and
//! the Finder flags of the catalog (custom icon, hidden, extension hidden, label colour), carried
//! by each node's `com.apple.FinderInfo` stream as macOS shows them.

mod alias;
pub mod ds_store;
mod settings;

pub use settings::{Background, Layout, Settings};

use crate::error::{Error, Result};
use crate::fs::hfsplus;
use crate::fs::tree::{Node, NodeKind, Times, Tree, FINDER_INFO};
use ds_store::{Record, Value};
use std::path::{Path, PathBuf};

/// Finder flags (the first Finder info's bytes 8-9).
const HAS_CUSTOM_ICON: u16 = 0x0400;
const IS_INVISIBLE: u16 = 0x4000;
const EXTENSION_HIDDEN: u16 = 0x0010;

/// What a laid-out tree needs while the volume is read: the folder holding the `.DS_Store`
/// written for it (removed when this is dropped).
pub struct Applied {
    _scratch: tempfile::TempDir,
}

/// Adds `layout` to `tree`, the contents of an HFS+ volume named `volume_name`; the files it
/// adds are dated at most `latest` (a reproducible image's epoch).
pub fn apply(
    layout: &Layout,
    tree: &mut Tree,
    volume_name: &str,
    latest: Option<i64>,
) -> Result<Applied> {
    let s = &layout.settings;
    for (name, target) in &s.symlinks {
        put(
            tree,
            0,
            name,
            NodeKind::Symlink {
                target: target.clone(),
            },
            None,
        )?;
    }
    let mut records = Vec::new();
    let mut view = icon_view(s);
    match layout.background()? {
        None => {}
        Some(Background::Colour([r, g, b])) => {
            view.insert("backgroundType".into(), 1.into());
            view.insert("backgroundColorRed".into(), r.into());
            view.insert("backgroundColorGreen".into(), g.into());
            view.insert("backgroundColorBlue".into(), b.into());
        }
        Some(Background::Picture(path)) => {
            let name = file_name(layout, &path)?;
            let folder = put(
                tree,
                0,
                ".background",
                NodeKind::Directory {
                    children: Vec::new(),
                },
                None,
            )?;
            let picture = put_file(tree, folder, &name, &path, latest)?;
            if let Some((retina, retina_name)) = retina(&path) {
                put_file(tree, folder, &retina_name, &retina, latest)?;
            }
            let target = alias::Target {
                volume_name,
                // What macOS gives as the volume's creation date: its root folder's.
                volume_created: hfsplus::mac_date(tree.nodes[0].modified),
                folder_name: ".background",
                folder_id: hfsplus::catalog_id(folder),
                file_name: &name,
                file_id: hfsplus::catalog_id(picture),
                file_created: hfsplus::mac_date(tree.nodes[picture].modified),
            };
            view.insert("backgroundType".into(), 2.into());
            view.insert(
                "backgroundImageAlias".into(),
                plist::Value::Data(alias::alias(&target)),
            );
            records.push(record(".", b"pBBk", Value::Blob(alias::bookmark(&target))));
        }
    }
    if let Some(icon) = &s.icon {
        let icon = layout.resolve(icon);
        put_file(tree, 0, ".VolumeIcon.icns", &icon, latest)?;
        set_flags(&mut tree.nodes[0], HAS_CUSTOM_ICON);
    }
    let item = |tree: &Tree, what: &str, name: &str| -> Result<usize> {
        child(tree, 0, name).ok_or_else(|| {
            layout.refuse(format!(
                "{what} names \"{name}\", which the folder does not hold"
            ))
        })
    };
    for name in &s.hide {
        let i = item(tree, "hide", name)?;
        set_flags(&mut tree.nodes[i], IS_INVISIBLE);
    }
    for name in &s.hide_extensions {
        let i = item(tree, "hide_extensions", name)?;
        set_flags(&mut tree.nodes[i], EXTENSION_HIDDEN);
    }
    for (name, colour) in &s.labels {
        let i = item(tree, "labels", name)?;
        set_flags(&mut tree.nodes[i], layout.label(colour)? << 1);
    }
    for (name, &(x, y)) in &s.icon_locations {
        item(tree, "icon_locations", name)?;
        records.push(record(
            name,
            b"Iloc",
            Value::Blob(ds_store::icon_location(x, y)),
        ));
    }
    records.push(record(".", b"vSrn", Value::Long(1)));
    records.push(record(".", b"bwsp", Value::Blob(binary_plist(window(s)))));
    records.push(record(".", b"icvp", Value::Blob(binary_plist(view))));
    records.push(record(".", b"icvl", Value::Type(*b"icnv")));

    let scratch = tempfile::Builder::new()
        .prefix("dimg-layout")
        .tempdir()
        .map_err(|e| Error::io(&std::env::temp_dir(), e))?;
    let store = scratch.path().join(".DS_Store");
    let bytes = ds_store::write(records).map_err(|reason| layout.refuse(reason))?;
    std::fs::write(&store, bytes).map_err(|e| Error::io(&store, e))?;
    put_file(tree, 0, ".DS_Store", &store, latest)?;
    Ok(Applied { _scratch: scratch })
}

fn record(name: &str, code: &[u8; 4], value: Value) -> Record {
    Record {
        name: name.into(),
        code: *code,
        value,
    }
}

fn binary_plist(dict: plist::Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    plist::Value::Dictionary(dict)
        .to_writer_binary(&mut out)
        .expect("a plist of numbers, strings and data writes into memory");
    out
}

/// The window (`bwsp`): its bounds and what it shows besides the icons.
fn window(s: &Settings) -> plist::Dictionary {
    let ((x, y), (w, h)) = s.window_rect;
    let mut d = plist::Dictionary::new();
    d.insert(
        "WindowBounds".into(),
        format!("{{{{{x}, {y}}}, {{{w}, {h}}}}}").into(),
    );
    d.insert("ShowStatusBar".into(), s.show_status_bar.into());
    d.insert("ContainerShowSidebar".into(), false.into());
    d.insert("PreviewPaneVisibility".into(), false.into());
    d.insert("SidebarWidth".into(), s.sidebar_width.into());
    d.insert("ShowTabView".into(), s.show_tab_view.into());
    d.insert("ShowToolbar".into(), s.show_toolbar.into());
    d.insert("ShowPathbar".into(), s.show_pathbar.into());
    d.insert("ShowSidebar".into(), s.show_sidebar.into());
    d
}

/// The icon view's options (`icvp`), a white background until one is set.
fn icon_view(s: &Settings) -> plist::Dictionary {
    let mut d = plist::Dictionary::new();
    d.insert("viewOptionsVersion".into(), 1.into());
    d.insert("backgroundType".into(), 0.into());
    for key in [
        "backgroundColorRed",
        "backgroundColorGreen",
        "backgroundColorBlue",
    ] {
        d.insert(key.into(), 1.0.into());
    }
    d.insert("gridOffsetX".into(), s.grid_offset.0.into());
    d.insert("gridOffsetY".into(), s.grid_offset.1.into());
    d.insert("gridSpacing".into(), s.grid_spacing.into());
    let arrange = s.arrange_by.as_deref().and_then(settings::arrange_key);
    d.insert("arrangeBy".into(), arrange.unwrap_or("none").into());
    d.insert("showIconPreview".into(), s.show_icon_preview.into());
    d.insert("showItemInfo".into(), s.show_item_info.into());
    d.insert("labelOnBottom".into(), (s.label_pos == "bottom").into());
    d.insert("textSize".into(), s.text_size.into());
    d.insert("iconSize".into(), s.icon_size.into());
    d.insert("scrollPositionX".into(), s.scroll_position.0.into());
    d.insert("scrollPositionY".into(), s.scroll_position.1.into());
    d
}

fn file_name(layout: &Layout, path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| layout.refuse(format!("{} is not a file's path", path.display())))
}

/// `NAME@2x.EXT` beside `NAME.EXT`, if there is one, with its name.
fn retina(path: &Path) -> Option<(PathBuf, String)> {
    let stem = path.file_stem()?.to_str()?;
    let name = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!("{stem}@2x.{ext}"),
        None => format!("{stem}@2x"),
    };
    let retina = path.with_file_name(&name);
    retina.is_file().then_some((retina, name))
}

fn child(tree: &Tree, dir: usize, name: &str) -> Option<usize> {
    tree.children(dir)
        .iter()
        .copied()
        .find(|&c| tree.nodes[c].name == name)
}

/// The file at `path` as `name` in folder `dir`, dated at most `latest`.
fn put_file(
    tree: &mut Tree,
    dir: usize,
    name: &str,
    path: &Path,
    latest: Option<i64>,
) -> Result<usize> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::Refused {
            path: path.into(),
            reason: "is not a file".into(),
        });
    }
    use std::os::unix::fs::MetadataExt;
    let modified = latest.map_or(meta.mtime(), |t| meta.mtime().min(t));
    let kind = NodeKind::File { size: meta.len() };
    put(tree, dir, name, kind, Some((path, modified)))
}

/// Node `name` of kind `kind` in folder `dir`: an entry of the folder of that name is replaced
/// (a stray `.DS_Store`), one of another kind refused; a folder already there is kept.
fn put(
    tree: &mut Tree,
    dir: usize,
    name: &str,
    kind: NodeKind,
    source: Option<(&Path, i64)>,
) -> Result<usize> {
    let parent = &tree.nodes[dir];
    let (path, modified) = source.map_or_else(
        || (parent.path.join(name), parent.modified),
        |(p, t)| (p.to_path_buf(), t),
    );
    let is_dir = matches!(kind, NodeKind::Directory { .. });
    let mode = match &kind {
        NodeKind::Directory { .. } => 0o755,
        NodeKind::File { .. } => 0o644,
        NodeKind::Symlink { .. } => 0o755,
    };
    if let Some(i) = child(tree, dir, name) {
        let node = &mut tree.nodes[i];
        return match (&node.kind, is_dir) {
            (NodeKind::Directory { .. }, true) => Ok(i),
            (NodeKind::Directory { .. }, false) | (_, true) => Err(Error::Refused {
                path: node.path.clone(),
                reason: "is in the way of what the layout puts there".into(),
            }),
            _ => {
                node.kind = kind;
                node.path = path;
                node.modified = modified;
                node.times = Times::at(modified);
                node.streams.clear();
                Ok(i)
            }
        };
    }
    let node = Node {
        name: name.into(),
        path,
        kind,
        modified,
        mode,
        uid: parent.uid,
        gid: parent.gid,
        file_id: (0, 0),
        times: Times::at(modified),
        streams: Vec::new(),
    };
    let i = tree.nodes.len();
    tree.nodes.push(node);
    let names: Vec<String> = tree
        .children(dir)
        .iter()
        .map(|&c| tree.nodes[c].name.clone())
        .collect();
    if let NodeKind::Directory { children } = &mut tree.nodes[dir].kind {
        let at = names.partition_point(|n| n.as_str() < name);
        children.insert(at, i);
    }
    Ok(i)
}

/// Sets `flags` in the node's Finder info (made empty where it had none).
fn set_flags(node: &mut Node, flags: u16) {
    let info = match node
        .streams
        .iter_mut()
        .find(|(n, v)| n == FINDER_INFO && v.len() == 32)
    {
        Some((_, v)) => v,
        None => {
            node.streams.retain(|(n, _)| n != FINDER_INFO);
            node.streams.push((FINDER_INFO.into(), vec![0; 32]));
            node.streams.sort();
            let at = node
                .streams
                .iter()
                .position(|(n, _)| n == FINDER_INFO)
                .expect("just put");
            &mut node.streams[at].1
        }
    };
    let old = u16::from_be_bytes([info[8], info[9]]);
    info[8..10].copy_from_slice(&(old | flags).to_be_bytes());
}
