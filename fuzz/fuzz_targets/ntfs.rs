//! NTFS: MFT records and fixups, runlists, indexes, LZNT1, reparse points, streams: opened and walked.
#![no_main]
use dimg::fs::ntfs::Ntfs;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(volume) = Ntfs::open(dimg_fuzz::source(data)) {
        dimg_fuzz::walk(&volume, &mut Default::default());
    }
});
