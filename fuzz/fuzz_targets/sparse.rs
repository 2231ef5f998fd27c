//! Any image file through the engine's opener; seeded with sparse images: the sparse image header
//! and its band map (seed.sh).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimg_fuzz::open_image(data, None));
