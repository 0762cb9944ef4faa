"""Sagittal reformat of a volume.

Convention (fixed): in every sagittal image **superior is up and anterior is on the left**, so the patient faces
left, as on most PACS sagittal views. Pixels are square: both axes are resampled to the finer of the volume's
anterior-posterior and superior-inferior spacings. A slab thicker than one voxel is averaged (mean-intensity MPR).

Pixel coordinates follow LabelMe: pixel (row r, column c) covers ``[c, c+1) x [r, r+1)``, so a box edge at ``x=c``
is the left edge of column ``c``. :class:`SagittalPlane` maps these coordinates to patient millimetres and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nibabel import orientations
from scipy import ndimage

from core.errors import GeometryError
from core.imaging import limits
from core.imaging.image import SliceImage, Volume
from core.imaging.limits import FLOAT32_BYTES, refuse_over, shape_text

DEFAULT_SLICE_COUNT = 11
DEFAULT_STEP_MM = 3.0
DEFAULT_THICKNESS_MM = 3.0


@dataclass(frozen=True)
class SagittalPlane:
    """Geometry of one sagittal image: pixel coordinates ↔ RAS patient mm.

    ``affine`` maps canonical (RAS-ordered) voxel indices to mm; ``shape`` is that volume's (x, y, z) size;
    ``x_index`` the (possibly fractional) left-right voxel index of the plane; ``pixel_mm`` the square pixel size.
    """

    affine: np.ndarray
    shape: tuple[int, int, int]
    x_index: float
    pixel_mm: float
    thickness_mm: float

    def _voxel_scale(self) -> tuple[float, float]:
        dy, dz = np.linalg.norm(self.affine[:3, 1]), np.linalg.norm(self.affine[:3, 2])
        return float(self.pixel_mm / dy), float(self.pixel_mm / dz)

    def pixel_to_voxel(self, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Pixel coordinates (edges at integers) → canonical voxel indices (centres at integers), shape (n, 3)."""
        ky, kz = self._voxel_scale()
        _, ny, nz = self.shape
        y = ny - np.asarray(cols, dtype=float) * ky - 0.5
        z = nz - np.asarray(rows, dtype=float) * kz - 0.5
        x = np.full_like(y, self.x_index)
        return np.stack([x, y, z], axis=-1)

    def pixel_to_patient(self, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Pixel coordinates → RAS mm, shape (n, 3)."""
        voxels = self.pixel_to_voxel(cols, rows)
        return voxels @ self.affine[:3, :3].T + self.affine[:3, 3]

    def patient_to_pixel(self, points_ras: np.ndarray) -> np.ndarray:
        """RAS mm → pixel coordinates (col, row), projecting onto the plane; shape (n, 2)."""
        points = np.atleast_2d(np.asarray(points_ras, dtype=float))
        voxels = (points - self.affine[:3, 3]) @ np.linalg.inv(self.affine[:3, :3]).T
        ky, kz = self._voxel_scale()
        _, ny, nz = self.shape
        cols = (ny - 0.5 - voxels[:, 1]) / ky
        rows = (nz - 0.5 - voxels[:, 2]) / kz
        return np.stack([cols, rows], axis=-1)

    @property
    def position_mm(self) -> float:
        """Left-right position of the plane (RAS x, mm) at the image centre."""
        _, ny, nz = self.shape
        centre = np.array([self.x_index, (ny - 1) / 2, (nz - 1) / 2, 1.0])
        return float((self.affine @ centre)[0])


@dataclass(frozen=True)
class SagittalSize:
    """The size of a volume's sagittal images, known from its geometry alone."""

    planes: int
    rows: int
    columns: int
    pixel_mm: float
    plane_spacing_mm: float

    @property
    def height_mm(self) -> float:
        return self.rows * self.pixel_mm

    @property
    def width_mm(self) -> float:
        return self.columns * self.pixel_mm

    @classmethod
    def of(cls, affine: np.ndarray, shape: tuple[int, int, int]) -> SagittalSize:
        """From a voxel→RAS affine and the array shape (any orientation)."""
        (nx, ny, nz), (dx, dy, dz) = _canonical_grid(affine, shape)
        pixel = min(dy, dz)
        return cls(nx, max(1, round(nz * dz / pixel)), max(1, round(ny * dy / pixel)), pixel, dx)

    @classmethod
    def checked(cls, affine: np.ndarray, shape: tuple[int, int, int], source: Path | None = None) -> SagittalSize:
        """:meth:`of`, refused with a :class:`GeometryError` naming ``source`` when the volume has no sagittal image
        (one voxel from front to back or from head to foot) or when one sagittal image would be larger than
        :data:`~core.imaging.limits.MAX_SAGITTAL_IMAGE_BYTES` (a tiny pixel spacing beside a huge one)."""
        (_, ny, nz), spacing = _canonical_grid(affine, shape)
        if ny < 2 or nz < 2:
            thin = " and ".join(name for name, n in (("front to back", ny), ("head to foot", nz)) if n < 2)
            raise GeometryError(
                f"a volume of {shape_text(shape)} voxels is one voxel thick from {thin}, so it has no sagittal "
                "image (that needs at least 2 voxels from front to back and from head to foot)",
                source,
            )
        if not all(np.isfinite(v) and v > 0 for v in spacing):
            raise GeometryError(f"voxel spacing of {_mm(spacing)} mm cannot make a sagittal image", source)
        size = cls.of(affine, shape)
        claim = (
            f"voxels of {_mm(spacing)} mm (left-right, front-back, head-foot), so sagittal images of "
            f"{size.columns} x {size.rows} pixels"
        )
        amount = size.rows * size.columns * FLOAT32_BYTES
        refuse_over(amount, limits.MAX_SAGITTAL_IMAGE_BYTES, claim, GeometryError, source, claimant="the volume")
        return size


def _canonical_grid(affine: np.ndarray, shape: tuple[int, int, int]) -> tuple[list[int], list[float]]:
    """The (x, y, z) size and spacing of the volume once its axes are in RAS order."""
    ornt = orientations.io_orientation(affine)
    canonical_shape = [0, 0, 0]
    canonical_spacing = [0.0, 0.0, 0.0]
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    for axis, (target, _) in enumerate(ornt):
        canonical_shape[int(target)] = int(shape[axis])
        canonical_spacing[int(target)] = float(spacing[axis])
    return canonical_shape, canonical_spacing


def _mm(spacing: list[float]) -> str:
    return " x ".join(f"{v:.6g}" for v in spacing)


class SagittalReformat:
    """Sagittal slices of a volume, computed on demand."""

    def __init__(self, volume: Volume) -> None:
        if volume.voxels.ndim != 3 or min(volume.voxels.shape) < 1:
            raise GeometryError(f"a volume needs three dimensions, not shape {volume.voxels.shape}", volume.source)
        size = SagittalSize.checked(volume.affine, volume.shape, volume.source)
        self.volume = volume.canonical()
        self.spacing = self.volume.spacing_mm
        self.pixel_mm = size.pixel_mm
        self.output_shape = (size.rows, size.columns)

    @property
    def plane_count(self) -> int:
        return self.volume.shape[0]

    def plane_position_mm(self, x_index: float) -> float:
        return float((self.volume.affine @ np.array([x_index, 0.0, 0.0, 1.0]))[0])

    def slice(self, x_index: int, thickness_mm: float | None = None, *, label_map: bool = False) -> SliceImage:
        """The sagittal image at canonical left-right index ``x_index``, averaged over ``thickness_mm``."""
        lo, hi = self.slab_range(x_index, None if label_map else thickness_mm)
        slab = self.volume.voxels[lo:hi]
        plane = slab[0] if hi - lo == 1 else slab.mean(axis=0, dtype=np.float32)
        pixels = self.plane_image(plane, order=0 if label_map else 1)
        geometry = SagittalPlane(
            affine=self.volume.affine,
            shape=self.volume.shape,
            x_index=(lo + hi - 1) / 2,
            pixel_mm=self.pixel_mm,
            thickness_mm=(hi - lo) * self.spacing[0],
        )
        return SliceImage(
            pixels=pixels if label_map else pixels.astype(np.float32, copy=False),
            source=self.volume.source,
            spacing_mm=(self.pixel_mm, self.pixel_mm),
            hu=self.volume.hu,
            windows=self.volume.windows,
            orientation="sagittal",
            label=f"sagittal x={geometry.position_mm:+.1f} mm",
            plane=geometry,
        )

    def slab_range(self, x_index: int, thickness_mm: float | None) -> tuple[int, int]:
        """The canonical left-right voxel planes [lo, hi) that the slab at ``x_index`` averages."""
        nx = self.volume.shape[0]
        if not 0 <= x_index < nx:
            raise GeometryError(f"sagittal index {x_index} is outside 0…{nx - 1}", self.volume.source)
        half = 0 if not thickness_mm else max(0, round(thickness_mm / self.spacing[0]) - 1) / 2
        lo, hi = int(np.floor(x_index - half)), int(np.floor(x_index + half)) + 1
        return max(lo, 0), min(hi, nx)

    def plane_image(self, plane: np.ndarray, order: int = 1) -> np.ndarray:
        """A canonical (y, z) plane as the sagittal image: superior up, anterior left, square pixels. ``order`` 0
        keeps values (labels), 1 interpolates linearly (grey values, or the fraction of a slab a mask covers)."""
        image = np.ascontiguousarray(plane[::-1, ::-1].T)  # rows: superior→inferior, columns: anterior→posterior
        return self._resample(image, order=order)

    def _resample(self, image: np.ndarray, order: int) -> np.ndarray:
        _, dy, dz = self.spacing
        scale = (self.pixel_mm / dz, self.pixel_mm / dy)
        if np.allclose(scale, 1.0) and image.shape == self.output_shape:
            return image if order == 0 else image.astype(np.float32)
        offset = [0.5 * k - 0.5 for k in scale]
        source = image if order == 0 else image.astype(np.float32, copy=False)
        return ndimage.affine_transform(
            source, np.asarray(scale), offset=offset, output_shape=self.output_shape, order=order, mode="nearest"
        )

    def midline_index(self) -> int:
        """Left-right index of the spine: the median x of bone voxels (HU 150…2000), else the volume centre."""
        nx = self.volume.shape[0]
        if not self.volume.hu:
            return nx // 2
        bone = (self.volume.voxels[:, ::2, ::2] >= 150) & (self.volume.voxels[:, ::2, ::2] <= 2000)
        counts = bone.sum(axis=(1, 2))
        if counts.sum() == 0:
            return nx // 2
        cumulative = np.cumsum(counts)
        return int(np.searchsorted(cumulative, cumulative[-1] / 2))

    def default_indices(
        self, count: int = DEFAULT_SLICE_COUNT, step_mm: float = DEFAULT_STEP_MM, centre_index: int | None = None
    ) -> list[int]:
        """``count`` plane indices ``step_mm`` apart, centred on the spine (clipped to the volume, no repeats)."""
        nx = self.volume.shape[0]
        centre = self.midline_index() if centre_index is None else centre_index
        step = max(1, round(step_mm / self.spacing[0]))
        offsets = (np.arange(count) - (count - 1) / 2) * step
        indices = np.clip(np.round(centre + offsets).astype(int), 0, nx - 1)
        return sorted(set(int(i) for i in indices))


def sagittal_slices(
    volume: Volume,
    *,
    count: int = DEFAULT_SLICE_COUNT,
    step_mm: float = DEFAULT_STEP_MM,
    thickness_mm: float = DEFAULT_THICKNESS_MM,
) -> list[SliceImage]:
    """The default sagittal set: ``count`` slabs ``step_mm`` apart through the spine, left to right."""
    reformat = SagittalReformat(volume)
    return [reformat.slice(i, thickness_mm) for i in reformat.default_indices(count, step_mm)]
