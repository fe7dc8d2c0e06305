"""Vidivo's icon as a PNG, drawn from the same shapes as `static/favicon.svg`.

Link previewers (chat apps, social sites) and home screens want a bitmap, not an SVG; the
PNG is drawn here once, in pure Python, so no image file or imaging library is needed."""

from __future__ import annotations

import struct
import zlib
from functools import cache

# The favicon's 32-unit canvas: a blue rounded square with a white camera on it.
_CANVAS = 32.0
_BLUE = (0x24, 0x56, 0xD6)
_WHITE = (0xFF, 0xFF, 0xFF)
_SUBSAMPLES = (0.25, 0.75)  # 2 x 2 samples a pixel: smooth enough edges, fast enough to draw
ICON_SIZE = 256


def _in_rounded_rect(
    x: float, y: float, left: float, top: float, width: float, height: float, radius: float
) -> bool:
    if not (left <= x <= left + width and top <= y <= top + height):
        return False
    # Distance from the nearest point of the rectangle shrunk by the radius.
    cx = min(max(x, left + radius), left + width - radius)
    cy = min(max(y, top + radius), top + height - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def _in_lens(x: float, y: float) -> bool:
    """The camera's lens: the quadrilateral (21, 14.5) (27, 11) (27, 21) (21, 17.5)."""
    if not 21 <= x <= 27:
        return False
    spread = (x - 21) / 6 * 3.5
    return 14.5 - spread <= y <= 17.5 + spread


def _sample(x: float, y: float) -> tuple[int, int, int, int]:
    if not _in_rounded_rect(x, y, 0, 0, _CANVAS, _CANVAS, 7):
        return (0, 0, 0, 0)
    if _in_rounded_rect(x, y, 5, 10, 15, 12, 2.5) or _in_lens(x, y):
        return (*_WHITE, 255)
    return (*_BLUE, 255)


def _pixel(px: int, py: int, scale: float) -> bytes:
    samples = [
        _sample((px + dx) * scale, (py + dy) * scale) for dx in _SUBSAMPLES for dy in _SUBSAMPLES
    ]
    alpha = sum(s[3] for s in samples)
    if alpha == 0:
        return b"\x00\x00\x00\x00"
    channels = [sum(s[i] * s[3] for s in samples) // alpha for i in range(3)]
    return bytes((*channels, alpha // len(samples)))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


@cache
def icon_png(size: int = ICON_SIZE) -> bytes:
    scale = _CANVAS / size
    rows = b"".join(
        b"\x00" + b"".join(_pixel(px, py, scale) for px in range(size)) for py in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )
