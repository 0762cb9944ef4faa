"""Writing anonymous CT slices as DICOM, from a whitelist of tags.

Only geometry, pixel and display tags are written, so nothing identifying in a source file can leak through.
Pixels are HU stored as signed 16-bit integers (slope 1, intercept 0).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian

from core.fileio import atomic_write_bytes
from core.imaging.windowing import Window

_UID_NAMESPACE = uuid.UUID("6f1c2b1e-3f55-4f43-9c1a-7d8e0f6a2b90")


def derived_uid(*parts: str) -> str:
    """A ``2.25.`` UID from a name-based UUID of ``parts``: the same parts give the same UID."""
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, chr(31).join(str(p) for p in parts)).int}"


@dataclass(frozen=True)
class SliceTags:
    """What one written slice says about itself. UIDs come from :func:`derived_uid`."""

    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    frame_of_reference_uid: str
    instance_number: int
    series_number: int = 1
    series_description: str = ""
    spacing_mm: tuple[float, float] = (1.0, 1.0)
    thickness_mm: float | None = None
    position_lps: Sequence[float] | None = None
    orientation_lps: Sequence[float] | None = None
    window: Window | None = None
    image_type: tuple[str, ...] = ("DERIVED", "SECONDARY")


def ct_slice_bytes(hu: np.ndarray, tags: SliceTags) -> bytes:
    """Encode a 2D HU array as a DICOM CT Image Storage file (explicit VR little endian)."""
    if hu.ndim != 2:
        raise ValueError(f"a CT slice is 2D, not shape {hu.shape}")
    stored = np.clip(np.rint(np.nan_to_num(hu, nan=-1024.0)), -32768, 32767).astype("<i2")
    ds = Dataset()
    ds.file_meta = _ct_file_meta(tags.sop_uid)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(tags.image_type)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = tags.sop_uid
    ds.Modality = "CT"
    ds.Manufacturer = "Vertebra Review"
    ds.PatientName = tags.patient_id
    ds.PatientID = tags.patient_id
    ds.PatientIdentityRemoved = "YES"
    ds.StudyInstanceUID = tags.study_uid
    ds.SeriesInstanceUID = tags.series_uid
    ds.FrameOfReferenceUID = tags.frame_of_reference_uid
    ds.StudyID = tags.patient_id[:16]
    ds.SeriesNumber = tags.series_number
    ds.InstanceNumber = tags.instance_number
    ds.SeriesDescription = tags.series_description[:64]
    if tags.position_lps is not None and tags.orientation_lps is not None:
        ds.ImagePositionPatient = [_ds(v) for v in tags.position_lps]
        ds.ImageOrientationPatient = [_ds(v) for v in tags.orientation_lps]
    ds.PixelSpacing = [_ds(tags.spacing_mm[0]), _ds(tags.spacing_mm[1])]
    if tags.thickness_mm is not None:
        ds.SliceThickness = _ds(tags.thickness_mm)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(hu.shape[0]), int(hu.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    if tags.window is not None:
        ds.WindowCenter = _ds(tags.window.center)
        ds.WindowWidth = _ds(tags.window.width)
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _ct_file_meta(sop_uid: str) -> FileMetaDataset:
    """The file meta information of one CT Image Storage instance, encoded explicit VR little endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def write_ct_slice(path: str | Path, hu: np.ndarray, tags: SliceTags) -> Path:
    """Write one anonymous CT slice atomically."""
    return atomic_write_bytes(path, ct_slice_bytes(hu, tags))


def _ds(value: float) -> str:
    """A DICOM decimal string (at most 16 characters)."""
    text = f"{float(value):.6g}"
    return text if len(text) <= 16 else f"{float(value):.8e}"[:16]
