"""Random draws and fields for the appearance step of the anatomy phantom, in plain numpy loops of a few passes.

No BLAS call here, on purpose: on a busy machine, OpenBLAS's threads (spinning after a matrix product) slowed the
whole step several times over, the filters and the noise as much as the products themselves.
"""

from __future__ import annotations

import numpy as np

GRID_SIGMA = 1.5  # the smoothing of :func:`smooth_field`'s grid, in grid steps


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A number drawn uniformly from ``bounds`` (low, high)."""
    return float(bounds[0] + (bounds[1] - bounds[0]) * rng.random())


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice] | None:
    """The slices around the true pixels of ``mask``, ``margin`` pixels wider, or None when there are none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    height, width = mask.shape
    return (slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, height)),
            slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, width)))  # fmt: skip


def three_tap_blur(image: np.ndarray, sigma_px: float, *, pad: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian-like blur of σ ``sigma_px``, fast for σ of a pixel or two: n passes per axis of the 3-tap kernel
    [a, 1 - 2a, a] (variance 2a ≤ 1/2), whose variances add up to σ². The image's edge is extended (``pad``), or
    the result is n pixels smaller on each side. Returns the result and the 1-D kernel of all passes."""
    passes = blur_passes(sigma_px)
    weight = sigma_px**2 / 2 / passes if passes else 0.0
    kernel = np.ones(1)
    for _ in range(passes):
        kernel = np.convolve(kernel, [weight, 1 - 2 * weight, weight])
    if pad and passes:
        image = np.pad(image, passes, mode="edge")
    a, b = np.float32(weight), np.float32(1 - 2 * weight)
    for _ in range(passes):
        image = a * (image[:-2] + image[2:]) + b * image[1:-1]
        image = a * (image[:, :-2] + image[:, 2:]) + b * image[:, 1:-1]
    return image, kernel


def blur_passes(sigma_px: float) -> int:
    """How many 3-tap passes :func:`three_tap_blur` makes for σ ``sigma_px`` (and so the margin it takes)."""
    return int(np.ceil(sigma_px**2 / 0.5 - 1e-9))


def smooth_field(shape: tuple[int, int], scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth Gaussian random field of about unit variance that varies over ``scale_px`` (σ of its smoothing,
    ≥ 1.5): white noise on a grid of spacing ``scale_px`` / 1.5, blurred there by σ 1.5 grid steps, and linearly
    interpolated to the pixels (which lowers the variance between grid points by at most 6 %)."""
    step = max(float(scale_px), 1.5) / GRID_SIGMA
    coarse_shape = (int(shape[0] / step) + 2, int(shape[1] / step) + 2)
    margin = blur_passes(GRID_SIGMA)
    white = rng.standard_normal((coarse_shape[0] + 2 * margin, coarse_shape[1] + 2 * margin), dtype=np.float32)
    coarse, kernel = three_tap_blur(white, GRID_SIGMA, pad=False)
    coarse *= np.float32(1.0 / np.sum(kernel**2))
    below, share = _grid_positions(shape[1], step)
    columns = coarse[:, below]  # along the rows first, on the few grid rows
    columns += np.diff(coarse, axis=1)[:, below] * share
    below, share = _grid_positions(shape[0], step)
    field = columns[below]  # then whole rows, which copy fast
    field += np.diff(columns, axis=0)[below] * share[:, None]
    return field


def _grid_positions(size: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``size`` pixels, the grid point (spacing ``step``) at or before it and its share of the way to
    the next one."""
    where = np.arange(size, dtype=np.float32) / np.float32(step)
    below = where.astype(np.intp)
    return below, (where - below).astype(np.float32)
