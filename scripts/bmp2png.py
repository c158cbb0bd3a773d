#!/usr/bin/env python3
"""bmp2png.py: convert the SDL example's 24-bit BMP screenshots to PNG, with the standard library only."""
import struct
import sys
import zlib


def bmp_rows(data):
    if data[:2] != b"BM":
        raise ValueError("not a BMP file")
    offset, = struct.unpack_from("<I", data, 10)
    width, height, _, bpp, compression = struct.unpack_from("<iiHHI", data, 18)
    if bpp != 24 or compression != 0:
        raise ValueError("only uncompressed 24-bit BMP is supported, not %d-bit" % bpp)
    stride = (width * 3 + 3) & ~3
    if width <= 0 or height == 0 or offset + stride * abs(height) > len(data):
        raise ValueError("a %dx%d image does not fit in %d bytes: the file is cut short" % (width, height, len(data)))
    rows = []
    for y in range(abs(height)):
        src = y if height < 0 else abs(height) - 1 - y
        row = data[offset + src * stride: offset + src * stride + width * 3]
        rgb = bytearray(row)
        rgb[0::3], rgb[2::3] = row[2::3], row[0::3]  # BGR to RGB
        rows.append(bytes(rgb))
    return width, abs(height), rows


def png(width, height, rows):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bmp2png.py IN.bmp OUT.png")
    with open(sys.argv[1], "rb") as f:
        try:
            width, height, rows = bmp_rows(f.read())
        except ValueError as e:
            sys.exit("bmp2png: %s: %s" % (sys.argv[1], e))
    with open(sys.argv[2], "wb") as f:
        f.write(png(width, height, rows))


if __name__ == "__main__":
    main()
