"""The classification benchmark (``tests/benchmarks/eval_diagnosis.py``) at its smallest: the bundled models on a
two-slice phantom study of site B, on the annotated boxes and end to end, and with ``--boxes-only`` and
``--sn-only``."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.progress import run
from core.synthetic.generate import SynthOptions, generate_study
from core.training.classification_data import box_samples
from core.training.datasets import study_records
from tests.bundled_models import BUNDLED_SET

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "benchmarks" / "eval_diagnosis.py"
pytestmark = pytest.mark.slow  # about a minute: four runs of the script, each loading the models


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaldiag") / "siteB"
    run(generate_study(root, SynthOptions(cases=2, seed=9, slices_per_case=1, readers=0, site="B")))
    return root


def _load_script():
    spec = importlib.util.spec_from_file_location("eval_diagnosis", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate(study: Path, out: Path, *options: str) -> tuple[str, dict]:
    done = subprocess.run([sys.executable, str(SCRIPT), str(BUNDLED_SET), str(study), "--out", str(out), *options],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    name = "summary-sn.json" if "--sn-only" in options else "summary.json"
    return done.stdout, json.loads((out / name).read_text())[study.name]


def test_on_the_annotated_boxes_and_end_to_end(study, tmp_path):
    boxes = len(box_samples(study_records(study)[0]))
    assert boxes >= 10
    printed, figures = evaluate(study, tmp_path / "all")
    assert f"{study.name}, classifier on the annotated boxes: {boxes} boxes" in printed
    assert set(figures) == {"on_annotated_boxes", "end_to_end"}
    on_boxes, end_to_end = figures["on_annotated_boxes"], figures["end_to_end"]
    assert on_boxes["boxes"] == boxes
    assert end_to_end["boxes"] + end_to_end["missed_vertebrae"] == boxes  # every annotated box paired or missed
    assert on_boxes["per_class"]["NORMAL"]["positives"] > 0
    for metrics in (on_boxes, end_to_end):
        assert "roc" not in metrics["per_class"]["OVCF"]  # curves stay out of the summary
        for m in metrics["per_class"].values():
            assert m["specificity"] is None or 0.0 <= m["specificity"] <= 1.0
    assert (tmp_path / "all" / f"{study.name}-report" / "report.html").is_file()


def test_boxes_only_leaves_out_the_end_to_end_part(study, tmp_path):
    printed, figures = evaluate(study, tmp_path / "boxes", "--boxes-only")
    assert list(figures) == ["on_annotated_boxes"] and "end to end" not in printed
    assert not (tmp_path / "boxes" / study.name).exists()  # no diagnose run, no predictions written
    _, sn = evaluate(study, tmp_path / "sn", "--sn-only", "--boxes-only")
    assert list(sn) == ["on_annotated_boxes"]


def test_a_blurred_probe_of_the_first_case_on_its_boxes_only(study, tmp_path):
    records = study_records(study)[0]
    first = sorted({r.case for r in records})[0]
    boxes = len(box_samples([r for r in records if r.case == first]))
    assert 0 < boxes < len(box_samples(records))
    _, plain = evaluate(study, tmp_path / "plain", "--cases", "1", "--boxes-only")
    printed, blurred = evaluate(study, tmp_path / "blur", "--cases", "1", "--blur", "2")
    assert list(blurred) == ["on_annotated_boxes"] and "end to end" not in printed  # --blur implies --boxes-only
    assert plain["on_annotated_boxes"]["boxes"] == blurred["on_annotated_boxes"]["boxes"] == boxes
    script = _load_script()
    record = next(r for r in records if r.case == first)
    sharp = script.BlurredSlices("min-max", 0.0).image(record)
    soft = script.BlurredSlices("min-max", 2.0).image(record)
    assert soft.dtype == np.uint8 and soft.shape == sharp.shape
    def detail(image: np.ndarray) -> float:
        return float(np.abs(np.diff(image.astype(float), axis=1)).mean())

    assert detail(soft) < 0.8 * detail(sharp)
    refused = subprocess.run([sys.executable, str(SCRIPT), str(BUNDLED_SET), str(study), "--blur", "-1"],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
    assert refused.returncode == 2 and "--blur must be 0 or more" in refused.stderr
