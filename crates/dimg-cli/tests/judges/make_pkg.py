#!/usr/bin/env python3
"""Builds a XAR archive the way Apple's tools lay one out, from the format itself (xar and mkbom
are not in Debian): a flat component package, a product archive (Distribution beside a
component folder) or a .xip (Content and Metadata). The payload is a cpio archive (odc or newc)
of a folder, in gzip or pbzx; `--decoded FILE` also writes that cpio as it is, for the judges.

make_pkg.py OUT --payload DIR [--scripts DIR] [--kind component|product|xip]
            [--cpio odc|newc] [--compress gzip|pbzx|none] [--chunk N]
            [--encoding none|gzip|bzip2|xz] [--checksum sha1|md5|sha256]
            [--identifier ID] [--version V] [--install-location PATH] [--title T]
            [--decoded FILE]
"""
import argparse, bz2, gzip, hashlib, io, lzma, os, stat, struct, zlib
from xml.sax.saxutils import escape


def cpio(root, fmt):
    out = io.BytesIO()
    ino = {}

    def entry(name, st, data):
        key = (st.st_dev, st.st_ino) if st else None
        number = ino.setdefault(key, len(ino) + 1) if key else 0
        mode = st.st_mode if st else 0
        nlink = st.st_nlink if st and not stat.S_ISDIR(mode) else (2 if st else 1)
        mtime = int(st.st_mtime) if st else 0
        uid, gid = (st.st_uid, st.st_gid) if st else (0, 0)
        raw = name.encode() + b"\0"
        if fmt == "odc":
            out.write(b"070707" + b"".join(b"%06o" % v for v in (0, number % 0o1000000, mode, uid, gid, nlink, 0)))
            out.write(b"%011o" % mtime + b"%06o" % len(raw) + b"%011o" % len(data) + raw + data)
        else:
            fields = (number, mode, uid, gid, nlink, mtime, len(data), 0, 0, 0, 0, len(raw), 0)
            out.write(b"070701" + b"".join(b"%08X" % v for v in fields) + raw)
            out.write(b"\0" * (-out.tell() % 4))
            out.write(data)
            out.write(b"\0" * (-out.tell() % 4))

    def walk(path, name):
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            data = os.readlink(path).encode()
        elif stat.S_ISREG(st.st_mode):
            data = open(path, "rb").read()
        else:
            data = b""
        entry(name, st, data)
        if stat.S_ISDIR(st.st_mode):
            for child in sorted(os.listdir(path)):
                walk(os.path.join(path, child), name + "/" + child)

    walk(root, ".")
    entry("TRAILER!!!", None, b"")
    return out.getvalue()


def pbzx(data, chunk):
    out = io.BytesIO()
    out.write(b"pbzx" + struct.pack(">Q", chunk))
    for at in range(0, len(data), chunk):
        plain = data[at:at + chunk]
        packed = lzma.compress(plain, format=lzma.FORMAT_XZ)
        if len(packed) >= len(plain):
            packed = plain
        out.write(struct.pack(">QQ", len(plain), len(packed)) + packed)
    return out.getvalue()


ENCODINGS = {
    "none": ("application/octet-stream", lambda b: b),
    "gzip": ("application/x-gzip", zlib.compress),
    "bzip2": ("application/x-bzip2", bz2.compress),
    "xz": ("application/x-xz", lambda b: lzma.compress(b, format=lzma.FORMAT_XZ)),
}


class Xar:
    def __init__(self, checksum, encoding):
        self.checksum, self.encoding = checksum, encoding
        self.digest_size = hashlib.new(checksum).digest_size
        self.heap = bytearray(b"\0" * self.digest_size)  # the TOC's checksum goes first
        self.next_id = 1

    def file(self, name, data, encoding=None):
        style, encode = ENCODINGS[encoding or self.encoding]
        stored = encode(data)
        offset = len(self.heap)
        self.heap += stored
        h = lambda b: hashlib.new(self.checksum, b).hexdigest()
        return self._entry(name, "file", f"""<data><length>{len(stored)}</length><offset>{offset}</offset>
<size>{len(data)}</size><encoding style="{style}"/>
<archived-checksum style="{self.checksum}">{h(stored)}</archived-checksum>
<extracted-checksum style="{self.checksum}">{h(data)}</extracted-checksum></data>""")

    def folder(self, name, children):
        return self._entry(name, "directory", "".join(children), mode="0755")

    def _entry(self, name, kind, inner, mode="0644"):
        i, self.next_id = self.next_id, self.next_id + 1
        return (f'<file id="{i}"><name>{escape(name)}</name><type>{kind}</type><mode>{mode}</mode>'
                f"<uid>0</uid><gid>80</gid><mtime>2024-05-06T07:08:09Z</mtime>{inner}</file>")

    def write(self, path, entries):
        toc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<xar><toc><creation-time>2024-05-06T07:08:09'
               f'</creation-time><checksum style="{self.checksum}"><offset>0</offset><size>'
               f"{self.digest_size}</size></checksum>{''.join(entries)}</toc></xar>").encode()
        packed = zlib.compress(toc)
        self.heap[:self.digest_size] = hashlib.new(self.checksum, packed).digest()
        alg = {"sha1": 1, "md5": 2}.get(self.checksum, 3)
        name = b"" if alg != 3 else self.checksum.encode() + b"\0"
        name += b"\0" * (-len(name) % 4)
        header = b"xar!" + struct.pack(">HHQQI", 28 + len(name), 1, len(packed), len(toc), alg) + name
        with open(path, "wb") as f:
            f.write(header + packed + bytes(self.heap))


def main():
    a = argparse.ArgumentParser()
    a.add_argument("out")
    a.add_argument("--payload", required=True)
    a.add_argument("--scripts")
    a.add_argument("--kind", default="component")
    a.add_argument("--cpio", default="odc")
    a.add_argument("--compress", default="gzip")
    a.add_argument("--chunk", type=int, default=16 << 20)
    a.add_argument("--encoding", default="none")
    a.add_argument("--checksum", default="sha1")
    a.add_argument("--identifier", default="org.example.tool")
    a.add_argument("--version", default="1.0")
    a.add_argument("--install-location", default="/usr/local")
    a.add_argument("--title", default="Example Tool")
    a.add_argument("--decoded")
    o = a.parse_args()

    archive = cpio(o.payload, o.cpio)
    if o.decoded:
        open(o.decoded, "wb").write(archive)
    compress = {"gzip": lambda b: gzip.compress(b, mtime=0), "pbzx": lambda b: pbzx(b, o.chunk),
                "none": lambda b: b}[o.compress]
    x = Xar(o.checksum, o.encoding)
    if o.kind == "xip":
        metadata = b'<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict></dict></plist>'
        x.write(o.out, [x.file("Content", compress(archive), "none"), x.file("Metadata", metadata)])
        return
    count = sum(len(files) + len(dirs) for _, dirs, files in os.walk(o.payload))
    info = (f'<?xml version="1.0" encoding="utf-8"?>\n<pkg-info format-version="2" '
            f'identifier="{escape(o.identifier)}" version="{o.version}" install-location='
            f'"{escape(o.install_location)}" auth="root"><payload numberOfFiles="{count}" '
            f'installKBytes="{len(archive) // 1024}"/></pkg-info>').encode()
    component = [x.file("Payload", compress(archive), "none"), x.file("PackageInfo", info)]
    if o.scripts:
        component.append(x.file("Scripts", gzip.compress(cpio(o.scripts, o.cpio), mtime=0), "none"))
    if o.kind == "component":
        x.write(o.out, component)
        return
    distribution = (f'<?xml version="1.0" encoding="utf-8"?>\n<installer-gui-script minSpecVersion="2">'
                    f"<title>{escape(o.title)}</title><product id=\"{escape(o.identifier)}\" "
                    f'version="{o.version}"/><allowed-os-versions><os-version min="11.0"/>'
                    f'</allowed-os-versions><pkg-ref id="{escape(o.identifier)}" version="{o.version}">'
                    f"#{escape(o.identifier)}.pkg</pkg-ref></installer-gui-script>").encode()
    x.write(o.out, [x.file("Distribution", distribution), x.folder(o.identifier + ".pkg", component)])


main()
