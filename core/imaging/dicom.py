"""Reading DICOM files: headers, pixel data in HU, windows, spacing and orientation.

Compressed transfer syntaxes are decoded by pydicom's pixel plugins: pylibjpeg with pylibjpeg-libjpeg (JPEG baseline,
extended, lossless and JPEG-LS), pylibjpeg-openjpeg (JPEG 2000 and HTJ2K) and pylibjpeg-rle or pydicom itself (RLE).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from core.errors import DicomReadError, NotDicomError, UnsupportedTransferSyntaxError, VertebraReviewError
from core.imaging.dicom_limits import PIXEL_TAGS, check_dicom_file, check_pixel_claims
from core.imaging.image import SliceImage
from core.imaging.windowing import Window

#: Packages that decode each family of compressed transfer syntax, for error messages.
_PLUGIN_FOR_SYNTAX: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.51": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.81": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.90": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg pylibjpeg-rle",
}

_DEFER_SIZE = 4096

_IMAGE_SOP_WITHOUT_PIXELS = {
    "1.2.840.10008.5.1.4.1.1.481.5": "an RT Plan",
    "1.2.840.10008.5.1.4.1.1.481.3": "an RT Structure Set",
    "1.2.840.10008.5.1.4.1.1.88.11": "a structured report",
    "1.2.840.10008.5.1.4.1.1.88.22": "a structured report",
    "1.2.840.10008.5.1.4.1.1.88.33": "a structured report",
}


@dataclass(frozen=True)
class FrameGeometry:
    """Where one frame lies in the patient: DICOM (LPS) position of its first pixel and its row/column cosines."""

    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None

    @property
    def normal(self) -> np.ndarray | None:
        if self.orientation is None:
            return None
        row, col = np.asarray(self.orientation[:3]), np.asarray(self.orientation[3:])
        return np.cross(row, col)


def sagittal_position_mm(geometry: FrameGeometry) -> float | None:
    """A sagittal frame's RAS x in mm (from its first pixel's position), else None."""
    normal = geometry.normal
    if geometry.position is None or normal is None or abs(float(normal[0])) < 0.9:
        return None
    return -float(geometry.position[0])  # DICOM's x grows towards the patient's left (LPS): RAS x is its negative


@dataclass(frozen=True)
class DicomHeader:
    """The header fields that discovery, sorting and grouping need (read without pixel data)."""

    path: Path
    sop_class_uid: str
    modality: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    series_description: str
    series_number: int | None
    instance_number: int | None
    rows: int
    columns: int
    frames: tuple[FrameGeometry, ...]
    pixel_spacing: tuple[float, float] | None
    has_pixels: bool
    transfer_syntax: str

    @property
    def frame_count(self) -> int:
        return len(self.frames)


def orientation_name(orientation: tuple[float, ...] | None) -> str:
    """``sagittal``, ``coronal`` or ``axial`` from the image orientation cosines (``oblique`` if under 30° off)."""
    if orientation is None:
        return "unknown"
    normal = np.abs(np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:])))
    axis = int(np.argmax(normal))
    name = ("sagittal", "coronal", "axial")[axis]
    return name if normal[axis] >= math.cos(math.radians(30)) else f"oblique ({name})"


@contextmanager
def file_errors(path: Path, what: str) -> Iterator[None]:
    """Whatever pydicom, a pixel plugin or numpy raises on the file's content becomes a :class:`DicomReadError` that
    names the file (``what`` says what failed): one bad file is a reason to skip it, never an internal error that
    stops a batch. The library's own traceback stays on the exception's chain, for ``--debug``."""
    try:
        yield
    except VertebraReviewError:
        raise
    except MemoryError as exc:
        raise DicomReadError(f"{what}: not enough memory", path) from exc
    except Exception as exc:
        raise DicomReadError(f"{what} ({type(exc).__name__}: {exc})", path) from exc


def read_dataset(path: Path, *, pixels: bool) -> Dataset:
    """Parse a DICOM file. Raises :class:`DicomReadError` for anything that is not readable DICOM.

    With ``pixels=False`` large values (the pixel data) are skipped over, not loaded. A file larger than the limits of
    :mod:`core.imaging.limits`, or a deflated one that inflates past them, is refused before it is parsed.
    """
    defer = None if pixels else _DEFER_SIZE
    try:
        check_dicom_file(path)
        if path.stat().st_size == 0:
            raise NotDicomError("empty file (0 bytes), not a DICOM file", path)
        ds = pydicom.dcmread(path, defer_size=defer)
    except DicomReadError:
        raise
    except InvalidDicomError:
        # Files without the 128-byte preamble are still DICOM if they parse into a dataset with image tags.
        try:
            ds = pydicom.dcmread(path, defer_size=defer, force=True)
        except Exception as exc:
            raise NotDicomError("not a DICOM file", path) from exc
        if "SOPClassUID" not in ds and "Rows" not in ds:
            raise NotDicomError("not a DICOM file (no DICOM preamble and no image tags)", path) from None
    except FileNotFoundError as exc:
        raise DicomReadError("file not found", path) from exc
    except IsADirectoryError as exc:
        raise DicomReadError("is a folder, not a DICOM file", path) from exc
    except OSError as exc:
        raise DicomReadError(f"cannot read: {exc.strerror or exc}", path) from exc
    except Exception as exc:
        raise DicomReadError(f"truncated or corrupt DICOM header ({type(exc).__name__}: {exc})", path) from exc
    with file_errors(path, "truncated or corrupt DICOM header"):
        _check_complete(ds, path)
        meta = getattr(ds, "file_meta", None)
        implicit, little = ds.original_encoding
        if meta is not None and "TransferSyntaxUID" not in meta and implicit is not None:
            # No file meta (ACR-NEMA style): the syntax is the uncompressed encoding the parser found.
            syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
            meta.TransferSyntaxUID = syntax
        _check_transfer_syntax(meta, path)
    return ds


def _check_transfer_syntax(meta: Dataset | None, path: Path) -> None:
    """Refuse a file whose TransferSyntaxUID is not a transfer syntax pydicom knows (a vendor's private one, or
    another kind of UID): neither its header encoding nor its pixel data can be trusted to decode."""
    value = meta.get("TransferSyntaxUID") if meta is not None else None
    if value is None or str(value).strip() == "":
        return
    syntax = UID(str(value).strip())
    if syntax.is_transfer_syntax:
        return
    if not syntax.is_valid:
        kind = "not a valid UID"
    elif syntax.is_private:
        kind = "unknown, vendor-private"
    elif syntax.name != str(syntax):
        kind = f"{syntax.name}, not a transfer syntax"
    else:
        kind = "unknown to this version of pydicom"
    raise UnsupportedTransferSyntaxError(
        f"transfer syntax {_brief_uid(syntax)} ({kind}) cannot be decoded; export the image again in a standard "
        "DICOM transfer syntax (uncompressed, JPEG or JPEG 2000)",
        path,
    )


def _brief_uid(uid: str) -> str:
    return uid if len(uid) <= 64 else f"{uid[:61]}..."


def _check_complete(ds: Dataset, path: Path) -> None:
    """Raise DicomReadError when the file ends inside its last data element (pydicom stops there silently)."""
    if len(ds) == 0:
        raise DicomReadError("truncated or corrupt: no data element could be read after the file header", path)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return  # offsets are in the inflated stream, not the file
    last = ds.get_item(max(ds.keys()), keep_deferred=True)
    length, tell = getattr(last, "length", None), getattr(last, "value_tell", None)
    if length is None or tell is None or length == 0xFFFFFFFF:
        return
    missing = tell + length - path.stat().st_size
    if missing > 0:
        name = keyword_for_tag(last.tag) or str(last.tag)
        raise DicomReadError(f"truncated: the file ends {missing} bytes before the end of its {name}", path)


def read_header(path: Path) -> DicomHeader:
    """Read the header of one DICOM file (no pixel decoding)."""
    return read_header_from(read_dataset(path, pixels=False), path)


def _header_from_dataset(ds: Dataset, path: Path, *, has_pixels: bool) -> DicomHeader:
    check_pixel_claims(ds, path)  # before a geometry is built for every frame the header claims
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    frame_count = max(1, int(ds.get("NumberOfFrames") or 1))
    return DicomHeader(
        path=path,
        sop_class_uid=str(ds.get("SOPClassUID", "")),
        modality=str(ds.get("Modality", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        series_description=str(ds.get("SeriesDescription", "")),
        series_number=_int_or_none(ds.get("SeriesNumber")),
        instance_number=_int_or_none(ds.get("InstanceNumber")),
        rows=int(ds.get("Rows") or 0),
        columns=int(ds.get("Columns") or 0),
        frames=tuple(_frame_geometry(ds, i) for i in range(frame_count)),
        pixel_spacing=pixel_spacing(ds),
        has_pixels=has_pixels,
        transfer_syntax=syntax,
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _functional_group(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The item of ``sequence`` for ``frame`` in an enhanced multi-frame object (per-frame first, then shared)."""
    for groups_name, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(groups_name)
        items = groups[index].get(sequence) if groups and index < len(groups) else None
        if items:
            return items[0]
    return None


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        return None
    return numbers


def _frame_geometry(ds: Dataset, frame: int) -> FrameGeometry:
    position_item = _functional_group(ds, frame, "PlanePositionSequence")
    orientation_item = _functional_group(ds, frame, "PlaneOrientationSequence")
    position = _floats((position_item or ds).get("ImagePositionPatient"), 3)
    orientation = _floats((orientation_item or ds).get("ImageOrientationPatient"), 6)
    if orientation is not None and np.linalg.norm(np.cross(orientation[:3], orientation[3:])) < 0.5:
        orientation = None
    return FrameGeometry(position, orientation)  # type: ignore[arg-type]


def pixel_spacing(ds: Dataset, frame: int = 0) -> tuple[float, float] | None:
    """(row spacing, column spacing) in mm, from PixelSpacing, the functional groups, or ImagerPixelSpacing."""
    measures = _functional_group(ds, frame, "PixelMeasuresSequence")
    for source in (measures, ds):
        if source is None:
            continue
        for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
            spacing = _floats(source.get(keyword), 2)
            if spacing and spacing[0] > 0 and spacing[1] > 0:
                return spacing  # type: ignore[return-value]
    return None


def _rescale(ds: Dataset, frame: int) -> tuple[float, float]:
    item = _functional_group(ds, frame, "PixelValueTransformationSequence")
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
    item = _functional_group(ds, frame, "FrameVOILUTSequence") or ds
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
    item = _functional_group(ds, 0, "PixelValueTransformationSequence")
    source = item if item is not None and "RescaleType" in item else ds
    rescale_type = str(source.get("RescaleType", "HU") or "HU").upper()
    return str(ds.get("Modality", "")).upper() == "CT" and rescale_type in ("HU", "")


def decode_frames(ds: Dataset, path: Path) -> np.ndarray:
    """Decode the pixel data to a (frames, rows, columns) array of stored values, or (frames, rows, columns, 3)."""
    with file_errors(path, "cannot decode the pixel data"):
        return _decode_frames(ds, path)


def _decode_frames(ds: Dataset, path: Path) -> np.ndarray:
    if not any(tag in ds for tag in PIXEL_TAGS):
        what = _IMAGE_SOP_WITHOUT_PIXELS.get(str(ds.get("SOPClassUID", "")))
        kind = f"it is {what}, not an image" if what else "it is not an image"
        if not what and (ds.get("Rows") or "Image Storage" in UID(str(ds.get("SOPClassUID", ""))).name):
            kind = "its header describes an image: the file is truncated or incomplete"
        raise DicomReadError(f"has no pixel data ({kind})", path)
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", ""))) if "TransferSyntaxUID" in ds.file_meta else None
    _check_decoder(syntax, path)
    with file_errors(path, "malformed image tags"):
        check_pixel_claims(ds, path)  # before the decoder allocates every frame the header claims
    try:
        arr = ds.pixel_array
    except (ValueError, EOFError) as exc:
        raise DicomReadError(f"pixel data is truncated or corrupt ({exc})", path) from exc
    except (RuntimeError, NotImplementedError) as exc:
        name = syntax.name if syntax else "unknown"
        first_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DicomReadError(f"cannot decode {name} pixel data: {first_line.strip()}", path) from exc
    except Exception as exc:
        raise DicomReadError(f"cannot decode pixel data ({type(exc).__name__}: {exc})", path) from exc
    frames = max(1, int(ds.get("NumberOfFrames") or 1))
    samples = int(ds.get("SamplesPerPixel") or 1)
    if frames == 1:
        arr = arr[np.newaxis]
    if arr.ndim != (4 if samples > 1 else 3):
        raise DicomReadError(f"unexpected pixel array shape {arr.shape}", path)
    return arr


def _check_decoder(syntax: UID | None, path: Path) -> None:
    if syntax is None or not syntax.is_compressed:
        return
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise UnsupportedTransferSyntaxError(
            f"pixel data uses {syntax.name} ({syntax}), which no DICOM decoder supports; "
            "convert the file to an uncompressed or JPEG/JPEG 2000 syntax first (for example with dcmconv or gdcmconv)",
            path,
        ) from None
    if not decoder.is_available:
        packages = _PLUGIN_FOR_SYNTAX.get(str(syntax), "pylibjpeg")
        names = packages.replace(" ", " and ")
        raise UnsupportedTransferSyntaxError(
            f"pixel data uses {syntax.name}, and no installed plugin decodes it: "
            f"install {names} (pip install {packages})",
            path,
        )


def read_dicom(path: str | Path) -> list[SliceImage]:
    """Read every frame of one DICOM file as slices: HU for CT, spacing, windows, and MONOCHROME1 handled."""
    path = Path(path)
    ds = read_dataset(path, pixels=True)
    header = read_header_from(ds, path)
    stored = decode_frames(ds, path)
    return [frame_to_slice(ds, header, stored[i], i) for i in range(stored.shape[0])]


def read_header_from(ds: Dataset, path: Path) -> DicomHeader:
    with file_errors(path, "malformed image tags"):
        return _header_from_dataset(ds, path, has_pixels=any(tag in ds for tag in PIXEL_TAGS))


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
            bits=_int_or_none(ds.get("BitsStored")),
            notes=notes,
            position_mm=sagittal_position_mm(geometry),
        )
