"""Starting the desktop app."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.resources import resources_dir
from desktop.qt_fixes import protect_none

protect_none()  # before any window is made (see desktop/qt_fixes.py)

from desktop.main_window import APP_NAME, MainWindow  # noqa: E402
from desktop.workers import stop_all_workers  # noqa: E402


def configure_pyqtgraph() -> None:
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)


def app_icon() -> QtGui.QIcon:
    """The app's icon at every size that ships in ``resources/icons``."""
    icon = QtGui.QIcon()
    for png in sorted((resources_dir() / "icons").glob("vertebra-review-*.png")):
        icon.addFile(str(png))
    return icon


def create_app(argv: list[str] | None = None) -> QtWidgets.QApplication:
    configure_pyqtgraph()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(argv or [sys.argv[0]])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("VertebraReview")
    app.setDesktopFileName("vertebra-review")  # matches installer/vertebra-review.desktop on Linux
    app.setWindowIcon(app_icon())
    app.aboutToQuit.connect(stop_all_workers)
    return app


#: Set by ``bench gui``: print ``window`` once the window is painted and ``image`` with its first slice, then quit.
STARTUP_PROBE_ENV = "VERTEBRA_REVIEW_STARTUP_PROBE"


def _probe_startup(app: QtWidgets.QApplication, window: MainWindow, wants_image: bool) -> None:
    def say(what: str) -> None:
        print(what, flush=True)  # noqa: T201  (read by the benchmark through a pipe)

    def painted() -> None:
        window.repaint()
        say("window")
        if not wants_image:
            app.quit()

    QtCore.QTimer.singleShot(0, painted)
    if wants_image:
        window.controller.sliceShown.connect(lambda *_: (say("image"), app.quit()))
        window.openFailed.connect(lambda text: (say(f"failed {text}"), app.quit()))


def main(path: Path | None = None, demo: bool = False, reader: str | None = None) -> int:
    """``vertebra-review gui [PATH] [--demo] [--reader ID]``: a study opens as it is; images, DICOM and NIfTI are
    imported into a study of their own first; ``--demo`` opens a working copy of the bundled demo study."""
    app = create_app()
    window = MainWindow(reader=reader)
    window.show()
    if os.environ.get(STARTUP_PROBE_ENV):
        _probe_startup(app, window, wants_image=path is not None or demo)
    if path is not None:
        window.open_path(path)
    elif demo:
        window.open_demo()
    return app.exec()
