//! Any image file through the engine's opener; seeded with VHDX images: headers, region tables,
//! metadata, the block allocation table (seed.sh).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimg_fuzz::open_image(data, None));
