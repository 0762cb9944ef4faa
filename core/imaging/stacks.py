"""Slice stacks: what a viewer pages through, whatever the file was.

A PNG, a JPEG or a sagittal DICOM gives its own slices. An axial or coronal series, a 3D multi-frame file and a NIfTI
volume give their sagittal reformat, one slice per left-right voxel plane, computed on demand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import GeometryError, ImageReadError
from core.imaging.dicom import read_dicom
from core.imaging.dicom_series import DicomSeries, scan_dicom
from core.imaging.image import SliceImage, Volume
from core.imaging.nifti import is_nifti, read_nifti
from core.imaging.raster import RASTER_SUFFIXES, is_raster, read_raster
from core.imaging.reformat import DEFAULT_THICKNESS_MM, SagittalReformat


class SliceStack:
    """An ordered, lazily loaded sequence of slices with a label each."""

    name: str = ""
    start_index: int = 0
    #: Set when the stack is a fallback (for example axial slices because the series could not be reformatted).
    warning: str = ""

    def __len__(self) -> int:
        raise NotImplementedError

    def label(self, index: int) -> str:
        raise NotImplementedError

    def image(self, index: int) -> SliceImage:
        raise NotImplementedError


@dataclass
class ListStack(SliceStack):
    slices: Sequence[SliceImage]
    name: str = ""

    def __len__(self) -> int:
        return len(self.slices)

    def label(self, index: int) -> str:
        return self.slices[index].label or f"slice {index + 1}"

    def image(self, index: int) -> SliceImage:
        return self.slices[index]


class LazyFileStack(SliceStack):
    """Slices read from files only when shown (a cache keeps the last few)."""

    def __init__(self, paths: Sequence[Path], reader: Callable[[Path], SliceImage], name: str = "") -> None:
        self.paths = list(paths)
        self.name = name
        self._read = lru_cache(maxsize=16)(reader)

    def __len__(self) -> int:
        return len(self.paths)

    def label(self, index: int) -> str:
        return self.paths[index].name

    def image(self, index: int) -> SliceImage:
        return self._read(self.paths[index])


class SagittalStack(SliceStack):
    """Every sagittal plane of a volume, left to right; starts at the spine's midline."""

    def __init__(self, volume: Volume, thickness_mm: float = DEFAULT_THICKNESS_MM, name: str = "") -> None:
        self.reformat = SagittalReformat(volume)
        self.thickness_mm = thickness_mm
        self.name = name
        self.start_index = self.reformat.midline_index()
        self._slice = lru_cache(maxsize=32)(self._compute)

    def __len__(self) -> int:
        return self.reformat.plane_count

    def label(self, index: int) -> str:
        return f"x = {self.reformat.plane_position_mm(index):+.1f} mm"

    def image(self, index: int) -> SliceImage:
        return self._slice(index)

    def _compute(self, index: int) -> SliceImage:
        return self.reformat.slice(index, self.thickness_mm)


def stack_for_series(series: DicomSeries) -> SliceStack:
    """Sagittal series and single images as they are; anything else reformatted to sagittal."""
    name = series.description or series.first.path.parent.name
    if series.orientation == "sagittal" or len(series.frames) < 2:
        return ListStack(series.load_slices(), name=name)
    try:
        return SagittalStack(series.load_volume(), name=name)
    except GeometryError as exc:
        stack = ListStack(series.load_slices(), name=name)
        stack.warning = f"shown as {series.orientation} slices, not reformatted: {exc}"
        return stack


def open_stack(path: str | Path) -> SliceStack:
    """Open an image file, a DICOM file or folder, a NIfTI volume, or a folder of PNG/JPEG slices."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError("no such file or folder", path)
    if path.is_file():
        if is_raster(path):
            return ListStack([read_raster(path)], name=path.name)
        if is_nifti(path):
            return SagittalStack(read_nifti(path), name=path.name)
        scan = scan_dicom(path)
        series = scan.series[0]
        if series.first.frame_count > 1 and series.orientation != "sagittal":
            try:
                return SagittalStack(series.load_volume(), name=path.name)
            except GeometryError:
                pass
        return ListStack(read_dicom(path), name=path.name)
    rasters = sorted(p for p in path.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
    if rasters:
        return LazyFileStack(rasters, read_raster, name=path.name)
    scan = scan_dicom(path)
    if not scan.series:
        reasons = "; ".join(f"{p.name}: {why}" for p, why in scan.skipped[:3])
        raise ImageReadError(f"no DICOM, PNG or JPEG images found{' (' + reasons + ')' if reasons else ''}", path)
    largest = max(scan.series, key=lambda s: len(s.frames))
    return stack_for_series(largest)
