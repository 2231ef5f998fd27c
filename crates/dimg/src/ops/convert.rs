use super::job::{stream_blocks, BlockSink, Cancel, Progress};
use super::output::{AtomicOutput, Encrypting, Sink};
use crate::codec::Codec;
use crate::container::blocks::BlockLayout;
use crate::container::encrypted::{Sealer, DEFAULT_ITERATIONS};
use crate::container::optical::TrackMode;
use crate::container::udif::licence::{self, Licence};
use crate::container::udif::writer::{self, ChunkJob, Encoded, Tables, Variant};
use crate::container::{self, Container, LayoutEntry};
use crate::error::{Error, Result};
use crate::io::ReadAt;
use crate::partition;
use crate::secret::Passphrase;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{mpsc, Arc, Mutex};

/// An output format, by hdiutil's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OutputFormat {
    /// DVD/CD master: the virtual disk, raw (.cdr, .img, or .iso for a CD).
    Udto,
    /// Read/write: the raw disk followed by its property list and koly trailer, as hdiutil's UDRW.
    Udrw,
    /// Read-only UDIF, uncompressed.
    Udro,
    Udzo,
    Udbz,
    Ulfo,
    Ulmo,
    Udco,
    /// The disk's 2048-byte sectors: for a CD, the cooked data of its first data track.
    Iso,
    /// A cue sheet and one BIN beside it: raw tracks as stored, 2048-byte data as MODE1/2352.
    Cue,
    /// A Nero image (v2) of every track.
    Nrg,
    /// A Toast image: like an ISO, the disc's 2048-byte sectors (ISO 9660, HFS+ or a hybrid).
    Toast,
    /// A sparse disk image (.sparseimage): only the bands that hold data.
    Udsp,
    /// A sparse bundle disk image (.sparsebundle): a folder of band files.
    Udsb,
    /// A Disk Copy 4.2 image of a 400K, 800K, 720K or 1440K floppy, its tags kept.
    Dc42,
    /// A qcow2 image (QEMU's, version 3): only the clusters that hold data.
    Qcow2,
    /// An Apple Sparse Image Format image (.asif, macOS 26): only the chunks that hold data.
    Asif,
    /// A dynamic VHD (Virtual PC, Hyper-V, Azure): only the 2 MiB blocks that hold data.
    Vhd,
    /// A dynamic VDI (VirtualBox): only the 1 MiB blocks that hold data.
    Vdi,
    /// A monolithicSparse VMDK (VMware): only the 64 KiB grains that hold data.
    Vmdk,
    /// A dynamic VHDX (Hyper-V): only the 32 MiB blocks that hold data.
    Vhdx,
    /// A Parallels expanding image (.hds): only the 1 MiB clusters that hold data.
    Parallels,
}

impl OutputFormat {
    pub const ALL: [(&'static str, OutputFormat); 22] = [
        ("UDTO", OutputFormat::Udto),
        ("UDRW", OutputFormat::Udrw),
        ("UDRO", OutputFormat::Udro),
        ("UDZO", OutputFormat::Udzo),
        ("UDBZ", OutputFormat::Udbz),
        ("ULFO", OutputFormat::Ulfo),
        ("ULMO", OutputFormat::Ulmo),
        ("UDCO", OutputFormat::Udco),
        ("ISO", OutputFormat::Iso),
        ("CUE", OutputFormat::Cue),
        ("NRG", OutputFormat::Nrg),
        ("TOAST", OutputFormat::Toast),
        ("UDSP", OutputFormat::Udsp),
        ("UDSB", OutputFormat::Udsb),
        ("DC42", OutputFormat::Dc42),
        ("qcow2", OutputFormat::Qcow2),
        ("ASIF", OutputFormat::Asif),
        ("VHD", OutputFormat::Vhd),
        ("VDI", OutputFormat::Vdi),
        ("VMDK", OutputFormat::Vmdk),
        ("VHDX", OutputFormat::Vhdx),
        ("Parallels", OutputFormat::Parallels),
    ];

    /// The extension an image of this format is named with.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Udto => "cdr",
            OutputFormat::Iso => "iso",
            OutputFormat::Cue => "cue",
            OutputFormat::Nrg => "nrg",
            OutputFormat::Toast => "toast",
            OutputFormat::Udsp => "sparseimage",
            OutputFormat::Udsb => "sparsebundle",
            OutputFormat::Dc42 => "image",
            OutputFormat::Qcow2 => "qcow2",
            OutputFormat::Asif => "asif",
            OutputFormat::Vhd => "vhd",
            OutputFormat::Vdi => "vdi",
            OutputFormat::Vmdk => "vmdk",
            OutputFormat::Vhdx => "vhdx",
            OutputFormat::Parallels => "hds",
            _ => "dmg",
        }
    }

    /// The formats an output named `path` can be, by its extension, the one to take when no
    /// format is given first: a `.dmg` is UDZO from a folder and UDRW blank, as hdiutil makes
    /// them. `None` when the extension names no format (`.img`, none).
    pub fn for_name(path: &Path, from_folder: bool) -> Option<Vec<OutputFormat>> {
        use OutputFormat::*;
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match extension.as_str() {
            "dmg" => {
                let first = if from_folder { Udzo } else { Udrw };
                let rest = [Udzo, Udrw, Udro, Udbz, Ulfo, Ulmo, Udco];
                std::iter::once(first)
                    .chain(rest.into_iter().filter(|f| *f != first))
                    .collect()
            }
            "iso" => vec![Udto, Iso],
            "cdr" => vec![Udto],
            "cue" => vec![Cue],
            "nrg" => vec![Nrg],
            "toast" => vec![Toast],
            "sparseimage" => vec![Udsp],
            "sparsebundle" => vec![Udsb],
            "image" | "dc42" => vec![Dc42],
            "qcow2" => vec![Qcow2],
            "asif" => vec![Asif],
            "vhd" => vec![Vhd],
            "vdi" => vec![Vdi],
            "vmdk" => vec![Vmdk],
            "vhdx" => vec![Vhdx],
            "hds" => vec![Parallels],
            _ => return None,
        })
    }

    /// Refuses to write this format under a name whose extension says another.
    pub fn check_name(self, path: &Path) -> std::result::Result<(), String> {
        match Self::for_name(path, true) {
            Some(formats) if !formats.contains(&self) => {
                let names: Vec<String> = formats.iter().map(|f| f.to_string()).collect();
                let named = path.extension().unwrap_or_default().to_string_lossy();
                Err(format!(
                    "is named .{named}, which holds {}, not {self}: name it .{} or give -format {}",
                    names.join(" or "),
                    self.extension(),
                    formats[0]
                ))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn udif(self) -> Option<Variant> {
        Some(match self {
            OutputFormat::Udto
            | OutputFormat::Iso
            | OutputFormat::Toast
            | OutputFormat::Cue
            | OutputFormat::Nrg
            | OutputFormat::Udsp
            | OutputFormat::Udsb
            | OutputFormat::Dc42
            | OutputFormat::Qcow2
            | OutputFormat::Asif
            | OutputFormat::Vhd
            | OutputFormat::Vdi
            | OutputFormat::Vmdk
            | OutputFormat::Vhdx
            | OutputFormat::Parallels => return None,
            OutputFormat::Udro => Variant::Udro,
            OutputFormat::Udrw => Variant::Udrw,
            OutputFormat::Udzo => Variant::Compressed(Codec::Zlib),
            OutputFormat::Udbz => Variant::Compressed(Codec::Bzip2),
            OutputFormat::Ulfo => Variant::Compressed(Codec::Lzfse),
            OutputFormat::Ulmo => Variant::Compressed(Codec::Xz),
            OutputFormat::Udco => Variant::Compressed(Codec::Adc),
        })
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Self::ALL.iter().find(|(_, v)| v == self).map(|(n, _)| *n);
        f.write_str(name.expect("every format is in ALL"))
    }
}

impl FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // hdiutil's names are upper case; qcow2 is written as qemu writes it; any is taken in
        // any case.
        Self::ALL
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!(
                    "output format {s} is not supported (supported: {})",
                    names.join(", ")
                )
            })
    }
}

/// Seal the output in an encrypted image (`-encryption AES-128|AES-256`).
#[derive(Clone, Debug)]
pub struct Encryption {
    /// 128 or 256.
    pub key_bits: u32,
    /// The new image's passphrase.
    pub passphrase: Arc<Passphrase>,
    /// PBKDF2 rounds; hdiutil-like by default.
    pub iterations: u32,
}

impl Encryption {
    pub fn new(key_bits: u32, passphrase: Arc<Passphrase>) -> Self {
        Encryption {
            key_bits,
            passphrase,
            iterations: DEFAULT_ITERATIONS,
        }
    }
}

/// How to convert.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub format: OutputFormat,
    /// zlib level for UDZO (hdiutil's `-imagekey zlib-level=N`); 1, as hdiutil, when unset.
    pub zlib_level: Option<u32>,
    /// Replace an existing output file.
    pub overwrite: bool,
    pub encryption: Option<Encryption>,
    /// Band size of a sparse image or bundle, in 512-byte sectors (hdiutil's
    /// `-imagekey sparse-band-size=N`); hdiutil's default when unset.
    pub sparse_band_sectors: Option<u64>,
    /// Chunk size of an ASIF image in bytes (`-imagekey asif-chunk-size=N`); 1 MiB, as macOS,
    /// when unset.
    pub asif_chunk: Option<u64>,
    /// A shadow file holding changes to the source's disk (hdiutil's `-shadow`): the disk is
    /// converted as the shadow changed it.
    pub shadow: Option<PathBuf>,
    /// A licence agreement macOS shows before attaching (UDIF formats), the default first.
    pub agreement: Vec<Licence>,
    /// A reproducible image's seed, which gives its identifiers (else random).
    pub seed: Option<crate::bytes::Seed>,
}

impl ConvertOptions {
    pub fn new(format: OutputFormat) -> Self {
        ConvertOptions {
            format,
            zlib_level: None,
            overwrite: false,
            encryption: None,
            sparse_band_sectors: None,
            asif_chunk: None,
            shadow: None,
            agreement: Vec::new(),
            seed: None,
        }
    }

    fn level(&self, variant: Variant) -> u32 {
        match variant {
            Variant::Compressed(Codec::Zlib) => self.zlib_level.unwrap_or(1),
            Variant::Compressed(Codec::Bzip2) => 9,
            Variant::Compressed(Codec::Xz) => 6,
            _ => 0,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConvertReport {
    pub source: PathBuf,
    pub output: PathBuf,
    pub format: OutputFormat,
    /// Bytes of the virtual disk converted.
    pub bytes: u64,
    /// Size of the file written.
    pub output_size: u64,
    /// What the user should know about the result, e.g. tracks a format cannot hold.
    pub notes: Vec<String>,
    /// Ranges `(offset, length)` of the source that could not be read and were written as
    /// zeros (imaging a device with `skip_unreadable`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<(u64, u64)>,
}

impl ConvertReport {
    fn new(
        source: &Path,
        output: &Path,
        format: OutputFormat,
        bytes: u64,
        output_size: u64,
        notes: Vec<String>,
    ) -> Self {
        ConvertReport {
            source: source.into(),
            output: output.into(),
            format,
            bytes,
            output_size,
            notes,
            unreadable: Vec::new(),
        }
    }
}

/// Converts the image at `source` into `output`: streamed with bounded memory, compression and
/// decompression on all cores, the output renamed into place only when complete.
pub fn convert(
    source: &Path,
    passphrase: Option<&Passphrase>,
    output: &Path,
    options: &ConvertOptions,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ConvertReport> {
    let opened = super::browse::open_image(source, passphrase)?;
    let container = match &options.shadow {
        Some(path) => Box::new(
            container::shadow::Shadowed::open(opened.container, path)
                .map_err(|e| Error::io(path, e))?,
        ),
        None => opened.container,
    };
    write(source, &*container, output, options, progress, cancel)
}

/// Writes the disk of `container` (read from `source`, which errors name) as `output`: the one
/// pipeline behind `convert` and `create`.
pub(super) fn write(
    source: &Path,
    container: &dyn Container,
    output: &Path,
    options: &ConvertOptions,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ConvertReport> {
    super::output::refuse_source(source, output)?;
    // An encrypted image is a .dmg whatever it holds, as macOS names them.
    let sealed_dmg = options.encryption.is_some()
        && output
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("dmg"));
    if !sealed_dmg {
        options
            .format
            .check_name(output)
            .map_err(|reason| Error::Refused {
                path: output.into(),
                reason,
            })?;
    }
    let sparse_writer = match options.format {
        OutputFormat::Udsp => Some((
            super::sparse::write_image as SparseWriter,
            crate::container::sparseimage::BAND,
        )),
        OutputFormat::Udsb => Some((
            super::sparse::write_bundle as SparseWriter,
            crate::container::sparsebundle::BAND,
        )),
        OutputFormat::Asif => Some((
            super::sparse::write_asif as SparseWriter,
            crate::container::asif::CHUNK,
        )),
        _ => None,
    };
    let band_writer = match vm_disk_layout(options, &*container.disk(), output)? {
        Some(layout) => Some(BandWriter::Blocks(layout)),
        None => sparse_writer.map(|(write, band)| BandWriter::Sparse(write, band)),
    };
    if let Some(writer) = band_writer {
        let band = match &writer {
            // These formats keep their own blocks and are not sealed in an encrypted image.
            BandWriter::Blocks(_) if options.encryption.is_some() => {
                return Err(Error::Refused {
                    path: output.into(),
                    reason: format!("{} images cannot be encrypted", options.format),
                });
            }
            BandWriter::Blocks(layout) => layout.block_size(),
            BandWriter::Sparse(_, default_band) if options.format == OutputFormat::Asif => {
                let chunk = options.asif_chunk.unwrap_or(*default_band);
                crate::container::asif::writer::chunk_size(chunk).map_err(|reason| {
                    Error::Refused {
                        path: output.into(),
                        reason,
                    }
                })?
            }
            BandWriter::Sparse(_, default_band) => match options.sparse_band_sectors {
                Some(sectors) => super::sparse::band_size(sectors, output)?,
                // An encrypted band is written whole (zeros seal to noise, not to a hole), so
                // an encrypted bundle takes smaller bands: less written for what its volume
                // holds.
                None if options.encryption.is_some() && options.format == OutputFormat::Udsb => {
                    crate::container::sparsebundle::ENCRYPTED_BAND
                }
                None => *default_band,
            },
        };
        let sealer = options
            .encryption
            .as_ref()
            .map(|e| Sealer::new(e.key_bits, &e.passphrase, e.iterations));
        let disk = container.disk();
        let job = super::sparse::SparseJob {
            source,
            disk: &*disk,
            output,
            band,
            overwrite: options.overwrite,
            in_place: false,
            sealer,
            seed: options.seed.as_ref(),
        };
        let size = match writer {
            BandWriter::Blocks(layout) => {
                super::sparse::write_blocks(job, &*layout, progress, cancel)?
            }
            BandWriter::Sparse(write, _) => write(job, progress, cancel)?,
        };
        return Ok(ConvertReport::new(
            source,
            output,
            options.format,
            disk.size(),
            size,
            Vec::new(),
        ));
    }
    let disc_writer = match options.format {
        OutputFormat::Cue => Some(super::disc::write_cue as super::disc::Writer),
        OutputFormat::Nrg => Some(super::disc::write_nrg as super::disc::Writer),
        _ => None,
    };
    if let Some(write) = disc_writer {
        if options.encryption.is_some() {
            return Err(Error::Refused {
                path: output.into(),
                reason: format!("{} images cannot be encrypted", options.format),
            });
        }
        let size = write(
            source,
            container,
            output,
            options.overwrite,
            progress,
            cancel,
        )?;
        return Ok(ConvertReport::new(
            source,
            output,
            options.format,
            size,
            size,
            Vec::new(),
        ));
    }
    if options.format == OutputFormat::Dc42 {
        return write_dc42(source, container, output, options);
    }
    let mut notes = Vec::new();
    if let Some(tracks) = container.tracks().filter(|t| t.len() > 1) {
        let kept = match tracks.iter().find(|t| t.mode != TrackMode::Audio) {
            Some(t) => format!("only track {:02}'s data", t.number),
            None => "the raw sectors of every track, as one disk".into(),
        };
        notes.push(format!(
            "the disc has {} tracks; {} holds {kept} (CUE or NRG keeps every track)",
            tracks.len(),
            options.format
        ));
    }
    let disk = container.disk();
    let mut out = AtomicOutput::create(source, output, options.overwrite)?;
    let image = ImageJob {
        source,
        container,
        disk: &disk,
        options,
    };
    match &options.encryption {
        None => image.write(&mut out, progress, cancel)?,
        Some(e) => {
            let sealer = Sealer::new(e.key_bits, &e.passphrase, e.iterations);
            let mut sealed = Encrypting::new(&mut out, sealer);
            image.write(&mut sealed, progress, cancel)?;
            sealed.finish()?;
        }
    }
    cancel.check()?;
    let output_size = out.finish()?;
    Ok(ConvertReport::new(
        source,
        output,
        options.format,
        disk.size(),
        output_size,
        notes,
    ))
}

/// A Disk Copy 4.2 image: a floppy's worth, built in memory and written at once.
fn write_dc42(
    source: &Path,
    container: &dyn Container,
    output: &Path,
    options: &ConvertOptions,
) -> Result<ConvertReport> {
    let refuse = |reason: String| Error::Refused {
        path: output.into(),
        reason,
    };
    if options.encryption.is_some() {
        return Err(refuse("Disk Copy 4.2 images cannot be encrypted".into()));
    }
    let disk = container.disk();
    let name = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tags = container.tags();
    let bytes = crate::container::dc42::encode(&*disk, tags.as_deref(), &name)
        .map_err(|e| refuse(e.to_string()))?;
    let mut out = AtomicOutput::create(source, output, options.overwrite)?;
    out.write_all(&bytes)?;
    let output_size = out.finish()?;
    Ok(ConvertReport::new(
        source,
        output,
        options.format,
        disk.size(),
        output_size,
        Vec::new(),
    ))
}

/// Writes a sparse image or bundle; returns the bytes stored.
type SparseWriter = fn(super::sparse::SparseJob, &dyn Progress, &Cancel) -> Result<u64>;

/// What writes an image band by band: a sparse image, bundle or ASIF writer with its default
/// band, or a virtual machine disk format's layout.
enum BandWriter {
    Sparse(SparseWriter, u64),
    Blocks(Box<dyn BlockLayout>),
}

/// The writer of a virtual machine's disk format for `disk`, or `None` for another format; why
/// not when the format cannot hold the disk.
fn vm_disk_layout(
    options: &ConvertOptions,
    disk: &dyn ReadAt,
    output: &Path,
) -> Result<Option<Box<dyn BlockLayout>>> {
    use crate::container::{parallels, qcow2, vdi, vhd, vhdx, vmdk};
    let (size, seed) = (disk.size(), options.seed.as_ref());
    let name = output.file_name().unwrap_or_default().to_string_lossy();
    let layout: std::result::Result<Box<dyn BlockLayout>, String> = match options.format {
        OutputFormat::Qcow2 => Ok(Box::new(qcow2::writer::Layout::new(size))),
        OutputFormat::Vhd => vhd::writer::Layout::new(size, seed).map(|l| Box::new(l) as _),
        OutputFormat::Vdi => vdi::writer::Layout::new(size, seed).map(|l| Box::new(l) as _),
        OutputFormat::Vhdx => vhdx::writer::Layout::new(size, seed).map(|l| Box::new(l) as _),
        OutputFormat::Parallels => parallels::writer::Layout::new(size).map(|l| Box::new(l) as _),
        OutputFormat::Vmdk => {
            vmdk::writer::Layout::new(size, &name, seed).map(|l| Box::new(l) as _)
        }
        _ => return Ok(None),
    };
    layout.map(Some).map_err(|reason| Error::Refused {
        path: output.into(),
        reason,
    })
}

/// The image being written: what `convert` hands to a sink, plain or encrypted.
struct ImageJob<'a> {
    source: &'a Path,
    container: &'a dyn Container,
    disk: &'a Arc<dyn ReadAt>,
    options: &'a ConvertOptions,
}

impl ImageJob<'_> {
    fn write(&self, out: &mut dyn Sink, progress: &dyn Progress, cancel: &Cancel) -> Result<()> {
        let (source, disk) = (self.source, &**self.disk);
        match self.options.format.udif() {
            None => stream_blocks(
                source,
                "Converting",
                disk,
                progress,
                cancel,
                &mut RawDisk(out),
            ),
            Some(variant) => {
                let layout = match self.container.layout() {
                    Some(layout) => layout,
                    None => layout_of(disk).map_err(|e| Error::io(source, e))?,
                };
                let layout = writer::complete(layout, disk.size().div_ceil(512));
                let pipeline = UdifPipeline {
                    source,
                    disk: self.disk.clone(),
                    variant,
                    level: self.options.level(variant),
                    resources: licence::resources(&self.options.agreement),
                    seed: self.options.seed,
                };
                pipeline.run(layout, out, progress, cancel)
            }
        }
    }
}

/// The most known-zero chunks the reader hands the writer at once: 1 GiB of disk.
const ZERO_CHUNKS_AT_ONCE: usize = 1024;

/// The CRC-32 of `len` zero bytes.
fn zeros_crc(len: u64) -> crc32fast::Hasher {
    let mut crc = crc32fast::Hasher::new();
    let zeros = [0u8; 64 << 10];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        crc.update(&zeros[..n]);
        left -= n as u64;
    }
    crc
}

/// A raw disk written as it streams; the zeros the source knows of become holes where the
/// output can leave them.
struct RawDisk<'a>(&'a mut dyn Sink);

impl BlockSink for RawDisk<'_> {
    fn data(&mut self, _: u64, bytes: &[u8]) -> Result<()> {
        self.0.write_sparse(bytes)
    }
    fn zeros(&mut self, _: u64, len: u64) -> Result<bool> {
        self.0.write_zeros(len)
    }
}

/// One block table per partition of the disk's map, named as hdiutil names them
/// ("name (type : n)"); what lies between partitions becomes free-space tables later.
fn layout_of(disk: &dyn ReadAt) -> io::Result<Vec<LayoutEntry>> {
    let (_, parts) = partition::scan(disk)?;
    Ok(parts
        .iter()
        // The extended partition contains the logical ones; sub-sector partitions cannot be tables.
        .filter(|p| p.kind != "Extended" && p.start % 512 == 0 && p.size % 512 == 0)
        .enumerate()
        .map(|(i, p)| {
            let kind = if p.kind.is_empty() {
                "unknown partition"
            } else {
                &p.kind
            };
            LayoutEntry {
                id: i as i64,
                name: format!("{} ({kind} : {i})", p.name),
                first_sector: p.start / 512,
                sectors: p.size / 512,
            }
        })
        .collect())
}

struct UdifPipeline<'a> {
    source: &'a Path,
    disk: Arc<dyn ReadAt>,
    variant: Variant,
    level: u32,
    /// Resources beside the block tables (a licence agreement's).
    resources: Vec<licence::Resource>,
    seed: Option<crate::bytes::Seed>,
}

impl UdifPipeline<'_> {
    /// Reader → encoders on every core → writer in disk order. The reader may be at most
    /// `in_flight` chunks ahead of the writer, so a slow disk never makes memory grow: memory is
    /// about `in_flight` × 2 MiB whatever the image size.
    fn run(
        &self,
        layout: Vec<LayoutEntry>,
        out: &mut dyn Sink,
        progress: &dyn Progress,
        cancel: &Cancel,
    ) -> Result<()> {
        let count = writer::plan_len(&layout);
        let plan_layout = layout.clone();
        let mut tables = Tables::new(self.variant, layout);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let in_flight = 2 * workers + 2;
        let total = self.disk.size();
        progress.begin("Converting", total);
        std::thread::scope(|scope| {
            let (work_tx, work_rx) = mpsc::sync_channel::<(usize, ChunkJob, Vec<u8>)>(in_flight);
            let work_rx = Arc::new(Mutex::new(work_rx));
            // Chunks done, from the first one's number on: one a message from the encoders, a
            // run of known zeros in one from the reader.
            let (done_tx, done_rx) =
                mpsc::channel::<(usize, io::Result<Vec<(ChunkJob, Encoded)>>)>();
            let (token_tx, token_rx) = mpsc::sync_channel::<()>(in_flight);
            for _ in 0..in_flight {
                token_tx
                    .send(())
                    .expect("the token queue holds in_flight tokens");
            }
            let reader_done = done_tx.clone();
            let plan_layout = &plan_layout;
            scope.spawn(move || {
                let full_chunk = writer::CHUNK_SECTORS * 512;
                let zero_chunk = zeros_crc(full_chunk);
                // Each message takes a token, which the writer gives back when it is written.
                let send_zeros = |first: usize, run: &mut Vec<(ChunkJob, Encoded)>| {
                    let run = std::mem::take(run);
                    token_rx.recv().is_ok()
                        && !cancel.is_cancelled()
                        && reader_done.send((first, Ok(run))).is_ok()
                };
                let mut zeros = Vec::new();
                let mut zeros_from = 0;
                for (seq, job) in writer::plan(plan_layout).enumerate() {
                    // Zeros the disk knows of are neither read nor encoded.
                    let (start, len) = (job.first_sector * 512, job.sectors * 512);
                    if self.disk.zeros_until(start) >= (start + len).min(total) {
                        let crc = match len == full_chunk {
                            true => zero_chunk.clone(),
                            false => zeros_crc(len),
                        };
                        if zeros.is_empty() {
                            zeros_from = seq;
                        }
                        zeros.push((job, Encoded::known_zeros(self.variant, len, crc)));
                        if zeros.len() == ZERO_CHUNKS_AT_ONCE && !send_zeros(zeros_from, &mut zeros)
                        {
                            return;
                        }
                        continue;
                    }
                    if !zeros.is_empty() && !send_zeros(zeros_from, &mut zeros) {
                        return;
                    }
                    if token_rx.recv().is_err() || cancel.is_cancelled() {
                        return;
                    }
                    match self.read(&job) {
                        Ok(data) => {
                            if work_tx.send((seq, job, data)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = reader_done.send((seq, Err(e)));
                            return;
                        }
                    }
                }
                if !zeros.is_empty() {
                    send_zeros(zeros_from, &mut zeros);
                }
            });
            for _ in 0..workers {
                let (rx, tx) = (work_rx.clone(), done_tx.clone());
                scope.spawn(move || loop {
                    let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((seq, job, data)) = next else { return };
                    let chunk = writer::encode(self.variant, self.level, data);
                    if tx.send((seq, Ok(vec![(job, chunk)]))).is_err() {
                        return;
                    }
                });
            }
            drop(done_tx);

            let mut pending = BTreeMap::new();
            // Zero bytes for a hole, for a sink that must have them (an encrypted image's).
            let (full_chunk, mut hole) = (writer::CHUNK_SECTORS * 512, None::<Vec<u8>>);
            let mut next = 0;
            let mut offset = 0u64;
            let mut data_crc = crc32fast::Hasher::new();
            while (next as u64) < count {
                cancel.check()?;
                let Ok((seq, chunk)) = done_rx.recv() else {
                    // Every sender is gone before the last chunk: the reader saw the cancel.
                    cancel.check()?;
                    unreachable!(
                        "the reader stops early only when cancelled or after an error it sends"
                    );
                };
                pending.insert(seq, chunk);
                while let Some(done) = pending.remove(&next) {
                    let chunks = done.map_err(|e| Error::io(self.source, e))?;
                    for (job, chunk) in &chunks {
                        // UDRW stores zeros too: as holes, where the file system can.
                        out.write_sparse(&chunk.bytes)?;
                        data_crc.update(&chunk.bytes);
                        if chunk.hole > 0 {
                            if !out.write_zeros(chunk.hole)? {
                                let zeros =
                                    hole.get_or_insert_with(|| vec![0; full_chunk as usize]);
                                out.write_all(&zeros[..chunk.hole as usize])?;
                            }
                            data_crc.combine(&chunk.crc);
                        }
                        tables.add(*job, chunk, offset);
                        offset += chunk.stored();
                    }
                    next += chunks.len();
                    let _ = token_tx.send(());
                    if let Some((job, _)) = chunks.last() {
                        progress.advance(((job.first_sector + job.sectors) * 512).min(total));
                    }
                }
            }
            out.write_all(&tables.finish(
                offset,
                data_crc.finalize(),
                &self.resources,
                self.seed.as_ref(),
            ))
        })
    }

    /// A chunk's uncompressed bytes; the disk's last partial sector is padded with zeros.
    fn read(&self, job: &ChunkJob) -> io::Result<Vec<u8>> {
        let start = job.first_sector * 512;
        let mut data = vec![0u8; (job.sectors * 512) as usize];
        let available = self
            .disk
            .size()
            .saturating_sub(start)
            .min(data.len() as u64) as usize;
        self.disk.read_exact_at(start, &mut data[..available])?;
        Ok(data)
    }
}
