"""One-click retraining end to end on a tiny phantom study (CPU): the gate, activation, rollback, and every way it
can fail without touching the active model."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.errors import ModelPackageError, TrainingError
from core.models.registry import Registry
from core.progress import run
from core.study.layout import Study
from core.training.retrain import LOCK, RetrainBusyError, RetrainOptions, retrain, training_data

pytestmark = pytest.mark.slow  # every test trains or starts a real retrain

REPO = Path(__file__).resolve().parents[2]
FAST = RetrainOptions(epochs=1, batch_size=2, precision="fp32", margin=1.0)


@pytest.fixture()
def study(tiny_model_study, tmp_path) -> Path:
    copy = tmp_path / "study"
    shutil.copytree(tiny_model_study, copy)
    return copy


@pytest.fixture(scope="module")
def retrained(tiny_model_study, tmp_path_factory) -> tuple[Path, object, list]:
    """The tiny study after one retrain (trained once for the tests that only look at its outcome): the study, the
    result and the progress events. Tests that change it work on a copy."""
    root = tmp_path_factory.mktemp("retrained") / "study"
    shutil.copytree(tiny_model_study, root)
    events: list = []
    result = run(retrain(root, FAST), events.append)
    return root, result, events


def _versions(study: Path) -> list[str]:
    return [v.model_id for v in Registry(study / "models").versions()]


def test_retrain_publishes_gates_activates_and_rolls_back(retrained, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(retrained[0], study)  # rolled back below
    result, events = retrained[1:]
    registry = Registry(study / "models")
    assert result.activated and registry.active_id() == result.model_id == "v2"
    active = registry.active()
    assert active.parent == "tiny-v1" and active.classifier is not None
    assert [g.component for g in result.gate] == ["detector", "classifier"]
    assert all(g.active is not None for g in result.gate)  # compared with the model it replaces
    stages = {e.stage for e in events}
    assert {"gather", "train", "validate", "gate"} <= stages
    manifest = json.loads((study / "models" / "v2" / "manifest.json").read_text())
    assert manifest["data"]["slices"] == 6 and manifest["metrics"]["gate"][0]["metric"] == "AP50"
    detector_manifest = json.loads((study / "models" / "v2" / "detector" / "manifest.json").read_text())
    assert detector_manifest["training"]["fine_tuned"] is True
    assert registry.rollback().model_id == "tiny-v1"
    assert not (study / "models" / LOCK).exists() and not any((study / "models" / ".staging").iterdir())


def test_a_model_that_is_worse_stays_a_candidate(study):
    result = run(retrain(study, RetrainOptions(epochs=1, batch_size=2, precision="fp32", margin=-1.0,
                                               detector=False)))
    assert not result.activated and "worse" in result.describe()
    assert Registry(study / "models").active_id() == "tiny-v1"
    assert _versions(study) == ["tiny-v1", "v2"]  # kept, for comparison


def test_the_summary_counts_classes_and_what_is_new(study, retrained, tmp_path):
    train, val, summary = training_data(Study.open(study))
    assert summary.slices == 6 and summary.training_slices + summary.validation_slices == 6
    assert {r.case for r in train}.isdisjoint({r.case for r in val})  # split by case
    assert summary.new_slices == 6 and summary.active_model == "tiny-v1"  # the tiny model records no data
    assert sum(summary.boxes_per_class.values()) >= sum(len(r.boxes) for r in train + val)
    study = tmp_path / "retrained"
    shutil.copytree(retrained[0], study)  # after a retrain, in a folder of another name: its history moves with it
    assert training_data(Study.open(study))[2].new_slices == 0
    path = study / "consensus" / "case-0001" / "s001.json"
    data = json.loads(path.read_text())
    data["shapes"][0]["points"][1][0] += 5
    path.write_text(json.dumps(data))
    assert training_data(Study.open(study))[2].new_slices == 1


def test_cancel_mid_epoch_leaves_the_active_model_and_no_version(study):
    job = retrain(study, FAST)
    for event in job:
        if event.stage == "train":
            job.close()
            break
    assert Registry(study / "models").active_id() == "tiny-v1"
    assert _versions(study) == ["tiny-v1"]
    assert not (study / "models" / LOCK).exists()
    assert not (study / "models" / ".staging" / "v2").exists()


def test_a_non_finite_loss_is_an_error_and_the_active_model_stays(study, monkeypatch):
    from dataclasses import replace

    from core.training import detection_engine

    monkeypatch.setitem(detection_engine.PRESETS, "cpu", replace(detection_engine.PRESETS["cpu"], lr=1e30))
    with pytest.raises(TrainingError, match="loss became"):
        run(retrain(study, RetrainOptions(epochs=2, batch_size=2, precision="fp32", classifier=False)))
    assert Registry(study / "models").active_id() == "tiny-v1" and _versions(study) == ["tiny-v1"]
    assert not (study / "models" / LOCK).exists()


def test_a_full_disk_when_publishing_is_a_clear_error_and_the_active_model_stays(study, monkeypatch):
    import core.models.registry as registry_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(registry_module.os, "rename", full)
    with pytest.raises(ModelPackageError, match="No space left"):
        run(retrain(study, RetrainOptions(epochs=1, batch_size=2, precision="fp32", detector=False)))
    assert Registry(study / "models").active_id() == "tiny-v1" and _versions(study) == ["tiny-v1"]
    assert not [p for p in (study / "models").iterdir() if p.name.startswith(".v2")]


def test_a_second_retrain_is_refused_while_one_runs(study):
    first = retrain(study, FAST)
    next(first)  # holds the lock now
    with pytest.raises(RetrainBusyError, match="already running"):
        next(retrain(study, FAST))
    first.close()
    assert not (study / "models" / LOCK).exists()


def test_a_killed_retrain_process_activates_nothing_and_its_lock_is_taken_over(study):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "desktop.cli", "retrain", str(study), "--epochs", "3",
                                "--batch-size", "2", "--precision", "fp32"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (study / "models" / ".staging").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (study / "models" / LOCK).exists()
        time.sleep(2)  # in the middle of training
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert Registry(study / "models").active_id() == "tiny-v1" and _versions(study) == ["tiny-v1"]
    result = run(retrain(study, FAST))  # the dead process's lock does not block the next retrain
    assert result.activated


def test_data_parallel_under_torchrun_with_gloo_and_two_processes(study):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "desktop.cli",
         "retrain", str(study), "--epochs", "1", "--batch-size", "1", "--precision", "fp32", "--device", "cpu",
         "--margin", "1", "--no-refresh"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "v2: activated" in result.stdout and result.stdout.count("v2: activated") == 1
    detector = json.loads((study / "models" / "v2" / "detector" / "manifest.json").read_text())
    classifier = json.loads((study / "models" / "v2" / "classifier" / "manifest.json").read_text())
    assert detector["training"]["processes"] == 2 and classifier["training"]["processes"] == 2
    assert _versions(study) == ["tiny-v1", "v2"]


def test_the_child_process_body_reports_progress_and_the_result_through_its_pipe(study):
    import multiprocessing

    from core.training.retrain_child import run_retrain

    parent, child = multiprocessing.Pipe()
    run_retrain(child, str(study), {"epochs": 1, "batch_size": 2, "precision": "fp32", "margin": 1.0,
                                    "detector": False})
    messages = []
    while True:
        try:
            messages.append(parent.recv())
        except EOFError:  # the child's end is closed once it is done
            break
    kinds = [kind for kind, _ in messages]
    assert kinds[-1] == "result" and "progress" in kinds and "error" not in kinds
    result = messages[-1][1]
    assert result["activated"] and result["model_id"] == "v2" and result["previous"] == "tiny-v1"
    assert result["gate"][0]["component"] == "classifier"


def test_the_child_process_body_reports_errors_in_one_line(tmp_path):
    import multiprocessing

    from core.training.retrain_child import run_retrain

    parent, child = multiprocessing.Pipe()
    run_retrain(child, str(tmp_path / "nowhere"), {})
    kind, message = parent.recv()
    assert kind == "error" and "not a study folder" in message and "\n" not in message
