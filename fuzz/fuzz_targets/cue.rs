//! Cue sheets, opened beside a BIN of a few raw sectors that their FILE lines may name.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

fn sheet_path() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(dir.path().join("track.bin"), vec![0u8; 2352 * 40]).expect("the BIN");
        let sheet = dir.path().join("disc.cue");
        (dir, sheet)
    })
    .1
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let opened = dimg::container::open_source(dimg_fuzz::source(data), Some(sheet_path()), None);
    if let Ok(opened) = opened {
        let mut budget = dimg_fuzz::Budget::default();
        for track in opened.container.tracks().unwrap_or_default() {
            dimg_fuzz::read_some(&*track.sectors, &mut budget);
        }
        dimg_fuzz::walk_disk(opened.container.disk(), &mut budget);
    }
});
