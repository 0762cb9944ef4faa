"""In-memory images: a 2D slice and a 3D volume, both with their physical geometry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.imaging.windowing import BONE, Window, apply_window, min_max_window

if TYPE_CHECKING:
    from core.imaging.reformat import SagittalPlane


@dataclass(frozen=True, eq=False)
class SliceImage:
    """One 2D grey image.

    ``pixels`` is a 2D float32 array, rows by columns. When ``hu`` is true the values are Hounsfield units;
    otherwise they are the file's own grey values (0…255 for 8-bit PNG or JPEG). Higher values are always brighter.
    """

    pixels: np.ndarray
    source: Path | None = None
    spacing_mm: tuple[float, float] | None = None
    hu: bool = False
    windows: tuple[Window, ...] = ()
    orientation: str = "unknown"
    label: str = ""
    bits: int | None = None
    plane: SagittalPlane | None = None
    notes: tuple[str, ...] = field(default=())
    #: Left-right position of a sagittal slice (RAS x, mm) from its file's geometry, where the file has one.
    position_mm: float | None = None

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def default_window(self) -> Window:
        """The file's first window if it has one, else bone for HU images, else the min-max window."""
        if self.windows:
            return self.windows[0]
        return BONE if self.hu else min_max_window(self.pixels)

    def display(self, window: Window | None = None) -> np.ndarray:
        """This slice as a C-contiguous uint8 image through ``window`` (the default window if None)."""
        return apply_window(self.pixels, window or self.default_window())


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image. ``affine`` maps voxel index (centre of voxel) to RAS+ patient coordinates in mm."""

    voxels: np.ndarray
    affine: np.ndarray
    source: Path | None = None
    hu: bool = False
    windows: tuple[Window, ...] = ()
    description: str = ""
    is_label_map: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.voxels.shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def axis_codes(self) -> str:
        from nibabel import orientations  # nibabel loads in ~1 s: the window does not wait for it

        return "".join(orientations.aff2axcodes(self.affine))

    def canonical(self) -> Volume:
        """The same volume with its axes reordered and flipped to the closest RAS+ orientation (views, no copy)."""
        from nibabel import orientations

        ornt = orientations.io_orientation(self.affine)
        if np.array_equal(ornt, [[0, 1], [1, 1], [2, 1]]):
            return self
        voxels = orientations.apply_orientation(self.voxels, ornt)
        affine = self.affine @ orientations.inv_ornt_aff(ornt, self.voxels.shape)
        return Volume(voxels, affine, self.source, self.hu, self.windows, self.description, self.is_label_map)
