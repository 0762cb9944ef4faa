"""How much a file may make us read, inflate and allocate: the one home of every size limit on input files.

Each reader checks these from the header, before it allocates anything, and refuses with its own typed error (a
:class:`~core.errors.DicomReadError`, :class:`~core.errors.NiftiReadError`, …) that names the file and says what the
file claims and what the limit is. Limits are in bytes, not voxels: a float64 voxel costs four times an int16 one.

The limits are generous for real CT: a 2000-slice 512 x 512 series (1 GB of int16, 2 GB as float32) still loads,
and so does its sagittal reformat. They are read at call time (``limits.MAX_…``), so a test can lower one.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from core.errors import VertebraReviewError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

#: Bytes read from one image file: a DICOM file's size; a NIfTI's header, extensions and voxel data.
MAX_FILE_BYTES = 2 * GiB
#: Bytes a compressed file may inflate to: a ``.nii.gz`` (header, extensions and voxels), a deflated DICOM dataset.
MAX_INFLATED_BYTES = 2 * GiB
#: Bytes of decoded image data in memory, counted as the larger of the stored values and their float32 copy: the
#: frames of one DICOM file, a DICOM series stacked into a volume, a NIfTI volume.
MAX_VOLUME_BYTES = 2 * GiB
#: Frames in one DICOM file (an enhanced CT of a whole body at 0.5 mm has about 4000).
MAX_FRAMES = 10_000
#: Bytes of one reformatted (float32) sagittal image: 64 MiB is 4096 x 4096 pixels. A viewer caching 32 of them
#: holds at most 2 GiB.
MAX_SAGITTAL_IMAGE_BYTES = 64 * MiB
#: Bytes of one decoded 2-D image, counted at least as float32, as the sagittal image: a PNG or JPEG slice, a LabelMe
#: file's ``imageData``, one frame of a DICOM file. A 250 KB PNG or a 2 KB JPEG 2000 frame can claim 100 MP; CT
#: slices are under 1 MP.
MAX_IMAGE_BYTES = 64 * MiB
#: Bytes of one LabelMe JSON file (checked before it is read).
MAX_ANNOTATION_BYTES = 64 * MiB
#: Bytes of a study's ``study.json`` (checked before it is read; 100,000 import records take about 25 MB).
MAX_SETTINGS_BYTES = 64 * MiB

#: Voxels and pixels are counted at least this wide: readers convert grey values to float32.
FLOAT32_BYTES = 4


def size_text(count: int | float) -> str:
    """A byte count for people: ``8.0 GiB``, ``64 MiB``, ``385 bytes``."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if count >= unit:
            value = count / unit
            return f"{value:.0f} {name}" if value == round(value) else f"{value:.1f} {name}"
    return f"{int(count)} bytes"


def shape_text(shape: Sequence[int]) -> str:
    return " x ".join(str(int(n)) for n in shape)


def in_memory_bytes(count: int, stored_bytes: float) -> int:
    """Bytes of ``count`` values stored ``stored_bytes`` wide, at least as float32 (what readers convert to)."""
    return int(count * max(stored_bytes, FLOAT32_BYTES))


def refuse_over(
    amount: int,
    limit: int,
    claim: str,
    error: type[VertebraReviewError],
    path: str | PathLike[str] | None,
    *,
    unit: str = "bytes",
    claimant: str = "the file",
) -> None:
    """Raise ``error`` naming ``path`` when ``amount`` exceeds ``limit``: "the file claims …; the limit is …".

    ``claim`` says what the header states (``"2147483647 frames"``, ``"1024 x 1024 x 1000 voxels of float64"``);
    with ``unit`` ``"bytes"`` the amount in bytes follows it and the limit is written in bytes.
    """
    if amount <= limit:
        return
    if unit == "bytes":
        raise error(f"{claimant} claims {claim} ({size_text(amount)}); the limit is {size_text(limit)}", path)
    raise error(f"{claimant} claims {claim}; the limit is {limit} {unit}", path)
