"""Writing a slice's images into a study: DICOM in HU with its PNG rendering for labelme, or a PNG alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.imaging.dicom_write import SliceTags, write_ct_slice
from core.imaging.image import SliceImage
from core.imaging.png_io import write_png
from core.imaging.windowing import MIN_MAX, Window, apply_window, min_max_window, parse_window


def png_window(image: SliceImage, spec: str) -> Window:
    """The window that ``spec`` (bone, soft, min-max, dicom or C,W) means for ``image``."""
    parsed = parse_window(spec)
    if isinstance(parsed, Window):
        return parsed
    if parsed == MIN_MAX:
        return min_max_window(image.pixels)
    return image.windows[0] if image.windows else image.default_window()


def write_slice_images(
    folder: Path, slice_id: str, image: SliceImage, window_spec: str, tags: SliceTags | None
) -> str | None:
    """``<slice>.dcm`` (HU) and ``<slice>.png`` (through the window) for HU images; else ``<slice>.png`` alone.

    Returns a note when the stored values differ from the image's (a 16-bit image without HU stored as 8-bit,
    because labelme 6 cannot open 16-bit PNGs).
    """
    if image.hu:
        if tags is None:
            raise ValueError("a HU slice needs its DICOM tags")
        write_ct_slice(folder / f"{slice_id}.dcm", image.pixels, tags)
        write_png(folder / f"{slice_id}.png", apply_window(image.pixels, png_window(image, window_spec)))
        return None
    is_8_bit = image.bits == 8 or (image.bits is None and image.pixels.min() >= 0 and image.pixels.max() <= 255)
    if is_8_bit:
        write_png(folder / f"{slice_id}.png", np.clip(np.rint(image.pixels), 0, 255).astype(np.uint8))
        return None
    write_png(folder / f"{slice_id}.png", apply_window(image.pixels, min_max_window(image.pixels)))
    return f"{image.bits or 'high'}-bit image without HU stored as 8-bit (min-max)"
