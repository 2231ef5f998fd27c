//! VMDK: sparse extent headers, grain directories and tables, streamOptimized grains, text
//! descriptors and their extent lines; opened beside a flat extent and a parent a descriptor may
//! name (seed.sh).
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

fn image_path() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = dimg_fuzz::folder_with(&[
            ("disk-flat.vmdk", vec![0x5a; 64 << 10]),
            ("parent.img", vec![0xa5; 64 << 10]),
        ]);
        let image = dir.path().join("disk.vmdk");
        (dir, image)
    })
    .1
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| dimg_fuzz::open_image_at(data, Some(image_path()), None));
