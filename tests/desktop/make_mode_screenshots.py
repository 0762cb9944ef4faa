"""Make the README screenshots of the consensus mode and of a retrain (not a test; pytest does not collect it).

    xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python tests/desktop/make_mode_screenshots.py consensus STUDY resources/screenshots/consensus-mode.png
    xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python tests/desktop/make_mode_screenshots.py retrain STUDY resources/screenshots/retrain.png

consensus: STUDY is a three-reader study without a consensus yet (for example ``vertebra-review synth /tmp/c
--cases 4 --seed 5 --disagreement 0.2`` with ``/tmp/c/consensus/*`` deleted); a coordinator takes a few decisions,
then the picture shows a disagreement with the three readers' boxes overlaid. retrain: STUDY has an active model
and reviewed or agreed slices; the picture is taken while the classifier trains its second epoch, so both loss
curves and both validation curves are drawn. Both work on a scratch copy of STUDY.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ["VERTEBRA_REVIEW_CONFIG_DIR"] = tempfile.mkdtemp(prefix="vr-screenshots-")

from PySide6 import QtCore, QtWidgets

from desktop.app import create_app
from tests.desktop.make_screenshots import capture, open_window, settle, wait

QtWidgets.QMessageBox.question = staticmethod(lambda *args, **kwargs: QtWidgets.QMessageBox.StandardButton.Yes)


def consensus_picture(app, study: Path, out: Path) -> None:
    window = open_window(app, study, "coordinator")
    k = window.consensus
    k.set_active(True)
    wait(app, lambda: k.session is not None and k.ref is not None)
    for box in window.consensus_panel.overview.checks.values():  # the readers at the meeting agree
        box.setChecked(True)
    k.accept_unanimous()
    for _ in range(4):  # a few decisions, so that the session shows some progress
        if k.ref is not None and k.session.view(k.ref).majority is not None:
            k.take_majority()
        else:
            k.step(1)
    refs = k.session.disagreements()
    labels = {ref: set(k.session.view(ref).labels.values()) for ref in refs}
    chosen = max(refs, key=lambda ref: ("no box" not in labels[ref], len(labels[ref])))  # three boxes, most labels
    k.show(chosen)
    box = k.session.view(chosen).group.box
    view = window.viewer
    view._fitted = False
    view.view.setRange(QtCore.QRectF(box.x1 - 190, box.y1 - 150, box.width + 360, box.height + 300), padding=0)
    capture(app, window, out)
    k.leave()
    window.close()
    settle(app, 0.3)


def retrain_picture(app, study: Path, out: Path) -> None:
    window = open_window(app, study, "dr-lee")
    window.retrain.ask_options = lambda parent, plan: {"detector": True, "classifier": True, "from_scratch": False,
                                                        "epochs": 3, "margin": 0.02}
    window.retrain.ask_retrain()
    wait(app, lambda: window.retrain_runner.busy)
    tracker = lambda: window.retrain.tracker  # noqa: E731
    wait(app, lambda: (tracker().component == "classifier" and tracker().curves["classifier"].metrics.get("mean_auc"))
         or not window.retrain_runner.busy)
    window.controller.step(1)  # reviewing goes on meanwhile
    capture(app, window, out)
    window.close()  # stops the retrain
    settle(app, 0.3)


def main(kind: str, study: Path, out: Path) -> None:
    app = create_app()
    scratch = Path(tempfile.mkdtemp(prefix="vr-screenshot-study-")) / "study"
    shutil.copytree(study, scratch)
    started = time.time()
    (consensus_picture if kind == "consensus" else retrain_picture)(app, scratch, out)
    print(f"{kind}: {time.time() - started:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
