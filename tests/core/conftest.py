"""Fixtures of the core tests: a small study to review (``study``: one case of two grey PNG slices, 90x60) and the
per-user folders of the app (``dirs``), with the helpers that build such a study and a model's result on it (the
review session's and the review saves' tests share them). A test file's own fixture of the same name wins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.review.preferences import AppDirs
from core.study.layout import Study

KEY = ("case-0001", "s001")
KEY2 = ("case-0001", "s002")


def make_study(root: Path, slices: int = 2, size: tuple[int, int] = (90, 60)) -> Study:
    study = Study.create(root)
    folder = study.root / "images" / "case-0001"
    folder.mkdir(parents=True)
    for number in range(1, slices + 1):
        Image.fromarray(np.full((size[1], size[0]), 40 * number, dtype=np.uint8)).save(folder / f"s{number:03d}.png")
    return study


def model_prediction(study: Study, key=KEY, model_id="m1") -> SliceAnnotation:
    vertebrae = (
        Vertebra(Box(5, 5, 40, 25), frozenset({Disease.OVCF}), {"OVCF": 0.91, "NORMAL": 0.05}, 0.97, "L1"),
        Vertebra(Box(5, 30, 40, 50), frozenset(), {"OVCF": 0.45, "NORMAL": 0.5}, 0.95, "L2"),
    )
    annotation = SliceAnnotation(90, 60, vertebrae, model=model_id)
    study.save_annotation(annotation, *key, model=model_id)
    return annotation


@pytest.fixture()
def dirs(tmp_path) -> AppDirs:
    base = tmp_path / "config"
    return AppDirs(base, base / "state", base / "data")


@pytest.fixture()
def study(tmp_path) -> Study:
    return make_study(tmp_path / "study")
