fn main() {
    // The design card keeps tauri.conf.json at the repository root; tauri-build reads it from the
    // current directory.
    std::env::set_current_dir("..").expect("the repository root is the parent of src-tauri");
    println!("cargo:rerun-if-changed=../tauri.conf.json");
    tauri_build::build()
}
