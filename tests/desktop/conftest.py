"""Desktop tests: offscreen Qt, no blocking dialogs, per-test user settings, and no thread left running."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6 import QtCore, QtWidgets

from core.review.preferences import CONFIG_ENV
from desktop.app import configure_pyqtgraph
from desktop.workers import active_workers


@pytest.fixture(autouse=True)
def _pyqtgraph_config():
    configure_pyqtgraph()


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """Preferences, recovery journals and imported studies go to a fresh folder, never the real home."""
    folder = tmp_path / "user-config"
    monkeypatch.setenv(CONFIG_ENV, str(folder))
    return folder


class _Shown(list):
    """(kind, title, text) of each message box shown; ``answers`` are the buttons that questions get."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[QtWidgets.QMessageBox.StandardButton] = []


@pytest.fixture(autouse=True)
def message_boxes(monkeypatch):
    """Record every message box instead of showing it; tests can assert on what people would have been told.
    Questions are answered Yes unless a test sets ``answers`` (a list of buttons used in order)."""
    shown = _Shown()
    answers = shown.answers

    def record(kind):
        def box(parent, title, text, *args, **kwargs):
            shown.append((kind, title, text))
            if kind == "question":
                return answers.pop(0) if answers else QtWidgets.QMessageBox.StandardButton.Yes
            return QtWidgets.QMessageBox.StandardButton.Ok

        return box

    for kind in ("warning", "critical", "information", "question", "about"):
        monkeypatch.setattr(QtWidgets.QMessageBox, kind, staticmethod(record(kind)))
    return shown


@pytest.fixture(autouse=True)
def _no_dangling_threads(qtbot):
    """Fail a test that leaves a worker or a pooled thread running (as napari's _dangling_qthreads does)."""
    yield
    pool = QtCore.QThreadPool.globalInstance()
    qtbot.waitUntil(lambda: not active_workers() and pool.activeThreadCount() == 0, timeout=10_000)
    assert not active_workers(), f"workers still running: {active_workers()}"


@pytest.fixture()
def window(qtbot):
    """The main window with nothing open (a test module that needs a study open defines its own ``window``)."""
    from tests.desktop.workspace_helpers import shown_window

    return shown_window(qtbot)
