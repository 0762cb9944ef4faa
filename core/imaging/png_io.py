"""Encoding grey images as PNG (8- or 16-bit) and writing them atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from core.fileio import atomic_write_bytes

_Z_HUFFMAN_ONLY = 2


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode a 2D array: uint8 as 8-bit grey, anything else as 16-bit grey (values clipped to 0…65535)."""
    if pixels.ndim != 2:
        raise ValueError(f"a PNG slice is 2D, not shape {pixels.shape}")
    if pixels.dtype == np.uint8:
        image = Image.fromarray(np.ascontiguousarray(pixels))
    else:
        values = np.clip(np.rint(pixels), 0, 65535).astype(np.uint16)
        image = Image.fromarray(np.ascontiguousarray(values))
    buffer = io.BytesIO()
    # Huffman-only deflate: CT noise defeats string matching, so this is both faster and smaller than the default.
    image.save(buffer, format="PNG", compress_level=1, compress_type=_Z_HUFFMAN_ONLY)
    return buffer.getvalue()


def write_png(path: str | Path, pixels: np.ndarray) -> Path:
    return atomic_write_bytes(path, png_bytes(pixels))
