"""Vertebral anatomy for the phantom: sizes per level, and a patient's spine with its curvature.

Sizes are typical adult values in millimetres (vertebral body height, antero-posterior depth, left-right width, and
the disc below), from the thoracic spine down to the first sacral segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SPINE_LEVELS: tuple[str, ...] = (*(f"T{i}" for i in range(1, 13)), *(f"L{i}" for i in range(1, 6)), "S1")

#: level: (body height, body depth, body width, disc height below)
LEVEL_SIZES_MM: dict[str, tuple[float, float, float, float]] = {
    "T1": (14.0, 16.0, 28.0, 4.0),
    "T2": (15.0, 17.0, 27.0, 4.0),
    "T3": (16.0, 18.0, 27.0, 4.0),
    "T4": (16.5, 19.0, 27.0, 4.0),
    "T5": (17.0, 21.0, 28.0, 4.5),
    "T6": (18.0, 23.0, 29.0, 5.0),
    "T7": (19.0, 25.0, 30.0, 5.0),
    "T8": (20.0, 26.0, 31.0, 5.0),
    "T9": (21.0, 27.0, 33.0, 5.5),
    "T10": (22.0, 28.0, 36.0, 6.0),
    "T11": (23.0, 29.0, 39.0, 6.5),
    "T12": (24.0, 31.0, 42.0, 7.0),
    "L1": (25.0, 32.0, 43.0, 8.0),
    "L2": (26.0, 33.0, 45.0, 9.0),
    "L3": (27.0, 34.0, 47.0, 10.0),
    "L4": (27.0, 35.0, 49.0, 11.0),
    "L5": (26.0, 35.0, 50.0, 10.0),
    "S1": (28.0, 38.0, 52.0, 0.0),
}


def is_thoracic(level: str) -> bool:
    return level.startswith("T")


@dataclass(frozen=True)
class Deformity:
    """Height loss of a body: fractions of the normal height lost at the posterior wall, middle and anterior wall."""

    posterior: float = 0.0
    middle: float = 0.0
    anterior: float = 0.0

    @classmethod
    def of(cls, kind: str, loss: float) -> Deformity:
        """``wedge`` (anterior), ``biconcave`` (middle) or ``crush`` (uniform) height loss of fraction ``loss``."""
        if kind == "wedge":
            return cls(posterior=0.1 * loss, middle=0.55 * loss, anterior=loss)
        if kind == "biconcave":
            return cls(posterior=0.2 * loss, middle=loss, anterior=0.25 * loss)
        if kind == "crush":
            return cls(posterior=0.85 * loss, middle=loss, anterior=loss)
        raise ValueError(f"unknown deformity {kind!r}")

    @property
    def any(self) -> bool:
        return max(self.posterior, self.middle, self.anterior) > 0

    def height_fraction(self, t: np.ndarray) -> np.ndarray:
        """Remaining height fraction along the depth, ``t`` = 0 at the posterior wall, 1 at the anterior wall."""
        p, m, a = 1 - self.posterior, 1 - self.middle, 1 - self.anterior
        # The quadratic through (0, p), (0.5, m), (1, a).
        return p + (4 * m - 3 * p - a) * t + (2 * p + 2 * a - 4 * m) * t * t


@dataclass(frozen=True)
class VertebraShape:
    """One vertebral body placed in the sagittal plane of the case.

    ``centre`` is the body centre (mm, image coordinates: x to the right = posterior, y down = inferior) and
    ``angle`` the tilt of its long axis from vertical (radians, positive turns its inferior end posterior).
    """

    level: str
    centre: tuple[float, float]
    angle: float
    height: float
    depth: float
    half_width: float
    deformity: Deformity = field(default_factory=Deformity)
    endplate_concavity: float = 0.7

    @property
    def axis(self) -> np.ndarray:
        """Unit vector along the body, pointing inferior."""
        return np.array([np.sin(self.angle), np.cos(self.angle)])

    @property
    def anterior(self) -> np.ndarray:
        """Unit vector pointing anterior (to the left of the image)."""
        return np.array([-np.cos(self.angle), np.sin(self.angle)])

    def depth_at(self, x_mm: float) -> float:
        """Antero-posterior depth of the body's cut at left-right offset ``x_mm`` (an elliptic cross-section)."""
        ratio = abs(x_mm) / self.half_width
        return float(self.depth * np.sqrt(max(0.0, 1.0 - ratio * ratio)) ** 0.6) if ratio < 1 else 0.0

    def outline(self, x_mm: float, samples: int = 24) -> np.ndarray:
        """The body's boundary at offset ``x_mm`` as (n, 2) image mm points, or an empty array when not cut."""
        depth = self.depth_at(x_mm)
        if depth <= 0:
            return np.zeros((0, 2))
        t = np.linspace(0.0, 1.0, samples)
        heights = self.height * self.deformity.height_fraction(t)
        concave = self.endplate_concavity * (1 - (2 * t - 1) ** 2)
        top = -heights / 2 + concave
        bottom = heights / 2 - concave
        v = -self.depth / 2 + t * depth  # from the posterior wall forward
        along = np.concatenate([top, bottom[::-1]])
        forward = np.concatenate([v, v[::-1]])
        centre = np.asarray(self.centre)
        return centre + along[:, None] * self.axis + forward[:, None] * self.anterior

    def box(self, x_mm: float) -> tuple[float, float, float, float] | None:
        """The tight box of the body's cut at ``x_mm`` in image mm (x1, y1, x2, y2), or None."""
        points = self.outline(x_mm, samples=48)
        if len(points) == 0:
            return None
        return (
            float(points[:, 0].min()),
            float(points[:, 1].min()),
            float(points[:, 0].max()),
            float(points[:, 1].max()),
        )


@dataclass(frozen=True)
class SpineGeometry:
    """A patient's spine in the mid-sagittal plane: its bodies from the top of the field of view downward."""

    vertebrae: tuple[VertebraShape, ...]
    kyphosis_deg: float
    lordosis_deg: float
    size: float


def curve_angle(level_position: float, kyphosis: float, lordosis: float) -> float:
    """Tilt (radians) of the spine's axis at a position along T1 (0) … S1 (17): kyphosis then lordosis.

    Going down, a positive angle moves the axis posterior. The thoracic kyphosis turns the axis from +K/2 at T1 to
    -K/2 at T12; the lumbar lordosis turns it back by L between L1 and S1.
    """
    k, lo = np.radians(kyphosis), np.radians(lordosis)
    if level_position <= 11:
        return float(k / 2 - k * level_position / 11)
    return float(-k / 2 + lo * (level_position - 11) / 6)


def build_spine(
    first: int,
    count: int,
    rng: np.random.Generator,
    size: float,
    kyphosis: float,
    lordosis: float,
    deformities: dict[int, Deformity],
) -> SpineGeometry:
    """Stack ``count`` bodies from level index ``first`` (plus one above and one below, for the image edges).

    Bodies follow the curvature; a wedge deformity tilts everything below it (the spine bends at the fracture).
    The column starts at (0, 0); the caller places it in the image.
    """
    levels = range(max(0, first - 1), min(len(SPINE_LEVELS), first + count + 1))
    shapes: list[VertebraShape] = []
    position = np.zeros(2)
    extra_tilt = 0.0
    previous_half = None
    for index in levels:
        level = SPINE_LEVELS[index]
        height, depth, width, disc = (v * size for v in LEVEL_SIZES_MM[level])
        height *= rng.uniform(0.95, 1.05)
        depth *= rng.uniform(0.95, 1.05)
        deformity = deformities.get(index, Deformity())
        angle = curve_angle(index, kyphosis, lordosis) + extra_tilt
        if level == "S1":
            angle += np.radians(rng.uniform(8, 18))  # the sacral slope is steeper than the lumbar curve
        axis = np.array([np.sin(angle), np.cos(angle)])
        mid_height = height * float(deformity.height_fraction(np.array([0.5]))[0])
        if previous_half is not None:
            position = position + axis * (previous_half + mid_height / 2)
        shapes.append(
            VertebraShape(
                level,
                (float(position[0]), float(position[1])),
                angle,
                height,
                depth,
                width / 2,
                deformity,
                endplate_concavity=rng.uniform(0.4, 1.0) * size,
            )
        )
        previous_half = mid_height / 2 + disc * rng.uniform(0.9, 1.1)
        wedge = deformity.posterior - deformity.anterior
        if wedge < 0:  # anterior collapse bends the spine forward below it
            extra_tilt += 0.35 * float(np.arctan2(wedge * height, depth))
    return SpineGeometry(tuple(shapes), kyphosis, lordosis, size)
