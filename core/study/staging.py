"""A new study appears whole or not at all.

Commands that make a whole study (``synth``, ``demo build``) write it into a hidden folder beside the one asked for,
``.<name>.partial-XXXX``, and rename it to its name only once every file is written. Interrupted (Ctrl+C, an error),
they remove the partial folder; killed outright (``kill -9``, a power cut), they leave it, clearly named, and the
next run into the same place removes it and says so. The folder asked for never holds half a study.

While a run writes, it holds an operating-system lock on ``.<name>.partial-XXXX.lock`` beside the folder; the lock
dies with its process, which is how a later run tells a killed run's leftovers from a run still going.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from core.errors import StudyError
from core.fileio import follow_umask
from core.study.layout import STUDY_FILE

PARTIAL = ".partial-"


def _check_target(out: Path) -> None:
    if (out / STUDY_FILE).is_file():
        raise StudyError("a study already exists here; choose a new folder for the study", out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StudyError("folder exists and is not empty; choose a new folder for the study", out)


def stale_partials(out: Path) -> list[Path]:
    """Partial folders of ``out`` left by runs that were killed (their writer's lock is free)."""
    found = []
    for folder in sorted(out.parent.glob(f".{out.name}{PARTIAL}*")):
        if not folder.is_dir() or folder.is_symlink():
            continue
        lock = FileLock(f"{folder}.lock", timeout=0)
        try:
            with lock:
                found.append(folder)
        except (Timeout, OSError):  # still being written, or not ours to judge
            continue
    return found


@contextmanager
def staged_study(out: str | Path, notes: list[str] | None = None) -> Iterator[Path]:
    """Yield an empty hidden folder to write the study ``out`` into; on leaving the ``with`` normally, rename it to
    ``out``. ``notes`` receives a line for each killed run's leftovers removed on the way."""
    out = Path(out)
    _check_target(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for folder in stale_partials(out):
            shutil.rmtree(folder, ignore_errors=True)
            Path(f"{folder}.lock").unlink(missing_ok=True)
            if notes is not None:
                notes.append(f"removed {folder.name}, the partial output of an earlier run that was killed")
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL}", dir=out.parent))
        follow_umask(staging)  # mkdtemp's 0700 would hide the study from the other readers
    except OSError as exc:
        raise StudyError(f"cannot create the study folder: {exc.strerror or exc}", out) from exc
    lock = FileLock(f"{staging}.lock", timeout=0)
    lock.acquire()
    try:
        try:
            yield staging
            _check_target(out)
            try:
                if out.is_dir():
                    out.rmdir()  # empty (checked): renaming onto it is not portable
                os.rename(staging, out)
            except OSError as exc:
                raise StudyError(f"cannot move the finished study into place: {exc.strerror or exc}", out) from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        lock.release()
        Path(f"{staging}.lock").unlink(missing_ok=True)
