"""Plots: a PNG the browser can decode, labelled axes (no frontend, no network)."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from pyrolab_jupyter.jupyter.plots import png


def _decode(data: bytes) -> tuple[int, int, np.ndarray]:
    """A minimal PNG reader for what ``png`` writes: IHDR, one IDAT, filter 0 rows, 8-bit RGB."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF
        chunks[tag] = body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, width * 3 + 1)
    assert not rows[:, 0].any()
    return width, height, rows[:, 1:].reshape(height, width, 3)


def test_png_is_a_valid_viridis_picture_of_the_array():
    z = np.arange(12.0).reshape(3, 4)
    width, height, rgb = _decode(png(z, 0.0, 11.0))
    assert (width, height) == (4, 3)
    assert tuple(rgb[0, 0]) == (0x44, 0x01, 0x54)  # the lowest value: viridis' dark end
    assert tuple(rgb[2, 3]) == (0xFD, 0xE7, 0x25)  # the highest: its bright end
    _, _, blank = _decode(png(np.full((2, 2), np.nan), 0.0, 1.0))
    assert tuple(blank[0, 0]) == (0x44, 0x01, 0x54)  # NaN does not break the picture
