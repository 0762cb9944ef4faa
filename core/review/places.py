"""Where each reader left off in each study: the slice on screen and its display window, so that a study reopens
where the reader was and not at its first slice with the window reset.

Places are per user and per machine: they live in the user's state folder (``places.json``), never in the study,
which other readers share. The file holds the most recently used :data:`MAX_PLACES` studies; an unreadable or
malformed file is ignored (the study then opens at its first slice) and replaced at the next save.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import VertebraReviewError
from core.fileio import atomic_write_json
from core.imaging.windowing import Window
from core.review.preferences import AppDirs, app_dirs

PLACES_FILE = "places.json"
MAX_PLACES = 50
_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class ReadingPlace:
    """A slice, the window it was drawn with and the preset that drew it (``custom`` for a window of the reader's
    own; a preset such as min-max is worked out again for each image)."""

    case: str
    slice_id: str
    window: Window | None = None
    preset: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"case": self.case, "slice": self.slice_id}
        if self.window is not None:
            data["window"] = {"center": self.window.center, "width": self.window.width, "name": self.window.name}
        if self.preset:
            data["preset"] = self.preset
        return data

    @classmethod
    def from_json(cls, data: Any) -> ReadingPlace | None:
        """The place in ``data``, or None where it is not one (a hand-edited or foreign file)."""
        if not isinstance(data, dict):
            return None
        case, slice_id = data.get("case"), data.get("slice")
        if not (isinstance(case, str) and isinstance(slice_id, str)):
            return None
        preset = data.get("preset", "")
        return cls(case, slice_id, _window(data.get("window")), preset if isinstance(preset, str) else "")


def _window(data: Any) -> Window | None:
    if not isinstance(data, dict):
        return None
    center, width, name = data.get("center"), data.get("width"), data.get("name", "")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (center, width))
    if not numbers or not isinstance(name, str):
        return None
    try:
        return Window(float(center), float(width), name)
    except ValueError:
        return None


def _study_key(study: Path) -> str:
    return str(Path(study).resolve())


class PlaceBook:
    """Reads and writes ``places.json`` in the user's state folder; every method is safe to call with a broken file
    (reads give None, a save replaces it)."""

    def __init__(self, dirs: AppDirs | None = None) -> None:
        self.path = (dirs or app_dirs()).state / PLACES_FILE

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            if not self.path.is_file() or self.path.stat().st_size > _MAX_BYTES:
                return {}
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            return {}
        studies = data.get("studies") if isinstance(data, dict) else None
        return {k: v for k, v in studies.items() if isinstance(v, dict)} if isinstance(studies, dict) else {}

    def place(self, study: Path, reader: str) -> ReadingPlace | None:
        """Where ``reader`` left off in ``study``, if recorded."""
        return ReadingPlace.from_json(self._load().get(_study_key(study), {}).get(reader))

    def remember(self, study: Path, reader: str, place: ReadingPlace) -> None:
        """Record ``place``; this study becomes the most recent. Raises :class:`~core.errors.FileWriteError`."""
        studies = self._load()
        key = _study_key(study)
        entry = studies.pop(key, {})
        entry[reader] = place.to_json()
        studies = {key: entry, **studies}  # most recent first
        kept = dict(list(studies.items())[:MAX_PLACES])
        atomic_write_json(self.path, {"format": "vertebra-review-places", "version": 1, "studies": kept})

    def try_remember(self, study: Path, reader: str, place: ReadingPlace) -> str | None:
        """:meth:`remember`, returning the problem instead of raising (a read-only home must not stop review)."""
        try:
            self.remember(study, reader, place)
        except VertebraReviewError as error:
            return str(error)
        return None
