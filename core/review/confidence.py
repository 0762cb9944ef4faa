"""Which of the model's boxes a reader should look at twice: the "?" on a box's label, its dotted halo, and the case
list's "Low confidence" filter. One rule, stated here:

- A model box is **unsure** when one of its disease calls was a close one, either way: the classifier's probability
  for a disease within a factor of 2 in odds (:data:`CLOSE_CALL`) of the odds at that disease's decision threshold,
  whether the disease was called or not. At a threshold of 0.5 that is a probability from 0.33 to 0.67; at 0.26
  (demo-v3's OVCF) from 0.15 to 0.41. The thresholds are the ones the model called with, written with its result
  (:attr:`~core.annotations.model.SliceAnnotation.thresholds`); a result written without them (before they were) is
  judged against 0.5. A box is unsure too when its detector score is below :data:`UNSURE_SCORE`, 0.80, within 0.05
  of the 0.75 at which a detection counts (:data:`~core.annotations.geometry.DETECTION_THRESHOLD`), and when it
  calls a disease on a body that reaches the edge of the image (within :data:`EDGE_PX` pixels): the body may be cut
  off, and a body cut off looks compressed. A reader's box is never unsure: it carries no confidence, and a model box
  the reader has changed is the reader's.
- A slice is **low confidence** while the model's result on it has an unsure box and the reader has not finished
  the slice (marked it reviewed, or the readers' consensus exists). Once reviewed, the mark leaves the case list and
  the boxes.

Why relative to each threshold: the rule before this one called a box unsure when the probability behind its label
was under 0.55. That suited classifiers whose thresholds sat near 0.5, but demo-v3's classifier calls OVCF from
0.26, and the old rule then marked every OVCF call under 0.55, most of them calls the reader agreed with. Measured
with ``tests/benchmarks/eval_confidence.py`` (phantom figures, not patients; demo-v3's results):

- on the held-out site B study (150 cases, 600 slices, seed 32) the two rules mark about as much (60% and 59% of
  the slices, a disease-rich study: 8.1% and 8.7% of the boxes), but 37% of the boxes this rule marks carry a label
  that differs from the reference, against 21% with the old one; it marks 74% of the wrong labels (the old: 46%), and
  1.1% of the boxes it leaves unmarked are wrong;
- at site A (150 cases, seed 31): 39% of the slices either way; 29% wrong among the marked (old: 14%), 65% of the
  wrong labels marked (old: 35%);
- on the bundled demo study (``resources/demo``, site A, 6 cases) it marked 15 boxes on 11 of the 60 slices with
  demo-v3 (the old: 32 on 25). With ``demo-v5`` (demo-v4's models, whose classifier is less sure of itself on the
  analytic phantom, its detector looking at four views), it marked 56 boxes on 42 of the 60 slices (the old rule: 127
  on 47); against reader r1, 21% of the marked boxes that hit one of r1's differ from r1's label, against 3.7% of the
  others. At site B it marked 74% of demo-v5's wrong labels (the old rule 63%), and 1.8% of the boxes it left
  unmarked were wrong. With ``demo-v6`` (demo-v5's models, its classifier smoothing each slice) it marked 56 boxes on
  40 of the 60 slices; with ``demo-v7``, bundled now (demo-v6 with each slice resampled to 0.6 mm pixels for the
  classifier), 69 boxes on 49.

Why the edge: on the three real CT volumes (``tests/benchmarks/eval_real.py``), three of demo-v5's four disease
calls on unfractured bodies were on bodies cut by the scan's edge (the lowest body of the chest CT, and the L3
cut-out, a slice 73 pixels wide); so were 10 of the 21 that demo-v3's classifier made with demo-v4's detector.

A factor of 1.5 marks about half as much and misses more of the wrong labels (53% and 36% marked); a factor of 3
marks 82% of the site B slices. ``tests/core/test_review_confidence.py`` holds the demo-v7 figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from core.annotations.model import DISEASES, MODEL_SOURCE, NORMAL, SliceAnnotation, Vertebra

#: A call is close when its probability's odds lie within this factor of the odds at its threshold.
CLOSE_CALL = 2.0
UNSURE_SCORE = 0.80
#: The threshold of a result written without its own (an older file): the classifier's default.
DEFAULT_THRESHOLD = 0.5
#: A box this close to the image's edge (pixels) may hold a body cut off by it.
EDGE_PX = 2.0


@dataclass(frozen=True)
class ModelCall:
    """What the rule needs to know of the model's result beyond its boxes: the thresholds it called with (None: a
    result written before they were recorded) and the size of the image it ran on, (width, height)."""

    thresholds: Mapping[str, float] | None = None
    image_size: tuple[int, int] | None = None

    @classmethod
    def of(cls, result: SliceAnnotation | None) -> ModelCall | None:
        return None if result is None else cls(result.thresholds, (result.image_width, result.image_height))


def call_probability(vertebra: Vertebra) -> float | None:
    """The probability behind the label: the surest of its diseases, or NORMAL's; None without probabilities."""
    if not vertebra.probabilities:
        return None
    codes = [d.value for d in vertebra.diseases] or [NORMAL]
    found = [vertebra.probabilities[c] for c in codes if c in vertebra.probabilities]
    return max(found) if found else None


def _log_odds(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def close_calls(vertebra: Vertebra, thresholds: Mapping[str, float] | None = None, *,
                factor: float = CLOSE_CALL) -> list[str]:
    """The diseases whose call on this box went either way by a little: their probability's odds within ``factor``
    (:data:`CLOSE_CALL`, 2) of the odds at their threshold, whether called or not."""
    if not vertebra.probabilities:
        return []
    thresholds = thresholds or {}
    close = []
    for code in (d.value for d in DISEASES if d.value in vertebra.probabilities):
        gap = _log_odds(vertebra.probabilities[code]) - _log_odds(thresholds.get(code, DEFAULT_THRESHOLD))
        if abs(gap) < math.log(factor):
            close.append(code)
    return close


def at_edge(vertebra: Vertebra, image_size: tuple[int, int] | None) -> bool:
    """Whether the box reaches the edge of a ``image_size`` (width, height) image, within :data:`EDGE_PX`; False
    where the size is unknown."""
    if image_size is None:
        return False
    width, height = image_size
    box = vertebra.box
    return min(box.x1, box.y1, width - box.x2, height - box.y2) <= EDGE_PX


def low_score(vertebra: Vertebra) -> bool:
    """Whether a box of the model's has a detector score under :data:`UNSURE_SCORE`."""
    return vertebra.source == MODEL_SOURCE and vertebra.score is not None and vertebra.score < UNSURE_SCORE


def cut_call(vertebra: Vertebra, image_size: tuple[int, int] | None) -> bool:
    """Whether a box of the model's calls a disease on a body at the image's edge (:func:`at_edge`)."""
    return vertebra.source == MODEL_SOURCE and bool(vertebra.diseases) and at_edge(vertebra, image_size)


def is_low_confidence(vertebra: Vertebra, thresholds: Mapping[str, float] | None = None, *,
                      factor: float = CLOSE_CALL, image_size: tuple[int, int] | None = None) -> bool:
    """Whether a box of the model's is unsure (see the module's rule); a reader's box never is. ``thresholds``: those
    of the result the box came from (:attr:`~core.annotations.model.SliceAnnotation.thresholds`); ``factor``: see
    :func:`close_calls`; ``image_size``: (width, height) of that result's image (None: the edge is not judged)."""
    if vertebra.source != MODEL_SOURCE:
        return False
    return low_score(vertebra) or cut_call(vertebra, image_size) or bool(close_calls(vertebra, thresholds,
                                                                                      factor=factor))


def is_unsure(vertebra: Vertebra, call: ModelCall | None) -> bool:
    """:func:`is_low_confidence` with what the model's result says (None: judged against 0.5, the edge not)."""
    call = call or ModelCall()
    return is_low_confidence(vertebra, call.thresholds, image_size=call.image_size)
