//! Looking inside images: listing a volume's folders and extracting files, without mounting.

use super::job::{Cancel, Progress};
use crate::container::{self, optical, sector, Container};
use crate::error::{Error, FormatError, Result};
use crate::fs::iso9660::DiscSectors;
use crate::fs::{self, components, DirEntry, EntryKind, Volume};
use crate::io::ReadAt;
use crate::partition::Partition;
use crate::secret::Passphrase;
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Which volume of an image: a partition as `info` numbers them (0 is the whole disk), and, in
/// a container of several volumes (APFS), which of them, counted from 0. Written "2" (every
/// volume of partition 2, or its only one) or "2.1" (the second volume in partition 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeId {
    pub partition: u32,
    pub within: Option<u32>,
    /// A snapshot of it, by the transaction it keeps ("2.1@57"); the live volume when none.
    pub snapshot: Option<u64>,
}

impl VolumeId {
    /// The id of volume `n` of the `count` in partition `partition`: the partition alone when it
    /// holds one.
    pub(crate) fn of(partition: u32, n: u32, count: usize) -> Self {
        VolumeId {
            partition,
            within: (count > 1).then_some(n),
            snapshot: None,
        }
    }

    /// Whether this names the volume at `within` of `partition`.
    pub fn names(&self, partition: u32, within: u32) -> bool {
        self.partition == partition && self.within.is_none_or(|w| w == within)
    }
}

impl std::fmt::Display for VolumeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.within {
            None => write!(f, "{}", self.partition)?,
            Some(w) => write!(f, "{}.{w}", self.partition)?,
        }
        match self.snapshot {
            Some(xid) => write!(f, "@{xid}"),
            None => Ok(()),
        }
    }
}

impl std::str::FromStr for VolumeId {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let number = |n: &str| n.parse::<u32>().ok();
        let (volume, snapshot) = match s.split_once('@') {
            Some((v, x)) => (v, Some(x.parse::<u64>().ok())),
            None => (s, None),
        };
        let id = match volume.split_once('.') {
            None => number(volume).map(|p| (p, None)),
            Some((p, w)) => number(p).zip(number(w)).map(|(p, w)| (p, Some(w))),
        };
        match (id, snapshot) {
            (Some((partition, within)), None | Some(Some(_))) => Ok(VolumeId {
                partition,
                within,
                snapshot: snapshot.flatten(),
            }),
            _ => Err(format!(
                "volume {s}: give a partition number, or partition.volume, then @transaction for \
                 a snapshot (as dimg info shows)"
            )),
        }
    }
}

impl Serialize for VolumeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for VolumeId {
    /// From "2.1", or from a bare partition number as front ends have always sent it.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Given {
            Partition(u32),
            Text(String),
        }
        match Given::deserialize(d)? {
            Given::Partition(partition) => Ok(VolumeId {
                partition,
                within: None,
                snapshot: None,
            }),
            Given::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A volume dimg can browse, where it lies.
pub struct FoundVolume {
    pub partition: Partition,
    pub id: VolumeId,
    pub volume: Box<dyn Volume>,
}

/// An image opened for attaching or browsing: its virtual disk, the places a volume can be, and
/// the volumes dimg can browse among them.
pub struct ImageVolumes {
    pub disk: Arc<dyn ReadAt>,
    pub partitions: Vec<Partition>,
    /// Each browsable volume, in the map's order and the container's.
    pub volumes: Vec<FoundVolume>,
    /// Why a recognised file system could not be browsed, when one could not.
    refusal: Option<std::io::Error>,
}

impl ImageVolumes {
    /// Why there is no volume to show: the first refusal, or that none was found.
    pub fn no_volume(&self) -> std::io::Error {
        match &self.refusal {
            Some(e) => std::io::Error::new(e.kind(), e.to_string()),
            None => FormatError::io("file system", 0, "no file system dimg can browse was found"),
        }
    }
}

/// Mounts the volumes at `place` on an opened image's disk. A volume at the start of a CD's
/// first track reaches the whole disc: its later tracks and its Mode 2 Form 2 sectors. An
/// encrypted volume (APFS) is unlocked with `passphrase`, where one is given; one still locked
/// says why ([`Volume::locked`]).
pub(crate) fn mount_place(
    container: &dyn Container,
    disk: &Arc<dyn ReadAt>,
    place: &Partition,
    passphrase: Option<&Passphrase>,
) -> std::io::Result<Vec<Box<dyn Volume>>> {
    let disc = container
        .tracks()
        .filter(|_| place.start == 0)
        .and_then(|tracks| optical::disc_views(&tracks))
        .map(|views| Arc::new(views) as Arc<dyn DiscSectors>);
    let mut volumes = fs::mount(Arc::new(place.open(disk.clone())), disc)?;
    if let Some(p) = passphrase {
        for v in volumes.iter_mut().filter(|v| v.locked().is_some()) {
            v.unlock(p);
        }
    }
    Ok(volumes)
}

/// A disc image's views are the sectors the ISO 9660 reader asks for.
impl DiscSectors for optical::DiscViews {
    fn form1(&self) -> Arc<dyn ReadAt> {
        self.form1.clone()
    }
    fn form2(&self) -> Arc<dyn ReadAt> {
        self.form2.clone()
    }
    fn form2_sector(&self) -> u64 {
        sector::FORM2_DATA as u64
    }
}

/// Opens `image` and mounts every volume dimg can browse in it, or only those `which` names.
pub fn volumes(
    image: &Path,
    passphrase: Option<&Passphrase>,
    which: Option<VolumeId>,
) -> Result<ImageVolumes> {
    volumes_of(&open_image(image, passphrase)?, image, passphrase, which)
}

/// Splits a target "IMAGE:/path" into the image file and the path inside it. The image part is
/// the longest prefix that exists (a file, or a sparse bundle folder), so image names with ':'
/// still work; a URL's image ends at the first ":/" after its scheme. The path may go on into
/// images inside the volume ("/Packages/Tool.pkg:/...").
pub fn split_target(target: &str) -> (PathBuf, String) {
    if Path::new(target).exists() {
        return (target.into(), "/".into());
    }
    // A URL's image ends at the first ":/" after its scheme's.
    if crate::remote::is_url(Path::new(target)) {
        let after = target.find("://").expect("a URL") + 3;
        return match target[after..].find(":/") {
            Some(i) => (target[..after + i].into(), target[after + i + 1..].into()),
            None => (target.into(), "/".into()),
        };
    }
    let ends = target
        .match_indices(":/")
        .map(|(i, _)| i)
        .collect::<Vec<_>>();
    for i in ends.into_iter().rev() {
        if Path::new(&target[..i]).exists() {
            return (target[..i].into(), target[i + 1..].into());
        }
    }
    (target.into(), "/".into())
}

/// The image `target` names: an image file (or a sparse bundle's folder), or an image file in
/// another image's volume — "Install.dmg:/Packages/Tool.pkg", to any depth — read through the
/// volumes that hold it, never copied.
pub fn open_image(target: &Path, passphrase: Option<&Passphrase>) -> Result<container::Opened> {
    let (outer, inner) = match target.to_str() {
        Some(text) if !target.exists() => split_target(text),
        _ => return container::open(target, passphrase),
    };
    if components(&inner).next().is_none() {
        return container::open(target, passphrase);
    }
    let (volume, last, shown) = volume_at(&outer, passphrase, None, &inner)?;
    open_inner(&*volume, &last, &shown, passphrase)
}

/// The image file at `path` in `volume` (which is `shown`), opened.
fn open_inner(
    volume: &dyn Volume,
    path: &str,
    shown: &Path,
    passphrase: Option<&Passphrase>,
) -> Result<container::Opened> {
    let named = PathBuf::from(format!("{}:{path}", shown.display()));
    let file = fs::lookup(volume, path).map_err(|e| Error::io(shown, e))?;
    if file.kind != EntryKind::File {
        return Err(Error::Refused {
            path: named,
            reason: "is not a file, so not an image".into(),
        });
    }
    let source = volume.open(&file).map_err(|e| Error::io(&named, e))?;
    container::open_source(source, None, passphrase).map_err(|e| match e {
        container::OpenError::Io(e) => Error::io(&named, e),
        container::OpenError::Unrecognized(detail) => Error::Unrecognized {
            path: named,
            detail: detail.into(),
        },
        container::OpenError::Unsupported(format) => Error::Unsupported {
            path: named,
            format,
        },
    })
}

/// Where a path continues into an image inside `volume`: the file's path and the rest, when a
/// ":/" follows the name of a file there.
fn into_image(volume: &dyn Volume, path: &str) -> Option<(String, String)> {
    path.match_indices(":/").map(|(i, _)| i).find_map(|i| {
        let file = fs::lookup(volume, &path[..i]).ok()?;
        (file.kind == EntryKind::File).then(|| (path[..i].to_string(), path[i + 1..].to_string()))
    })
}

/// The volume a path into `image` ends in, the path left in it, and the image it is in as
/// people name it ("outer.dmg:/Packages/Tool.pkg"). Each image a path continues into is read
/// through the volume holding it; its first volume dimg can browse is the one entered.
fn volume_at(
    image: &Path,
    passphrase: Option<&Passphrase>,
    which: Option<VolumeId>,
    path: &str,
) -> Result<(Box<dyn Volume>, String, PathBuf)> {
    let mut volume = volume(image, passphrase, which)?;
    let (mut rest, mut shown) = (path.to_string(), image.to_path_buf());
    while let Some((file, after)) = into_image(&*volume, &rest) {
        let opened = open_inner(&*volume, &file, &shown, passphrase)?;
        shown = PathBuf::from(format!("{}:{file}", shown.display()));
        volume = first_volume(volumes_of(&opened, &shown, passphrase, None)?, &shown)?;
        rest = after;
    }
    Ok((volume, rest, shown))
}

/// [`volumes`] of an image already opened (from `image`, which errors name); `passphrase`
/// unlocks its encrypted volumes.
pub fn volumes_of(
    opened: &container::Opened,
    image: &Path,
    passphrase: Option<&Passphrase>,
    which: Option<VolumeId>,
) -> Result<ImageVolumes> {
    let disk = opened.container.disk();
    let (_, partitions) = fs::places(&*disk).map_err(|e| Error::io(image, e))?;
    let missing = |problem: String| Error::io(image, FormatError::io("partition map", 0, problem));
    if let Some(id) = which {
        if !partitions.iter().any(|p| p.index == id.partition) {
            return Err(missing(format!(
                "has no partition {} (see dimg info)",
                id.partition
            )));
        }
    }
    let mut found = ImageVolumes {
        disk: disk.clone(),
        partitions: partitions.clone(),
        volumes: Vec::new(),
        refusal: None,
    };
    for p in partitions
        .into_iter()
        .filter(|p| which.is_none_or(|id| p.index == id.partition))
    {
        match mount_place(&*opened.container, &disk, &p, passphrase) {
            Ok(volumes) => {
                let count = volumes.len();
                for (n, volume) in (0u32..).zip(volumes) {
                    if which.is_some_and(|id| !id.names(p.index, n)) {
                        continue;
                    }
                    let mut id = VolumeId::of(p.index, n, count);
                    let volume = match which.and_then(|w| w.snapshot) {
                        Some(xid) => {
                            id.snapshot = Some(xid);
                            volume.at_snapshot(xid).map_err(|e| Error::io(image, e))?
                        }
                        None => volume,
                    };
                    found.volumes.push(FoundVolume {
                        partition: p.clone(),
                        id,
                        volume,
                    });
                }
            }
            Err(e) => found.refusal = found.refusal.or(Some(e)),
        }
    }
    if let Some(
        id @ VolumeId {
            within: Some(_), ..
        },
    ) = which
    {
        if found.volumes.is_empty() && found.refusal.is_none() {
            return Err(missing(format!("has no volume {id} (see dimg info)")));
        }
    }
    Ok(found)
}

/// The volume `which` names, or the first one dimg can browse. One still locked is why it is
/// (a passphrase needed, or wrong), before anything is read or written.
fn volume(
    image: &Path,
    passphrase: Option<&Passphrase>,
    which: Option<VolumeId>,
) -> Result<Box<dyn Volume>> {
    first_volume(volumes(image, passphrase, which)?, image)
}

/// The first of the volumes found in `image`, unless it is locked.
fn first_volume(mut found: ImageVolumes, image: &Path) -> Result<Box<dyn Volume>> {
    if found.volumes.is_empty() {
        return Err(Error::io(image, found.no_volume()));
    }
    let volume = found.volumes.remove(0).volume;
    match volume.locked() {
        Some(why) => Err(Error::io(image, why)),
        None => Ok(volume),
    }
}

/// The snapshots of the volume `which` names (or the first one dimg can browse), oldest first.
pub fn snapshots(
    image: &Path,
    passphrase: Option<&Passphrase>,
    which: Option<VolumeId>,
) -> Result<Vec<fs::Snapshot>> {
    volume(image, passphrase, which)?
        .snapshots()
        .map_err(|e| Error::io(image, e))
}

/// The volume `which` names as its snapshot `name` keeps it.
pub fn snapshot_named(
    image: &Path,
    passphrase: Option<&Passphrase>,
    which: Option<VolumeId>,
    name: &str,
) -> Result<VolumeId> {
    let found = volumes(image, passphrase, which)?;
    for v in &found.volumes {
        let list = v.volume.snapshots().map_err(|e| Error::io(image, e))?;
        if let Some(s) = list.iter().find(|s| s.name == name) {
            return Ok(VolumeId {
                snapshot: Some(s.xid),
                ..v.id
            });
        }
    }
    Err(Error::io(
        image,
        FormatError::io("volume", 0, format!("has no snapshot named “{name}”")),
    ))
}

#[derive(Debug, Serialize)]
pub struct Listing {
    pub volume: String,
    pub path: String,
    pub entries: Vec<DirEntry>,
    /// What the volume noticed while listing (a record that disagrees with itself, a journal
    /// not replayed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The entries of folder `path` of the image's volume (of a file: itself).
pub fn list(
    image: &Path,
    passphrase: Option<&Passphrase>,
    which: Option<VolumeId>,
    path: &str,
) -> Result<Listing> {
    listing(image, passphrase, which, path, |volume, dir| {
        // A file lists as itself, as `ls FILE` does.
        match dir.kind {
            EntryKind::Directory => volume.read_dir(&dir),
            _ => Ok(vec![dir]),
        }
    })
}

/// Every entry under folder `path`, named by its path from there, folders before their contents.
pub fn list_tree(
    image: &Path,
    passphrase: Option<&Passphrase>,
    which: Option<VolumeId>,
    path: &str,
) -> Result<Listing> {
    listing(image, passphrase, which, path, |volume, top| {
        let mut entries = Vec::new();
        walk(volume, &top, |path, e| {
            entries.push(DirEntry {
                name: path,
                ..e.clone()
            })
        })?;
        Ok(entries)
    })
}

/// The listing `entries` makes of what `path` names on the image's volume.
fn listing(
    image: &Path,
    passphrase: Option<&Passphrase>,
    which: Option<VolumeId>,
    path: &str,
    entries: impl FnOnce(&dyn Volume, DirEntry) -> std::io::Result<Vec<DirEntry>>,
) -> Result<Listing> {
    let (volume, path, image) = volume_at(image, passphrase, which, path)?;
    let path = path.as_str();
    let top = fs::lookup(&*volume, path).map_err(|e| Error::io(&image, e))?;
    Ok(Listing {
        entries: entries(&*volume, top).map_err(|e| Error::io(&image, e))?,
        warnings: volume.warnings(),
        volume: volume.label(),
        path: format!("/{}", components(path).collect::<Vec<_>>().join("/")),
    })
}

/// Calls `each(path from top, entry)` for every entry under `top`, depth first in listing order;
/// a directory met again (a loop) or too deep is listed but not entered.
fn walk(
    volume: &dyn Volume,
    top: &DirEntry,
    mut each: impl FnMut(String, &DirEntry),
) -> std::io::Result<()> {
    let mut entered = Entered::default();
    let mut stack = vec![(String::new(), top.clone(), Vec::new())];
    while let Some((path, e, ancestors)) = stack.pop() {
        if !ancestors.is_empty() {
            each(path.clone(), &e);
        }
        if e.kind == EntryKind::Directory && entered.may_enter(e.inode, &ancestors) {
            let mut mine = ancestors.clone();
            mine.push(e.inode);
            for child in volume.read_dir(&e)?.into_iter().rev() {
                let under = match path.as_str() {
                    "" => child.name.clone(),
                    _ => format!("{path}/{}", child.name),
                };
                stack.push((under, child, mine.clone()));
            }
        }
    }
    Ok(())
}

/// Times one folder is entered at most: folder hard links make a volume a graph, in which a
/// hostile one could make every folder reachable by a great many paths.
const MAX_ENTRIES_OF_A_FOLDER: u32 = 64;

/// Which folders a walk may enter: not one of its own ancestors (a loop), not deeper than
/// `MAX_DEPTH`, not one entered `MAX_ENTRIES_OF_A_FOLDER` times already. A folder linked at two
/// places is entered at both.
#[derive(Default)]
struct Entered(HashMap<u64, u32>);

impl Entered {
    fn may_enter(&mut self, inode: u64, ancestors: &[u64]) -> bool {
        if ancestors.len() >= MAX_DEPTH || ancestors.contains(&inode) {
            return false;
        }
        let times = self.0.entry(inode).or_default();
        *times += 1;
        *times <= MAX_ENTRIES_OF_A_FOLDER
    }
}

#[derive(Debug, Default, Serialize)]
pub struct ExtractReport {
    pub destination: PathBuf,
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// What was not extracted as stored, and why: names that would leave the folder or are not
    /// names at all, symlinks that point outside it, directories that loop.
    pub neutralised: Vec<String>,
    /// What could not be read, and why (a compression dimg does not know, data past the end of a
    /// cut image): left out, everything else extracted. Empty when extraction is strict.
    pub unreadable: Vec<String>,
}

/// Extracts `path` (a file or a folder, "/" for everything) of the image's volume into the new
/// folder `destination`. The folder appears only when extraction is complete; nothing is ever
/// written outside it. Modification times and permissions are kept where the volume has them.
/// A file or folder that cannot be read is left out and named in the report, as 7-Zip does,
/// unless `strict`: then it fails the whole extraction and nothing is left.
#[allow(clippy::too_many_arguments)]
pub fn extract(
    image: &Path,
    passphrase: Option<&Passphrase>,
    which: Option<VolumeId>,
    path: &str,
    destination: &Path,
    strict: bool,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ExtractReport> {
    check_destination(destination)?;
    let (volume, path, image) = volume_at(image, passphrase, which, path)?;
    let top = fs::lookup(&*volume, &path).map_err(|e| Error::io(&image, e))?;
    let shown = format!("/{}", components(&path).collect::<Vec<_>>().join("/"));
    let job = Extraction::new(&image, &*volume, destination, strict, progress, cancel);
    job.into_folder(|job, staging| {
        progress.begin("Extracting", job.total(&top)?);
        match top.kind {
            EntryKind::Directory => job.directory(&shown, &top, staging, 0),
            _ => job.entry(&shown, &top, staging, 0),
        }
    })
}

/// Extracts a bootable disc's boot images (El Torito), each a file named as 7-Zip names it,
/// into the new folder `destination`. They are not in the volume's tree, which shows only what
/// the disc's directories hold.
pub fn extract_boot(
    image: &Path,
    passphrase: Option<&Passphrase>,
    which: Option<VolumeId>,
    destination: &Path,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ExtractReport> {
    check_destination(destination)?;
    let volume = volume(image, passphrase, which)?;
    let images = volume.boot_files().map_err(|e| Error::io(image, e))?;
    if images.is_empty() {
        return Err(Error::Refused {
            path: image.into(),
            reason: "has no boot images (no El Torito boot catalog)".into(),
        });
    }
    let job = Extraction::new(image, &*volume, destination, true, progress, cancel);
    job.into_folder(|job, staging| {
        progress.begin("Extracting", images.iter().map(|e| e.size).sum());
        for e in &images {
            job.entry(&format!("/{}", e.name), e, &staging.join(&e.name), 1)?;
        }
        Ok(())
    })
}

/// Refuses a destination that is a file, or a folder that is not empty.
fn check_destination(destination: &Path) -> Result<()> {
    let refuse = |reason: &str| Error::Refused {
        path: destination.into(),
        reason: reason.into(),
    };
    let occupied = match std::fs::read_dir(destination) {
        Ok(mut d) => d.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(refuse("exists and is not a folder"))
        }
        Err(e) => return Err(Error::io(destination, e)),
    };
    match occupied {
        true => Err(refuse("exists and is not empty; choose a new folder")),
        false => Ok(()),
    }
}

const MAX_DEPTH: usize = 256;

struct Extraction<'a> {
    image: &'a Path,
    volume: &'a dyn Volume,
    root: PathBuf,
    report: ExtractReport,
    progress: &'a dyn Progress,
    cancel: &'a Cancel,
    /// Whether what cannot be read ends the extraction, rather than being left out.
    strict: bool,
    /// Directories entered, by inode: a directory met twice is a loop.
    /// The folders being extracted, outermost first: a folder among them is a loop.
    ancestors: Vec<u64>,
    entered: Entered,
    dir_times: Vec<(PathBuf, Option<i64>, Option<u32>)>,
}

/// A volume name as a safe file name, or `None` when it is not one at all.
fn safe_name(name: &str) -> Option<String> {
    match name {
        "" | "." | ".." => None,
        // HFS+ and Rock Ridge may store '/' in a name; macOS shows it as ':'.
        _ => Some(name.replace('/', ":").replace('\0', "_")),
    }
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

impl<'a> Extraction<'a> {
    fn new(
        image: &'a Path,
        volume: &'a dyn Volume,
        destination: &Path,
        strict: bool,
        progress: &'a dyn Progress,
        cancel: &'a Cancel,
    ) -> Self {
        Extraction {
            image,
            volume,
            root: PathBuf::new(),
            report: ExtractReport {
                destination: destination.into(),
                ..Default::default()
            },
            progress,
            cancel,
            strict,
            ancestors: Vec::new(),
            entered: Entered::default(),
            dir_times: Vec::new(),
        }
    }

    /// Runs `fill` on a staging folder beside the destination, which becomes the destination
    /// when it is done: a failure or a cancel leaves nothing.
    fn into_folder(
        mut self,
        fill: impl FnOnce(&mut Self, &Path) -> Result<()>,
    ) -> Result<ExtractReport> {
        let destination = self.report.destination.clone();
        let parent = super::output::folder_of(&destination).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let staging = super::output::staging(&parent).map_err(|e| Error::io(&parent, e))?;
        self.root = staging.path().to_path_buf();
        fill(&mut self, staging.path())?;
        self.finish_directories();
        if destination.exists() {
            std::fs::remove_dir(&destination).map_err(|e| Error::io(&destination, e))?;
        }
        let staged = staging.keep();
        std::fs::rename(&staged, &destination).map_err(|e| Error::io(&destination, e))?;
        Ok(self.report)
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::io(self.image, e)
    }

    /// What to do when `path` could not be read: fail (strict), or note it and go on.
    fn unreadable(&mut self, path: &str, e: std::io::Error) -> Result<()> {
        if self.strict {
            return Err(self.io(e));
        }
        self.report.unreadable.push(format!("{path}: {e}"));
        Ok(())
    }

    /// Bytes of file data under `entry`, for progress (directory loops counted once). A folder
    /// that cannot be listed is reported when extraction reaches it; until then, the total
    /// counts what could be listed.
    fn total(&self, entry: &DirEntry) -> Result<u64> {
        let mut total = 0;
        let listed = walk(self.volume, entry, |_, e| {
            if e.kind == EntryKind::File {
                total += e.size;
            }
        });
        match listed {
            Err(e) if self.strict => Err(self.io(e)),
            _ => Ok(total),
        }
    }

    /// Extracts the contents of directory `me`, shown to people as `path`, into `out`.
    fn directory(&mut self, path: &str, me: &DirEntry, out: &Path, depth: usize) -> Result<()> {
        if !self.entered.may_enter(me.inode, &self.ancestors) {
            let why = format!(
                "{path}: a directory loop (or deeper than {MAX_DEPTH}, or linked too often), \
                 not followed"
            );
            self.report.neutralised.push(why);
            return Ok(());
        }
        let children = match self.volume.read_dir(me) {
            Ok(children) => children,
            Err(e) => return self.unreadable(path, e),
        };
        self.ancestors.push(me.inode);
        let done = self.children(path, children, out, depth);
        self.ancestors.pop();
        done
    }

    fn children(
        &mut self,
        path: &str,
        children: Vec<DirEntry>,
        out: &Path,
        depth: usize,
    ) -> Result<()> {
        for child in children {
            self.cancel.check()?;
            let Some(name) = safe_name(&child.name) else {
                let why = format!("{path}: an entry named {:?}, skipped", child.name);
                self.report.neutralised.push(why);
                continue;
            };
            let shown = join(path, &child.name);
            if name != child.name {
                self.report
                    .neutralised
                    .push(format!("{shown}: extracted as {name:?}"));
            }
            self.entry(&shown, &child, &out.join(&name), depth + 1)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &str, e: &DirEntry, out: &Path, depth: usize) -> Result<()> {
        match &e.kind {
            EntryKind::Directory => {
                if out != self.root {
                    std::fs::create_dir(out).map_err(|err| Error::io(out, err))?;
                }
                self.streams(path, e, out)?;
                self.report.directories += 1;
                self.directory(path, e, out, depth)?;
                self.dir_times.push((out.to_path_buf(), e.modified, e.mode));
            }
            EntryKind::Symlink(target) => {
                if self.stays_inside(out, target) {
                    #[cfg(unix)]
                    std::os::unix::fs::symlink(target, out).map_err(|err| Error::io(out, err))?;
                    self.report.symlinks += 1;
                } else {
                    let why =
                        format!("{path}: symlink to {target:?} leaves the folder, not created");
                    self.report.neutralised.push(why);
                }
            }
            EntryKind::Special(what) => {
                self.report
                    .neutralised
                    .push(format!("{path}: a {what}, not extracted"));
            }
            EntryKind::File => {
                // A single file asked for lands inside the new folder, under its own name.
                let out = if out == self.root {
                    self.root
                        .join(safe_name(&e.name).unwrap_or_else(|| "file".into()))
                } else {
                    out.to_path_buf()
                };
                self.file(path, e, &out)?;
            }
        }
        Ok(())
    }

    /// A relative target that, resolved from the link's folder, stays under the root.
    fn stays_inside(&self, link: &Path, target: &str) -> bool {
        let parent = link.parent().unwrap_or(&self.root);
        let Ok(mut at) = parent.strip_prefix(&self.root).map(Path::to_path_buf) else {
            return false;
        };
        for c in Path::new(target).components() {
            match c {
                Component::Normal(n) => at.push(n),
                Component::CurDir => {}
                Component::ParentDir if at.pop() => {}
                _ => return false, // absolute, or above the root
            }
        }
        true
    }

    fn file(&mut self, path: &str, e: &DirEntry, out: &Path) -> Result<()> {
        let data = match self.volume.open(e) {
            Ok(data) => data,
            Err(err) => return self.unreadable(path, err),
        };
        let mut f = std::fs::File::create(out).map_err(|err| Error::io(out, err))?;
        // No bigger than the file: zeroing 1 MiB for each of many small files cost more than
        // reading them.
        let mut buf = vec![0u8; data.size().min(1 << 20) as usize];
        let mut at = 0;
        while at < data.size() {
            self.cancel.check()?;
            let n = (data.size() - at).min(buf.len() as u64) as usize;
            if let Err(err) = data.read_exact_at(at, &mut buf[..n]) {
                // Nothing half-written stays under the file's name.
                drop(f);
                std::fs::remove_file(out).map_err(|err| Error::io(out, err))?;
                return self.unreadable(path, err);
            }
            f.write_all(&buf[..n]).map_err(|err| Error::io(out, err))?;
            at += n as u64;
            self.report.bytes += n as u64;
            self.progress.advance(self.report.bytes);
        }
        self.streams(path, e, out)?;
        apply(&f, e.modified, e.mode);
        self.report.files += 1;
        Ok(())
    }

    /// A file's named streams become extended attributes, as macOS shows them: "user." and the
    /// attribute's name, the resource fork as "user.com.apple.ResourceFork". A resource fork the
    /// folder's file system has no room for there (ext4 keeps about 4 KiB of attributes, and no
    /// file system more than 64 KiB) goes beside the file as an AppleDouble `._NAME`, as macOS
    /// writes forks on such disks; `dimg create` takes it back. Another stream that cannot be
    /// kept is reported, not fatal.
    fn streams(&mut self, path: &str, e: &DirEntry, out: &Path) -> Result<()> {
        for stream in &e.streams {
            self.cancel.check()?;
            let fork = stream.name == "rsrc";
            let name = match fork {
                true => "user.com.apple.ResourceFork".to_string(),
                false => format!("user.{}", stream.name),
            };
            if stream.size > MAX_STREAM {
                match fork {
                    true => self.fork_beside(path, e, out)?,
                    false => self.report.neutralised.push(format!(
                        "{}: stream {} of {} bytes not kept",
                        e.name, stream.name, stream.size
                    )),
                }
                continue;
            }
            let read = self.volume.open_stream(e, &stream.name).and_then(|data| {
                let mut value = vec![0u8; data.size().min(MAX_STREAM) as usize];
                data.read_exact_at(0, &mut value).map(|()| value)
            });
            let value = match read {
                Ok(value) => value,
                Err(err) => {
                    self.unreadable(&format!("{path} (stream {})", stream.name), err)?;
                    continue;
                }
            };
            match xattr::set(out, &name, &value) {
                Ok(()) => {}
                Err(_) if fork => self.fork_beside(path, e, out)?,
                Err(err) => self.report.neutralised.push(format!(
                    "{}: stream {} not kept as {name}: {err}",
                    e.name, stream.name
                )),
            }
        }
        Ok(())
    }

    /// `e`'s resource fork as an AppleDouble `._NAME` beside `out`.
    fn fork_beside(&mut self, path: &str, e: &DirEntry, out: &Path) -> Result<()> {
        let written = self
            .volume
            .open_stream(e, "rsrc")
            .and_then(|fork| crate::wrapper::write_fork_beside(out, &*fork));
        match written {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                self.report.neutralised.push(format!(
                    "{}: resource fork not kept: ._{} is already there",
                    e.name, e.name
                ));
                Ok(())
            }
            Err(err) => self.unreadable(&format!("{path} (resource fork)"), err),
        }
    }

    /// Directory times last: writing their contents would change them.
    fn finish_directories(&mut self) {
        for (dir, modified, mode) in self.dir_times.drain(..).rev() {
            if let Ok(f) = std::fs::File::open(&dir) {
                apply(&f, modified, mode);
            }
        }
    }
}

/// Linux keeps an extended attribute in one file-system block or (ext4's ea_inode) up to 64 KiB.
const MAX_STREAM: u64 = 64 << 10;

/// Modification time and permissions, where known; best effort, like `cp -p`.
fn apply(f: &std::fs::File, modified: Option<i64>, mode: Option<u32>) {
    if let Some(t) = modified {
        let when = if t >= 0 {
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64)
        } else {
            std::time::UNIX_EPOCH - std::time::Duration::from_secs(t.unsigned_abs())
        };
        let _ = f.set_modified(when);
    }
    #[cfg(unix)]
    if let Some(m) = mode.filter(|m| *m & 0o700 != 0) {
        use std::os::unix::fs::PermissionsExt;
        let _ = f.set_permissions(std::fs::Permissions::from_mode(m & 0o777));
    }
}
