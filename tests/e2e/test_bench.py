"""Every ``bench`` at its smallest size (``--size smoke --repeats 1``) through the real command line: it runs, and its
``--json`` object has exactly the keys that the README's "Benchmarks" section lists for it (``bench gui`` is in
``tests/desktop/test_bench_gui.py``, with the Qt fixtures)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import core.benchmarks.models  # noqa: F401 - imported at collection, so that a test's time is its own run
from desktop.cli import main

pytestmark = pytest.mark.slow  # each benchmark runs for real, at its smallest size

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
#: Keys that every benchmark's object has.
COMMON = {"size", "repeats", "lines"}


def _keys(text: str) -> set[str]:
    return set(re.findall(r"`([a-z0-9_]+)`", text))


def documented_keys(what: str) -> tuple[set[str], set[str], set[str]]:
    """(keys, nested keys, keys only where they apply) of ``bench WHAT`` in the README's table; nested keys are
    those after "each with", which the objects named just before them hold."""
    section = README.split("\n## Benchmarks\n", 1)[1].split("\n## ", 1)[0]
    row = re.search(rf"^\| `bench {what}` \|(.*)\|(.*)\|$", section, re.M)
    assert row, f"the README's Benchmarks section has no row for bench {what}"
    keys, _, nested = row.group(1).partition("each with")
    return _keys(keys) | COMMON, _keys(nested), _keys(row.group(2))


def check_documented(what: str, result: dict[str, Any]) -> None:
    """``result`` has every key the README lists for ``bench WHAT`` and none it does not; its figures are numbers."""
    keys, nested, optional = documented_keys(what)
    assert keys <= set(result), f"bench {what} lacks {keys - set(result)}"
    assert set(result) - keys <= optional, f"bench {what} has keys the README does not list: {set(result) - keys}"
    assert result["size"] == "smoke" and result["repeats"] == 1
    assert result["lines"] and all(isinstance(line, str) for line in result["lines"])
    for name in (key for key in keys if key.endswith(("_s", "_ms", "_gflops", "_per_s"))):
        assert isinstance(result[name], float) and math.isfinite(result[name]) and result[name] >= 0, name
    if nested:
        objects = [name for name in keys - COMMON if isinstance(result[name], dict)]
        assert objects, f"bench {what}: the README lists nested keys but the object has no nested objects"
        for name in objects:
            assert nested <= set(result[name]), f"bench {what}: {name} lacks {nested - set(result[name])}"
            assert set(result[name]) - nested <= optional, f"bench {what}: {name} has unlisted keys"


def run_bench(capsys: pytest.CaptureFixture[str], what: str, *options: str) -> dict[str, Any]:
    """``vertebra-review bench WHAT --size smoke --repeats 1 --json``, in this process; its object."""
    status = main(["bench", what, "--size", "smoke", "--repeats", "1", "--json", *options])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out)


@pytest.fixture
def one_thread():
    """One torch thread: on two shared cores, two spin-waiting threads make the tiny models several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_bench_io_smoke(capsys):
    result = run_bench(capsys, "io")
    check_documented("io", result)
    assert result["series_slices"] == 8


def test_bench_synth_smoke():
    """In a process of its own, as a user runs it: there its worker processes fork, where this one (which has Qt
    loaded) would have to spawn them and import everything again."""
    command = [sys.executable, "-m", "desktop.cli", "bench", "synth", "--size", "smoke", "--repeats", "1", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    check_documented("synth", result)
    assert (result["cases"], result["slices_per_case"]) == (2, 1)
    # the anatomy source, timed on the bundled label maps: one slice rendered
    assert result["anatomy_slices"] == 1 and result["anatomy_slices_per_s_one_process"] > 0
    assert [Path(p).name for p in result["anatomy_maps"]] == ["labels_totalsegmentator.nii.gz",
                                                              "sub-ct_seg-vert_label-22_msk.nii.gz"]


def test_bench_detect_smoke(capsys, one_thread):
    result = run_bench(capsys, "detect")
    check_documented("detect", result)
    assert result["input_px"] == 128
    assert torch.is_grad_enabled()  # left as it was, for the tests that train after it in this process


@pytest.mark.parametrize("preset", ["paper", "fast"])
def test_bench_diagnose_smoke(capsys, one_thread, preset):
    """``fast`` names the endplate head: its classifier is built with it (``bench gui`` once crashed there)."""
    result = run_bench(capsys, "diagnose", "--preset", preset)
    check_documented("diagnose", result)
    assert result["preset"] == preset and (result["detector_px"], result["patch_px"]) == (128, 32)
    assert torch.is_grad_enabled()


def test_bench_train_smoke(capsys, one_thread):
    result = run_bench(capsys, "train", "--preset", "fast")
    check_documented("train", result)
    assert result["detector"]["input_px"] == 128 and result["classifier"]["input_px"] == 32


def test_bench_refuses_an_unknown_size(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "io", "--size", "huge"])
    assert "--size" in capsys.readouterr().err
