"""A case being imported is claimed, so that an import that is killed never leaves half a case in the study.

An import claims its new case id under the study's write lock by creating the case's image folder with a marker in
it, ``images/<case>/.importing`` (:data:`~core.study.layout.IMPORTING`), and holds an operating-system lock on that
marker while it writes the case's files. It removes the marker once the case's import record is in ``study.json``.

- While the marker is there, :meth:`Study.cases` leaves the case out: no command and no reader sees half a case.
- Ctrl+C or an error removes the case's files (:meth:`CaseClaim.abandon`).
- ``kill -9`` or a power cut leaves the marker, whose lock died with its process. The next import into the study
  removes that case's files (images, readers', consensus and predictions) and says so; a case whose record was
  written before the kill keeps its files and only loses the marker. A case still being imported by a live process
  (its marker locked) is left alone.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from core.errors import StudyError
from core.study.layout import IMPORTING, Study
from core.study.lock import study_write_lock


@dataclass
class CaseClaim:
    """A case id claimed for an import, its marker locked until :meth:`done` or :meth:`abandon`."""

    study: Study
    case: str
    lock: FileLock

    @property
    def marker(self) -> Path:
        return self.study.root / "images" / self.case / IMPORTING

    def done(self) -> None:
        """The case is complete and recorded: remove its marker, so that it is listed."""
        self.marker.unlink(missing_ok=True)
        self.lock.release()

    def abandon(self) -> None:
        """The import of this case failed or was interrupted: remove every file written for it."""
        self.lock.release()
        remove_case_files(self.study.root, self.case)


def claim_case(study: Study, notes: list[str] | None = None) -> CaseClaim:
    """Claim the next free case id for an import (under the study's write lock, so two imports at once never share
    one), after removing what killed imports left. ``notes`` gets a line for each case removed."""
    with study_write_lock(study.root):
        study.reload_settings()
        for case in abandoned_cases(study):
            if _recorded(study, case):
                Path(study.root / "images" / case / IMPORTING).unlink(missing_ok=True)
                continue
            remove_case_files(study.root, case)
            if notes is not None:
                notes.append(f"removed {case}, the partial output of an import that was killed")
        case = study.next_case_id()
        folder = study.root / "images" / case
        try:
            folder.mkdir(parents=True)
            lock = FileLock(folder / IMPORTING, timeout=0)
            lock.acquire()
        except (OSError, Timeout) as exc:
            raise StudyError(f"cannot claim case {case}: {exc}", folder) from exc
    return CaseClaim(study, case, lock)


def _recorded(study: Study, case: str) -> bool:
    return any(isinstance(record, dict) and record.get("case") == case for record in study.settings.imports)


def abandoned_cases(study: Study) -> list[str]:
    """Cases whose marker is there but not locked: their import was killed (or finished but for the marker)."""
    found = []
    for marker in sorted((study.root / "images").glob(f"*/{IMPORTING}")):
        try:
            with FileLock(marker, timeout=0):
                found.append(marker.parent.name)
        except (Timeout, OSError):  # being imported now, or not ours to judge
            continue
    return found


def remove_case_files(root: Path, case: str) -> None:
    """Every folder of ``case`` in the study: its images, each reader's files, the consensus and predictions."""
    folders = [root / "images" / case, root / "consensus" / case]
    for parent in ("readers", "predictions"):
        if (root / parent).is_dir():
            folders += [owner / case for owner in (root / parent).iterdir() if owner.is_dir()]
    for folder in folders:
        if folder.is_symlink():
            folder.unlink(missing_ok=True)
        elif os.path.lexists(folder):
            shutil.rmtree(folder, ignore_errors=True)
