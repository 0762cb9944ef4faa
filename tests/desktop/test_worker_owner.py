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
