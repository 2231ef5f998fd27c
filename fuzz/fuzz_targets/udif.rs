//! Any image file through the engine's opener; seeded with UDIF images: the koly trailer, the
//! property list, the legacy resource fork and the mish tables (seed.sh).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimg_fuzz::open_image(data, None));
