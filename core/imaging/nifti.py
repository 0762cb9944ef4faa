"""Reading NIfTI volumes with nibabel.

Before nibabel reads anything past the header, :func:`check_nifti_header` checks what the header claims (the voxel
data, the extensions before it, what a ``.nii.gz`` inflates to) against :mod:`core.imaging.limits`, so a 385-byte file
that declares 8 GiB of voxels, or a 4 MB ``.nii.gz`` that inflates to 4 GiB, is refused before memory is touched.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path
from typing import IO

import nibabel as nib
import numpy as np

from core.errors import NiftiReadError
from core.imaging import limits
from core.imaging.image import Volume
from core.imaging.limits import in_memory_bytes, refuse_over, shape_text

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: Kept for readers that still count voxels; :func:`read_nifti` limits bytes (:mod:`core.imaging.limits`).
MAX_VOXELS = 1024**3
#: NIfTI-1 and NIfTI-2 header sizes (``sizeof_hdr``) and their header classes.
_HEADER_CLASSES: dict[int, type[nib.Nifti1Header]] = {348: nib.Nifti1Header, 540: nib.Nifti2Header}
_EXTENSION_HEADER_BYTES = 8


def _hand_nibabel_records_to_logging() -> None:
    """nibabel prints what it fixes in a header ("pixdim[1,2,3] should be non-zero; setting 0 dims to 1") through a
    handler of its own, past any filter: remove it, so that its records go up the logging tree like every other
    library's (the command line shows them only with ``--debug``; our line says what is wrong with the file)."""
    logger = logging.getLogger("nibabel.global")
    for handler in list(logger.handlers):
        if type(handler) is logging.StreamHandler:
            logger.removeHandler(handler)


_hand_nibabel_records_to_logging()


def is_nifti(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(NIFTI_SUFFIXES)


def open_nifti(path: Path) -> tuple[nib.Nifti1Image, tuple[int, ...]]:
    """A NIfTI file opened lazily after its byte limits are checked from the header, with its shape (a trailing
    singleton fourth axis dropped). Raises NiftiReadError naming the file."""
    check_nifti_header(path)  # the byte limits, from the header, before nibabel reads anything
    try:
        image = nib.load(path)
    except FileNotFoundError as exc:
        raise NiftiReadError("file not found", path) from exc
    except Exception as exc:
        raise NiftiReadError(f"not a readable NIfTI file ({type(exc).__name__}: {exc})", path) from exc
    shape = tuple(int(n) for n in image.shape)
    return image, shape[:3] if len(shape) == 4 and shape[3] == 1 else shape


def read_nifti(path: str | Path) -> Volume:
    """Read a 3D NIfTI volume. A 4D file with one volume is accepted; label maps are kept as integers.

    Values are taken as HU when the data look like CT (a floor below -500 and a ceiling under 5000).
    """
    path = Path(path)
    image, shape = open_nifti(path)
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3:
        raise NiftiReadError(f"expected a 3D volume, found shape {image.shape}", path)
    affine = image.affine
    if affine is None or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise NiftiReadError("the header has no usable voxel-to-patient affine", path)
    raw, scaled = _voxels(image, shape, path)
    is_label = (
        not scaled and raw.dtype.kind in "iub" and raw.size and raw.min() >= 0 and raw.max() < 1024 and _few_values(raw)
    )
    voxels = raw if is_label else np.asarray(raw, dtype=np.float32)
    if raw.dtype.kind == "f" and not np.all(np.isfinite(voxels)):  # whole numbers are always finite
        voxels = np.nan_to_num(voxels, nan=float(np.nanmin(voxels)) if np.isfinite(voxels).any() else 0.0)
    hu = (not is_label) and bool(voxels.size) and float(voxels.min()) < -500 and float(voxels.max()) < 5000
    return Volume(
        voxels=voxels, affine=np.asarray(affine, dtype=float), source=path, hu=hu, is_label_map=bool(is_label)
    )


def _voxels(image: nib.Nifti1Image, shape: tuple[int, ...], path: Path) -> tuple[np.ndarray, bool]:
    """(the voxels, scaled): stored values, or float32 values when the header scales them (never float64)."""
    proxy = image.dataobj
    slope, inter = float(getattr(proxy, "slope", 1.0)), float(getattr(proxy, "inter", 0.0))
    try:
        raw = np.asanyarray(proxy.get_unscaled() if hasattr(proxy, "get_unscaled") else proxy).reshape(shape)
    except (EOFError, OSError, ValueError, zlib.error, gzip.BadGzipFile) as exc:
        raise NiftiReadError(f"voxel data is truncated or corrupt ({exc})", path) from exc
    if (slope, inter) == (1.0, 0.0) or not (np.isfinite(slope) and np.isfinite(inter)):
        return raw, False
    values = raw.astype(np.float32)
    values *= np.float32(slope)
    values += np.float32(inter)
    return values, True


def _few_values(raw: np.ndarray) -> bool:
    sample = raw.reshape(-1)[:: max(1, raw.size // 200_000)]
    return len(np.unique(sample)) <= 256


# -- limits, from the header alone ------------------------------------------------------------------------------------
def check_nifti_header(path: Path) -> None:
    """Refuse, from the header alone, a NIfTI whose voxels, extensions or inflated size exceed the limits.

    Reads at most the header (540 bytes) and the 8-byte heads of its extensions. A file whose header is not NIfTI
    is left to nibabel, which says why.
    """
    compressed = path.name.lower().endswith(".gz")
    try:
        with (gzip.open(path, "rb") if compressed else path.open("rb")) as handle:
            header, header_size, has_extensions = _parse_header(handle)
            layout = None if header is None else _layout(header)
            if header is None or layout is None:
                return
            shape, dtype, offset = layout
            count = int(np.prod(shape, dtype=object))
            claim = f"{shape_text(shape)} voxels of {dtype.name}"
            refuse_over(in_memory_bytes(count, dtype.itemsize), limits.MAX_VOLUME_BYTES, claim, NiftiReadError, path)
            total = offset + count * dtype.itemsize
            if compressed:
                what = f"{claim} after a {offset}-byte header, {total} bytes once inflated"
                refuse_over(total, limits.MAX_INFLATED_BYTES, what, NiftiReadError, path)
            else:
                what = f"{claim} after a {offset}-byte header"
                refuse_over(total, limits.MAX_FILE_BYTES, what, NiftiReadError, path)
                size = path.stat().st_size
                if total > size:
                    raise NiftiReadError(
                        f"voxel data is truncated: the header claims {total} bytes, the file holds {size}", path
                    )
            if has_extensions:
                _check_extensions(handle, header, header_size, offset, path)
    except FileNotFoundError as exc:
        raise NiftiReadError("file not found", path) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise NiftiReadError(f"not a readable NIfTI file ({type(exc).__name__}: {exc})", path) from exc


def _parse_header(handle: IO[bytes]) -> tuple[nib.Nifti1Header | None, int, bool]:
    """(header, its size, whether the extension flag is set); header None when this is not a NIfTI header."""
    block = handle.read(max(_HEADER_CLASSES) + 4)
    for size, klass in _HEADER_CLASSES.items():
        for order in ("little", "big"):
            if len(block) >= size and int.from_bytes(block[:4], order) == size:
                try:
                    header = klass(block[:size], check=False)
                except Exception:  # noqa: BLE001 - nibabel says why when it loads the file
                    return None, size, False
                handle.seek(size + 4)
                return header, size, len(block) > size and block[size] != 0
    return None, 0, False


def _layout(header: nib.Nifti1Header) -> tuple[tuple[int, ...], np.dtype, int] | None:
    """(shape, dtype, voxel offset) as the header claims them; None when nibabel cannot make sense of them."""
    try:
        shape = tuple(int(n) for n in header.get_data_shape())
        dtype = np.dtype(header.get_data_dtype())
        offset = int(header.get_data_offset())
    except Exception:  # noqa: BLE001 - nibabel says why when it loads the file
        return None
    return tuple(max(n, 0) for n in shape), dtype, max(offset, 0)


def _check_extensions(handle: IO[bytes], header: nib.Nifti1Header, header_size: int, offset: int, path: Path) -> None:
    """Walk the extension heads as nibabel will, refusing sizes that would make it read past the voxel offset (or,
    for sizes of 8 bytes or fewer, the whole rest of the file)."""
    position = header_size + 4
    remaining = offset - position
    if remaining < 0:
        raise NiftiReadError(
            f"the header flags extensions but puts the voxel data at byte {offset}, inside the header", path
        )
    order = "little" if header.endianness == "<" else "big"
    while remaining >= 16:
        head = handle.read(_EXTENSION_HEADER_BYTES)
        if len(head) < _EXTENSION_HEADER_BYTES:
            raise NiftiReadError(f"truncated: the file ends inside its header extensions (byte {position})", path)
        esize = int.from_bytes(head[:4], order, signed=True)
        if not _EXTENSION_HEADER_BYTES < esize <= remaining:
            raise NiftiReadError(
                f"the file claims a header extension of {esize} bytes at byte {position}; "
                f"the limit is the {remaining} bytes before its voxel data",
                path,
            )
        handle.seek(position + esize)
        position += esize
        remaining -= esize
