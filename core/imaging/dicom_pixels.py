"""Decoding a DICOM file's pixel data to stored values, one array of every frame.

Compressed transfer syntaxes are decoded by pydicom's pixel plugins: pylibjpeg with pylibjpeg-libjpeg (JPEG baseline,
extended, lossless and JPEG-LS), pylibjpeg-openjpeg (JPEG 2000 and HTJ2K) and pylibjpeg-rle or pydicom itself (RLE).
A file without pixel data, or whose syntax no installed plugin decodes, is refused with a message that says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from core.errors import DicomReadError, UnsupportedTransferSyntaxError
from core.imaging.dicom_file import file_errors
from core.imaging.dicom_limits import PIXEL_TAGS, check_pixel_claims

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

_IMAGE_SOP_WITHOUT_PIXELS = {
    "1.2.840.10008.5.1.4.1.1.481.5": "an RT Plan",
    "1.2.840.10008.5.1.4.1.1.481.3": "an RT Structure Set",
    "1.2.840.10008.5.1.4.1.1.88.11": "a structured report",
    "1.2.840.10008.5.1.4.1.1.88.22": "a structured report",
    "1.2.840.10008.5.1.4.1.1.88.33": "a structured report",
}


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
