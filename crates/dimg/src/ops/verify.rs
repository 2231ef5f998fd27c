use super::job::{stream, Cancel, Progress};
use crate::bytes::hex;
use crate::container::optical::{Track, TrackMode};
use crate::container::sector::{mode1_intact, mode2_intact, RawSectors, RAW};
use crate::container::{self, Check, StoredCrc};
use crate::error::{Error, Result};
use crate::fs::check::{Findings, Problem, Watch};
use crate::fs::{self, apfs, fat, hfsplus};
use crate::io::{ReadAt, Slice, WriteAt};
use crate::magic::Signature;
use crate::secret::Passphrase;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `verify` found: the virtual disk read end to end, its digests, and every checksum the
/// image carries.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub path: PathBuf,
    pub format: &'static str,
    /// Bytes of the virtual disk that were read and hashed.
    pub bytes: u64,
    /// CRC-32 (IEEE, as zlib and UDIF use) of the virtual disk, 8 hex digits.
    pub crc32: String,
    /// SHA-256 of the virtual disk, 64 hex digits.
    pub sha256: String,
    /// The image's own checksums (UDIF: per partition, data fork, master); empty for raw images.
    pub checks: Vec<Check>,
    /// Every check passed.
    pub ok: bool,
}

/// A stored CRC being recomputed over a sequential pass.
struct Recompute<'a> {
    stored: &'a StoredCrc,
    next: usize,
    hasher: crc32fast::Hasher,
}

impl<'a> Recompute<'a> {
    fn new(stored: &'a StoredCrc) -> Self {
        Recompute {
            stored,
            next: 0,
            hasher: crc32fast::Hasher::new(),
        }
    }

    /// Feeds the parts of `block` (which starts at `offset`) that the stored ranges cover.
    fn feed(&mut self, offset: u64, block: &[u8]) {
        let end = offset + block.len() as u64;
        while let Some(r) = self.stored.ranges.get(self.next) {
            let (from, to) = (r.start.max(offset), r.end.min(end));
            if from < to {
                self.hasher
                    .update(&block[(from - offset) as usize..(to - offset) as usize]);
            }
            if r.end > end {
                break;
            }
            self.next += 1;
        }
    }

    fn check(self) -> Check {
        Check::new(
            self.stored.name.clone(),
            self.stored.stored,
            self.hasher.finalize(),
        )
    }
}

/// Whether a raw sector's own checks hold.
type SectorCheck = fn(&[u8; RAW]) -> bool;

/// Every data sector of a track stored with its checks (Mode 1, and Mode 2 raw or as 2336
/// bytes) checked against its own EDC and ECC; `None` for a track with none to check.
fn sector_check(
    path: &Path,
    track: &Track,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<Option<Check>> {
    let (intact, sectors): (SectorCheck, Arc<dyn ReadAt>) = match track.mode {
        TrackMode::Mode1_2352 => (mode1_intact, track.sectors.clone()),
        TrackMode::Mode2_2352 => (mode2_intact, track.sectors.clone()),
        // Mode 2's checks leave out the header, so any address serves.
        TrackMode::Mode2_2336 => (
            mode2_intact,
            Arc::new(RawSectors::new(track.sectors.clone(), track.mode, 0).expect("Mode 2")),
        ),
        TrackMode::Mode1_2048 | TrackMode::Audio | TrackMode::Cdg => return Ok(None),
    };
    let mut damaged = Vec::new();
    // Blocks do not end on sector boundaries: a sector cut by one waits for the next.
    let (mut carried, mut sector) = (Vec::with_capacity(2 * RAW), 0u64);
    stream(
        path,
        "Checking sectors",
        &*sectors,
        progress,
        cancel,
        |_, mut block| {
            if !carried.is_empty() {
                let take = (RAW - carried.len()).min(block.len());
                carried.extend_from_slice(&block[..take]);
                block = &block[take..];
                if carried.len() == RAW {
                    if !intact(carried[..].try_into().expect("one sector")) {
                        damaged.push(sector);
                    }
                    sector += 1;
                    carried.clear();
                }
            }
            let whole = block.chunks_exact(RAW);
            carried.extend_from_slice(whole.remainder());
            for raw in whole {
                if !intact(raw.try_into().expect("one sector")) {
                    damaged.push(sector);
                }
                sector += 1;
            }
            Ok(())
        },
    )?;
    let first = damaged
        .first()
        .map(|s| format!(", the first at sector {s}"))
        .unwrap_or_default();
    Ok(Some(Check {
        name: format!("track {:02} sector EDC/ECC", track.number),
        ok: damaged.is_empty(),
        stored: format!("{} sectors", track.count()),
        computed: format!("{} damaged{first}", damaged.len()),
    }))
}

/// Reads the whole virtual disk of `path`, computing its CRC-32 and SHA-256 and every stored
/// checksum in one streamed pass, then the checksums over the file itself.
pub fn verify(
    path: &Path,
    passphrase: Option<&Passphrase>,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<VerifyReport> {
    let opened = super::browse::open_image(path, passphrase)?;
    let disk = opened.container.disk();
    let sums = opened.container.checksums();
    let mut crc = crc32fast::Hasher::new();
    let mut sha = Sha256::new();
    let mut of_disk: Vec<Recompute> = sums.of_disk.iter().map(Recompute::new).collect();
    stream(
        path,
        "Verifying",
        &*disk,
        progress,
        cancel,
        |offset, block| {
            rayon::join(|| crc.update(block), || sha.update(block));
            for r in &mut of_disk {
                r.feed(offset, block);
            }
            Ok(())
        },
    )?;
    let mut checks: Vec<Check> = of_disk.into_iter().map(Recompute::check).collect();
    for stored in &sums.of_file {
        let mut r = Recompute::new(stored);
        for range in &stored.ranges {
            let file = sums
                .file
                .clone()
                .expect("a container with file checksums names its file");
            let region = Slice::new(file, range.start, range.end - range.start);
            stream(
                path,
                "Checking the data fork",
                &region,
                progress,
                cancel,
                |offset, block| {
                    r.feed(range.start + offset, block);
                    Ok(())
                },
            )?;
        }
        checks.push(r.check());
    }
    checks.extend(sums.checked);
    for track in opened.container.tracks().unwrap_or_default() {
        checks.extend(sector_check(path, &track, progress, cancel)?);
    }
    checks.extend(archive_checks(path, &disk, progress, cancel)?);
    Ok(VerifyReport {
        path: path.to_path_buf(),
        format: opened.format,
        bytes: disk.size(),
        crc32: format!("{:08x}", crc.finalize()),
        sha256: hex(&sha.finalize()),
        ok: checks.iter().all(|c| c.ok),
        checks,
    })
}

/// The checksums of the archives (installer packages) among the image's volumes: their tables of
/// contents and every file, stored and decoded.
fn archive_checks(
    path: &Path,
    disk: &Arc<dyn ReadAt>,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<Vec<Check>> {
    let (_, places) = fs::places(&**disk).map_err(|e| Error::io(path, e))?;
    let mut checks = Vec::new();
    for place in places {
        let part: Arc<dyn ReadAt> = Arc::new(place.open(disk.clone()));
        if fs::identify(&*part).map_err(|e| Error::io(path, e))? != Some(Signature::Xar) {
            continue;
        }
        let archive = fs::xar::Xar::open(part).map_err(|e| Error::io(path, e))?;
        let found = archive.verify(&Watched { progress, cancel });
        cancel.check()?;
        checks.extend(found.map_err(|e| Error::io(path, e))?);
    }
    Ok(checks)
}

/// What First Aid (`verify -fs`) found in an image's volumes.
#[derive(Debug, Serialize)]
pub struct FirstAidReport {
    pub path: PathBuf,
    pub format: &'static str,
    pub volumes: Vec<VolumeCheck>,
    /// No problem remains in any volume checked.
    pub ok: bool,
}

/// One volume's check: what it is, what was counted, what is wrong with it and what First Aid
/// changed.
#[derive(Debug, Serialize)]
pub struct VolumeCheck {
    /// Its partition, as `info` numbers them (0: the whole disk).
    pub partition: u32,
    pub file_system: &'static str,
    /// Whether dimg checks this file system (HFS+, HFSX and FAT).
    pub checked: bool,
    pub counted: BTreeMap<&'static str, u64>,
    /// What is wrong, after any repair.
    pub problems: Vec<Problem>,
    /// What the repair changed, a line each.
    pub repaired: Vec<String>,
}

/// A check's progress and cancel, as the job's.
struct Watched<'a> {
    progress: &'a dyn Progress,
    cancel: &'a Cancel,
}

impl Watch for Watched<'_> {
    fn begin(&self, phase: &str, total: u64) {
        self.progress.begin(phase, total);
    }
    fn advance(&self, done: u64) {
        self.progress.advance(done);
    }
    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// Checks the structures of every HFS+, HFSX and FAT volume in `path` (First Aid); with
/// `repair`, makes the repairs that are safe, through the image, and checks again.
pub fn verify_volumes(
    path: &Path,
    passphrase: Option<&Passphrase>,
    repair: bool,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<FirstAidReport> {
    use std::os::unix::fs::FileTypeExt;
    let block_device = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device());
    if block_device {
        if repair {
            return Err(Error::Refused {
                path: path.into(),
                reason: "is a device: First Aid checks a device's volumes, and repairs only \
                         those in images"
                    .into(),
            });
        }
        // Read exclusively where nothing else holds it (udisks2's OpenForBackup for a user who
        // may not open it), else shared, as a mounted volume is.
        let disk = crate::device::reader(path)?;
        return check_volumes(path, "device", disk, None, progress, cancel);
    }
    let opened = match repair {
        true => container::open_writable(path, passphrase)?,
        false => container::open(path, passphrase)?,
    };
    let writable = match (repair, opened.container.writable()) {
        (false, _) => None,
        (true, Some(w)) => Some(w),
        (true, None) => {
            return Err(Error::Refused {
                path: path.into(),
                reason: format!(
                    "is a read-only or compressed {}: First Aid repairs read/write images \
                     (UDRW, sparse images and bundles, raw disks); convert it to UDRW first",
                    opened.format
                ),
            })
        }
    };
    let disk: Arc<dyn ReadAt> = match &writable {
        Some(w) => w.clone(),
        None => opened.container.disk(),
    };
    check_volumes(path, opened.format, disk, writable, progress, cancel)
}

/// First Aid on each volume of `disk` (of `path`, a `format`), repairing through `writable`
/// where given.
fn check_volumes(
    path: &Path,
    format: &'static str,
    disk: Arc<dyn ReadAt>,
    writable: Option<Arc<dyn WriteAt>>,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<FirstAidReport> {
    let (_, places) = fs::places(&*disk).map_err(|e| Error::io(path, e))?;
    let watch = Watched { progress, cancel };
    let mut volumes = Vec::new();
    let mut wrote = false;
    for place in places {
        let volume: Arc<dyn ReadAt> = Arc::new(place.open(disk.clone()));
        let Some(kind) = fs::identify(&*volume).map_err(|e| Error::io(path, e))? else {
            continue;
        };
        let checker: Option<Checker> = match kind {
            Signature::HfsPlus | Signature::Hfsx => Some(hfsplus::check),
            Signature::Fat => Some(fat::check),
            Signature::Apfs => Some(apfs::check),
            _ => None,
        };
        let mut report = VolumeCheck {
            partition: place.index,
            file_system: kind.name(),
            checked: checker.is_some(),
            counted: BTreeMap::new(),
            problems: Vec::new(),
            repaired: Vec::new(),
        };
        if let Some(check) = checker {
            let mut found = run_check(check, &volume, &watch, cancel, path)?;
            if let Some(w) = writable.as_ref() {
                let part: Arc<dyn WriteAt> =
                    Arc::new(Slice::new(w.clone(), place.start, place.size));
                // A structural edit changes what the byte repairs were worked out from: it is
                // made first, and the volume checked again for the rest.
                if let Some(edit) = found.edit.take() {
                    let done = (edit.0)(part.clone()).map_err(|e| Error::io(path, e))?;
                    wrote = true;
                    report.repaired.extend(done);
                    found = run_check(check, &volume, &watch, cancel, path)?;
                }
                if !found.repairs.is_empty() {
                    for r in &found.repairs {
                        for (at, bytes) in &r.writes {
                            part.write_all_at(*at, bytes)
                                .map_err(|e| Error::io(path, e))?;
                        }
                    }
                    wrote = true;
                    report
                        .repaired
                        .extend(found.repairs.iter().map(|r| r.what.clone()));
                    found = run_check(check, &volume, &watch, cancel, path)?;
                }
            }
            report.counted = found.counted;
            report.problems = found.problems;
        }
        volumes.push(report);
    }
    if let Some(w) = writable.filter(|_| wrote) {
        w.finish().map_err(|e| Error::io(path, e))?;
    }
    Ok(FirstAidReport {
        path: path.to_path_buf(),
        format,
        ok: volumes.iter().all(|v| v.problems.is_empty()),
        volumes,
    })
}

/// A file system's checker.
type Checker = fn(Arc<dyn ReadAt>, &dyn Watch) -> std::io::Result<Findings>;

/// One check of a volume. A volume too damaged to check at all (its header unreadable) is one
/// problem; a cancel ends the job.
fn run_check(
    check: Checker,
    volume: &Arc<dyn ReadAt>,
    watch: &Watched,
    cancel: &Cancel,
    path: &Path,
) -> Result<Findings> {
    match check(volume.clone(), watch) {
        Ok(found) => Ok(found),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
            cancel.check()?;
            Err(Error::io(path, e))
        }
        Err(e) => {
            let mut found = Findings::default();
            found.failed("volume", e);
            Ok(found)
        }
    }
}
