"""``vertebra-review bench gui``: how fast the review workspace responds, measured offscreen in the real window.

- ``switch_ms``: the next slice shown with its boxes and painted (1024 x 1024 CT, 20 reader + 20 model boxes), as
  in review, where the next slice has been read ahead; ``switch_cold_ms`` reads it from disk too.
- ``drag_ms``: one frame while drag-resizing a box (a mouse move handled and the view painted).
- ``open_ms``: from "open this 300-slice study" to its first image on screen.
- ``startup_window_ms``: from starting ``vertebra-review gui --demo`` (a new process) to its window painted on a warm
  start (Python's compiled modules and the OS file cache already there, as on a second start); ``startup_image_ms``
  to the demo study's first slice on screen; ``startup_first_*`` the first start of the run, with no compiled modules
  when this Python does not write them (``PYTHONDONTWRITEBYTECODE``).
- ``gui_block_ms``: the longest the GUI thread did not answer (a 5 ms timer's longest gap) while the diagnosis
  pipeline (random weights, the app's CPU configuration) ran in the background; ``gui_block_paging_ms`` the same
  while the reader pages through slices every 100 ms (the gaps then include the switches' own work).

Each is the median over the runs, with the worst run as ``*_ms_max``. Figures, never pass/fail. At the ``smoke``
size (what the test suite runs) the studies have 2 and 4 slices, each gesture is timed a few times, the model runs
once, on one slice, at the smoke size of :mod:`core.benchmarks.models`. The benchmark uses the running QApplication
when there is one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from core.benchmarks import scale_for
from core.review.preferences import CONFIG_ENV
from core.study.layout import Study
from desktop.benchmark_data import large_slice_study, many_slice_study

AIMS = {"switch": 16.0, "drag": 16.0, "open": 1000.0, "gui_block": 50.0, "startup_window": 3000.0}


def _settle(app: QtWidgets.QApplication, ms: int = 30) -> None:
    """Let queued events and background reads finish."""
    QtCore.QThreadPool.globalInstance().waitForDone(5_000)
    deadline = time.perf_counter() + ms / 1000
    while time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.002)


def _wait_for(app: QtWidgets.QApplication, done: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not done():
        if time.perf_counter() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 5)


def _open_window(app: QtWidgets.QApplication, root: Path, loader=None):
    from desktop.main_window import MainWindow

    window = MainWindow(reader="bench", pipeline_loader=loader or (lambda path: None))
    window.resize(1400, 900)
    window.show()
    shown: list[Any] = []
    window.controller.sliceShown.connect(shown.append)
    started = time.perf_counter()
    window.open_path(root)
    _wait_for(app, lambda: bool(shown))
    elapsed = (time.perf_counter() - started) * 1000
    return window, elapsed


def _close(app: QtWidgets.QApplication, window) -> None:
    window.close()
    _settle(app)
    window.deleteLater()
    _settle(app)


def _switch_times(app, window, switches: int, cold: bool, slices: int) -> list[float]:
    """Time ``switches`` steps through the study's ``slices`` slices, back to the first after the last."""
    controller, viewport = window.controller, window.viewer.graphics.viewport()
    times = []
    for number in range(switches):
        _settle(app, 20)
        if cold:
            controller.session._images.clear()
        started = time.perf_counter()
        controller.step(1 if number % slices < slices - 1 else 1 - slices)
        viewport.repaint()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _mouse(viewport, kind, point, button, buttons) -> None:
    event = QtGui.QMouseEvent(kind, QtCore.QPointF(point), QtCore.QPointF(viewport.mapToGlobal(point)), button,
                              buttons, QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(viewport, event)


def _drag_frames(app, window, moves: int) -> list[float]:
    """Drag the selected box's bottom-right handle in ``moves`` steps; time each step's event and paint."""
    controller, view = window.controller, window.viewer
    controller.select(0)
    _settle(app)
    box = controller._mine.vertebrae[0].box
    viewport, left = view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton
    none = QtCore.Qt.MouseButton.NoButton
    start = view.image_to_viewport(box.x2, box.y2)
    _mouse(viewport, QtCore.QEvent.Type.MouseMove, start, none, none)
    _settle(app, 15)
    _mouse(viewport, QtCore.QEvent.Type.MouseButtonPress, start, left, left)
    times = []
    for step in range(1, moves + 1):
        _settle(app, 12)  # pyqtgraph takes at most one mouse move per 10 ms
        point = QtCore.QPoint(start.x() + step, start.y() + (step % 3))
        started = time.perf_counter()
        _mouse(viewport, QtCore.QEvent.Type.MouseMove, point, none, left)
        viewport.repaint()
        times.append((time.perf_counter() - started) * 1000)
    _mouse(viewport, QtCore.QEvent.Type.MouseButtonRelease, point, left, none)
    controller.undo()
    return times


def _random_pipeline(size: str):
    """The diagnosis pipeline with random weights in the bundled models' CPU configuration (``bench diagnose
    --preset fast``, built by the same code) at the benchmark's ``size``, or None without the model code."""
    try:
        from core.benchmarks.models import MODEL_SCALES, random_models
        from core.models.devices import inference_compute
        from core.models.pipeline import DiagnosisPipeline
        from core.models.registry import ModelSet
    except ImportError:
        return None
    detector, classifier = random_models("fast", inference_compute("cpu"), MODEL_SCALES[size])
    model_set = ModelSet(Path("."), "bench-random", Path("."), None, demo=True)
    return DiagnosisPipeline(model_set, detector, classifier, threshold=0.05)


def _gui_block(app, window, pipeline, slices: int, *, paging: bool) -> float:
    """Run the pipeline on ``slices`` slices through the window's runner (paging slices every 100 ms meanwhile
    when ``paging``); return the longest gap between ticks of a 5 ms timer on the GUI thread."""
    runner, controller = window.runner, window.controller
    runner.pipeline, runner.state = pipeline, "ready"
    ticks: list[float] = []
    timer = QtCore.QTimer()
    timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    pager = QtCore.QTimer()
    pager.timeout.connect(lambda: controller.step(1 if len(ticks) % 2 else -1))
    done: list[Any] = []
    runner.finished.connect(lambda *args: done.append(args))
    runner.runFailed.connect(lambda text: done.append(text))
    keys = controller.session.keys[:slices]
    _wait_for(app, lambda: not runner.busy)  # the last run's worker is let go after its result arrives
    timer.start(5)
    if paging:
        pager.start(100)
    if not runner.run(controller.session.study, keys):
        raise RuntimeError("the model runner did not start the run")
    _wait_for(app, lambda: bool(done), timeout_s=600)
    timer.stop()
    pager.stop()
    if isinstance(done[0], str):
        raise RuntimeError(f"the model run failed: {done[0]}")
    return max(b - a for a, b in itertools.pairwise(ticks)) * 1000 if len(ticks) > 1 else 0.0


def _summary(name: str, values: list[float], unit: str = "ms") -> dict[str, float]:
    return {f"{name}_{unit}": round(statistics.median(values), 2), f"{name}_{unit}_max": round(max(values), 2)}


@dataclass(frozen=True)
class GuiScale:
    """What ``bench gui`` opens and how often it measures (each at least ``repeats`` times): the slices of the large
    study, the cases x slices of the many-slice one, the switches, drag moves, slices a model run covers and runs."""

    slices: int = 12
    cases: int = 30
    per_case: int = 10
    switches: int = 40
    cold_switches: int = 12
    drag_moves: int = 20
    model_slices: int = 3
    model_runs: int = 3
    starts: int = 5


#: ``smoke``: two slices, a 2 x 2-slice study, a few of each gesture, one model run on one slice at the smoke size.
SCALES = {"full": GuiScale(), "smoke": GuiScale(2, 2, 2, 2, 1, 2, 1, 1, 1)}


@contextlib.contextmanager
def _own_settings(folder: Path) -> Iterator[None]:
    """Preferences and journals in ``folder`` (never the user's own), as they were afterwards."""
    before = os.environ.get(CONFIG_ENV)
    os.environ[CONFIG_ENV] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CONFIG_ENV, None)
        else:
            os.environ[CONFIG_ENV] = before


def _workspace_figures(app, study: Study, repeats: int, scale: GuiScale, size: str) -> dict[str, Any]:
    """Switching, dragging and model runs in the large study's window."""
    window, _ = _open_window(app, study.root)
    _settle(app, 200)
    _switch_times(app, window, 3, cold=False, slices=scale.slices)  # the first paints build caches
    result = _summary("switch", _switch_times(app, window, max(repeats, scale.switches), False, scale.slices))
    result |= _summary("switch_cold", _switch_times(app, window, max(repeats, scale.cold_switches), True, scale.slices))
    result |= _summary("drag", _drag_frames(app, window, max(repeats * 4, scale.drag_moves)))
    pipeline = _random_pipeline(size)
    if pipeline is not None:
        runs = range(max(1, min(repeats, scale.model_runs)))
        for key, paging in (("gui_block", False), ("gui_block_paging", True)):
            result |= _summary(key, [_gui_block(app, window, pipeline, scale.model_slices, paging=paging)
                                     for _ in runs])
    _close(app, window)
    return result


def _open_times(app, study: Study, repeats: int) -> list[float]:
    opens = []
    for number in range(repeats + 1):
        window, elapsed = _open_window(app, study.root)
        if number:  # the first run imports the rest of the app's modules
            opens.append(elapsed)
        _close(app, window)
    return opens


def _start_once(env: dict[str, str], timeout_s: float = 300.0) -> dict[str, float]:
    """Start the app on the demo study in a new process; the times its ``window`` and ``image`` lines arrived."""
    from desktop.app import STARTUP_PROBE_ENV

    command = [sys.executable, "-m", "desktop.cli", "gui", "--demo", "--reader", "bench"]
    times: dict[str, float] = {}
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          env=env | {STARTUP_PROBE_ENV: "1"}) as process:
        try:
            for line in process.stdout:  # type: ignore[union-attr]
                what = line.strip()
                if what.startswith("failed"):
                    raise RuntimeError(f"the app could not open the demo study: {what[7:]}")
                times[what] = (time.perf_counter() - started) * 1000
                if time.perf_counter() - started > timeout_s:
                    raise TimeoutError("the app did not show the demo study in time")
        finally:
            process.kill()
    if set(times) != {"window", "image"}:
        raise RuntimeError(f"the app stopped before showing the demo study (it said: {sorted(times)})")
    return times


def _startup_times(scratch: Path, runs: int) -> dict[str, float]:
    """A first start, then ``runs`` warm starts of the app in new processes. Compiled modules go to a scratch folder
    when this Python writes none, so that warm starts are as on a user's machine and the checkout stays clean."""
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    env[CONFIG_ENV] = str(scratch / "startup-config")
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    first = _start_once(env)
    warm = [_start_once(env) for _ in range(runs)]
    result = {f"startup_first_{key}_ms": round(value, 1) for key, value in first.items()}
    for key in ("window", "image"):
        result |= _summary(f"startup_{key}", [times[key] for times in warm])
    return result


def bench_gui(repeats: int = 5, *, size: str = "full") -> dict[str, Any]:
    """The figures, measured in this process's QApplication (one is made when there is none)."""
    scale = scale_for(SCALES, size)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from desktop.app import create_app

    with tempfile.TemporaryDirectory(prefix="vr-bench-gui-") as scratch, _own_settings(Path(scratch) / "config"):
        app = create_app()
        large = large_slice_study(Path(scratch) / "large", scale.slices)
        many = many_slice_study(Path(scratch) / "many", large, scale.cases, scale.per_case)
        result = _workspace_figures(app, large, repeats, scale, size)
        result |= _summary("open", _open_times(app, many, repeats))
        result |= _startup_times(Path(scratch), max(1, min(repeats, scale.starts)))
    result |= {"repeats": repeats, "size": size, "open_slices": scale.cases * scale.per_case}
    result["lines"] = _lines(result, repeats)
    return result


def _lines(result: dict[str, Any], repeats: int) -> list[str]:
    rows = [
        ("switch", "switch slice + redraw, 1024x1024, 20 reader + 20 model boxes (read ahead)"),
        ("switch_cold", "the same, reading the slice from disk"),
        ("drag", "one frame while drag-resizing a box"),
        ("open", f"open a {result['open_slices']}-slice study to its first image"),
        ("gui_block", "longest GUI-thread block while the model runs in the background"),
        ("gui_block_paging", "the same while paging through slices every 100 ms (includes the switches)"),
        ("startup_window", "warm start of `gui --demo` (a new process) to its window painted"),
        ("startup_image", "the same, to the demo study's first slice on screen"),
    ]
    lines = [f"bench gui (offscreen, median and max; {repeats} repeats or more)"]
    for key, text in rows:
        if f"{key}_ms" in result:
            aim = f"  (aim <= {AIMS[key]:g} ms)" if key in AIMS else ""
            lines.append(f"{text}: {result[f'{key}_ms']:.1f} ms, max {result[f'{key}_ms_max']:.1f} ms{aim}")
        else:
            lines.append(f"{text}: not measured (the model code is not available)")
    if "startup_first_window_ms" in result:
        lines.append(f"first start (compiled modules made in the run): window {result['startup_first_window_ms']:.0f}"
                     f" ms, first slice {result['startup_first_image_ms']:.0f} ms")
    return lines
