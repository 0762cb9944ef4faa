"""``vertebra-review bench gui``: how fast the review workspace responds, measured offscreen in the real window.

- ``switch_ms``: the next slice shown with its boxes and painted (1024 x 1024 CT, 20 reader + 20 model boxes), as
  in review, where the next slice has been read ahead; ``switch_cold_ms`` reads it from disk too.
- ``drag_ms``: one frame while drag-resizing a box (a mouse move handled and the view painted).
- ``open_ms``: from "open this 300-slice study" to its first image on screen.
- ``gui_block_ms``: the longest the GUI thread did not answer (a 5 ms timer's longest gap) while the diagnosis
  pipeline (random weights, the app's CPU configuration) ran in the background; ``gui_block_paging_ms`` the same
  while the reader pages through slices every 100 ms (the gaps then include the switches' own work).

Each is the median over the runs, with the worst run as ``*_ms_max``. Figures, never pass/fail.
"""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from desktop.benchmark_data import large_slice_study, many_slice_study

AIMS = {"switch": 16.0, "drag": 16.0, "open": 1000.0, "gui_block": 50.0}


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


def _switch_times(app, window, switches: int, cold: bool) -> list[float]:
    controller, viewport = window.controller, window.viewer.graphics.viewport()
    times = []
    for number in range(switches):
        _settle(app, 20)
        if cold:
            controller.session._images.clear()
        started = time.perf_counter()
        controller.step(1 if number % 12 < 11 else -11)
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


def _random_pipeline():
    """The diagnosis pipeline with random weights in the bundled models' CPU configuration, or None."""
    try:
        import torch

        from core.benchmarks.diagnose import preset_configs
        from core.models.classifier import VertebraClassifier, build_classifier
        from core.models.detector import VertebraDetector, build_detector
        from core.models.devices import inference_compute
        from core.models.pipeline import DiagnosisPipeline
        from core.models.registry import ModelSet
    except ImportError:
        return None
    torch.manual_seed(0)
    detector_config, classifier_config = preset_configs("fast")
    compute = inference_compute("cpu")
    detector = VertebraDetector(build_detector(detector_config), detector_config, compute)
    classifier = VertebraClassifier(build_classifier(classifier_config), classifier_config, compute)
    models = ModelSet(Path("."), "bench-random", Path("."), None, demo=True)
    return DiagnosisPipeline(models, detector, classifier, threshold=0.05)


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
    timer.start(5)
    if paging:
        pager.start(100)
    runner.run(controller.session.study, keys)
    _wait_for(app, lambda: bool(done), timeout_s=600)
    timer.stop()
    pager.stop()
    if isinstance(done[0], str):
        raise RuntimeError(f"the model run failed: {done[0]}")
    return max(b - a for a, b in itertools.pairwise(ticks)) * 1000 if len(ticks) > 1 else 0.0


def _summary(name: str, values: list[float], unit: str = "ms") -> dict[str, float]:
    return {f"{name}_{unit}": round(statistics.median(values), 2), f"{name}_{unit}_max": round(max(values), 2)}


def bench_gui(repeats: int = 5, *, model_slices: int = 3) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from desktop.app import create_app

    with tempfile.TemporaryDirectory(prefix="vr-bench-gui-") as scratch:
        os.environ["VERTEBRA_REVIEW_CONFIG_DIR"] = str(Path(scratch) / "config")  # never the user's own settings
        app = create_app()
        large = large_slice_study(Path(scratch) / "large")
        many = many_slice_study(Path(scratch) / "many", large)
        result: dict[str, Any] = {}
        window, _ = _open_window(app, large.root)
        _settle(app, 200)
        warm = _switch_times(app, window, 3, cold=False)  # first paints build caches
        result |= _summary("switch", _switch_times(app, window, max(repeats, 12), cold=False))
        result |= _summary("switch_cold", _switch_times(app, window, max(repeats, 6), cold=True))
        result |= _summary("drag", _drag_frames(app, window, max(repeats * 4, 20)))
        pipeline = _random_pipeline()
        if pipeline is not None:
            runs = max(1, min(repeats, 3))
            result |= _summary("gui_block", [_gui_block(app, window, pipeline, model_slices, paging=False)
                                             for _ in range(runs)])
            result |= _summary("gui_block_paging", [_gui_block(app, window, pipeline, model_slices, paging=True)
                                                    for _ in range(runs)])
        _close(app, window)
        opens = []
        for number in range(repeats + 1):
            window, elapsed = _open_window(app, many.root)
            if number:  # the first run imports the rest of the app's modules
                opens.append(elapsed)
            _close(app, window)
        result |= _summary("open", opens)
        del warm
    result["lines"] = _lines(result, repeats)
    return result


def _lines(result: dict[str, Any], repeats: int) -> list[str]:
    rows = [
        ("switch", "switch slice + redraw, 1024x1024, 20 reader + 20 model boxes (read ahead)"),
        ("switch_cold", "the same, reading the slice from disk"),
        ("drag", "one frame while drag-resizing a box"),
        ("open", "open a 300-slice study to its first image"),
        ("gui_block", "longest GUI-thread block while the model runs in the background"),
        ("gui_block_paging", "the same while paging through slices every 100 ms (includes the switches)"),
    ]
    lines = [f"bench gui (offscreen, median and max; {repeats} repeats or more)"]
    for key, text in rows:
        if f"{key}_ms" in result:
            aim = f"  (aim <= {AIMS[key]:g} ms)" if key in AIMS else ""
            lines.append(f"{text}: {result[f'{key}_ms']:.1f} ms, max {result[f'{key}_ms_max']:.1f} ms{aim}")
        else:
            lines.append(f"{text}: not measured (the model code is not available)")
    return lines
