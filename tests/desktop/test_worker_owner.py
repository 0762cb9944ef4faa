"""A background job whose owner is deleted before it ends: its late answer is dropped, not delivered to a deleted
object (which raised "Signal source has been deleted" in the event loop when a window closed mid-scan)."""

from __future__ import annotations

import threading

from PySide6 import QtCore

from desktop.workers import active_workers, run_in_background


class Owner(QtCore.QObject):
    done = QtCore.Signal()


def test_callbacks_of_a_deleted_owner_are_skipped(qtbot):
    release = threading.Event()
    owner, calls = Owner(), []
    owner.done.connect(lambda: calls.append("signal"))
    run_in_background(release.wait, 10, owner=owner, on_result=lambda _: calls.append("result"),
                      on_finished=owner.done.emit)
    owner.deleteLater()
    qtbot.waitUntil(lambda: not _alive(owner), timeout=5_000)
    release.set()
    qtbot.waitUntil(lambda: not active_workers(), timeout=10_000)
    assert calls == []


def test_callbacks_of_a_living_owner_run(qtbot):
    owner, calls = Owner(), []
    owner.done.connect(lambda: calls.append("signal"))
    run_in_background(lambda: 7, owner=owner, on_result=calls.append, on_finished=owner.done.emit)
    qtbot.waitUntil(lambda: not active_workers(), timeout=10_000)
    qtbot.waitUntil(lambda: calls == [7, "signal"], timeout=5_000)


def _alive(obj: QtCore.QObject) -> bool:
    import shiboken6

    return shiboken6.isValid(obj)


def test_a_runtime_error_reaches_on_error_and_the_job_finishes(qtbot):
    """superqt takes a RuntimeError from a worker for "the worker was deleted" and emitted neither errored nor
    finished: a model run that ran out of memory, or a study whose JSON nests too deep, then waited for ever."""
    from desktop.workers import FailedInBackground, run_job

    def out_of_memory():
        raise RuntimeError("CUDA out of memory")

    def too_deep():
        yield 1
        raise RecursionError("maximum recursion depth exceeded")

    for start in (lambda **c: run_in_background(out_of_memory, **c), lambda **c: run_job(too_deep(), **c)):
        errors, finished = [], []
        start(on_error=errors.append, on_finished=lambda f=finished: f.append(True))
        qtbot.waitUntil(lambda f=finished: f == [True], timeout=10_000)
        assert len(errors) == 1 and isinstance(errors[0], FailedInBackground)
        assert str(errors[0]) in ("RuntimeError: CUDA out of memory",
                                  "RecursionError: maximum recursion depth exceeded")
        assert isinstance(errors[0].error, RuntimeError)
    qtbot.waitUntil(lambda: not active_workers(), timeout=10_000)
