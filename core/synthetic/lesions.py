"""Diseases made on the real-anatomy bodies of an :class:`AnatomySlab`.

:func:`make_lesions` gives each body of a slab its planned diseases. Each function under it changes one body and
returns a new slab with that body's ``diseases`` (and ``grade``) set:
:func:`compress` (wedge, biconcave or crush height loss, with the sclerotic endplates of an old fracture or the
impaction band of a fresh one), :func:`cleft` (Kümmell's intravertebral vacuum cleft), :func:`cement`
(vertebroplasty) and :func:`endplate_notch` (a Schmorl's node). Every random choice comes from ``rng`` within a
documented range, so a seed fixes the result.

Shapes are set in the body's own frame (:mod:`core.synthetic.body_frame`): ``u`` along its axis (inferior +),
``v`` across it (anterior +, the image's left), in pixels from its centroid; the axis runs through the neighbouring
bodies, so a tilted body is compressed along its own height. Tissue is mixed
in with a weight (``f ← (1 - w) f + w · tissue``), so the fractions keep summing to 1. A compression moves the
body's fraction map with its tissues; a cleft, cement or a node change only what the body is made of.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from core.annotations.model import Disease
from core.synthetic.anatomy import Deformity
from core.synthetic.body_frame import BodyFrame, Endplates, body_frame, endplates, sample_at
from core.synthetic.slab import TISSUE, AnatomySlab

KINDS = ("wedge", "biconcave", "crush")


def genant_grade(height_loss: float) -> int:
    """Genant's grade of a height loss (share of the normal height): under 20 % none (0), 20-25 % mild (1),
    25-40 % moderate (2), over 40 % severe (3)."""
    return 0 if height_loss < 0.2 else 1 if height_loss < 0.25 else 2 if height_loss <= 0.4 else 3


def _mix(fractions: np.ndarray, rows: slice, cols: slice, weight: np.ndarray, tissue: str) -> None:
    """Mix ``tissue`` into the window with ``weight`` (0 keeps, 1 replaces), in place."""
    region = fractions[:, rows, cols]
    region *= 1 - weight
    region[TISSUE[tissue]] += weight


def _harden(fractions: np.ndarray, rows: slice, cols: slice, weight: np.ndarray) -> None:
    """Turn the share ``weight`` of the cancellous bone in the window into dense bone (sclerosis), in place."""
    moved = weight * fractions[TISSUE["cancellous"], rows, cols]
    fractions[TISSUE["cancellous"], rows, cols] -= moved
    fractions[TISSUE["bone"], rows, cols] += moved


def _ellipse(du: np.ndarray, dv: np.ndarray, radius_u: float, radius_v: float, wobble=None) -> np.ndarray:
    """1 inside an ellipse, 0 outside, a pixel of partial volume across its edge; ``wobble(angle)`` scales the
    radius per direction (an irregular outline)."""
    rho = np.sqrt((du / radius_u) ** 2 + (dv / radius_v) ** 2)
    if wobble is not None:
        rho = rho / wobble(np.arctan2(du / radius_u, dv / radius_v))
    return np.clip(0.5 - (rho - 1) * min(radius_u, radius_v), 0.0, 1.0)


def _with_body(slab: AnatomySlab, index: int, fractions: np.ndarray, add: Disease | None, **changes) -> AnatomySlab:
    body = slab.bodies[index]
    body = replace(body, diseases=body.diseases | {add} if add else body.diseases, **changes)
    return slab.with_changes(fractions=fractions, bodies=(*slab.bodies[:index], body, *slab.bodies[index + 1 :]))


@dataclass(frozen=True)
class CompressionRanges:
    """How a compression is drawn, besides its kind and amount (the height-loss profile along the depth is the
    analytic phantom's :class:`Deformity`: ``amount`` is the largest loss, anterior for a wedge, central for a
    biconcave body, anterior and central for a crush)."""

    superior_share: tuple[float, float] = (0.5, 1.0)  # share of the loss the superior endplate takes (wedge, crush)
    biconcave_share: tuple[float, float] = (0.4, 0.6)  # … for a biconcave body, both endplates cave in
    disc_reach: float = 0.6  # how far (× body height) the discs stretch to fill, where no neighbour bounds them
    taper: float = 0.15  # beyond the walls, the warp fades out over this share of the depth
    sclerosis_mm: tuple[float, float] = (1.2, 3.0)  # old fracture: dense band at both endplates
    sclerosis_strength: tuple[float, float] = (0.5, 0.9)  # share of its cancellous bone made dense
    impaction_probability: float = 0.7  # fresh fracture: a condensed band under the collapsed superior endplate
    impaction_mm: tuple[float, float] = (2.5, 6.0)
    impaction_strength: tuple[float, float] = (0.15, 0.35)


def _compress_map(cols: Endplates, u: np.ndarray, v: np.ndarray, new, walls, taper: float):
    """Where (``u``) each pixel (``u``, ``v``) takes its value from, and which pixels move: per column, the disc
    above, the body and the disc below are stretched piecewise linearly onto their new spans; beyond the body's
    ``walls`` (its extent in ``v``) the change fades out over ``taper`` pixels."""
    new_top, new_bottom = new
    vc = np.clip(v, cols.v[0], cols.v[-1])
    knot = {name: np.interp(vc, cols.v, values) for name, values in (
        ("upper", cols.upper), ("top", cols.top), ("bottom", cols.bottom), ("lower", cols.lower),
        ("new_top", new_top), ("new_bottom", new_bottom),
    )}  # fmt: skip
    up, top, bottom, low = knot["upper"], knot["top"], knot["bottom"], knot["lower"]
    nt, nb = knot["new_top"], knot["new_bottom"]
    source = np.select(
        [u < up, u < nt, u <= nb, u <= low],
        [u, up + (u - up) * (top - up) / (nt - up), top + (u - nt) * (bottom - top) / (nb - nt),
         bottom + (u - nb) * (low - bottom) / (low - nb)],
        default=u,
    )  # fmt: skip
    fade = np.clip(1 - np.maximum(np.maximum(walls[0] - v, v - walls[1]), 0) / taper, 0.0, 1.0)
    return u + fade * (source - u), (fade > 0) & (u >= up) & (u <= low)


def _resample(slab: AnatomySlab, window, moves: np.ndarray, x: np.ndarray, y: np.ndarray):
    """New tissue fractions and bodies: in ``window``, the pixels that ``moves`` take their value at ``x``, ``y``."""
    fractions = slab.fractions.copy()
    region = np.where(moves, sample_at(slab.fractions, x, y), slab.fractions[:, *window])
    missing = 1 - region.sum(axis=0)
    region[TISSUE["air"]] += np.where(missing > 1e-4, missing, 0)  # what came from beyond the image is air
    fractions[:, window[0], window[1]] = region
    bodies = list(slab.bodies)
    for i, b in enumerate(slab.bodies):
        if b.fraction[window].any():
            moved = b.fraction.copy()
            moved[window] = np.where(moves, sample_at(b.fraction[None], x, y)[0], b.fraction[window])
            bodies[i] = replace(b, fraction=moved)
    return fractions, bodies


def compress(
    slab: AnatomySlab,
    index: int,
    kind: str,
    amount: float,
    rng: np.random.Generator,
    disease: Disease | None = Disease.OVCF,
    ranges: CompressionRanges = CompressionRanges(),
) -> AnatomySlab:
    """Body ``index`` collapsed by ``amount`` (0…0.9, share of its height lost where the loss is largest) in the
    pattern ``kind`` (:data:`KINDS`). Its fraction map and every tissue inside its columns move together; the
    discs above and below stretch into the room it leaves. The body's grade is :func:`genant_grade` of ``amount``;
    from grade 1 it gets ``disease``: OVCF (acute, maybe an impaction band) or OF (old: sclerotic endplates); None
    changes the shape only (the collapse under a Kümmell cleft). Under 20 % it stays a normal (grade 0) body."""
    if kind not in KINDS or not 0 <= amount < 0.9 or disease not in (Disease.OVCF, Disease.OF, None):
        raise ValueError(f"cannot compress by {kind!r} {amount!r} as {disease!r}")
    frame = body_frame(slab, index)
    cols = endplates(slab, index, frame, ranges.disc_reach * frame.height)
    t = np.clip((cols.v - cols.v[0]) / max(cols.v[-1] - cols.v[0], 1e-6), 0, 1)
    loss = (cols.bottom - cols.top) * (1 - Deformity.of(kind, amount).height_fraction(t))
    share = rng.uniform(*(ranges.biconcave_share if kind == "biconcave" else ranges.superior_share))
    new = (cols.top + share * loss, cols.bottom - (1 - share) * loss)
    taper = max(ranges.taper * frame.depth, 2.0)
    walls = (min(frame.posterior, cols.v[0]), max(frame.anterior, cols.v[-1]))
    window = frame.window(slab.shape, (cols.upper.min(), cols.lower.max()), (walls[0] - taper, walls[1] + taper))
    u, v = frame.pixels(*window)
    source, moves = _compress_map(cols, u, v, new, walls, taper)
    fractions, bodies = _resample(slab, window, moves, *frame.image(source, v))
    grade = genant_grade(amount)
    if grade:
        body = bodies[index].fraction
        _endplate_bands(fractions, body, frame, (cols.v, *new), window, slab.pixel_mm, disease, rng, ranges)
    slab = slab.with_changes(bodies=tuple(bodies))
    return _with_body(slab, index, fractions, disease if grade else None, grade=max(grade, bodies[index].grade))


def _band(depth: np.ndarray, thickness: float) -> np.ndarray:
    """1 from 0 to ``thickness`` pixels deep, with half a pixel of partial volume at each side."""
    return np.clip(0.5 + depth, 0.0, 1.0) * np.clip(0.5 + thickness - depth, 0.0, 1.0)


def _endplate_bands(fractions, body, frame, endplates, window, pixel_mm, disease, rng, ranges) -> None:
    """Dense bone along the new endplates, in place: both, sclerotic, for an old fracture; under the superior one,
    condensed (impaction), for most fresh ones."""
    columns, new_top, new_bottom = endplates
    u, v = frame.pixels(*window)
    inside = body[window] * ((v >= columns[0]) & (v <= columns[-1]))
    below_top, above_bottom = u - np.interp(v, columns, new_top), np.interp(v, columns, new_bottom) - u
    if disease == Disease.OF:
        thickness = rng.uniform(*ranges.sclerosis_mm) / pixel_mm
        weight = np.maximum(_band(below_top, thickness), _band(above_bottom, thickness))
        _harden(fractions, *window, weight * inside * rng.uniform(*ranges.sclerosis_strength))
    elif disease == Disease.OVCF and rng.random() < ranges.impaction_probability:
        thickness = rng.uniform(*ranges.impaction_mm) / pixel_mm
        _harden(fractions, *window, _band(below_top, thickness) * inside * rng.uniform(*ranges.impaction_strength))


def _core(body: np.ndarray) -> np.ndarray:
    """How much of each pixel is well inside the body (0 up to half body, 1 where all body)."""
    return np.clip(2 * body - 1, 0.0, 1.0)


@dataclass(frozen=True)
class CleftRanges:
    """Kümmell's intravertebral cleft: a horizontal ellipse or crescent of gas (or fluid) in a collapsed body.
    Depth positions run from the posterior wall (0) to the anterior wall (1); heights from the body's middle,
    as shares of its (collapsed) height, negative toward the superior endplate."""

    collapse_probability: float = 0.8  # a body not yet compressed collapses first (no OVCF label of its own)
    collapse_kinds: tuple[str, ...] = ("wedge", "crush")
    collapse: tuple[float, float] = (0.3, 0.65)  # its height loss
    gas_probability: float = 0.75  # else fluid (like the canal's CSF)
    crescent_probability: float = 0.5  # else a full ellipse
    centre_depth: tuple[float, float] = (0.4, 0.6)
    centre_height: tuple[float, float] = (-0.2, 0.05)
    half_depth: tuple[float, float] = (0.2, 0.3)  # × body depth
    half_height: tuple[float, float] = (0.08, 0.18)  # × body height
    fill: tuple[float, float] = (0.85, 1.0)  # share of the cleft's pixels that is gas or fluid


def cleft(
    slab: AnatomySlab, index: int, rng: np.random.Generator, ranges: CleftRanges = CleftRanges()
) -> AnatomySlab:
    """Body ``index`` with an intravertebral vacuum cleft (KD), inside its pixels that are more than half body;
    a body of grade 0 first collapses (see :class:`CleftRanges`)."""
    if slab.bodies[index].grade == 0 and rng.random() < ranges.collapse_probability:
        kind, loss = str(rng.choice(ranges.collapse_kinds)), rng.uniform(*ranges.collapse)
        slab = compress(slab, index, kind, loss, rng, disease=None)
    frame = body_frame(slab, index)
    vc = frame.posterior + rng.uniform(*ranges.centre_depth) * frame.depth
    uc = (frame.top + frame.bottom) / 2 + rng.uniform(*ranges.centre_height) * frame.height
    rv = rng.uniform(*ranges.half_depth) * frame.depth
    ru = max(rng.uniform(*ranges.half_height) * frame.height, 1.0)
    tissue = "gas" if rng.random() < ranges.gas_probability else "canal"
    crescent, bulge, fill = rng.random() < ranges.crescent_probability, rng.choice([-1, 1]), rng.uniform(*ranges.fill)
    window = frame.window(slab.shape, (uc - ru - 2, uc + ru + 2), (vc - rv - 2, vc + rv + 2))
    u, v = frame.pixels(*window)
    weight = _ellipse(u - uc, v - vc, ru, rv)
    if crescent:  # the ellipse less a copy moved along the axis: a crescent bulging up or down
        weight *= 1 - _ellipse(u - uc - bulge * 0.8 * ru, v - vc, ru, 1.15 * rv)
    fractions = slab.fractions.copy()
    _mix(fractions, *window, weight * fill * _core(slab.bodies[index].fraction[window]), tissue)
    return _with_body(slab, index, fractions, Disease.KD)


@dataclass(frozen=True)
class CementRanges:
    """Vertebroplasty cement: an irregular dense blob of one to three lobes inside the body, sometimes leaking
    into a disc (a blob through an endplate) or a vein (a thin streak out of the anterior or posterior wall).
    Positions and sizes as in :class:`CleftRanges`; leak sizes in mm."""

    centre_depth: tuple[float, float] = (0.4, 0.6)
    centre_height: tuple[float, float] = (-0.15, 0.15)
    half_depth: tuple[float, float] = (0.2, 0.33)
    half_height: tuple[float, float] = (0.18, 0.32)
    lobes: tuple[int, int] = (0, 2)  # extra lobes, each 0.5-0.8 of the main one, off its centre by up to 0.2
    irregularity: float = 0.15  # largest relative wobble of a lobe's outline
    fill: tuple[float, float] = (0.85, 1.0)  # share of the blob's pixels that is cement
    leak_probability: float = 0.3
    disc_leak_share: float = 0.6  # of the leaks, into a disc; the rest into a vein
    disc_leak_mm: tuple[float, float] = (2.0, 5.0)  # radius of a disc leak
    vein_mm: tuple[float, float] = (1.0, 2.5)  # width of a vein leak
    vein_length_mm: tuple[float, float] = (5.0, 15.0)


def _wobble(rng: np.random.Generator, irregularity: float):
    """A random outline: the radius scaled by 1 + a sum of 2nd-4th harmonics, never more than ``irregularity``."""
    amplitudes, phases = rng.uniform(0, irregularity / 3, 3), rng.uniform(0, 2 * np.pi, 3)
    harmonics = tuple(zip((2, 3, 4), amplitudes, phases, strict=True))
    return lambda angle: 1 + sum(a * np.cos(k * angle + p) for k, a, p in harmonics)


def _leak(frame: BodyFrame, u, v, centre, pixel_mm: float, rng: np.random.Generator, ranges: CementRanges):
    """The weight of a cement leak, outside the body's control: into the disc above or below, or a vein."""
    if rng.random() < ranges.disc_leak_share:
        radius = rng.uniform(*ranges.disc_leak_mm) / pixel_mm
        endplate = frame.top if rng.random() < 0.5 else frame.bottom
        return _ellipse(u - endplate, v - centre[1] - rng.uniform(-0.2, 0.2) * frame.depth, radius, 1.5 * radius)
    width, length = rng.uniform(*ranges.vein_mm) / pixel_mm, rng.uniform(*ranges.vein_length_mm) / pixel_mm
    outward = 1 if rng.random() < 0.5 else -1  # +1 anterior, -1 posterior
    start = np.array([centre[0] + rng.uniform(-0.2, 0.2) * frame.height,
                      (frame.anterior if outward > 0 else frame.posterior) - outward * 2.0])  # fmt: skip
    slope = rng.uniform(-0.35, 0.35)
    direction = np.array([np.sin(slope), outward * np.cos(slope)])
    du, dv = u - start[0], v - start[1]
    along = np.clip(du * direction[0] + dv * direction[1], 0, length + 2.0)
    distance = np.hypot(du - along * direction[0], dv - along * direction[1])
    return np.clip(0.5 - (distance - width / 2), 0.0, 1.0)


def cement(
    slab: AnatomySlab, index: int, rng: np.random.Generator, ranges: CementRanges = CementRanges()
) -> AnatomySlab:
    """Body ``index`` with vertebroplasty cement (PS): ``cement`` mixed into part of its inside, maybe leaking."""
    frame = body_frame(slab, index)
    centre = ((frame.top + frame.bottom) / 2 + rng.uniform(*ranges.centre_height) * frame.height,
              frame.posterior + rng.uniform(*ranges.centre_depth) * frame.depth)  # fmt: skip
    radii = (rng.uniform(*ranges.half_height) * frame.height, rng.uniform(*ranges.half_depth) * frame.depth)
    lobes = [(centre, radii)]
    for _ in range(int(rng.integers(ranges.lobes[0], ranges.lobes[1] + 1))):
        offset = rng.uniform(-0.2, 0.2, 2) * (frame.height, frame.depth)
        lobes.append((np.add(centre, offset), np.multiply(radii, rng.uniform(0.5, 0.8))))
    reach = (max(ranges.vein_length_mm[1], 2 * ranges.disc_leak_mm[1]) + 3) / slab.pixel_mm
    window = frame.window(
        slab.shape, (frame.top - reach, frame.bottom + reach), (frame.posterior - reach, frame.anterior + reach)
    )
    u, v = frame.pixels(*window)
    weight = np.zeros_like(u)
    for (uc, vc), (ru, rv) in lobes:
        weight = np.maximum(weight, _ellipse(u - uc, v - vc, ru, rv, _wobble(rng, ranges.irregularity)))
    weight *= _core(slab.bodies[index].fraction[window])
    if rng.random() < ranges.leak_probability:
        weight = np.maximum(weight, _leak(frame, u, v, centre, slab.pixel_mm, rng, ranges))
    fractions = slab.fractions.copy()
    _mix(fractions, *window, weight * rng.uniform(*ranges.fill), "cement")
    return _with_body(slab, index, fractions, Disease.PS)


@dataclass(frozen=True)
class NotchRanges:
    """A Schmorl's node: disc pushed through an endplate, a rounded defect with a thin sclerotic rim."""

    width_mm: tuple[float, float] = (3.0, 10.0)  # across, along the endplate
    depth: tuple[float, float] = (0.6, 1.3)  # how deep into the body, × half the width (at most 0.4 of the height)
    superior_probability: float = 0.6  # through the superior endplate, else the inferior one
    position: tuple[float, float] = (0.3, 0.7)  # along the depth, posterior wall 0 to anterior wall 1
    rim_mm: tuple[float, float] = (0.6, 1.5)
    rim_strength: tuple[float, float] = (0.6, 1.0)  # share of the rim's pixels that is dense bone
    fill: tuple[float, float] = (0.9, 1.0)  # share of the defect's pixels that is disc


def endplate_notch(
    slab: AnatomySlab, index: int, rng: np.random.Generator, ranges: NotchRanges = NotchRanges()
) -> AnatomySlab:
    """Body ``index`` with a Schmorl's node (SN): a defect filled with disc, centred on one endplate, in a rim of
    dense bone; the body's map and height stay as they were."""
    frame = body_frame(slab, index)
    cols = endplates(slab, index, frame, 1.0)
    superior = rng.random() < ranges.superior_probability
    vc = frame.posterior + rng.uniform(*ranges.position) * frame.depth
    half = rng.uniform(*ranges.width_mm) / 2 / slab.pixel_mm
    depth = min(rng.uniform(*ranges.depth) * half, 0.4 * frame.height)
    rim = rng.uniform(*ranges.rim_mm) / slab.pixel_mm
    strength, fill = rng.uniform(*ranges.rim_strength), rng.uniform(*ranges.fill)
    uc = float(np.interp(vc, cols.v, cols.top if superior else cols.bottom))
    reach = depth + rim + 2
    window = frame.window(slab.shape, (uc - reach, uc + reach), (vc - half - rim - 2, vc + half + rim + 2))
    u, v = frame.pixels(*window)
    defect = _ellipse(u - uc, v - vc, depth, half)
    shell = np.clip(_ellipse(u - uc, v - vc, depth + rim, half + rim) - defect, 0.0, 1.0)
    body = slab.bodies[index].fraction[window]
    fractions = slab.fractions.copy()
    _mix(fractions, *window, shell * body * strength, "bone")
    _mix(fractions, *window, defect * body * fill, "disc")
    return _with_body(slab, index, fractions, Disease.SN)


#: How :func:`make_lesions` compresses a body with an acute (OVCF) or old (OF) fracture: the analytic phantom's
#: patterns (``diseases.vertebra_disease``), with at least 20 % height loss so the body is graded a fracture.
FRACTURES: dict[Disease, tuple[tuple[str, ...], tuple[float, ...], tuple[float, float]]] = {
    Disease.OVCF: (("wedge", "biconcave", "crush"), (0.5, 0.3, 0.2), (0.2, 0.6)),
    Disease.OF: (("wedge", "biconcave"), (0.7, 0.3), (0.2, 0.45)),
}


def body_rng(seed: np.random.SeedSequence, name: str) -> np.random.Generator:
    """The random stream of the body ``name``: the same in every slab cut from a case, whatever else is on it."""
    key = (*seed.spawn_key, zlib.crc32(name.encode()))
    return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=key))


def make_lesions(
    slab: AnatomySlab, diseases: Mapping[str, frozenset[Disease]], seed: np.random.SeedSequence | int
) -> AnatomySlab:
    """``slab`` with each body named in ``diseases`` given those diseases: fractures by :func:`compress`
    (:data:`FRACTURES`), then KD by :func:`cleft` (which collapses a body no fracture compressed, mostly),
    PS by :func:`cement` and SN by :func:`endplate_notch`. Bodies not on the slab are passed over. Each body draws
    from its own stream (:func:`body_rng`), so its lesions look alike in every slab of a case."""
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    for index, body in enumerate(slab.bodies):
        wanted = diseases.get(body.name, frozenset())
        if not wanted or body.box() is None:
            continue
        rng = body_rng(sequence, body.name)
        for disease, (kinds, weights, loss) in FRACTURES.items():
            if disease in wanted:
                slab = compress(slab, index, str(rng.choice(kinds, p=weights)), rng.uniform(*loss), rng, disease)
        for disease, make in ((Disease.KD, cleft), (Disease.PS, cement), (Disease.SN, endplate_notch)):
            if disease in wanted:
                slab = make(slab, index, rng)
    return slab
