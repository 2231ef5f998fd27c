//! Parallels: the input is an `.hds` image opened on its own, and the DiskDescriptor.xml of an
//! `.hdd` bundle holding a small image (seed.sh seeds both kinds).
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

/// A bundle folder with one image of a 4 KiB disk: one 4 KiB cluster, stored.
fn bundle() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let mut image = vec![0u8; 8192];
        image[..16].copy_from_slice(b"WithouFreSpacExt");
        for (at, value) in [(16, 2u32), (28, 8), (32, 1), (36, 8), (48, 8), (64, 1)] {
            image[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        image[4096..].fill(0x5a);
        let dir = dimg_fuzz::folder_with(&[]);
        let bundle = dir.path().join("vm.hdd");
        std::fs::create_dir_all(&bundle).expect("the bundle");
        std::fs::write(bundle.join("vm.hdd.0.{1}.hds"), image).expect("its image");
        (dir, bundle)
    })
    .1
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dimg_fuzz::open_image(data, None);
    let bundle = bundle();
    if std::fs::write(bundle.join("DiskDescriptor.xml"), data).is_err() {
        return;
    }
    if let Ok((container, _)) = dimg::container::parallels::open_bundle(bundle) {
        let _ = container.facts();
        dimg_fuzz::read_some(&*container.disk(), &mut Default::default());
    }
});
