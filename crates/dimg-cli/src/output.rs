use crate::args::OutputArgs;
use dimg::device::{Device, MountChange};
use dimg::fs::EntryKind;
use dimg::ops::{
    BurnReport, CompactReport, ConvertReport, EraseReport, ExtractReport, FirstAidReport,
    ImageInfo, Limits, Listing, PartitionReport, ResizeReport, RestoreReport, VerifyReport,
};
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

/// "405,504 bytes (396.0 KiB)".
fn size(bytes: u64) -> String {
    let digits = bytes.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let units = ["KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = "";
    for u in units {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if unit.is_empty() {
        format!("{grouped} bytes")
    } else {
        format!("{grouped} bytes ({value:.1} {unit})")
    }
}

pub fn info_text(i: &ImageInfo) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", i.path.display());
    let _ = writeln!(s, "  {:<17}{}", "Format:", i.format);
    let _ = writeln!(s, "  {:<17}{}", "File size:", size(i.file_size));
    let _ = writeln!(
        s,
        "  {:<17}{}, {} sectors",
        "Disk size:",
        size(i.disk_size),
        i.sectors
    );
    let recognised = if i.recognised.is_empty() {
        "nothing (a blank or unformatted disk)".to_string()
    } else {
        i.recognised.join(", ")
    };
    let _ = writeln!(s, "  {:<17}{recognised}", "Recognised:");
    for f in &i.facts {
        let _ = writeln!(s, "  {:<17}{}", format!("{}:", f.label), f.value);
    }
    let _ = writeln!(s, "  {:<17}{}", "Partitions:", i.partition_scheme);
    for p in &i.partitions {
        let _ = writeln!(
            s,
            "    {:>2}  {:<20} {:<22} start {:>12}  size {:<28} {}",
            p.partition.index,
            p.partition.name,
            p.partition.kind,
            p.partition.start,
            size(p.partition.size),
            p.file_system.unwrap_or("unknown file system")
        );
        for v in &p.volumes {
            let mut about: Vec<String> = v.role.iter().map(|r| format!("role {r}")).collect();
            about.extend(v.used.map(|u| format!("{} used", size(u))));
            about.extend(v.available.map(|a| format!("{} available", size(a))));
            about.extend(
                v.counts
                    .map(|c| format!("{} files, {} folders", c.files, c.folders)),
            );
            if v.encrypted {
                about.push("encrypted".into());
            }
            let about = match about.is_empty() {
                true => String::new(),
                false => format!(", {}", about.join(", ")),
            };
            // A container of several volumes: each says how -volume names it.
            let id = match v.id.within {
                Some(_) => format!(" (-volume {})", v.id),
                None => String::new(),
            };
            let _ = writeln!(s, "        volume “{}”{id}{about}", v.name);
            for snap in &v.snapshots {
                let _ = writeln!(
                    s,
                    "          snapshot “{}” (-volume {}@{})",
                    snap.name, v.id, snap.xid
                );
            }
        }
    }
    s
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

pub fn compact_text(r: &CompactReport) -> String {
    format!(
        "{}: {} bands given back, {} reclaimed ({} of the disk is free)\n",
        r.path.display(),
        r.bands_dropped,
        size(r.reclaimed),
        size(r.free)
    )
}

pub fn resize_text(r: &ResizeReport) -> String {
    let shadow = r
        .shadow
        .as_ref()
        .map(|s| format!(" (in its shadow {})", s.display()))
        .unwrap_or_default();
    format!(
        "{}: resized from {} to {}{shadow}\n",
        r.path.display(),
        size(r.old_size),
        size(r.new_size)
    )
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

pub fn verify_text(r: &VerifyReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", r.path.display());
    let _ = writeln!(s, "  {:<17}{}", "Format:", r.format);
    let _ = writeln!(s, "  {:<17}{}", "Read:", size(r.bytes));
    let _ = writeln!(s, "  {:<17}{}", "CRC-32:", r.crc32);
    let _ = writeln!(s, "  {:<17}{}", "SHA-256:", r.sha256);
    for c in &r.checks {
        let verdict = if c.ok { "ok" } else { "MISMATCH" };
        let _ = writeln!(
            s,
            "  {verdict:<9} {} (stored {}, computed {})",
            c.name, c.stored, c.computed
        );
    }
    let _ = writeln!(s, "{}", if r.ok { "verified OK" } else { "verify FAILED" });
    s
}

/// A line per problem and per repair, naming the volume and the structure or file; then what
/// was checked, and a last line that sums it up.
pub fn first_aid_text(r: &FirstAidReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", r.path.display());
    for v in &r.volumes {
        let volume = format!("volume {} ({})", v.partition, v.file_system);
        if !v.checked {
            let _ = writeln!(
                s,
                "  {volume}: not checked: dimg checks HFS+ and FAT volumes"
            );
            continue;
        }
        for change in &v.repaired {
            let _ = writeln!(s, "  {volume}: repaired {change}");
        }
        for p in &v.problems {
            let _ = writeln!(s, "  {volume}: {p}");
        }
        let counted: Vec<String> = v.counted.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let verdict = match v.problems.len() {
            0 => "OK".to_string(),
            n => counted_noun(n, "problem"),
        };
        let _ = writeln!(s, "  {volume}: {verdict} ({})", counted.join(", "));
    }
    let checked = r.volumes.iter().filter(|v| v.checked).count();
    let problems: usize = r.volumes.iter().map(|v| v.problems.len()).sum();
    let repaired: usize = r.volumes.iter().map(|v| v.repaired.len()).sum();
    let mut last = match (checked, problems) {
        (0, _) => "no volume dimg checks".to_string(),
        (n, 0) => format!("{} checked: OK", counted_noun(n, "volume")),
        (n, p) => format!(
            "{} checked: {}",
            counted_noun(n, "volume"),
            counted_noun(p, "problem")
        ),
    };
    if repaired > 0 {
        last.push_str(&format!(", {} made", counted_noun(repaired, "repair")));
    }
    let _ = writeln!(s, "{last}");
    s
}

/// "1 problem", "2 problems".
fn counted_noun(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

pub fn convert_text(r: &ConvertReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} -> {}", r.source.display(), r.output.display());
    let _ = writeln!(s, "  {:<17}{}", "Format:", r.format);
    let _ = writeln!(s, "  {:<17}{}", "Disk:", size(r.bytes));
    let _ = writeln!(s, "  {:<17}{}", "Written:", size(r.output_size));
    for note in &r.notes {
        let _ = writeln!(s, "  {:<17}{note}", "Note:");
    }
    s
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

pub fn burn_text(r: &BurnReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} -> {}", r.image.display(), r.device);
    let _ = writeln!(s, "  {:<17}{}", "Burner:", r.command.join(" "));
    let done = match (r.simulated, r.verified) {
        _ if r.dry_run => "dry run: nothing was prepared or burnt".to_string(),
        (true, _) => "simulated (-testburn): nothing was written".to_string(),
        (false, Some(n)) => format!("burnt; {} read back from the disc: identical", size(n)),
        (false, None) => "burnt (not read back)".to_string(),
    };
    let _ = writeln!(s, "  {:<17}{done}", "Result:");
    if let Some(sha) = &r.sha256 {
        let _ = writeln!(s, "  {:<17}{sha}", "SHA-256:");
    }
    s
}

pub fn restore_text(r: &RestoreReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "restored onto {}", r.target.display());
    let _ = writeln!(s, "  {:<17}{}", "Written:", size(r.written));
    if let Some(sha) = &r.sha256 {
        let _ = writeln!(s, "  {:<17}{sha}", "SHA-256:");
    }
    let checked = match r.verified {
        true => "read back from the device: identical",
        false => "not read back (-noverify)",
    };
    let _ = writeln!(s, "  {:<17}{checked}", "Verified:");
    s
}

pub fn erase_text(r: &EraseReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "erased {}", r.device.display());
    if let Some(scheme) = r.scheme {
        let _ = writeln!(s, "  {:<17}{scheme:?}", "Scheme:");
    }
    let _ = writeln!(s, "  {:<17}{}", "Volume:", r.volume.display());
    let _ = writeln!(s, "  {:<17}{}", "File system:", r.file_system);
    let _ = writeln!(s, "  {:<17}{}", "Name:", r.name);
    let _ = writeln!(s, "  {:<17}{}", "Size:", size(r.size));
    s
}

pub fn partition_text(r: &PartitionReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} {}", r.action, r.partition.display());
    let _ = writeln!(s, "  {:<17}{}", "Disk:", r.disk.display());
    let _ = writeln!(s, "  {:<17}{}", "Offset:", size(r.offset));
    let _ = writeln!(s, "  {:<17}{}", "Size:", size(r.size));
    if let Some(fs) = r.file_system {
        let _ = writeln!(s, "  {:<17}{fs}", "File system:");
    }
    for note in &r.notes {
        let _ = writeln!(s, "  note: {note}");
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

pub fn extract_text(r: &ExtractReport) -> String {
    let mut s = format!(
        "{}: {} files, {} folders, {} symlinks, {}\n",
        r.destination.display(),
        r.files,
        r.directories,
        r.symlinks,
        size(r.bytes)
    );
    for n in &r.neutralised {
        let _ = writeln!(s, "  not as stored: {n}");
    }
    for n in &r.unreadable {
        let _ = writeln!(s, "  not readable, left out: {n}");
    }
    s
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

    #[test]
    fn sizes_are_grouped_and_scaled() {
        assert_eq!(super::size(0), "0 bytes");
        assert_eq!(super::size(1023), "1,023 bytes");
        assert_eq!(super::size(405_504), "405,504 bytes (396.0 KiB)");
        assert_eq!(super::size(10_510_336), "10,510,336 bytes (10.0 MiB)");
    }
}
