//! HFS+ and HFSX volumes: catalog, extents overflow, attributes, decmpfs, hard links; walked.
#![no_main]
use dimg::fs::hfsplus::HfsPlus;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(volume) = HfsPlus::open(dimg_fuzz::source(data)) {
        dimg_fuzz::walk(&volume, &mut Default::default());
    }
});
