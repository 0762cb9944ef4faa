"""Helpers for the consensus tests (no tests here): small hand-made studies and phantom studies.

A hand-made study has ``cases`` x ``slices`` grey PNG slices of ``SIZE`` and, per reader, a column of vertebra
boxes stacked top to bottom, so a test can copy one annotation to three readers and inject disagreements.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.imaging.png_io import write_png
from core.progress import run
from core.study.layout import Study
from core.synthetic.generate import SynthOptions, generate_study

SIZE = (200, 400)  # width, height
READERS = ("r1", "r2", "r3")
BOX_W, BOX_H, GAP, TOP, LEFT = 60.0, 40.0, 8.0, 10.0, 70.0
LEVELS = ("T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")


def vertebra(i: int, *diseases: Disease | str, source: str = "r1", dx: float = 0.0, dy: float = 0.0) -> Vertebra:
    """The i-th vertebra of the column (0 = top), moved by (dx, dy)."""
    y = TOP + i * (BOX_H + GAP) + dy
    return Vertebra(Box(LEFT + dx, y, LEFT + BOX_W + dx, y + BOX_H), frozenset(Disease(d) for d in diseases),
                    level=LEVELS[i], source=source)


def column(count: int = 6, diseases: dict[int, Iterable[str]] | None = None, source: str = "r1") -> list[Vertebra]:
    diseases = diseases or {}
    return [vertebra(i, *diseases.get(i, ()), source=source) for i in range(count)]


def annotation(vertebrae: Sequence[Vertebra], size: tuple[int, int] = SIZE, reader: str | None = None
               ) -> SliceAnnotation:
    return SliceAnnotation(size[0], size[1], tuple(vertebrae), reader=reader, reviewed=True)


def make_study(root: Path, cases: int = 2, slices: int = 2, readers: Sequence[str] = READERS,
               size: tuple[int, int] = SIZE) -> Study:
    """A study with blank slices and the readers registered (no annotations yet)."""
    study = Study.create(root, name="consensus test")
    study.settings.readers = list(readers)
    study.save_settings()
    pixels = np.zeros((size[1], size[0]), dtype=np.uint8)
    for c in range(1, cases + 1):
        for s in range(1, slices + 1):
            write_png(root / "images" / f"case-{c:04d}" / f"s{s:03d}.png", pixels)
    return study


def write_all(study: Study, vertebrae: Sequence[Vertebra], readers: Sequence[str] = READERS,
              size: tuple[int, int] = SIZE) -> None:
    """The same annotation for every reader on every slice (three identical copies)."""
    for case, slice_id in study.all_slices():
        for reader in readers:
            write(study, reader, case, slice_id, vertebrae, size)


def write(study: Study, reader: str, case: str, slice_id: str, vertebrae: Sequence[Vertebra],
          size: tuple[int, int] = SIZE) -> None:
    own = [v.with_changes(source=reader) for v in vertebrae]
    study.save_annotation(annotation(own, size), case, slice_id, reader=reader)


def edit(study: Study, reader: str, case: str, slice_id: str, change) -> None:
    """Rewrite a reader's file with ``change(list_of_vertebrae)`` applied."""
    current = study.load_annotation(case, slice_id, reader=reader)
    vertebrae = list(current.vertebrae)
    change(vertebrae)
    study.save_annotation(current.with_changes(vertebrae=tuple(vertebrae)), case, slice_id, reader=reader)


def phantom_study(root: Path, *, cases: int = 2, slices: int = 2, seed: int = 1, disagreement: float = 0.08,
                  keep_consensus: bool = False, prevalence: dict | None = None) -> Study:
    """A phantom study with three simulated readers; its truth consensus is removed unless asked for."""
    options = SynthOptions(cases=cases, seed=seed, slices_per_case=slices, readers=3, disagreement=disagreement,
                           **({"prevalence": {Disease(k): v for k, v in prevalence.items()}} if prevalence else {}))
    run(generate_study(root, options))
    if not keep_consensus:
        shutil.rmtree(root / "consensus")
        (root / "consensus").mkdir()
    return Study.open(root)


class FixedClock:
    """A clock for provenance tests: each call is one minute after the last."""

    def __init__(self, start: datetime = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        from datetime import timedelta

        self.now = self.now + timedelta(minutes=1)
        return self.now
