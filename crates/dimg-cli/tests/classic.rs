//! Pre-Mac OS X images through the `dimg` binary: Disk Copy 4.2 images made by Disk Copy (plain,
//! in MacBinary and in BinHex 4.0) against the maker's raw disks and macutils' unwrapping, and
//! damaged copies of them.

mod common;
use common::*;
use dimg::wrapper::crc16_xmodem;

use std::fs;
use std::path::PathBuf;

fn classic(name: &str) -> PathBuf {
    dimg_e2e::corpus().join("classic").join(name)
}

/// Every Disk Copy 4.2 sample, as it is and in both wrappers, decodes to the raw disk its maker
/// shipped beside it; verify checks both of Disk Copy's checksums (the tag sum skipping the
/// first 12 tag bytes, which the 800K disk with random tags proves); info names the wrapper.
#[test]
fn disk_copy_images_decode_to_their_makers_disks_in_every_wrapper() {
    for size in ["400K", "800K", "1440K"] {
        let want = fs::read(classic(&format!("convert2dsk-blank{size}.dsk"))).unwrap();
        for (suffix, wrapper) in [
            ("", None),
            (".bin", Some("MacBinary II")),
            (".hqx", Some("BinHex 4.0")),
        ] {
            let image = classic(&format!("convert2dsk-blank{size}.img{suffix}"));
            assert!(decoded(&image, None) == want, "{}", image.display());
            let info = stdout(&dimg(&["info", s(&image)]));
            assert!(
                info.contains("Format:          Disk Copy 4.2 image"),
                "{info}"
            );
            if let Some(w) = wrapper {
                assert!(
                    info.contains(&format!(
                        "Wrapper:         {w}: “Blank{size}.img”, type dImg creator dCpy"
                    )),
                    "{info}"
                );
            }
            let verified = stdout(&dimg(&["verify", s(&image)]));
            assert!(
                verified.contains("ok        Disk Copy data checksum"),
                "{verified}"
            );
            assert!(
                verified.contains("ok        Disk Copy tag checksum"),
                "{verified}"
            );
        }
    }
    let tagged = classic("ciderpress2-random_t-source.image");
    let verified = stdout(&dimg(&["verify", s(&tagged)]));
    assert!(
        verified.contains("ok        Disk Copy tag checksum (stored 19cc88b5"),
        "{verified}"
    );
}

/// macutils unwraps the BinHex and MacBinary files into forks: the data fork it gives opens in
/// dimg as the same disk, and its fork sizes are those dimg reports.
#[test]
fn macutils_unwraps_the_same_forks() {
    let dir = tempfile::tempdir().unwrap();
    for (tool, file) in [
        ("hexbin", "convert2dsk-blank400K.img.hqx"),
        ("macunpack", "convert2dsk-blank800K.img.bin"),
    ] {
        let work = dir.path().join(tool);
        fs::create_dir(&work).unwrap();
        let o = std::process::Command::new(dimg_e2e::program(tool))
            .arg("-3")
            .arg(classic(file))
            .current_dir(&work)
            .output()
            .unwrap();
        assert!(o.status.success(), "{tool}: {}", stderr(&o));
        let fork = |ext: &str| {
            fs::read_dir(&work)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == ext))
                .unwrap_or_else(|| panic!("{tool} wrote no .{ext}"))
        };
        let (data, resource) = (fork("data"), fork("rsrc"));
        let info = stdout(&dimg(&["info", s(&classic(file))]));
        let sizes = format!(
            "data fork {} bytes, resource fork {} bytes",
            fs::metadata(&data).unwrap().len(),
            fs::metadata(&resource).unwrap().len()
        );
        assert!(info.contains(&sizes), "{tool}: {sizes} in {info}");
        assert!(
            decoded(&data, None) == decoded(&classic(file), None),
            "{tool}"
        );
    }
}

/// Damage is one line naming the image and what is wrong, never a panic: sizes past the end of
/// a Disk Copy image, a MacBinary header whose forks do not fit, a BinHex CRC; a changed data
/// byte is a checksum verify reports while reading goes on.
#[test]
fn damaged_classic_images_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let dc42 = fs::read(classic("convert2dsk-blank400K.img")).unwrap();
    let bin = fs::read(classic("convert2dsk-blank400K.img.bin")).unwrap();
    let hqx = fs::read(classic("convert2dsk-blank400K.img.hqx")).unwrap();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    let mut big = dc42.clone();
    big[0x44..0x48].copy_from_slice(&0x0100_0000u32.to_be_bytes());
    cases.push(("tags.img", big.clone(), "do not fit in the file"));
    let mut long = bin.clone();
    long[87..91].copy_from_slice(&0x0010_0000u32.to_be_bytes());
    // Keep the header's CRC right, so that it is read as MacBinary II with impossible forks.
    let crc = crc16_xmodem(&long[..124]);
    long[124..126].copy_from_slice(&crc.to_be_bytes());
    cases.push(("long.bin", long, "do not fit in the file"));
    let mut garbled = hqx.clone();
    let at = garbled.len() / 2;
    garbled[at] = if garbled[at] == b'A' { b'B' } else { b'A' };
    // A changed character breaks the CRC or the run lengths: either way BinHex is named.
    cases.push(("garbled.hqx", garbled, "BinHex 4.0 at offset 0: "));
    for (name, bytes, said) in cases {
        let path = dir.path().join(name);
        fs::write(&path, &bytes).unwrap();
        let o = dimg(&["info", s(&path)]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {e}");
        assert!(e.contains(s(&path)) && e.contains(said), "{name}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    let mut changed = dc42;
    changed[84 + 5000] ^= 1;
    let path = dir.path().join("changed.img");
    fs::write(&path, &changed).unwrap();
    let o = dimg(&["verify", s(&path)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("MISMATCH  Disk Copy data checksum"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("ok        Disk Copy tag checksum"),
        "{}",
        stdout(&o)
    );
    assert!(dimg(&["ls", s(&path)]).status.success(), "reading goes on");
}

/// DART's "fast" (run-length) and "best" (LZHUF) images, made by DART 1.5.3 from the 800K disk
/// beside them, decode to that disk; a run that overflows its chunk is a clear error.
#[test]
fn dart_images_decode_to_their_source_disk() {
    let dir = tempfile::tempdir().unwrap();
    let source = decoded(&classic("ciderpress2-random_t-source.image"), None);
    for (kind, said) in [("fast", "fast (run-length)"), ("best", "best (LZHUF)")] {
        let image = classic(&format!("ciderpress2-random_t-{kind}.dart.bin"));
        assert!(decoded(&image, None) == source, "{kind}");
        let info = stdout(&dimg(&["info", s(&image)]));
        assert!(info.contains(&format!("Compression:     {said}")), "{info}");
        assert!(info.contains("volume “Random”"), "{info}");
    }
    let mut damaged = fs::read(classic("ciderpress2-random_t-fast.dart.bin")).unwrap();
    // The first chunk's first count: a literal run far longer than a chunk.
    damaged[128 + 84..128 + 86].copy_from_slice(&0x7FFFu16.to_be_bytes());
    let path = dir.path().join("damaged.dart.bin");
    fs::write(&path, &damaged).unwrap();
    let o = dimg(&["info", s(&path)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("DART chunk") && stderr(&o).contains("chunk 0: a run of 32767 words"),
        "{}",
        stderr(&o)
    );
}

/// `convert -format DC42` (or a `.image` name): floptool (MAME) reads what dimg writes as the
/// same floppy, both checksums verify, a DART's tags come along (their checksum is the one Disk
/// Copy stored for the source disk), and a disk that is no floppy is refused.
#[test]
fn disk_copy_images_dimg_writes_read_back_in_floptool() {
    let dir = tempfile::tempdir().unwrap();
    for size in ["400K", "800K", "1440K"] {
        let raw = classic(&format!("convert2dsk-blank{size}.dsk"));
        let image = dir.path().join(format!("blank{size}.image"));
        let o = dimg(&["convert", s(&raw), "-o", s(&image)]);
        assert!(o.status.success(), "{size}: {}", stderr(&o));
        let verified = stdout(&dimg(&["verify", s(&image)]));
        assert!(verified.contains("verified OK"), "{verified}");
        assert!(decoded(&image, None) == fs::read(&raw).unwrap(), "{size}");
        if size != "1440K" {
            // floptool reads Disk Copy's GCR floppies (400K and 800K) to raw sectors.
            let back = dir.path().join(format!("back{size}.img"));
            peer(
                "floptool",
                &["flopconvert", "dc42", "apple_gcr", s(&image), s(&back)],
            );
            assert!(
                fs::read(&back).unwrap() == fs::read(&raw).unwrap(),
                "floptool: {size}"
            );
        }
    }
    let from_dart = dir.path().join("random.image");
    let dart = classic("ciderpress2-random_t-best.dart.bin");
    let o = dimg(&["convert", s(&dart), "-format", "DC42", "-o", s(&from_dart)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let verified = stdout(&dimg(&["verify", s(&from_dart)]));
    assert!(
        verified.contains("ok        Disk Copy tag checksum (stored 19cc88b5"),
        "{verified}"
    );
    let back = dir.path().join("random.img");
    peer(
        "floptool",
        &["flopconvert", "dc42", "apple_gcr", s(&from_dart), s(&back)],
    );
    assert!(fs::read(&back).unwrap() == decoded(&dart, None));
    let odd = dir.path().join("odd.raw");
    fs::write(&odd, vec![0u8; 1 << 20]).unwrap();
    let o = dimg(&["convert", s(&odd), "-o", s(&dir.path().join("odd.image"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("400K, 800K, 720K and 1440K floppies"),
        "{}",
        stderr(&o)
    );
}

/// AppleSingle (RFC 1740), built here around the 400K Disk Copy image to the RFC's layout (no
/// Debian tool writes it): it opens by its outer file as the image it carries, named with its
/// real name, type and creator; an entry past the end is a clear error.
#[test]
fn applesingle_files_open_as_the_image_they_carry() {
    let dir = tempfile::tempdir().unwrap();
    let dc42 = fs::read(classic("convert2dsk-blank400K.img")).unwrap();
    let name = b"Blank400K.img";
    let entries: [(u32, Vec<u8>); 3] = [
        (3, name.to_vec()),
        (9, [&b"dImgdCpy"[..], &[0u8; 24]].concat()),
        (1, dc42),
    ];
    let mut file = vec![0, 5, 0x16, 0, 0, 2, 0, 0];
    file.extend([0u8; 16]);
    file.extend((entries.len() as u16).to_be_bytes());
    let mut at = file.len() + 12 * entries.len();
    let mut bodies = Vec::new();
    for (id, body) in &entries {
        for v in [*id, at as u32, body.len() as u32] {
            file.extend(v.to_be_bytes());
        }
        at += body.len();
        bodies.extend_from_slice(body);
    }
    file.extend(bodies);
    let path = dir.path().join("blank.as");
    fs::write(&path, &file).unwrap();
    let info = stdout(&dimg(&["info", s(&path)]));
    assert!(
        info.contains("Wrapper:         AppleSingle: “Blank400K.img”, type dImg creator dCpy"),
        "{info}"
    );
    assert!(decoded(&path, None) == fs::read(classic("convert2dsk-blank400K.dsk")).unwrap());
    // The data fork's entry claims more than the file holds.
    let table_end = 26 + 12 * 3;
    let last_length = table_end - 4;
    file[last_length..table_end].copy_from_slice(&u32::MAX.to_be_bytes());
    fs::write(&path, &file).unwrap();
    let o = dimg(&["info", s(&path)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("AppleSingle header") && stderr(&o).contains("runs past the end"),
        "{}",
        stderr(&o)
    );
}

/// A classic resource fork holding one resource: `kind` ID 128, unnamed.
fn resource_fork(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let data_area = [&(data.len() as u32).to_be_bytes()[..], data].concat();
    let map_at = 16 + data_area.len() as u32;
    let mut map = vec![0u8; 28];
    map[24..26].copy_from_slice(&28u16.to_be_bytes()); // the type list, from the map
    map[26..28].copy_from_slice(&50u16.to_be_bytes()); // the (empty) name list
    map.extend(0u16.to_be_bytes()); // one type
    map.extend(kind);
    map.extend(0u16.to_be_bytes()); // one resource of it
    map.extend(10u16.to_be_bytes()); // its references, from the type list
    map.extend(128i16.to_be_bytes());
    map.extend(0xFFFFu16.to_be_bytes()); // no name
    map.extend([0u8; 8]); // attributes, data offset 0, handle
    let mut fork = Vec::new();
    for v in [16, map_at, data_area.len() as u32, map.len() as u32] {
        fork.extend(v.to_be_bytes());
    }
    fork.extend(data_area);
    fork.extend(map);
    fork
}

/// DART's and NDIF's run-length code: a negative count repeats the next word, a positive one
/// copies that many words.
fn run_length(data: &[u8]) -> Vec<u8> {
    let words: Vec<&[u8]> = data.chunks_exact(2).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let same = words[i..]
            .iter()
            .take(1000)
            .take_while(|w| **w == words[i])
            .count();
        let literal = words[i..]
            .iter()
            .take(1000)
            .take_while(|w| **w != words[i])
            .count()
            .max(1);
        if same >= 3 {
            out.extend((-(same as i16)).to_be_bytes());
            out.extend(words[i]);
            i += same;
        } else {
            let n = literal.min(words.len() - i);
            out.extend((n as i16).to_be_bytes());
            words[i..i + n].iter().for_each(|w| out.extend(*w));
            i += n;
        }
    }
    out
}

/// NDIF (Disk Copy 6), built here from the published layout — no public sample exists, and no
/// Debian tool writes one: these images are synthetic. A 1.44 MB HFS disk from the corpus cut
/// into 8-sector chunks, stored zero, ADC, raw and run-length in turn, mapped by a 'bcem'
/// resource. Its resource fork reaches dimg as an AppleDouble `._` file, a `.rsrc` file, inside
/// MacBinary II, inside BinHex 4.0 (made from that by macutils' binhex) and inside AppleSingle,
/// and each decodes to the disk; the data fork alone is a clear error, as are a map pointing
/// past the data fork and a chunk in KenCode, which no published description documents.
#[test]
fn ndif_images_decode_with_their_resource_fork_wherever_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let disk = fs::read(classic("openpreserve-jw-disk9-hfs.img")).unwrap();
    let (mut data, mut entries) = (Vec::new(), Vec::new());
    let mut kinds = Vec::new();
    for (i, chunk) in disk.chunks(8 * 512).enumerate() {
        let (kind, stored): (u8, Vec<u8>) = if chunk.iter().all(|&b| b == 0) {
            (0x00, Vec::new())
        } else {
            match i % 3 {
                0 => (0x83, dimg::codec::Codec::Adc.compress(chunk, 0)),
                1 => (0x02, chunk.to_vec()),
                _ => (0x81, run_length(chunk)),
            }
        };
        kinds.push(kind);
        entries.extend((((i as u32) * 8) << 8 | u32::from(kind)).to_be_bytes());
        entries.extend((data.len() as u32).to_be_bytes());
        entries.extend((stored.len() as u32).to_be_bytes());
        data.extend(stored);
    }
    for kind in [0x00, 0x02, 0x81, 0x83] {
        assert!(kinds.contains(&kind), "a chunk of type {kind:#x}");
    }
    let sectors = (disk.len() / 512) as u32;
    entries.extend((sectors << 8 | 0xFF).to_be_bytes());
    entries.extend([0u8; 8]);
    let mut map = vec![0u8; 128];
    map[..2].copy_from_slice(&11u16.to_be_bytes());
    map[4] = 9;
    map[5..14].copy_from_slice(b"JW Disk 9");
    map[68..72].copy_from_slice(&sectors.to_be_bytes());
    map[72..76].copy_from_slice(&8u32.to_be_bytes());
    map[124..128].copy_from_slice(&(kinds.len() as u32 + 1).to_be_bytes());
    map.extend(&entries);
    let fork = resource_fork(b"bcem", &map);

    // Beside the data fork: AppleDouble ("._" and the Finder's type and creator), or ".rsrc".
    let double = dir.path().join("double");
    fs::create_dir(&double).unwrap();
    fs::write(double.join("disk.img"), &data).unwrap();
    let mut header = vec![0, 5, 0x16, 7, 0, 2, 0, 0];
    header.extend([0u8; 16]);
    header.extend(2u16.to_be_bytes());
    let finder = [&b"rohddCpy"[..], &[0u8; 24]].concat();
    for (id, at, len) in [(9u32, 50u32, 32u32), (2, 82, fork.len() as u32)] {
        header.extend([id, at, len].iter().flat_map(|v| v.to_be_bytes()));
    }
    fs::write(
        double.join("._disk.img"),
        [header, finder.clone(), fork.clone()].concat(),
    )
    .unwrap();
    let rsrc = dir.path().join("rsrc");
    fs::create_dir(&rsrc).unwrap();
    fs::write(rsrc.join("disk.img"), &data).unwrap();
    fs::write(rsrc.join("disk.img.rsrc"), &fork).unwrap();
    // MacBinary II: both forks in one file.
    let mut mb = vec![0u8; 128];
    mb[1] = 8;
    mb[2..10].copy_from_slice(b"disk.img");
    mb[65..73].copy_from_slice(b"rohddCpy");
    mb[83..87].copy_from_slice(&(data.len() as u32).to_be_bytes());
    mb[87..91].copy_from_slice(&(fork.len() as u32).to_be_bytes());
    mb[122] = 129;
    mb[123] = 129;
    let crc = crc16_xmodem(&mb[..124]);
    mb[124..126].copy_from_slice(&crc.to_be_bytes());
    for fork_bytes in [&data, &fork] {
        mb.extend(fork_bytes.iter());
        mb.resize(mb.len().next_multiple_of(128), 0);
    }
    let macbinary = dir.path().join("disk.img.bin");
    fs::write(&macbinary, &mb).unwrap();
    // BinHex 4.0, as macutils' binhex makes it from that MacBinary file.
    let binhex = dir.path().join("disk.img.hqx");
    fs::write(&binhex, peer("binhex", &[s(&macbinary)])).unwrap();
    // AppleSingle: both forks and the Finder's info in one file (RFC 1740).
    let mut single = vec![0, 5, 0x16, 0, 0, 2, 0, 0];
    single.extend([0u8; 16]);
    single.extend(3u16.to_be_bytes());
    let mut at = single.len() as u32 + 36;
    let mut bodies = Vec::new();
    for (id, body) in [(9u32, finder.as_slice()), (2, &fork), (1, &data)] {
        single.extend(
            [id, at, body.len() as u32]
                .iter()
                .flat_map(|v| v.to_be_bytes()),
        );
        at += body.len() as u32;
        bodies.extend_from_slice(body);
    }
    single.extend(bodies);
    let applesingle = dir.path().join("disk.as");
    fs::write(&applesingle, &single).unwrap();

    for image in [
        double.join("disk.img"),
        rsrc.join("disk.img"),
        macbinary,
        binhex,
        applesingle,
    ] {
        let info = stdout(&dimg(&["info", s(&image)]));
        assert!(
            info.contains("NDIF image (Disk Copy 6)"),
            "{}: {info}",
            image.display()
        );
        assert!(info.contains("Image name:      JW Disk 9"), "{info}");
        assert!(
            decoded(&image, None) == disk,
            "{} decodes to the disk",
            image.display()
        );
        assert_eq!(
            stdout(&dimg(&["ls", "-R", s(&image)])),
            stdout(&dimg(&[
                "ls",
                "-R",
                s(&classic("openpreserve-jw-disk9-hfs.img"))
            ]))
        );
    }

    // The data fork alone (its first chunk compressed, so nothing in it is recognisable) names
    // what is missing.
    let alone = dir.path().join("alone.img");
    fs::write(&alone, &data).unwrap();
    let o = dimg(&["info", s(&alone)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("its resource fork is missing"),
        "{}",
        stderr(&o)
    );

    // A map pointing past the data fork's end is refused when the image opens.
    let mut past = map.clone();
    let last = 128 + 12 * (kinds.len() - 1);
    past[last + 4..last + 8].copy_from_slice(&(data.len() as u32).to_be_bytes());
    past[last + 8..last + 12].copy_from_slice(&4096u32.to_be_bytes());
    past[last + 3] = 0x02;
    fs::write(rsrc.join("disk.img.rsrc"), resource_fork(b"bcem", &past)).unwrap();
    let o = dimg(&["info", s(&rsrc.join("disk.img"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("lies past the data fork's end"),
        "{}",
        stderr(&o)
    );

    // A KenCode chunk: refused by name when read, the rest of the disk still there.
    let first_raw = kinds.iter().position(|&k| k == 0x02).unwrap();
    let mut kencode = map.clone();
    kencode[128 + 12 * first_raw + 3] = 0x80;
    fs::write(rsrc.join("disk.img.rsrc"), resource_fork(b"bcem", &kencode)).unwrap();
    let o = dimg(&[
        "convert",
        s(&rsrc.join("disk.img")),
        "-format",
        "UDTO",
        "-o",
        s(&dir.path().join("k.cdr")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("KenCode"), "{}", stderr(&o));

    // A damaged resource fork: the NDIF data fork it belongs to names it; a disk that needs no
    // fork opens beside one all the same.
    let damaged = [0xFFu8; 256];
    fs::write(rsrc.join("disk.img.rsrc"), damaged).unwrap();
    let o = dimg(&["info", s(&rsrc.join("disk.img"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("resource fork"), "{}", stderr(&o));
    fs::write(rsrc.join("floppy.img"), &disk).unwrap();
    fs::write(rsrc.join("floppy.img.rsrc"), damaged).unwrap();
    assert!(decoded(&rsrc.join("floppy.img"), None) == disk);
}

/// An MFS volume (the 400K floppies' file system), built here to Inside Macintosh II's layout —
/// no Debian tool makes one, and the public samples are not in the corpus: synthetic. Files with
/// data and resource forks, one stored in blocks out of order, a MacRoman name and one with a
/// '/' list and extract byte for byte, resource forks as the attribute HFS's use; a fork whose
/// chain leaves the map is a clear error for that file alone.
#[test]
fn mfs_volumes_list_and_extract_their_forks() {
    let dir = tempfile::tempdir().unwrap();
    let (block, first_sector, blocks) = (1024usize, 16usize, 391usize);
    let mut disk = vec![0u8; 800 * 512];
    let mut map = vec![0u16; blocks];
    let mut next_free = 2usize;
    let files: Vec<(&[u8], Vec<u8>, Vec<u8>)> = vec![
        (b"Read Me", noise(3000, 1), noise(700, 2)),
        (b"Caf\x8e", noise(5000, 3), Vec::new()),
        (b"Either/Or", Vec::new(), noise(1500, 4)),
        (b"Scattered", noise(4 * 1024, 5), Vec::new()),
    ];
    // Lays a fork into blocks: in order, or (`scatter`) in reverse order of the blocks it takes.
    let mut place = |bytes: &[u8], scatter: bool, disk: &mut Vec<u8>| -> u16 {
        if bytes.is_empty() {
            return 0;
        }
        let count = bytes.len().div_ceil(block);
        let mut taken: Vec<usize> = (next_free..next_free + count).collect();
        next_free += count;
        if scatter {
            taken.reverse();
        }
        for (k, &b) in taken.iter().enumerate() {
            let at = first_sector * 512 + (b - 2) * block;
            let piece = &bytes[k * block..bytes.len().min((k + 1) * block)];
            disk[at..at + piece.len()].copy_from_slice(piece);
            map[b - 2] = taken.get(k + 1).map_or(1, |&n| n as u16);
        }
        taken[0] as u16
    };
    let mut directory = Vec::new();
    let mut scattered = 0;
    for (i, (name, data, resource)) in files.iter().enumerate() {
        let data_start = place(data, *name == b"Scattered", &mut disk);
        if *name == b"Scattered" {
            scattered = usize::from(data_start);
        }
        let resource_start = place(resource, false, &mut disk);
        let mut e = vec![0x80u8, 0];
        e.extend(b"TEXTttxt");
        e.extend([0u8; 8]);
        e.extend((100 + i as u32).to_be_bytes());
        for (start, len) in [(data_start, data.len()), (resource_start, resource.len())] {
            e.extend(start.to_be_bytes());
            e.extend((len as u32).to_be_bytes());
            e.extend((len.next_multiple_of(block) as u32).to_be_bytes());
        }
        e.extend(2_082_844_800u32.to_be_bytes()); // created: 1970-01-01 in Mac time
        e.extend((2_082_844_800u32 + 86_400 * (i as u32 + 1)).to_be_bytes());
        e.push(name.len() as u8);
        e.extend(*name);
        e.resize(e.len().next_multiple_of(2), 0);
        directory.extend(e);
    }
    disk[4 * 512..4 * 512 + directory.len()].copy_from_slice(&directory);
    let mdb = 1024;
    disk[mdb..mdb + 2].copy_from_slice(&[0xD2, 0xD7]);
    disk[mdb + 12..mdb + 14].copy_from_slice(&(files.len() as u16).to_be_bytes());
    disk[mdb + 14..mdb + 16].copy_from_slice(&4u16.to_be_bytes());
    disk[mdb + 16..mdb + 18].copy_from_slice(&12u16.to_be_bytes());
    disk[mdb + 18..mdb + 20].copy_from_slice(&(blocks as u16).to_be_bytes());
    disk[mdb + 20..mdb + 24].copy_from_slice(&(block as u32).to_be_bytes());
    disk[mdb + 28..mdb + 30].copy_from_slice(&(first_sector as u16).to_be_bytes());
    disk[mdb + 36] = 8;
    disk[mdb + 37..mdb + 45].copy_from_slice(b"MFS Test");
    for (i, link) in map.iter().enumerate() {
        let at = mdb + 64 + i * 3 / 2;
        if i % 2 == 0 {
            disk[at] = (link >> 4) as u8;
            disk[at + 1] = (disk[at + 1] & 0x0F) | ((link & 0xF) << 4) as u8;
        } else {
            disk[at] = (disk[at] & 0xF0) | (link >> 8) as u8;
            disk[at + 1] = *link as u8;
        }
    }
    let image = dir.path().join("mfs.dsk");
    fs::write(&image, &disk).unwrap();

    let info = stdout(&dimg(&["info", s(&image)]));
    assert!(
        info.contains("MFS") && info.contains("“MFS Test”"),
        "{info}"
    );
    let listed = stdout(&dimg(&["ls", "-l", s(&image)]));
    for (name, size) in [
        ("Read Me", 3000),
        ("Café", 5000),
        ("Either:Or", 0),
        ("Scattered", 4096),
    ] {
        assert!(
            listed
                .lines()
                .any(|l| l.ends_with(&format!("  {name}")) && l.contains(&format!(" {size} "))),
            "{name} of {size} bytes: {listed}"
        );
    }
    let out = dir.path().join("out");
    let o = dimg(&["extract", s(&image), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for ((_, data, resource), shown) in
        files
            .iter()
            .zip(["Read Me", "Café", "Either:Or", "Scattered"])
    {
        let path = out.join(shown);
        assert!(fs::read(&path).unwrap() == *data, "{shown}");
        let fork = xattr::get(&path, "user.com.apple.ResourceFork")
            .unwrap()
            .unwrap_or_default();
        assert!(fork == *resource, "{shown}'s resource fork");
    }
    // "Scattered"'s first block now links off the map: that file alone cannot be read.
    let at = mdb + 64 + (scattered - 2) * 3 / 2;
    if (scattered - 2) % 2 == 0 {
        disk[at] = 0xFF;
    } else {
        disk[at + 1] = 0xFF;
    }
    fs::write(&image, &disk).unwrap();
    let out = dir.path().join("damaged");
    let o = dimg(&["extract", s(&image), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read /Scattered") && stderr(&o).contains("MFS block map"),
        "{}",
        stderr(&o)
    );
    assert!(fs::read(out.join("Read Me")).unwrap() == files[0].1);
}
