"""One write lock per study, shared by every process and thread that changes the study's shared state.

The shared state is what two writers could both claim or both rewrite: case ids, ``study.json`` (import records,
readers, settings), model-set ids and ``models/active``, and the consensus. Each writer holds the lock only while it
reads, changes and writes that state (milliseconds), never while it decodes images or trains, so a long import does
not hold up the app. A reader's own annotation files need no lock: nobody else writes them, and every write is atomic.

The lock is an operating-system file lock (``flock`` on Linux and macOS, ``LockFileEx`` on Windows, through the
``filelock`` library) on ``<study>/.lock``: it is released when its holder exits for any reason, even ``kill -9``,
so a crashed command never leaves a study locked. It is re-entrant within a thread, and other threads of the same
process wait for it like other processes do.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from core.errors import StudyError

LOCK_FILE = ".lock"
#: How long a writer waits for another before giving up: far longer than any holder keeps the lock.
LOCK_TIMEOUT_S = 120.0

_locks: dict[Path, FileLock] = {}
_guard = threading.Lock()


def _forget_in_child() -> None:
    """A forked worker starts with no lock held and makes its own (a parent's lock object is not the child's)."""
    global _guard
    _locks.clear()
    _guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _lock_for(root: Path) -> FileLock:
    key = root.resolve()
    with _guard:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = FileLock(key / LOCK_FILE, timeout=LOCK_TIMEOUT_S)
        return lock


@contextmanager
def study_write_lock(root: str | Path, *, timeout: float | None = None) -> Iterator[None]:
    """Hold the study's write lock for the body of the ``with``. Raises :class:`StudyError` with the reason when it
    cannot be had: the study cannot be written (read-only folder or disk), or another writer held it past
    ``timeout`` seconds."""
    root = Path(root)
    lock = _lock_for(root)
    try:
        lock.acquire(timeout=LOCK_TIMEOUT_S if timeout is None else timeout)
    except Timeout as exc:
        raise StudyError(
            f"another program has been writing this study for over {LOCK_TIMEOUT_S:.0f} s (it holds "
            f"{LOCK_FILE}); try again when it has finished",
            root,
        ) from exc
    except OSError as exc:
        raise StudyError(f"cannot write to this study: {_reason(exc)}", root) from exc
    try:
        yield
    finally:
        lock.release()


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "it is on a read-only disk"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "the folder is read-only for you (no permission to write)"
    return exc.strerror or str(exc)
