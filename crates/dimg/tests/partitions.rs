//! Partition maps made by independent tools (sgdisk, sfdisk, parted) read as those tools read
//! them; hostile maps stop cleanly.

use dimg::io::{FileSource, ReadAt};
use dimg::partition::{self, Partition};
use dimg_e2e::{corpus, program};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

fn scan(path: &Path) -> (&'static str, Vec<Partition>) {
    partition::scan(&FileSource::open(path).unwrap()).unwrap()
}

fn blank(dir: &Path, name: &str, mib: u64) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    p
}

fn run(program_name: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(program(program_name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{program_name} {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// sfdisk's view: (number from the node name, start sector, sectors, name).
fn sfdisk(path: &Path) -> Vec<(u32, u64, u64, String)> {
    let v: Value =
        serde_json::from_str(&run("sfdisk", &["--json", path.to_str().unwrap()], None)).unwrap();
    v["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let number = node
                .rsplit(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
            (
                number,
                p["start"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
                p["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn assert_same_as_sfdisk(path: &Path, parts: &[Partition]) {
    let theirs = sfdisk(path);
    assert_eq!(parts.len(), theirs.len(), "{parts:?} vs {theirs:?}");
    for (ours, (n, start, size, name)) in parts.iter().zip(&theirs) {
        assert_eq!(
            (ours.index, ours.start, ours.size),
            (*n, start * 512, size * 512),
            "{ours:?}"
        );
        assert_eq!(&ours.name, name);
    }
}

#[test]
fn gpt_made_by_sgdisk_reads_as_sfdisk_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "g.img", 64);
    let path = img.to_str().unwrap();
    let args = [
        "-n1:2048:+20M",
        "-t1:AF00",
        "-c1:Mac HD",
        "-n2:0:+10M",
        "-t2:0700",
        "-c2:data",
    ];
    run(
        "sgdisk",
        &[&args[..], &["-n3:0:+1M", "-t3:8300", path]].concat(),
        None,
    );
    let (scheme, parts) = scan(&img);
    assert_eq!(scheme, "GUID partition table");
    assert_same_as_sfdisk(&img, &parts);
    let kinds: Vec<&str> = parts.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["Apple_HFS", "Microsoft Basic Data", "Linux filesystem"]
    );

    // With the primary header destroyed, the backup at the last LBA still describes the disk.
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[0u8; 512], 512).unwrap();
    let (scheme, from_backup) = scan(&img);
    assert_eq!(scheme, "GUID partition table");
    assert_eq!(from_backup.len(), 3);
    assert_eq!(from_backup[1].start, parts[1].start);
}

#[test]
fn mbr_with_logical_partitions_made_by_sfdisk() {
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "m.img", 64);
    let script = "label: dos\nstart=2048, size=20480, type=c\nstart=22528, size=61440, type=5\n\
                  start=24576, size=8192, type=83\nstart=34816, size=8192, type=7\n";
    run("sfdisk", &["-q", img.to_str().unwrap()], Some(script));
    let (scheme, parts) = scan(&img);
    assert_eq!(scheme, "MBR partition table");
    assert_same_as_sfdisk(&img, &parts);
    let kinds: Vec<&str> = parts.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["FAT32", "Extended", "Linux", "NTFS/exFAT"]);
}

#[test]
fn apple_partition_map_made_by_parted() {
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "a.img", 32);
    let path = img.to_str().unwrap();
    let make = [
        "mklabel", "mac", "mkpart", "Mac", "hfs+", "1MiB", "10MiB", "mkpart", "Data", "hfs+",
        "10MiB", "20MiB",
    ];
    run("parted", &[&["-s", path][..], &make].concat(), None);
    // parted -m lines: "N:startB:endB:sizeB:fs:name:flags;"
    let listing = run("parted", &["-s", "-m", path, "unit", "B", "print"], None);
    let theirs: Vec<(u32, u64, u64, String)> = listing
        .lines()
        .skip(2)
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let bytes = |s: &str| s.trim_end_matches('B').parse::<u64>().unwrap();
            (
                f[0].parse().unwrap(),
                bytes(f[1]),
                bytes(f[3]),
                f[5].to_string(),
            )
        })
        .collect();
    assert_eq!(theirs.len(), 3, "{listing}");
    let (scheme, parts) = scan(&img);
    assert_eq!(scheme, "Apple partition map");
    for (n, start, size, name) in &theirs {
        let ours = parts
            .iter()
            .find(|p| p.index == *n)
            .unwrap_or_else(|| panic!("entry {n}"));
        assert_eq!(
            (ours.start, ours.size, &ours.name),
            (*start, *size, name),
            "entry {n}"
        );
    }
    // parted hides the map's free-space entries; everything else it lists too.
    let hidden = parts
        .iter()
        .filter(|p| !theirs.iter().any(|t| t.0 == p.index));
    assert!(hidden.clone().all(|p| p.kind == "Apple_Free"), "{parts:?}");
    assert_eq!(parts[0].kind, "Apple_partition_map");
}

#[test]
fn the_corpus_maps_name_their_volumes() {
    let info = dimg::ops::info(&corpus().join("dmg/keramics-hfsplus-zlib.dmg"), None).unwrap();
    assert_eq!(info.partition_scheme, "GUID partition table");
    assert_eq!(info.partitions.len(), 1);
    let p = &info.partitions[0];
    let found = (
        p.partition.name.as_str(),
        p.partition.kind.as_str(),
        p.partition.start,
    );
    assert_eq!(found, ("disk image", "Apple_HFS", 40 * 512));
    assert_eq!(p.file_system, Some("HFS+"));

    let old = dimg::ops::info(&corpus().join("dmg/dmgwiz-non_null_data_offset.dmg"), None).unwrap();
    assert_eq!(old.partition_scheme, "Apple partition map");
    let hfs = old
        .partitions
        .iter()
        .find(|p| p.partition.kind == "Apple_HFS")
        .unwrap();
    assert_eq!(hfs.file_system, Some("HFS+"));
}

/// A disk built in memory from a few sectors.
fn disk_with(sectors: &[(u64, &[u8])], size: usize) -> Vec<u8> {
    let mut d = vec![0u8; size];
    for (lba, bytes) in sectors {
        let at = (*lba * 512) as usize;
        d[at..at + bytes.len()].copy_from_slice(bytes);
    }
    d
}

fn mbr_sector(entries: &[(u8, u32, u32)]) -> Vec<u8> {
    let mut s = vec![0u8; 512];
    for (i, (kind, start, count)) in entries.iter().enumerate() {
        let e = &mut s[446 + 16 * i..462 + 16 * i];
        e[4] = *kind;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&count.to_le_bytes());
    }
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

/// CRC-32 (IEEE), computed here independently of the engine's crate.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn hostile_maps_stop_cleanly() {
    // An extended chain whose link points back at itself.
    let mbr = mbr_sector(&[(0x05, 100, 1000)]);
    let ebr = mbr_sector(&[(0x83, 10, 20), (0x05, 0, 1000)]);
    let looped = disk_with(&[(0, &mbr), (100, &ebr)], 2048 * 512);
    let (_, parts) = partition::scan(&looped).unwrap();
    assert_eq!(
        parts.len(),
        2,
        "the extended entry and one logical, once: {parts:?}"
    );

    // An APM whose entries claim 4 billion entries: bounded.
    let mut ddm = vec![0u8; 512];
    ddm[0..4].copy_from_slice(b"ER\x02\x00");
    let mut pm = vec![0u8; 512];
    pm[0..2].copy_from_slice(b"PM");
    pm[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut sectors: Vec<(u64, &[u8])> = vec![(0, &ddm)];
    sectors.extend((1..400).map(|i| (i, &pm[..])));
    let apm = disk_with(&sectors, 512 * 512);
    let (_, parts) = partition::scan(&apm).unwrap();
    assert_eq!(parts.len(), 256);

    // A GPT header whose CRC is right but whose table would be enormous: not trusted.
    let mut hdr = vec![0u8; 512];
    hdr[0..8].copy_from_slice(b"EFI PART");
    hdr[12..16].copy_from_slice(&92u32.to_le_bytes());
    hdr[72..80].copy_from_slice(&2u64.to_le_bytes());
    hdr[80..84].copy_from_slice(&u32::MAX.to_le_bytes());
    hdr[84..88].copy_from_slice(&128u32.to_le_bytes());
    let crc = crc32(&hdr[..92]);
    hdr[16..20].copy_from_slice(&crc.to_le_bytes());
    let gpt = disk_with(&[(1, &hdr)], 64 * 512);
    let (scheme, _) = partition::scan(&gpt).unwrap();
    assert_eq!(scheme, "none (whole disk)");
    assert_eq!(gpt.size(), 64 * 512);
}
