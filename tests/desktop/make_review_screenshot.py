"""Make ``review-workspace.png``, the README's first picture (not a test; pytest does not collect it): the demo study
opened by a new reader, two slices of ``case-0002`` reviewed, the third in review with the model's result accepted,
the top box selected and relabelled Kümmell's disease.

    xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python tests/desktop/make_review_screenshot.py OUT
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["VERTEBRA_REVIEW_CONFIG_DIR"] = tempfile.mkdtemp(prefix="vr-review-screenshot-")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.annotations.model import Disease
from desktop.app import create_app
from desktop.main_window import MainWindow


def wait(app, condition, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        if time.time() > deadline:
            raise SystemExit("timed out")
        app.processEvents()
        time.sleep(0.02)


def settle(app, seconds: float = 0.5) -> None:
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.02)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = create_app([])
    window = MainWindow(reader="dr-lee")
    window.resize(1400, 900)
    window.show()
    window.open_demo()
    wait(app, lambda: window.opened is not None)
    wait(app, lambda: window.runner.state == "ready" and not window.runner.busy)  # the model loaded
    settle(app, 1)
    controller = window.controller
    keys = [k for k in window.opened.session.keys if k.case == "case-0002"]
    controller.show(keys[0], fit=True)
    for _ in range(2):  # two slices reviewed: the model's result accepted, then Enter
        settle(app)
        controller.accept_model()
        controller.reviewed_next()
    settle(app)
    controller.accept_model()
    controller.select(0)
    controller.set_normal()
    controller.toggle_disease(Disease.KD)
    settle(app, 2)
    window.grab().save(str(out / "review-workspace.png"))
    window.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
