"""Draw the Meltano Hub logo of target-amazon-dsp-conversions.

`python scripts/hub_logo.py` writes
meltano-hub/static/assets/logos/loaders/amazon-dsp-conversions.png (256 x 256; the Hub's logos
are PNGs): a funnel (many events in, conversions out) dropping one conversion, on a rounded
square. Pure Python (zlib + struct), no imaging library; the output is deterministic.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "meltano-hub/static/assets/logos/loaders"
STEM = "amazon-dsp-conversions"
SIZE = 256
SAMPLES = 4  # per axis: 16 samples per pixel for smooth edges

Color = tuple[int, int, int]
BACKGROUND: Color = (20, 61, 89)
FUNNEL: Color = (255, 255, 255)
DROP: Color = (255, 176, 59)

CORNER = 48
FUNNEL_POINTS = [(52, 60), (204, 60), (146, 138), (146, 182), (110, 182), (110, 138)]
DROP_CENTER = (128, 208)
DROP_RADIUS = 16


def _in_rounded_square(x: float, y: float) -> bool:
    cx = min(max(x, CORNER), SIZE - CORNER)
    cy = min(max(y, CORNER), SIZE - CORNER)
    return (x - cx) ** 2 + (y - cy) ** 2 <= CORNER**2


def _in_polygon(x: float, y: float, points: list[tuple[int, int]]) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _in_drop(x: float, y: float) -> bool:
    return (x - DROP_CENTER[0]) ** 2 + (y - DROP_CENTER[1]) ** 2 <= DROP_RADIUS**2


def _sample(x: float, y: float) -> tuple[int, int, int, int]:
    if not _in_rounded_square(x, y):
        return (0, 0, 0, 0)
    if _in_polygon(x, y, FUNNEL_POINTS):
        return (*FUNNEL, 255)
    if _in_drop(x, y):
        return (*DROP, 255)
    return (*BACKGROUND, 255)


def png() -> bytes:
    """The logo as an RGBA PNG, SIZE x SIZE, colours premultiplied-averaged over the samples."""
    offsets = [(i + 0.5) / SAMPLES for i in range(SAMPLES)]
    rows = bytearray()
    for py in range(SIZE):
        rows.append(0)  # filter: none
        for px in range(SIZE):
            r = g = b = a = 0
            for oy in offsets:
                for ox in offsets:
                    sr, sg, sb, sa = _sample(px + ox, py + oy)
                    r, g, b, a = r + sr * sa, g + sg * sa, b + sb * sa, a + sa
            if a:
                rows += bytes((round(r / a), round(g / a), round(b / a), round(a / SAMPLES**2)))
            else:
                rows += b"\0\0\0\0"

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    """Write the PNG."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{STEM}.png").write_bytes(png())
    sys.stdout.write(f"Wrote {OUT / STEM}.png\n")


if __name__ == "__main__":
    main()
