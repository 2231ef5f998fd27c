//! Apple's encrypted image wrapper, `encrcdsa` version 2 (formats.md §b): a header with
//! passphrase-wrapped keys, then the inner image file (UDZO, raw, sparse …) encrypted with
//! AES-CBC per block, each block's IV an HMAC-SHA1 of its number. The inner file is opened with
//! the same driver table, over a decrypting [`ReadAt`] that has true random access.

use crate::bytes::{be32, be64};

use super::{Checksums, Container, Fact, LayoutEntry, Probe};
use crate::error::FormatError;
use crate::io::{past_end, whole_blocks, BandCipher, ReadAt, WriteAt};
use crate::magic::Signature;
use crate::secret::Locked;
use aes::cipher::{
    block_padding::NoPadding, block_padding::Pkcs7, BlockDecryptMut, InnerIvInit, KeyIvInit,
};
use hmac::{Hmac, Mac};
use rayon::prelude::*;
use sha1::Sha1;
use std::io;
use std::sync::Arc;
use zeroize::Zeroizing;

pub static DRIVER: super::Driver = super::Driver {
    name: "Apple encrypted disk image",
    probe,
    open,
};

fn probe(p: &Probe) -> u8 {
    p.certain_if(Signature::EncryptedV2)
}

const HEADER: &str = "encrcdsa header";
/// PBKDF2 rounds beyond this are refused: the count is the attacker's to choose.
#[cfg(not(fuzzing))]
const MAX_ITERATIONS: u32 = 10_000_000;
/// Under the fuzzer, few enough that one input stays fast: the parsing is what is fuzzed.
#[cfg(fuzzing)]
const MAX_ITERATIONS: u32 = 1_000;
const BLOB_3DES: u32 = 17;
const BLOB_AES: u32 = 0x8000_0001;

/// What the header says, without the secrets.
#[derive(Clone)]
struct Header {
    key_bits: u32,
    block_size: u64,
    data_size: u64,
    data_offset: u64,
    uuid: [u8; 16],
    /// Passphrase-wrapped key descriptors: (file offset, size).
    wrapped: Vec<(u64, u64)>,
}

fn header(file: &dyn ReadAt) -> io::Result<Header> {
    let bad = |at: u64, p: String| FormatError::io(HEADER, at, p);
    let mut b = vec![0u8; 4096.min(file.size() as usize)];
    file.read_exact_at(0, &mut b)?;
    if b.len() < 0x4C || be32(&b, 8) != 2 {
        return Err(bad(
            8,
            format!(
                "version {} (expected 2)",
                if b.len() >= 12 { be32(&b, 8) } else { 0 }
            ),
        ));
    }
    let key_bits = be32(&b, 0x18);
    if be32(&b, 0x14) != BLOB_AES || !matches!(key_bits, 128 | 256) {
        return Err(bad(
            0x14,
            format!(
                "cipher 0x{:X} with {key_bits}-bit keys (expected AES-128 or AES-256)",
                be32(&b, 0x14)
            ),
        ));
    }
    let block_size = u64::from(be32(&b, 0x34));
    if !(512..=1 << 20).contains(&block_size) || !block_size.is_power_of_two() {
        return Err(bad(0x34, format!("block size {block_size}")));
    }
    let (data_size, data_offset) = (be64(&b, 0x38), be64(&b, 0x40));
    let stored = data_size
        .div_ceil(block_size)
        .checked_mul(block_size)
        .and_then(|n| n.checked_add(data_offset));
    if stored.is_none_or(|end| end > file.size()) {
        return Err(bad(0x38, format!(
            "{data_size} bytes of data at offset {data_offset} do not fit in the file's {} bytes (truncated?)",
            file.size()
        )));
    }
    let count = be32(&b, 0x48) as usize;
    if 0x4C + 20 * count > b.len() {
        return Err(bad(0x48, format!("{count} key pointers")));
    }
    let wrapped = (0..count)
        .map(|i| 0x4C + 20 * i)
        .filter(|&at| be32(&b, at) == 1)
        .map(|at| (be64(&b, at + 4), be64(&b, at + 12)))
        .collect();
    Ok(Header {
        key_bits,
        block_size,
        data_size,
        data_offset,
        uuid: b[0x24..0x34].try_into().expect("16 bytes"),
        wrapped,
    })
}

/// The UUID of an encrypted image's header; `None` when the source is not one.
pub fn uuid(file: &dyn ReadAt) -> io::Result<Option<[u8; 16]>> {
    let mut head = [0u8; 0x34];
    if file.size() < head.len() as u64 {
        return Ok(None);
    }
    file.read_exact_at(0, &mut head)?;
    Ok((&head[..8] == b"encrcdsa").then(|| head[0x24..0x34].try_into().expect("16 bytes")))
}

/// The unwrapped keys.
struct Keys {
    aes: Zeroizing<Vec<u8>>,
    hmac: Zeroizing<Vec<u8>>,
}

/// Unwraps one passphrase key descriptor; `Ok(None)` when this passphrase is not its key.
fn unwrap(
    file: &dyn ReadAt,
    (at, size): (u64, u64),
    key_bits: u32,
    pass: &[u8],
) -> io::Result<Option<Keys>> {
    let bad =
        |off: usize, p: String| FormatError::io("encrcdsa key descriptor", at + off as u64, p);
    if !(0x68..=4096).contains(&size) || at.checked_add(size).is_none_or(|e| e > file.size()) {
        return Err(bad(0, format!("{size} bytes at {at} do not fit the file")));
    }
    let mut d = vec![0u8; size as usize];
    file.read_exact_at(at, &mut d)?;
    let (iterations, salt_len) = (be32(&d, 0x08), be32(&d, 0x0C) as usize);
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(bad(
            0x08,
            format!("{iterations} key-derivation rounds (at most {MAX_ITERATIONS} accepted)"),
        ));
    }
    let (iv_len, blob_alg, blob_len) = (
        be32(&d, 0x30) as usize,
        be32(&d, 0x58),
        be32(&d, 0x64) as usize,
    );
    if salt_len > 32 || iv_len > 32 || 0x68 + blob_len > d.len() || blob_len % 8 != 0 {
        return Err(bad(
            0x0C,
            format!("salt {salt_len}, IV {iv_len}, blob {blob_len} bytes"),
        ));
    }
    let mut derived = Zeroizing::new([0u8; 24]);
    pbkdf2::pbkdf2_hmac::<Sha1>(pass, &d[0x10..0x10 + salt_len], iterations, &mut *derived);
    let mut blob = Zeroizing::new(d[0x68..0x68 + blob_len].to_vec());
    let iv = &d[0x34..0x34 + iv_len.min(8)];
    let plain = match blob_alg {
        BLOB_3DES => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&*derived, iv)
            .map_err(|_| bad(0x30, format!("blob IV of {iv_len} bytes")))?
            .decrypt_padded_mut::<Pkcs7>(&mut blob)
            .ok()
            .map(|p| p.len()),
        BLOB_AES => {
            let mut iv16 = [0u8; 16];
            iv16[..iv.len()].copy_from_slice(iv);
            cbc::Decryptor::<aes::Aes192>::new_from_slices(&*derived, &iv16)
                .expect("AES-192 takes a 24-byte key and 16-byte IV")
                .decrypt_padded_mut::<Pkcs7>(&mut blob)
                .ok()
                .map(|p| p.len())
        }
        other => {
            return Err(bad(
                0x58,
                format!("key wrapped with algorithm 0x{other:X} (expected 3DES or AES)"),
            ))
        }
    };
    let aes_len = key_bits as usize / 8;
    // A wrong passphrase decrypts to noise: bad padding, or no "CKIE" after the keys.
    match plain {
        Some(n) if n >= aes_len + 24 && &blob[aes_len + 20..aes_len + 24] == b"CKIE" => {
            Ok(Some(Keys {
                aes: Zeroizing::new(blob[..aes_len].to_vec()),
                hmac: Zeroizing::new(blob[aes_len..aes_len + 20].to_vec()),
            }))
        }
        _ => Ok(None),
    }
}

enum Cipher {
    Aes128(Box<aes::Aes128>),
    Aes256(Box<aes::Aes256>),
}

/// AES-CBC per block, with the block's IV the first 16 bytes of HMAC-SHA1(hmac key, number):
/// each block stands alone, so any block can be read or written on its own.
pub struct BlockCipher {
    cipher: Cipher,
    hmac: Hmac<Sha1>,
}

impl BlockCipher {
    fn new(keys: &Keys) -> Self {
        use aes::cipher::KeyInit;
        let cipher = match keys.aes.len() {
            16 => Cipher::Aes128(Box::new(
                aes::Aes128::new_from_slice(&keys.aes).expect("16-byte key"),
            )),
            _ => Cipher::Aes256(Box::new(
                aes::Aes256::new_from_slice(&keys.aes).expect("32-byte key"),
            )),
        };
        let hmac =
            <Hmac<Sha1> as Mac>::new_from_slice(&keys.hmac).expect("HMAC takes any key length");
        BlockCipher { cipher, hmac }
    }

    fn iv(&self, number: u64) -> [u8; 16] {
        let mut mac = self.hmac.clone();
        mac.update(&(number as u32).to_be_bytes());
        mac.finalize().into_bytes()[..16]
            .try_into()
            .expect("SHA-1 gives 20 bytes")
    }

    fn decrypt(&self, number: u64, block: &mut [u8]) {
        let iv = self.iv(number);
        // Whole blocks of a multiple of 16 bytes: NoPadding cannot fail.
        let _ = match &self.cipher {
            Cipher::Aes128(c) => {
                cbc::Decryptor::<aes::Aes128>::inner_iv_init((**c).clone(), &iv.into())
                    .decrypt_padded_mut::<NoPadding>(block)
                    .map(|_| ())
            }
            Cipher::Aes256(c) => {
                cbc::Decryptor::<aes::Aes256>::inner_iv_init((**c).clone(), &iv.into())
                    .decrypt_padded_mut::<NoPadding>(block)
                    .map(|_| ())
            }
        };
    }

    fn encrypt(&self, number: u64, block: &mut [u8]) {
        use aes::cipher::BlockEncryptMut;
        let iv = self.iv(number);
        let len = block.len();
        let _ = match &self.cipher {
            Cipher::Aes128(c) => {
                cbc::Encryptor::<aes::Aes128>::inner_iv_init((**c).clone(), &iv.into())
                    .encrypt_padded_mut::<NoPadding>(block, len)
                    .map(|_| ())
            }
            Cipher::Aes256(c) => {
                cbc::Encryptor::<aes::Aes256>::inner_iv_init((**c).clone(), &iv.into())
                    .encrypt_padded_mut::<NoPadding>(block, len)
                    .map(|_| ())
            }
        };
    }

    /// Decrypts `data`: whole blocks of `size` bytes numbered from `first`, on every core.
    fn decrypt_blocks(&self, first: u64, size: usize, data: &mut [u8]) {
        if data.len() < PARALLEL_FROM {
            for (i, block) in data.chunks_mut(size).enumerate() {
                self.decrypt(first + i as u64, block);
            }
            return;
        }
        data.par_chunks_mut(size)
            .enumerate()
            .for_each(|(i, block)| self.decrypt(first + i as u64, block));
    }

    /// Encrypts `data`: whole blocks of `size` bytes numbered from `first`, on every core.
    fn encrypt_blocks(&self, first: u64, size: usize, data: &mut [u8]) {
        if data.len() < PARALLEL_FROM {
            for (i, block) in data.chunks_mut(size).enumerate() {
                self.encrypt(first + i as u64, block);
            }
            return;
        }
        data.par_chunks_mut(size)
            .enumerate()
            .for_each(|(i, block)| self.encrypt(first + i as u64, block));
    }
}

/// Bytes below which blocks are sealed and opened on the calling thread: a mount's reads and
/// writes (128 KiB) come on several request threads already, and handing so little to the pool
/// costs more than it saves.
const PARALLEL_FROM: usize = 1 << 20;

/// The inner file, decrypted on demand; written through, each block sealed with its own IV, when
/// the file can be written.
struct Decrypting<F: ReadAt + ?Sized = dyn ReadAt> {
    file: Arc<F>,
    header: Header,
    blocks: Arc<BlockCipher>,
}

impl<F: ReadAt + ?Sized> ReadAt for Decrypting<F> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let h = &self.header;
        if offset >= h.data_size {
            return Ok(0);
        }
        let n = buf.len().min((h.data_size - offset) as usize);
        let first = offset / h.block_size;
        let last = (offset + n as u64 - 1) / h.block_size;
        let mut cipher = vec![0u8; ((last - first + 1) * h.block_size) as usize];
        self.file
            .read_exact_at(h.data_offset + first * h.block_size, &mut cipher)?;
        self.blocks
            .decrypt_blocks(first, h.block_size as usize, &mut cipher);
        let skip = (offset - first * h.block_size) as usize;
        buf[..n].copy_from_slice(&cipher[skip..skip + n]);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.header.data_size
    }
}

impl<F: WriteAt + ?Sized> WriteAt for Decrypting<F> {
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let h = &self.header;
        past_end(offset, buf.len(), h.data_size)?;
        if buf.is_empty() {
            return Ok(());
        }
        let (start, mut plain) = whole_blocks(offset, buf, h.block_size, |at, blocks| {
            let readable = (h.data_size - at).min(blocks.len() as u64) as usize;
            self.read_exact_at(at, &mut blocks[..readable])
        })?;
        let size = h.block_size as usize;
        self.blocks
            .encrypt_blocks(start / h.block_size, size, &mut plain);
        self.file.write_all_at(h.data_offset + start, &plain)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync()
    }
    fn finish(&self) -> io::Result<()> {
        self.file.finish()
    }
}

struct Encrypted {
    header: Header,
    inner_format: &'static str,
    inner: Box<dyn Container>,
}

fn open(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let (header, keys) = unlock(&*file, p.passphrase)?;
    match p.writable {
        Some(writable) => {
            let plain: Arc<dyn WriteAt> = Arc::new(Decrypting {
                file: writable.clone(),
                header: header.clone(),
                blocks: Arc::new(BlockCipher::new(&keys)),
            });
            wrap_plaintext(header, super::open_writable_source(plain))
        }
        None => open_plaintext(file, header, &keys),
    }
}

/// The header of an encrcdsa v2 file and the keys `passphrase` unwraps from it.
fn unlock(file: &dyn ReadAt, passphrase: Option<&crate::Passphrase>) -> io::Result<(Header, Keys)> {
    let header = header(file)?;
    let Some(pass) = passphrase else {
        return Err(Locked::PassphraseNeeded.io());
    };
    for wrapped in &header.wrapped {
        for candidate in pass.candidates() {
            if let Some(keys) = unwrap(file, *wrapped, header.key_bits, candidate)? {
                return Ok((header, keys));
            }
        }
    }
    if header.wrapped.is_empty() {
        return Err(FormatError::io(
            HEADER,
            0x48,
            "no passphrase-wrapped key (certificate-only images are not supported)",
        ));
    }
    Err(Locked::WrongPassphrase.io())
}

/// An encrypted sparse bundle's key (its `token` holds the encrcdsa header): every band is
/// encrypted on its own, its blocks numbered from 0 at the band's start.
pub(crate) struct BandKey {
    header: Header,
    blocks: Arc<BlockCipher>,
}

impl BandKey {
    pub(crate) fn unlock(
        token: &dyn ReadAt,
        passphrase: Option<&crate::Passphrase>,
    ) -> io::Result<Self> {
        let (header, keys) = unlock(token, passphrase)?;
        Ok(BandKey {
            blocks: Arc::new(BlockCipher::new(&keys)),
            header,
        })
    }

    /// What `info` says of the encryption.
    pub(crate) fn facts(&self) -> Vec<Fact> {
        vec![Fact::new(
            "Encryption",
            format!(
                "AES-{} (encrcdsa v2, in the token), {}-byte blocks numbered within each band",
                self.header.key_bits, self.header.block_size
            ),
        )]
    }
}

impl BandKey {
    pub(crate) fn key_bits(&self) -> u32 {
        self.header.key_bits
    }
}

impl BandCipher for BandKey {
    fn block(&self) -> u64 {
        self.header.block_size
    }
    fn decrypt(&self, first: u64, data: &mut [u8]) {
        let size = self.header.block_size as usize;
        self.blocks.decrypt_blocks(first, size, data);
    }
    fn encrypt(&self, first: u64, data: &mut [u8]) {
        let size = self.header.block_size as usize;
        self.blocks.encrypt_blocks(first, size, data);
    }
}

/// Version 1 (`cdsaencr`, Mac OS X 10.2–10.4): the header is the last 0x4FC bytes, the data
/// starts at offset 0 in 4096-byte blocks, and the AES and HMAC keys are wrapped separately with
/// the RFC 3217 Triple-DES key wrap.
pub static DRIVER_V1: super::Driver = super::Driver {
    name: "Apple encrypted disk image (version 1)",
    probe: probe_v1,
    open: open_v1,
};

fn probe_v1(p: &Probe) -> u8 {
    p.certain_if(Signature::EncryptedV1)
}

const V1_HEADER: u64 = 0x4FC;
const V1_STRUCTURE: &str = "cdsaencr header";
/// RFC 3217's fixed IV for the outer pass of the Triple-DES key wrap.
const RFC3217_IV: [u8; 8] = [0x4A, 0xDD, 0xA2, 0x2C, 0x79, 0xE8, 0x21, 0x05];

fn open_v1(file: Arc<dyn ReadAt>, p: &Probe) -> io::Result<Box<dyn Container>> {
    let size = file.size();
    let at = size
        .checked_sub(V1_HEADER)
        .ok_or_else(|| FormatError::io(V1_STRUCTURE, 0, "the file is shorter than its header"))?;
    let mut h = vec![0u8; V1_HEADER as usize];
    file.read_exact_at(at, &mut h)?;
    let bad = |off: usize, p: String| FormatError::io(V1_STRUCTURE, at + off as u64, p);
    let block_size = u64::from(be32(&h, 0x10));
    if !(512..=1 << 20).contains(&block_size) || !block_size.is_power_of_two() {
        return Err(bad(0x10, format!("block size {block_size}")));
    }
    let iterations = match be32(&h, 0x30) {
        0 => 1000, // what the first versions wrote, and what readers assume
        n if n > MAX_ITERATIONS => return Err(bad(0x30, format!("{n} key-derivation rounds"))),
        n => n,
    };
    let salt_len = (be32(&h, 0x34) as usize).min(48);
    let (aes_len, hmac_len) = (be32(&h, 0x88) as usize, be32(&h, 0x1B4) as usize);
    if !(16..=296).contains(&aes_len) || !(16..=300).contains(&hmac_len) {
        return Err(bad(
            0x88,
            format!("wrapped keys of {aes_len} and {hmac_len} bytes"),
        ));
    }
    let Some(pass) = p.passphrase else {
        return Err(Locked::PassphraseNeeded.io());
    };
    let keys = pass.candidates().find_map(|candidate| {
        let mut derived = Zeroizing::new([0u8; 24]);
        let salt = &h[0x38..0x38 + salt_len];
        pbkdf2::pbkdf2_hmac::<Sha1>(candidate, salt, iterations, &mut *derived);
        let aes = rfc3217_unwrap(&h[0x8C..0x8C + aes_len], &derived)?;
        let hmac = rfc3217_unwrap(&h[0x1B8..0x1B8 + hmac_len], &derived)?;
        (aes.len() >= 16 && hmac.len() >= 20).then(|| Keys {
            aes: Zeroizing::new(aes[..16].to_vec()),
            hmac: Zeroizing::new(hmac[..20].to_vec()),
        })
    });
    let Some(keys) = keys else {
        return Err(Locked::WrongPassphrase.io());
    };
    let header = Header {
        key_bits: 128,
        block_size,
        data_size: at / block_size * block_size,
        data_offset: 0,
        uuid: h[0..16].try_into().expect("16 bytes"),
        wrapped: Vec::new(),
    };
    open_plaintext(file, header, &keys)
}

/// The inverse of the RFC 3217 Triple-DES key wrap: decrypt with the fixed IV, reverse the bytes,
/// take the first 8 as the IV of a second decryption, and drop its 4-byte length prefix. `None`
/// when the padding is wrong, which is what a wrong passphrase gives.
fn rfc3217_unwrap(wrapped: &[u8], key: &[u8; 24]) -> Option<Zeroizing<Vec<u8>>> {
    let mut outer = Zeroizing::new(wrapped.to_vec());
    let n = cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, &RFC3217_IV)
        .ok()?
        .decrypt_padded_mut::<Pkcs7>(&mut outer)
        .ok()?
        .len();
    let mut reversed = Zeroizing::new(outer[..n].iter().rev().copied().collect::<Vec<u8>>());
    if reversed.len() < 16 {
        return None;
    }
    let (iv, rest) = reversed.split_at_mut(8);
    let m = cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_mut::<Pkcs7>(rest)
        .ok()?
        .len();
    (m > 4).then(|| Zeroizing::new(rest[4..m].to_vec()))
}

/// Decrypts on demand and opens what the encrypted image holds, with the same driver table as
/// any file.
fn open_plaintext(
    file: Arc<dyn ReadAt>,
    header: Header,
    keys: &Keys,
) -> io::Result<Box<dyn Container>> {
    let blocks = Arc::new(BlockCipher::new(keys));
    let plain: Arc<dyn ReadAt> = Arc::new(Decrypting {
        file,
        header: header.clone(),
        blocks,
    });
    wrap_plaintext(header, super::open_source(plain, None, None))
}

/// The image the decrypted file holds, inside the encryption.
fn wrap_plaintext(
    header: Header,
    inner: Result<super::Opened, super::OpenError>,
) -> io::Result<Box<dyn Container>> {
    let inner = inner.map_err(|e| match e {
        super::OpenError::Io(e) => e,
        other => FormatError::io("encrypted image contents", 0, other.to_string()),
    })?;
    Ok(Box::new(Encrypted {
        header,
        inner_format: inner.format,
        inner: inner.container,
    }))
}

impl Container for Encrypted {
    fn disk(&self) -> Arc<dyn ReadAt> {
        self.inner.disk()
    }

    fn key_bits(&self) -> Option<u32> {
        Some(self.header.key_bits)
    }

    fn facts(&self) -> Vec<Fact> {
        let h = &self.header;
        let mut facts = vec![
            Fact::new(
                "Encryption",
                format!(
                    "AES-{} ({}), {}-byte blocks",
                    h.key_bits,
                    if h.data_offset == 0 {
                        "cdsaencr v1"
                    } else {
                        "encrcdsa v2"
                    },
                    h.block_size
                ),
            ),
            Fact::new(
                "Encrypted image",
                format!(
                    "{}, {} bytes at offset {}",
                    self.inner_format, h.data_size, h.data_offset
                ),
            ),
            Fact::new("Image UUID", crate::bytes::uuid_text(&h.uuid)),
        ];
        facts.extend(self.inner.facts());
        facts
    }

    fn checksums(&self) -> Checksums {
        self.inner.checksums()
    }

    fn layout(&self) -> Option<Vec<LayoutEntry>> {
        self.inner.layout()
    }

    fn band_size(&self) -> Option<u64> {
        self.inner.band_size()
    }

    fn read_write(&self) -> bool {
        self.inner.read_write()
    }

    fn writable(&self) -> Option<Arc<dyn WriteAt>> {
        self.inner.writable()
    }
}

// Writing. The layout is hdiutil's (checked against a real AES-256 image): a 616-byte key
// descriptor, data from 0x1DE00, 512-byte blocks, the key blob wrapped with 3DES, which every
// macOS reads. The descriptor sits at 0x2A8, where older hdiutil put it: readers that follow the
// key pointer (hdiutil, dimg) take it anywhere, and vfdecrypt, which does not, finds it there.
const DESCRIPTOR_AT: u64 = 0x2A8;
const DESCRIPTOR_SIZE: usize = 616;
/// Where ciphertext starts in images dimg writes.
pub const DATA_OFFSET: u64 = 0x1DE00;
/// Bytes per encrypted block in images dimg writes.
pub const BLOCK: usize = 512;
/// PBKDF2 rounds for new passphrases. hdiutil calibrates per machine (a macOS 10.15 image has
/// 232,558); this is of that order, about 50 ms here.
pub const DEFAULT_ITERATIONS: u32 = 250_000;

fn random<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut b = Zeroizing::new([0u8; N]);
    getrandom::fill(&mut *b).expect("the system has a random source");
    b
}

/// A type-1 key descriptor: `keys` wrapped under `pass` with a fresh salt and IV.
fn wrap(keys: &Keys, pass: &[u8], iterations: u32, size: usize) -> Vec<u8> {
    use aes::cipher::BlockEncryptMut;
    let (salt, iv) = (random::<20>(), random::<8>());
    let mut derived = Zeroizing::new([0u8; 24]);
    pbkdf2::pbkdf2_hmac::<Sha1>(pass, &*salt, iterations, &mut *derived);
    let mut plain = Zeroizing::new(Vec::with_capacity(64));
    plain.extend_from_slice(&keys.aes);
    plain.extend_from_slice(&keys.hmac);
    plain.extend_from_slice(b"CKIE\0");
    let mut blob = Zeroizing::new(vec![0u8; (plain.len() / 8 + 1) * 8]);
    blob[..plain.len()].copy_from_slice(&plain);
    cbc::Encryptor::<des::TdesEde3>::new_from_slices(&*derived, &*iv)
        .expect("3DES takes a 24-byte key and an 8-byte IV")
        .encrypt_padded_mut::<Pkcs7>(&mut blob, plain.len())
        .expect("the buffer has room for the padding");
    let mut d = vec![0u8; size];
    let mut put = |at: usize, bytes: &[u8]| d[at..at + bytes.len()].copy_from_slice(bytes);
    put(0x00, &103u32.to_be_bytes()); // PBKDF2
    put(0x08, &iterations.to_be_bytes());
    put(0x0C, &20u32.to_be_bytes());
    put(0x10, &*salt);
    put(0x30, &8u32.to_be_bytes());
    put(0x34, &*iv);
    put(0x54, &192u32.to_be_bytes());
    put(0x58, &BLOB_3DES.to_be_bytes());
    put(0x5C, &7u32.to_be_bytes()); // PKCS#7
    put(0x60, &6u32.to_be_bytes()); // CBC, pad, 8-byte IV
    put(0x64, &(blob.len() as u32).to_be_bytes());
    put(0x68, &blob);
    d
}

/// Everything needed to write a new encrypted image: fresh random keys, wrapped under the
/// passphrase.
pub struct Sealer {
    blocks: BlockCipher,
    key_bits: u32,
    uuid: [u8; 16],
    descriptor: Vec<u8>,
}

impl Sealer {
    /// `key_bits` is 128 or 256. The passphrase's first candidate is the one used.
    pub fn new(key_bits: u32, pass: &crate::Passphrase, iterations: u32) -> Self {
        let aes_len = key_bits as usize / 8;
        let aes = Zeroizing::new(random::<32>()[..aes_len].to_vec());
        // The IV key is the first 20 bytes of the wrapped key material, as in images hdiutil
        // makes (a real AES-256 image shows it) and as vfdecrypt assumes: for AES-256 the first
        // 20 bytes of the AES key, for AES-128 that key followed by its own first 4 bytes.
        let hmac = Zeroizing::new(aes.iter().chain(aes.iter()).take(20).copied().collect());
        let keys = Keys { aes, hmac };
        let pass = pass
            .candidates()
            .next()
            .expect("a passphrase has a candidate");
        let mut uuid = *random::<16>();
        uuid[6] = (uuid[6] & 0x0F) | 0x40;
        uuid[8] = (uuid[8] & 0x3F) | 0x80;
        Sealer {
            blocks: BlockCipher::new(&keys),
            key_bits,
            uuid,
            descriptor: wrap(&keys, pass, iterations, DESCRIPTOR_SIZE),
        }
    }

    /// Encrypts whole blocks in place, block `first` onwards, on all cores.
    pub fn encrypt(&self, first: u64, data: &mut [u8]) {
        self.blocks.encrypt_blocks(first, BLOCK, data);
    }

    /// The bytes before the data: header, key descriptor and padding, for `data_size` bytes of
    /// plaintext.
    pub fn header(&self, data_size: u64) -> Vec<u8> {
        let mut h = vec![0u8; DATA_OFFSET as usize];
        let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
        put(0x00, b"encrcdsa");
        put(0x08, &2u32.to_be_bytes());
        put(0x0C, &16u32.to_be_bytes());
        put(0x10, &5u32.to_be_bytes()); // CBC with an 8-byte IV
        put(0x14, &BLOB_AES.to_be_bytes());
        put(0x18, &self.key_bits.to_be_bytes());
        put(0x1C, &0x5Bu32.to_be_bytes()); // HMAC-SHA1 IVs
        put(0x20, &160u32.to_be_bytes());
        put(0x24, &self.uuid);
        put(0x34, &(BLOCK as u32).to_be_bytes());
        put(0x38, &data_size.to_be_bytes());
        put(0x40, &DATA_OFFSET.to_be_bytes());
        put(0x48, &1u32.to_be_bytes());
        put(0x4C, &1u32.to_be_bytes()); // passphrase-wrapped key
        put(0x50, &DESCRIPTOR_AT.to_be_bytes());
        put(0x58, &(DESCRIPTOR_SIZE as u64).to_be_bytes());
        put(DESCRIPTOR_AT as usize, &self.descriptor);
        h
    }
}

/// Re-wraps the image's keys under a new passphrase: only the key descriptor changes, in place;
/// the data is not touched (hdiutil chpass).
pub fn chpass(
    file: &std::fs::File,
    old: &crate::Passphrase,
    new: &crate::Passphrase,
    iterations: u32,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let source = crate::io::FileSource::from_file(file.try_clone()?)?;
    let h = header(&source)?;
    for wrapped in &h.wrapped {
        for candidate in old.candidates() {
            if let Some(keys) = unwrap(&source, *wrapped, h.key_bits, candidate)? {
                let pass = new
                    .candidates()
                    .next()
                    .expect("a passphrase has a candidate");
                let descriptor = wrap(&keys, pass, iterations, wrapped.1 as usize);
                file.write_all_at(&descriptor, wrapped.0)?;
                return file.sync_all();
            }
        }
    }
    Err(Locked::WrongPassphrase.io())
}
