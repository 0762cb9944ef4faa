"""Desktop tests: offscreen Qt, no blocking dialogs, and no thread left running after a test."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6 import QtCore, QtWidgets

from desktop.app import configure_pyqtgraph
from desktop.workers import active_workers


@pytest.fixture(autouse=True)
def _pyqtgraph_config():
    configure_pyqtgraph()


@pytest.fixture(autouse=True)
def message_boxes(monkeypatch):
    """Record every message box instead of showing it; tests can assert on what people would have been told."""
    shown: list[tuple[str, str, str]] = []

    def record(kind):
        def box(parent, title, text, *args, **kwargs):
            shown.append((kind, title, text))
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
