#!/usr/bin/env python3
"""Decodes a pbzx stream with Python's lzma, as Apple's payload tools do: pbzx_decode.py IN OUT.
Each chunk is its decoded length and stored length (big-endian 64-bit), then an XZ stream, or the
bytes as they are when the two lengths are equal."""
import lzma, struct, sys

data = open(sys.argv[1], "rb").read()
assert data[:4] == b"pbzx", "not pbzx"
at, out = 12, bytearray()
while at < len(data):
    plain, stored = struct.unpack(">QQ", data[at:at + 16])
    chunk = data[at + 16:at + 16 + stored]
    out += chunk if plain == stored else lzma.decompress(chunk, format=lzma.FORMAT_XZ)
    at += 16 + stored
open(sys.argv[2], "wb").write(out)
