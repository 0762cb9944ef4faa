"""The crash-recovery journal: every edit is written here before the reader's file is saved.

The journal is one JSON file per study and reader in the per-user state folder (so it works for a read-only
study too). An entry is removed once its slice is safely saved. Entries still there when the study is opened again
are edits that were never saved: the app crashed between the two writes, or the study could not be written.
Both writes are atomic, so an entry is either the old or the new state, never half of one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from core.annotations.labelme_io import parse_labelme, to_labelme
from core.annotations.model import SliceAnnotation
from core.errors import AnnotationFileError, FileWriteError
from core.fileio import atomic_write_json
from core.review.preferences import AppDirs, app_dirs
from core.study.slice_key import SliceKey, slice_key

JOURNAL_FORMAT = "vertebra-review-journal"
_MAX_BYTES = 256 * 1024 * 1024


def journal_path(study_root: str | Path, reader: str, dirs: AppDirs | None = None) -> Path:
    root = str(Path(study_root).resolve())
    digest = hashlib.sha256(root.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return (dirs or app_dirs()).state / "journal" / f"{Path(root).name[:40]}-{digest}-{reader}.json"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RecoveryJournal:
    """Unsaved edits of one reader in one study. ``problem`` says why a stored journal could not be read."""

    def __init__(self, path: Path, study_root: str | Path, reader: str) -> None:
        self.path = Path(path)
        self.study_root = str(Path(study_root).resolve())
        self.reader = reader
        self.problem: str | None = None
        self._entries: dict[str, dict[str, Any]] = {}
        self._read()

    @classmethod
    def for_study(cls, study_root: str | Path, reader: str, dirs: AppDirs | None = None) -> RecoveryJournal:
        return cls(journal_path(study_root, reader, dirs), study_root, reader)

    def _read(self) -> None:
        if not self.path.is_file():
            return
        try:
            if self.path.stat().st_size > _MAX_BYTES:
                raise ValueError("file is too large")
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT:
                raise ValueError("not a recovery journal")
            entries = data.get("entries")
            if not isinstance(entries, dict):
                raise ValueError("no entries")
            self._entries = {k: v for k, v in entries.items() if isinstance(v, dict) and k.count("/") == 1}
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            self.problem = f"{self.path}: recovery journal not readable ({exc}); it was kept as {self._aside().name}"

    def _aside(self) -> Path:
        target = self.path.with_name(f"{self.path.stem}.unreadable-{dt.datetime.now():%Y%m%d-%H%M%S}.json")
        try:
            os.replace(self.path, target)
        except OSError:
            return self.path
        return target

    def _write(self) -> None:
        if not self._entries:
            try:
                self.path.unlink(missing_ok=True)
            except OSError as exc:
                raise FileWriteError(f"cannot clear the recovery journal: {exc.strerror or exc}", self.path) from exc
            return
        atomic_write_json(
            self.path,
            {"format": JOURNAL_FORMAT, "study": self.study_root, "reader": self.reader, "entries": self._entries},
            indent=None,
        )

    def record(self, key: SliceKey, annotation: SliceAnnotation) -> None:
        """Remember ``annotation`` as the latest state of slice ``key`` (before trying to save it)."""
        self._entries[f"{slice_key(key).text}"] = {"written": _now(), "annotation": to_labelme(annotation)}
        self._write()

    def saved(self, key: SliceKey) -> None:
        """Slice ``key`` is safely saved: forget its entry."""
        if self._entries.pop(f"{slice_key(key).text}", None) is not None:
            self._write()

    def pending(self) -> dict[SliceKey, SliceAnnotation]:
        """The unsaved states, by slice. Entries that do not parse are left out (and kept in the file)."""
        found: dict[SliceKey, SliceAnnotation] = {}
        for name, entry in self._entries.items():
            case, slice_id = name.split("/")
            try:
                found[(case, slice_id)] = parse_labelme(entry.get("annotation"), path=self.path)
            except AnnotationFileError:
                continue
        return found

    def discard(self) -> Path | None:
        """Put the journal aside (renamed, not deleted: nothing is ever thrown away silently)."""
        self._entries.clear()
        if not self.path.is_file():
            return None
        target = self.path.with_name(f"{self.path.stem}.discarded-{dt.datetime.now():%Y%m%d-%H%M%S}.json")
        try:
            os.replace(self.path, target)
        except OSError as exc:
            raise FileWriteError(f"cannot put the recovery journal aside: {exc.strerror or exc}", self.path) from exc
        return target
