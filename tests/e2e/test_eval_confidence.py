"""The low-confidence benchmark (``tests/benchmarks/eval_confidence.py``) at its smallest: the bundled demo study's
model results against reader r1, with the thresholds from the files and, for results written without them, from
the model package."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.bundled_models import BUNDLED_ID, BUNDLED_SET

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "benchmarks" / "eval_confidence.py"
DEMO = REPO / "resources" / "demo"


def figures(*args: str) -> dict:
    done = subprocess.run([sys.executable, str(SCRIPT), *args, "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_rule_in_use_and_its_neighbours_on_the_demo_study(tmp_path):
    result = figures(str(DEMO / "predictions" / BUNDLED_ID), str(DEMO / "readers" / "r1"), "--factors", "1.5", "2")
    rules = result["rules"]
    assert list(rules) == ["odds within 1.5x of the threshold", "odds within 2x of the threshold",
                           "previous: label probability < 0.55"]
    narrow, in_use, previous = rules.values()
    assert in_use["slices"] == 60 and in_use["boxes"] == 601
    assert (in_use["boxes_marked"], in_use["slices_marked"]) == (69, 49)  # as core/review/confidence.py says
    assert narrow["boxes_marked"] <= in_use["boxes_marked"]  # a narrower margin marks a subset
    for rule in rules.values():  # every rule sees the same hits; only how they split differs
        assert rule["marked_hits"] + rule["unmarked_hits"] == in_use["marked_hits"] + in_use["unmarked_hits"]
    assert in_use["marked_wrong"] / in_use["marked_hits"] > previous["marked_wrong"] / previous["marked_hits"]

    # results written before the thresholds travelled with them: the same figures from the model package
    older = tmp_path / "older"
    shutil.copytree(DEMO / "predictions" / BUNDLED_ID, older)
    for file in older.rglob("*.json"):
        data = json.loads(file.read_text())
        del data["thresholds"]
        file.write_text(json.dumps(data))
    again = figures(str(older), str(DEMO / "readers" / "r1"), "--factors", "1.5", "2", "--thresholds", str(BUNDLED_SET))
    assert again["rules"] == rules
    without = figures(str(older), str(DEMO / "readers" / "r1"), "--factors", "2")  # judged against 0.5 each
    assert without["rules"]["odds within 2x of the threshold"]["boxes_marked"] != in_use["boxes_marked"]


def test_a_factor_of_one_or_less_is_refused():
    done = subprocess.run([sys.executable, str(SCRIPT), str(DEMO / "predictions" / BUNDLED_ID),
                           str(DEMO / "readers" / "r1"), "--factors", "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "odds factor must be above 1" in done.stderr
