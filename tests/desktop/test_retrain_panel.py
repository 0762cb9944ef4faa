"""The retrain action's plumbing with a stand-in child process (real processes, no training): progress with the time
left and live curves, the outcome, Cancel, a crash, an error, and one retrain at a time. The real retrain is in
test_retrain_real.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6 import QtCore

from core.training.retrain_progress import RetrainTracker, format_duration
from desktop.main_window import MainWindow
from desktop.retrain.controller import BUSY
from desktop.retrain.runner import exit_text
from tests.desktop.retrain_helpers import fake_plan, fake_retrain
from tests.desktop.workspace_helpers import FakePipeline, make_study


@pytest.fixture()
def window(qtbot, tmp_path):
    study = make_study(tmp_path / "study")
    win = MainWindow(reader="r1", pipeline_loader=lambda path: FakePipeline())
    qtbot.addWidget(win)
    win.resize(1300, 850)
    win.show()
    with qtbot.waitSignal(win.studyOpened, timeout=20_000):
        win.open_path(study.root)
    win.retrain_runner.target = fake_retrain
    return win


def start(win, mode: str) -> bool:
    return win.retrain.start(fake_plan(win.controller.session.study.root), {"detector": True, "classifier": False,
                                                                          "fake": mode})


def gone(pid: int) -> bool:
    """No such process, not even a zombie."""
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(")")[-1].split()[0] != "Z"


@pytest.mark.slow
def test_progress_time_left_curves_and_a_candidate_that_is_not_activated(qtbot, window):
    panel = window.retrain_panel
    with qtbot.waitSignal(window.retrain_runner.succeeded, timeout=60_000) as done:
        assert start(window, "result")
        assert window.retrain_dock.isVisible() and not window.retrain_action.isEnabled()
    assert done.args[0]["model_id"] == "v9"
    qtbot.waitUntil(lambda: window.retrain_action.isEnabled(), timeout=5_000)
    assert panel.curve_data("loss:detector") == ([0.5, 1.0, 1.5, 2.0], pytest.approx([0.5, 1 / 3, 1 / 3, 0.25]))
    assert panel.curve_data("detector:ap50") == ([1.0, 2.0], pytest.approx([0.55, 0.6]))
    assert panel.curve_data("detector:fp_rate")[0] == [1.0, 2.0]
    assert panel.progress.value() == panel.progress.maximum()
    result = panel.result.text()
    assert "kept as a candidate" in result and "0.610" in result and "0.800" in result and "worse" in result
    assert window.controller.session.model_id == "fake-v1"  # nothing switched
    assert window.retrain_runner.child is None


@pytest.mark.slow
def test_cancel_ends_the_child_leaves_no_process_and_a_second_retrain_is_refused(qtbot, window, message_boxes):
    runner = window.retrain_runner
    with qtbot.waitSignal(runner.progressed, timeout=60_000, check_params_cb=lambda p: p["stage"] == "validate"):
        start(window, "hang")
    process = runner.process
    assert process.is_alive() and not window.retrain_action.isEnabled()
    assert not start(window, "hang") and message_boxes[-1][2] == BUSY  # one at a time
    window.retrain.ask_retrain()
    assert message_boxes[-1][2] == BUSY
    with qtbot.waitSignal(runner.cancelled, timeout=20_000):
        window.retrain_panel.cancel.click()
    assert not process.is_alive() and process.exitcode is not None and process.exitcode < 0
    assert gone(process.pid)
    assert "Cancelled" in window.retrain_panel.status.text() and window.retrain_action.isEnabled()


@pytest.mark.slow
def test_a_child_that_dies_without_a_result_is_reported(qtbot, window, message_boxes):
    with qtbot.waitSignal(window.retrain_runner.failed, timeout=60_000) as failed:
        start(window, "crash")
    assert "exit code 3" in failed.args[0] and "nothing was activated" in failed.args[0]
    kind, title, text = message_boxes[-1]
    assert kind == "warning" and title == "Retrain failed" and "active model is unchanged" in text
    assert "The retrain failed" in window.retrain_panel.status.text()


@pytest.mark.slow
def test_an_error_from_the_child_is_shown_in_its_words(qtbot, window, message_boxes):
    with qtbot.waitSignal(window.retrain_runner.failed, timeout=60_000) as failed:
        start(window, "error")
    assert failed.args[0].startswith("the loss became nan")
    assert "the loss became nan" in message_boxes[-1][2]


@pytest.mark.slow
def test_closing_the_window_stops_a_running_retrain(qtbot, window):
    runner = window.retrain_runner
    with qtbot.waitSignal(runner.progressed, timeout=60_000):
        start(window, "hang")
    process = runner.process
    with qtbot.waitSignal(runner.cancelled, timeout=20_000):
        window.close()
    assert not process.is_alive()


def test_the_tracker_gives_fraction_time_left_and_component_switches():
    now = [0.0]
    tracker = RetrainTracker(["detector", "classifier"], {"detector": 2, "classifier": 1}, clock=lambda: now[0])
    tracker.update({"stage": "gather", "step": 1, "total": 1, "message": "6 slices"})
    assert tracker.fraction == 0.0 and tracker.eta_seconds() is None
    tracker.update({"stage": "train", "step": 1, "total": 2, "metrics": {"loss": 2.0, "epoch": 1}})
    now[0] = 10.0
    tracker.update({"stage": "train", "step": 2, "total": 2, "metrics": {"loss": 1.0, "epoch": 1}})
    assert tracker.fraction == pytest.approx(0.25) and tracker.eta_seconds() is None  # no epoch timed yet
    now[0] = 12.0
    tracker.update({"stage": "validate", "step": 1, "total": 2, "metrics": {"ap50": 0.8, "epoch": 1}})
    assert tracker.time_left().seconds == pytest.approx(2 * 10.0 + 2.0) and tracker.eta_seconds() is None
    tracker.update({"stage": "validate", "step": 2, "total": 2, "metrics": {"ap50": 0.9, "epoch": 2}})
    assert tracker.component == "classifier" and tracker.fraction == pytest.approx(0.5)
    tracker.update({"stage": "note", "message": "out of GPU memory at batch 4: retrying with batch 2"})
    assert tracker.notes and "retrying" in tracker.stage_text
    tracker.update({"stage": "train", "step": 1, "total": 1, "message": "epoch 1/1 loss 0.700",
                    "metrics": {"loss": 0.7, "epoch": 1, "items_per_s": 41.25, "data_wait": 0.12}})
    assert tracker.curves["classifier"].loss == [(1.0, 0.7)] and tracker.curves["detector"].metrics["ap50"]
    assert tracker.stage_text.endswith("41.2 patches/s, 12% waiting for data")
    tracker.update({"stage": "gate", "step": 1, "total": 1})
    assert tracker.fraction == 1.0 and tracker.eta_seconds() == 0.0
    with pytest.raises(ValueError):
        RetrainTracker([], {})


def test_durations_and_exit_codes_read_well():
    assert format_duration(None) == "…" and format_duration(42.4) == "42 s"
    assert format_duration(200) == "3 min 20 s" and format_duration(3900) == "1 h 05 min"
    assert exit_text(-9) == "killed by signal SIGKILL" and exit_text(3) == "exit code 3" and exit_text(None)


@pytest.mark.slow
def test_the_child_module_is_importable_without_qt():
    """The spawned child imports the stand-in and the process setup: neither may pull in Qt (nor, for the stand-in,
    PyTorch, which would make these tests slow)."""
    import subprocess
    import sys

    code = ("import sys, tests.desktop.retrain_helpers, core.training.child_process, core.training.retrain_child;"
            "print(any(m.startswith(('PySide6', 'pyqtgraph', 'superqt', 'torch')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONPATH": "."})
    assert out.stdout.strip() == "False"


def test_no_study_no_retrain(qtbot):
    win = MainWindow(reader="r1")
    qtbot.addWidget(win)
    win.retrain.ask_retrain()
    win.retrain.show_versions()
    assert win.retrain_runner.child is None and win.retrain.versions_dialog is None
    assert "Open a study first" in win.statusBar().currentMessage()
    QtCore.QCoreApplication.processEvents()


def _opened_with_fake_models(qtbot, tmp_path):
    """A window on a fresh study, its model loaded: (study, window, the fake pipelines loaded so far)."""
    study = make_study(tmp_path / "study")
    pipelines = []
    win = MainWindow(reader="r1", pipeline_loader=lambda path: pipelines.append(FakePipeline()) or pipelines[-1])
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.studyOpened, timeout=20_000):
        win.open_path(study.root)
    qtbot.waitUntil(lambda: win.runner.state == "ready", timeout=10_000)
    return study, win, pipelines


def test_an_activation_loads_the_model_and_refreshes_the_unreviewed_slices_in_the_background(qtbot, tmp_path):
    from core.review.models import peek_active_model
    from tests.desktop.workspace_helpers import CASES, SLICES

    study, win, pipelines = _opened_with_fake_models(qtbot, tmp_path)
    # the first slice shown and editable (its boxes load after the study opens): marking it before then did nothing
    qtbot.waitUntil(lambda: win.controller.key == (CASES[0], SLICES[0]) and win.controller.boxes.editable,
                    timeout=10_000)
    win.controller.reviewed_next()  # case-0001/s001 is reviewed: its prediction stays as it is
    assert win.controller.key != (CASES[0], SLICES[0])  # marked, and moved on to the next slice
    with qtbot.waitSignal(win.runner.finished, timeout=60_000) as finished:
        win.retrain.modelSwitched.emit(peek_active_model(study))
    refreshed = finished.args[1]
    assert sorted(refreshed) == [(c, s) for c in CASES for s in SLICES if (c, s) != (CASES[0], SLICES[0])]
    assert len(pipelines) == 2 and pipelines[-1].calls == [refreshed]
    assert "Refreshing the predictions of 3 unreviewed slice(s)" in win.statusBar().currentMessage() or \
        "diagnosed 3 slice(s)" in win.statusBar().currentMessage()
    assert study.prediction_path("fake-v1", CASES[1], SLICES[1]).is_file()


def test_a_slice_reviewed_while_its_file_is_still_being_saved_is_not_refreshed(qtbot, tmp_path, monkeypatch):
    """The unreviewed slices are read from the files in the background; one marked reviewed whose save has not landed
    yet still reads unreviewed there, and must keep its prediction all the same."""
    from dataclasses import replace

    from core.review.models import peek_active_model
    from desktop.review import model_actions
    from tests.desktop.workspace_helpers import CASES, SLICES

    study, win, _ = _opened_with_fake_models(qtbot, tmp_path)
    session = win.controller.session
    every = [(c, s) for c in CASES for s in SLICES]
    monkeypatch.setattr(model_actions, "unreviewed_slices", lambda _study: list(every))  # the files not saved yet
    first = (CASES[0], SLICES[0])
    reviewed = replace(session.editor(first).state, reviewed=True)
    monkeypatch.setattr(session, "unsaved_annotations", lambda: {first: reviewed})  # still in the save queue
    with qtbot.waitSignal(win.runner.finished, timeout=60_000) as finished:
        win.retrain.modelSwitched.emit(peek_active_model(study))
    assert sorted(finished.args[1]) == [key for key in every if key != first]


def test_the_loss_chart_runs_in_epochs_from_0_and_the_status_says_when_there_is_no_estimate(qtbot):
    """Issue 19: at 16 % the status read "about 0 s left" and the x-axis ran from -200 to 600, "epoch (x0.001)"."""
    from desktop.panels.retrain_panel import RetrainPanel

    panel = RetrainPanel()
    qtbot.addWidget(panel)
    panel.resize(1100, 420)
    panel.show()
    tracker = RetrainTracker(["detector", "classifier"], {"detector": 5, "classifier": 5}, clock=lambda: 3.0)
    panel.start("Retraining the detector and the classifier on CPU", epochs=5)
    for step in range(1, 33):  # 0.32 epochs of the detector, all received at once
        tracker.update({"stage": "train", "step": step, "total": 100, "message": "epoch 1/5 loss",
                        "metrics": {"loss": 1.0 / step, "epoch": 1}})
        panel.show_progress(tracker)
    qtbot.wait(20)
    (low, high), label = panel.epoch_axis()
    assert -0.2 < low <= 0.0 and 5.0 <= high < 5.2  # epochs 0 to 5, with a margin for the end ticks' labels
    assert "epoch" in label and "x0.001" not in label
    axis = panel.loss_plot.getAxis("bottom")
    majors = axis.tickValues(low, high, axis.width())[0][1]
    assert majors[0] == 0.0 and majors[-1] >= 4.0 and axis.autoSIPrefixScale == 1.0
    assert axis.tickStrings([0.0, 1.0, 5.0], axis.scale, 1.0) == ["0", "1", "5"]  # epoch numbers, not scaled
    assert panel.curve_data("loss:detector")[0][-1] == pytest.approx(0.32)
    status = panel.status.text()
    assert "estimating the time left" in status and "about" not in status
    assert panel.progress.value() == round(0.032 * panel.progress.maximum())
