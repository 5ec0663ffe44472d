"""Checks that a PNG screenshot is not blank: it decodes the image (8-bit
RGB or RGBA, no dependencies beyond the standard library) and requires
enough distinct colours and enough pixels that are not the background.

    python3 ci/report/png-check.py FILE.png
"""
import struct
import sys
import zlib

COLOURS_MIN = 12          # a blank or all-text page has far fewer
NOT_BACKGROUND_MIN = 0.02  # share of pixels unlike the most common colour


def rows(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"FAIL {path}: not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    if depth != 8 or colour_type not in (2, 6) or interlace:
        raise SystemExit(f"FAIL {path}: unsupported PNG (depth {depth}, type {colour_type})")
    bpp = 3 if colour_type == 2 else 4
    raw, stride, previous = zlib.decompress(idat), width * bpp, bytearray(width * bpp)
    for y in range(height):
        start = y * (stride + 1)
        line = unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), previous, bpp)
        yield width, [bytes(line[x:x + 3]) for x in range(0, stride, bpp)]
        previous = line


def unfilter(kind, line, prev, bpp):
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + a) & 255
        elif kind == 2:
            line[i] = (line[i] + b) & 255
        elif kind == 3:
            line[i] = (line[i] + (a + b) // 2) & 255
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    return line


def main(path):
    counts = {}
    for _, pixels in rows(path):
        for pixel in pixels:
            counts[pixel] = counts.get(pixel, 0) + 1
    total = sum(counts.values())
    background = max(counts.values())
    share = 1 - background / total
    print(f"{path}: {len(counts)} distinct colours, {share:.1%} of pixels not background")
    if len(counts) < COLOURS_MIN or share < NOT_BACKGROUND_MIN:
        raise SystemExit(f"FAIL {path} looks blank")


if __name__ == "__main__":
    main(sys.argv[1])
