"""The slice as the model sees it: the one rule by which a slice becomes a network's 8-bit input.

Training, ``detect``, ``diagnose``, the retrain and the app's model runner all call :func:`model_view`, with the
rendering that the model package records (``window`` in its architecture), so a package is always fed what it
learnt from. A rendering is a window spec: ``min-max`` (the paper's export, the default), ``bone``, ``soft``,
``dicom`` (the file's own window) or ``CENTER,WIDTH``.

- **HU slices** (DICOM, NIfTI) go through the rendering's window. The study's PNG beside a DICOM slice is a display
  copy for labelme, written through whatever window the import was given, so it is never the model's input.
- **Slices without HU** have no Hounsfield scale for a window to mean anything on: an 8-bit raster (the paper's
  JPEG export) is taken as it is, whatever the rendering; a deeper image through its own minimum and maximum. A
  study stores such slices the same way (:func:`core.study.images.write_slice_images`), so the stored slice and
  its source give the same input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.imaging.image import SliceImage
from core.imaging.windowing import MIN_MAX, Window, apply_window, min_max_window, parse_window

DEFAULT_RENDERING = MIN_MAX


def check_rendering(spec: str) -> str:
    """``spec`` when it names a rendering; ValueError with the choices otherwise."""
    if not isinstance(spec, str):
        raise ValueError(f"a rendering is a window name or CENTER,WIDTH, not {spec!r}")
    parse_window(spec)
    return spec


def rendering_window(image: SliceImage, spec: str) -> Window:
    """The window that ``spec`` (bone, soft, min-max, dicom or C,W) means for ``image``."""
    parsed = parse_window(spec)
    if isinstance(parsed, Window):
        return parsed
    if parsed == MIN_MAX:
        return min_max_window(image.pixels)
    return image.windows[0] if image.windows else image.default_window()


def is_8_bit(image: SliceImage) -> bool:
    """An image without HU whose grey values are already 0…255 (an 8-bit PNG, JPEG or DICOM)."""
    if image.hu:
        return False
    if image.bits is not None:
        return image.bits == 8
    return bool(image.pixels.size) and float(np.nanmin(image.pixels)) >= 0 and float(np.nanmax(image.pixels)) <= 255


@dataclass(frozen=True, eq=False)
class ModelInput:
    """A slice as a model set takes it: the network's uint8 view (:func:`model_view`) and the slice's pixel spacing
    (row, column mm; None where the file does not say), which a classifier with a reference spacing resamples by."""

    pixels: np.ndarray
    spacing_mm: tuple[float, float] | None = None


def model_input(image: SliceImage, rendering: str = DEFAULT_RENDERING) -> ModelInput:
    """``image`` as :class:`ModelInput` under ``rendering``."""
    return ModelInput(model_view(image, rendering), image.spacing_mm)


def model_view(image: SliceImage, rendering: str = DEFAULT_RENDERING) -> np.ndarray:
    """``image`` as the network's C-contiguous uint8 input under ``rendering`` (see the module's rules)."""
    if image.hu:
        return apply_window(image.pixels, rendering_window(image, rendering))
    if is_8_bit(image):
        return np.ascontiguousarray(np.clip(np.rint(np.nan_to_num(image.pixels)), 0, 255).astype(np.uint8))
    return apply_window(image.pixels, min_max_window(image.pixels))
