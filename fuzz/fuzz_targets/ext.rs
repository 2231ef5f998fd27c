//! ext2/3/4: superblock, group descriptors, inodes, extents and block maps, htree, inline data, xattrs: opened and walked.
#![no_main]
use dimg::fs::ext::Ext;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(volume) = Ext::open(dimg_fuzz::source(data)) {
        dimg_fuzz::walk(&volume, &mut Default::default());
    }
});
