"""A study's slice images: writing them at import (DICOM in HU with a PNG for labelme, or a PNG alone), and reading a
slice back as the model sees it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.imaging.dicom_write import SliceTags, write_ct_slice
from core.imaging.image import SliceImage
from core.imaging.png_io import write_png
from core.imaging.rendering import DEFAULT_RENDERING, ModelInput, is_8_bit, model_input, model_view, rendering_window
from core.imaging.windowing import apply_window

if TYPE_CHECKING:
    from core.study.layout import Study


def study_model_view(study: Study, case: str, slice_id: str, rendering: str = DEFAULT_RENDERING) -> np.ndarray:
    """A study slice as the model sees it under ``rendering``: always from the slice's primary image (the DICOM in
    HU where there is one), never from the labelme PNG, whose window is the import's display choice."""
    return model_view(study.read_image(case, slice_id), rendering)


def study_model_input(study: Study, case: str, slice_id: str, rendering: str = DEFAULT_RENDERING) -> ModelInput:
    """:func:`study_model_view` with the slice's pixel spacing."""
    return model_input(study.read_image(case, slice_id), rendering)


def write_slice_images(
    folder: Path, slice_id: str, image: SliceImage, window_spec: str, tags: SliceTags | None
) -> str | None:
    """``<slice>.dcm`` (HU) and ``<slice>.png`` (through the window) for HU images; else ``<slice>.png`` alone.

    Returns a note when the stored values differ from the image's (a 16-bit image without HU stored as 8-bit,
    because labelme 6 cannot open 16-bit PNGs). A slice without HU is stored as :func:`model_view` sees it, so the
    study's copy and the source file give a model the same input.
    """
    if image.hu:
        if tags is None:
            raise ValueError("a HU slice needs its DICOM tags")
        write_ct_slice(folder / f"{slice_id}.dcm", image.pixels, tags)
        write_png(folder / f"{slice_id}.png", apply_window(image.pixels, rendering_window(image, window_spec)))
        return None
    write_png(folder / f"{slice_id}.png", model_view(image))
    if is_8_bit(image):
        return None
    return f"{image.bits or 'high'}-bit image without HU stored as 8-bit (min-max)"
