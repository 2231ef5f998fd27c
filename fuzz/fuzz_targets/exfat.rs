//! exFAT: boot sector, up-case table, bitmap, entry sets, contiguous and chained files: opened and walked.
#![no_main]
use dimg::fs::exfat::ExFat;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(volume) = ExFat::open(dimg_fuzz::source(data)) {
        dimg_fuzz::walk(&volume, &mut Default::default());
    }
});
