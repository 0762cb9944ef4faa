"""Background work for the GUI: the only place where threads (and later processes) are started.

Functions run through superqt's workers. Generator functions (core's progress generators) report each yielded
:class:`~core.progress.Progress` and stop at their next yield when quit() is called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from superqt.utils import WorkerBase, create_worker

_active: set[WorkerBase] = set()


def run_in_background(
    func: Callable[..., Any],
    *args: Any,
    on_result: Callable[[Any], Any] | None = None,
    on_error: Callable[[BaseException], Any] | None = None,
    on_progress: Callable[[Any], Any] | None = None,
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

    def finished() -> None:
        _active.discard(worker)
        if on_finished is not None:
            on_finished()

    worker.finished.connect(finished)
    _active.add(worker)
    worker.start()
    return worker


def active_workers() -> list[WorkerBase]:
    return list(_active)


def stop_all_workers(timeout_ms: int = 10_000) -> bool:
    """Ask every worker to stop and wait for them; True when all have finished."""
    for worker in list(_active):
        worker.quit()
    return bool(WorkerBase.await_workers(msecs=timeout_ms))
