"""Helpers for the image reader tests: DICOM copies with changed tags, crafted PNG chunks, affine comparisons and
running a snippet in a fresh interpreter."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

REPO = Path(__file__).resolve().parents[2]
#: ITU-R BT.601 luma weights, the ones Pillow and the DICOM reader use for colour → grey.
LUMA = np.array([0.299, 0.587, 0.114])


def rewrite_dicom(
    src: Path, dest: Path, edit: Callable[[Dataset], None] | None = None, *, decompress: bool = False
) -> Path:
    """Copy a DICOM file through pydicom, optionally decompressed and with ``edit`` applied to the dataset."""
    ds = pydicom.dcmread(src)
    if decompress:
        ds.decompress()
    if edit is not None:
        edit(ds)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dest)
    return dest


def copy_files(files: Iterable[Path], folder: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Copy files byte for byte into ``folder`` (under new names if given)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = list(files)
    names = [f.name for f in files] if names is None else list(names)
    return [Path(shutil.copyfile(f, folder / name)) for f, name in zip(files, names, strict=True)]


def header(path: Path) -> Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def position_along_normal(ds: Dataset) -> float:
    """ImagePositionPatient projected on the slice normal (row cosine x column cosine), from pydicom alone."""
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    return float(np.dot([float(v) for v in ds.ImagePositionPatient], normal))


def lps_to_ras(point: Iterable[float]) -> np.ndarray:
    x, y, z = (float(v) for v in point)
    return np.array([-x, -y, z])


def voxel_map(from_affine: np.ndarray, to_affine: np.ndarray) -> np.ndarray:
    """The integer 4x4 matrix taking voxel indices of one grid to those of another grid with the same voxels.

    Fails the test unless the two grids coincide: a signed axis permutation with whole-voxel offsets.
    """
    mapping = np.linalg.inv(to_affine) @ from_affine
    rounded = np.rint(mapping)
    np.testing.assert_allclose(mapping, rounded, atol=1e-4, err_msg="the grids do not share their voxels")
    linear = rounded[:3, :3]
    assert np.array_equal(np.abs(linear).sum(axis=0), [1, 1, 1]), f"not an axis permutation:\n{linear}"
    assert np.array_equal(np.abs(linear).sum(axis=1), [1, 1, 1]), f"not an axis permutation:\n{linear}"
    return rounded.astype(int)


def map_indices(mapping: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Apply a :func:`voxel_map` matrix to an (n, 3) array of voxel indices."""
    return indices @ mapping[:3, :3].T + mapping[:3, 3]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and a correct CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming_size(width: int, height: int, *, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    """A well-formed PNG header that claims ``width`` x ``height`` pixels, followed by a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter of this environment, from the repository root."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
