//! qcow2 images: header, extensions, L1 and L2 tables, compressed clusters (deflate, zstd),
//! snapshots; opened beside a small raw disk that a backing file name may reach (seed.sh).
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

fn image_path() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = dimg_fuzz::folder_with(&[("base.img", vec![0x5a; 64 << 10])]);
        let image = dir.path().join("disk.qcow2");
        (dir, image)
    })
    .1
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| dimg_fuzz::open_image_at(data, Some(image_path()), None));
