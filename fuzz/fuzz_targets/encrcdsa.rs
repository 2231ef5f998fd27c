//! Encrypted images (encrcdsa v1 and v2): headers and key blobs, unwrapped with a passphrase
//! (under cfg(fuzzing) the engine caps key-derivation rounds so one input stays fast).
#![no_main]
use dimg::Passphrase;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let passphrase = Passphrase::new(b"fuzz".to_vec());
    dimg_fuzz::open_image(data, Some(&passphrase));
});
