//! Chunk codecs: whole-buffer decompression into an output of known size, as UDIF chunks need.
//! Every decoder is bounded by the output slice, so corrupt or hostile input can neither
//! overrun nor allocate beyond it. [`stream`] decodes whole streams as they are read, [`pbzx`]
//! Apple's chunked payloads.

mod adc;
pub mod lzhuf;
pub mod lzvn;
pub mod pbzx;
pub mod stream;

use std::io::{Read, Write};

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
            // A hostile header could ask for a 4 GiB dictionary; 1 MiB chunks need far less.
            Codec::Xz => read_exactly(
                lzma_rust2::XzReader::new_mem_limit(input, false, XZ_MEMORY_KIB),
                out,
            ),
        }
        .map_err(|e| format!("{} data: {e}", self.name()))
    }

    /// Compresses a whole chunk into a complete, independent stream. `level` is the codec's own scale
    /// (zlib 1–9, bzip2 1–9, XZ 0–9); ADC and LZFSE have none.
    pub fn compress(self, input: &[u8], level: u32) -> Vec<u8> {
        match self {
            Codec::Adc => adc::compress(input),
            Codec::Zlib => {
                let level = libdeflater::CompressionLvl::new(level.clamp(1, 9) as i32)
                    .expect("levels 1 to 9 are valid");
                let mut compressor = libdeflater::Compressor::new(level);
                let mut out = vec![0; compressor.zlib_compress_bound(input.len())];
                let n = compressor
                    .zlib_compress(input, &mut out)
                    .expect("the output buffer is the compressor's own bound");
                out.truncate(n);
                out
            }
            Codec::Bzip2 => {
                let mut enc = bzip2::write::BzEncoder::new(
                    Vec::new(),
                    bzip2::Compression::new(level.clamp(1, 9)),
                );
                enc.write_all(input).expect("writing to memory cannot fail");
                enc.finish().expect("writing to memory cannot fail")
            }
            Codec::Lzfse => {
                let mut out = Vec::with_capacity(input.len() / 2);
                lzfse_rust::encode_bytes(input, &mut out).expect("writing to memory cannot fail");
                out
            }
            Codec::Xz => {
                let mut options = lzma_rust2::XzOptions::with_preset(level.min(9));
                // A dictionary larger than the chunk buys nothing and costs ~10x its size in memory.
                options.lzma_options.dict_size = options
                    .lzma_options
                    .dict_size
                    .min(input.len().max(4096) as u32);
                let mut w =
                    lzma_rust2::XzWriter::new(Vec::new(), options).expect("valid XZ options");
                w.write_all(input).expect("writing to memory cannot fail");
                w.finish().expect("writing to memory cannot fail")
            }
        }
    }
}

const XZ_MEMORY_KIB: u32 = 64 * 1024;

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
    let filled =
        stream::read_full(&mut reader, out).map_err(|e| format!("corrupt stream ({e})"))?;
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

#[cfg(test)]
mod tests {
    use super::Codec;

    #[test]
    fn every_codec_round_trips_and_rejects_a_wrong_size() {
        let mut data: Vec<u8> = (0..300_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
            .collect();
        data.extend(std::iter::repeat_n(0u8, 100_000));
        data.extend((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        for codec in [
            Codec::Adc,
            Codec::Zlib,
            Codec::Bzip2,
            Codec::Lzfse,
            Codec::Xz,
        ] {
            let packed = codec.compress(&data, 6);
            assert!(packed.len() < data.len(), "{codec:?} compresses");
            let mut out = vec![0u8; data.len()];
            codec.decompress(&packed, &mut out).unwrap();
            assert!(out == data, "{codec:?} round trip");
            let mut short = vec![0u8; data.len() - 1];
            assert!(
                codec.decompress(&packed, &mut short).is_err(),
                "{codec:?} too much data"
            );
            let mut long = vec![0u8; data.len() + 1];
            assert!(
                codec.decompress(&packed, &mut long).is_err(),
                "{codec:?} too little data"
            );
        }
    }
}
