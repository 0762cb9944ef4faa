"""``vertebra-review --smoke-test [STUDY]``: does the installed (or packaged) app work on this machine?

It opens the demo study (or STUDY), runs the study's active models on one slice through the diagnosis pipeline and
checks that at least one vertebra box comes back, then starts the Qt app (offscreen unless a display is asked for),
creates and shows the main window, opens the study in it and waits until it is on screen. Any failure raises
:class:`SmokeTestFailed` with a one-line reason; the command line prints it and exits non-zero.

Nothing is written outside a temporary settings folder, except the study lock the window takes and releases as
it does for any study (none when the study folder is read-only).

Environment (all optional): ``VERTEBRA_REVIEW_SMOKE_STUDY`` (the study when none is given; default the bundled
``resources/demo``), ``VERTEBRA_REVIEW_SMOKE_THRESHOLD`` (detector score threshold; default the model's),
``VERTEBRA_REVIEW_SMOKE_TIMEOUT`` (seconds to wait for the window to open the study; default 120),
``VERTEBRA_REVIEW_SMOKE_DISPLAY=1`` (use the real display instead of the offscreen platform).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import VertebraReviewError
from core.resources import resources_dir
from core.review.preferences import CONFIG_ENV

STUDY_ENV = "VERTEBRA_REVIEW_SMOKE_STUDY"
THRESHOLD_ENV = "VERTEBRA_REVIEW_SMOKE_THRESHOLD"
TIMEOUT_ENV = "VERTEBRA_REVIEW_SMOKE_TIMEOUT"
DISPLAY_ENV = "VERTEBRA_REVIEW_SMOKE_DISPLAY"
DEFAULT_TIMEOUT_S = 120.0
SMOKE_READER = "smoke-test"


class SmokeTestFailed(VertebraReviewError):
    """The smoke test found a problem; the message is one line that says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"smoke test failed: {' '.join(str(reason).split())}")


@dataclass(frozen=True)
class SmokeResult:
    study: Path
    model_id: str
    demo_model: bool
    compute: str
    case: str
    slice_id: str
    vertebrae: int
    diagnosed: int
    window_title: str
    seconds: float

    def summary(self) -> str:
        demo = ", demo model" if self.demo_model else ""
        return (f"smoke test passed: {self.vertebrae} vertebrae ({self.diagnosed} classified) on "
                f"{self.case}/{self.slice_id} of {self.study} by model {self.model_id}{demo} on {self.compute}; "
                f"main window shown ({self.window_title!r}); {self.seconds:.1f} s")


def default_study() -> Path:
    """``$VERTEBRA_REVIEW_SMOKE_STUDY``, else the bundled demo study (``resources/demo``)."""
    override = os.environ.get(STUDY_ENV)
    return Path(override) if override else resources_dir() / "demo"


def _env_float(name: str, default: float | None) -> float | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise SmokeTestFailed(f"${name} is {text!r}, not a number") from None


def run_smoke_test(study: str | Path | None = None, *, threshold: float | None = None,
                   timeout_s: float | None = None) -> SmokeResult:
    """Run the whole smoke test; returns what it saw, or raises :class:`SmokeTestFailed`."""
    started = time.perf_counter()
    if os.environ.get(DISPLAY_ENV) != "1":
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    root = Path(study) if study else default_study()
    threshold = threshold if threshold is not None else _env_float(THRESHOLD_ENV, None)
    timeout_s = timeout_s if timeout_s is not None else _env_float(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)
    try:
        found = _diagnose_one_slice(root, threshold)
        title = _show_study(root, found["pipeline"], float(timeout_s or DEFAULT_TIMEOUT_S))
    except SmokeTestFailed:
        raise
    except VertebraReviewError as exc:
        raise SmokeTestFailed(str(exc)) from exc
    except Exception as exc:  # whatever broke (a missing library in a bundle): say it in one line
        raise SmokeTestFailed(f"{type(exc).__name__}: {exc}") from exc
    pipeline = found.pop("pipeline")
    return SmokeResult(study=root, model_id=pipeline.model_id, demo_model=pipeline.is_demo,
                       compute=pipeline.detector.compute.describe(), window_title=title,
                       seconds=time.perf_counter() - started, **found)


def _diagnose_one_slice(root: Path, threshold: float | None) -> dict[str, Any]:
    """Load the study's active model set and run it on the middle slice of the first case."""
    from core.models.pipeline import DiagnosisPipeline
    from core.models.registry import active_model_dir
    from core.study.images import study_model_input
    from core.study.layout import Study

    if not Study.is_study(root):
        raise SmokeTestFailed(f"{root}: not a study folder (no study.json); give a study, or set ${STUDY_ENV}")
    study = Study.open(root)
    model_dir = active_model_dir(root)
    if model_dir is None:
        raise SmokeTestFailed(f"{root / 'models'}: the study has no active model set")
    cases = study.cases()
    slices = study.slices(cases[0]) if cases else []
    if not slices:
        raise SmokeTestFailed(f"{root}: the study has no slices")
    case, slice_id = cases[0], slices[len(slices) // 2]
    options = {} if threshold is None else {"threshold": threshold}
    pipeline = DiagnosisPipeline.load(model_dir, **options)
    given = study_model_input(study, case, slice_id, pipeline.rendering)
    result = pipeline.diagnose_images([given.pixels], [given.spacing_mm])[0]
    if not result.vertebrae:
        raise SmokeTestFailed(f"model {pipeline.model_id} ({model_dir}) found no vertebra on {case}/{slice_id} "
                              f"at score threshold {pipeline.threshold}")
    return {"pipeline": pipeline, "case": case, "slice_id": slice_id, "vertebrae": len(result.vertebrae),
            "diagnosed": sum(1 for v in result.vertebrae if v.diagnosed)}


@contextlib.contextmanager
def _temporary_settings() -> Iterator[Path]:
    """Preferences and recovery journals go to a temporary folder (yielded): the smoke test leaves the user's
    alone."""
    before = os.environ.get(CONFIG_ENV)
    with tempfile.TemporaryDirectory(prefix="vertebra-review-smoke-") as folder:
        os.environ[CONFIG_ENV] = folder
        try:
            yield Path(folder)
        finally:
            if before is None:
                os.environ.pop(CONFIG_ENV, None)
            else:
                os.environ[CONFIG_ENV] = before


@contextlib.contextmanager
def _dialogs_recorded() -> Iterator[list[str]]:
    """Message boxes would block an offscreen app: record them instead (questions are answered No)."""
    from PySide6 import QtWidgets

    box = QtWidgets.QMessageBox
    shown: list[str] = []

    def recorder(kind: str):
        def record(parent, title, text, *args, **kwargs):
            shown.append(f"{kind} {title!r}: {text}")
            return box.StandardButton.No if kind == "question" else box.StandardButton.Ok

        return staticmethod(record)

    kinds = ("warning", "critical", "information", "question", "about")
    saved = {kind: box.__dict__[kind] for kind in kinds if kind in box.__dict__}
    for kind in kinds:
        setattr(box, kind, recorder(kind))
    try:
        yield shown
    finally:
        for kind in kinds:
            if kind in saved:
                setattr(box, kind, saved[kind])
            else:
                delattr(box, kind)


def _show_study(root: Path, pipeline: Any, timeout_s: float) -> str:
    """Start the app, show the main window, open the study in it; returns the window title once it is open."""
    with _temporary_settings() as scratch:
        from core.progress import run
        from core.review.opening import working_copy

        root = run(working_copy(root, scratch / "study"))  # the study (perhaps in a read-only bundle) stays as it is
        app_module = importlib.import_module("desktop.app")
        from desktop.main_window import MainWindow
        from desktop.workers import active_workers, stop_all_workers

        app = app_module.create_app()
        with _dialogs_recorded() as dialogs:
            window = MainWindow(reader=SMOKE_READER, pipeline_loader=lambda _path: pipeline)
            try:
                window.show()
                app.processEvents()
                if not window.isVisible():
                    raise SmokeTestFailed("the main window was created but is not shown")
                opened, failure = _open_and_wait(window, root, timeout_s)
                title = window.windowTitle()
            finally:
                window.close()
                _wind_down(app, stop_all_workers, active_workers)
                window.deleteLater()
                app.processEvents()
        if dialogs:
            raise SmokeTestFailed(f"the app showed a message: {dialogs[0]}")
        if failure:
            raise SmokeTestFailed(f"the window could not open {root}: {failure}")
        if not opened:
            raise SmokeTestFailed(f"the window did not open {root} within {timeout_s:.0f} s")
        return title


def _wind_down(app: Any, stop_all_workers: Any, active_workers: Any, timeout_s: float = 30.0) -> None:
    """Stop the background work the window started and let its last signals arrive before the window goes."""
    from PySide6 import QtCore

    stop_all_workers()
    deadline = time.monotonic() + timeout_s
    while active_workers() and time.monotonic() < deadline:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        QtCore.QThread.msleep(10)
    QtCore.QThreadPool.globalInstance().waitForDone(int(timeout_s * 1000))
    app.processEvents()


def _open_and_wait(window: Any, root: Path, timeout_s: float) -> tuple[bool, str]:
    """Open ``root`` in the window and run the event loop until it is open, it failed, or the time is up."""
    from PySide6 import QtCore

    loop = QtCore.QEventLoop()
    outcome = {"opened": False, "failure": ""}

    def on_opened(_opened: object) -> None:
        outcome["opened"] = True
        loop.quit()

    def on_failed(text: str) -> None:
        outcome["failure"] = text
        loop.quit()

    window.studyOpened.connect(on_opened)
    window.openFailed.connect(on_failed)
    QtCore.QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    window.open_path(root)
    if not (outcome["opened"] or outcome["failure"]):
        loop.exec()
    return bool(outcome["opened"]), str(outcome["failure"])
