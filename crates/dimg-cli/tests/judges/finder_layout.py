#!/usr/bin/env python3
"""Judges the Finder layout of the HFS+ volume at OFFSET in a raw disk with the Python packages the
Mac tooling itself uses. Usage: finder_layout.py DISK OFFSET SETTINGS.json SRC_FOLDER [--no-dmgbuild]

- libyal's pyfshfs reads the volume: the root's entries, the catalog IDs and dates, the .DS_Store;
- ds-store reads every record of that .DS_Store, each compared with the settings;
- mac-alias reads the background's alias and bookmark, and builds the alias Alias.for_file makes
  on a Mac from the same facts (volume, folder, IDs, dates): the bytes must be equal;
- dmgbuild's own build_dmg runs with the settings, its calls to hdiutil, ditto and SetFile standing
  in for a Mac (they only copy files into a folder and note the Finder flags asked for): every
  record of the .DS_Store it writes must be in dimg's with the same value.

Prints a JSON report: the root's names and links, the records checked, and the Finder flags dmgbuild asked
for by name (which the caller checks in the catalog). Exits non-zero on any difference."""
import datetime
import json
import os
import platform
import plistlib
import shutil
import sys
import tempfile
import types

import pyfshfs
from ds_store import DSStore
from mac_alias import Alias, TargetInfo, VolumeInfo

sys.path.insert(0, os.path.dirname(__file__))
from pyfshfs_files import Window  # noqa: E402

disk, offset, settings_path, src = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with_dmgbuild = sys.argv[5:] != ["--no-dmgbuild"]
settings = json.load(open(settings_path))
base = os.path.dirname(os.path.abspath(settings_path))
failures = []


def expect(what, got, want):
    if got != want:
        failures.append(f"{what}: got {got!r}, want {want!r}")


volume = pyfshfs.volume()
volume.open_file_object(Window(disk, offset))
root = volume.get_root_directory()
names = sorted(e.name for e in root.sub_file_entries)
links = {e.name: e.symbolic_link_target for e in root.sub_file_entries if e.symbolic_link_target}
store_entry = volume.get_file_entry_by_path("/.DS_Store")
store_bytes = store_entry.read_buffer(store_entry.size)


def records_of(data):
    with tempfile.NamedTemporaryFile(suffix=".DS_Store") as f:
        f.write(data)
        f.flush()
        with DSStore.open(f.name, "r") as d:
            return {(e.filename, e.code.decode()): e.value for e in d}


ours = records_of(store_bytes)

# ds-store: every record as the settings say.
(x, y), (w, h) = settings["window_rect"]
bwsp = ours[(".", "bwsp")]
expect("bwsp WindowBounds", bwsp["WindowBounds"], f"{{{{{x}, {y}}}, {{{w}, {h}}}}}")
for key in ["ShowToolbar", "ShowSidebar", "ShowStatusBar", "ShowPathbar"]:
    expect(f"bwsp {key}", bwsp[key], False)
icvp = ours[(".", "icvp")]
expect("icvp iconSize", icvp["iconSize"], float(settings["icon_size"]))
expect("icvp textSize", icvp["textSize"], float(settings["text_size"]))
expect("vSrn", ours[(".", "vSrn")], 1)
expect("icvl", ours[(".", "icvl")], b"icnv")
for name, point in settings["icon_locations"].items():
    expect(f"Iloc of {name}", ours.get((name, "Iloc")), tuple(point))

def utc(entry):
    """An entry's creation date, which pyfshfs gives in UTC without saying so."""
    return entry.get_creation_time().replace(microsecond=0, tzinfo=datetime.timezone.utc)


volume_name = volume.name
background = settings.get("background", "")
if background.startswith("#"):
    # A colour: #rrggbb as fractions of 255, as dmgbuild's colour parser gives them.
    expect("icvp backgroundType", icvp["backgroundType"], 1)
    rgb = [int(background[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    got = [icvp[f"backgroundColor{c}"] for c in ("Red", "Green", "Blue")]
    expect("icvp background colour", got, rgb)
    made = None
else:
    expect("icvp backgroundType", icvp["backgroundType"], 2)
    # mac-alias: the background's alias and bookmark point at the picture in .background/.
    picture = os.path.basename(settings["background"])
    folder = volume.get_file_entry_by_path("/.background")
    target = volume.get_file_entry_by_path("/.background/" + picture)
    alias = Alias.from_bytes(icvp["backgroundImageAlias"])
    expect("alias target", alias.target.filename, picture)
    expect("alias folder ID", alias.target.folder_cnid, folder.identifier)
    expect("alias file ID", alias.target.cnid, target.identifier)
    expect("alias volume", alias.volume.name, volume_name)
    expect("alias POSIX path", alias.target.posix_path, "/.background/" + picture)
    expect("alias mount point", alias.volume.posix_path, "/Volumes/" + volume_name)
    crtime = utc(target)
    expect("alias file date", alias.target.creation_date, crtime)
    # What Alias.for_file builds on a Mac for the same file, by mac-alias's own writer.
    made = Alias()
    made.volume = VolumeInfo(volume_name, utc(root), b"H+", 0, 0, b"\0\0")
    made.volume.posix_path = "/Volumes/" + volume_name
    made.target = TargetInfo(
        0, picture, folder.identifier, target.identifier, crtime, b"\0" * 4, b"\0" * 4
    )
    made.target.folder_name = ".background"
    made.target.posix_path = "/.background/" + picture
    made.target.carbon_path = f"{volume_name}:.background:\0{picture}"
    made.target.cnid_path = [folder.identifier]
    expect("alias bytes as mac-alias writes them", icvp["backgroundImageAlias"], made.to_bytes())
    bookmark = ours[(".", "pBBk")]
    toc = dict(bookmark.tocs)[1]
    expect("bookmark path", toc[0x1004], ["Volumes", volume_name, ".background", picture])
    expect("bookmark IDs", toc[0x1005], [folder.identifier, target.identifier])
    expect("bookmark volume", toc[0x2010], volume_name)
    expect("bookmark volume path", toc[0x2002], "/Volumes/" + volume_name)
    expect("bookmark file date", toc[0x1040], crtime)

# dmgbuild: its build_dmg with the same settings, on a folder standing in for the mounted volume.
def dmgbuild_records():
    """The records and the Finder flags (SetFile's letters by name) dmgbuild makes."""
    platform.mac_ver = lambda: ("13.0", ("", "", ""), "")
    import dmgbuild.core as core

    mount, out, flags = tempfile.mkdtemp(), tempfile.mkdtemp(), {}

    def hdiutil(cmd, *args, **kwargs):
        if cmd == "attach":
            return 0, {"system-entities": [{"mount-point": mount, "dev-entry": "/dev/disk9"}]}
        return 0, ({} if kwargs.get("plist", True) else "")

    def call(args, **kwargs):
        if args[0] == "/usr/bin/ditto":
            if os.path.isdir(args[1]):
                shutil.copytree(args[1], args[2], symlinks=True)
            else:
                shutil.copy(args[1], args[2])
        elif args[0] == "/usr/bin/SetFile":
            for path in args[3:]:
                name = "." if path == mount else os.path.relpath(path, mount)
                flags.setdefault(name, []).append(args[2])
        return 0

    core.hdiutil = hdiutil
    core.subprocess = types.SimpleNamespace(call=call, check_call=lambda *a, **k: 0)
    # The alias of a file on a mounted volume needs macOS's getattrlist: the one mac-alias builds
    # from the volume's facts is judged above.
    core.Alias.for_file = classmethod(lambda cls, path: made)
    theirs = {k: v for k, v in settings.items() if k != "labels"}
    for key in ("background", "icon"):
        if key in settings and not settings[key].startswith("#"):
            theirs[key] = os.path.join(base, settings[key])
    theirs["files"] = [os.path.join(src, n) for n in sorted(os.listdir(src))]
    theirs["window_rect"] = tuple(tuple(p) for p in settings["window_rect"])
    core.build_dmg(os.path.join(out, "built.dmg"), volume_name, settings=theirs, lookForHiDPI=False)
    return records_of(open(os.path.join(mount, ".DS_Store"), "rb").read()), flags


theirs, flags = dmgbuild_records() if with_dmgbuild else ({}, {})
for key, value in theirs.items():
    expect(f"dmgbuild's record {key}", ours.get(key), value)
print(
    json.dumps(
        {
            "names": names,
            "links": links,
            "records": len(ours),
            "dmgbuild_records": len(theirs) if with_dmgbuild else None,
            "beyond_dmgbuild": [list(k) for k in sorted(set(ours) - set(theirs))],
            "dmgbuild_flags": flags,
            "failures": failures,
        }
    )
)
sys.exit(1 if failures else 0)
