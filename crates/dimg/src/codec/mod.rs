//! Chunk codecs: whole-buffer decompression into an output of known size, as UDIF chunks need.
//! Every decoder is bounded by the output slice, so corrupt or hostile input can neither
//! overrun nor allocate beyond it.

mod adc;

use std::io::{self, Read};

/// A compression method, named as UDIF chunk types and hdiutil formats name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Adc,
    Zlib,
    Bzip2,
    Lzfse,
    /// ULMO chunks: an XZ container despite the format's "LZMA" name.
    Xz,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Adc => "ADC",
            Codec::Zlib => "zlib",
            Codec::Bzip2 => "bzip2",
            Codec::Lzfse => "LZFSE",
            Codec::Xz => "LZMA (XZ)",
        }
    }

    /// Decompresses `input` into exactly `out.len()` bytes. A stream that ends early or holds
    /// more than that is an error: the chunk table and the data disagree.
    pub fn decompress(self, input: &[u8], out: &mut [u8]) -> Result<(), String> {
        match self {
            Codec::Adc => adc::decompress(input, out),
            Codec::Zlib => libdeflater::Decompressor::new()
                .zlib_decompress(input, out)
                .map_err(|e| format!("corrupt stream ({e:?})"))
                .and_then(|n| exact(n, out.len())),
            Codec::Bzip2 => read_exactly(bzip2::read::BzDecoder::new(input), out),
            Codec::Lzfse => {
                let mut decoder = lzfse_rust::LzfseRingDecoder::default();
                read_exactly(decoder.reader_bytes(input), out)
            }
            Codec::Xz => read_exactly(lzma_rust2::XzReader::new(input, false), out),
        }
        .map_err(|e| format!("{} data: {e}", self.name()))
    }
}

fn exact(got: usize, want: usize) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "decompressed to {got} bytes, the chunk table says {want}"
        ))
    }
}

fn read_exactly(mut reader: impl Read, out: &mut [u8]) -> Result<(), String> {
    let mut filled = 0;
    while filled < out.len() {
        match reader.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("corrupt stream ({e})")),
        }
    }
    if filled < out.len() {
        return exact(filled, out.len());
    }
    let mut more = [0u8; 1];
    match reader.read(&mut more) {
        Ok(0) => Ok(()),
        Ok(_) => Err(format!(
            "decompresses to more than the {} bytes the chunk table says",
            out.len()
        )),
        Err(e) => Err(format!("corrupt stream ({e})")),
    }
}
