"""The per-reader study lock: warns when the same reader opens one study twice.

Two readers may review a study at once, because each writes only their own files. The same reader in two windows
would overwrite their own edits, so ``.locks/<reader>.json`` in the study names the window that holds it (host,
process, a token per window). A lock whose process is gone on this host is stale and taken over silently.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.errors import FileWriteError
from core.fileio import atomic_write_json
from core.study.layout import check_id

LOCK_FOLDER = ".locks"


@dataclass(frozen=True)
class LockHolder:
    reader: str
    host: str
    pid: int
    since: str
    token: str

    def describe(self) -> str:
        where = "this computer" if self.host == socket.gethostname() else self.host
        return f"reader {self.reader} opened this study on {where} (process {self.pid}) at {self.since}"


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StudyLock:
    def __init__(self, study_root: str | Path, reader: str) -> None:
        self.reader = check_id(reader, "reader")
        self.path = Path(study_root) / LOCK_FOLDER / f"{reader}.json"
        self.token = uuid.uuid4().hex
        self.held = False

    def _read(self) -> LockHolder | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return LockHolder(str(data["reader"]), str(data["host"]), int(data["pid"]), str(data["since"]),
                              str(data["token"]))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError):
            return None  # missing or unreadable: nobody holds it

    def holder(self) -> LockHolder | None:
        """Another window that holds this reader's lock now, or None (free, stale, or ours)."""
        found = self._read()
        if found is None or found.token == self.token:
            return None
        if found.host == socket.gethostname() and not _process_alive(found.pid):
            return None
        return found

    def acquire(self) -> None:
        """Take the lock (after the caller has warned about :meth:`holder`). Raises FileWriteError."""
        atomic_write_json(self.path, {
            "reader": self.reader, "host": socket.gethostname(), "pid": os.getpid(),
            "since": dt.datetime.now().isoformat(timespec="seconds"), "token": self.token,
        })
        self.held = True

    def release(self) -> None:
        """Give the lock back if it is still ours (another window may have taken it over)."""
        if not self.held:
            return
        self.held = False
        found = self._read()
        if found is not None and found.token == self.token:
            try:
                self.path.unlink()
            except OSError as exc:
                raise FileWriteError(f"cannot remove the study lock: {exc.strerror or exc}", self.path) from exc
