#!/usr/bin/env python3
"""Renders dimg's app icon (a drive with a disc) and writes the set Tauri bundling expects:
32x32.png, 128x128.png, 128x128@2x.png, icon.png (512), icon.ico and icon.icns.
Standard library only: shapes are sampled 4x4 per pixel for anti-aliasing. Run: python3 icons/render.py"""
import math, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def in_round_rect(x, y, x0, y0, x1, y1, r):
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r and x0 <= x <= x1 and y0 <= y <= y1


def color_at(u, v):
    """RGBA of the point (u, v) in the unit square, or None where transparent."""
    # Drive body: a rounded slab with a vertical steel gradient.
    if in_round_rect(u, v, 0.08, 0.30, 0.92, 0.86, 0.08):
        # The disc sits on top of the body's upper half.
        d = math.hypot(u - 0.5, v - 0.42)
        if d <= 0.30:
            if d <= 0.045:
                return (60, 64, 72, 255)  # spindle hole
            if d <= 0.09:
                return (200, 205, 215, 255)  # hub
            # Iridescent rings: hue follows the angle, like light on a CD.
            a = math.atan2(v - 0.42, u - 0.5)
            return (
                int(150 + 80 * math.cos(a)),
                int(170 + 70 * math.cos(a + 2.1)),
                int(200 + 55 * math.cos(a + 4.2)),
                255,
            )
        if v > 0.74:  # the front bezel with a status light
            if math.hypot(u - 0.80, v - 0.80) <= 0.025:
                return (80, 220, 120, 255)
            return (70, 76, 88, 255)
        g = int(235 - 90 * (v - 0.30) / 0.56)
        return (g, g + 3, g + 10, 255)
    return None


def render(size):
    rows = []
    ss = 4
    for y in range(size):
        row = bytearray([0])  # PNG filter type 0
        for x in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(ss):
                for sx in range(ss):
                    c = color_at((x + (sx + 0.5) / ss) / size, (y + (sy + 0.5) / ss) / size)
                    if c:
                        for i in range(3):
                            acc[i] += c[i] * c[3]
                        acc[3] += c[3]
            n = ss * ss
            alpha = acc[3] / n
            if acc[3]:
                row += bytes(min(255, int(acc[i] / acc[3])) for i in range(3))
            else:
                row += b"\0\0\0"
            row.append(int(alpha))
        rows.append(bytes(row))
    return png(size, b"".join(rows))


def png(size, raw):
    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def ico(pngs):
    """ICO with PNG-compressed entries (Vista+), sizes up to 256."""
    out = struct.pack("<HHH", 0, 1, len(pngs))
    offset = 6 + 16 * len(pngs)
    for size, data in pngs:
        dim = 0 if size >= 256 else size
        out += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    return out + b"".join(d for _, d in pngs)


def icns(pngs):
    kinds = {32: b"ic11", 128: b"ic07", 256: b"ic08", 512: b"ic09"}
    body = b"".join(kinds[s] + struct.pack(">I", 8 + len(d)) + d for s, d in pngs if s in kinds)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main():
    images = {s: render(s) for s in (32, 128, 256, 512)}
    write = lambda name, data: open(os.path.join(HERE, name), "wb").write(data)
    write("32x32.png", images[32])
    write("128x128.png", images[128])
    write("128x128@2x.png", images[256])
    write("icon.png", images[512])
    write("icon.ico", ico([(s, images[s]) for s in (32, 128, 256)]))
    write("icon.icns", icns(sorted(images.items())))


if __name__ == "__main__":
    main()
