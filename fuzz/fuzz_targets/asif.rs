//! Any image file through the engine's opener; seeded with ASIF images: the `shdw` header, its two
//! directories, tables and the metadata chunk (seed.sh).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimg_fuzz::open_image(data, None));
