"""Which of the model's boxes a reader should look at twice: the "?" on a box's label, its dotted halo, and the case
list's "Low confidence" filter. One rule, stated here:

- A model box is **unsure** when the probability behind its label (the number on its label chip: the surest of its
  called diseases, or NORMAL's for a normal box) is below :data:`UNSURE_CALL`, 0.55, little better than a coin
  toss; or when its detector score is below :data:`UNSURE_SCORE`, 0.80, within 0.05 of the 0.75 at which a detection
  counts (:data:`~core.annotations.geometry.DETECTION_THRESHOLD`). A reader's box is never unsure: it carries no
  confidence, and a model box the reader has changed is the reader's.
- A slice is **low confidence** while the model's result on it has an unsure box and the reader has not finished
  the slice (marked it reviewed, or the readers' consensus exists). Once reviewed, the mark leaves the case list and
  the boxes.

Measured on the bundled demo study (``resources/demo``: phantom site A, 6 cases, none reviewed by the reader who
opens it). With the first demo models (``demo-v1``, 600 boxes on 60 slices), 16 boxes were unsure, on 16 of the 60
slices (27%); the rule before this one (any of the six probabilities between 0.3 and 0.7, or a score below 0.9)
marked 122 boxes on 51 slices, so its filter filtered nothing: with about ten boxes a slice, a box rule has to be rare
on boxes to mark a minority of slices. With ``demo-v2`` (the same classifier, a detector fine-tuned on the anatomy
phantom: 598 boxes), 7 boxes were unsure, on 6 of the 60 slices (10%). With ``demo-v3`` (594 boxes), 32 are unsure,
on 25 slices (42%), all of them OVCF calls with a probability under 0.55: its classifier, fine-tuned with the
photometric jitter, calls OVCF from 0.26 (the threshold its validation chose), and 27 of the 31 of these boxes that
reader r1 also boxed are OVCF in r1's reading too. The filter then marks more than it should; a rule relative to each
class's threshold would be the fix. ``tests/core/test_review_confidence.py`` holds the measurement.
"""

from __future__ import annotations

from core.annotations.model import MODEL_SOURCE, NORMAL, Vertebra

UNSURE_CALL = 0.55
UNSURE_SCORE = 0.80


def call_probability(vertebra: Vertebra) -> float | None:
    """The probability behind the label: the surest of its diseases, or NORMAL's; None without probabilities."""
    if not vertebra.probabilities:
        return None
    codes = [d.value for d in vertebra.diseases] or [NORMAL]
    found = [vertebra.probabilities[c] for c in codes if c in vertebra.probabilities]
    return max(found) if found else None


def is_low_confidence(vertebra: Vertebra) -> bool:
    """Whether a box of the model's is unsure (see the module's rule); a reader's box never is."""
    if vertebra.source != MODEL_SOURCE:
        return False
    if vertebra.score is not None and vertebra.score < UNSURE_SCORE:
        return True
    probability = call_probability(vertebra)
    return probability is not None and probability < UNSURE_CALL
