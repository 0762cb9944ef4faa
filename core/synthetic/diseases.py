"""Disease assignment and lesion geometry for the phantom.

Prevalences are per vertebra box, as in the paper's Table 2. Diseases that change the whole body (OVCF, OF) show in
every slice that cuts the body; focal lesions (a Schmorl's node, a Kummell cleft, a cement blob) show only in the
slices that pass through them, so their per-vertebra rate is raised by their expected visibility to keep the
per-box prevalence as requested. Diseases are allocated over the whole study at once (stratified), so a study of a
few hundred slices already matches the requested prevalences closely.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.annotations.model import Disease
from core.synthetic.anatomy import Deformity

#: The paper's Table 2 (training set), per vertebra box.
PAPER_PREVALENCE: dict[Disease, float] = {
    Disease.OVCF: 0.129,
    Disease.OF: 0.052,
    Disease.SN: 0.013,
    Disease.KD: 0.008,
    Disease.PS: 0.032,
}
#: Fractions of KD that also have an acute fracture, and of PS (cemented) bodies that are old fractures.
KD_WITH_OVCF = 0.6
PS_WITH_OF = 0.5
FOCAL = (Disease.SN, Disease.KD, Disease.PS)


@dataclass(frozen=True)
class Lesion:
    """A focal lesion inside a body, in the body's frame: ``t`` along the depth (0 posterior, 1 anterior),
    ``u`` along the height (-0.5 top, 0.5 bottom), and its left-right extent ``x_range`` in mm."""

    kind: Disease
    x_range: tuple[float, float]
    t_centre: float
    u_centre: float
    t_radius: float
    u_radius: float
    gas: bool = False  # a Kummell cleft holds gas (else fluid)
    hu: float = 0.0  # cement density
    lobes: tuple[tuple[float, float, float, float], ...] = ()  # extra cement lobes (t, u, t radius, u radius)

    def overlap(self, x_mm: float, thickness_mm: float) -> float:
        """The fraction of the slab ``x_mm ± thickness/2`` inside the lesion (partial volume)."""
        lo, hi = self.x_range
        half = max(thickness_mm, 1e-6) / 2
        inside = max(0.0, min(hi, x_mm + half) - max(lo, x_mm - half))
        return min(1.0, inside / min(2 * half, hi - lo))

    def visible(self, x_mm: float, thickness_mm: float) -> bool:
        return self.overlap(x_mm, thickness_mm) >= 0.5


@dataclass(frozen=True)
class VertebraDisease:
    """What is wrong with one vertebra: its diseases, its deformity and focal lesions."""

    diseases: frozenset[Disease] = frozenset()
    deformity: Deformity = field(default_factory=Deformity)
    lesions: tuple[Lesion, ...] = ()
    sclerotic_band: float = 0.0  # thickness (mm) of the condensed band under a fresh fracture
    sclerotic_endplates: float = 0.0  # extra endplate thickness (mm) of a healed fracture
    cortical_break: float = -1.0  # position along the anterior wall (0 top … 1 bottom) of a break, or -1

    def visible_diseases(self, x_mm: float, thickness_mm: float) -> frozenset[Disease]:
        """The diseases a reader can see in the slice at ``x_mm`` (whole-body ones always, focal ones if cut)."""
        shown = {d for d in self.diseases if d not in FOCAL}
        for lesion in self.lesions:
            if lesion.visible(x_mm, thickness_mm):
                shown.add(lesion.kind)
        return frozenset(shown)


NORMAL_VERTEBRA = VertebraDisease()


@dataclass
class DiseasePlan:
    """Per-vertebra primary disease rates that give the requested per-box prevalences."""

    prevalence: Mapping[Disease, float]
    visibility: Mapping[Disease, float] = field(default_factory=dict)

    def primary_rates(self) -> dict[Disease, float]:
        """Rates of the primary (exclusive) categories. KD brings OVCF along, PS brings OF, so those are reduced."""
        p = {d: float(self.prevalence.get(d, 0.0)) for d in Disease}
        seen = {d: p[d] / max(self.visibility.get(d, 1.0), 1e-6) for d in Disease}
        rates = dict(seen)
        rates[Disease.OVCF] = max(0.0, p[Disease.OVCF] - KD_WITH_OVCF * seen[Disease.KD])
        rates[Disease.OF] = max(0.0, p[Disease.OF] - PS_WITH_OF * seen[Disease.PS])
        total = sum(rates.values())
        if total > 0.95:
            raise ValueError(f"prevalences add up to {total:.2f} of all vertebrae; they must leave room for NORMAL")
        return rates


def _rounded(expected: float, rng: np.random.Generator) -> int:
    """``expected`` rounded down or up at random, so that the mean is exact."""
    whole = int(np.floor(expected))
    return whole + int(rng.random() < expected - whole)


def allocate(plan: DiseasePlan, count: int, rng: np.random.Generator) -> list[frozenset[Disease]]:
    """The diseases of ``count`` vertebrae, stratified: each primary class gets its rate times ``count`` (rounded at
    random), and exactly its share of the KD and PS vertebrae also get OVCF and OF."""
    labels: list[frozenset[Disease]] = []
    for disease, rate in plan.primary_rates().items():
        number = _rounded(rate * count, rng)
        partner = {Disease.KD: (Disease.OVCF, KD_WITH_OVCF), Disease.PS: (Disease.OF, PS_WITH_OF)}.get(disease)
        paired = _rounded(partner[1] * number, rng) if partner else 0
        labels.extend([frozenset({disease, partner[0]})] * paired if partner else [])
        labels.extend([frozenset({disease})] * (number - paired))
    labels = labels[:count]
    labels.extend([frozenset()] * (count - len(labels)))
    order = rng.permutation(count)
    return [labels[i] for i in order]


def systematic_sample(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Which units are picked, each with its own probability, with the total as close to its mean as possible
    (systematic sampling in random order)."""
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    order = rng.permutation(len(p))
    cumulative = np.cumsum(p[order])
    start = rng.random()
    before = np.concatenate([[0.0], cumulative[:-1]])
    hits = np.floor(cumulative - start) > np.floor(before - start)
    picked = np.zeros(len(p), dtype=bool)
    picked[order] = hits
    return picked


#: Left-right extent of each focal lesion, as a fraction of the body's width.
LESION_WIDTH: dict[Disease, tuple[float, float]] = {
    Disease.SN: (0.25, 0.5),
    Disease.KD: (0.6, 0.9),
    Disease.PS: (0.45, 0.85),
}
_CENTRE_SPREAD = 0.6  # how far off the midline a lesion may sit, as a fraction of the room it has


def _extent(rng: np.random.Generator, half_width: float, kind: Disease) -> tuple[float, float]:
    width = rng.uniform(*LESION_WIDTH[kind]) * 2 * half_width
    room = (half_width - width / 2) * _CENTRE_SPREAD
    centre = rng.uniform(-room, room)
    return centre - width / 2, centre + width / 2


def sample_lesion(kind: Disease, half_width: float, rng: np.random.Generator) -> Lesion:
    """A focal lesion of ``kind`` in a body of half-width ``half_width`` mm."""
    if kind == Disease.SN:
        top = rng.random() < 0.6
        return Lesion(
            kind,
            _extent(rng, half_width, kind),
            t_centre=rng.uniform(0.3, 0.7),
            u_centre=-0.5 if top else 0.5,
            t_radius=rng.uniform(0.1, 0.2),
            u_radius=rng.uniform(0.12, 0.25),
        )
    if kind == Disease.KD:
        return Lesion(
            kind,
            _extent(rng, half_width, kind),
            t_centre=rng.uniform(0.45, 0.65),
            u_centre=rng.uniform(-0.2, 0.05),
            t_radius=rng.uniform(0.25, 0.38),
            u_radius=rng.uniform(0.08, 0.18),
            gas=bool(rng.random() < 0.75),
        )
    if kind == Disease.PS:
        lobes = tuple(
            (rng.uniform(0.3, 0.7), rng.uniform(-0.25, 0.25), rng.uniform(0.1, 0.2), rng.uniform(0.1, 0.22))
            for _ in range(int(rng.integers(0, 3)))
        )
        return Lesion(
            kind,
            _extent(rng, half_width, kind),
            t_centre=rng.uniform(0.4, 0.6),
            u_centre=rng.uniform(-0.15, 0.15),
            t_radius=rng.uniform(0.2, 0.33),
            u_radius=rng.uniform(0.18, 0.32),
            hu=rng.uniform(1500.0, 3000.0),
            lobes=lobes,
        )
    raise ValueError(f"{kind} is not a focal lesion")


def vertebra_disease(diseases: frozenset[Disease], half_width: float, rng: np.random.Generator) -> VertebraDisease:
    """The deformity and lesions of a vertebra with ``diseases``."""
    if not diseases:
        return NORMAL_VERTEBRA
    deformity = Deformity()
    band = sclerotic = 0.0
    cortical_break = -1.0
    if Disease.KD in diseases:
        deformity = Deformity.of(str(rng.choice(["wedge", "crush"])), rng.uniform(0.3, 0.65))
    elif Disease.OVCF in diseases:
        deformity = Deformity.of(
            str(rng.choice(["wedge", "biconcave", "crush"], p=[0.5, 0.3, 0.2])), rng.uniform(0.2, 0.6)
        )
    elif Disease.OF in diseases:
        deformity = Deformity.of(str(rng.choice(["wedge", "biconcave"], p=[0.7, 0.3])), rng.uniform(0.15, 0.45))
    if Disease.OVCF in diseases:
        band = rng.uniform(2.5, 6.0)
        cortical_break = rng.uniform(0.15, 0.45) if rng.random() < 0.8 else -1.0
    if Disease.OF in diseases:
        sclerotic = rng.uniform(1.2, 2.5)
    lesions = tuple(sample_lesion(d, half_width, rng) for d in FOCAL if d in diseases)
    return VertebraDisease(frozenset(diseases), deformity, lesions, band, sclerotic, cortical_break)


def expected_visibility(
    kind: Disease,
    offsets_mm: Sequence[float],
    thickness_mm: float,
    half_widths: Sequence[float],
    rng: np.random.Generator,
    samples: int = 20_000,
) -> float:
    """The mean fraction of a case's slices that show a focal lesion of ``kind`` (Monte Carlo over its extent)."""
    if kind not in FOCAL or not offsets_mm:
        return 1.0
    half = np.asarray(rng.choice(np.asarray(half_widths, dtype=float), samples))
    width = rng.uniform(*LESION_WIDTH[kind], samples) * 2 * half
    room = (half - width / 2) * _CENTRE_SPREAD
    centre = rng.uniform(-room, room)
    low, high = centre - width / 2, centre + width / 2
    x = np.asarray(offsets_mm, dtype=float)[:, None]
    slab = max(thickness_mm, 1e-6) / 2
    inside = np.clip(np.minimum(high, x + slab) - np.maximum(low, x - slab), 0.0, None)
    overlap = np.minimum(1.0, inside / np.minimum(2 * slab, high - low))
    return max(float((overlap >= 0.5).mean()), 1e-3)
