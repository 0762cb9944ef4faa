"""``models/.retrain.lock``: one retrain per study at a time, and the owner of ``models/.staging``.

The lock file names its holder (process id, host, start time). Where the system has ``fcntl`` (Linux, macOS), the
holder also keeps an operating-system lock on the file for the run's life, which the kernel releases however the
holder ends, ``kill -9`` included. So a lock file whose OS lock is free is a dead run's and is taken over, even where
its process id now belongs to another process, and one whose OS lock is held is a live run's, and the new retrain is
refused. Without ``fcntl`` (Windows), or for a lock file written without one, the process id is checked instead. A
holder on another machine (a study on a network share) is taken to be running.

The check and the take-over happen under the study's write lock, so two retrains that start at once after a crash
cannot both take over the dead run's lock.

Whoever holds the lock owns ``models/.staging``: anything found there when the lock is taken is a dead run's partial
output (a staged package, a checkpoint) and is removed, so a retrain killed at any point never blocks the next one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
from pathlib import Path

from core.errors import TrainingError
from core.study.lock import study_write_lock

try:
    import fcntl
except ImportError:  # Windows: the holder's process id is checked instead
    fcntl = None  # type: ignore[assignment]

LOCK = ".retrain.lock"
STAGING = ".staging"
BUSY = "a retrain of this study is already running; wait for it or cancel it"


class RetrainBusyError(TrainingError):
    """Another retrain of this study is running."""


class RetrainLock:
    """Held for a retrain's life (a context manager); see the module's description."""

    def __init__(self, study_root: str | Path) -> None:
        self.study_root = Path(study_root)
        self.models = self.study_root / "models"
        self.path = self.models / LOCK
        self._fd: int | None = None

    def __enter__(self) -> RetrainLock:
        try:
            with study_write_lock(self.study_root):
                self.models.mkdir(exist_ok=True)
                if os.path.lexists(self.path):
                    if self._holder_alive():
                        raise RetrainBusyError(BUSY, self.path)
                    self.path.unlink()
                self._fd = self._create()
            shutil.rmtree(self.models / STAGING, ignore_errors=True)  # a dead run's: nobody else can be staging
        except OSError as exc:
            self.__exit__()
            raise TrainingError(f"cannot start a retrain here: {exc.strerror or exc}",
                                exc.filename or self.models) from exc
        return self

    def check_free(self) -> None:
        """Raise :class:`RetrainBusyError` when a live retrain holds the lock now: a quick refusal before the
        training code (and torch) is loaded. Entering the lock still decides."""
        if os.path.lexists(self.path) and self._holder_alive():
            raise RetrainBusyError(BUSY, self.path)

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)  # releases the OS lock

    def _create(self) -> int:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
        try:
            os_lock = _try_lock(fd)
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "os_lock": os_lock,
                      "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
            os.write(fd, json.dumps(holder).encode())
        except BaseException:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise
        return fd

    def _holder_alive(self) -> bool:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            holder = None
        if not isinstance(holder, dict):
            return self._os_lock_held()  # an unreadable lock file: its OS lock decides
        if holder.get("host") != socket.gethostname():
            return True  # another machine's process: assume it runs
        if self._os_lock_held():
            return True
        if holder.get("os_lock") and fcntl is not None:
            return False  # its holder's OS lock is free: it has ended, whatever process has its id now
        try:
            os.kill(int(holder["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError, OverflowError):
            return False
        return True

    def _os_lock_held(self) -> bool:
        if fcntl is None:
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:  # a file system without locks: the process id decides
            return False
        finally:
            os.close(fd)
        return False


def _try_lock(fd: int) -> bool:
    """Take the OS lock on the new lock file (nobody else can hold it yet); False where the file system has none."""
    if fcntl is None:
        return False
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    return False
