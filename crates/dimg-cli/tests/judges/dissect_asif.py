"""What Fox-IT's dissect.hypervisor reads from an ASIF image: its header's and metadata's facts,
and a SHA-256 of each range of the disk asked for (OFFSET:LENGTH; the whole disk when none).
Prints one JSON object."""
import hashlib
import json
import sys

from dissect.hypervisor.disk.asif import ASIF

with open(sys.argv[1], "rb") as fh:
    image = ASIF(fh)
    stream = image.open()
    ranges = [tuple(int(n) for n in r.split(":")) for r in sys.argv[2:]] or [(0, image.size)]
    digests = []
    for offset, length in ranges:
        stream.seek(offset)
        digest = hashlib.sha256()
        while length:
            data = stream.read(min(length, 1 << 20))
            if not data:
                raise SystemExit(f"the disk ends before {offset + length}")
            digest.update(data)
            length -= len(data)
        digests.append(digest.hexdigest())
    print(json.dumps({
        "size": image.size,
        "max_size": image.max_size,
        "chunk_size": image.chunk_size,
        "block_size": image.block_size,
        "stable_uuid": image.internal_metadata.get("stable uuid"),
        "digests": digests,
    }))
