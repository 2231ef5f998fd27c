//! Any image file through the engine's opener; seeded with VDI images: the header and the
//! block map (seed.sh).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimg_fuzz::open_image(data, None));
