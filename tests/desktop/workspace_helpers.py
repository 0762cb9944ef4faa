"""Helpers for the workspace tests: tiny studies, a fake diagnosis pipeline, and real mouse gestures on the view."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6 import QtCore, QtGui, QtWidgets

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.progress import Progress
from core.study.layout import Study

W, H = 160, 120
MODEL_ID = "fake-v1"
CASES = ("case-0001", "case-0002")
SLICES = ("s001", "s002")


def model_vertebrae(shift: float = 0.0) -> tuple[Vertebra, ...]:
    return (
        Vertebra(Box(20 + shift, 10, 70 + shift, 40), frozenset({Disease.OVCF}), {"OVCF": 0.93, "NORMAL": 0.04},
                 0.98, "L1"),
        Vertebra(Box(20 + shift, 50, 70 + shift, 80), frozenset(), {"OVCF": 0.42, "NORMAL": 0.52}, 0.97, "L2"),
    )


def make_study(root: Path, *, model: bool = True, predictions: bool = True, demo: bool = True) -> Study:
    """Two cases of two 160x120 PNG slices; the fake model's predictions on case-0001 (when asked)."""
    study = Study.create(root)
    rng = np.random.default_rng(0)
    for case in CASES:
        folder = study.root / "images" / case
        folder.mkdir(parents=True)
        for number, name in enumerate(SLICES):
            pixels = rng.integers(0, 60, (H, W)).astype(np.uint8) + np.uint8(40 * number)
            Image.fromarray(pixels).save(folder / f"{name}.png")
    if model:
        folder = study.root / "models" / MODEL_ID
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"kind": "model-set", "demo": demo}))
        (study.root / "models" / "active").write_text(json.dumps({"id": MODEL_ID}))
    if predictions:
        for name in SLICES:
            study.save_annotation(SliceAnnotation(W, H, model_vertebrae(), model=MODEL_ID), CASES[0], name,
                                  model=MODEL_ID)
    return study


@dataclass
class FakeReport:
    slices: int = 0
    errors: list = field(default_factory=list)


class FakePipeline:
    """The diagnosis pipeline's interface, writing fixed predictions, ``delay`` seconds per slice."""

    model_id = MODEL_ID
    is_demo = True

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[list[tuple[str, str]]] = []

    def describe(self) -> str:
        return f"{MODEL_ID} (detector + classifier) · demo model, trained on synthetic phantoms · CPU"

    def diagnose_study(self, study: Study, slices=None):
        keys = list(slices if slices is not None else study.all_slices())
        self.calls.append(keys)
        report = FakeReport()
        for number, key in enumerate(keys, start=1):
            time.sleep(self.delay)
            study.save_annotation(SliceAnnotation(W, H, model_vertebrae(shift=30), model=MODEL_ID), *key,
                                  model=MODEL_ID)
            report.slices += 1
            yield Progress("diagnose", number, len(keys), f"{key[0]}/{key[1]}")
        return report


# -- mouse ---------------------------------------------------------------------------------------------------------
def _send(viewport: QtWidgets.QWidget, kind, point: QtCore.QPoint, button, buttons, modifiers) -> None:
    local = QtCore.QPointF(point)
    event = QtGui.QMouseEvent(kind, local, QtCore.QPointF(viewport.mapToGlobal(point)), button, buttons, modifiers)
    QtWidgets.QApplication.sendEvent(viewport, event)


def drag(qtbot, view, start: tuple[float, float], end: tuple[float, float], *,
         button=QtCore.Qt.MouseButton.LeftButton, modifiers=QtCore.Qt.KeyboardModifier.NoModifier,
         steps: int = 4) -> None:
    """Press at image point ``start``, move in steps (with the button held) and release at ``end``."""
    viewport = view.graphics.viewport()
    first, last = view.image_to_viewport(*start), view.image_to_viewport(*end)
    no_button = QtCore.Qt.MouseButton.NoButton
    _send(viewport, QtCore.QEvent.Type.MouseMove, first, no_button, no_button, modifiers)  # hover first
    qtbot.wait(15)
    _send(viewport, QtCore.QEvent.Type.MouseButtonPress, first, button, button, modifiers)
    for t in np.linspace(0, 1, steps + 1)[1:]:
        qtbot.wait(15)  # pyqtgraph drops mouse moves closer than 10 ms
        x, y = first.x() + t * (last.x() - first.x()), first.y() + t * (last.y() - first.y())
        point = QtCore.QPoint(round(x), round(y))
        _send(viewport, QtCore.QEvent.Type.MouseMove, point, no_button, button, modifiers)
    _send(viewport, QtCore.QEvent.Type.MouseButtonRelease, last, button, no_button, modifiers)
    qtbot.wait(5)


def click(qtbot, view, at: tuple[float, float]) -> None:
    point = view.image_to_viewport(*at)
    qtbot.mouseMove(view.graphics.viewport(), point)
    qtbot.wait(15)
    qtbot.mouseClick(view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=point)


def shown_window(qtbot, study_root: Path | None = None, *, reader: str = "r1", settled=None):
    """The main window as a reader sees it (1200 x 800), with ``study_root`` opened and the fake models ready when
    given; ``settled(window)`` is waited for as well (for example the first scan of the case list)."""
    from desktop.main_window import MainWindow

    win = MainWindow(reader=reader, **({"pipeline_loader": lambda path: FakePipeline()} if study_root else {}))
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    if study_root is not None:
        with qtbot.waitSignal(win.studyOpened, timeout=20_000):
            win.open_path(study_root)
        qtbot.waitUntil(lambda: win.runner.state == "ready" and (settled is None or settled(win)), timeout=10_000)
    return win


def written() -> None:
    """Wait for the app's background writer to write the edits made so far, and let it report back (as a person
    reading the file a moment after the key press would find it)."""
    from core.review.autosave import flush_all

    assert flush_all(10), "the background writer did not finish in time"
    QtCore.QCoreApplication.sendPostedEvents()
