"""Reading one DICOM file: its header (:func:`read_header`), or every frame as slices in HU with spacing, windows and
orientation (:func:`read_dicom`, one decoded frame at a time with :func:`frame_to_slice`).

The steps live in their own modules: parsing the file (:mod:`core.imaging.dicom_file`), its header and geometry
(:mod:`core.imaging.dicom_header`), decoding the pixel data (:mod:`core.imaging.dicom_pixels`), and stored values to
shown ones (:mod:`core.imaging.dicom_values`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from core.imaging.dicom_file import file_errors, read_dataset
from core.imaging.dicom_header import (
    DicomHeader,
    FrameGeometry,
    int_or_none,
    orientation_name,
    pixel_spacing,
    read_header_from,
    sagittal_position_mm,
)
from core.imaging.dicom_pixels import decode_frames
from core.imaging.dicom_values import dicom_windows, frame_values
from core.imaging.image import SliceImage


def read_header(path: Path) -> DicomHeader:
    """Read the header of one DICOM file (no pixel decoding)."""
    return read_header_from(read_dataset(path, pixels=False), path)


def read_dicom(path: str | Path) -> list[SliceImage]:
    """Read every frame of one DICOM file as slices: HU for CT, spacing, windows, and MONOCHROME1 handled."""
    path = Path(path)
    ds = read_dataset(path, pixels=True)
    header = read_header_from(ds, path)
    stored = decode_frames(ds, path)
    return [frame_to_slice(ds, header, stored[i], i) for i in range(stored.shape[0])]


def frame_to_slice(ds: Dataset, header: DicomHeader, stored: np.ndarray, frame: int) -> SliceImage:
    """One decoded frame (``stored``, from :func:`decode_frames`) as a :class:`SliceImage`."""
    with file_errors(header.path, "pixel values cannot be converted"):
        values, hu, notes = frame_values(ds, stored, frame)
        geometry = header.frames[frame] if frame < len(header.frames) else FrameGeometry(None, None)
        path = header.path
        label = f"{path.name} frame {frame + 1} of {header.frame_count}" if header.frame_count > 1 else path.name
        return SliceImage(
            pixels=np.ascontiguousarray(values),
            source=path,
            spacing_mm=pixel_spacing(ds, frame),
            hu=hu,
            windows=dicom_windows(ds, frame),
            orientation=orientation_name(geometry.orientation),
            label=label,
            bits=int_or_none(ds.get("BitsStored")),
            notes=notes,
            position_mm=sagittal_position_mm(geometry),
        )
