"""Background work for the GUI: the only place where threads and processes are started.

Functions run through superqt's workers. Progress generators (core's long jobs) run through :func:`run_job`: each
yielded :class:`~core.progress.Progress` is reported on the GUI thread, and ``quit()`` stops the job at its next
yield (``on_aborted`` is then called instead of ``on_result``). External programs (labelme) are started as separate
processes by :func:`start_program`, never imported.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Generator, Sequence
from typing import Any

from superqt.utils import WorkerBase, create_worker

_active: set[WorkerBase] = set()


def run_in_background(
    func: Callable[..., Any],
    *args: Any,
    on_result: Callable[[Any], Any] | None = None,
    on_error: Callable[[BaseException], Any] | None = None,
    on_progress: Callable[[Any], Any] | None = None,
    on_aborted: Callable[[], Any] | None = None,
    on_finished: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> WorkerBase:
    """Start ``func(*args, **kwargs)`` on a worker thread and wire its signals to the callbacks (GUI thread)."""
    # Errors go to ``on_error`` when given; superqt would otherwise re-raise them in the event loop.
    worker = create_worker(func, *args, _start_thread=False, _ignore_errors=on_error is not None, **kwargs)
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
    """Ask every worker to stop and wait for them; True when all have finished."""
    for worker in list(_active):
        worker.quit()
    return bool(WorkerBase.await_workers(msecs=timeout_ms))
