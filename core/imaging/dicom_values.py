"""From a frame's stored values to the values shown: rescale or modality LUT, palette and colour to grey, and
MONOCHROME1 inverted, with the windows the file stores and whether the values are Hounsfield units.
"""

from __future__ import annotations

import math

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut

from core.imaging.dicom_header import functional_group
from core.imaging.windowing import Window


def _rescale(ds: Dataset, frame: int) -> tuple[float, float]:
    item = functional_group(ds, frame, "PixelValueTransformationSequence")
    for source in (item, ds):
        if source is not None and "RescaleSlope" in source:
            slope = float(source.get("RescaleSlope") or 1.0)
            intercept = float(source.get("RescaleIntercept") or 0.0)
            return (slope if math.isfinite(slope) and slope != 0 else 1.0), (
                intercept if math.isfinite(intercept) else 0.0
            )
    return 1.0, 0.0


def dicom_windows(ds: Dataset, frame: int = 0) -> tuple[Window, ...]:
    """The windows stored in the file (WindowCenter/WindowWidth, possibly several), in rescaled units.

    For an inverted MONOCHROME1 frame the windows are mirrored too, so that they show what the file intends.
    """
    item = functional_group(ds, frame, "FrameVOILUTSequence") or ds
    centers, widths = item.get("WindowCenter"), item.get("WindowWidth")
    if centers is None or widths is None:
        return ()
    centers = list(centers) if isinstance(centers, MultiValue) else [centers]
    widths = list(widths) if isinstance(widths, MultiValue) else [widths]
    names = item.get("WindowCenterWidthExplanation")
    names = list(names) if isinstance(names, MultiValue) else ([] if names in (None, "") else [names])
    pivot = _monochrome1_pivot(ds, frame)
    windows = []
    for i, (center, width) in enumerate(zip(centers, widths, strict=False)):
        try:
            name = str(names[i]) if i < len(names) else f"DICOM {i + 1}"
            center = float(center) if pivot is None else pivot - float(center)
            windows.append(Window(center, float(width), name))
        except (TypeError, ValueError):
            continue
    return tuple(windows)


def is_hu(ds: Dataset) -> bool:
    """True when the rescaled values are Hounsfield units (CT, unless RescaleType says otherwise)."""
    item = functional_group(ds, 0, "PixelValueTransformationSequence")
    source = item if item is not None and "RescaleType" in item else ds
    rescale_type = str(source.get("RescaleType", "HU") or "HU").upper()
    return str(ds.get("Modality", "")).upper() == "CT" and rescale_type in ("HU", "")


def frame_values(ds: Dataset, stored: np.ndarray, frame: int) -> tuple[np.ndarray, bool, tuple[str, ...]]:
    """Stored values of one frame to float32 display-ready values: (pixels, hu, notes)."""
    notes: list[str] = []
    if stored.ndim == 2 and str(ds.get("PhotometricInterpretation", "")).upper() == "PALETTE COLOR":
        stored = apply_color_lut(stored, ds)  # the stored values are indices into the palette, not grey levels
        if stored.dtype.itemsize > 1:  # 16-bit palette entries: bring them to 0…255
            stored = stored.astype(np.float32) / np.float32(257.0)
    if stored.ndim == 3:  # colour: the paper's exports are grey, so take luminance
        stored = stored[..., 0] * 0.299 + stored[..., 1] * 0.587 + stored[..., 2] * 0.114
        notes.append("colour image converted to grey")
    hu = is_hu(ds)
    if "ModalityLUTSequence" in ds and "RescaleSlope" not in ds:
        values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)
    else:
        slope, intercept = _rescale(ds, frame)
        values = stored.astype(np.float32, copy=True)
        if slope != 1.0:
            values *= np.float32(slope)
        if intercept != 0.0:
            values += np.float32(intercept)
    pivot = _monochrome1_pivot(ds, frame)
    if pivot is not None:
        values = (np.float32(pivot) - values).astype(np.float32)
        notes.append("MONOCHROME1 inverted so that higher values are brighter")
    elif str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        notes.append("MONOCHROME1 ignored for display: values are HU, shown with bone bright")
    return values, hu, tuple(notes)


def integer_values(ds: Dataset, stored: np.ndarray, frame: int) -> np.ndarray | None:
    """Rescaled values as int16 when that is exact (grey, MONOCHROME2, slope 1, whole intercept), else None.

    This is the common CT case; it halves a volume's memory and avoids float conversions.
    """
    if stored.ndim != 2 or stored.dtype.kind not in "iu" or "ModalityLUTSequence" in ds:
        return None
    if str(ds.get("PhotometricInterpretation", "")).upper() != "MONOCHROME2":
        return None
    slope, intercept = _rescale(ds, frame)
    if slope != 1.0 or intercept != round(intercept):
        return None
    if stored.dtype.itemsize <= 2 and stored.dtype.kind == "i" and intercept == 0:
        return stored.astype(np.int16, copy=False)
    values = stored.astype(np.int32)
    values += int(intercept)
    if values.min() < -32768 or values.max() > 32767:
        return None
    return values.astype(np.int16)


def _monochrome1_pivot(ds: Dataset, frame: int) -> float | None:
    """For a MONOCHROME1 frame that is not HU: the sum of its lowest and highest rescaled values, which inverting
    mirrors about (``pivot - value``). None when the frame is not inverted."""
    if str(ds.get("PhotometricInterpretation", "")).upper() != "MONOCHROME1" or is_hu(ds):
        return None
    bits = int(ds.get("BitsStored") or 16)
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    slope, intercept = _rescale(ds, frame)
    return low * slope + intercept + high * slope + intercept
