"""A tiny three-reader study whose disagreements are known exactly, for the consensus mode tests.

Two cases of two 160x120 slices (from :func:`workspace_helpers.make_study`, no model). Every reader annotates every
slice; on ``case-0001/s001`` the top vertebra is unanimous (OVCF), the middle one a majority (r1 OF, r2 and r3
OVCF), the bottom one a conflict (r1 OF, r2 OVCF, r3 NORMAL); on ``case-0001/s002`` the bottom vertebra is missing
for r3 (r1 and r2 NORMAL: a majority); everything else is unanimous.
"""

from __future__ import annotations

from pathlib import Path

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.study.layout import Study
from tests.desktop.workspace_helpers import CASES, SLICES, H, W, make_study

READERS = ("r1", "r2", "r3")
TOP, MIDDLE, BOTTOM = Box(20, 8, 70, 36), Box(20, 44, 70, 72), Box(20, 80, 70, 108)
OVCF, OF = frozenset({Disease.OVCF}), frozenset({Disease.OF})
NORMAL: frozenset[Disease] = frozenset()
#: (case, slice) → reader → [(box, diseases) or None per vertebra, top to bottom]
LABELS = {
    (CASES[0], SLICES[0]): {"r1": [OVCF, OF, OF], "r2": [OVCF, OVCF, OVCF], "r3": [OVCF, OVCF, NORMAL]},
    (CASES[0], SLICES[1]): {"r1": [NORMAL, NORMAL, NORMAL], "r2": [NORMAL, NORMAL, NORMAL],
                            "r3": [NORMAL, NORMAL, None]},
    (CASES[1], SLICES[0]): {r: [NORMAL, OF, NORMAL] for r in READERS},
    (CASES[1], SLICES[1]): {r: [NORMAL, NORMAL, NORMAL] for r in READERS},
}
#: Each reader draws their boxes a little shifted (IoU stays above 0.6: the boxes agree).
SHIFT = {"r1": 0.0, "r2": 1.0, "r3": -1.0}
LEVELS = ("L1", "L2", "L3")


def make_consensus_study(root: Path, *, blinding: bool = True) -> Study:
    study = make_study(root, model=False, predictions=False)
    study.settings.readers = list(READERS)
    study.settings.blinding = blinding
    study.save_settings()
    for key, by_reader in LABELS.items():
        for reader, labels in by_reader.items():
            vertebrae = tuple(
                Vertebra(box.translated(SHIFT[reader], 0), diseases, level=level, source=reader)
                for box, diseases, level in zip((TOP, MIDDLE, BOTTOM), labels, LEVELS, strict=True)
                if diseases is not None)
            study.save_annotation(SliceAnnotation(W, H, vertebrae, reader=reader, reviewed=True), *key,
                                  reader=reader)
    return study
