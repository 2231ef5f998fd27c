//! Writing sparse images (UDSP), sparse bundles (UDSB) and ASIF images: only the bands (ASIF's
//! chunks) that hold data are stored. The disk is streamed once; each band is looked at as it completes, so memory is one
//! band however large the disk.

use super::job::{stream_blocks, BlockSink, Cancel, Progress};
use super::output::{refuse_existing, AtomicOutput};
use crate::container::blocks::BlockLayout;
use crate::container::encrypted::{Sealer, BLOCK, DATA_OFFSET};
use crate::container::{asif, sparsebundle, sparseimage};
use crate::error::{Error, Result};
use crate::io::ReadAt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What a sparse image or bundle is written from and to.
pub struct SparseJob<'a> {
    /// The image the disk comes from, for errors.
    pub source: &'a Path,
    pub disk: &'a dyn ReadAt,
    pub output: &'a Path,
    /// Band size in bytes.
    pub band: u64,
    pub overwrite: bool,
    /// The output replaces the source itself (`compact`), rather than being a new image.
    pub in_place: bool,
    /// Seal the output in an encrypted image.
    pub sealer: Option<Sealer>,
    /// A reproducible image's seed, which gives its identifiers (an ASIF image's UUIDs).
    pub seed: Option<&'a crate::bytes::Seed>,
}

/// Checks a band size given in 512-byte sectors (hdiutil's `sparse-band-size`).
pub fn band_size(sectors: u64, target: &Path) -> Result<u64> {
    match sectors
        .checked_mul(512)
        .filter(|&b| b > 0 && b <= sparsebundle::MAX_BAND)
    {
        Some(bytes) => Ok(bytes),
        None => Err(Error::Refused {
            path: target.into(),
            reason: format!(
                "a band of {sectors} sectors: give 1 to {} sectors",
                sparsebundle::MAX_BAND / 512
            ),
        }),
    }
}

/// Calls `each(band number, bytes)` for every band of `disk` that holds anything but zeros.
fn bands_with_data(
    source: &Path,
    disk: &dyn ReadAt,
    band: u64,
    progress: &dyn Progress,
    cancel: &Cancel,
    each: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut bands = Bands {
        pending: Vec::with_capacity(band.min(disk.size()) as usize),
        known_zeros: 0,
        band: band as usize,
        number: 0,
        each,
    };
    stream_blocks(source, "Converting", disk, progress, cancel, &mut bands)?;
    if !bands.pending.is_empty() {
        bands.flush()?;
    }
    Ok(())
}

/// The disk's blocks gathered into bands: the band being filled is `pending`, or while only
/// known zeros have come, `known_zeros` of them, not held.
struct Bands<F> {
    pending: Vec<u8>,
    known_zeros: usize,
    band: usize,
    number: u64,
    each: F,
}

impl<F: FnMut(u64, &[u8]) -> Result<()>> Bands<F> {
    fn flush(&mut self) -> Result<()> {
        if !crate::io::is_zero(&self.pending) {
            (self.each)(self.number, &self.pending)?;
        }
        self.pending.clear();
        self.number += 1;
        Ok(())
    }
}

impl<F: FnMut(u64, &[u8]) -> Result<()>> BlockSink for Bands<F> {
    fn data(&mut self, _: u64, mut block: &[u8]) -> Result<()> {
        if self.known_zeros > 0 {
            self.pending.resize(self.known_zeros, 0);
            self.known_zeros = 0;
        }
        while !block.is_empty() {
            let take = block.len().min(self.band - self.pending.len());
            self.pending.extend_from_slice(&block[..take]);
            block = &block[take..];
            if self.pending.len() == self.band {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Bands of nothing but known zeros are passed over, never held.
    fn zeros(&mut self, _: u64, mut len: u64) -> Result<bool> {
        while len > 0 {
            let filled = self.pending.len() + self.known_zeros;
            let take = len.min((self.band - filled) as u64) as usize;
            match self.pending.is_empty() {
                true => self.known_zeros += take,
                false => self.pending.resize(filled + take, 0),
            }
            if filled + take == self.band {
                match self.pending.is_empty() {
                    true => {
                        self.known_zeros = 0;
                        self.number += 1;
                    }
                    false => self.flush()?,
                }
            }
            len -= take as u64;
        }
        Ok(true)
    }
}

/// A sparse image file being written, as it is or sealed in an encrypted image: each block is
/// encrypted on its own (its IV comes from its number), so the header nodes written last can be
/// sealed in place like any other block, and no plaintext reaches the disk.
struct ImageFile {
    out: AtomicOutput,
    sealer: Option<Sealer>,
}

impl ImageFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        match &self.sealer {
            None => self.out.write_at(offset, bytes),
            Some(sealer) => {
                let mut sealed = bytes.to_vec();
                sealer.encrypt(offset / BLOCK as u64, &mut sealed);
                self.out.write_at(DATA_OFFSET + offset, &sealed)
            }
        }
    }

    fn finish(mut self, plain_size: u64) -> Result<u64> {
        if let Some(sealer) = &self.sealer {
            let header = sealer.header(plain_size);
            self.out.write_at(0, &header)?;
        }
        self.out.finish()
    }
}

/// A `.sparseimage` (formats.md §c.1): the header node, the bands with data in disk order, and
/// a further index node before every 1,010 more; sealed whole in an encrypted image when the job
/// has a sealer. Returns the file's size.
pub fn write_image(job: SparseJob, progress: &dyn Progress, cancel: &Cancel) -> Result<u64> {
    let SparseJob {
        source,
        disk,
        output,
        band,
        overwrite,
        in_place,
        sealer,
        ..
    } = job;
    let out = match in_place {
        true => AtomicOutput::replacing(output)?,
        false => AtomicOutput::create(source, output, overwrite)?,
    };
    let mut out = ImageFile { out, sealer };
    let mut index = sparseimage::Index::new(band);
    bands_with_data(source, disk, band, progress, cancel, |number, bytes| {
        let at = index.append(number).ok_or_else(|| Error::Refused {
            path: output.into(),
            reason: "the disk has more bands than a sparse image can number".into(),
        })?;
        let mut full = bytes.to_vec();
        full.resize(band as usize, 0);
        out.write_at(at, &full)
    })?;
    for (at, node) in index.nodes(disk.size()) {
        out.write_at(at, &node)?;
    }
    cancel.check()?;
    out.finish(index.end())
}

/// An `.asif` image of the chunks of `job.band` bytes that hold data, their
/// zero blocks left as holes; its identifiers from the job's seed, or random. Returns the file's
/// size.
pub fn write_asif(job: SparseJob, progress: &dyn Progress, cancel: &Cancel) -> Result<u64> {
    let SparseJob {
        source,
        disk,
        output,
        band: chunk,
        overwrite,
        sealer,
        seed,
        ..
    } = job;
    if sealer.is_some() {
        return Err(Error::Refused {
            path: output.into(),
            reason: "dimg does not encrypt ASIF images".into(),
        });
    }
    let mut layout =
        asif::writer::Layout::new(chunk, disk.size(), seed).map_err(|reason| Error::Refused {
            path: output.into(),
            reason,
        })?;
    let mut out = AtomicOutput::create(source, output, overwrite)?;
    bands_with_data(source, disk, chunk, progress, cancel, |number, bytes| {
        out.write_data_at(layout.append(number), bytes)
    })?;
    cancel.check()?;
    layout.finish(|at, bytes| out.write_at(at, bytes))?;
    out.finish()
}

/// A `.sparsebundle` folder (formats.md §c.2): Info.plist and its copy Info.bckup, an empty
/// token, and `bands/` with a file per band that holds data, named in lower-case hex (its zero
/// blocks left as holes). With `sealer`, the token holds the encrcdsa header and every band is
/// encrypted on its own, its blocks numbered from 0, as macOS does. Built beside the target and
/// renamed into place when complete. Returns the bytes of data stored.
pub fn write_bundle(job: SparseJob, progress: &dyn Progress, cancel: &Cancel) -> Result<u64> {
    let SparseJob {
        source,
        disk,
        output,
        band,
        overwrite,
        sealer,
        ..
    } = job;
    refuse_existing(output, overwrite)?;
    let parent = super::output::folder_of(output);
    let staging = super::output::staging(parent).map_err(|e| Error::io(output, e))?;
    let root = staging.path();
    let io = |e: std::io::Error| Error::io(output, e);
    std::fs::create_dir(root.join("bands")).map_err(io)?;
    let mut stored = 0u64;
    bands_with_data(source, disk, band, progress, cancel, |number, bytes| {
        let path = root.join("bands").join(format!("{number:x}"));
        let f = File::create(&path).map_err(io)?;
        let sealed;
        let bytes = match &sealer {
            Some(sealer) => {
                let mut band = bytes.to_vec();
                band.resize(bytes.len().next_multiple_of(BLOCK), 0);
                sealer.encrypt(0, &mut band);
                sealed = band;
                &sealed[..]
            }
            None => bytes,
        };
        // Band files are sparse, as macOS writes them: a zero block takes no room.
        for (offset, run) in crate::io::data_runs(bytes, 4096) {
            f.write_all_at(run, offset as u64).map_err(io)?;
            stored += run.len() as u64;
        }
        f.set_len(bytes.len() as u64).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(())
    })?;
    cancel.check()?;
    let info = sparsebundle::info_plist(band, disk.size());
    for name in ["Info.plist", "Info.bckup"] {
        std::fs::write(root.join(name), &info).map_err(io)?;
    }
    // The token holds the header and no data: its data size is 0, as macOS writes it.
    let token = sealer.as_ref().map(|s| s.header(0)).unwrap_or_default();
    std::fs::write(root.join("token"), token).map_err(io)?;
    for dir in [root.join("bands"), root.to_path_buf()] {
        File::open(&dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    // Replacing a bundle: the old one is moved aside, the new one put in place, the old removed.
    let aside = match output.exists() {
        true => {
            let aside = parent.join(format!(".dimg-replaced-{}", std::process::id()));
            std::fs::rename(output, &aside).map_err(io)?;
            Some(aside)
        }
        false => None,
    };
    std::fs::rename(staging.keep(), output).map_err(io)?;
    if let Some(aside) = aside {
        let _ = std::fs::remove_dir_all(aside);
    }
    File::open(parent).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(stored)
}

/// A virtual machine's disk (qcow2, VMDK, VDI, VHD, VHDX, Parallels): the blocks that hold data,
/// appended in disk order, then the tables `layout` makes to place them. Not sealed: these formats have their own
/// encryption or none. Returns the file's size.
pub fn write_blocks(
    job: SparseJob,
    layout: &dyn BlockLayout,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<u64> {
    let SparseJob {
        source,
        disk,
        output,
        overwrite,
        ..
    } = job;
    let mut out = AtomicOutput::create(source, output, overwrite)?;
    let mut stored = Vec::new();
    bands_with_data(
        source,
        disk,
        layout.block_size(),
        progress,
        cancel,
        |number, bytes| {
            let at = layout.stored_at(stored.len() as u64);
            stored.push(number);
            out.write_data_at(at, bytes)
        },
    )?;
    for (at, piece) in layout.metadata(&stored) {
        out.write_at(at, &piece)?;
    }
    out.extend_to(layout.data_end(stored.len() as u64));
    cancel.check()?;
    out.finish()
}
