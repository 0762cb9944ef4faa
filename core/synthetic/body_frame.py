"""A vertebral body's own frame on an anatomy slab, and its endplates column by column.

The frame is the analytic phantom's (``canvas.local``): ``u`` along the body's axis (inferior +), ``v`` across it
(anterior +, the image's left side), in pixels from its centroid. The axis runs through the neighbouring bodies'
centroids, so a body on a curved or rotated spine is measured along its own height and depth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from core.synthetic.slab import AnatomySlab


@dataclass(frozen=True)
class BodyFrame:
    """A body's own axes: its centroid (x, y, pixel edges at whole numbers), the tilt of its axis from vertical
    (radians, positive turns its inferior end posterior) and the extents, in pixels from the centroid, of its
    pixels that are at least half body: ``top``/``bottom`` along ``u``, ``posterior``/``anterior`` along ``v``."""

    centre: tuple[float, float]
    angle: float
    top: float
    bottom: float
    posterior: float
    anterior: float

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def depth(self) -> float:
        return self.anterior - self.posterior

    def local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy, sin, cos = x - self.centre[0], y - self.centre[1], np.sin(self.angle), np.cos(self.angle)
        return dx * sin + dy * cos, -dx * cos + dy * sin

    def image(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sin, cos = np.sin(self.angle), np.cos(self.angle)
        return self.centre[0] + u * sin - v * cos, self.centre[1] + u * cos + v * sin

    def window(self, shape: tuple[int, int], u: tuple[float, float], v: tuple[float, float]) -> tuple[slice, slice]:
        """The image rows and columns around the frame's rectangle ``u`` × ``v``."""
        x, y = self.image(np.array([u[0], u[0], u[1], u[1]]), np.array([v[0], v[1], v[0], v[1]]))
        rows = slice(max(int(np.floor(y.min())) - 1, 0), min(int(np.ceil(y.max())) + 1, shape[0]))
        return rows, slice(max(int(np.floor(x.min())) - 1, 0), min(int(np.ceil(x.max())) + 1, shape[1]))

    def pixels(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """``u``, ``v`` of the pixel centres of ``rows`` × ``cols``."""
        y, x = np.mgrid[rows, cols].astype(np.float64) + 0.5
        return self.local(x, y)


#: Sampling step (px) along a body's axis when its endplates are found.
U_STEP = 0.5


def sample_at(maps: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of each (H, W) map of ``maps`` at image points ``x``, ``y`` (pixel edges at whole numbers;
    exact at pixel centres), zero beyond the outermost pixel centres (scipy's ``constant`` mode: no interpolation
    beyond the edges)."""
    maps = np.asarray(maps, dtype=np.float32)
    height, width = maps.shape[1:]
    rows, cols = np.ravel(y) - 0.5, np.ravel(x) - 0.5
    inside = (rows >= 0) & (rows <= height - 1) & (cols >= 0) & (cols <= width - 1)
    out = np.zeros((len(maps), rows.size), dtype=np.float32)
    if not inside.any():
        return out.reshape((len(maps), *np.shape(x)))
    # Only the box the points reach (so a few points on a large slab cost little), and only the maps with something
    # in it; one set of float64 weights for all of them (so shares still sum to 1).
    r, c = rows[inside], cols[inside]
    r0, c0 = int(np.floor(r.min())), int(np.floor(c.min()))
    r1, c1 = min(int(np.floor(r.max())) + 2, height), min(int(np.floor(c.max())) + 2, width)
    crop = maps[:, r0:r1, c0:c1]
    used = np.flatnonzero(crop.reshape(len(maps), -1).any(axis=1))
    if used.size == 0:
        return out.reshape((len(maps), *np.shape(x)))
    crop = crop[used].astype(np.float64)
    r, c = r - r0, c - c0
    i = np.minimum(np.floor(r).astype(np.intp), max(crop.shape[1] - 2, 0))
    j = np.minimum(np.floor(c).astype(np.intp), max(crop.shape[2] - 2, 0))
    fr, fc = r - i, c - j
    i1, j1 = np.minimum(i + 1, crop.shape[1] - 1), np.minimum(j + 1, crop.shape[2] - 1)
    top = crop[:, i, j] * (1 - fc) + crop[:, i, j1] * fc
    bottom = crop[:, i1, j] * (1 - fc) + crop[:, i1, j1] * fc
    out[np.ix_(used, np.flatnonzero(inside))] = top * (1 - fr) + bottom * fr
    return out.reshape((len(maps), *np.shape(x)))


def _centroid(fraction: np.ndarray, step: int = 1) -> np.ndarray | None:
    coarse = fraction[::step, ::step]
    total = float(coarse.sum())
    if total <= 0:
        return None
    rows, cols = coarse.sum(axis=1), coarse.sum(axis=0)
    return np.array([cols @ np.arange(len(cols)), rows @ np.arange(len(rows))]) * step / total + 0.5 * step


def _axis_angle(slab: AnatomySlab, index: int, centre: np.ndarray) -> float:
    """The tilt of the spine at a body: the line through its neighbours' centroids (or to the one it has), else
    the body's own second moments (vertical when they are nearly round)."""
    box = slab.bodies[index].box()
    reach = 3.0 * (box[3] - box[1])
    others = [c for i, b in enumerate(slab.bodies) if i != index and (c := _centroid(b.fraction, 4)) is not None]
    above = [c for c in others if c[1] < centre[1] and np.hypot(*(c - centre)) < reach]
    below = [c for c in others if c[1] > centre[1] and np.hypot(*(c - centre)) < reach]
    ends = [min(above, key=lambda c: np.hypot(*(c - centre)), default=centre)]
    ends.append(min(below, key=lambda c: np.hypot(*(c - centre)), default=centre))
    if ends[0] is not ends[1]:
        dx, dy = ends[1] - ends[0]
        return float(np.arctan2(dx, dy))
    fraction = slab.bodies[index].fraction
    y, x = np.nonzero(fraction)
    dx, dy = x + 0.5 - centre[0], y + 0.5 - centre[1]
    values, vectors = np.linalg.eigh(np.cov(np.stack([dx, dy]), aweights=fraction[y, x]))
    if values[1] < 1.15 * values[0]:
        return 0.0
    axis = vectors[:, 0] if abs(vectors[1, 0]) > abs(vectors[1, 1]) else vectors[:, 1]  # the one nearer vertical
    axis = axis if axis[1] > 0 else -axis
    return float(np.arctan2(axis[0], axis[1]))


def body_frame(slab: AnatomySlab, index: int) -> BodyFrame:
    """The frame of body ``index`` (which must have pixels at least half body)."""
    fraction = slab.bodies[index].fraction
    if slab.bodies[index].box() is None:
        raise ValueError(f"body {slab.bodies[index].name} is not on the slab")
    centre = _centroid(fraction)
    frame = BodyFrame((float(centre[0]), float(centre[1])), _axis_angle(slab, index, centre), 0.0, 0.0, 0.0, 0.0)
    y, x = np.nonzero(fraction >= 0.5)
    u, v = frame.local(x + 0.5, y + 0.5)
    return replace(frame, top=u.min() - 0.5, bottom=u.max() + 0.5, posterior=v.min() - 0.5, anterior=v.max() + 0.5)


@dataclass(frozen=True)
class Endplates:
    """Per column ``v`` of a body (0.5 px apart, posterior to anterior; less the slivers at its walls, under half
    its median height): its endplates along ``u`` and how far above and below it may push (up to where a
    neighbouring body leaves no trace, or ``reach``)."""

    v: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    upper: np.ndarray
    lower: np.ndarray


def endplates(slab: AnatomySlab, index: int, frame: BodyFrame, reach: float) -> Endplates:
    """Body ``index``'s endplates along each of its columns (sampled every :data:`U_STEP` px along ``u``, so
    within half that), and the nearest other body above and below within ``reach`` pixels."""
    v = np.arange(frame.posterior - 1, frame.anterior + 1, 0.5)
    u = np.arange(frame.top - reach - 1, frame.bottom + reach + 1, U_STEP)
    x, y = frame.image(u[:, None], v[None, :])
    body = sample_at(slab.bodies[index].fraction[None], x, y)[0] >= 0.5
    window = frame.window(slab.shape, (u[0], u[-1]), (v[0], v[-1]))
    near = [b.fraction for i, b in enumerate(slab.bodies) if i != index and b.fraction[window].any()]
    others = (sample_at(near, x, y) > 0).any(axis=0) if near else np.zeros_like(body)  # any trace of them
    keep = body.any(axis=0)
    body, others, v = body[:, keep], others[:, keep], v[keep]
    first, last = body.argmax(axis=0), len(u) - 1 - body[::-1].argmax(axis=0)
    top, bottom = u[first] - U_STEP / 2, u[last] + U_STEP / 2
    rows = np.arange(len(u))[:, None]
    upper = np.where(others & (rows < first), u[:, None], -np.inf).max(axis=0) + U_STEP
    lower = np.where(others & (rows > last), u[:, None], np.inf).min(axis=0) - U_STEP
    upper = np.minimum(np.maximum(upper, top - reach), top - 1.0)
    lower = np.maximum(np.minimum(lower, bottom + reach), bottom + 1.0)
    tall = np.flatnonzero(bottom - top >= 0.5 * np.median(bottom - top))  # not the slivers of partial volume
    inner = slice(tall[0], tall[-1] + 1)
    return Endplates(v[inner], top[inner], bottom[inner], upper[inner], lower[inner])
