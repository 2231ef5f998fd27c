//! Classic HFS volumes (512-byte B-tree nodes, MacRoman names): opened and walked.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(volume) = dimg::fs::hfs::open(dimg_fuzz::source(data)) {
        dimg_fuzz::walk(&*volume, &mut Default::default());
    }
});
