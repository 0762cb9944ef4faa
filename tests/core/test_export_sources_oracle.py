"""labelme itself opens what Export for labelme writes from each source: the consensus and a model's predictions, as
the reader's own (the oracle and its helpers are those of ``test_labelme_oracle``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.progress import run
from core.review.export import ExportSource, export_review
from core.study.layout import Study
from tests.core import test_labelme_oracle as oracle
from tests.core.test_labelme_oracle import (
    HEIGHT,
    WIDTH,
    Labelme,
    assert_opened,
    assert_same_vertebra,
    make_study,
    sample_annotation,
)

pytestmark = [pytest.mark.oracle, pytest.mark.slow]
labelme_probes, each_labelme = oracle.labelme_probes, oracle.labelme  # the oracle's fixtures, for this module


def test_consensus_and_model_exports_open_in_labelme(each_labelme: Labelme, tmp_path: Path) -> None:
    labelme = each_labelme
    make_study(tmp_path / "study")
    study = Study.open(tmp_path / "study")
    consensus = sample_annotation().with_changes(reader=None, model=None)
    study.save_annotation(consensus, "case-0001", "s002")
    model = SliceAnnotation(WIDTH, HEIGHT, (Vertebra(Box(10, 2, 40, 14.5), {Disease.OVCF}, {"OVCF": 0.8}, 0.9, "L1",
                                                     source="model"),), model="m-v1")
    study.save_annotation(model, "case-0001", "s001", model="m-v1")
    expected = {}
    for source, annotation in ((ExportSource.consensus(), consensus), (ExportSource.model("m-v1"), model)):
        out = tmp_path / source.kind
        report = run(export_review(study, out, source))
        assert (report.images, report.annotations, report.errors) == (3, 1, [])
        expected.update({path: annotation for path in out.rglob("*.json")})
    files = sorted(expected)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["consensus/case-0001/s002.json",
                                                                  "model/case-0001/s001.json"]
    for path, result in zip(files, labelme.load(files), strict=True):
        written = json.loads(path.read_text(encoding="utf-8"))
        assert_opened(result, labelme.version, (written["imageWidth"], written["imageHeight"]))
        assert [s["label"] for s in result["shapes"]] == [v.label for v in expected[path].vertebrae]
        for shape, vertebra in zip(result["shapes"], expected[path].vertebrae, strict=True):
            assert_same_vertebra(shape, vertebra)
