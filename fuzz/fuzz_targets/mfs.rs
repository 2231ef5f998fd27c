//! MFS volumes (the first Macs' 400K floppies): opened and walked, forks and all.
#![no_main]
use dimg::fs::mfs::Mfs;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(volume) = Mfs::open(dimg_fuzz::source(data)) {
        dimg_fuzz::walk(&volume, &mut Default::default());
    }
});
