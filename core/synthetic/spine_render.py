"""Drawing the spine: the canal and posterior elements, the discs, and the vertebral bodies with their diseases.

Posterior elements depend on the slice's left-right position only through how much of each part the slab cuts
(a soft band in |x|), so each part is drawn once per case into its own patch and mixed in with that weight.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from core.annotations.model import Disease
from core.synthetic.anatomy import VertebraShape, is_thoracic
from core.synthetic.canvas import Canvas, band, local, soft
from core.synthetic.case import PhantomCase
from core.synthetic.diseases import Lesion, VertebraDisease

CSF, CORD, DISC, GAS, FLUID, SCLEROTIC_RIM = 8.0, 34.0, 85.0, -950.0, 15.0, 650.0


@dataclass(frozen=True)
class Part:
    """A posterior part in its patch: coverage, value and cancellous share, seen for ``low`` ≤ |x| ≤ ``high``."""

    rows: slice
    cols: slice
    inside: np.ndarray
    value: np.ndarray | float
    core: np.ndarray | None
    low: float
    high: float

    def draw(self, canvas: Canvas, x_mm: float) -> None:
        weight = band(x_mm, self.low, self.high)
        if weight <= 0:
            return
        canvas.blend(self.rows, self.cols, self.inside * weight, self.value)
        if self.core is not None:
            canvas.mark_cancellous(self.rows, self.cols, self.core * weight)


def _bone_part(
    rows: slice,
    cols: slice,
    distance: np.ndarray,
    edge: float,
    cancellous: float,
    cortical: float,
    low: float,
    high: float,
    shell: float = 1.0,
) -> Part:
    """A bony part: a cortical shell of ``shell`` mm around cancellous bone."""
    inside = soft(distance, edge)
    cortex = inside * soft(-distance - shell, edge)
    share = np.divide(cortex, inside, out=np.zeros_like(inside), where=inside > 1e-3)
    return Part(rows, cols, inside, cancellous + (cortical - cancellous) * share, inside - cortex, low, high)


def posterior_parts(canvas: Canvas, case: PhantomCase, shape: VertebraShape) -> list[Part]:
    """Canal (CSF, cord), pedicles, lamina, spinous process, facets and rib heads of one vertebra."""
    h = case.habitus
    size = case.skeleton.size
    back_reach = shape.depth / 2 + h.canal_depth + 45.0 * size
    corners = np.array([[u, v] for u in (-shape.height / 2 - 6, shape.height / 2 + 40) for v in (-back_reach, 0.0)])
    sin, cos = np.sin(shape.angle), np.cos(shape.angle)
    xs_c = shape.centre[0] + corners[:, 0] * sin - corners[:, 1] * cos
    ys_c = shape.centre[1] + corners[:, 0] * cos + corners[:, 1] * sin
    crop = canvas.crop(xs_c.min(), ys_c.min(), xs_c.max(), ys_c.max())
    if crop is None:
        return []
    rows, cols, xs, ys = crop
    u, v = local(shape, xs, ys)
    edge = canvas.spacing * 1.2
    back = -shape.depth / 2  # the posterior wall of the body
    canal_front, canal_back = back - 0.8, back - h.canal_depth
    bone, cortical = case.bone_hu + 60.0, case.cortical_hu * 0.8
    chw = h.canal_half_width
    parts = []
    canal = soft(np.maximum(np.maximum(v - canal_front, canal_back - v), np.abs(u) - (shape.height / 2 + 4.0)), edge)
    parts.append(Part(rows, cols, canal, CSF, None, -1.0, chw))
    if shape.level not in ("L3", "L4", "L5", "S1") and not shape.level.startswith("S"):
        cord = canal * soft(np.abs(v - (canal_front + canal_back) / 2) - 4.0, edge)
        parts.append(Part(rows, cols, cord, CORD, None, -1.0, 4.5))
    pedicle = np.maximum(
        np.maximum(v - back, canal_back - v), np.maximum(-shape.height / 2 - u, u - 0.05 * shape.height)
    )
    parts.append(_bone_part(rows, cols, pedicle, edge, bone, cortical, chw - 1.0, chw + 8.0))
    lamina = np.maximum(np.abs(v - (canal_back - 4.0)) - 4.0, np.abs(u - 0.15 * shape.height) - shape.height * 0.55)
    parts.append(_bone_part(rows, cols, lamina, edge, bone, cortical, -1.0, chw + 5.0))
    if shape.level == "S1":  # the sacrum's back is a fused plate: no spinous process or facets of its own
        return parts
    thoracic = is_thoracic(shape.level)
    tilt = np.radians(50.0 if thoracic else 12.0)
    length, thick = (38.0 if thoracic else 30.0) * size, (6.0 if thoracic else 10.0) * size
    dv, du = v - (canal_back - 6.0), u - 0.1 * shape.height
    along, across = -dv * np.cos(tilt) + du * np.sin(tilt), dv * np.sin(tilt) + du * np.cos(tilt)
    spinous = np.maximum(np.maximum(-along, along - length), np.abs(across) - thick / 2)
    parts.append(_bone_part(rows, cols, spinous, edge, bone, cortical, -1.0, 3.5))
    facet = np.sqrt((v - (canal_back - 2.0)) ** 2 + (u - shape.height / 2 - 2.0) ** 2) - 6.0
    parts.append(_bone_part(rows, cols, facet, edge, bone, cortical, chw + 1.0, chw + 14.0))
    if h.ribs and thoracic:
        rib = np.sqrt((v - back + 4.0) ** 2 + (u - shape.height / 2) ** 2) - 5.0
        parts.append(
            _bone_part(
                rows, cols, rib, edge, bone, case.cortical_hu * 0.7, shape.half_width + 2.0, shape.half_width + 28.0
            )
        )
    return parts


def draw_discs(canvas: Canvas, case: PhantomCase, x_mm: float) -> None:
    """Fill between consecutive bodies with disc (the bodies are drawn over it); some discs hold gas."""
    mask = Image.new("L", (canvas.width, canvas.height), 0)
    gas = Image.new("L", (canvas.width, canvas.height), 0)
    draw, draw_gas = ImageDraw.Draw(mask), ImageDraw.Draw(gas)
    s = canvas.spacing
    for upper, lower in itertools.pairwise(case.spine.vertebrae):
        a, b = upper.outline(x_mm), lower.outline(x_mm)
        if len(a) == 0 or len(b) == 0:
            continue
        n = len(a) // 2
        polygon = np.concatenate([a[n:], b[:n]]) / s  # the bottom of the upper body, then the top of the lower
        draw.polygon([tuple(p) for p in polygon], fill=255)
        if upper.level in case.disc_gas:  # the vacuum phenomenon of a degenerate disc
            middle = (a[n:].mean(axis=0) + b[:n].mean(axis=0)) / 2 / s
            r = 2.0 / s
            draw_gas.ellipse([middle[0] - 3 * r, middle[1] - r, middle[0] + 3 * r, middle[1] + r], fill=255)
    canvas.hu += (np.asarray(mask, dtype=np.float32) / 255.0) * (DISC - canvas.hu)
    if case.disc_gas:
        canvas.hu += (np.asarray(gas, dtype=np.float32) / 255.0) * (-600.0 - canvas.hu)


@dataclass
class Streak:
    """Where cement sits, for the streaks it casts: centre (mm), half height (mm) and density (HU)."""

    y: float
    x: float
    half_height: float
    hu: float


def draw_body(
    canvas: Canvas,
    case: PhantomCase,
    shape: VertebraShape,
    disease: VertebraDisease,
    x_mm: float,
    labels: np.ndarray | None,
    label: int,
    streaks: list[Streak],
) -> None:
    """A vertebral body: cortex, endplates and cancellous bone, with its deformity and lesions."""
    cut = shape.depth_at(x_mm)
    if cut <= 0:
        return
    outline = shape.outline(x_mm)
    crop = canvas.crop(
        outline[:, 0].min() - 3, outline[:, 1].min() - 3, outline[:, 0].max() + 3, outline[:, 1].max() + 3
    )
    if crop is None:
        return
    rows, cols, xs, ys = crop
    u, v = local(shape, xs, ys)
    t, height, top, bottom, distance = _body_outline(shape, u, v, cut)
    inside, core, value = _body_bone(canvas.spacing, case, disease, u, t, top, bottom, distance)
    canvas.blend(rows, cols, inside, np.divide(value, inside, out=np.zeros_like(inside), where=inside > 1e-3))
    canvas.mark_cancellous(rows, cols, core)
    for lesion in disease.lesions:
        presence = lesion.overlap(x_mm, case.site.thickness_mm)
        if presence > 0:
            _draw_lesion(canvas, rows, cols, lesion, (t, u, height, inside), presence, (xs, ys), streaks)
    if labels is not None:
        labels[rows, cols] = np.where(inside >= 0.5, label, labels[rows, cols])


def _body_outline(
    shape: VertebraShape, u: np.ndarray, v: np.ndarray, cut: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The body cut ``cut`` mm deep, in its own frame (``u`` along its axis, ``v`` across it): the position across
    it (``t``, 0 posterior to 1 anterior), its deformed height there, its concave top and bottom endplates, and the
    signed distance (mm) to its outline."""
    t = np.clip((v + shape.depth / 2) / cut, 0.0, 1.0)
    height = shape.height * shape.deformity.height_fraction(t)
    concave = shape.endplate_concavity * (1 - (2 * t - 1) ** 2)
    top, bottom = -height / 2 + concave, height / 2 - concave
    d_u = np.maximum(top - u, u - bottom)
    d_v = np.maximum(-(v + shape.depth / 2), v + shape.depth / 2 - cut)
    distance = np.sqrt(np.maximum(d_u, 0) ** 2 + np.maximum(d_v, 0) ** 2) + np.minimum(np.maximum(d_u, d_v), 0)
    return t, height, top, bottom, distance


def _body_bone(
    edge: float,
    case: PhantomCase,
    disease: VertebraDisease,
    u: np.ndarray,
    t: np.ndarray,
    top: np.ndarray,
    bottom: np.ndarray,
    distance: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The body's bone, its edges ``edge`` mm soft: coverage, the cancellous share, and the HU times coverage of the
    cortex (broken in a fresh fracture's anterior wall), the endplates (sclerotic in some diseases) and the
    cancellous core (with a condensed band under a collapsed endplate)."""
    inside = soft(distance, edge)
    cortex = inside * soft(-distance - (0.9 if case.bone_hu > 120 else 0.6), edge)
    endplate = inside * soft(np.minimum(u - top, bottom - u) - (1.0 + disease.sclerotic_endplates), edge) * (1 - cortex)
    if disease.cortical_break >= 0:  # a break in the anterior wall of a fresh fracture
        position = top + (bottom - top) * disease.cortical_break
        cortex = np.where((np.abs(u - position) < 1.5) & (t > 0.85), 0.0, cortex)
    core = np.clip(inside - cortex - endplate, 0.0, 1.0)
    core_hu = np.full_like(u, case.bone_hu)
    if disease.sclerotic_band > 0:  # condensed bone under the collapsed superior endplate, and a fracture line
        core_hu += soft((u - top) - disease.sclerotic_band, edge) * 260.0
        core_hu -= 60.0 * soft(np.abs(u - top - disease.sclerotic_band) - 0.4, edge)
    endplate_hu = case.cortical_hu * 0.75 + (150.0 if disease.sclerotic_endplates > 0 else 0.0)
    return inside, core, core * core_hu + cortex * case.cortical_hu + endplate * endplate_hu


def _draw_lesion(
    canvas: Canvas,
    rows: slice,
    cols: slice,
    lesion: Lesion,
    frame: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    presence: float,
    coordinates: tuple[np.ndarray, np.ndarray],
    streaks: list[Streak],
) -> None:
    t, u, height, inside = frame
    rel_u = u / np.maximum(height, 1e-3)
    blobs = [(lesion.t_centre, lesion.u_centre, lesion.t_radius, lesion.u_radius), *lesion.lobes]
    radial = np.min([np.sqrt(((t - tc) / tr) ** 2 + ((rel_u - uc) / ur) ** 2) for tc, uc, tr, ur in blobs], axis=0)
    scale = float(np.mean(height)) * lesion.u_radius
    weight = soft((radial - 1.0) * scale, canvas.spacing) * inside * presence
    if lesion.kind == Disease.SN:  # disc material through the endplate, inside a sclerotic rim
        rim = soft(np.abs(radial - 1.0) * scale - 0.7, canvas.spacing) * inside * presence
        canvas.blend(rows, cols, rim * (1 - weight), SCLEROTIC_RIM)
        canvas.blend(rows, cols, weight, DISC)
    elif lesion.kind == Disease.KD:  # an intravertebral cleft of gas or fluid
        canvas.blend(rows, cols, weight, GAS if lesion.gas else FLUID)
    elif lesion.kind == Disease.PS:  # bone cement
        canvas.blend(rows, cols, weight, lesion.hu)
        heavy = weight > 0.5
        if heavy.any():
            xs, ys = coordinates
            streaks.append(
                Streak(
                    float(ys[np.any(heavy, axis=1)].mean()),
                    float(xs[0, np.any(heavy, axis=0)].mean()),
                    scale,
                    lesion.hu * presence,
                )
            )
    canvas.cancellous[rows, cols] *= 1 - weight


def draw_streaks(canvas: Canvas, streaks: list[Streak]) -> None:
    """Cement casts horizontal streaks in a sagittal reformat (they lie in the axial planes it was made from)."""
    s = canvas.spacing
    xs = (np.arange(canvas.width, dtype=np.float32) + 0.5) * s
    for streak in streaks:
        first = max(0, int((streak.y - 3 * streak.half_height) / s))
        last = min(canvas.height, int((streak.y + 3 * streak.half_height) / s) + 1)
        ys = (np.arange(first, last, dtype=np.float32) + 0.5) * s
        dy = ys - streak.y
        pattern = (np.sin(dy / 1.3) * np.exp(-np.abs(dy) / (1.5 * streak.half_height)))[:, None]
        canvas.hu[first:last] += (0.07 * streak.hu) * pattern * np.exp(-np.abs(xs - streak.x) / 60.0)[None, :]
