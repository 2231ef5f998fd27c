//! APFS containers: checkpoints, the object map, B-trees and every volume, walked.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut budget = dimg_fuzz::Budget::default();
    for volume in dimg::fs::apfs::open(dimg_fuzz::source(data)).unwrap_or_default() {
        dimg_fuzz::walk(&volume, &mut budget);
    }
});
