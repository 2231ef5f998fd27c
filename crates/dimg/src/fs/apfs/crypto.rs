//! APFS volume encryption (Apple File System Reference, "Encryption" and "Keybags"): a volume
//! encrypted by software has one volume encryption key (VEK) for everything it encrypts — its
//! file-system tree nodes and its files' extents — as AES-XTS-128 over 512-byte units.
//!
//! The key is kept wrapped. The container keybag (`nx_keylocker`, encrypted with AES-XTS keyed
//! by the container's UUID twice) holds, for each encrypted volume, the VEK wrapped by a key
//! encryption key (KEK) and where the volume's own keybag lies; that keybag (encrypted with the
//! volume's UUID) holds the KEK wrapped once per way in: each user's password, the recovery key.
//! A password opens its KEK through PBKDF2-HMAC-SHA256 and an RFC 3394 unwrap, whose integrity
//! check is what tells a wrong password; the KEK unwraps the VEK the same way.
//!
//! Every count and length here comes from the image and is bounded before it is used; every key
//! is wiped when dropped, and none is ever shown.

use super::block::{bad, fletcher64, Blocks};
use super::xts::XtsKey;
use crate::bytes::{le16, le32, le64};
use crate::io::ReadAt;
use crate::secret::{Locked, Passphrase};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::io;
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// `media_keybag_t` object types: the container's keybag and a volume's.
const CONTAINER_KEYBAG: u32 = 0x6B65_7973; // 'keys'
const VOLUME_KEYBAG: u32 = 0x7265_6373; // 'recs'
/// `kb_locker_t.kl_version`.
const KEYBAG_VERSION: u16 = 2;
/// Keybag entry tags: a wrapped VEK (container keybag); the volume keybag's place (container
/// keybag) or a wrapped KEK (volume keybag); the password hint (volume keybag).
const TAG_VOLUME_KEY: u16 = 2;
const TAG_VOLUME_UNLOCK_RECORDS: u16 = 3;
const TAG_VOLUME_PASSPHRASE_HINT: u16 = 4;
/// `nx_flags`: the container's volumes are encrypted in software. Without it their keys are
/// held by the Mac's Secure Enclave (a T2 or Apple silicon internal disk).
pub(super) const NX_CRYPTO_SW: u64 = 0x4;
/// A keybag is one block on every container seen; a few more are allowed, no more.
const MAX_KEYBAG_BLOCKS: u64 = 16;
/// A keybag entry's data: a KEK blob is ~150 bytes (`APFS_VOL_KEYBAG_ENTRY_MAX_SIZE`).
const MAX_ENTRY: usize = 512;
/// KEKs tried for one password: a Mac keeps one per user and recovery key.
const MAX_KEKS: usize = 32;
/// PBKDF2 rounds beyond this are refused: the count is the image's to choose.
#[cfg(not(fuzzing))]
const MAX_ITERATIONS: u64 = 10_000_000;
#[cfg(fuzzing)]
const MAX_ITERATIONS: u64 = 1_000;
/// The KEK blob's HMAC key is SHA-256 of this and the blob's salt.
const BLOB_HMAC_PREFIX: [u8; 6] = [0x01, 0x16, 0x20, 0x17, 0x15, 0x05];
/// A wrapped key's "encryption method" flag: 128-bit keys, as CoreStorage FileVault made them
/// (volumes converted from it).
const METHOD_AES_128: u32 = 0x2;

const WHAT_CONTAINER: &str = "APFS container keybag";
const WHAT_VOLUME: &str = "APFS volume keybag";

/// Bytes one read of an encrypted extent decrypts (or encrypts) at most.
const MAX_READ: usize = 1 << 20;

/// Bytes of `disk` passed through AES-XTS as they are read: an encrypted file extent decrypted
/// (reading a volume), or a run of a file's data encrypted (writing one). `len` bytes from byte
/// `start` of `disk`, whose first 512-byte unit has tweak `tweak` (the extent's `crypto_id` in
/// 512-byte units: the unit where it was first written), the units after it counted on from
/// there; `disk` holds whole units.
pub(super) struct Ciphered {
    pub disk: Arc<dyn ReadAt>,
    pub start: u64,
    pub len: u64,
    pub tweak: u64,
    pub key: Arc<XtsKey>,
    pub encrypt: bool,
}

impl ReadAt for Ciphered {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf.len().min((self.len - offset) as usize).min(MAX_READ);
        let (first, end) = (offset / 512, (offset + n as u64).div_ceil(512));
        let tweak = self.tweak.wrapping_add(first);
        let crypt = |units: &mut [u8]| match self.encrypt {
            true => self.key.encrypt(units, tweak),
            false => self.key.decrypt(units, tweak),
        };
        // Whole units are read into `buf` and worked there; others through a copy.
        if offset.is_multiple_of(512) && n.is_multiple_of(512) {
            self.disk
                .read_exact_at(self.start + offset, &mut buf[..n])?;
            crypt(&mut buf[..n]);
            return Ok(n);
        }
        let mut units = vec![0u8; ((end - first) * 512) as usize];
        self.disk
            .read_exact_at(self.start + first * 512, &mut units)?;
        crypt(&mut units);
        let skip = (offset - first * 512) as usize;
        buf[..n].copy_from_slice(&units[skip..skip + n]);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.len
    }
}

/// One entry of a keybag (`keybag_entry_t`).
struct Entry {
    uuid: [u8; 16],
    tag: u16,
    data: Vec<u8>,
}

/// A decrypted, checked keybag's entries.
struct Keybag(Vec<Entry>);

impl Keybag {
    fn find(&self, uuid: &[u8; 16], tag: u16) -> Option<&Entry> {
        self.0.iter().find(|e| &e.uuid == uuid && e.tag == tag)
    }
}

/// The keybag of type `kind` in blocks `range`, decrypted with `uuid` as both XTS keys (unless
/// it is stored in the clear), its checksum and type checked.
fn keybag(
    blocks: &Blocks,
    (start, count): (u64, u64),
    uuid: &[u8; 16],
    kind: u32,
    what: &'static str,
) -> io::Result<Keybag> {
    if count == 0 || count > MAX_KEYBAG_BLOCKS {
        return Err(bad(
            what,
            start.saturating_mul(blocks.size),
            format!("claims {count} blocks (1 to {MAX_KEYBAG_BLOCKS} are read)"),
        ));
    }
    let at = blocks.span(start, count, what)?;
    let mut bag = Zeroizing::new(vec![0u8; (count * blocks.size) as usize]);
    blocks.disk().read_exact_at(at, &mut bag)?;
    if le32(&bag, 24) != kind {
        let mut key = Zeroizing::new([0u8; 32]);
        key[..16].copy_from_slice(uuid);
        key[16..].copy_from_slice(uuid);
        XtsKey::new(&key).decrypt(&mut bag, at / 512);
    }
    if le64(&bag, 0) != fletcher64(&bag) {
        return Err(bad(
            what,
            at,
            format!("block {start} fails its Fletcher-64 checksum once decrypted"),
        ));
    }
    if le32(&bag, 24) != kind {
        return Err(bad(
            what,
            at,
            format!(
                "block {start} holds object type {:#x}, not a keybag",
                le32(&bag, 24)
            ),
        ));
    }
    // kb_locker_t: version, number of keys, bytes (from the locker's start), then the entries.
    let (version, keys, bytes) = (le16(&bag, 32), le16(&bag, 34), le32(&bag, 36) as usize);
    if version != KEYBAG_VERSION {
        return Err(bad(
            what,
            at + 32,
            format!("is of version {version}, not {KEYBAG_VERSION}"),
        ));
    }
    let locker = &bag[32..];
    if bytes < 16 || bytes > locker.len() {
        return Err(bad(
            what,
            at + 36,
            format!(
                "claims {bytes} bytes of keys in {} bytes",
                locker.len() - 16
            ),
        ));
    }
    let mut entries = Vec::new();
    let mut here = 16;
    for i in 0..keys {
        let header = locker.get(here..here + 24).filter(|_| here + 24 <= bytes);
        let Some(header) = header else {
            return Err(bad(
                what,
                at + 32 + here as u64,
                format!("claims {keys} keys, but key {i} lies past its {bytes} bytes"),
            ));
        };
        let len = usize::from(le16(header, 18));
        let data = locker
            .get(here + 24..here + 24 + len)
            .filter(|_| len <= MAX_ENTRY && here + 24 + len <= bytes);
        let Some(data) = data else {
            return Err(bad(
                what,
                at + 32 + here as u64,
                format!("key {i} claims {len} bytes, past the keybag's end"),
            ));
        };
        entries.push(Entry {
            uuid: header[..16].try_into().expect("16 bytes"),
            tag: le16(header, 16),
            data: data.to_vec(),
        });
        here += (24 + len).next_multiple_of(16);
    }
    Ok(Keybag(entries))
}

/// What the container keybag says of one volume: its wrapped VEK, and where its own keybag is.
struct VolumeRecords {
    vek: Vec<u8>,
    keybag: (u64, u64),
}

/// The container's key material, as the chosen superblock gives it.
pub(super) struct Keylocker {
    pub uuid: [u8; 16],
    /// `nx_keylocker`: the container keybag's first block and block count.
    pub range: (u64, u64),
    pub flags: u64,
}

impl Keylocker {
    fn volume(&self, blocks: &Blocks, volume: &[u8; 16]) -> io::Result<VolumeRecords> {
        if self.range.1 == 0 {
            return Err(bad(
                WHAT_CONTAINER,
                1296,
                "is missing: the container superblock names no keybag",
            ));
        }
        let bag = keybag(
            blocks,
            self.range,
            &self.uuid,
            CONTAINER_KEYBAG,
            WHAT_CONTAINER,
        )?;
        let missing = |what: &str| {
            bad(
                WHAT_CONTAINER,
                self.range.0 * blocks.size,
                format!("has no {what} for the volume"),
            )
        };
        let vek = bag
            .find(volume, TAG_VOLUME_KEY)
            .ok_or_else(|| missing("wrapped volume key"))?;
        let records = bag
            .find(volume, TAG_VOLUME_UNLOCK_RECORDS)
            .ok_or_else(|| missing("volume keybag"))?;
        if records.data.len() != 16 {
            return Err(bad(
                WHAT_CONTAINER,
                self.range.0 * blocks.size,
                format!(
                    "gives the volume keybag's place in {} bytes, not 16",
                    records.data.len()
                ),
            ));
        }
        Ok(VolumeRecords {
            vek: vek.data.clone(),
            keybag: (le64(&records.data, 0), le64(&records.data, 8)),
        })
    }

    /// Where volume `uuid`'s keybag lies: (first block, blocks).
    pub fn volume_keybag(&self, blocks: &Blocks, uuid: &[u8; 16]) -> io::Result<(u64, u64)> {
        Ok(self.volume(blocks, uuid)?.keybag)
    }

    /// The password hint the volume keybag keeps for volume `uuid`, if any.
    pub fn hint(&self, blocks: &Blocks, uuid: &[u8; 16]) -> io::Result<Option<String>> {
        let records = self.volume(blocks, uuid)?;
        let bag = keybag(blocks, records.keybag, uuid, VOLUME_KEYBAG, WHAT_VOLUME)?;
        Ok(bag
            .find(uuid, TAG_VOLUME_PASSPHRASE_HINT)
            .map(|e| String::from_utf8_lossy(&e.data).into_owned()))
    }

    /// The key of volume `uuid`, from `passphrase` (a user's password or the recovery key):
    /// `Locked::WrongPassphrase` when it opens none of the volume's KEKs.
    pub fn unlock(
        &self,
        blocks: &Blocks,
        uuid: &[u8; 16],
        passphrase: &Passphrase,
    ) -> io::Result<XtsKey> {
        if self.flags & NX_CRYPTO_SW == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the volume is encrypted by its Mac's Secure Enclave (a T2 or Apple silicon \
                 internal disk): its key never leaves that Mac, so no password unlocks it elsewhere",
            ));
        }
        let records = self.volume(blocks, uuid)?;
        let bag = keybag(blocks, records.keybag, uuid, VOLUME_KEYBAG, WHAT_VOLUME)?;
        let vek_at = self.range.0 * blocks.size;
        let vek = Blob::parse(&records.vek, false).map_err(|p| bad(WHAT_CONTAINER, vek_at, p))?;
        let keks_at = records.keybag.0 * blocks.size;
        let mut damaged = None;
        let keks = bag.0.iter().filter(|e| e.tag == TAG_VOLUME_UNLOCK_RECORDS);
        for entry in keks.take(MAX_KEKS) {
            let kek = match Blob::parse(&entry.data, true) {
                Ok(kek) => kek,
                Err(p) => {
                    damaged = damaged.or(Some(p));
                    continue;
                }
            };
            for candidate in passphrase.candidates() {
                if let Some(kek) = kek.unwrap_with_password(candidate)? {
                    return vek
                        .unwrap_vek(&kek)
                        .map_err(|p| bad(WHAT_CONTAINER, vek_at, p));
                }
            }
        }
        match damaged {
            // A KEK that could not be read might have been the one: say so, not "wrong".
            Some(p) => Err(bad(WHAT_VOLUME, keks_at, p)),
            None => Err(Locked::WrongPassphrase.io()),
        }
    }
}

/// A wrapped key as the keybags keep it, a DER sequence: [0] a version, [1] an HMAC-SHA256 of
/// the [3] part keyed by the [2] salt, and [3] the key's UUID, flags (its method), the wrapped
/// key and, for a KEK, the PBKDF2 iterations and salt.
struct Blob<'a> {
    uuid: &'a [u8],
    method: u32,
    wrapped: &'a [u8],
    iterations: u64,
    salt: &'a [u8],
}

impl<'a> Blob<'a> {
    fn parse(der: &'a [u8], kek: bool) -> Result<Blob<'a>, String> {
        let name = if kek { "a KEK" } else { "the VEK" };
        let broken = |what: &str| format!("{name}'s blob is damaged: {what}");
        let mut outer = Der(der);
        let sequence = outer.take(0x30).ok_or_else(|| broken("no sequence"))?;
        let mut fields = Der(sequence.1);
        let (_, _) = fields.take(0x80).ok_or_else(|| broken("no version"))?;
        let (_, hmac) = fields.take(0x81).ok_or_else(|| broken("no HMAC"))?;
        let (_, hmac_salt) = fields.take(0x82).ok_or_else(|| broken("no HMAC salt"))?;
        let (body, inner) = fields.take(0xA3).ok_or_else(|| broken("no wrapped key"))?;
        let mut key = <Hmac<Sha256> as Mac>::new_from_slice(
            &Sha256::new()
                .chain_update(BLOB_HMAC_PREFIX)
                .chain_update(hmac_salt)
                .finalize(),
        )
        .expect("HMAC takes any key length");
        key.update(body);
        if key.verify_slice(hmac).is_err() {
            return Err(format!("{name}'s blob fails its HMAC-SHA256"));
        }
        let mut inner = Der(inner);
        let _ = inner.take(0x80).ok_or_else(|| broken("no version"))?;
        let (_, uuid) = inner.take(0x81).ok_or_else(|| broken("no UUID"))?;
        let (_, flags) = inner.take(0x82).ok_or_else(|| broken("no flags"))?;
        let (_, wrapped) = inner.take(0x83).ok_or_else(|| broken("no key"))?;
        let method = match flags.get(..4) {
            Some(f) => le32(f, 0),
            None => return Err(broken("flags shorter than 4 bytes")),
        };
        let (mut iterations, mut salt) = (0, &[][..]);
        if kek {
            let (_, n) = inner
                .take(0x84)
                .ok_or_else(|| broken("no iteration count"))?;
            iterations = integer(n).ok_or_else(|| broken("an iteration count of over 8 bytes"))?;
            salt = inner.take(0x85).ok_or_else(|| broken("no salt"))?.1;
            if iterations == 0 || iterations > MAX_ITERATIONS {
                return Err(format!(
                    "{name} asks for {iterations} PBKDF2 rounds (1 to {MAX_ITERATIONS} are accepted)"
                ));
            }
        }
        let len = if method & METHOD_AES_128 != 0 { 24 } else { 40 };
        let wrapped = wrapped
            .get(..len)
            .ok_or_else(|| broken(&format!("a wrapped key of {} bytes", wrapped.len())))?;
        Ok(Blob {
            uuid,
            method,
            wrapped,
            iterations,
            salt,
        })
    }

    /// The KEK, if `password` opens it (PBKDF2-HMAC-SHA256, then RFC 3394 unwrap).
    fn unwrap_with_password(&self, password: &[u8]) -> io::Result<Option<Kek>> {
        let mut derived = Zeroizing::new([0u8; 32]);
        pbkdf2::pbkdf2_hmac::<Sha256>(password, self.salt, self.iterations as u32, &mut *derived);
        let mut kek = Zeroizing::new([0u8; 32]);
        let opened = match self.method & METHOD_AES_128 != 0 {
            true => aes_kw::KekAes128::new(derived[..16].into())
                .unwrap(self.wrapped, &mut kek[..16])
                .is_ok(),
            false => aes_kw::KekAes256::new(derived[..].into())
                .unwrap(self.wrapped, &mut kek[..])
                .is_ok(),
        };
        Ok(opened.then(|| Kek {
            key: kek,
            short: self.method & METHOD_AES_128 != 0,
        }))
    }

    /// The VEK this blob wraps with `kek`. A 128-bit VEK (a volume converted from CoreStorage)
    /// takes as its tweak key the first half of SHA-256 of itself and its UUID.
    fn unwrap_vek(&self, kek: &Kek) -> Result<XtsKey, String> {
        let mut vek = Zeroizing::new([0u8; 32]);
        let short = self.method & METHOD_AES_128 != 0;
        let out = if short { &mut vek[..16] } else { &mut vek[..] };
        let opened = match kek.short {
            true => aes_kw::KekAes128::new(kek.key[..16].into()).unwrap(self.wrapped, out),
            false => aes_kw::KekAes256::new(kek.key[..].into()).unwrap(self.wrapped, out),
        };
        if opened.is_err() {
            return Err(
                "the volume key does not unwrap with the KEK the password opened".to_string(),
            );
        }
        if short {
            let mut hash = Zeroizing::new([0u8; 32]);
            let mut digest = Sha256::new()
                .chain_update(&vek[..16])
                .chain_update(self.uuid)
                .finalize();
            hash.copy_from_slice(&digest);
            digest.as_mut_slice().zeroize();
            vek[16..].copy_from_slice(&hash[..16]);
        }
        Ok(XtsKey::new(&vek))
    }
}

/// An unwrapped KEK: 32 bytes, or 16 where `short`.
struct Kek {
    key: Zeroizing<[u8; 32]>,
    short: bool,
}

/// A DER reader over a run of elements: each a tag byte, a length (short or long form, up to
/// four bytes) and that many bytes.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next element if its tag is `tag`: (all of it, its contents).
    fn take(&mut self, tag: u8) -> Option<(&'a [u8], &'a [u8])> {
        let d = self.0;
        if *d.first()? != tag {
            return None;
        }
        let first = *d.get(1)?;
        let (len, head) = match first {
            0..=0x7F => (usize::from(first), 2),
            0x81..=0x84 => {
                let n = usize::from(first & 0x7F);
                let bytes = d.get(2..2 + n)?;
                (
                    bytes.iter().fold(0usize, |a, &b| a << 8 | usize::from(b)),
                    2 + n,
                )
            }
            _ => return None,
        };
        let end = head.checked_add(len).filter(|&e| e <= d.len())?;
        self.0 = &d[end..];
        Some((&d[..end], &d[head..end]))
    }
}

/// A DER integer's value, where it fits 64 bits (a leading zero byte allowed).
fn integer(bytes: &[u8]) -> Option<u64> {
    let bytes = match bytes {
        [0, rest @ ..] => rest,
        b => b,
    };
    (bytes.len() <= 8).then(|| bytes.iter().fold(0u64, |a, &b| a << 8 | u64::from(b)))
}

/// PBKDF2 rounds a new volume's password takes, as macOS asks.
const NEW_ITERATIONS: u32 = 100_000;
/// A new wrapped key's flags: method 0 (AES-256), then bytes of unknown meaning set as macOS
/// sets them in the VEK's and a KEK's blob.
const NEW_VEK_FLAGS: [u8; 8] = [0, 0, 0, 0, 1, 0, 0xE0, 0xFF];
const NEW_KEK_FLAGS: [u8; 8] = [0, 0, 0, 0, 2, 0, 0xE0, 0xFF];

/// What a new encrypted volume needs: its VEK, and the two keybags' blocks as they are stored
/// (sealed and encrypted).
pub(super) struct NewKeys {
    pub vek: XtsKey,
    pub container_bag: Vec<u8>,
    pub volume_bag: Vec<u8>,
}

/// Fresh keys for volume `volume` of container `container`, opened by `password`: a random VEK
/// wrapped by a random KEK, the KEK wrapped by the password (PBKDF2-HMAC-SHA256, RFC 3394), the
/// container keybag at block `bags.0` holding the first and where the volume keybag (block
/// `bags.1`) is, which holds the second; as of transaction `xid`, in blocks of `block_size`.
pub(super) fn new_keys(
    password: &[u8],
    container: &[u8; 16],
    volume: &[u8; 16],
    bags: (u64, u64),
    xid: u64,
    block_size: usize,
) -> NewKeys {
    let vek = random::<32>();
    let kek = random::<32>();
    let salt = random::<16>();
    let mut derived = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &*salt, NEW_ITERATIONS, &mut *derived);
    let wrap = |by: &[u8; 32], key: &[u8; 32]| {
        let mut out = [0u8; 40];
        aes_kw::KekAes256::new(by.into())
            .wrap(key, &mut out)
            .expect("40 bytes hold a wrapped 32-byte key");
        out
    };
    let iterations = NEW_ITERATIONS.to_be_bytes();
    let significant = iterations.iter().position(|&b| b != 0).unwrap_or(3);
    let kek_blob = blob(
        volume,
        NEW_KEK_FLAGS,
        &wrap(&derived, &kek),
        &[der(0x84, &iterations[significant..]), der(0x85, &*salt)].concat(),
    );
    let vek_blob = blob(volume, NEW_VEK_FLAGS, &wrap(&kek, &vek), &[]);
    let volume_place = [bags.1.to_le_bytes(), 1u64.to_le_bytes()].concat();
    let container_bag = keybag_block(
        CONTAINER_KEYBAG,
        &[
            (volume, TAG_VOLUME_UNLOCK_RECORDS, &volume_place[..]),
            (volume, TAG_VOLUME_KEY, &vek_blob[..]),
        ],
        (bags.0, container),
        xid,
        block_size,
    );
    let volume_bag = keybag_block(
        VOLUME_KEYBAG,
        &[(volume, TAG_VOLUME_UNLOCK_RECORDS, &kek_blob[..])],
        (bags.1, volume),
        xid,
        block_size,
    );
    NewKeys {
        vek: XtsKey::new(&vek),
        container_bag,
        volume_bag,
    }
}

fn random<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut b = Zeroizing::new([0u8; N]);
    getrandom::fill(&mut *b).expect("the system has a random source");
    b
}

/// A DER element: `tag`, its length (short form, or long in one or two bytes) and `body`.
fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut e = vec![tag];
    match body.len() {
        n @ 0..=0x7F => e.push(n as u8),
        n @ 0x80..=0xFF => e.extend([0x81, n as u8]),
        n => e.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    e.extend(body);
    e
}

/// A wrapped key's blob (see [`Blob`]): `wrapped` with its UUID and flags, `more` after them
/// (a KEK's rounds and salt), under an HMAC keyed by a fresh salt.
fn blob(uuid: &[u8; 16], flags: [u8; 8], wrapped: &[u8], more: &[u8]) -> Vec<u8> {
    let inner = [
        der(0x80, &[0]),
        der(0x81, uuid),
        der(0x82, &flags),
        der(0x83, wrapped),
        more.to_vec(),
    ]
    .concat();
    let body = der(0xA3, &inner);
    let salt = random::<8>();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(
        &Sha256::new()
            .chain_update(BLOB_HMAC_PREFIX)
            .chain_update(*salt)
            .finalize(),
    )
    .expect("HMAC takes any key length");
    mac.update(&body);
    let fields = [
        der(0x80, &[0]),
        der(0x81, &mac.finalize().into_bytes()),
        der(0x82, &*salt),
        body,
    ];
    der(0x30, &fields.concat())
}

/// A keybag's block of type `kind` holding `entries` (UUID, tag, data), each padded to 16
/// bytes, as macOS writes one: no object id, checksummed, then encrypted with AES-XTS keyed by
/// `uuid` twice at block `paddr`'s units.
fn keybag_block(
    kind: u32,
    entries: &[(&[u8; 16], u16, &[u8])],
    (paddr, uuid): (u64, &[u8; 16]),
    xid: u64,
    block_size: usize,
) -> Vec<u8> {
    let mut b = vec![0u8; block_size];
    b[16..24].copy_from_slice(&xid.to_le_bytes());
    b[24..28].copy_from_slice(&kind.to_le_bytes());
    let mut at = 48;
    for (id, tag, data) in entries {
        b[at..at + 16].copy_from_slice(*id);
        b[at + 16..at + 18].copy_from_slice(&tag.to_le_bytes());
        b[at + 18..at + 20].copy_from_slice(&(data.len() as u16).to_le_bytes());
        b[at + 24..at + 24 + data.len()].copy_from_slice(data);
        at += (24 + data.len()).next_multiple_of(16);
    }
    b[32..34].copy_from_slice(&KEYBAG_VERSION.to_le_bytes());
    b[34..36].copy_from_slice(&(entries.len() as u16).to_le_bytes());
    // kl_nbytes counts the locker's header and the entries with their padding.
    b[36..40].copy_from_slice(&((at - 32) as u32).to_le_bytes());
    let sum = fletcher64(&b);
    b[..8].copy_from_slice(&sum.to_le_bytes());
    let mut key = Zeroizing::new([0u8; 32]);
    key[..16].copy_from_slice(uuid);
    key[16..].copy_from_slice(uuid);
    XtsKey::new(&key).encrypt(&mut b, paddr * (block_size as u64 / 512));
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_in_both_forms_and_nothing_past_the_end() {
        let mut d = Der(&[
            0x80, 0x01, 0x07, 0x81, 0x81, 0x02, 0xAA, 0xBB, 0x82, 0x05, 0x00,
        ]);
        assert_eq!(d.take(0x80).unwrap().1, &[0x07]);
        assert_eq!(d.take(0x81).unwrap().1, &[0xAA, 0xBB]);
        // Claims 5 bytes, holds 1.
        assert!(d.take(0x82).is_none());
        assert!(Der(&[0x80, 0x01, 0x07]).take(0x81).is_none());
        assert_eq!(integer(&[0x00, 0x01, 0x86, 0xA0]), Some(100_000));
        assert_eq!(integer(&[1; 9]), None);
    }

    /// The corpus's encrypted container, as bytes to damage, and its published password.
    fn corpus() -> (Vec<u8>, Passphrase) {
        let t = dimg_e2e::truths()
            .into_iter()
            .find(|t| t.file == "apfs/dissect-encrypted.bin")
            .expect("the encrypted container is in expected.tsv");
        let pass = t.passphrase.clone().expect("its password");
        (
            std::fs::read(t.path()).unwrap(),
            Passphrase::new(pass.into_bytes()),
        )
    }

    /// Unlocks the one volume of the container `bytes` hold.
    fn unlock(bytes: Vec<u8>, passphrase: &Passphrase) -> io::Result<XtsKey> {
        let disk: Arc<dyn ReadAt> = Arc::new(bytes);
        let volume = super::super::open(disk)?.remove(0);
        let c = &volume.container;
        c.keylocker.unlock(&c.blocks, &volume.uuid, passphrase)
    }

    /// A keybag's block of `bytes` in the clear, changed by `change`, then encrypted and sealed
    /// again as the Mac would have written it.
    fn rewrite_keybag(bytes: &mut [u8], block: usize, uuid: &[u8; 16], change: impl Fn(&mut [u8])) {
        let key = XtsKey::new(&[*uuid, *uuid].concat().try_into().unwrap());
        let at = block * 4096;
        let b = &mut bytes[at..at + 4096];
        key.decrypt(b, at as u64 / 512);
        change(b);
        let sum = fletcher64(b);
        b[..8].copy_from_slice(&sum.to_le_bytes());
        key.encrypt(b, at as u64 / 512);
    }

    fn container_uuid_and_keybag(bytes: &[u8]) -> ([u8; 16], usize) {
        (
            bytes[72..88].try_into().unwrap(),
            le64(bytes, 1296) as usize,
        )
    }

    #[test]
    fn the_password_unlocks_and_another_is_wrong_not_damage() {
        let (bytes, pass) = corpus();
        assert!(unlock(bytes.clone(), &pass).is_ok());
        let e = unlock(bytes, &Passphrase::new(b"Password".to_vec()))
            .err()
            .unwrap();
        assert!(
            matches!(Locked::of(&e), Some(Locked::WrongPassphrase)),
            "{e}"
        );
    }

    #[test]
    fn a_damaged_keybag_is_named_not_called_a_wrong_password() {
        let (bytes, pass) = corpus();
        let (_, bag) = container_uuid_and_keybag(&bytes);
        // The container keybag, a byte flipped in its ciphertext: its checksum fails.
        let mut flipped = bytes.clone();
        flipped[bag * 4096 + 1000] ^= 0x01;
        let e = unlock(flipped, &pass).err().unwrap();
        assert!(
            e.to_string().starts_with("APFS container keybag at offset"),
            "{e}"
        );
        assert!(e.to_string().contains("checksum"), "{e}");
        // The volume keybag (where the container keybag says), likewise.
        let disk: Arc<dyn ReadAt> = Arc::new(bytes.clone());
        let volume = super::super::open(disk).unwrap().remove(0);
        let c = &volume.container;
        let records = c.keylocker.volume(&c.blocks, &volume.uuid).unwrap();
        let mut flipped = bytes.clone();
        flipped[records.keybag.0 as usize * 4096 + 2000] ^= 0x80;
        let e = unlock(flipped, &pass).err().unwrap();
        assert!(
            e.to_string().starts_with("APFS volume keybag at offset"),
            "{e}"
        );
        // A KEK whose wrapped key changed (the keybag resealed over it): its HMAC says so.
        let mut forged = bytes.clone();
        let vol_uuid = volume.uuid;
        rewrite_keybag(&mut forged, records.keybag.0 as usize, &vol_uuid, |b| {
            let bag = keybag_of(b);
            let kek = bag
                .iter()
                .find(|(tag, _)| *tag == TAG_VOLUME_UNLOCK_RECORDS)
                .unwrap();
            b[kek.1 + 60] ^= 0x01;
        });
        let e = unlock(forged, &pass).err().unwrap();
        assert!(e.to_string().contains("fails its HMAC-SHA256"), "{e}");
        assert!(Locked::of(&e).is_none());
    }

    /// (tag, offset in the block of its data) of each entry of a keybag block in the clear.
    fn keybag_of(b: &[u8]) -> Vec<(u16, usize)> {
        let mut at = 48;
        (0..le16(b, 34))
            .map(|_| {
                let (tag, len) = (le16(b, at + 16), usize::from(le16(b, at + 18)));
                let entry = (tag, at + 24);
                at += (24 + len).next_multiple_of(16);
                entry
            })
            .collect()
    }

    #[test]
    fn a_keybag_claiming_more_than_it_holds_is_refused() {
        let (bytes, pass) = corpus();
        let (uuid, bag) = container_uuid_and_keybag(&bytes);
        let claims: [(usize, &[u8]); 3] = [
            // kl_nkeys: 65,535 keys.
            (34, &[0xFF, 0xFF]),
            // kl_nbytes: 4 GiB.
            (36, &[0xFF, 0xFF, 0xFF, 0xFF]),
            // The first entry's ke_keylen: 65,535 bytes.
            (48 + 18, &[0xFF, 0xFF]),
        ];
        for (at, value) in claims {
            let mut damaged = bytes.clone();
            rewrite_keybag(&mut damaged, bag, &uuid, |b| {
                b[at..at + value.len()].copy_from_slice(value)
            });
            let e = unlock(damaged, &pass).err().unwrap();
            let e = e.to_string();
            assert!(e.starts_with("APFS container keybag at offset"), "{e}");
            assert!(e.contains("claims"), "{e}");
        }
    }

    #[test]
    fn a_kek_asking_for_absurd_rounds_is_refused_before_any_are_run() {
        // A well-formed KEK blob, its HMAC right, asking for `rounds` PBKDF2 rounds.
        fn blob(rounds: &[u8]) -> Vec<u8> {
            let more = [der(0x84, rounds), der(0x85, &[3; 16])].concat();
            super::blob(&[1; 16], [0; 8], &[2; 40], &more)
        }
        let absurd = blob(&[1, 0, 0, 0, 0, 0]);
        let e = Blob::parse(&absurd, true).err().unwrap();
        assert!(e.contains("1099511627776 PBKDF2 rounds"), "{e}");
        // 100,000 rounds (a DER integer with its leading zero) are what a Mac asks for.
        let ordinary = blob(&[0x01, 0x86, 0xA0]);
        assert_eq!(Blob::parse(&ordinary, true).unwrap().iterations, 100_000);
        let ordinary = blob(&[0x00, 0xC3, 0x50]);
        assert_eq!(Blob::parse(&ordinary, true).unwrap().iterations, 50_000);
    }
}
