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
        number: number(dev as libc::dev_t),
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
    let name = path.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a device path that is not UTF-8",
        )
    })?;
    let asked = HashMap::from([("path", Value::from(name))]);
    let reply = bus
        .call_method(
            Some(SERVICE),
            MANAGER,
            Some("org.freedesktop.UDisks2.Manager"),
            "ResolveDevice",
            &(&asked, HashMap::<&str, Value>::new()),
        )
        .map_err(refused)?;
    let objects: Vec<OwnedObjectPath> = reply.body().deserialize().map_err(refused)?;
    let object = objects.into_iter().next().ok_or_else(|| {
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
