//! Any image file through the engine's opener; seeded with Disk Copy 4.2 and DART images (seed.sh).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimg_fuzz::open_image(data, None));
