#!/usr/bin/env python3
"""Compares the licence agreement in a UDIF image's resources with what dmgbuild's own licensing
module builds for the same files (the resources dmgbuild hands to `hdiutil udifrez`).
Usage: sla_resources.py IMAGE LOCALE=FILE... (the first is the default). Prints the resource
kinds compared and how many entries each; exits non-zero on any difference."""
import json
import platform
import plistlib
import struct
import sys

# dmgbuild's package reads the macOS version when imported; its licensing module needs no Mac.
platform.mac_ver = lambda: ("13.0", ("", "", ""), "")
from dmgbuild import licensing  # noqa: E402

image, specs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
with open(image, "rb") as f:
    f.seek(-512, 2)
    koly = f.read(512)
    assert koly[:4] == b"koly", "no koly trailer"
    xml_offset, xml_length = struct.unpack(">QQ", koly[0xD8:0xE8])
    f.seek(xml_offset)
    fork = plistlib.loads(f.read(xml_length))["resource-fork"]

theirs = licensing.build_license({"licenses": dict(specs)})
failures, compared = [], {}
for kind, entries in theirs.items():
    ours = fork.get(kind, [])
    compared[kind] = len(entries)
    if ours != entries:
        failures.append(f"{kind}: dimg has {ours!r}, dmgbuild builds {entries!r}")
print(json.dumps({"compared": compared, "failures": failures}))
sys.exit(1 if failures else 0)
