"""The Retrain action end to end with the real child process on a tiny phantom study (CPU): the summary dialog, a
retrain that activates a new version (the version list shows it, the app loads it, rollback works), Cancel in the
middle, a killed child, and a second retrain refused by the study's lock. Slow: each real child trains for tens of
seconds on two cores, so the tests share processes where they can."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from PySide6 import QtCore

from core.models.registry import Registry
from core.training.retrain_plan import plan_retrain
from desktop.dialogs.retrain_dialog import RetrainDialog
from desktop.main_window import MainWindow
from desktop.retrain.runner import RetrainRunner

pytestmark = pytest.mark.slow
FAST = {"batch_size": 2, "precision": "fp32"}
CHOICE = {"detector": True, "classifier": True, "from_scratch": False, "epochs": 1, "margin": 1.0}


@pytest.fixture()
def study(tiny_model_study, tmp_path) -> Path:
    copy = tmp_path / "study"
    shutil.copytree(tiny_model_study, copy)
    return copy


@pytest.fixture()
def window(qtbot, study):
    win = MainWindow(reader="r1")
    qtbot.addWidget(win)
    win.resize(1300, 850)
    win.show()
    with qtbot.waitSignal(win.studyOpened, timeout=30_000):
        win.open_path(study)
    qtbot.waitUntil(lambda: win.runner.state == "ready", timeout=60_000)
    win.retrain.extra_options = dict(FAST)
    return win


def versions(study: Path) -> list[str]:
    return sorted(v.model_id for v in Registry(study / "models").versions())


def test_the_summary_dialog_shows_the_data_the_choices_and_the_device(qtbot, study):
    plan = plan_retrain(study)
    dialog = RetrainDialog(plan)
    qtbot.addWidget(dialog)
    text = dialog.summary.text()
    assert "<b>6</b> reviewed or agreed slices from <b>3</b> cases" in text
    assert "since the active model <b>tiny-v1</b>" in text and "slices are new or changed" in text
    for code, count in plan.summary.boxes_per_class.items():
        assert f"<td>{code}</td><td align='right'>{count}</td>" in text
    assert plan.summary.boxes_per_class["NORMAL"] > 0
    assert dialog.device.text().startswith("CPU") and "no CUDA GPU found" in dialog.device.text()
    assert dialog.fine_tune.isChecked() and "tiny-v1" in dialog.fine_tune.text()
    assert dialog.start_button.isEnabled() and dialog.epochs.specialValueText().startswith("preset (detector 10")
    dialog.components.setCurrentIndex(dialog.components.findData("detector"))
    dialog.from_scratch.setChecked(True)
    dialog.epochs.setValue(2)
    dialog.margin.setValue(0.05)
    assert dialog.options() == {"detector": True, "classifier": False, "from_scratch": True, "epochs": 2,
                                "margin": 0.05}


def test_retrain_from_the_action_activates_a_new_version_and_rolls_back(qtbot, window, study):
    asked = []
    window.retrain.ask_options = lambda parent, plan: asked.append(plan) or dict(CHOICE)
    with qtbot.waitSignal(window.retrain_runner.succeeded, timeout=600_000) as done:
        qtbot.keyClick(window.viewer, QtCore.Qt.Key.Key_T, QtCore.Qt.KeyboardModifier.ControlModifier
                       | QtCore.Qt.KeyboardModifier.ShiftModifier)
        qtbot.waitUntil(lambda: window.retrain_runner.busy, timeout=60_000)
        assert not window.retrain_action.isEnabled() and window.retrain_dock.isVisible()
    result = done.args[0]
    assert asked[0].summary.slices == 6 and asked[0].active == "tiny-v1"
    assert result["activated"] and result["model_id"] == "v2" and result["previous"] == "tiny-v1"
    assert Registry(study / "models").active_id() == "v2"
    assert [g["component"] for g in result["gate"]] == ["detector", "classifier"]
    panel = window.retrain_panel
    assert "v2 is now the active model" in panel.result.text() and panel.curve_data("loss:detector")[0]
    assert panel.curve_data("detector:ap50")[0] == [1.0] and panel.curve_data("classifier:mean_auc")[0] == [1.0]
    # the app loads the new model (no unreviewed slice here: every slice has a consensus)
    qtbot.waitUntil(lambda: window.runner.state == "ready" and window.runner.pipeline.model_id == "v2",
                    timeout=60_000)
    assert window.controller.session.model_id == "v2"
    window.retrain_panel.versions.click()
    dialog = window.retrain.versions_dialog
    rows = {row[0]: row for row in dialog.row_texts()}
    assert set(rows) == {"tiny-v1", "v2"} and rows["v2"][2] == "tiny-v1"
    assert "active" in rows["v2"][6] and "just trained" in rows["v2"][6]
    assert "detector AP50" in rows["v2"][5] and "6 slices, 3 cases" in rows["v2"][4]
    dialog.rollback_button.click()
    assert Registry(study / "models").active_id() == "tiny-v1"
    qtbot.waitUntil(lambda: window.runner.state == "ready" and window.runner.pipeline.model_id == "tiny-v1",
                    timeout=60_000)
    rows = {row[0]: row for row in dialog.row_texts()}
    assert "active" in rows["tiny-v1"][6] and "active" not in rows["v2"][6].replace("just trained", "")
    dialog.select("v2")
    dialog.activate_button.click()
    assert Registry(study / "models").active_id() == "v2"
    qtbot.waitUntil(lambda: window.runner.state == "ready" and window.runner.pipeline.model_id == "v2",
                    timeout=60_000)


def test_cancel_mid_training_ends_the_child_and_a_second_retrain_is_refused_by_the_lock(qtbot, window, study):
    runner = window.retrain_runner
    plan = plan_retrain(study)
    with qtbot.waitSignal(runner.progressed, timeout=300_000, check_params_cb=lambda p: p["stage"] == "train"):
        window.retrain.start(plan, {**CHOICE, "epochs": 3})
    process = runner.process
    # another window on the same study: the core refuses, its message is shown, and nothing changes here
    other = RetrainRunner()
    with qtbot.waitSignal(other.failed, timeout=300_000) as refused:
        other.start(study, {**FAST, **CHOICE})
    assert "already running" in refused.args[0] and runner.busy and process.is_alive()
    with qtbot.waitSignal(runner.cancelled, timeout=30_000):
        window.retrain.cancel()
    assert not process.is_alive() and process.exitcode < 0
    assert Registry(study / "models").active_id() == "tiny-v1" and versions(study) == ["tiny-v1"]
    assert window.controller.session.model_id == "tiny-v1"


def test_a_killed_child_is_reported_and_nothing_is_activated(qtbot, window, study, message_boxes):
    runner = window.retrain_runner
    plan = plan_retrain(study)
    with qtbot.waitSignal(runner.progressed, timeout=300_000, check_params_cb=lambda p: p["stage"] == "train"):
        window.retrain.start(plan, {**CHOICE, "epochs": 3})
    with qtbot.waitSignal(runner.failed, timeout=30_000) as failed:
        os.kill(runner.process.pid, signal.SIGKILL)
    assert "killed by signal SIGKILL" in failed.args[0] and "nothing was activated" in failed.args[0]
    assert message_boxes[-1][1] == "Retrain failed"
    assert Registry(study / "models").active_id() == "tiny-v1" and versions(study) == ["tiny-v1"]
