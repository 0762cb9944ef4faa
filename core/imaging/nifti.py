"""Reading NIfTI volumes with nibabel."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from core.errors import NiftiReadError
from core.imaging.image import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: Volumes above this many voxels are refused (a 1024^3 volume is 1 Gvoxel); real CT is far smaller.
MAX_VOXELS = 1024**3


def is_nifti(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(NIFTI_SUFFIXES)


def read_nifti(path: str | Path) -> Volume:
    """Read a 3D NIfTI volume. A 4D file with one volume is accepted; label maps are kept as integers.

    Values are taken as HU when the data look like CT (a floor below -500 and a ceiling under 5000).
    """
    path = Path(path)
    try:
        image = nib.load(path)
    except FileNotFoundError as exc:
        raise NiftiReadError("file not found", path) from exc
    except Exception as exc:
        raise NiftiReadError(f"not a readable NIfTI file ({type(exc).__name__}: {exc})", path) from exc
    shape = tuple(int(n) for n in image.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3:
        raise NiftiReadError(f"expected a 3D volume, found shape {image.shape}", path)
    if int(np.prod(shape)) > MAX_VOXELS:
        raise NiftiReadError(f"volume of {image.shape} voxels is larger than the {MAX_VOXELS} voxel limit", path)
    try:
        raw = np.asanyarray(image.dataobj).reshape(shape)
    except (EOFError, OSError, ValueError, zlib.error, gzip.BadGzipFile) as exc:
        raise NiftiReadError(f"voxel data is truncated or corrupt ({exc})", path) from exc
    affine = image.affine
    if affine is None or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise NiftiReadError("the header has no usable voxel-to-patient affine", path)
    is_label = raw.dtype.kind in "iub" and raw.size and raw.min() >= 0 and raw.max() < 1024 and _few_values(raw)
    voxels = raw if is_label else np.asarray(raw, dtype=np.float32)
    if not is_label and not np.all(np.isfinite(voxels)):
        voxels = np.nan_to_num(voxels, nan=float(np.nanmin(voxels)) if np.isfinite(voxels).any() else 0.0)
    hu = (not is_label) and bool(voxels.size) and float(voxels.min()) < -500 and float(voxels.max()) < 5000
    return Volume(
        voxels=voxels, affine=np.asarray(affine, dtype=float), source=path, hu=hu, is_label_map=bool(is_label)
    )


def _few_values(raw: np.ndarray) -> bool:
    sample = raw.reshape(-1)[:: max(1, raw.size // 200_000)]
    return len(np.unique(sample)) <= 256
