//! udisks2 on the system bus: the disks as the desktop knows them (it learns them from udev and
//! says when they change), and a device opened for a user who may not open it directly, through
//! OpenForBackup / OpenForRestore, which polkit authorises, as GNOME Disks does.

use super::{named_file_system, number, set_direct, Access, Device};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

const SERVICE: &str = "org.freedesktop.UDisks2";
const ROOT: &str = "/org/freedesktop/UDisks2";
const MANAGER: &str = "/org/freedesktop/UDisks2/Manager";
const BLOCK: &str = "org.freedesktop.UDisks2.Block";

type Properties = HashMap<String, OwnedValue>;
/// An object's interfaces, by their names without `org.freedesktop.UDisks2.`.
type Interfaces = HashMap<String, Properties>;

/// The system bus, if udisks2 runs on it. It is not started for a look: where it does not
/// already run, lsblk answers sooner.
fn bus() -> Option<Connection> {
    let bus = Connection::system().ok()?;
    let dbus = zbus::blocking::fdo::DBusProxy::new(&bus).ok()?;
    let service = zbus::names::BusName::try_from(SERVICE).ok()?;
    dbus.name_has_owner(service).ok()?.then_some(bus)
}

fn value<'a>(of: &'a Interfaces, interface: &str, name: &str) -> Option<&'a Value<'static>> {
    of.get(interface)?.get(name).map(|v| &**v)
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Str(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        _ => None,
    }
}

fn flag(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

fn whole(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::U64(n) => Some(*n),
        Value::U32(n) => Some(u64::from(*n)),
        _ => None,
    }
}

/// An object path; none for `/`, udisks2's "no such object".
fn object_path(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::ObjectPath(p) if p.as_str() != "/" => Some(p.to_string()),
        _ => None,
    }
}

/// A NUL-terminated byte string (`ay`), as udisks2 gives paths.
fn byte_path(v: &Value) -> Option<PathBuf> {
    let Value::Array(array) = v else { return None };
    let mut bytes: Vec<u8> = array
        .iter()
        .filter_map(|b| match b {
            Value::U8(b) => Some(*b),
            _ => None,
        })
        .collect();
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    (!bytes.is_empty()).then(|| PathBuf::from(OsString::from_vec(bytes)))
}

fn byte_paths(v: Option<&Value>) -> Vec<PathBuf> {
    match v {
        Some(Value::Array(array)) => array.iter().filter_map(byte_path).collect(),
        _ => Vec::new(),
    }
}

/// A block device udisks2 knows, with none of its partitions; none for one that holds nothing
/// (a loop device with nothing attached, an empty drive), nothing to list nor to sniff. A
/// device without a drive (virtio, a USB bridge that gives no serial, a loop device) is still
/// a disk.
fn device(of: &Interfaces, objects: &HashMap<String, Interfaces>) -> Option<Device> {
    let block = |name| value(of, "Block", name);
    let drive = object_path(block("Drive")).and_then(|d| objects.get(&d));
    let drive = |name| drive.and_then(|d| value(d, "Drive", name));
    let path = block("PreferredDevice")
        .and_then(byte_path)
        .or_else(|| block("Device").and_then(byte_path))?;
    let dev = whole(block("DeviceNumber"))?;
    let size = whole(block("Size")).filter(|&size| size > 0)?;
    let optical = matches!(drive("MediaCompatibility"),
        Some(Value::Array(media)) if media.iter().any(|m| matches!(m, Value::Str(s) if s.starts_with("optical"))));
    let kind = match () {
        _ if of.contains_key("Partition") => "part",
        _ if of.contains_key("Loop") => "loop",
        _ if optical => "rom",
        _ => "disk",
    };
    Some(Device {
        path,
        kind: kind.into(),
        size,
        model: text(drive("Model")),
        removable: flag(drive("Removable")),
        read_only: flag(block("ReadOnly")),
        file_system: named_file_system(text(block("IdType"))),
        label: text(block("IdLabel")),
        mount_points: byte_paths(value(of, "Filesystem", "MountPoints")),
        number: number(dev),
        partitions: Vec::new(),
    })
}

/// Every object udisks2 exports with its interfaces, by object path.
fn objects(bus: &Connection) -> Option<HashMap<String, Interfaces>> {
    let manager = zbus::blocking::fdo::ObjectManagerProxy::builder(bus)
        .destination(SERVICE)
        .ok()?
        .path(ROOT)
        .ok()?
        .build()
        .ok()?;
    let prefix = format!("{SERVICE}.");
    let objects = manager
        .get_managed_objects()
        .ok()?
        .into_iter()
        .map(|(object, interfaces)| {
            let interfaces = interfaces
                .into_iter()
                .map(|(name, properties)| {
                    let name = name.as_str();
                    (
                        name.strip_prefix(&prefix).unwrap_or(name).to_string(),
                        properties,
                    )
                })
                .collect();
            (object.to_string(), interfaces)
        })
        .collect();
    Some(objects)
}

/// Every block device udisks2 knows that holds something, by its number (major:minor), each
/// without its partitions; none if udisks2 does not run.
pub(super) fn devices() -> Option<HashMap<String, Device>> {
    let objects = objects(&bus()?)?;
    let devices = objects
        .values()
        .filter_map(|of| device(of, &objects))
        .map(|device| (device.number.clone(), device))
        .collect();
    Some(devices)
}

/// Opens `path` through udisks2, if it runs: none when it does not.
pub(super) fn open(path: &Path, access: Access) -> Option<io::Result<File>> {
    let bus = bus()?;
    Some(open_on(&bus, path, access))
}

fn open_on(bus: &Connection, path: &Path, access: Access) -> io::Result<File> {
    let refused = |e: zbus::Error| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("permission denied, and udisks2 would not open it either: {e}"),
        )
    };
    let object = resolve(bus, path)?.map_err(refused)?.ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "udisks2 does not know this device")
    })?;
    let none = &HashMap::<&str, Value>::new();
    let reply = match access {
        Access::Read => call_block(bus, &object, "OpenDevice", &("r", none)),
        Access::Backup => call_block(bus, &object, "OpenForBackup", &(none,)),
        Access::Write => call_block(bus, &object, "OpenForRestore", &(none,)),
    }
    .map_err(refused)?;
    let fd: zbus::zvariant::OwnedFd = reply.body().deserialize().map_err(refused)?;
    let file = File::from(std::os::fd::OwnedFd::from(fd));
    // OpenForBackup holds it exclusively; past the page cache is asked of the descriptor.
    if access == Access::Backup && !set_direct(&file, true) {
        return Err(io::Error::other("it does not take O_DIRECT"));
    }
    Ok(file)
}

/// udisks2's object for the device at `path`, if it knows one; an error for a path that cannot
/// be named on the bus, and the bus's error inside.
fn resolve(bus: &Connection, path: &Path) -> io::Result<zbus::Result<Option<OwnedObjectPath>>> {
    let name = path.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a device path that is not UTF-8",
        )
    })?;
    let asked = HashMap::from([("path", Value::from(name))]);
    let reply = bus.call_method(
        Some(SERVICE),
        MANAGER,
        Some("org.freedesktop.UDisks2.Manager"),
        "ResolveDevice",
        &(&asked, HashMap::<&str, Value>::new()),
    );
    Ok(reply.and_then(|reply| {
        let objects: Vec<OwnedObjectPath> = reply.body().deserialize()?;
        Ok(objects.into_iter().next())
    }))
}

/// A method of the Block interface of `object`.
fn call_block<B>(
    bus: &Connection,
    object: &OwnedObjectPath,
    method: &str,
    body: &B,
) -> zbus::Result<zbus::Message>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    bus.call_method(Some(SERVICE), object, Some(BLOCK), method, body)
}

/// Each signal udisks2 sends about its objects (a disk plugged or ejected, a loop device
/// attached, a volume mounted), as it comes; none if udisks2 does not run or knows no block
/// device at all, not even an empty loop device: it learns them from udev, and without udev (a
/// container) it tells of nothing.
pub(super) fn changes() -> Option<impl Iterator<Item = ()>> {
    let bus = bus()?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path_namespace(ROOT)
        .ok()?
        .build();
    let signals = zbus::blocking::MessageIterator::for_match_rule(rule, &bus, Some(256)).ok()?;
    // Asked after subscribing: a device udisks2 learns of meanwhile is still told of.
    objects(&bus)?
        .values()
        .any(|of| of.contains_key("Block"))
        .then_some(())?;
    Some(signals.map_while(|signal| signal.ok().map(drop)))
}

/// udisks2 asked to change the disks (format, partition, mount), as GNOME Disks asks it: each
/// change is authorised by polkit for the user who asks. Its refusals and failures come back
/// as a sentence.
pub(crate) struct Changer {
    bus: Connection,
}

/// A partition as udisks2 knows it: its device, and where it lies on its disk.
pub(crate) struct Slot {
    pub path: PathBuf,
    pub offset: u64,
    pub size: u64,
}

/// What udisks2 said, without the D-Bus error's name where it gave a message.
fn said(e: zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(_, Some(message), _) => message,
        other => other.to_string(),
    }
}

pub(crate) type Options<'a> = HashMap<&'a str, Value<'a>>;

impl Changer {
    /// The system bus, on which udisks2 is started on demand (D-Bus activation) where it does
    /// not run yet.
    pub(crate) fn new() -> Result<Changer, String> {
        let bus = Connection::system()
            .map_err(|e| format!("the system bus, on which udisks2 answers, is not there: {e}"))?;
        Ok(Changer { bus })
    }

    /// udisks2's object for `path`. A partition whose table was just changed is gone from
    /// udisks2 for a moment while the kernel reads the table again: it is waited for.
    fn object(&self, path: &Path) -> Result<OwnedObjectPath, String> {
        let start = std::time::Instant::now();
        loop {
            match resolve(&self.bus, path).map_err(|e| e.to_string())? {
                Ok(Some(object)) => return Ok(object),
                Ok(None) if start.elapsed() < std::time::Duration::from_secs(10) => {
                    std::thread::sleep(std::time::Duration::from_millis(100))
                }
                Ok(None) => return Err("udisks2 does not know this device".into()),
                Err(e) => return Err(format!("udisks2 does not answer: {}", said(e))),
            }
        }
    }

    fn call<B>(
        &self,
        object: &OwnedObjectPath,
        interface: &str,
        method: &str,
        body: &B,
    ) -> Result<zbus::Message, String>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let interface = format!("{SERVICE}.{interface}");
        self.bus
            .call_method(
                Some(SERVICE),
                object,
                Some(interface.as_str()),
                method,
                body,
            )
            .map_err(said)
    }

    /// A property of `object`.
    fn property(
        &self,
        object: &OwnedObjectPath,
        interface: &str,
        name: &str,
    ) -> Result<OwnedValue, String> {
        let interface = format!("{SERVICE}.{interface}");
        let reply = self
            .bus
            .call_method(
                Some(SERVICE),
                object,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(interface.as_str(), name),
            )
            .map_err(said)?;
        reply.body().deserialize().map_err(|e| e.to_string())
    }

    /// The device file of `object`.
    fn device_of(&self, object: &OwnedObjectPath) -> Result<PathBuf, String> {
        let device = self.property(object, "Block", "Device")?;
        byte_path(&device).ok_or_else(|| format!("udisks2 names no device file for {object}"))
    }

    /// Block.Format: `kind` is a file system (`vfat`, `exfat`, `ext4`, `ntfs`), a partition
    /// table (`gpt`, `dos`) or `empty` (every signature wiped).
    pub(crate) fn format(&self, path: &Path, kind: &str, options: Options) -> Result<(), String> {
        let object = self.object(path)?;
        self.call(&object, "Block", "Format", &(kind, options))
            .map(drop)
    }

    /// PartitionTable.CreatePartition, or CreatePartitionAndFormat with `format`: the new
    /// partition's device file.
    pub(crate) fn create_partition(
        &self,
        disk: &Path,
        (offset, size): (u64, u64),
        kind: &str,
        name: &str,
        format: Option<(&str, Options)>,
    ) -> Result<PathBuf, String> {
        let object = self.object(disk)?;
        let none = Options::new();
        let reply = match format {
            None => self.call(
                &object,
                "PartitionTable",
                "CreatePartition",
                &(offset, size, kind, name, none),
            )?,
            Some((fs, options)) => self.call(
                &object,
                "PartitionTable",
                "CreatePartitionAndFormat",
                &(offset, size, kind, name, none, fs, options),
            )?,
        };
        let created: OwnedObjectPath = reply.body().deserialize().map_err(|e| e.to_string())?;
        self.device_of(&created)
    }

    /// Partition.Delete.
    pub(crate) fn delete_partition(&self, path: &Path) -> Result<(), String> {
        let object = self.object(path)?;
        self.call(&object, "Partition", "Delete", &(Options::new(),))
            .map(drop)
    }

    /// Partition.Resize to `size` bytes (udisks2 rounds it up to the table's alignment).
    pub(crate) fn resize_partition(&self, path: &Path, size: u64) -> Result<(), String> {
        let object = self.object(path)?;
        self.call(&object, "Partition", "Resize", &(size, Options::new()))
            .map(drop)
    }

    /// Partition.SetType: a GPT type GUID, or an MBR type as `0xaf`.
    pub(crate) fn set_partition_type(&self, path: &Path, kind: &str) -> Result<(), String> {
        let object = self.object(path)?;
        self.call(&object, "Partition", "SetType", &(kind, Options::new()))
            .map(drop)
    }

    /// Partition.SetName: a GPT partition's name.
    pub(crate) fn set_partition_name(&self, path: &Path, name: &str) -> Result<(), String> {
        let object = self.object(path)?;
        self.call(&object, "Partition", "SetName", &(name, Options::new()))
            .map(drop)
    }

    /// The partition table of the disk at `path` (`gpt`, `dos`), none if it has none, and its
    /// partitions, in the order they lie on the disk.
    pub(crate) fn table(&self, path: &Path) -> Result<Option<(String, Vec<Slot>)>, String> {
        let object = self.object(path)?;
        let all = objects(&self.bus).ok_or("udisks2 does not list its objects")?;
        let Some(of) = all.get(object.as_str()) else {
            return Err("udisks2 does not know this device".into());
        };
        let Some(kind) = text(value(of, "PartitionTable", "Type")) else {
            return Ok(None);
        };
        let mut slots: Vec<Slot> = all
            .values()
            .filter(|p| {
                object_path(value(p, "Partition", "Table")).as_deref() == Some(object.as_str())
            })
            .filter_map(|p| {
                Some(Slot {
                    path: value(p, "Block", "Device").and_then(byte_path)?,
                    offset: whole(value(p, "Partition", "Offset"))?,
                    size: whole(value(p, "Partition", "Size"))?,
                })
            })
            .collect();
        slots.sort_by_key(|s| s.offset);
        Ok(Some((kind, slots)))
    }

    /// The partition table type (`gpt`, `dos`) of the partition at `path`.
    pub(crate) fn table_of(&self, path: &Path) -> Result<String, String> {
        let object = self.object(path)?;
        let table = self.property(&object, "Partition", "Table")?;
        let table = OwnedObjectPath::try_from(table).map_err(|e| e.to_string())?;
        let kind = self.property(&table, "PartitionTable", "Type")?;
        text(Some(&kind)).ok_or_else(|| "udisks2 names no type for its partition table".into())
    }

    /// Filesystem.Mount: where udisks2 mounted it.
    pub(crate) fn mount(&self, path: &Path) -> Result<PathBuf, String> {
        let object = self.object(path)?;
        let reply = self.call(&object, "Filesystem", "Mount", &(Options::new(),))?;
        let point: String = reply.body().deserialize().map_err(|e| e.to_string())?;
        Ok(PathBuf::from(point))
    }

    /// Filesystem.Unmount; with `force`, lazily (it goes when the last file on it is closed).
    pub(crate) fn unmount(&self, path: &Path, force: bool) -> Result<(), String> {
        let object = self.object(path)?;
        let options = Options::from([("force", Value::from(force))]);
        self.call(&object, "Filesystem", "Unmount", &(options,))
            .map(drop)
    }

    /// Block.Rescan: the kernel reads the device again (a disk's partition table) and udev
    /// and udisks2 learn what it holds now.
    pub(crate) fn rescan(&self, path: &Path) -> Result<(), String> {
        let object = self.object(path)?;
        self.call(&object, "Block", "Rescan", &(Options::new(),))
            .map(drop)
    }
}
