//! A sparse bundle's Info.plist, in a bundle folder with one band.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

fn bundle() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let bundle = dir.path().join("disk.sparsebundle");
        std::fs::create_dir_all(bundle.join("bands")).expect("the bundle");
        std::fs::write(bundle.join("bands/0"), vec![0u8; 4096]).expect("a band");
        (dir, bundle)
    })
    .1
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bundle = bundle();
    if std::fs::write(bundle.join("Info.plist"), data).is_err() {
        return;
    }
    if let Ok((container, _)) = dimg::container::sparsebundle::open(bundle, None, false) {
        dimg_fuzz::read_some(&*container.disk(), &mut Default::default());
    }
});
