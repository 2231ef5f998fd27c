//! The menu bar, Disk Utility's shape. Item ids are handed to the page, which owns the actions.

use tauri::menu::{Menu, MenuBuilder, MenuEvent, MenuItemBuilder, SubmenuBuilder};
use tauri::{AppHandle, Emitter, Runtime};

/// The Images menu: each of its items acts on the selected image.
const IMAGES: &str = "images";

pub fn build<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<Menu<R>> {
    let item = |id: &str, text: &str, keys: Option<&str>| {
        let builder = MenuItemBuilder::with_id(id, text);
        match keys {
            Some(k) => builder.accelerator(k).build(app),
            None => builder.build(app),
        }
    };
    let new_image = SubmenuBuilder::new(app, "New Image")
        .item(&item("new-blank", "Blank Image…", Some("CmdOrCtrl+N"))?)
        .item(&item(
            "new-folder",
            "Image from Folder…",
            Some("CmdOrCtrl+Shift+N"),
        )?)
        .item(&item("new-device", "Image from Device…", None)?)
        .build()?;
    let file = SubmenuBuilder::new(app, "File")
        .item(&new_image)
        .item(&item("open", "Open Disk Image…", Some("CmdOrCtrl+O"))?)
        .item(&item("open-bundle", "Open Sparse Bundle…", None)?)
        .item(&item("close", "Close Image", Some("CmdOrCtrl+W"))?)
        .separator()
        .quit()
        .build()?;
    let images = SubmenuBuilder::with_id(app, IMAGES, "Images")
        .item(&item("mount", "Mount", Some("CmdOrCtrl+Shift+M"))?)
        .item(&item("mount-read-only", "Mount Read-Only", None)?)
        .item(&item("eject", "Eject", Some("CmdOrCtrl+E"))?)
        .separator()
        .item(&item("verify", "Verify", Some("CmdOrCtrl+Shift+V"))?)
        .item(&item("first-aid", "First Aid…", None)?)
        .item(&item("convert", "Convert…", Some("CmdOrCtrl+Shift+C"))?)
        .separator()
        .item(&item("restore", "Restore…", None)?)
        .item(&item("burn", "Burn…", None)?)
        .separator()
        .item(&item("resize", "Resize…", None)?)
        .item(&item("compact", "Compact", None)?)
        .item(&item("chpass", "Change Password…", None)?)
        .item(&item("forget-password", "Forget Password", None)?)
        .build()?;
    // The window follows the system's light or dark appearance unless told otherwise.
    let view = SubmenuBuilder::new(app, "View")
        .item(&item("appearance-system", "Use System Appearance", None)?)
        .item(&item("appearance-light", "Light Appearance", None)?)
        .item(&item("appearance-dark", "Dark Appearance", None)?)
        .build()?;
    let window = SubmenuBuilder::new(app, "Window").minimize().build()?;
    let help = SubmenuBuilder::new(app, "Help")
        .item(&item("about", "About dimg", None)?)
        .build()?;
    MenuBuilder::new(app)
        .items(&[&file, &images, &view, &window, &help])
        .build()
}

/// The Images menu's items can be chosen only while an image is selected.
pub fn follow_selection<R: Runtime>(app: &AppHandle<R>, selected: bool) -> tauri::Result<()> {
    let images = app.menu().and_then(|m| m.get(IMAGES));
    let Some(images) = images.as_ref().and_then(|m| m.as_submenu()) else {
        return Ok(());
    };
    for item in images.items()? {
        if let Some(item) = item.as_menuitem() {
            item.set_enabled(selected)?;
        }
    }
    Ok(())
}

pub fn forward_to_page<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    // A page that is not listening yet simply misses the click, as a closed sheet would.
    let _ = app.emit("menu", event.id().0.as_str());
}
