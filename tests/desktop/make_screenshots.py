"""Make the README screenshots of the review workspace (not a test; pytest does not collect it).

    xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python tests/desktop/make_screenshots.py STUDY resources/screenshots

STUDY is a phantom study with an active (demo) model, for example the bundled demo or one made with
``vertebra-review synth`` plus ``vertebra-review models``. The model is run on slices that have no prediction yet,
then a reader ``dr-lee`` (in a scratch settings folder; the study gets their files) reviews a few slices: the first
picture shows mine + the model with an edited, selected box; the second a filtered case list, only my boxes,
zoomed, with the shortcuts panel; the third the corner text, a ruler across a vertebral body and an HU region
inside one; the fourth the "Low confidence" filter on and the first unsure box of the model's selected, with its
close call in the selected-box panel. Under Xvfb the screen is captured with ImageMagick's ``import``; elsewhere the
window grabs itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["VERTEBRA_REVIEW_CONFIG_DIR"] = tempfile.mkdtemp(prefix="vr-screenshots-")

from PySide6 import QtCore

from core.annotations.model import Disease
from desktop.app import create_app
from desktop.main_window import MainWindow

READER = "dr-lee"


def wait(app, condition, timeout_s: float = 900) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        if time.time() > deadline:
            raise SystemExit("timed out")
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)


def settle(app, seconds: float = 1.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        app.processEvents()
        time.sleep(0.01)


def capture(app, window, path: Path) -> None:
    settle(app)
    if os.environ.get("DISPLAY") and shutil.which("import") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        subprocess.run(["import", "-window", "root", str(path)], check=True)
    else:
        window.grab().save(str(path))
    print(f"wrote {path}")


def run_model_where_missing(app, window) -> None:
    session = window.controller.session
    missing = [k for k in session.keys if not session.study.prediction_path(session.model_id or "-", *k).is_file()]
    if missing and window.runner.state == "ready":
        done = []
        window.runner.finished.connect(lambda *args: done.append(args))
        window.runner.run(session.study, missing)
        wait(app, lambda: done)


def first_picture(window) -> None:
    c = window.controller
    case = c.session.keys[len(c.session.keys) // 4][0]
    c.show(next(k for k in c.session.keys if k[0] == case))
    c.accept_model()
    c.reviewed_next()
    c.reviewed_next()
    c.accept_model()
    mine = c._mine.vertebrae
    target = max(range(len(mine)), key=lambda i: (mine[i].probabilities or {}).get("OVCF", 0))
    c.select(target)
    c.toggle_disease(Disease.KD)
    c.select(target)


def second_picture(window) -> None:
    c, view = window.controller, window.viewer
    filters = window.case_list.filters
    filters.disease.setCurrentIndex(filters.disease.findData("OVCF"))
    c.show(window.case_list.visible_keys()[-1])
    c.accept_model()
    c.set_overlay("mine")
    window.toggle_help()
    boxes = [v.box for v in c._mine.vertebrae]
    if boxes:
        x1, x2 = min(b.x1 for b in boxes), max(b.x2 for b in boxes)
        y1, y2 = min(b.y1 for b in boxes), max(b.y2 for b in boxes)
        view._fitted = False
        view.view.setRange(QtCore.QRectF(x1 - 160, y1 - 30, x2 - x1 + 260, y2 - y1 + 60), padding=0)
        c.select(len(boxes) - 1)


class _Waiter:
    """What ``workspace_helpers.drag`` needs of qtbot: ``wait(ms)``."""

    def __init__(self, app) -> None:
        self.app = app

    def wait(self, ms: int) -> None:
        settle(self.app, ms / 1000)


def third_picture(window) -> None:
    from tests.desktop.workspace_helpers import drag

    c, view = window.controller, window.viewer
    c.show(c.session.keys[len(c.session.keys) // 2])
    c.accept_model()
    c.set_overlay("mine")
    boxes = sorted((v.box for v in (c._mine.vertebrae if c._mine else ())), key=lambda b: b.y1)
    if not boxes:
        return
    low, high = boxes[len(boxes) * 2 // 3], boxes[len(boxes) * 2 // 3 - 2]
    view._fitted = False
    view.view.setRange(QtCore.QRectF(low.x1 - 160, high.y1 - 40, low.width + 360, low.y2 - high.y1 + 80), padding=0)
    waiter = _Waiter(QtCore.QCoreApplication.instance())
    waiter.wait(300)
    view.start_measure("ruler")
    drag(waiter, view, (low.x1 + low.width * 0.5, low.y1 + 1), (low.x1 + low.width * 0.5, low.y2 - 1), steps=8)
    view.start_measure("roi")
    drag(waiter, view, (high.x1 + high.width * 0.25, high.y1 + high.height * 0.3),
         (high.x1 + high.width * 0.75, high.y1 + high.height * 0.7), steps=8)


def fourth_picture(window) -> None:
    from core.review.confidence import ModelCall, is_unsure

    c = window.controller
    window.case_list.filters.low_confidence.setChecked(True)
    shown = window.case_list.visible_keys()
    if not shown:
        return
    c.show(shown[0])
    c.set_overlay("model")
    result = c.session.model_result(shown[0])
    unsure = [i for i, v in enumerate(result.vertebrae) if is_unsure(v, ModelCall.of(result))]
    if unsure:
        c.select_model(unsure[0])


def open_window(app, study: Path, reader: str) -> MainWindow:
    """The main window at the screenshots' size with ``study`` open, its model loaded and its slices scanned."""
    window = MainWindow(reader=reader)
    window.setGeometry(0, 0, 1400, 900)
    window.show()
    opened = []
    window.studyOpened.connect(opened.append)
    window.open_path(study)
    wait(app, lambda: opened)
    wait(app, lambda: window.runner.state in ("ready", "failed", "none"))
    wait(app, lambda: not window.controller.summaries.scanning)
    return window


def picture(app, study: Path, scene, path: Path) -> None:
    window = open_window(app, study, READER)
    run_model_where_missing(app, window)
    wait(app, lambda: not window.controller.summaries.scanning)
    scene(window)
    capture(app, window, path)
    window.close()
    settle(app, 0.3)


def main(study: Path, out: Path) -> None:
    app = create_app()
    picture(app, study, first_picture, out / "review-workspace.png")
    picture(app, study, second_picture, out / "review-zoomed.png")
    picture(app, study, third_picture, out / "viewer-measure.png")
    picture(app, study, fourth_picture, out / "review-low-confidence.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
