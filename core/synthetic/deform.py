"""Random deformation of an anatomy slab: one smooth map moves every tissue and every body together.

A drawn :class:`Warp` maps each output pixel back to a point of the input slab (backward mapping). From the patient
outwards it is: an elastic field and a change of the spine's curvature (both in the input's frame, in mm), then
scale, shear and rotation about the input's centre, then the field of view (its centre, size and pixel size).

The map is evaluated on a lattice every :data:`STEP` output pixels and interpolated bilinearly between its nodes:
exact for the affine part, and a piecewise-bilinear copy of the smooth fields (within a fraction of a millimetre of
them). Every channel (tissue fractions and body fractions) is sampled bilinearly with torch's ``grid_sample``, each
only over the output window where it can be non-zero, so fractions stay convex combinations that sum to 1; air takes
what falls outside the input. Bodies keep their index, also when the field of view cuts them or leaves them out:
:func:`warp_slab` says which share of each deformed body lies in the field of view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.synthetic.slab import TISSUE, AnatomySlab, SlabBody

STEP = 4  # output pixels between lattice nodes of the backward map
MARGIN_MM = 60.0  # how far beyond the field of view the map reaches, to see all of a body cut by its edge
_FULL = 0.4  # channels whose window covers more of the output than this share are sampled together
_AIR = TISSUE["air"]


@dataclass(frozen=True)
class DeformRanges:
    """The ranges a deformation is drawn from (uniformly, signs at random where a range is ``±``)."""

    scale: tuple[float, float] = (0.85, 1.15)  # isotropic size factor of the anatomy
    anisotropy: float = 0.05  # ± log of the extra factor: x scale × e^a, y scale × e^-a
    rotation_deg: float = 12.0  # ± degrees; positive turns the anatomy clockwise on the screen (y points down)
    shear: float = 0.08  # ± horizontal shear: x moves by shear × y
    elastic_mm: tuple[float, float] = (0.0, 6.0)  # largest displacement of the elastic field
    smoothness_mm: tuple[float, float] = (20.0, 60.0)  # spacing of its cubic B-spline control points
    bend_mm: tuple[float, float] = (0.0, 15.0)  # largest horizontal shift of the curvature change (kyphosis/lordosis)
    bends: tuple[int, ...] = (1, 2)  # half-waves of the bend over the input's height: 1 an arc, 2 an S
    field_of_view: tuple[float, float] = (0.7, 1.0)  # output extent / input extent, per axis
    pixel_mm: tuple[float, float] | None = (0.6, 1.0)  # output pixel size; None keeps the input's

    @classmethod
    def none(cls) -> DeformRanges:
        """Ranges that draw the identity (same pixels, same field of view)."""
        return cls(
            scale=(1.0, 1.0), anisotropy=0.0, rotation_deg=0.0, shear=0.0, elastic_mm=(0.0, 0.0),
            bend_mm=(0.0, 0.0), field_of_view=(1.0, 1.0), pixel_mm=None,
        )  # fmt: skip


@dataclass(frozen=True)
class Warp:
    """One drawn deformation. The backward map of an output point ``q`` (mm from the output's centre) is
    ``v = M⁻¹ (q + centre)`` with ``M`` = rotation · shear · scale, then ``w = v + (bend(v_y), 0) + elastic(q)``,
    ``w`` in mm from the input's centre. Content at ``w`` in the input appears at ``q`` in the output. The elastic
    field is a cubic B-spline over control points ``smoothness_mm`` apart (drawn on the output's grid, where it is
    separable), scaled so that its largest displacement over the output and its margin is ``elastic_mm``."""

    scale: tuple[float, float]  # (x, y)
    rotation_deg: float
    shear: float
    bend_mm: float  # signed amplitude of the bend: its largest horizontal shift
    bends: int
    bend_phase: float  # radians
    bend_span_mm: float  # the input's height, over which the bend has ``bends`` half-waves
    elastic_mm: float  # the elastic field's largest displacement, over the output and its margin
    smoothness_mm: float
    elastic_coefficients: np.ndarray  # (2, n, n) unit-normal B-spline coefficients, centred on the output
    shape: tuple[int, int]  # output (rows, cols)
    pixel_mm: float  # output pixel size
    centre_mm: tuple[float, float]  # (x, y) of the output's centre in the deformed frame

    @property
    def matrix(self) -> np.ndarray:
        """The forward 2x2 matrix ``M`` (x, y columns): rotation · shear · scale."""
        angle = np.deg2rad(self.rotation_deg)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return rotation @ np.array([[1.0, self.shear], [0.0, 1.0]]) @ np.diag(self.scale)

    def bend_shift_mm(self, y_mm: np.ndarray) -> np.ndarray:
        """The bend's horizontal shift at height ``y_mm`` (mm from the input's centre, down +): a sine of
        ``bends`` half-waves over the input's height, so never more than ``|bend_mm|``."""
        phase = np.pi * self.bends * (np.asarray(y_mm) / self.bend_span_mm + 0.5) + self.bend_phase
        return self.bend_mm * np.sin(phase)


def _signed(rng: np.random.Generator, limit: float) -> float:
    return float(rng.uniform(-limit, limit))


def draw_warp(
    shape: tuple[int, int], pixel_mm: float, rng: np.random.Generator, ranges: DeformRanges = DeformRanges()
) -> Warp:
    """A deformation of a slab of ``shape`` pixels of ``pixel_mm``, drawn from ``ranges``."""
    height_mm, width_mm = shape[0] * pixel_mm, shape[1] * pixel_mm
    size, skew = float(rng.uniform(*ranges.scale)), _signed(rng, ranges.anisotropy)
    rotation, shear = _signed(rng, ranges.rotation_deg), _signed(rng, ranges.shear)
    bend = float(rng.uniform(*ranges.bend_mm)) * (1.0 if rng.random() < 0.5 else -1.0)
    bends, phase = int(rng.choice(ranges.bends)), float(rng.uniform(-np.pi / 4, np.pi / 4))
    elastic, smoothness = float(rng.uniform(*ranges.elastic_mm)), float(rng.uniform(*ranges.smoothness_mm))
    fov = rng.uniform(*ranges.field_of_view, size=2)  # (x, y)
    centre = tuple(float(c) for c in rng.uniform(-0.5, 0.5, size=2) * (1 - fov) * (width_mm, height_mm))
    out_pixel = float(rng.uniform(*ranges.pixel_mm)) if ranges.pixel_mm is not None else pixel_mm
    out_shape = (max(1, round(fov[1] * height_mm / out_pixel)), max(1, round(fov[0] * width_mm / out_pixel)))
    count = int(np.ceil((max(fov * (width_mm, height_mm)) + 2 * MARGIN_MM) / smoothness)) + 4
    coefficients = rng.standard_normal((2, count, count)).astype(np.float32)
    return Warp(
        (size * float(np.exp(skew)), size * float(np.exp(-skew))), rotation, shear,
        bend, bends, phase, height_mm, elastic, smoothness, coefficients, out_shape, out_pixel, centre,
    )  # fmt: skip


def _bspline(positions: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The 4 control points (n, 4) of a uniform cubic B-spline at ``positions`` (n,) in control-point units, and
    their weights (n, 4); points beyond the ``count`` control points repeat the edge ones."""
    start = np.floor(positions)
    f = (positions - start)[:, None]
    weights = np.concatenate([(1 - f) ** 3, 3 * f**3 - 6 * f**2 + 4, -3 * f**3 + 3 * f**2 + 3 * f + 1, f**3], axis=1)
    points = np.clip(start.astype(int)[:, None] - 1 + np.arange(4)[None, :], 0, count - 1)
    return points, weights / 6


def _elastic_mm(warp: Warp, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
    """The elastic field (2, len(y), len(x)) on the grid of output points ``x_mm`` × ``y_mm`` (mm from the
    output's centre), scaled so that its largest displacement there is ``warp.elastic_mm``. Separable sums of
    four terms per axis (no matrix product: BLAS threads spin and slow a busy machine)."""
    coefficients = warp.elastic_coefficients.astype(np.float64)
    count = coefficients.shape[1]
    across, wx = _bspline(x_mm / warp.smoothness_mm + (count - 1) / 2, count)
    down, wy = _bspline(y_mm / warp.smoothness_mm + (count - 1) / 2, count)
    rows = sum(coefficients[:, :, across[:, k]] * wx[:, k] for k in range(4))  # (2, count, len(x))
    field = sum(rows[:, down[:, k], :] * wy[:, k, None] for k in range(4))  # (2, len(y), len(x))
    largest = float(np.sqrt((field**2).sum(axis=0)).max())
    return field * (warp.elastic_mm / largest) if largest > 0 else field


class _SourceMap:
    """The backward map at the lattice of output pixels ``origin + STEP * (k_row, k_col)`` (reaching
    :data:`MARGIN_MM` beyond the output): where in the input each output pixel takes its value.

    Sources are kept in input pixels (col, row; pixel centres at whole numbers) and in grid_sample's normalised
    coordinates. Output windows are found from the affine part (exact) and a bound on the rest, then narrowed to
    the lattice cells whose corners' sources (a bilinear interpolation never leaves their bounding box) can reach
    the input pixels asked for."""

    def __init__(self, warp: Warp, in_shape: tuple[int, int], in_pixel_mm: float) -> None:
        margin = -(-int(np.ceil(MARGIN_MM / warp.pixel_mm)) // STEP) * STEP
        (rows, cols), p = warp.shape, warp.pixel_mm
        ky, kx = -(-(rows - 1 + 2 * margin) // STEP) + 1, -(-(cols - 1 + 2 * margin) // STEP) + 1
        q_y = (-margin + STEP * np.arange(ky) + 0.5 - rows / 2) * p  # mm from the output's centre
        q_x = (-margin + STEP * np.arange(kx) + 0.5 - cols / 2) * p
        inverse = np.linalg.inv(warp.matrix)
        u = np.stack(np.broadcast_arrays((q_x + warp.centre_mm[0])[None, :], (q_y + warp.centre_mm[1])[:, None]))
        v = np.einsum("ij,jkl->ikl", inverse, u)
        w = v.copy()
        w[0] += warp.bend_shift_mm(v[1])
        if warp.elastic_mm > 0:
            w += _elastic_mm(warp, q_x, q_y)
        half = np.array([in_shape[1], in_shape[0]], dtype=float)
        source = w / in_pixel_mm + half[:, None, None] / 2 - 0.5
        corners = np.stack([source[:, :-1, :-1], source[:, 1:, :-1], source[:, :-1, 1:], source[:, 1:, 1:]])
        self.low, self.high = corners.min(axis=0), corners.max(axis=0)
        self.normalised = ((source + 0.5) * (2 / half[:, None, None]) - 1).astype(np.float32)
        self.origin, self.shape = -margin, warp.shape
        self.reach = (-margin, -margin + STEP * (ky - 1) + 1, -margin, -margin + STEP * (kx - 1) + 1)
        # output pixel (col, row) -> input pixel (col, row) of the affine part, and a bound on the rest
        self.to_output = np.linalg.inv(inverse * p / in_pixel_mm)
        self.affine_at_zero = v[:, margin // STEP, margin // STEP] / in_pixel_mm + half / 2 - 0.5
        self.slack = (np.abs(warp.bend_mm) + warp.elastic_mm) / in_pixel_mm + 1, warp.elastic_mm / in_pixel_mm + 1
        self._full: torch.Tensor | None = None

    def window(self, box: tuple[int, int, int, int], limit: tuple[int, ...]) -> tuple[int, int, int, int] | None:
        """Output rows and columns (r0, r1, c0, c1), within ``limit``, whose sources may fall in the input pixels
        ``box`` (r0, r1, c0, c1), or None."""
        r0, r1, c0, c1 = box
        (sx, sy), o = self.slack, self.origin
        xs, ys = np.array([c0 - 1 - sx, c1 + sx]), np.array([r0 - 1 - sy, r1 + sy])
        points = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None])).reshape(2, -1)
        out = (self.to_output @ (points - self.affine_at_zero[:, None]) - o) / STEP  # lattice (col, row)
        k0, k1 = max(int(np.floor(out[1].min())) - 1, 0), int(np.ceil(out[1].max())) + 1
        l0, l1 = max(int(np.floor(out[0].min())) - 1, 0), int(np.ceil(out[0].max())) + 1
        low, high = self.low[:, k0:k1, l0:l1], self.high[:, k0:k1, l0:l1]
        near = (high[0] > c0 - 1) & (low[0] < c1) & (high[1] > r0 - 1) & (low[1] < r1)
        rows, cols = np.flatnonzero(near.any(axis=1)) + k0, np.flatnonzero(near.any(axis=0)) + l0
        if not rows.size:
            return None
        w = (o + STEP * rows[0], o + STEP * (rows[-1] + 1) + 1, o + STEP * cols[0], o + STEP * (cols[-1] + 1) + 1)
        w = (max(w[0], limit[0]), min(w[1], limit[1]), max(w[2], limit[2]), min(w[3], limit[3]))
        return w if w[0] < w[1] and w[2] < w[3] else None

    def grid(self, window: tuple[int, int, int, int]) -> torch.Tensor:
        """(h, w, 2) normalised sources of the output pixels of ``window``, bilinear between the lattice nodes."""
        r0, r1, c0, c1 = window
        if r0 >= 0 and c0 >= 0 and r1 <= self.shape[0] and c1 <= self.shape[1]:
            if self._full is None:
                self._full = self._dense((0, self.shape[0], 0, self.shape[1]))
            return self._full[r0:r1, c0:c1]
        return self._dense(window)

    def _dense(self, window: tuple[int, int, int, int]) -> torch.Tensor:
        r0, r1, c0, c1 = window
        k0, l0 = (r0 - self.origin) // STEP, (c0 - self.origin) // STEP
        k1, l1 = -(-(r1 - 1 - self.origin) // STEP), -(-(c1 - 1 - self.origin) // STEP)
        nodes = torch.from_numpy(self.normalised[:, k0 : k1 + 1, l0 : l1 + 1])
        size = ((k1 - k0) * STEP + 1, (l1 - l0) * STEP + 1)
        dense = F.interpolate(nodes[None], size=size, mode="bilinear", align_corners=True)[0]
        top, left = r0 - self.origin - k0 * STEP, c0 - self.origin - l0 * STEP
        return dense[:, top : top + r1 - r0, left : left + c1 - c0].permute(1, 2, 0).contiguous()


def _support(fraction: np.ndarray) -> tuple[int, int, int, int] | None:
    """The input pixels (r0, r1, c0, c1) around the non-zero values of a (H, W) map, or None."""
    rows = np.flatnonzero((fraction > 0).any(axis=1))
    if not rows.size:
        return None
    cols = np.flatnonzero((fraction[rows[0] : rows[-1] + 1] > 0).any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _sample(maps: np.ndarray, grid: torch.Tensor) -> np.ndarray:
    """Bilinear samples of ``maps`` (C, H, W) at the normalised sources ``grid`` (h, w, 2); zero outside."""
    tensor = torch.from_numpy(np.ascontiguousarray(maps))
    out = F.grid_sample(tensor[None], grid[None], mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0].numpy()


@dataclass(frozen=True)
class WarpedSlab:
    """A deformed slab, and per body (same order) the share of its deformed fraction inside the field of view
    (1 when whole, 0 when it left it; measured up to :data:`MARGIN_MM` beyond the edge)."""

    slab: AnatomySlab
    visible: tuple[float, ...]


def _warp_tissues(fractions: np.ndarray, sources: _SourceMap) -> np.ndarray:
    shape = sources.shape
    out = np.zeros((fractions.shape[0], *shape), dtype=np.float32)
    fov, together = (0, shape[0], 0, shape[1]), []
    for k in range(fractions.shape[0]):
        box = _support(fractions[k]) if k != _AIR else None
        window = sources.window(box, fov) if box is not None else None
        if window is None:
            continue
        r0, r1, c0, c1 = window
        if (r1 - r0) * (c1 - c0) > _FULL * shape[0] * shape[1]:
            together.append(k)
        else:
            out[k, r0:r1, c0:c1] = _sample(fractions[k : k + 1], sources.grid(window))[0]
    if together:
        out[together] = _sample(fractions[together], sources.grid(fov))
    out[_AIR] = np.maximum(1.0 - out.sum(axis=0), 0.0)  # what came from outside the input is air
    return out


def _warp_body(body: SlabBody, sources: _SourceMap) -> tuple[SlabBody, float]:
    out, box = np.zeros(sources.shape, dtype=np.float32), _support(body.fraction)
    window = sources.window(box, sources.reach) if box is not None else None
    if window is None:
        return SlabBody(body.name, out, body.diseases, body.grade), 0.0
    moved = _sample(body.fraction[None], sources.grid(window))[0]
    r0, r1 = max(window[0], 0), min(window[1], sources.shape[0])
    c0, c1 = max(window[2], 0), min(window[3], sources.shape[1])
    total = visible = 0.0
    if r0 < r1 and c0 < c1:
        inside = moved[r0 - window[0] : r1 - window[0], c0 - window[2] : c1 - window[2]]
        out[r0:r1, c0:c1] = inside
        total, visible = float(moved.sum()), float(inside.sum())
    return SlabBody(body.name, out, body.diseases, body.grade), visible / total if total > 0 else 0.0


def warp_slab(slab: AnatomySlab, warp: Warp) -> WarpedSlab:
    """``slab`` moved by ``warp``: its tissues and bodies resampled together onto the warp's output pixels."""
    sources = _SourceMap(warp, slab.shape, slab.pixel_mm)
    fractions = _warp_tissues(slab.fractions, sources)
    moved = [_warp_body(body, sources) for body in slab.bodies]
    note = (
        f"deform: scale {warp.scale[0]:.3f} x {warp.scale[1]:.3f}, rotation {warp.rotation_deg:.1f} deg, "
        f"shear {warp.shear:.3f}, bend {warp.bend_mm:.1f} mm x {warp.bends}, elastic {warp.elastic_mm:.1f} mm "
        f"/ {warp.smoothness_mm:.0f} mm, {warp.shape[1]}x{warp.shape[0]} px of {warp.pixel_mm:.3f} mm"
    )
    deformed = slab.with_changes(
        fractions=fractions, bodies=tuple(b for b, _ in moved), pixel_mm=warp.pixel_mm, notes=(*slab.notes, note)
    )
    return WarpedSlab(deformed, tuple(v for _, v in moved))


def deform(slab: AnatomySlab, rng: np.random.Generator, ranges: DeformRanges = DeformRanges()) -> AnatomySlab:
    """``slab`` under a deformation drawn from ``ranges`` (see :class:`DeformRanges`). Every body is kept, in its
    order, with what is left of it in the field of view; :func:`warp_slab` also says how much that is."""
    return warp_slab(slab, draw_warp(slab.shape, slab.pixel_mm, rng, ranges)).slab
