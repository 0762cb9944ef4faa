"""The limits of :mod:`core.imaging.limits` applied to DICOM files, each checked before the memory it guards is used.

* :func:`check_dicom_file`, before pydicom parses a file: its size, and what a deflated dataset inflates to (pydicom
  inflates the whole of it in memory).
* :func:`check_pixel_claims`, before the per-frame geometry is built and before pixels are decoded: the frame count,
  the decoded size of every frame together and of one frame (a 2 KB JPEG 2000 frame can claim 12000 x 12000
  pixels), and, for uncompressed pixel data, that the file holds the bytes its header claims (a header claiming
  2147483647 frames over 128 bytes of pixels is refused at once).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from core.errors import DicomReadError
from core.imaging import limits
from core.imaging.limits import in_memory_bytes, refuse_over, size_text

#: The elements that hold pixel values.
PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_DEFLATED = str(DeflatedExplicitVRLittleEndian).encode()
#: A UID is at most 64 characters.
_UID_BYTES = 64
#: Explicit-VR value representations whose length takes 4 bytes after 2 reserved ones (PS3.5 7.1.2).
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_INFLATE_CHUNK = 1024 * 1024


def check_dicom_file(path: Path) -> None:
    """Refuse a file larger than MAX_FILE_BYTES, or a deflated dataset that inflates past MAX_INFLATED_BYTES (found
    by inflating it in chunks and counting, so memory stays at one chunk). Raises DicomReadError or OSError."""
    size = path.stat().st_size
    if size > limits.MAX_FILE_BYTES:
        raise DicomReadError(
            f"the file is {size_text(size)}; the limit is {size_text(limits.MAX_FILE_BYTES)} per file", path
        )
    with path.open("rb") as handle:
        syntax, start = _file_meta_syntax(handle)
        if syntax != _DEFLATED:
            return
        handle.seek(start)
        inflated = _inflated_size(handle, limits.MAX_INFLATED_BYTES)
    if inflated is not None and inflated > limits.MAX_INFLATED_BYTES:
        raise DicomReadError(
            f"the file claims a deflated dataset of more than {size_text(limits.MAX_INFLATED_BYTES)} once inflated "
            f"(from {size_text(size)}); the limit is {size_text(limits.MAX_INFLATED_BYTES)}",
            path,
        )


def _file_meta_syntax(handle: BinaryIO) -> tuple[bytes | None, int]:
    """(TransferSyntaxUID, where the dataset begins) from the file meta group (0002, explicit VR little endian),
    walked element by element; values other than the syntax are skipped, not read."""
    position = 132 if handle.read(132)[128:] == b"DICM" else 0
    syntax = None
    while True:
        handle.seek(position)
        head = handle.read(12)
        if len(head) < 8 or int.from_bytes(head[:2], "little") != 0x0002:
            return syntax, position
        element, vr = int.from_bytes(head[2:4], "little"), head[4:6]
        if vr in _LONG_VRS:
            offset, length = 12, int.from_bytes(head[8:12], "little")
        else:
            offset, length = 8, int.from_bytes(head[6:8], "little")
        if element == 0x0010:
            handle.seek(position + offset)
            syntax = handle.read(min(length, _UID_BYTES)).rstrip(b"\x00 ")
        position += offset + length


def _inflated_size(handle: BinaryIO, limit: int) -> int | None:
    """Bytes the raw deflate stream from ``handle`` inflates to, counting no further than just past ``limit``; None
    when it is not a deflate stream (pydicom then reports the error)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
        while not inflater.eof and (chunk := handle.read(_INFLATE_CHUNK)):
            while chunk and not inflater.eof:
                total += len(inflater.decompress(chunk, _INFLATE_CHUNK))
                if total > limit:
                    return total
                chunk = inflater.unconsumed_tail
    except zlib.error:
        return None
    return total


def check_pixel_claims(ds: Dataset, path: Path) -> None:
    """Refuse a header whose frames or decoded pixels exceed the limits, or whose uncompressed pixel data is shorter
    than the frames it claims. Raises DicomReadError; reads nothing but the header's values."""
    frames = max(1, int(ds.get("NumberOfFrames") or 1))
    refuse_over(frames, limits.MAX_FRAMES, f"{frames} frames", DicomReadError, path, unit="frames")
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    samples = max(1, int(ds.get("SamplesPerPixel") or 1))
    bits = int(ds.get("BitsAllocated") or 16)
    pixels = frames * rows * columns
    claim = f"{frames} frame{'s' if frames > 1 else ''} of {columns} x {rows} pixels"
    if samples > 1:
        claim += f" with {samples} samples each"
    stored_bytes = samples * max(1, bits // 8)
    refuse_over(in_memory_bytes(pixels, stored_bytes), limits.MAX_VOLUME_BYTES, claim, DicomReadError, path)
    image = f"{'an image' if frames == 1 else 'frames'} of {columns} x {rows} pixels"
    refuse_over(in_memory_bytes(rows * columns, stored_bytes), limits.MAX_IMAGE_BYTES, image, DicomReadError, path)
    held = _pixel_bytes_held(ds)
    if held is None or _is_compressed(ds):
        return
    expected = _expected_bytes(pixels * samples, bits, str(ds.get("PhotometricInterpretation", "")))
    if held < expected:
        raise DicomReadError(
            f"truncated: the file claims {claim} ({expected} bytes of pixel data); its pixel data holds {held} bytes",
            path,
        )


def _expected_bytes(samples: int, bits: int, photometric: str) -> int:
    """Bytes of uncompressed pixel data for ``samples`` values (as pydicom's ``get_expected_length``)."""
    length = (samples + 7) // 8 if bits == 1 else samples * (bits // 8)
    return length // 3 * 2 if photometric.upper() == "YBR_FULL_422" else length


def _pixel_bytes_held(ds: Dataset) -> int | None:
    """Length of the pixel data element as stored (None when undefined: encapsulated, or unknown)."""
    for keyword in PIXEL_TAGS:
        if keyword not in ds:
            continue
        element = ds.get_item(keyword, keep_deferred=True)
        length = getattr(element, "length", None)
        if length is None:
            value = getattr(element, "value", None)
            length = len(value) if isinstance(value, bytes | bytearray) else None
        return None if length is None or length == 0xFFFFFFFF else int(length)
    return None


def _is_compressed(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    return bool(syntax) and UID(syntax).is_compressed
