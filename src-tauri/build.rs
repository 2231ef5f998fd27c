fn main() {
    // The design card keeps tauri.conf.json at the repository root, beside the workspace; paths
    // inside it (ui/, icons/) are relative to it. Capabilities and generated schemas stay here.
    tauri_build::try_build(tauri_build::Attributes::new().config_path("../tauri.conf.json"))
        .expect("tauri-build failed");
}
