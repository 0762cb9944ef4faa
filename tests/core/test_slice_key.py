"""A slice's name: a NamedTuple that the study hands out, and the query of the slices a new model refreshes
(a study query, asked without loading the training code)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from core.annotations.model import Box, SliceAnnotation, Vertebra
from core.study.annotation_source import BEST, annotation_from, unreviewed_slices
from core.study.layout import Study
from core.study.slice_key import SliceKey, slice_key


@pytest.fixture()
def study(tmp_path) -> Study:
    study = Study.create(tmp_path / "study")
    for case in ("case-0001", "case-0002"):
        folder = study.root / "images" / case
        folder.mkdir(parents=True)
        for number in (1, 2):
            Image.fromarray(np.zeros((60, 90), np.uint8)).save(folder / f"s{number:03d}.png")
    return study


def one_box(reviewed: bool) -> SliceAnnotation:
    return SliceAnnotation(90, 60, (Vertebra(Box(0, 0, 40, 20)),), reviewed=reviewed)


def test_the_study_names_its_slices_with_case_and_slice_id(study):
    keys = study.all_slices()
    assert all(type(key) is SliceKey for key in keys)
    assert [(key.case, key.slice_id) for key in keys] == [("case-0001", "s001"), ("case-0001", "s002"),
                                                         ("case-0002", "s001"), ("case-0002", "s002")]
    assert keys[1].text == "case-0001/s002"
    assert keys[1] == ("case-0001", "s002") and {keys[1]: 1}[("case-0001", "s002")] == 1  # still a tuple
    assert slice_key(("case-0002", "s001")) == keys[2] and slice_key(keys[2]) is keys[2]


def test_unreviewed_slices_are_those_without_a_consensus_or_a_reviewed_reading(study):
    study.save_annotation(one_box(reviewed=True), "case-0001", "s001", reader="r1")
    study.save_annotation(one_box(reviewed=False), "case-0001", "s002", reader="r2")  # read, not reviewed
    study.save_annotation(one_box(reviewed=False), "case-0002", "s001")  # the consensus
    broken = study.reader_path("r1", "case-0002", "s002")
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("{not json")
    assert unreviewed_slices(study) == [("case-0001", "s002"), ("case-0002", "s002")]
    assert annotation_from(study, "case-0001", "s002", BEST) is None
    assert annotation_from(study, "case-0001", "s002", "r2") is not None


def test_the_query_loads_no_training_code():
    code = ("import sys; from core.study.annotation_source import unreviewed_slices; "
            "print(sorted(m for m in ('torch', 'core.training.retrain') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
