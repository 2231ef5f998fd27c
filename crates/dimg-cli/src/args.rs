use clap::{Args, CommandFactory, Parser, Subcommand};
use dimg::ops::{request, FileSystem, Layout, OutputFormat, Scheme, VolumeFormat};
use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "dimg",
    // The commit it was built from, where it was built from a git checkout (build.rs).
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DIMG_COMMIT"), ")"),
    about = "Open, inspect, verify and convert disk images (.dmg, .iso, .nrg, .bin/.cue, .img ...)",
    after_help = "Options may be written hdiutil-style with one dash: -plist, -format UDZO."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Describe an image: format, sizes, what it holds
    /// Without an image: what is attached (images, volumes, mount points, server pids)
    #[command(alias = "imageinfo")]
    Info {
        image: Option<PathBuf>,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Read the whole image, check what it carries and print its CRC-32 and SHA-256;
    /// with -fs, check its volumes' structures instead (First Aid: HFS+, HFSX, FAT)
    Verify {
        image: PathBuf,
        /// Check each volume's structures (B-trees, catalog, bitmap, journal; FAT chains and
        /// copies), a line per problem, instead of the image's checksums
        #[arg(long)]
        fs: bool,
        /// With -fs: make the repairs that are safe (counts, valences, the bitmap, FAT copies,
        /// FAT32's free count) in a read/write image, and say each
        #[arg(long, requires = "fs")]
        repair: bool,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Print a checksum of the image's data, as hdiutil checksum does: CRC32, MD5, SHA1, SHA256,
    /// SHA384 or SHA512 of its disk, or UDIF-CRC32 or UDIF-MD5 of a UDIF image's data fork
    Checksum {
        image: PathBuf,
        /// The checksum type
        #[arg(long = "type")]
        kind: String,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Give back the space of a sparse image's or bundle's bands its volumes leave free
    Compact {
        image: PathBuf,
        /// Compact this shadow file of the image instead (IMAGE.shadow when none is named): the
        /// bands it holds that the volumes, as it changed them, leave free are given back; the
        /// image is only read
        #[arg(long, num_args = 0..=1)]
        shadow: Option<Option<PathBuf>>,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Resize a read/write image and the HFS+ volume in it: dimg resize -size 20g IMAGE
    Resize {
        image: PathBuf,
        /// The disk's new size: 100m, 2g, 512k, 4096b
        #[arg(long, value_parser = request::size, required_unless_present = "limits")]
        size: Option<u64>,
        /// Print the smallest, current and largest sizes instead
        #[arg(long, conflicts_with = "size")]
        limits: bool,
        /// Resize the disk as this shadow file changed it (IMAGE.shadow when none is named): the
        /// shadow takes the new size and every change, the image (of any format) is only read
        #[arg(long, num_args = 0..=1)]
        shadow: Option<Option<PathBuf>>,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Convert an image to another format: dimg convert IN -format UDZO -o OUT
    Convert {
        image: PathBuf,
        /// Output format, by hdiutil's name: UDZO, UDBZ, ULFO, ULMO, UDCO, UDRO, UDRW, UDTO,
        /// UDSP (sparse disk image), UDSB (sparse bundle disk image); or ISO, CUE (.bin/.cue),
        /// NRG, TOAST, DC42 (Disk Copy 4.2, floppies), ASIF; virtual machines' disks qcow2, VMDK,
        /// VDI, VHD, VHDX, Parallels. Without it, the output's extension says: .dmg UDZO, .iso
        /// and .cdr UDTO, .sparseimage UDSP, .sparsebundle UDSB, .toast, .nrg, .cue, .image DC42,
        /// .asif, .qcow2, .vmdk, .vdi, .vhd, .vhdx, .hds (Parallels)
        #[arg(long, value_parser = clap::value_parser!(OutputFormat))]
        format: Option<OutputFormat>,
        /// Output file
        #[arg(short = 'o', long = "o")]
        output: PathBuf,
        /// Convert the disk as this shadow file changed it (IMAGE.shadow when none is named)
        #[arg(long, num_args = 0..=1)]
        shadow: Option<Option<PathBuf>>,
        #[command(flatten)]
        write: WriteArgs,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        print: OutputArgs,
    },
    /// Create an image, blank, from a folder or from a disk:
    /// dimg create -size 100m -fs FAT32 -volname NAME OUT, dimg create -srcfolder DIR OUT,
    /// dimg create -srcdevice /dev/sdb OUT
    Create {
        /// The image to create
        output: PathBuf,
        /// Make the volume from this folder's contents
        #[arg(long, conflicts_with = "srcdevice")]
        srcfolder: Option<PathBuf>,
        /// Image this disk or partition, or the device mounted at this folder, byte for byte
        /// (never written to)
        #[arg(long, conflicts_with_all = ["size", "fs", "volname", "layout"])]
        srcdevice: Option<PathBuf>,
        /// With -srcdevice: write sectors that cannot be read as zeros and list them, instead
        /// of stopping there
        #[arg(long = "skip-unreadable", requires = "srcdevice")]
        skip_unreadable: bool,
        /// The image's size: 100m, 2g, 512k, 4096b (without it, sized to fit the folder)
        #[arg(long, value_parser = request::size)]
        size: Option<u64>,
        /// File system: HFS+ (the default), HFSX (case-sensitive), JHFS+ or JHFSX (journaled,
        /// as Disk Utility makes them), APFS or "Case-sensitive APFS", ISO (Rock Ridge +
        /// Joliet), UDF (1.02; UDF2.01 for 2.01), FAT, FAT32, ExFAT, or NONE for a blank disk
        #[arg(long, value_parser = clap::value_parser!(FileSystem))]
        fs: Option<FileSystem>,
        /// The volume's name (by default the folder's, or "untitled")
        #[arg(long)]
        volname: Option<String>,
        /// Partition map: GPTSPUD, SPUD (Apple), MBRSPUD or NONE (default GPT; none for ISO)
        #[arg(long, value_parser = request::layout)]
        layout: Option<Layout>,
        /// Output format as for convert (by default as the output's extension says; a .dmg or
        /// a name without one: UDZO from a folder, UDRW when blank)
        #[arg(long, value_parser = clap::value_parser!(OutputFormat), conflicts_with = "kind")]
        format: Option<OutputFormat>,
        /// hdiutil's other way to ask for a sparse image: SPARSE (UDSP) or SPARSEBUNDLE (UDSB);
        /// or diskutil's ASIF
        #[arg(long = "type", value_parser = parse_sparse_type)]
        kind: Option<OutputFormat>,
        /// Encrypt the APFS volume itself, as macOS does (FileVault): its password from
        /// -stdinpass or asked twice
        #[arg(long = "apfs-encrypt", conflicts_with = "srcdevice")]
        apfs_encrypt: bool,
        #[command(flatten)]
        write: WriteArgs,
        #[command(flatten)]
        distribution: DistributionArgs,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        print: OutputArgs,
    },
    /// Burn an image onto a CD, DVD or BD (libburn through xorriso for data, cdrdao for audio
    /// and mixed-mode): dimg burn IMAGE -device /dev/sr0
    Burn {
        image: PathBuf,
        /// The drive, or libburn's stdio:FILE pseudo-drive
        #[arg(long, default_value = "/dev/sr0")]
        device: String,
        /// Write speed, a multiple of the medium's base speed
        #[arg(long)]
        speed: Option<u32>,
        /// The drive's simulation mode: everything but the laser
        #[arg(long)]
        testburn: bool,
        /// Do not read the disc back after burning
        #[arg(long)]
        noverify: bool,
        /// Eject the disc when done
        #[arg(long)]
        eject: bool,
        /// Only say how it would be burnt: the burner and its command line
        #[arg(long = "dry-run")]
        dry_run: bool,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// The machine's disks, their partitions and volumes, as diskutil list shows them
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Write an image's disk onto a device, then read it back and compare:
    /// dimg restore IMAGE -target /dev/sdb
    Restore {
        image: PathBuf,
        /// The disk (or partition) to overwrite
        #[arg(long)]
        target: PathBuf,
        /// Do not read the device back after writing
        #[arg(long)]
        noverify: bool,
        /// Do not ask before overwriting (needed when standard input is not a terminal)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Erase a disk or a partition to a new, empty volume (diskutil eraseDisk, eraseVolume):
    /// dimg erase /dev/sdb -fs ExFAT -name STICK [-scheme GPT]
    Erase {
        /// The disk (a new partition map and one partition spanning it) or the partition
        device: PathBuf,
        /// File system: ExFAT, MS-DOS (FAT), ext4, NTFS (made by udisks2), APFS, APFSX
        /// (Case-sensitive APFS), JHFS+ (Mac OS Extended, Journaled), HFS+, JHFSX, HFSX
        /// (written by dimg)
        #[arg(long, value_parser = clap::value_parser!(VolumeFormat))]
        fs: VolumeFormat,
        /// The new volume's name (FAT's in capitals)
        #[arg(long, default_value = "Untitled")]
        name: String,
        /// A whole disk's new partition map: GPT (the default), MBR, APM (around Mac OS
        /// Extended only) or NONE (the volume spans the disk)
        #[arg(long, value_parser = clap::value_parser!(Scheme))]
        scheme: Option<Scheme>,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Add, delete or resize a partition on a GPT or MBR disk (diskutil addPartition,
    /// deleteVolume, resizeVolume): dimg partition DISK add -size 100m [-fs ExFAT -name N],
    /// dimg partition PARTITION delete, dimg partition PARTITION resize -size 200m
    Partition {
        /// The disk (to add to) or the partition (to delete or resize)
        device: PathBuf,
        #[command(subcommand)]
        action: PartitionAction,
    },
    /// Mount a device's volume, or each of a disk's, where the desktop mounts them (udisks2):
    /// dimg mount /dev/sdb1
    Mount {
        device: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Unmount a device's volume (or every one of a disk's) through udisks2:
    /// dimg unmount /dev/sdb1|MOUNTPOINT
    Unmount {
        target: PathBuf,
        /// Unmount a busy volume anyway (lazily: it goes when the last file on it is closed)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// An ISO 9660 image (Rock Ridge + Joliet) of a folder, with -hfs also HFS+, or with -udf
    /// a UDF 1.02 disc: dimg makehybrid [-hfs | -udf] -o OUT.iso DIR
    Makehybrid {
        /// The folder
        source: PathBuf,
        /// The image to create
        #[arg(short = 'o', long = "o")]
        output: PathBuf,
        /// Write the ISO 9660 side (always written)
        #[arg(long)]
        iso: bool,
        /// Add Joliet names (always written)
        #[arg(long)]
        joliet: bool,
        /// Add an HFS+ side over the same files, with an Apple partition map (a Mac & PC disc)
        #[arg(long)]
        hfs: bool,
        /// Write a UDF disc (as DVDs hold) instead of ISO 9660
        #[arg(long, conflicts_with_all = ["hfs", "iso", "joliet"])]
        udf: bool,
        /// The UDF revision: 1.02 (the default) or 2.01
        #[arg(long = "udf-version", requires = "udf", value_parser = ["1.02", "2.01"])]
        udf_version: Option<String>,
        /// The volume's name (by default the folder's)
        #[arg(long = "default-volume-name")]
        volname: Option<String>,
        /// Overwrite the output if it exists
        #[arg(long)]
        ov: bool,
        #[command(flatten)]
        print: OutputArgs,
    },
    /// List a folder of the image's volume: dimg ls IMAGE[:/path]
    Ls {
        /// The image, optionally followed by ":/path/in/the/volume"
        target: String,
        /// Long listing: kind, size, date
        #[arg(short = 'l')]
        long: bool,
        /// Everything below the folder, each entry by its path
        #[arg(short = 'R')]
        recursive: bool,
        /// The volume's snapshots instead (APFS)
        #[arg(long)]
        snapshots: bool,
        #[command(flatten)]
        volume: VolumeArg,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Extract files from the image's volume into a new folder: dimg extract IMAGE[:/path] -o DIR
    Extract {
        /// The image, optionally followed by ":/path/in/the/volume"
        target: String,
        /// The folder to create
        #[arg(short = 'o', long = "o")]
        output: PathBuf,
        /// All or nothing: a file that cannot be read fails the extraction (by default it is
        /// left out, named, and the rest extracted)
        #[arg(long)]
        strict: bool,
        /// The disc's boot images (El Torito) instead, as 7-Zip names them in its [BOOT] folder
        #[arg(long)]
        boot: bool,
        #[command(flatten)]
        volume: VolumeArg,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        print: OutputArgs,
    },
    /// Change an encrypted image's passphrase (only its wrapped key is rewritten)
    Chpass {
        image: PathBuf,
        /// Read the old passphrase from standard input (before a NUL if -newstdinpass too)
        #[arg(long)]
        oldstdinpass: bool,
        /// Read the new passphrase from standard input (after the NUL)
        #[arg(long)]
        newstdinpass: bool,
    },
    /// Mount the image's volumes where the file manager shows them: dimg attach IMAGE (a FAT
    /// volume of a read/write image read/write, the others read-only; with -nomount, the disk as
    /// files, read/write where the image can be written)
    Attach {
        image: PathBuf,
        /// Mount the one volume here instead (a folder; made if missing)
        #[arg(long)]
        mountpoint: Option<PathBuf>,
        #[command(flatten)]
        volume: VolumeArg,
        /// Attach the disk only: the decoded disk and each partition as files, no volume mounted
        #[arg(long)]
        nomount: bool,
        /// Never change the image, even one that can be written
        #[arg(long, conflicts_with = "readwrite")]
        readonly: bool,
        /// Attach read/write, or refuse (compressed and read-only images cannot be)
        #[arg(long)]
        readwrite: bool,
        /// Writes (to the disk with -nomount, else to its HFS+ and FAT volumes) go to this
        /// shadow file (IMAGE.shadow when none is named), never to the image, which may then be
        /// any image
        #[arg(long, num_args = 0..=1)]
        shadow: Option<Option<PathBuf>>,
        /// Serve in this terminal until Ctrl-C, instead of in the background
        #[arg(long)]
        foreground: bool,
        /// (Internal) this process is the background server; its log is this file
        #[arg(long, hide = true)]
        served: Option<PathBuf>,
        /// Accept the image's licence agreement without showing it (for scripts)
        #[arg(long)]
        agree: bool,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Unmount an attached image's volumes and stop its server: dimg detach MOUNTPOINT|IMAGE
    Detach {
        target: PathBuf,
        /// Detach a busy volume anyway (lazily: it goes when the last file on it is closed)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Say whether an image is encrypted
    Isencrypted {
        image: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// What the package installs, made from these definitions: the man pages (dimg(1) and one
    /// per verb, into DIR) or a shell's completion script (on standard output)
    #[command(hide = true)]
    Generate {
        #[arg(value_enum)]
        what: Generated,
        /// The folder the man pages go into
        #[arg(required_if_eq("what", "man"))]
        dir: Option<PathBuf>,
    },
}

/// What `dimg generate` makes.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Generated {
    Man,
    CompleteBash,
    CompleteZsh,
    CompleteFish,
}

/// What `dimg partition` does to its device.
#[derive(Subcommand)]
pub enum PartitionAction {
    /// Add a partition to the disk, in the first free space it fits
    Add {
        /// Its size: 100m, 2g (by default the largest free space)
        #[arg(long, value_parser = request::size)]
        size: Option<u64>,
        /// A new volume in it, as for erase (by default none: a blank partition)
        #[arg(long, value_parser = clap::value_parser!(VolumeFormat))]
        fs: Option<VolumeFormat>,
        /// The partition's and its volume's name
        #[arg(long, default_value = "Untitled")]
        name: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Delete the partition, and everything on it
    Delete {
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Resize the partition within the free space after it (the partition only: its volume
    /// keeps its size, so one that holds a file system is not shrunk)
    Resize {
        /// Its new size: 100m, 2g
        #[arg(long, value_parser = request::size)]
        size: u64,
        #[command(flatten)]
        change: ChangeArgs,
    },
}

/// What every verb that changes a device takes.
#[derive(Args, Clone, Copy)]
pub struct ChangeArgs {
    /// Do not ask before destroying what is on it (needed when standard input is not a
    /// terminal)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How a new image is written, for convert and create alike.
#[derive(Args, Clone)]
pub struct WriteArgs {
    /// Format options, hdiutil style: zlib-level=1..9 (UDZO), sparse-band-size=SECTORS (UDSP,
    /// UDSB), asif-chunk-size=BYTES (ASIF)
    #[arg(long, value_parser = parse_imagekey)]
    pub imagekey: Vec<ImageKey>,
    /// Overwrite the output if it exists
    #[arg(long)]
    pub ov: bool,
    /// Encrypt the new image: AES-128 (the default) or AES-256
    #[arg(long, num_args = 0..=1, default_missing_value = "AES-128", value_parser = request::key_bits)]
    pub encryption: Option<u32>,
    /// PBKDF2 rounds for the new image's passphrase (default as hdiutil's order: 250000;
    /// 1000 makes an AES-128 image that old tools such as vfdecrypt can open)
    #[arg(long = "pbkdf2-iterations", value_parser = clap::value_parser!(u32).range(1000..=10_000_000))]
    pub pbkdf2_iterations: Option<u32>,
}

/// What makes a distribution image, for create.
#[derive(Args, Clone)]
pub struct DistributionArgs {
    /// The Finder window's layout (JSON, or TOML by its extension; dmgbuild's names): window,
    /// icon size, background, icon positions, links, volume icon
    #[arg(long, requires = "srcfolder")]
    pub settings: Option<PathBuf>,
    /// A licence agreement macOS shows before attaching: FILE (English) or LANGUAGE:FILE
    /// (de:FILE, en_GB:FILE), plain text or RTF; once per language, the first the default
    #[arg(long)]
    pub sla: Vec<String>,
    /// The same bytes from the same folder on any machine, any day: dates at most
    /// SOURCE_DATE_EPOCH (which alone asks for this too; 1970 without it), fixed owners,
    /// identifiers from the contents
    #[arg(long)]
    pub reproducible: bool,
}

impl DistributionArgs {
    /// What the engine makes of the flags, with `source_date_epoch` (the environment's
    /// SOURCE_DATE_EPOCH, the reproducible-builds convention).
    pub fn distribution(
        self,
        source_date_epoch: Option<String>,
    ) -> Result<dimg::ops::Distribution, String> {
        let epoch = match source_date_epoch {
            Some(text) => Some(text.trim().parse::<i64>().map_err(|_| {
                format!("SOURCE_DATE_EPOCH={text} is not a number of seconds since 1970")
            })?),
            None => self.reproducible.then_some(0),
        };
        Ok(dimg::ops::Distribution {
            settings: self.settings,
            sla: self.sla,
            epoch,
        })
    }
}

fn parse_sparse_type(s: &str) -> Result<OutputFormat, String> {
    match s.to_ascii_uppercase().as_str() {
        "SPARSE" => Ok(OutputFormat::Udsp),
        "SPARSEBUNDLE" => Ok(OutputFormat::Udsb),
        "UDIF" => Ok(OutputFormat::Udrw),
        "ASIF" => Ok(OutputFormat::Asif),
        _ => Err(format!("type {s}: use SPARSE, SPARSEBUNDLE, UDIF or ASIF")),
    }
}

/// Which volume of a partitioned image to browse.
#[derive(Args, Clone)]
pub struct VolumeArg {
    /// The volume, numbered as `dimg info` shows: a partition (0: the whole disk, such as the
    /// ISO 9660 side of a hybrid CD), or partition.volume in an APFS container of several; by
    /// default the first one dimg can browse
    #[arg(long = "volume")]
    pub volume: Option<dimg::ops::VolumeId>,
    /// The volume as its snapshot of this name keeps it (APFS; `ls -snapshots` lists them)
    #[arg(long)]
    pub snapshot: Option<String>,
}

/// How an encrypted image's passphrase is given: never on the command line.
#[derive(Args, Clone, Copy)]
pub struct PassArgs {
    /// Read the passphrase from standard input (otherwise a terminal is asked when needed)
    #[arg(long)]
    pub stdinpass: bool,
}

#[derive(Args, Clone, Copy)]
pub struct OutputArgs {
    /// Print JSON for scripts
    #[arg(long, conflicts_with = "plist")]
    pub json: bool,
    /// Print an XML property list, like hdiutil -plist
    #[arg(long)]
    pub plist: bool,
}

/// One `-imagekey key=value` setting.
#[derive(Clone, Copy, Debug)]
pub enum ImageKey {
    ZlibLevel(u32),
    /// Band size of a sparse image or bundle, in 512-byte sectors.
    SparseBandSize(u64),
    /// A new APFS volume's files compressed with decmpfs.
    ApfsCompress(dimg::fs::decmpfs::Compression),
    /// Chunk size of an ASIF image, in bytes.
    AsifChunkSize(u64),
}

fn parse_imagekey(s: &str) -> Result<ImageKey, String> {
    match s.split_once('=') {
        Some(("zlib-level", v)) => match v.parse::<u32>() {
            Ok(n @ 1..=9) => Ok(ImageKey::ZlibLevel(n)),
            _ => Err(format!("zlib-level must be 1 to 9, not {v}")),
        },
        Some(("sparse-band-size", v)) => match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(ImageKey::SparseBandSize(n)),
            _ => Err(format!(
                "sparse-band-size is a count of 512-byte sectors, not {v}"
            )),
        },
        Some(("apfs-compress", v)) => v.parse().map(ImageKey::ApfsCompress),
        Some(("asif-chunk-size", v)) => match v.parse::<u64>() {
            Ok(n) => Ok(ImageKey::AsifChunkSize(n)),
            _ => Err(format!("asif-chunk-size is a count of bytes, not {v}")),
        },
        _ => Err(format!(
            "unknown image key {s} (known: zlib-level=N, sparse-band-size=SECTORS, \
             apfs-compress=lzfse|zlib, asif-chunk-size=BYTES)"
        )),
    }
}

/// hdiutil spells long options with one dash (`-plist`, `-format`); clap wants two. Every
/// single-dash word that names one of our long options gets its second dash; anything else
/// (short flags, file names, values) passes through untouched.
pub fn hdiutil_style(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let command = Cli::command();
    let mut longs = HashSet::new();
    collect_longs(&command, &mut longs);
    args.into_iter()
        .map(|arg| match arg.to_str() {
            Some(s) if s.len() > 2 && !s.starts_with("--") && longs.contains(&s[1..]) => {
                format!("-{s}").into()
            }
            _ => arg,
        })
        .collect()
}

fn collect_longs(command: &clap::Command, into: &mut HashSet<String>) {
    for arg in command.get_arguments() {
        into.extend(arg.get_long().map(str::to_string));
    }
    for sub in command.get_subcommands() {
        collect_longs(sub, into);
    }
}

/// Splits "IMAGE:/path" into the image file and the path inside it. The image part is the
/// longest prefix that exists (a file, or a sparse bundle folder), so image names with ':' still work.
pub fn image_and_path(target: &str) -> (PathBuf, String) {
    dimg::ops::split_target(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_split_where_the_image_file_ends() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("odd:name.iso");
        std::fs::write(&image, b"x").unwrap();
        let i = image.to_str().unwrap();
        assert_eq!(image_and_path(i), (image.clone(), "/".into()));
        assert_eq!(
            image_and_path(&format!("{i}:/a/b:c")),
            (image.clone(), "/a/b:c".into())
        );
        assert_eq!(
            image_and_path("missing.iso:/x"),
            ("missing.iso:/x".into(), "/".into())
        );
    }

    #[test]
    fn single_dash_long_options_gain_a_dash_and_nothing_else_changes() {
        let args = [
            "dimg",
            "info",
            "-plist",
            "-x",
            "-notanoption",
            "--json",
            "-",
        ];
        let out = hdiutil_style(args.iter().map(OsString::from));
        assert_eq!(
            out,
            [
                "dimg",
                "info",
                "--plist",
                "-x",
                "-notanoption",
                "--json",
                "-"
            ]
            .map(OsString::from)
        );
    }
}
