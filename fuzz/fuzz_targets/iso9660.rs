//! ISO 9660 volumes with Rock Ridge, Joliet and El Torito: opened and walked.
#![no_main]
use dimg::fs::iso9660::Iso9660;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(volume) = Iso9660::open(dimg_fuzz::source(data), None) {
        dimg_fuzz::walk(&volume, &mut Default::default());
    }
});
