//! Version 1 encrypted images (`cdsaencr`). No Apple-made sample is at hand and no independent
//! reader of v1 is packaged here (Debian's vfdecrypt reads v2 only: its header detection always
//! answers 2; libmirage is not packaged). So this test builds a v1 image itself, with code apart
//! from dimg's reader, from the layout that John the Ripper, nlitsme's notes and the original
//! vfdecrypt agree on (formats.md §b.6). It guards the reader against regressions; it cannot
//! catch a misreading the three sources share.

use aes::cipher::{block_padding::NoPadding, block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
use dimg::ops::{self, Cancel, ConvertOptions, NoProgress, OutputFormat};
use dimg::{Error, Passphrase};
use dimg_e2e::{corpus, sha256sum};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::fs;

const PASS: &str = "old school";
const BLOCK: usize = 4096;

type Tdes = cbc::Encryptor<des::TdesEde3>;

fn tdes(key: &[u8; 24], iv: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; (plain.len() / 8 + 1) * 8];
    buf[..plain.len()].copy_from_slice(plain);
    Tdes::new_from_slices(key, iv)
        .unwrap()
        .encrypt_padded_mut::<Pkcs7>(&mut buf, plain.len())
        .unwrap()
        .to_vec()
}

/// RFC 3217 Triple-DES key wrap: length prefix, inner CBC with a fresh IV, IV prepended, bytes
/// reversed, outer CBC with the fixed IV.
fn rfc3217_wrap(key_to_wrap: &[u8], kek: &[u8; 24], iv: &[u8; 8]) -> Vec<u8> {
    let mut cekicv = vec![0, 0, 0, 0];
    cekicv.extend_from_slice(key_to_wrap);
    let mut temp = iv.to_vec();
    temp.extend(tdes(kek, iv, &cekicv));
    temp.reverse();
    tdes(
        kek,
        &[0x4A, 0xDD, 0xA2, 0x2C, 0x79, 0xE8, 0x21, 0x05],
        &temp,
    )
}

fn v1_image(plain: &[u8]) -> Vec<u8> {
    let (aes_key, hmac_key, salt) = ([0x11u8; 16], [0x22u8; 20], [0x33u8; 20]);
    let mut kek = [0u8; 24];
    pbkdf2::pbkdf2_hmac::<Sha1>(PASS.as_bytes(), &salt, 1000, &mut kek);
    let mut out = Vec::new();
    for (n, chunk) in plain.chunks(BLOCK).enumerate() {
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&hmac_key).unwrap();
        mac.update(&(n as u32).to_be_bytes());
        let iv = mac.finalize().into_bytes();
        let mut block = chunk.to_vec();
        block.resize(BLOCK, 0);
        cbc::Encryptor::<aes::Aes128>::new_from_slices(&aes_key, &iv[..16])
            .unwrap()
            .encrypt_padded_mut::<NoPadding>(&mut block, BLOCK)
            .unwrap();
        out.extend(block);
    }
    let mut h = vec![0u8; 0x4FC];
    let mut put = |at: usize, b: &[u8]| h[at..at + b.len()].copy_from_slice(b);
    put(0x00, &[0x44; 16]); // UUID
    put(0x10, &(BLOCK as u32).to_be_bytes());
    put(0x14, &17u32.to_be_bytes());
    put(0x20, &192u32.to_be_bytes());
    put(0x28, &103u32.to_be_bytes());
    put(0x30, &1000u32.to_be_bytes());
    put(0x34, &20u32.to_be_bytes());
    put(0x38, &salt);
    put(0x64, &128u32.to_be_bytes());
    let wrapped_aes = rfc3217_wrap(&aes_key, &kek, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let wrapped_hmac = rfc3217_wrap(&hmac_key, &kek, &[8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(
        (wrapped_aes.len(), wrapped_hmac.len()),
        (40, 48),
        "the sizes v1 headers carry"
    );
    put(0x88, &40u32.to_be_bytes());
    put(0x8C, &wrapped_aes);
    put(0x1B4, &48u32.to_be_bytes());
    put(0x1B8, &wrapped_hmac);
    put(0x4E8, &(out.len() as u64).to_be_bytes());
    put(0x4F0, &1u32.to_be_bytes());
    put(0x4F4, b"cdsaencr");
    out.extend(h);
    out
}

#[test]
fn a_v1_image_built_from_the_published_layout_opens() {
    let dir = tempfile::tempdir().unwrap();
    let iso = corpus().join("iso/joliet.iso");
    let plain = fs::read(&iso).unwrap();
    assert_eq!(plain.len() % BLOCK, 0);
    let image = dir.path().join("v1.img");
    fs::write(&image, v1_image(&plain)).unwrap();

    let out = dir.path().join("dimg.out");
    let pass = Passphrase::new(PASS.as_bytes().to_vec());
    let options = ConvertOptions::new(OutputFormat::Udto);
    ops::convert(
        &image,
        Some(&pass),
        &out,
        &options,
        &NoProgress,
        &Cancel::new(),
    )
    .unwrap();
    assert_eq!(sha256sum(&out), sha256sum(&iso));
    let info = ops::info(&image, Some(&pass)).unwrap();
    assert!(info
        .facts
        .iter()
        .any(|f| f.value.contains("AES-128 (cdsaencr v1), 4096-byte blocks")));

    let wrong = Passphrase::new(b"new school".to_vec());
    assert!(matches!(
        ops::info(&image, Some(&wrong)),
        Err(Error::WrongPassphrase { .. })
    ));
    assert!(matches!(
        ops::info(&image, None),
        Err(Error::PassphraseNeeded { .. })
    ));
}
