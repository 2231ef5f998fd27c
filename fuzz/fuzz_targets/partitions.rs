//! Partition maps (GPT, APM, MBR) and whatever volumes they point at.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimg_fuzz::walk_disk(
    dimg_fuzz::source(data),
    &mut Default::default()
));
