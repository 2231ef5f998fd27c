//! FAT12/16/32 volumes with long names: opened and walked.
#![no_main]
use dimg::fs::fat::Fat;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(volume) = Fat::open(dimg_fuzz::source(data)) {
        dimg_fuzz::walk(&volume, &mut Default::default());
    }
});
