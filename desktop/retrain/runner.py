"""A retrain in a child process, as Qt signals: progress events, the result, an error, or a cancel.

The child runs ``target(connection, study_root, options)`` (by default
:func:`core.training.retrain_child.run_retrain`), started and supervised by :func:`desktop.workers.
start_child_process`. One retrain at a time: :meth:`start` refuses while one runs. A child that ends without a
result (killed, crashed) is reported with its exit code; nothing is activated then, because the core activates only
after the gate, with an atomic switch.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6 import QtCore

from core.training.retrain_child import run_retrain
from desktop.workers import ChildProcess, start_child_process

Target = Callable[..., None]


def exit_text(code: int | None) -> str:
    """``exit code 3`` or ``killed by signal SIGKILL``."""
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class RetrainRunner(QtCore.QObject):
    """Signals, always on the GUI thread: ``progressed(dict)`` for each progress event; then exactly one of
    ``succeeded(dict)`` (the result), ``failed(str)`` or ``cancelled()``; then ``finished()``."""

    started = QtCore.Signal()
    progressed = QtCore.Signal(object)
    succeeded = QtCore.Signal(object)
    failed = QtCore.Signal(str)
    cancelled = QtCore.Signal()
    finished = QtCore.Signal()

    def __init__(self, target: Target | None = None, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        #: The child's body, ``target(connection, study_root, options)`` (tests give a stand-in).
        self.target = target or run_retrain
        self.child: ChildProcess | None = None
        self.study_root: Path | None = None
        self._result: dict[str, Any] | None = None
        self._error: str | None = None

    @property
    def busy(self) -> bool:
        return self.child is not None

    @property
    def process(self):
        """The running child's :class:`multiprocessing.Process` (None when idle)."""
        return self.child.process if self.child is not None else None

    def start(self, study_root: str | Path, options: Mapping[str, Any]) -> bool:
        """Start a retrain of ``study_root`` with ``options`` (RetrainOptions fields); False while one runs."""
        if self.busy:
            return False
        self._result, self._error = None, None
        self.study_root = Path(study_root)
        self.child = start_child_process(self.target, str(study_root), dict(options),
                                         on_message=self._on_message, on_exit=self._on_exit,
                                         name="vertebra-review-retrain")
        self.started.emit()
        return True

    def cancel(self) -> None:
        """Stop the retrain: terminate, then kill after a short grace (``cancelled`` follows when it has ended)."""
        if self.child is not None:
            self.child.stop()

    def _on_message(self, message: Any) -> None:
        if not (isinstance(message, tuple) and len(message) == 2):
            return
        kind, payload = message
        if kind == "progress" and isinstance(payload, dict):
            self.progressed.emit(payload)
        elif kind == "result" and isinstance(payload, dict):
            self._result = payload
        elif kind == "error":
            self._error = str(payload)

    def _on_exit(self, code: int | None, stopped: bool) -> None:
        self.child = None
        if stopped and self._result is None:
            self.cancelled.emit()
        elif self._result is not None:
            self.succeeded.emit(self._result)
        elif self._error is not None:
            self.failed.emit(self._error)
        else:
            self.failed.emit(f"the retrain process ended without a result ({exit_text(code)}); nothing was "
                             "activated and the active model is unchanged")
        self.finished.emit()
