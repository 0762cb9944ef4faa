"""Background work for the GUI: the only place where threads and processes are started.

Functions run through superqt's workers. Progress generators (core's long jobs) run through :func:`run_job`: each
yielded :class:`~core.progress.Progress` is reported on the GUI thread, and ``quit()`` stops the job at its next
yield (``on_aborted`` is then called instead of ``on_result``). External programs (labelme) are started as separate
processes by :func:`start_program`, never imported.

Work that needs a hard stop and crash isolation (retraining) runs in a child process started by
:func:`start_child_process` (multiprocessing, spawn context) and supervised by a background thread that relays the
messages the child sends through its pipe, in order, to the GUI thread. :meth:`ChildProcess.stop` ends it: a
terminate of its process group, then a kill after a short grace; the supervisor waits for the process, so it leaves
neither an orphan nor a zombie, and a GPU's memory is freed with the process.
"""

from __future__ import annotations

import functools
import inspect
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Generator, Sequence
from multiprocessing.connection import Connection
from typing import Any

import shiboken6
from PySide6 import QtCore
from superqt.utils import WorkerBase, create_worker

from core.training.child_process import run_supervised

_active: set[WorkerBase] = set()
_children: set[ChildProcess] = set()
#: How often the supervisor looks at the pipe and the process (seconds).
POLL_S = 0.2
#: How long a stopped child has after the terminate signal before it is killed (seconds).
TERMINATE_GRACE_S = 3.0


class GuiCalls(QtCore.QObject):
    """Runs callables posted from any thread on the thread this object lives on (make it on the GUI thread): the
    review session's background writer reports its saves through :meth:`post`."""

    _posted = QtCore.Signal(object)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._posted.connect(self._run, QtCore.Qt.ConnectionType.QueuedConnection)

    def post(self, callback: Callable[[], Any]) -> None:
        self._posted.emit(callback)

    @QtCore.Slot(object)
    def _run(self, callback: Callable[[], Any]) -> None:
        callback()


def run_in_background(
    func: Callable[..., Any],
    *args: Any,
    on_result: Callable[[Any], Any] | None = None,
    on_error: Callable[[BaseException], Any] | None = None,
    on_progress: Callable[[Any], Any] | None = None,
    on_aborted: Callable[[], Any] | None = None,
    on_finished: Callable[[], Any] | None = None,
    owner: QtCore.QObject | None = None,
    **kwargs: Any,
) -> WorkerBase:
    """Start ``func(*args, **kwargs)`` on a worker thread and wire its signals to the callbacks (GUI thread).

    With an ``owner``, the callbacks are skipped once the owner's C++ object has been deleted (a window closed while
    the work was still running), so a late answer never reaches a deleted widget or signal.
    """
    if owner is not None:
        on_result, on_error, on_progress, on_aborted, on_finished = (
            _while_alive(owner, c) for c in (on_result, on_error, on_progress, on_aborted, on_finished))
    # Errors go to ``on_error`` when given; superqt would otherwise re-raise them in the event loop.
    worker = create_worker(_shielded(func), *args, _start_thread=False, _ignore_errors=on_error is not None,
                           **kwargs)
    if on_result is not None:
        worker.returned.connect(on_result)
    if on_error is not None:
        worker.errored.connect(on_error)
    if on_progress is not None and hasattr(worker, "yielded"):
        worker.yielded.connect(on_progress)
    if on_aborted is not None and hasattr(worker, "aborted"):
        worker.aborted.connect(on_aborted)

    def finished() -> None:
        _active.discard(worker)
        if on_finished is not None:
            on_finished()

    worker.finished.connect(finished)
    _active.add(worker)
    worker.start()
    return worker


class FailedInBackground(Exception):
    """A ``RuntimeError`` (PyTorch's out of memory, a recursion too deep) raised by background work, carried to
    ``on_error`` as this: superqt takes a ``RuntimeError`` from a worker for "the worker was deleted" and emits neither
    ``errored`` nor ``finished``, which left a model run or an opening study waiting for ever."""

    def __init__(self, error: RuntimeError) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


def _shielded(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a function or a generator function, which superqt tells apart) raising :class:`FailedInBackground`
    where it raised a ``RuntimeError``."""
    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            try:
                return (yield from func(*args, **kwargs))
            except RuntimeError as exc:
                raise FailedInBackground(exc) from exc

        return generator

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RuntimeError as exc:
            raise FailedInBackground(exc) from exc

    return call


def _while_alive(owner: QtCore.QObject, callback: Callable[..., Any] | None) -> Callable[..., Any] | None:
    if callback is None:
        return None

    def guarded(*args: Any) -> Any:
        return callback(*args) if shiboken6.isValid(owner) else None

    return guarded


def _drive(job: Generator[Any, None, Any]) -> Generator[Any, None, Any]:
    return (yield from job)


def run_job(job: Generator[Any, None, Any], **callbacks: Any) -> WorkerBase:
    """Run an already created progress generator on a worker thread (see :func:`run_in_background`)."""
    return run_in_background(_drive, job, **callbacks)


def start_program(args: Sequence[str]) -> subprocess.Popen:
    """Start an external program in its own process (it outlives nothing of ours and shares no memory)."""
    flags: dict[str, Any] = {}
    if sys.platform == "win32":
        flags["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        flags["start_new_session"] = True
    return subprocess.Popen(
        list(args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **flags
    )


def active_workers() -> list[WorkerBase]:
    return list(_active)


def stop_all_workers(timeout_ms: int = 10_000) -> bool:
    """Ask every worker to stop and wait for them; True when all have finished. Child processes are stopped first
    (their supervisors end them and then finish by themselves)."""
    for child in list(_children):
        child.stop()
    for worker in list(_active):
        if not getattr(worker, "supervises_child", False):
            worker.quit()
    return bool(WorkerBase.await_workers(msecs=timeout_ms))


# -- child processes --------------------------------------------------------------------------------------------------
class ChildProcess:
    """A running child process and the end of its pipe that the app reads. ``stop()`` asks the supervisor to end
    it (from any thread); ``stopped`` tells afterwards whether that was asked."""

    def __init__(self, process: multiprocessing.process.BaseProcess, connection: Connection) -> None:
        self.process = process
        self.connection = connection
        self._stop = threading.Event()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def is_alive(self) -> bool:
        return self.process.is_alive()


def _signal_group(process: multiprocessing.process.BaseProcess, kill: bool) -> None:
    """Terminate (or kill) the child and the processes it started (it leads its own process group on POSIX)."""
    if sys.platform != "win32" and process.pid is not None:
        try:
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            return
        except OSError:
            pass  # not a group leader (yet): signal the process alone
    if kill:
        process.kill()
    else:
        process.terminate()


def _end(process: multiprocessing.process.BaseProcess, grace_s: float) -> None:
    if process.is_alive():
        _signal_group(process, kill=False)
        process.join(grace_s)
    if process.is_alive():
        _signal_group(process, kill=True)
    process.join()


def _receive(connection: Connection, messages: list[Any]) -> bool:
    """Take every message waiting in the pipe into ``messages``; False once the pipe has ended (the child closed
    its end: it has finished or died)."""
    try:
        while connection.poll(0):
            messages.append(connection.recv())
    except (EOFError, OSError):
        return False
    return True


def _supervise(child: ChildProcess, grace_s: float) -> Generator[Any, None, int | None]:
    """Relay the child's messages until it ends, or end it when asked; returns its exit code. Yields ``None`` now
    and then, so that the worker can be aborted even when the child says nothing."""
    process, connection = child.process, child.connection
    open_pipe = True
    try:
        while not child.stopped:
            messages: list[Any] = []
            if open_pipe:
                try:
                    if connection.poll(POLL_S):
                        open_pipe = _receive(connection, messages)
                except (EOFError, OSError):
                    open_pipe = False
            else:
                process.join(POLL_S)
            yield from messages
            if not open_pipe and not process.is_alive():
                break
            if not messages:
                yield None
        if child.stopped:
            _end(process, grace_s)
        process.join()
        return process.exitcode
    finally:
        if process.is_alive():  # the worker was abandoned: never leave the child behind
            _end(process, grace_s)
        connection.close()
        _children.discard(child)


def _abandon(child: ChildProcess, grace_s: float) -> None:
    """The supervisor's worker was aborted (``quit()``): end the child here rather than leave it running."""
    child.stop()
    _end(child.process, grace_s)
    child.connection.close()
    _children.discard(child)


def start_child_process(
    body: Callable[..., Any],
    *args: Any,
    on_message: Callable[[Any], Any],
    on_exit: Callable[[int | None, bool], Any],
    name: str = "vertebra-review-child",
    grace_s: float = TERMINATE_GRACE_S,
) -> ChildProcess:
    """Start ``body(connection, *args)`` in a child process (spawn context: a fresh interpreter, no Qt, no shared
    threads) and supervise it from a worker thread: each message the child sends is passed to ``on_message`` on the
    GUI thread, in order; when it has ended, ``on_exit(exit_code, stopped)`` follows (``stopped``: ended by
    :meth:`ChildProcess.stop`). ``body`` and ``args`` must be picklable (a module-level function)."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=run_supervised, args=(body, sender, *args), name=name)
    process.start()
    sender.close()  # the child holds the only sending end now
    child = ChildProcess(process, receiver)
    _children.add(child)
    worker = run_in_background(
        _supervise, child, grace_s,
        on_progress=lambda message: on_message(message) if message is not None else None,
        on_result=lambda code: on_exit(code, child.stopped),
        on_error=lambda error: on_exit(process.exitcode, child.stopped),
        on_aborted=lambda: _abandon(child, grace_s),
    )
    worker.supervises_child = True
    return child

