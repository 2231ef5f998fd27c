//! One table of magic numbers that names what a byte source holds, by content only — never by
//! file name. Containers use it to decide who opens a file; `info` uses it to say what it saw.

use crate::io::ReadAt;
use serde::Serialize;
use std::io;

/// Which layer a signature belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    Container,
    PartitionMap,
    FileSystem,
}

/// Everything the table can recognise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signature {
    Udif,
    EncryptedV2,
    EncryptedV1,
    SparseImage,
    Asif,
    NeroV1,
    NeroV2,
    CueSheet,
    /// Disk Copy 4.2: no magic number; its 84-byte header's fixed word and sizes.
    DiskCopy42,
    /// Wrappers that carry a Mac file's forks through other systems.
    MacBinary,
    BinHex,
    AppleSingle,
    Gpt,
    Apm,
    Mbr,
    Iso9660,
    RawCdIso9660,
    Udf,
    HfsPlus,
    Hfsx,
    /// Classic HFS ("Mac OS Standard"), also the wrapper around an older Mac's HFS+ volume.
    Hfs,
    Mfs,
    Apfs,
    Fat,
    ExFat,
    Ntfs,
    Ext,
    /// XAR archives: flat installer packages and `.xip` archives.
    Xar,
    Cpio,
}

impl Signature {
    pub fn name(self) -> &'static str {
        use Signature::*;
        match self {
            Udif => "Apple UDIF disk image (koly)",
            EncryptedV2 => "Apple encrypted disk image (encrcdsa v2)",
            EncryptedV1 => "Apple encrypted disk image (cdsaencr v1)",
            SparseImage => "Apple sparse image (sprs)",
            Asif => "Apple sparse image format (ASIF, shdw)",
            NeroV1 => "Nero image (NRG v1)",
            NeroV2 => "Nero image (NRG v2)",
            CueSheet => "CUE sheet",
            DiskCopy42 => "Disk Copy 4.2 image",
            MacBinary => "MacBinary",
            BinHex => "BinHex 4.0",
            AppleSingle => "AppleSingle",
            Gpt => "GUID partition table",
            Apm => "Apple partition map",
            Mbr => "MBR partition table",
            Iso9660 => "ISO 9660",
            RawCdIso9660 => "ISO 9660 in raw 2352-byte CD sectors",
            Udf => "UDF",
            HfsPlus => "HFS+",
            Hfsx => "HFSX",
            Hfs => "HFS",
            Mfs => "MFS",
            Apfs => "APFS",
            Fat => "FAT",
            ExFat => "exFAT",
            Ntfs => "NTFS",
            Ext => "ext2/3/4",
            Xar => "XAR archive (installer package or .xip)",
            Cpio => "cpio archive",
        }
    }

    pub fn layer(self) -> Layer {
        use Signature::*;
        match self {
            Udif | EncryptedV2 | EncryptedV1 | SparseImage | Asif | NeroV1 | NeroV2 | CueSheet
            | DiskCopy42 | MacBinary | BinHex | AppleSingle => Layer::Container,
            Gpt | Apm | Mbr => Layer::PartitionMap,
            Iso9660 | RawCdIso9660 | Udf | HfsPlus | Hfsx | Hfs | Mfs | Apfs | Fat | ExFat
            | Ntfs | Ext | Xar | Cpio => Layer::FileSystem,
        }
    }
}

/// The bytes the magic tests look at: the head (enough to reach an ISO descriptor inside raw
/// 2352-byte sectors) and the tail (UDIF, NRG and cdsaencr trailers live at the end).
pub struct Sniff {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
    pub size: u64,
}

const HEAD_BYTES: u64 = 64 * 1024;
const TAIL_BYTES: u64 = 1024;

impl Sniff {
    pub fn read(src: &dyn ReadAt) -> io::Result<Self> {
        let size = src.size();
        let mut head = vec![0; size.min(HEAD_BYTES) as usize];
        src.read_exact_at(0, &mut head)?;
        let tail_len = size.min(TAIL_BYTES);
        let mut tail = vec![0; tail_len as usize];
        src.read_exact_at(size - tail_len, &mut tail)?;
        Ok(Sniff { head, tail, size })
    }

    fn head_at(&self, offset: usize, magic: &[u8]) -> bool {
        self.head.get(offset..offset + magic.len()) == Some(magic)
    }

    /// `magic` stands `from_end` bytes before the end of the source.
    fn tail_at(&self, from_end: usize, magic: &[u8]) -> bool {
        let Some(start) = self.tail.len().checked_sub(from_end) else {
            return false;
        };
        self.tail.get(start..start + magic.len()) == Some(magic)
    }

    pub fn head_u16_be(&self, offset: usize) -> Option<u16> {
        let b = self.head.get(offset..offset + 2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    fn head_u32_be(&self, offset: usize) -> Option<u64> {
        let b = self.head.get(offset..offset + 4)?;
        Some(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
    }
}

/// One row of the table: a signature and the test that finds it.
struct Magic {
    signature: Signature,
    test: fn(&Sniff) -> bool,
}

const ISO_PVD: usize = 16 * 2048;
const RAW_SECTOR: usize = 2352;
const CD_SYNC: [u8; 12] = [0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0];

fn boot_sector_signature(s: &Sniff) -> bool {
    s.head_at(510, &[0x55, 0xAA])
}

fn is_fat(s: &Sniff) -> bool {
    boot_sector_signature(s)
        && matches!(s.head.first(), Some(0xEB | 0xE9))
        && (s.head_at(54, b"FAT1") || s.head_at(54, b"FAT ") || s.head_at(82, b"FAT32"))
}

/// A DOS partition table: a boot signature, no file system's boot sector, and four entries whose
/// status bytes are valid with at least one partition type set.
fn is_mbr(s: &Sniff) -> bool {
    if !boot_sector_signature(s)
        || is_fat(s)
        || s.head_at(3, b"EXFAT   ")
        || s.head_at(3, b"NTFS    ")
    {
        return false;
    }
    let entries = &s.head[446..510];
    let sane = entries.chunks(16).all(|e| e[0] == 0 || e[0] == 0x80);
    sane && entries.chunks(16).any(|e| e[4] != 0)
}

/// Disk Copy 4.2's header: a name of at most 63 bytes, whole sectors of data, the fixed word
/// 0x0100, and sizes the file holds (or a disk format Disk Copy knows).
fn is_disk_copy_42(s: &Sniff) -> bool {
    let (Some(data), Some(tags)) = (s.head_u32_be(0x40), s.head_u32_be(0x44)) else {
        return false;
    };
    // Sizes past the end still name a (damaged) Disk Copy image when its disk format is one of
    // the four Disk Copy knows; the driver then says what is wrong.
    let known_format = s.head.get(0x50).is_some_and(|&f| f <= 3);
    s.head[0] <= 63
        && s.head_u16_be(0x52) == Some(0x0100)
        && data > 0
        && data % 512 == 0
        && (84 + data + tags <= s.size || known_format)
}

/// MacBinary's 128-byte header: version byte 0, a name of 1 to 63 bytes, zero filler bytes, and
/// (MacBinary II and III) the CRC-16 of its first 124 bytes.
fn is_macbinary(s: &Sniff) -> bool {
    let h = &s.head;
    if h.len() < 128 || h[0] != 0 || !(1..=63).contains(&h[1]) || h[74] != 0 || h[82] != 0 {
        return false;
    }
    let (data, resource) = (
        s.head_u32_be(83).unwrap_or(0),
        s.head_u32_be(87).unwrap_or(0),
    );
    let fits = 128 + data.next_multiple_of(128) + resource <= s.size + 127;
    let crc_ok = crate::bytes::crc16_xmodem(&h[..124]) == u16::from_be_bytes([h[124], h[125]]);
    let version_one = h[99..126].iter().all(|&b| b == 0);
    // A header whose CRC checks is MacBinary even when its lengths are wrong (the wrapper then
    // says so); without a CRC (MacBinary I) the forks must fit.
    crc_ok || (version_one && fits)
}

/// How BinHex text announces itself before its first ':' — "(This file must be converted with
/// BinHex 4.0)", or as macutils' binhex words it, "... converted; you knew that already.)".
pub const BINHEX_NOTICE: &[u8] = b"(This file must be converted";

/// BinHex 4.0 text, which announces itself before its first ':'.
fn is_binhex(s: &Sniff) -> bool {
    s.head
        .get(..s.head.len().min(4096))
        .is_some_and(|h| h.windows(BINHEX_NOTICE.len()).any(|w| w == BINHEX_NOTICE))
}

/// Text made of cue-sheet keywords, with at least a FILE and a TRACK line.
fn is_cue_sheet(s: &Sniff) -> bool {
    if s.size > 256 * 1024 || s.head.contains(&0) {
        return false;
    }
    let text = String::from_utf8_lossy(&s.head);
    let keyword = |line: &str| {
        line.split_whitespace()
            .next()
            .map(|w| w.to_ascii_uppercase())
            .unwrap_or_default()
    };
    // Cue keywords only, and a track: a sheet that forgot its FILE is still a (damaged) sheet,
    // which the parser then explains.
    let mut track = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match keyword(line.trim_start_matches('\u{feff}')).as_str() {
            "TRACK" => track = true,
            "FILE" | "REM" | "INDEX" | "PREGAP" | "POSTGAP" | "TITLE" | "PERFORMER"
            | "SONGWRITER" | "CATALOG" | "CDTEXTFILE" | "FLAGS" | "ISRC" => {}
            _ => return false,
        }
    }
    track
}

/// cpio's "odc" and "newc" headers (the second with checksums).
pub const CPIO: [&[u8]; 3] = [b"070707", b"070701", b"070702"];

static MAGICS: &[Magic] = &[
    Magic {
        signature: Signature::Udif,
        test: |s| s.size >= 512 && s.tail_at(512, b"koly"),
    },
    Magic {
        signature: Signature::EncryptedV2,
        test: |s| s.head_at(0, b"encrcdsa"),
    },
    Magic {
        signature: Signature::EncryptedV1,
        test: |s| s.tail_at(8, b"cdsaencr"),
    },
    Magic {
        signature: Signature::SparseImage,
        test: |s| s.head_at(0, b"sprs"),
    },
    Magic {
        signature: Signature::Asif,
        test: |s| s.head_at(0, b"shdw"),
    },
    Magic {
        signature: Signature::NeroV2,
        test: |s| s.tail_at(12, b"NER5"),
    },
    Magic {
        signature: Signature::NeroV1,
        test: |s| s.tail_at(8, b"NERO"),
    },
    Magic {
        signature: Signature::CueSheet,
        test: is_cue_sheet,
    },
    Magic {
        signature: Signature::MacBinary,
        test: is_macbinary,
    },
    Magic {
        signature: Signature::BinHex,
        test: is_binhex,
    },
    Magic {
        signature: Signature::AppleSingle,
        // Magic 0x00051600, version 1 or 2.
        test: |s| {
            s.head_at(0, &[0, 5, 0x16, 0])
                && (s.head_at(4, &[0, 1, 0, 0]) || s.head_at(4, &[0, 2, 0, 0]))
        },
    },
    Magic {
        signature: Signature::DiskCopy42,
        test: is_disk_copy_42,
    },
    Magic {
        signature: Signature::Gpt,
        test: |s| s.head_at(512, b"EFI PART") || s.head_at(4096, b"EFI PART"),
    },
    Magic {
        signature: Signature::Apm,
        test: |s| s.head_at(0, b"ER") && s.head_at(512, b"PM"),
    },
    Magic {
        signature: Signature::Mbr,
        test: is_mbr,
    },
    Magic {
        signature: Signature::Iso9660,
        test: |s| s.head_at(ISO_PVD + 1, b"CD001"),
    },
    Magic {
        signature: Signature::RawCdIso9660,
        test: |s| s.head_at(0, &CD_SYNC) && s.head_at(16 * RAW_SECTOR + 16 + 1, b"CD001"),
    },
    Magic {
        signature: Signature::Udf,
        test: |s| (0..8).any(|k| s.head_at(ISO_PVD + k * 2048 + 1, b"NSR0")),
    },
    Magic {
        signature: Signature::HfsPlus,
        test: |s| s.head_at(1024, b"H+") && s.head_u16_be(1026) == Some(4),
    },
    Magic {
        signature: Signature::Hfsx,
        test: |s| s.head_at(1024, b"HX") && s.head_u16_be(1026) == Some(5),
    },
    Magic {
        signature: Signature::Hfs,
        // "BD", then an allocation block size that is whole 512-byte sectors: two bytes alone
        // are too common to trust.
        test: |s| {
            let block = s.head_u32_be(1044);
            s.head_at(1024, b"BD")
                && block.is_some_and(|b| b >= 512 && b % 512 == 0)
                && s.head_u16_be(1042).is_some_and(|blocks| blocks > 0)
        },
    },
    Magic {
        signature: Signature::Mfs,
        // 0xD2D7, then an allocation block size of whole sectors and some blocks.
        test: |s| {
            s.head_at(1024, &[0xD2, 0xD7])
                && s.head_u32_be(1044)
                    .is_some_and(|b| b >= 512 && b % 512 == 0)
                && s.head_u16_be(1042).is_some_and(|blocks| blocks > 0)
        },
    },
    Magic {
        signature: Signature::Apfs,
        test: |s| s.head_at(32, b"NXSB"),
    },
    Magic {
        signature: Signature::Fat,
        test: is_fat,
    },
    Magic {
        signature: Signature::ExFat,
        test: |s| s.head_at(3, b"EXFAT   "),
    },
    Magic {
        signature: Signature::Ntfs,
        test: |s| s.head_at(3, b"NTFS    "),
    },
    Magic {
        signature: Signature::Ext,
        test: |s| s.head_at(1080, &[0x53, 0xEF]),
    },
    Magic {
        signature: Signature::Xar,
        // The magic, then a header of at least its 28 bytes.
        test: |s| s.head_at(0, b"xar!") && s.head_u16_be(4).is_some_and(|n| n >= 28),
    },
    Magic {
        signature: Signature::Cpio,
        test: |s| CPIO.iter().any(|m| s.head_at(0, m)),
    },
];

/// Every signature found, in table order (containers first).
pub fn identify(s: &Sniff) -> Vec<Signature> {
    MAGICS
        .iter()
        .filter(|m| (m.test)(s))
        .map(|m| m.signature)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(bytes: Vec<u8>) -> Sniff {
        Sniff::read(&bytes).unwrap()
    }

    fn with(size: usize, patches: &[(usize, &[u8])]) -> Vec<u8> {
        let mut v = vec![0u8; size];
        for (off, b) in patches {
            v[*off..off + b.len()].copy_from_slice(b);
        }
        v
    }

    fn only(bytes: Vec<u8>) -> Vec<Signature> {
        identify(&sniff(bytes))
    }

    #[test]
    fn every_magic_is_found_in_a_synthetic_sample() {
        let mut udif = vec![0u8; 4096];
        udif[4096 - 512..4096 - 508].copy_from_slice(b"koly");
        assert_eq!(only(udif), [Signature::Udif]);
        assert_eq!(
            only(with(4096, &[(0, b"encrcdsa")])),
            [Signature::EncryptedV2]
        );
        assert_eq!(
            only(with(4096, &[(4088, b"cdsaencr")])),
            [Signature::EncryptedV1]
        );
        assert_eq!(only(with(4096, &[(0, b"sprs")])), [Signature::SparseImage]);
        assert_eq!(only(with(4096, &[(0, b"shdw")])), [Signature::Asif]);
        assert_eq!(only(with(4096, &[(4084, b"NER5")])), [Signature::NeroV2]);
        assert_eq!(only(with(4096, &[(4088, b"NERO")])), [Signature::NeroV1]);
        assert_eq!(
            only(b"REM x\r\nFILE \"a.bin\" BINARY\r\n  TRACK 01 MODE1/2352\r\n    INDEX 01 00:00:00\r\n".to_vec()),
            [Signature::CueSheet]
        );
        assert_eq!(only(with(8192, &[(512, b"EFI PART")])), [Signature::Gpt]);
        assert_eq!(
            only(with(8192, &[(0, b"ER"), (512, b"PM")])),
            [Signature::Apm]
        );
        assert_eq!(
            only(with(
                512,
                &[(446, &[0x80, 0, 0, 0, 0x0C]), (510, &[0x55, 0xAA])]
            )),
            [Signature::Mbr]
        );
        assert_eq!(
            only(with(40960, &[(32769, b"CD001")])),
            [Signature::Iso9660]
        );
        assert_eq!(
            only(with(40960, &[(0, &CD_SYNC), (16 * 2352 + 17, b"CD001")])),
            [Signature::RawCdIso9660]
        );
        assert_eq!(
            only(with(40960, &[(32768 + 2048 + 1, b"NSR02")])),
            [Signature::Udf]
        );
        assert_eq!(
            only(with(4096, &[(1024, b"H+\x00\x04")])),
            [Signature::HfsPlus]
        );
        assert_eq!(
            only(with(4096, &[(1024, b"HX\x00\x05")])),
            [Signature::Hfsx]
        );
        assert_eq!(only(with(4096, &[(32, b"NXSB")])), [Signature::Apfs]);
        assert_eq!(
            only(with(
                512,
                &[
                    (0, &[0xEB, 0x58, 0x90]),
                    (82, b"FAT32"),
                    (510, &[0x55, 0xAA])
                ]
            )),
            [Signature::Fat]
        );
        assert_eq!(
            only(with(
                512,
                &[
                    (0, &[0xEB, 0x76, 0x90]),
                    (3, b"EXFAT   "),
                    (510, &[0x55, 0xAA])
                ]
            )),
            [Signature::ExFat]
        );
        assert_eq!(
            only(with(512, &[(3, b"NTFS    "), (510, &[0x55, 0xAA])])),
            [Signature::Ntfs]
        );
        assert_eq!(only(with(2048, &[(1080, &[0x53, 0xEF])])), [Signature::Ext]);
    }

    #[test]
    fn near_misses_are_not_recognised() {
        assert!(
            only(with(4096, &[(1024, b"H+\x00\x05")])).is_empty(),
            "HFS+ needs version 4"
        );
        assert!(
            only(with(
                512,
                &[(446, &[0x13, 0, 0, 0, 0x0C]), (510, &[0x55, 0xAA])]
            ))
            .is_empty(),
            "bad MBR status byte"
        );
        assert!(
            only(b"FILE x BINARY\nhello world\n".to_vec()).is_empty(),
            "prose is not a cue sheet"
        );
        assert!(only(Vec::new()).is_empty());
        assert!(only(vec![7u8; 100]).is_empty());
    }
}
