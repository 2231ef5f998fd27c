//! UDF 1.02-2.60: anchors, partition maps (physical, sparable, VAT, metadata), file entries, identifiers: opened and walked.
#![no_main]
use dimg::fs::udf::Udf;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(volume) = Udf::open(dimg_fuzz::source(data)) {
        dimg_fuzz::walk(&volume, &mut Default::default());
    }
});
