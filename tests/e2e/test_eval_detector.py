"""The detector evaluation script (``tests/benchmarks/eval_detector.py``) at its smallest: the tiny detector on the
tiny study, one view against four."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # a process of its own that loads PyTorch and runs the detector twice on every slice


def test_eval_detector_compares_one_view_with_four(tiny_model_study, tmp_path):
    detector = tiny_model_study / "models" / "tiny-v1" / "detector"
    command = [sys.executable, str(REPO / "tests" / "benchmarks" / "eval_detector.py"), str(detector),
               str(tiny_model_study), "--variants", "2,3", "--out", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [row["variant"] for row in rows] == ["100 proposals, auto precision",
                                                "100 proposals, auto precision, 4 views"]
    one, four = rows
    assert one["slices"] == four["slices"] == 6  # every slice of the study, paired with its consensus
    for row in rows:
        assert 0 <= row["ap50"] <= 1 and 0 <= row["fn_rate"] <= 1 and row["s_per_slice"] > 0
    # the fused views keep every body one view found confidently, so they miss no more of them at 0.75
    assert four["fn"] <= one["fn"]
    # the predictions of each variant are kept apart, and the table names both
    assert (tmp_path / "out" / f"{tiny_model_study.name}-fast-auto-1").is_dir()
    assert (tmp_path / "out" / f"{tiny_model_study.name}-fast-auto-4").is_dir()
    assert "4 views" in done.stdout and "AP50" in done.stdout
