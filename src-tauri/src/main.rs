//! The dimg desktop app. Commands are thin: each calls one `dimg::ops` function on a blocking
//! thread and hands the result to the page; the engine knows nothing of Tauri.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod keychain;
mod menu;
#[cfg(target_os = "linux")]
mod mounter;

fn main() {
    // GTK aborts with a backtrace when there is no display to open: say it in one line instead.
    #[cfg(target_os = "linux")]
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        eprintln!(
            "dimg-app: there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set): run \
             `bash .ci/app` to start the window on a virtual one, or use the `dimg` command line"
        );
        std::process::exit(1);
    }
    // Without a GPU (no DRM render node: Xvfb, most VMs) WebKit's DMA-BUF renderer has nothing
    // to share buffers with, and only delays the first frame (about 470 → 345 ms under Xvfb).
    // Set before GTK starts any thread; a user's own setting wins.
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none()
        && !std::path::Path::new("/dev/dri").exists()
    {
        std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }
    // A double-click on an image (dimg-mounter.desktop): mount it, no window.
    #[cfg(target_os = "linux")]
    {
        let mut args = std::env::args_os().skip(1).peekable();
        if args.next_if(|a| a == "--mount").is_some() {
            std::process::exit(mounter::run(args.map(std::path::PathBuf::from)));
        }
    }
    tauri::Builder::default()
        // First, so that a second launch hands its images over before building anything.
        .plugin(tauri_plugin_single_instance::init(
            commands::dialogs::second_launch,
        ))
        .plugin(tauri_plugin_dialog::init())
        .manage(commands::jobs::Jobs::default())
        .manage(commands::Unlocked::default())
        .manage(commands::Painted::default())
        .manage(commands::dialogs::LaunchPaths::from_args(
            std::env::args_os().skip(1),
        ))
        .menu(menu::build)
        .on_menu_event(menu::on_event)
        .invoke_handler(tauri::generate_handler![
            commands::dialogs::launch_paths,
            commands::images::open_image,
            commands::dialogs::pick_image,
            commands::images::verify_image,
            commands::images::first_aid,
            commands::images::convert_image,
            commands::browse::list_folder,
            commands::images::create_image,
            commands::dialogs::pick_folder,
            commands::browse::export_item,
            commands::browse::open_item,
            commands::dialogs::pick_destination,
            commands::jobs::cancel_job,
            commands::mount::mount_image,
            commands::mount::eject_image,
            commands::mount::attached,
            commands::mount::reveal,
            commands::images::resize_limits,
            commands::images::resize_image,
            commands::images::compact_image,
            commands::dialogs::pick_bundle,
            commands::images::change_password,
            commands::images::keychain_store,
            commands::images::forget_password,
            commands::painted,
            commands::menu_state,
            commands::dialogs::default_folder,
            commands::browse::drag_out,
            commands::devices::devices,
            commands::devices::watch_devices,
            commands::devices::image_device,
            commands::devices::restore_image,
            commands::devices::burn_image,
            commands::devices::erase_device,
            commands::devices::partition_device,
            commands::devices::mount_device,
            commands::devices::unmount_device,
        ])
        .run(tauri::generate_context!("../tauri.conf.json"))
        .expect("the dimg window could not start");
}
