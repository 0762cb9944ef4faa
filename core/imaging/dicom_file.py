"""Parsing one DICOM file into a pydicom dataset, refusing what is not readable DICOM.

* :func:`read_dataset` parses a file (with or without its pixel data) after the size limits of
  :mod:`core.imaging.dicom_limits`, and refuses an empty, truncated or non-DICOM file and an unknown transfer syntax.
* :func:`file_errors` turns whatever a library raises on a file's content into a :class:`DicomReadError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from core.errors import DicomReadError, NotDicomError, UnsupportedTransferSyntaxError, VertebraReviewError
from core.fileio import read_failure
from core.imaging.dicom_limits import check_dicom_file

_DEFER_SIZE = 4096


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
    except OSError as exc:
        raise read_failure(DicomReadError, exc, path, "DICOM file") from exc
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
