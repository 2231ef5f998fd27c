//! Image from a device (hdiutil create -srcdevice): a disk or partition copied byte for byte
//! into any output format, read-only. Sectors that cannot be read end the job, or, when asked,
//! read as zeros and are listed, as data-rescue tools do.

use super::convert::{write, ConvertOptions, ConvertReport};
use super::job::{Cancel, Progress};
use super::output::AtomicOutput;
use crate::container::{self, raw};
use crate::device;
use crate::io::ReadAt;
use crate::{fs, Error, Passphrase, Result};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The pieces a failed block is retried in.
const PIECE: usize = 64 << 10;
const SECTOR: usize = 512;

/// A device read for imaging that reads around what it cannot. A block that fails is retried
/// in 64 KiB pieces; in a run of failing pieces the edges are found sector by sector (the good
/// sectors at either end kept), and the rest of the run reads as zeros and is recorded, as
/// data-rescue tools do before scraping. The device is read with O_DIRECT where it takes it
/// ([`device::reader`]), so each retry is one request to the device, not a readahead window.
struct Rescue {
    device: Arc<dyn ReadAt>,
    unreadable: Mutex<Vec<(u64, u64)>>,
}

impl Rescue {
    /// Reads `into.len()` bytes at `offset` from the device; false if it fails.
    fn reads(&self, offset: u64, into: &mut [u8]) -> bool {
        self.device.read_exact_at(offset, into).is_ok()
    }

    fn record(&self, offset: u64, len: u64) {
        if len > 0 {
            let mut ranges = self.unreadable.lock().expect("unreadable ranges lock");
            ranges.push((offset, len));
        }
    }

    /// `buf` (at `offset`) failed to read as a whole: piece by piece, runs of failing pieces
    /// trimmed to their first and last bad sectors.
    fn read_around(&self, offset: u64, buf: &mut [u8]) {
        let pieces: Vec<bool> = buf
            .chunks_mut(PIECE)
            .enumerate()
            .map(|(i, piece)| self.reads(offset + (i * PIECE) as u64, piece))
            .collect();
        let mut i = 0;
        while i < pieces.len() {
            if pieces[i] {
                i += 1;
                continue;
            }
            let run_end = (i..pieces.len())
                .find(|&j| pieces[j])
                .unwrap_or(pieces.len());
            let (start, end) = (i * PIECE, (run_end * PIECE).min(buf.len()));
            // The good sectors before the first bad one, and after the last.
            let mut first_bad = start;
            while first_bad < end
                && self.reads(
                    offset + first_bad as u64,
                    &mut buf[first_bad..first_bad + SECTOR],
                )
            {
                first_bad += SECTOR;
            }
            let mut last_bad = end;
            while last_bad > first_bad
                && self.reads(
                    offset + (last_bad - SECTOR) as u64,
                    &mut buf[last_bad - SECTOR..last_bad],
                )
            {
                last_bad -= SECTOR;
            }
            buf[first_bad..last_bad].fill(0);
            self.record(offset + first_bad as u64, (last_bad - first_bad) as u64);
            i = run_end;
        }
    }
}

impl ReadAt for Rescue {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.size().saturating_sub(offset) as usize);
        let buf = &mut buf[..n];
        if self.device.read_exact_at(offset, buf).is_err() {
            self.read_around(offset, buf);
        }
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.device.size()
    }
}

/// Copies the device at `path` into `output` as `options` say. With `skip_unreadable`, what
/// cannot be read is written as zeros and listed in the report; without it, it is the error.
pub fn image_device(
    path: &Path,
    output: &Path,
    options: &ConvertOptions,
    skip_unreadable: bool,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ConvertReport> {
    let source = device::reader(path)?;
    if !skip_unreadable {
        let disk = raw::whole(source);
        return write(path, &*disk, output, options, progress, cancel);
    }
    // The map goes beside the output: refused before the copy, not after it.
    let map = map_path(output);
    super::output::refuse_existing(&map, options.overwrite)?;
    let rescue = Arc::new(Rescue {
        device: source,
        unreadable: Mutex::new(Vec::new()),
    });
    let disk = raw::whole(rescue.clone());
    let mut report = write(path, &*disk, output, options, progress, cancel)?;
    let mut ranges = std::mem::take(&mut *rescue.unreadable.lock().expect("unreadable lock"));
    // Blocks may be read out of order: the ranges in order, neighbours joined.
    ranges.sort_unstable();
    for (at, len) in ranges {
        match report.unreadable.last_mut() {
            Some((start, run)) if *start + *run == at => *run += len,
            _ => report.unreadable.push((at, len)),
        }
    }
    report
        .notes
        .extend(report.unreadable.iter().map(|(at, len)| {
            format!(
                "unreadable, written as zeros: {len} bytes at offset {at} (sectors {} to {})",
                at / 512,
                (at + len) / 512 - 1
            )
        }));
    if !report.unreadable.is_empty() {
        let mut out = AtomicOutput::create(path, &map, options.overwrite)?;
        out.write_all(mapfile(rescue.size(), &report.unreadable).as_bytes())?;
        out.finish()?;
        report.notes.push(format!(
            "what could not be read is listed in {}, a GNU ddrescue mapfile: `ddrescue -d \
             {} IMAGE {}` can go on from it into a raw copy",
            map.display(),
            path.display(),
            map.display()
        ));
    }
    Ok(report)
}

/// Where the map of what could not be read goes: beside the output, named after it.
fn map_path(output: &Path) -> std::path::PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".map");
    output.with_file_name(name)
}

/// The device's `size` bytes as GNU ddrescue's mapfile describes a rescue: read ('+'); in each
/// unreadable run, the first and last sectors, which failed alone ('-' bad sector), and between
/// them what failed only in 64 KiB pieces ('/' not scraped), where ddrescue would go on sector
/// by sector.
fn mapfile(size: u64, unreadable: &[(u64, u64)]) -> String {
    let sector = SECTOR as u64;
    let mut blocks: Vec<(u64, u64, char)> = Vec::new();
    let mut add = |at: u64, len: u64, status: char| match blocks.last_mut() {
        Some((_, run, last)) if *last == status => *run += len,
        _ if len > 0 => blocks.push((at, len, status)),
        _ => {}
    };
    let mut at = 0;
    for &(start, len) in unreadable {
        add(at, start - at, '+');
        match len <= sector {
            true => add(start, len, '-'),
            false => {
                add(start, sector, '-');
                add(start + sector, len.saturating_sub(2 * sector), '/');
                add(start + len - sector, sector, '-');
            }
        }
        at = start + len;
    }
    add(at, size - at, '+');
    let mut text = format!(
        "# Mapfile. Created by dimg {}\n# current_pos  current_status  current_pass\n\
         0x{size:08X}     +               1\n#      pos        size  status\n",
        env!("CARGO_PKG_VERSION")
    );
    for (at, len, status) in blocks {
        text.push_str(&format!("0x{at:08X}  0x{len:08X}  {status}\n"));
    }
    text
}

/// Copies partition `index` (0: the whole disk) of the disk in `image` into `output`: the device
/// behind a volume dimg mounted itself (on macOS, the /dev/diskNsM under the mount point).
pub fn image_partition(
    image: &Path,
    passphrase: Option<&Passphrase>,
    index: u32,
    output: &Path,
    options: &ConvertOptions,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ConvertReport> {
    let disk = container::open(image, passphrase)?.container.disk();
    // Numbered as the volume's id numbers it: the whole disk is 0 where a file system spans it.
    let (_, places) = fs::places(&*disk).map_err(|e| Error::io(image, e))?;
    let place = places
        .iter()
        .find(|p| p.index == index)
        .ok_or_else(|| Error::Refused {
            path: image.to_path_buf(),
            reason: format!("its disk has no partition {index}"),
        })?;
    let source: Arc<dyn ReadAt> = Arc::new(place.open(disk));
    write(
        image,
        &*raw::whole(source),
        output,
        options,
        progress,
        cancel,
    )
}
