"""When the model found nothing, or clearly too few vertebrae, on a slice: the rule, and what the reader is told.

A model result on a slice falls short in one of three ways, judged in this order:

1. **none:** the model ran on the slice and returned no box.
2. **fewer than the case:** the model found at most half as many boxes as the median of its counts on the case's
   other slices, where it ran on at least :data:`MIN_OTHER_SLICES` of them and that median is at least
   :data:`MIN_CASE_MEDIAN`. Neighbouring sagittal slices through one spine show about the same vertebrae, so a slice
   with half of them is a slice where the model lost its way, not one with half a spine.
3. **fewer than the slice's height:** the slice's height in mm is known (its pixel spacing), it has room for at
   least :data:`MIN_ROOM` vertebrae at one per :data:`MM_PER_VERTEBRA` mm (a lumbar body with its disc is about
   35-40 mm tall; thoracic and cervical ones are shorter, so this undercounts), at most
   :data:`PRESACRAL_VERTEBRAE`, and the model found at most half of that. This catches a model that fails on every
   slice of a case alike (a demo model on real CT), which rule 2 cannot see. It assumes a slice through the spine
   over its full height, as a sagittal CT of the trunk is; in a taller field of view around a shorter spine it can
   fire wrongly, so what the reader is told says "usually".

The thresholds are chosen so that a model that finds the vertebrae never trips them: on the bundled demo study the
demo model finds 8-14 boxes per slice, at least twice each threshold (median 8-14 per case, room 4-8 per slice).
On a real chest CT (not bundled), imported as 15 sagittal slices 333 mm tall (room 8), the same model finds 1-5
boxes, and rule 3 names 13 of the 15 slices. Only the model's box count, the other slices' counts and the slice's
height are used; no image is analysed (a bone threshold does not separate vertebrae from contrast-filled heart and
vessels, which reach the same HU).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

#: Rule 2 needs the model's counts on at least this many other slices of the case, with at least this median.
MIN_OTHER_SLICES = 2
MIN_CASE_MEDIAN = 4
#: Rule 3: one vertebra per this many mm of slice height, at most the 24 presacral vertebrae, from 4 up.
MM_PER_VERTEBRA = 40.0
PRESACRAL_VERTEBRAE = 24
MIN_ROOM = 4
DEMO_HINT = "Demo models trained on synthetic phantoms often miss vertebrae on real CT."


class ShortfallKind(StrEnum):
    NONE = "none"
    FEWER_THAN_CASE = "fewer than the case"
    FEWER_THAN_HEIGHT = "fewer than the height"


def _vertebrae(count: int) -> str:
    return f"{count} vertebra" if count == 1 else f"{count} vertebrae"


@dataclass(frozen=True)
class ModelShortfall:
    """``expected``: the median of the case's other slices (rule 2) or the slice's room (rule 3)."""

    kind: ShortfallKind
    found: int = 0
    expected: int = 0
    height_mm: float | None = None

    def message(self, *, demo: bool = False) -> str:
        """What the reader is told over the image; ``demo`` adds why a demo model misses vertebrae."""
        if self.kind is ShortfallKind.NONE:
            text = "The model found no vertebrae on this slice."
        elif self.kind is ShortfallKind.FEWER_THAN_CASE:
            text = (f"The model found only {_vertebrae(self.found)} here, fewer than on the other slices of this "
                    f"case (typically {self.expected}).")
        else:
            text = (f"The model found only {_vertebrae(self.found)} here; a slice through the spine "
                    f"{self.height_mm:.0f} mm tall usually shows {self.expected} or more.")
        return f"{text} {DEMO_HINT}" if demo else text


def room_for(height_mm: float | None) -> int:
    """How many vertebrae a slice this tall has room for (rule 3); 0 when the height is not known."""
    if height_mm is None or not math.isfinite(height_mm) or height_mm <= 0:
        return 0
    return min(PRESACRAL_VERTEBRAE, int(height_mm // MM_PER_VERTEBRA))


def height_matters(found: int | None) -> bool:
    """Whether rule 3 could name a result of ``found`` boxes (so the slice's height is worth reading)."""
    return found is not None and 0 < found <= PRESACRAL_VERTEBRAE // 2


def judge(found: int | None, *, others: Sequence[int] = (), height_mm: float | None = None) -> ModelShortfall | None:
    """The shortfall of a model result of ``found`` boxes (None: the model has not run on the slice), given the
    model's counts on the case's other slices and the slice's height in mm; None when the result looks complete."""
    if found is None:
        return None
    if found == 0:
        return ModelShortfall(ShortfallKind.NONE)
    if len(others) >= MIN_OTHER_SLICES:
        median = statistics.median(others)
        if median >= MIN_CASE_MEDIAN and found <= median / 2:
            return ModelShortfall(ShortfallKind.FEWER_THAN_CASE, found, round(median))
    room = room_for(height_mm)
    if room >= MIN_ROOM and found <= room / 2:
        return ModelShortfall(ShortfallKind.FEWER_THAN_HEIGHT, found, room, height_mm)
    return None
