"""Sites (scanners) and phantom cases: everything about one patient that all of its slices share."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from core.synthetic.anatomy import SPINE_LEVELS, SpineGeometry, VertebraShape, build_spine
from core.synthetic.diseases import NORMAL_VERTEBRA, VertebraDisease

#: Sagittal slice size (pixels) in the paper: 743 ± 111 wide, 619 ± 122 high.
PAPER_WIDTH_PX = (743.0, 111.0)
PAPER_HEIGHT_PX = (619.0, 122.0)


@dataclass(frozen=True)
class Site:
    """A scanner and its protocol. Site B differs in noise, kernel, spacing, HU calibration and field of view."""

    name: str
    noise_hu: float  # standard deviation of the scanner noise
    noise_grain_px: float  # correlation length of the noise
    kernel_blur_px: float  # smoothing of the reconstruction kernel (smaller is sharper)
    spacing_mm: tuple[float, float]  # range of pixel spacing
    hu_offset: float  # calibration offset added to every value
    thickness_mm: float  # sagittal slab thickness
    step_mm: float  # distance between the sagittal slices of a case
    width_px: tuple[float, float] = PAPER_WIDTH_PX
    height_px: tuple[float, float] = PAPER_HEIGHT_PX
    fov_anterior: tuple[float, float] = (0.5, 0.62)  # where the spine sits across the image (fraction of width)


SITES: dict[str, Site] = {
    "A": Site(
        "A",
        noise_hu=16.0,
        noise_grain_px=0.9,
        kernel_blur_px=0.75,
        spacing_mm=(0.55, 0.75),
        hu_offset=0.0,
        thickness_mm=3.0,
        step_mm=3.0,
    ),
    "B": Site(
        "B",
        noise_hu=30.0,
        noise_grain_px=0.7,
        kernel_blur_px=0.4,
        spacing_mm=(0.7, 0.9),
        hu_offset=35.0,
        thickness_mm=2.0,
        step_mm=2.5,
        width_px=(690.0, 90.0),
        height_px=(560.0, 100.0),
        fov_anterior=(0.55, 0.7),
    ),
}


@dataclass(frozen=True)
class CaseSkeleton:
    """The first draw for a case: which levels it shows and its image geometry (no diseases yet)."""

    index: int
    first: int  # index in SPINE_LEVELS of the first fully visible vertebra
    count: int  # fully visible vertebrae
    size: float
    kyphosis: float
    lordosis: float
    width_px: int
    height_px: int

    @property
    def window(self) -> range:
        return range(self.first, self.first + self.count)


@dataclass(frozen=True)
class BodyHabitus:
    """Soft tissue around the spine (mm from the spine's axis): skin, fat and where the chest ends."""

    anterior_skin_thorax: float
    anterior_skin_abdomen: float
    posterior_skin: float
    anterior_fat: float
    posterior_fat: float
    canal_depth: float
    canal_half_width: float
    ribs: bool
    aorta_x: float
    aorta_radius: float
    aortic_calcification: float
    gas: tuple[tuple[float, float, float, float], ...]  # bowel gas blobs: (y mm, forward mm, x mm, radius mm)


@dataclass(frozen=True)
class PhantomCase:
    """One patient: the spine placed in the image, its diseases, soft tissue, bone density and slice positions."""

    skeleton: CaseSkeleton
    site: Site
    spine: SpineGeometry
    diseases: dict[str, VertebraDisease]
    habitus: BodyHabitus
    spacing_mm: float
    bone_hu: float  # cancellous bone
    cortical_hu: float
    offsets_mm: tuple[float, ...]
    sacral: tuple[VertebraShape, ...] = ()
    disc_gas: frozenset[str] = field(default_factory=frozenset)  # levels whose disc below has a vacuum phenomenon

    @property
    def width_px(self) -> int:
        return self.skeleton.width_px

    @property
    def height_px(self) -> int:
        return self.skeleton.height_px

    def disease_of(self, level: str) -> VertebraDisease:
        return self.diseases.get(level, NORMAL_VERTEBRA)

    def boxed_levels(self) -> set[str]:
        return {SPINE_LEVELS[i] for i in self.skeleton.window}


def sample_skeleton(index: int, site: Site, rng: np.random.Generator) -> CaseSkeleton:
    count = int(rng.integers(8, 15))
    first = int(rng.integers(0, len(SPINE_LEVELS) - count + 1))
    width = int(np.clip(rng.normal(*site.width_px), 480, 1100))
    height = int(np.clip(rng.normal(*site.height_px), 400, 960))
    return CaseSkeleton(
        index=index,
        first=first,
        count=count,
        size=float(np.clip(rng.normal(1.0, 0.06), 0.85, 1.15)),
        kyphosis=float(rng.uniform(25, 55)),
        lordosis=float(rng.uniform(30, 60)),
        width_px=width,
        height_px=height,
    )


def _habitus(rng: np.random.Generator, size: float) -> BodyHabitus:
    fat = rng.uniform(0.6, 1.6)
    gas = tuple(
        (rng.uniform(0, 1), rng.uniform(40, 160), rng.uniform(-70, 70), rng.uniform(5, 22))
        for _ in range(int(rng.integers(3, 12)))
    )
    return BodyHabitus(
        anterior_skin_thorax=rng.uniform(150, 185) * size + 10 * fat,
        anterior_skin_abdomen=rng.uniform(120, 190) * size + 40 * fat,
        posterior_skin=rng.uniform(80, 100) * size + 12 * fat,
        anterior_fat=rng.uniform(8, 20) * fat,
        posterior_fat=rng.uniform(6, 16) * fat,
        canal_depth=rng.uniform(14, 18) * size,
        canal_half_width=rng.uniform(9, 12) * size,
        ribs=bool(rng.random() < 0.7),
        aorta_x=-rng.uniform(8, 22),
        aorta_radius=rng.uniform(9, 13),
        aortic_calcification=rng.uniform(0.0, 1.0),
        gas=gas,
    )


def _sacral_segments(s1: VertebraShape) -> tuple[VertebraShape, ...]:
    """S2 … S5: shrinking fused segments curving posteriorly below S1 (drawn, never boxed)."""
    segments = []
    previous = s1
    for number, scale in zip(range(2, 6), (0.8, 0.62, 0.48, 0.36), strict=True):
        angle = previous.angle + np.radians(12)
        height = s1.height * scale
        step = previous.height / 2 + height / 2 + 1.0
        axis = np.array([np.sin(angle), np.cos(angle)])
        centre = np.asarray(previous.centre) + axis * step
        segments.append(
            replace(
                previous,
                level=f"S{number}",
                centre=(float(centre[0]), float(centre[1])),
                angle=angle,
                height=height,
                depth=s1.depth * scale,
                half_width=s1.half_width * scale,
                deformity=type(s1.deformity)(),
            )
        )
        previous = segments[-1]
    return tuple(segments)


def build_case(
    skeleton: CaseSkeleton,
    site: Site,
    diseases: dict[str, VertebraDisease],
    rng: np.random.Generator,
    slice_count: int = 10,
) -> PhantomCase:
    """Build the spine with its deformities and fit the image around the fully visible vertebrae."""
    deformities = {SPINE_LEVELS.index(level): d.deformity for level, d in diseases.items() if d.deformity.any}
    spine = build_spine(
        skeleton.first, skeleton.count, rng, skeleton.size, skeleton.kyphosis, skeleton.lordosis, deformities
    )
    shapes = list(spine.vertebrae)
    sacral = (
        _sacral_segments(next(s for s in shapes if s.level == "S1")) if any(s.level == "S1" for s in shapes) else ()
    )
    skeleton, spacing, shift = _image_frame(skeleton, site, shapes, rng)
    spine = replace(spine, vertebrae=tuple(_placed(s, shift) for s in shapes))
    osteoporosis = rng.uniform(0.4, 1.0)  # the paper's patients: mean T-score -2.9
    half = (slice_count - 1) / 2
    offsets = tuple(float((i - half) * site.step_mm + rng.normal(0, 0.3)) for i in range(slice_count))
    return PhantomCase(
        skeleton=skeleton,
        site=site,
        spine=spine,
        diseases=diseases,
        habitus=_habitus(rng, skeleton.size),
        spacing_mm=float(spacing),
        bone_hu=float(230 - 150 * osteoporosis + rng.normal(0, 10)),
        cortical_hu=float(1100 - 350 * osteoporosis + rng.normal(0, 40)),
        offsets_mm=offsets,
        sacral=tuple(_placed(s, shift) for s in sacral),
        disc_gas=frozenset(s.level for s in shapes if rng.random() < 0.04),
    )


def _image_frame(
    skeleton: CaseSkeleton, site: Site, shapes: list[VertebraShape], rng: np.random.Generator
) -> tuple[CaseSkeleton, float, np.ndarray]:
    """The image around the fully visible vertebrae, with a margin to each edge: the skeleton (its height changed
    when the site's pixel spacing would not fit it), the pixel spacing (mm), and the shift (mm) that places the
    spine in the image, across the site's field of view."""
    window = {SPINE_LEVELS[i] for i in skeleton.window}
    boxes = [s.box(0.0) for s in shapes if s.level in window]
    top = min(b[1] for b in boxes)
    bottom = max(b[3] for b in boxes)
    above = [s for s in shapes if SPINE_LEVELS.index(s.level) < skeleton.first]
    below = [s for s in shapes if SPINE_LEVELS.index(s.level) >= skeleton.first + skeleton.count]
    margin_top = _margin(above[-1] if above else None, top, rng, above=True)
    margin_bottom = _margin(below[0] if below else None, bottom, rng, above=False)
    extent_mm = (bottom - top) + margin_top + margin_bottom
    spacing = extent_mm / skeleton.height_px
    low, high = site.spacing_mm
    if not low <= spacing <= high:
        spacing = float(np.clip(spacing, low, high))
        skeleton = replace(skeleton, height_px=round(extent_mm / spacing))
    width_mm = skeleton.width_px * spacing
    mean_x = float(np.mean([s.centre[0] for s in shapes if s.level in window]))
    shift = np.array([width_mm * rng.uniform(*site.fov_anterior) - mean_x, margin_top - top])
    return skeleton, spacing, shift


def _placed(shape: VertebraShape, shift: np.ndarray) -> VertebraShape:
    centre = np.asarray(shape.centre) + shift
    return replace(shape, centre=(float(centre[0]), float(centre[1])))


def _margin(neighbour: VertebraShape | None, edge: float, rng: np.random.Generator, *, above: bool) -> float:
    """Space between the visible window and the image edge: the neighbour's disc plus under half its body."""
    if neighbour is None:
        return float(rng.uniform(8, 20))
    box = neighbour.box(0.0)
    gap = edge - box[3] if above else box[1] - edge
    return float(max(gap, 0.0) + rng.uniform(0.1, 0.4) * (box[3] - box[1]))
