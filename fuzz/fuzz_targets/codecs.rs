//! Every chunk codec and the LZH of DART: the first byte picks one, the next two the output
//! size in KiB (as a chunk table would give it), the rest is the compressed stream.
#![no_main]
use dimg::codec::{lzhuf, lzvn, Codec};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [which, hi, lo, stream @ ..] = data else {
        return;
    };
    // At most 1 MiB, hdiutil's chunk size.
    let size = (usize::from(u16::from_be_bytes([*hi, *lo])) % 1025) << 10;
    let mut out = vec![0u8; size];
    let _ = match which % 7 {
        0 => Codec::Adc.decompress(stream, &mut out),
        1 => Codec::Zlib.decompress(stream, &mut out),
        2 => Codec::Bzip2.decompress(stream, &mut out),
        3 => Codec::Lzfse.decompress(stream, &mut out),
        4 => Codec::Xz.decompress(stream, &mut out),
        5 => lzvn::decompress(stream, &mut out),
        _ => lzhuf::decompress(stream, size).map(drop),
    };
});
