"""Three simulated readers who annotate the phantom's slices from the truth, with realistic disagreement.

Each reader keeps one opinion per vertebra across the slices of a case (a reader who calls L2 an old fracture does
so on every slice), makes the mistakes readers make (a subtle Schmorl's node missed, an acute fracture taken for an
old one and the other way round, a Kummell cleft overlooked, a normal vertebra over-called), now and then leaves a
vertebra out, and draws boxes a little differently.

``disagreement`` is the fraction of truth boxes on which the readers are not unanimous, which is what a consistency
check flags. Each reader errs on about ``1 - (1 - disagreement) ** (1/3)`` of the boxes, harder vertebrae more often.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from core.annotations.model import Disease
from core.synthetic.diseases import systematic_sample
from core.synthetic.render import TruthBox

OVCF, OF, SN, KD, PS = Disease.OVCF, Disease.OF, Disease.SN, Disease.KD, Disease.PS
OMISSION_SHARE = 0.15  # of each reader's errors, the share that are a vertebra left out on one slice
BOX_JITTER = 0.012  # standard deviation of each box edge, as a fraction of the box size

Call = Callable[[frozenset[Disease]], frozenset[Disease]]


def _swap(a: Disease, b: Disease) -> Call:
    return lambda ds: (ds - {a}) | {b} if a in ds else ds


def _drop(*diseases: Disease) -> Call:
    return lambda ds: ds - set(diseases)


def _add(d: Disease) -> Call:
    return lambda ds: ds | {d}


#: Mistakes per kind of vertebra: (name, weight, what the reader calls instead of the visible diseases).
MISTAKES: dict[str, tuple[tuple[str, float, Call], ...]] = {
    "normal": (("false SN", 0.5, _add(SN)), ("false OF", 0.3, _add(OF)), ("false OVCF", 0.2, _add(OVCF))),
    "SN": (("SN missed", 1.0, _drop(SN)),),
    "KD": (("KD missed", 0.7, _drop(KD)), ("fracture missed", 0.3, _drop(KD, OVCF))),
    "OF": (("OF taken for OVCF", 0.6, _swap(OF, OVCF)), ("OF missed", 0.4, _drop(OF))),
    "OVCF": (("OVCF taken for OF", 0.6, _swap(OVCF, OF)), ("OVCF missed", 0.4, _drop(OVCF))),
    "PS": (("OF beside cement missed", 0.8, _drop(OF)), ("cement missed", 0.2, _drop(PS))),
}
#: How much more often each kind of vertebra is misread than a normal one.
DIFFICULTY = {"normal": 1.0, "SN": 10.0, "KD": 4.0, "OF": 4.0, "OVCF": 3.0, "PS": 0.8}


def kind_of(diseases: frozenset[Disease]) -> str:
    """The reading difficulty class of a vertebra from its full disease set."""
    for disease, kind in ((SN, "SN"), (KD, "KD"), (PS, "PS"), (OF, "OF"), (OVCF, "OVCF")):
        if disease in diseases:
            return kind
    return "normal"


@dataclass(frozen=True)
class VertebraTruth:
    """One vertebra of a case: its full diseases and its truth box on each slice that shows it."""

    key: tuple[int, str]  # (case, level)
    diseases: frozenset[Disease]
    boxes: tuple[tuple[int, TruthBox], ...]  # (slice number, box)


@dataclass(frozen=True)
class ReaderCall:
    """What one reader wrote for one truth box: None when left out."""

    box: tuple[float, float, float, float] | None
    diseases: frozenset[Disease]


def reader_error_rate(disagreement: float, readers: int) -> float:
    return 1.0 - (1.0 - disagreement) ** (1.0 / max(readers, 1))


def _call_chances(vertebra: VertebraTruth) -> list[list[tuple[frozenset[Disease], float]]]:
    """For each box of ``vertebra``: the calls a reader who misreads it makes, with their chances."""
    mistakes = MISTAKES[kind_of(vertebra.diseases)]
    total = sum(w for _, w, _ in mistakes)
    per_box = []
    for _, truth in vertebra.boxes:
        calls: dict[frozenset[Disease], float] = {}
        for _, weight, mistake in mistakes:
            call = frozenset(mistake(truth.diseases))
            calls[call] = calls.get(call, 0.0) + weight / total
        per_box.append(list(calls.items()))
    return per_box


def _scale_for(vertebrae: Sequence[VertebraTruth], disagreement: float, omission: float, readers: int) -> float:
    """The factor on DIFFICULTY that gives the requested disagreement in expectation (bisection).

    A reader misreads a vertebra with chance ``w = scale x difficulty`` and leaves a box out with chance
    ``omission``; independent readers are unanimous on a box when all leave it out or all make the same call,
    so identical mistakes count as agreement.
    """
    difficulty, keep, wrong_calls = [], [], []
    for vertebra in vertebrae:
        for (_, truth), calls in zip(vertebra.boxes, _call_chances(vertebra), strict=True):
            difficulty.append(DIFFICULTY[kind_of(vertebra.diseases)])
            keep.append(sum(share for call, share in calls if call == truth.diseases))
            wrong_calls.append([share for call, share in calls if call != truth.diseases][:3])
    d, s0 = np.array(difficulty), np.array(keep)
    sc = np.zeros((len(wrong_calls), 3))
    for row, shares in enumerate(wrong_calls):
        sc[row, : len(shares)] = shares
    r, o = readers, omission

    def expected(scale: float) -> float:
        w = np.minimum(0.95, scale * d)
        same = (1 - w + w * s0) ** r + ((w[:, None] * sc) ** r).sum(axis=1)
        return float(np.mean(1.0 - o**r - (1 - o) ** r * same)) if len(d) else 0.0

    low, high = 0.0, 50.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if expected(middle) < disagreement else (low, middle)
    return (low + high) / 2


def simulate_readers(
    vertebrae: Sequence[VertebraTruth],
    readers: int,
    disagreement: float,
    rng: np.random.Generator,
    image_size: dict[int, tuple[int, int]],
) -> list[dict[tuple[int, str, int], ReaderCall]]:
    """For each reader: (case, level, slice) → the reader's call on that truth box."""
    omission = OMISSION_SHARE * reader_error_rate(disagreement, readers)
    scale = _scale_for(vertebrae, disagreement, omission, readers) if disagreement > 0 else 0.0
    kinds = [kind_of(v.diseases) for v in vertebrae]
    chances = np.array([min(0.95, scale * DIFFICULTY[kind]) for kind in kinds])
    result = []
    for _ in range(readers):
        size_bias = rng.normal(1.0, 0.02)
        calls: dict[tuple[int, str, int], ReaderCall] = {}
        errs = systematic_sample(chances, rng)
        for vertebra, kind, err in zip(vertebrae, kinds, errs, strict=True):
            mistake = None
            if err:
                options = MISTAKES[kind]
                weights = np.array([w for _, w, _ in options])
                mistake = options[int(rng.choice(len(options), p=weights / weights.sum()))][2]
            case = vertebra.key[0]
            for number, truth in vertebra.boxes:
                if rng.random() < omission:
                    calls[(case, vertebra.key[1], number)] = ReaderCall(None, frozenset())
                    continue
                diseases = mistake(truth.diseases) if mistake else truth.diseases
                box = _jitter(truth.box, size_bias, rng.normal(0.0, BOX_JITTER, 4), image_size[case])
                calls[(case, vertebra.key[1], number)] = ReaderCall(box, frozenset(diseases))
        result.append(calls)
    return result


def _jitter(
    box: tuple[float, float, float, float], bias: float, edges: np.ndarray, size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """``box`` scaled by the reader's ``bias`` about its centre, each edge moved by ``edges`` (fractions of the size),
    kept inside the image and at least a pixel wide."""
    x1, y1, x2, y2 = box
    w, h = (x2 - x1) * bias, (y2 - y1) * bias
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    e1, e2, e3, e4 = (float(e) for e in edges)
    width, height = size
    nx1 = min(max(cx - w / 2 + e1 * w, 0.0), width - 1.0)
    ny1 = min(max(cy - h / 2 + e2 * h, 0.0), height - 1.0)
    nx2 = min(max(cx + w / 2 + e3 * w, nx1 + 1.0), float(width))
    ny2 = min(max(cy + h / 2 + e4 * h, ny1 + 1.0), float(height))
    return round(nx1, 2), round(ny1, 2), round(nx2, 2), round(ny2, 2)


def measured_disagreement(calls: Sequence[dict[tuple[int, str, int], ReaderCall]]) -> float:
    """The share of truth boxes on which the readers are not unanimous (presence and disease set)."""
    keys = calls[0].keys()
    split = sum(len({(c[k].box is None, c[k].diseases) for c in calls}) > 1 for k in keys)
    return split / max(len(keys), 1)
