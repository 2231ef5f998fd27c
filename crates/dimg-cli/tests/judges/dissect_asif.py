"""What Fox-IT's dissect.hypervisor reads from ASIF images: each image's header and metadata
facts, and a SHA-256 of each range of its disk asked for (OFFSET:LENGTH arguments after the
image's path; the whole disk when none). Prints a JSON list, one object per image, in order
(one run for many images: the import is most of its time)."""
import hashlib
import json
import re
import sys

from dissect.hypervisor.disk.asif import ASIF

asked = []
for arg in sys.argv[1:]:
    if re.fullmatch(r"\d+:\d+", arg):
        asked[-1][1].append(tuple(int(n) for n in arg.split(":")))
    else:
        asked.append((arg, []))

judged = []
for path, ranges in asked:
    with open(path, "rb") as fh:
        image = ASIF(fh)
        stream = image.open()
        digests = []
        for offset, length in ranges or [(0, image.size)]:
            stream.seek(offset)
            digest = hashlib.sha256()
            while length:
                data = stream.read(min(length, 1 << 20))
                if not data:
                    raise SystemExit(f"{path}: the disk ends before {offset + length}")
                digest.update(data)
                length -= len(data)
            digests.append(digest.hexdigest())
        judged.append({
            "size": image.size,
            "max_size": image.max_size,
            "chunk_size": image.chunk_size,
            "block_size": image.block_size,
            "stable_uuid": image.internal_metadata.get("stable uuid"),
            "digests": digests,
        })
print(json.dumps(judged))
