//! The menu bar, Disk Utility's shape. Item ids are handed to the page, which owns the actions
//! and says which items its selection allows; Quit and Close Window are the shell's own.

use std::collections::HashMap;
use tauri::menu::{
    CheckMenuItemBuilder, Menu, MenuBuilder, MenuEvent, MenuItemBuilder, MenuItemKind,
    SubmenuBuilder,
};
use tauri::{AppHandle, Emitter, Manager, Runtime};

/// View's appearance items: each a check item, the one in force checked.
const APPEARANCES: [(&str, &str); 3] = [
    ("appearance-system", "Use System Appearance"),
    ("appearance-light", "Light Appearance"),
    ("appearance-dark", "Dark Appearance"),
];

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
        .item(&item(
            "open-location",
            "Open Location…",
            Some("CmdOrCtrl+L"),
        )?)
        .item(&item("close", "Close Image", None)?)
        .separator()
        .item(&item("quit", "Quit dimg", Some("CmdOrCtrl+Q"))?)
        .build()?;
    // Disk Utility's Edit menu: what changes a device.
    let edit = SubmenuBuilder::new(app, "Edit")
        .item(&item("erase", "Erase…", None)?)
        .item(&item("partition", "Partition…", None)?)
        .build()?;
    let images = SubmenuBuilder::new(app, "Images")
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
    let mut view = SubmenuBuilder::new(app, "View");
    for (id, text) in APPEARANCES {
        let check = CheckMenuItemBuilder::with_id(id, text)
            .checked(id == "appearance-system")
            .build(app)?;
        view = view.item(&check);
    }
    let window = SubmenuBuilder::new(app, "Window")
        .minimize()
        .item(&item("close-window", "Close Window", Some("CmdOrCtrl+W"))?)
        .build()?;
    let help = SubmenuBuilder::new(app, "Help")
        .item(&item("about", "About dimg", None)?)
        .build()?;
    MenuBuilder::new(app)
        .items(&[&file, &edit, &images, &view.build()?, &window, &help])
        .build()
}

/// The page's word on the menus: which items its selection allows (by id; items it does not
/// name stay as they are), and the appearance in force ("system", "light", "dark").
pub fn follow_page<R: Runtime>(
    app: &AppHandle<R>,
    enabled: &HashMap<String, bool>,
    appearance: &str,
) -> tauri::Result<()> {
    let Some(menu) = app.menu() else {
        return Ok(());
    };
    let mut pending = menu.items()?;
    while let Some(item) = pending.pop() {
        match &item {
            MenuItemKind::Submenu(sub) => pending.extend(sub.items()?),
            MenuItemKind::MenuItem(i) => {
                if let Some(&on) = enabled.get(&i.id().0) {
                    i.set_enabled(on)?;
                }
            }
            MenuItemKind::Check(c) => {
                c.set_checked(c.id().0 == format!("appearance-{appearance}"))?;
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn on_event<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    match event.id().0.as_str() {
        // Mounts outlive the window (their servers are processes of their own), and a job's
        // output has no name until it is complete: quitting leaves nothing half-made.
        "quit" => app.exit(0),
        "close-window" => {
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.close();
            }
        }
        // A page that is not listening yet simply misses the click, as a closed sheet would.
        id => {
            let _ = app.emit("menu", id);
        }
    }
}
