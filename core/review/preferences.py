"""Per-user settings: the reader identity (chosen once), recent studies, which boxes are shown.

They live in the user's configuration folder (platformdirs), or under ``$VERTEBRA_REVIEW_CONFIG_DIR`` when it is
set (tests, portable installs), which then also holds the recovery journals and imported studies.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import StudyError
from core.fileio import atomic_write_json
from core.study.layout import check_id

CONFIG_ENV = "VERTEBRA_REVIEW_CONFIG_DIR"
APP_NAME = "vertebra-review"
PREFERENCES_FILE = "preferences.json"
MAX_RECENT = 10
_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class AppDirs:
    """Where per-user files go: settings, state (recovery journals, locks' scratch), data (imported studies)."""

    config: Path
    state: Path
    data: Path


def app_dirs() -> AppDirs:
    override = os.environ.get(CONFIG_ENV)
    if override:
        base = Path(override).expanduser()
        return AppDirs(base, base / "state", base / "data")
    import platformdirs

    return AppDirs(
        Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_state_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
    )


@dataclass
class Preferences:
    """``problem`` says why the stored file was not used (it is then left as it is until the next save)."""

    reader: str | None = None
    recent: list[str] = field(default_factory=list)
    overlay: str = "both"
    extra: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    _KEYS = ("reader", "recent", "overlay")

    @staticmethod
    def path(dirs: AppDirs | None = None) -> Path:
        return (dirs or app_dirs()).config / PREFERENCES_FILE

    @classmethod
    def load(cls, dirs: AppDirs | None = None) -> Preferences:
        """The stored preferences; defaults (with ``problem`` set) when the file is unreadable or malformed."""
        file = cls.path(dirs)
        if not file.is_file():
            return cls()
        try:
            if file.stat().st_size > _MAX_BYTES:
                raise ValueError("file is too large")
            data = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return cls._from_json(data)
        except (OSError, UnicodeDecodeError, ValueError, RecursionError, StudyError) as exc:
            return cls(problem=f"{file}: preferences not used ({exc})")

    @classmethod
    def _from_json(cls, data: dict[str, Any]) -> Preferences:
        reader = data.get("reader")
        if reader is not None:
            check_id(reader, "reader")
        recent = data.get("recent", [])
        if not isinstance(recent, list):
            raise ValueError("'recent' is not a list")
        overlay = data.get("overlay", "both")
        if not isinstance(overlay, str):
            raise ValueError("'overlay' must be a string")
        extra = {k: v for k, v in data.items() if k not in cls._KEYS}
        return cls(reader, [r for r in recent if isinstance(r, str)][:MAX_RECENT], overlay, extra)

    def save(self, dirs: AppDirs | None = None) -> Path:
        """Write atomically. Raises :class:`~core.errors.FileWriteError`."""
        data = dict(self.extra)
        data.update({key: getattr(self, key) for key in self._KEYS})
        return atomic_write_json(self.path(dirs), data)

    def set_reader(self, reader: str) -> None:
        self.reader = check_id(reader.strip(), "reader")

    def remember_study(self, path: str | Path) -> None:
        """Put ``path`` first in the recent-studies list (at most :data:`MAX_RECENT`)."""
        text = str(Path(path).resolve())
        self.recent = [text, *(r for r in self.recent if r != text)][:MAX_RECENT]

    def recent_studies(self) -> list[Path]:
        """Recent studies that still exist."""
        return [Path(r) for r in self.recent if (Path(r) / "study.json").is_file()]
