use crate::args::OutputArgs;
use dimg::device::{Device, MountChange};
use dimg::fs::EntryKind;
use dimg::ops::text::size;
use dimg::ops::{Limits, Listing};
use serde::Serialize;
use std::fmt::Write;

/// How results are printed: for people, or for scripts.
pub enum Output {
    Text,
    Json,
    Plist,
}

impl From<OutputArgs> for Output {
    fn from(a: OutputArgs) -> Self {
        if a.json {
            Output::Json
        } else if a.plist {
            Output::Plist
        } else {
            Output::Text
        }
    }
}

impl Output {
    /// Writes the result to standard output; a reader that stopped early (`dimg ls | head`) ends
    /// the program quietly, as ripgrep does, instead of a panic.
    pub fn print<T: Serialize>(&self, value: &T, text: fn(&T) -> String) {
        let shown = match self {
            Output::Text => text(value).into_bytes(),
            Output::Json => {
                let mut json = serde_json::to_vec_pretty(value).expect("results serialize to JSON");
                json.push(b'\n');
                json
            }
            Output::Plist => {
                let mut xml = Vec::new();
                plist::to_writer_xml(&mut xml, value)
                    .expect("results serialize to a property list");
                xml.push(b'\n');
                xml
            }
        };
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(&shown).and_then(|()| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("dimg: standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// One snapshot a line: name, transaction, when it was taken.
pub fn snapshots_text(list: &Vec<dimg::fs::Snapshot>) -> String {
    let mut s = String::new();
    for snap in list {
        let when = snap.created.map(date).unwrap_or_default();
        let _ = writeln!(s, "{}\t{}\t{when}", snap.name, snap.xid);
    }
    s
}

/// As `hdiutil resize -limits` prints them: minimum, current and maximum, in sectors.
pub fn limits_text(l: &Limits) -> String {
    format!(
        "{}\t{}\t{}\n",
        l.minimum / 512,
        l.current / 512,
        l.maximum / 512
    )
}

/// `dimg list`: each disk, its partitions under it, as diskutil list shows them.
pub fn devices_text(disks: &Vec<Device>) -> String {
    fn add(s: &mut String, d: &Device, depth: usize) {
        let mut about: Vec<String> = Vec::new();
        about.extend(d.model.clone());
        about.push(
            match d.removable {
                true => "removable",
                false => "internal",
            }
            .into(),
        );
        about.extend(d.file_system.clone());
        about.extend(d.label.as_ref().map(|l| format!("“{l}”")));
        about.extend(
            d.mount_points
                .iter()
                .map(|m| format!("mounted at {}", m.display())),
        );
        let _ = writeln!(
            s,
            "{:indent$}{:<18} {:<5} {:<28} {}",
            "",
            d.path.display(),
            d.kind,
            size(d.size),
            about.join(", "),
            indent = depth * 2
        );
        for p in &d.partitions {
            add(s, p, depth + 1);
        }
    }
    let mut s = String::new();
    for d in disks {
        add(&mut s, d, 0);
    }
    s
}

/// `dimg mount`'s result (a Vec, as `Output::print` hands it over).
#[allow(clippy::ptr_arg)]
pub fn mounted_text(m: &Vec<MountChange>) -> String {
    mount_changes(m, "mounted at")
}

#[allow(clippy::ptr_arg)]
pub fn unmounted_text(m: &Vec<MountChange>) -> String {
    mount_changes(m, "unmounted from")
}

fn mount_changes(m: &[MountChange], what: &str) -> String {
    m.iter()
        .map(|m| {
            format!(
                "{} {what} {}\n",
                m.device.display(),
                m.mount_point.display()
            )
        })
        .collect()
}

pub fn listing_short(l: &Listing) -> String {
    l.entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::Directory => format!("{}/\n", e.name),
            _ => format!("{}\n", e.name),
        })
        .collect()
}

pub fn listing_long(l: &Listing) -> String {
    let mut s = String::new();
    for e in &l.entries {
        let (kind, tail) = match &e.kind {
            EntryKind::Directory => ('d', String::new()),
            EntryKind::File => ('-', String::new()),
            EntryKind::Symlink(t) => ('l', format!(" -> {t}")),
            EntryKind::Special(what) => ('c', format!(" ({what})")),
        };
        let mode = e
            .mode
            .map(|m| format!("{m:04o}"))
            .unwrap_or_else(|| "----".into());
        let when = e.modified.map(date).unwrap_or_else(|| "-".repeat(19));
        let _ = writeln!(s, "{kind} {mode} {:>14} {when}  {}{tail}", e.size, e.name);
        for stream in &e.streams {
            let blank = " ".repeat(19);
            let _ = writeln!(
                s,
                "@ ---- {:>14} {blank}  {}:{}",
                stream.size, e.name, stream.name
            );
        }
    }
    s
}

/// "2024-11-17 15:13:41" (UTC) from seconds since 1970.
fn date(t: i64) -> String {
    let (y, m, d, h, mi, s) = dimg::fs::civil(t);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// One line per mount, as `hdiutil attach` prints them: where, what, which partition; for a
/// `-nomount` disk, its files.
pub fn attachment_text(a: &dimg_mount::Attachment) -> String {
    let mut s = String::new();
    for m in &a.mounts {
        match m.volume {
            Some(v) => {
                let _ = writeln!(
                    s,
                    "{}\t{}\tvolume {v}\t{}",
                    m.mount_point.display(),
                    m.file_system,
                    m.name
                );
            }
            None => {
                let access = if a.writable {
                    "read/write"
                } else {
                    "read-only"
                };
                for f in &m.files {
                    let _ = writeln!(s, "{}\t{access}", f.display());
                }
            }
        }
    }
    s
}

/// What is attached, as `hdiutil info` lists it.
pub fn attached_text(all: &Vec<dimg_mount::Attachment>) -> String {
    if all.is_empty() {
        return "nothing is attached\n".into();
    }
    let mut s = String::new();
    for a in all {
        let state = if a.running {
            "serving"
        } else {
            "server gone: detach clears it"
        };
        let _ = writeln!(s, "image: {}", a.image.display());
        let _ = writeln!(
            s,
            "  server: pid {} ({state}), log {}",
            a.pid,
            a.log.display()
        );
        for line in attachment_text(a).lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    s
}

pub fn detached_text(d: &dimg_mount::Detached) -> String {
    let mut s = String::new();
    for point in &d.unmounted {
        let _ = writeln!(s, "\"{}\" unmounted.", point.display());
    }
    for holder in &d.cut_off {
        let _ = writeln!(
            s,
            "{holder} still had files open: what it wrote before is kept, what it does after fails."
        );
    }
    if let Some(image) = &d.image {
        let _ = writeln!(s, "\"{}\" ejected.", image.display());
    }
    s
}

/// What `isencrypted` reports.
#[derive(Serialize)]
pub struct Encrypted {
    pub path: std::path::PathBuf,
    pub encrypted: bool,
    pub encryption: Option<&'static str>,
}

pub fn encrypted_text(e: &Encrypted) -> String {
    match e.encryption {
        Some(kind) => format!("encrypted: YES ({kind})\n"),
        None => "encrypted: NO\n".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(super::date(0), "1970-01-01 00:00:00");
        assert_eq!(super::date(1_731_852_821), "2024-11-17 14:13:41");
        assert_eq!(super::date(951_782_400), "2000-02-29 00:00:00");
    }
}
