"""What Fox-IT's dissect.hypervisor reads from a virtual machine's disk: FORMAT (VHD, VHDX, VDI
or VMDK) and the image's path; prints the disk's size and the SHA-256 of its bytes as JSON."""
import hashlib
import json
import sys

from dissect.hypervisor.disk.vdi import VDI
from dissect.hypervisor.disk.vhd import VHD
from dissect.hypervisor.disk.vhdx import VHDX
from dissect.hypervisor.disk.vmdk import VMDK

kind, path = sys.argv[1:]
with open(path, "rb") as fh:
    if kind == "VHD":
        stream = VHD(fh)
    elif kind == "VHDX":
        stream = VHDX(fh)
    elif kind == "VDI":
        stream = VDI(fh).open()
    elif kind == "VMDK":
        stream = VMDK(fh)
    else:
        raise SystemExit(f"no reader for {kind}")
    digest = hashlib.sha256()
    size = 0
    if kind == "VMDK":
        # Its stream reads whole 1 MiB buffers, past the last extent of a disk that is not whole
        # MiBs (IndexError, on qemu-img's images too): read by sectors up to the end instead.
        sectors = stream.sector_count
        for first in range(0, sectors, 2048):
            data = stream.read_sectors(first, min(2048, sectors - first))
            digest.update(data)
            size += len(data)
    else:
        while data := stream.read(1 << 20):
            digest.update(data)
            size += len(data)
print(json.dumps({"size": size, "sha256": digest.hexdigest()}))
