//! What each operation's report says to a person: the text `dimg` prints, and what the app
//! shows under Show Details. Sizes are decimal (KB, MB, GB), as a Mac gives them.

use super::{
    BurnReport, CompactReport, ConvertReport, EraseReport, ExtractReport, FirstAidReport,
    ImageInfo, PartitionReport, ResizeReport, RestoreReport, VerifyReport,
};
use std::fmt::Write;

/// "405,504 bytes (396.0 KiB)".
/// "405,504 bytes (405.5 KB)": exact bytes with thousands separators, then decimal units as a
/// Mac shows sizes (1 KB = 1,000 bytes).
pub fn size(bytes: u64) -> String {
    match decimal(bytes) {
        Some(scaled) => format!("{} bytes ({scaled})", grouped(bytes)),
        None => format!("{} bytes", grouped(bytes)),
    }
}

/// "405.5 KB", "20 MB", "1.2 GB"; `None` under 1,000 bytes, where the bytes say it.
pub fn decimal(bytes: u64) -> Option<String> {
    let mut value = bytes as f64;
    let mut unit = None;
    // A value that rounds to 1000 of a unit is 1 of the next: 999,950 bytes is "1 MB".
    let tenths = |v: f64| (v * 10.0).round() / 10.0;
    for u in ["KB", "MB", "GB", "TB", "PB"] {
        if tenths(value) < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = Some(u);
    }
    let unit = unit?;
    // Tenths rounded half up, as the app's page rounds them (Math.round), so both say the same.
    let shown = format!("{:.1}", tenths(value));
    Some(format!(
        "{} {unit}",
        shown.strip_suffix(".0").unwrap_or(&shown)
    ))
}

/// "405,504".
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn info(i: &ImageInfo) -> String {
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
                about.push(match v.locked {
                    true => "encrypted, locked".into(),
                    false => "encrypted, unlocked".into(),
                });
            }
            if let Some(hint) = &v.passphrase_hint {
                about.push(format!("password hint “{hint}”"));
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
    for text in i.agreement.iter().flat_map(|a| &a.languages) {
        let _ = writeln!(
            s,
            "  Licence agreement ({}, {}):",
            text.language, text.format
        );
        for line in text.text.lines() {
            let _ = writeln!(s, "    {line}");
        }
    }
    s
}

pub fn compact(r: &CompactReport) -> String {
    format!(
        "{}: {} bands given back, {} reclaimed ({} of the disk is free)\n",
        r.path.display(),
        r.bands_dropped,
        size(r.reclaimed),
        size(r.free)
    )
}

pub fn resize(r: &ResizeReport) -> String {
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

/// As `hdiutil checksum` ends: the type, then the value in capitals after a '$'.
pub fn checksum(r: &super::ChecksumReport) -> String {
    format!(
        "calculated {} ${}\n",
        r.kind,
        r.checksum.to_ascii_uppercase()
    )
}

pub fn verify(r: &VerifyReport) -> String {
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
pub fn first_aid(r: &FirstAidReport) -> String {
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

pub fn convert(r: &ConvertReport) -> String {
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

pub fn burn(r: &BurnReport) -> String {
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

pub fn restore(r: &RestoreReport) -> String {
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

pub fn extract(r: &ExtractReport) -> String {
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

pub fn erase(r: &EraseReport) -> String {
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

pub fn partition(r: &PartitionReport) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_decimal_with_exact_bytes_first() {
        assert_eq!(size(0), "0 bytes");
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(1023), "1,023 bytes (1 KB)");
        assert_eq!(size(10_510_336), "10,510,336 bytes (10.5 MB)");
        assert_eq!(size(405_504), "405,504 bytes (405.5 KB)");
        assert_eq!(size(20_000_000), "20,000,000 bytes (20 MB)");
        assert_eq!(size(1_234_567_890_123), "1,234,567,890,123 bytes (1.2 TB)");
        assert_eq!(decimal(999), None);
        assert_eq!(decimal(1_000).as_deref(), Some("1 KB"));
        assert_eq!(decimal(999_949).as_deref(), Some("999.9 KB"));
        assert_eq!(decimal(999_950).as_deref(), Some("1 MB"));
        assert_eq!(decimal(999_999).as_deref(), Some("1 MB"));
    }
}
