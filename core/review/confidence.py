"""Which of the model's boxes a reader should look at twice: the "?" on a box's label, its dotted halo, and the case
list's "Low confidence" filter. One rule, stated here:

- A model box is **unsure** when one of its disease calls was a close one, either way: the classifier's probability
  for a disease within a factor of 2 in odds (:data:`CLOSE_CALL`) of the odds at that disease's decision threshold,
  whether the disease was called or not. At a threshold of 0.5 that is a probability from 0.33 to 0.67; at 0.26
  (demo-v3's OVCF) from 0.15 to 0.41. The thresholds are the ones the model called with, written with its result
  (:attr:`~core.annotations.model.SliceAnnotation.thresholds`); a result written without them (before they were) is
  judged against 0.5. A box is unsure too when its detector score is below :data:`UNSURE_SCORE`, 0.80, within 0.05
  of the 0.75 at which a detection counts (:data:`~core.annotations.geometry.DETECTION_THRESHOLD`). A reader's box is
  never unsure: it carries no confidence, and a model box the reader has changed is the reader's.
- A slice is **low confidence** while the model's result on it has an unsure box and the reader has not finished
  the slice (marked it reviewed, or the readers' consensus exists). Once reviewed, the mark leaves the case list and
  the boxes.

Why relative to each threshold: the rule before this one called a box unsure when the probability behind its label
was under 0.55. That suited classifiers whose thresholds sat near 0.5, but demo-v3's classifier calls OVCF from
0.26, and the old rule then marked every OVCF call under 0.55: 32 boxes on 25 of the 60 slices of the bundled demo
study (``resources/demo``, phantom site A, 6 cases), most of them calls the reader agreed with. This rule marks 15
boxes on 11 of the 60 slices (18%). Of the 10 that match a box of the reference reading (the consensus, or reader r1
where there is none), 5 disagree with its label, against 27 of the 576 matched boxes it does not mark (4.7%). A
factor of 1.5 marked 4 boxes on 4 slices; a factor of 3, 50 boxes on 40 slices. These are phantom figures from one
small study.
``tests/core/test_review_confidence.py`` holds the measurement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from core.annotations.model import DISEASES, MODEL_SOURCE, NORMAL, Vertebra

#: A call is close when its probability's log-odds lie within this of its threshold's: odds within a factor of 2.
CLOSE_CALL = math.log(2.0)
UNSURE_SCORE = 0.80
#: The threshold of a result written without its own (an older file): the classifier's default.
DEFAULT_THRESHOLD = 0.5


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


def close_calls(vertebra: Vertebra, thresholds: Mapping[str, float] | None = None) -> list[str]:
    """The diseases whose call on this box went either way by a little: their probability's odds within a factor
    of 2 (:data:`CLOSE_CALL`) of the odds at their threshold, whether called or not."""
    if not vertebra.probabilities:
        return []
    thresholds = thresholds or {}
    close = []
    for code in (d.value for d in DISEASES if d.value in vertebra.probabilities):
        gap = _log_odds(vertebra.probabilities[code]) - _log_odds(thresholds.get(code, DEFAULT_THRESHOLD))
        if abs(gap) < CLOSE_CALL:
            close.append(code)
    return close


def is_low_confidence(vertebra: Vertebra, thresholds: Mapping[str, float] | None = None) -> bool:
    """Whether a box of the model's is unsure (see the module's rule); a reader's box never is. ``thresholds``: those
    of the result the box came from (:attr:`~core.annotations.model.SliceAnnotation.thresholds`)."""
    if vertebra.source != MODEL_SOURCE:
        return False
    if vertebra.score is not None and vertebra.score < UNSURE_SCORE:
        return True
    return bool(close_calls(vertebra, thresholds))
