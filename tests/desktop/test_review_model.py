"""Running the model from the workspace: a background worker with progress and Cancel; no model or a broken one."""

from __future__ import annotations

import itertools
import threading

import pytest
from PySide6 import QtCore

from core.annotations.labelme_io import read_labelme
from core.annotations.model import Box
from core.errors import ModelPackageError
from core.review.models import NO_MODEL
from core.review.status import SliceStatus
from desktop.main_window import MainWindow
from desktop.workers import active_workers
from tests.desktop.workspace_helpers import CASES, MODEL_ID, SLICES, FakePipeline, make_study, written

Key = QtCore.Qt.Key
CTRL, SHIFT = QtCore.Qt.KeyboardModifier.ControlModifier, QtCore.Qt.KeyboardModifier.ShiftModifier


def open_window(qtbot, root, loader) -> MainWindow:
    win = MainWindow(reader="r1", pipeline_loader=loader)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    with qtbot.waitSignal(win.studyOpened, timeout=20_000):
        win.open_path(root)
    return win


def test_run_on_a_case_reports_progress_off_the_gui_thread_and_shows_the_result(qtbot, tmp_path):
    study = make_study(tmp_path / "study", predictions=False)
    pipeline = FakePipeline(delay=0.02)
    threads = []
    original = pipeline.diagnose_study

    def recording(study, slices=None):
        threads.append(threading.current_thread())
        return (yield from original(study, slices))

    pipeline.diagnose_study = recording
    win = open_window(qtbot, study.root, lambda path: pipeline)
    qtbot.waitUntil(lambda: win.runner.state == "ready", timeout=10_000)
    assert win.case_list.summary((CASES[1], SLICES[0])).status == SliceStatus.UNREAD
    win.controller.show((CASES[1], SLICES[0]))
    progress = []
    win.runner.progressed.connect(progress.append)
    with qtbot.waitSignal(win.runner.finished, timeout=10_000) as finished:
        qtbot.keyClick(win.viewer, Key.Key_R, CTRL | SHIFT)
        assert win.runner.state == "running" and win.model_panel.cancel.isEnabled()
    report, keys = finished.args
    assert keys == [(CASES[1], s) for s in SLICES] and report.slices == 2
    assert pipeline.calls == [keys] and threads and threads[0] is not threading.main_thread()
    assert [(p.step, p.total) for p in progress] == [(1, 2), (2, 2)]
    qtbot.waitUntil(lambda: win.runner.state == "ready")
    assert len(win.viewer.overlay.other_items()) == 2  # the new predictions are on screen
    assert win.case_list.summary((CASES[1], SLICES[1])).status == SliceStatus.PRE_ANNOTATED
    assert read_labelme(study.prediction_path(MODEL_ID, CASES[1], SLICES[0])).model == MODEL_ID
    assert "diagnosed 2 slice" in win.statusBar().currentMessage()


def test_cancel_stops_the_run_at_its_next_step(qtbot, tmp_path):
    study = make_study(tmp_path / "study", predictions=False)
    pipeline = FakePipeline(delay=0.25)
    win = open_window(qtbot, study.root, lambda path: pipeline)
    qtbot.waitUntil(lambda: win.runner.state == "ready", timeout=10_000)
    keys = [(c, s) for c in CASES for s in SLICES]
    steps = []
    win.runner.progressed.connect(steps.append)
    with qtbot.waitSignal(win.runner.cancelled, timeout=10_000):
        assert win.runner.run(study, keys)
        assert not win.runner.run(study, keys)  # one run at a time
        qtbot.waitUntil(lambda: len(steps) >= 1, timeout=5_000)
        win.model_panel.cancel.click()
    qtbot.waitUntil(lambda: not active_workers(), timeout=5_000)
    written = [k for k in keys if study.prediction_path(MODEL_ID, *k).is_file()]
    assert 1 <= len(written) < len(keys) and len(steps) < len(keys)
    assert win.runner.state == "ready" and "cancelled" in win.statusBar().currentMessage()


def test_the_gui_thread_stays_responsive_while_the_model_runs(qtbot, tmp_path):
    study = make_study(tmp_path / "study", predictions=False)
    win = open_window(qtbot, study.root, lambda path: FakePipeline(delay=0.05))
    qtbot.waitUntil(lambda: win.runner.state == "ready", timeout=10_000)
    ticks = []
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: ticks.append(QtCore.QTime.currentTime()))
    timer.start(10)
    with qtbot.waitSignal(win.runner.finished, timeout=10_000):
        win.controller.model_actions.run_on_case()
    timer.stop()
    gaps = [a.msecsTo(b) for a, b in itertools.pairwise(ticks)]
    assert len(ticks) >= 5 and max(gaps) < 200


def test_without_a_model_the_app_is_a_manual_annotation_tool(qtbot, tmp_path):
    study = make_study(tmp_path / "study", model=False, predictions=False)
    loads = []
    win = open_window(qtbot, study.root, lambda path: loads.append(path))
    assert win.runner.state == "none" and win.model_panel.description.text() == NO_MODEL
    assert not win.model_panel.run_slice.isEnabled() and not win.viewer.demo_banner.isVisible()
    qtbot.keyClick(win.viewer, Key.Key_R, CTRL)
    assert loads == [] and "No model" in win.statusBar().currentMessage()
    win.controller.add_box(Box(5, 5, 50, 40))
    written()
    assert study.reader_path("r1", CASES[0], SLICES[0]).is_file()


def test_a_model_that_cannot_be_loaded_is_reported_and_the_app_goes_on(qtbot, tmp_path, message_boxes):
    study = make_study(tmp_path / "study")

    def broken(path):
        raise ModelPackageError("weights do not fit the architecture", path)

    win = open_window(qtbot, study.root, broken)
    qtbot.waitUntil(lambda: win.runner.state == "failed", timeout=10_000)
    assert "weights do not fit" in win.model_panel.description.text()
    assert any(kind == "warning" and "weights do not fit" in text for kind, _, text in message_boxes)
    assert not win.model_panel.run_case.isEnabled()
    assert len(win.viewer.overlay.other_items()) == 2  # its stored predictions still show
    qtbot.keyClick(win.viewer, Key.Key_A)  # and can be accepted
    written()
    assert len(read_labelme(study.reader_path("r1", CASES[0], SLICES[0])).vertebrae) == 2


@pytest.mark.parametrize("active", ['{"id": "gone-model"}', "not json"])
def test_a_missing_active_model_is_reported(qtbot, tmp_path, message_boxes, active):
    study = make_study(tmp_path / "study", model=False, predictions=False)
    (study.root / "models" / "active").write_text(active)
    win = open_window(qtbot, study.root, lambda path: FakePipeline())
    assert win.runner.state == "failed" and "cannot be used" in win.model_panel.description.text()
    assert message_boxes and message_boxes[-1][1] == "Model not available"


def test_opening_another_study_during_a_run_stops_it_and_ignores_its_answers(qtbot, tmp_path):
    first = make_study(tmp_path / "first", predictions=False)
    second = make_study(tmp_path / "second", model=False, predictions=False)
    win = open_window(qtbot, first.root, lambda path: FakePipeline(delay=0.2))
    qtbot.waitUntil(lambda: win.runner.state == "ready", timeout=10_000)
    finished = []
    win.runner.finished.connect(lambda *args: finished.append(args))
    win.runner.cancelled.connect(lambda *args: finished.append(args))
    assert win.runner.run(first, [(c, s) for c in CASES for s in SLICES])
    with qtbot.waitSignal(win.studyOpened, timeout=20_000):
        win.open_path(second.root)
    qtbot.waitUntil(lambda: not active_workers(), timeout=10_000)
    assert finished == [] and win.controller.session.study.root == second.root
    assert win.runner.state == "none" and win.model_panel.description.text() == NO_MODEL
