"""What every command prints, and how it ends: exit codes, results on stdout, notes on stderr, a progress bar.

Every command module imports from here; this module imports nothing of the command line's, so nothing points back.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

from core.progress import Progress, ProgressGenerator, run

EXIT_OK, EXIT_ERROR, EXIT_INTERNAL, EXIT_PARTIAL = 0, 1, 2, 3


class ProgressBar:
    """Progress on stderr: a one-line bar with the time left on a terminal; otherwise (a log file, CI) one line per
    tenth of each stage and one per validation, so that long runs leave a readable record."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.active = self.stream.isatty()
        self.silent = os.environ.get("RANK", "0") != "0"  # under torchrun only rank 0 reports progress
        self._stage: tuple[str, int] | None = None
        self._started = time.monotonic()
        self._logged_tenth = -1

    def _eta(self, event: Progress) -> str:
        elapsed = time.monotonic() - self._started
        if event.step <= 0 or event.step >= event.total:
            return f"{elapsed:5.0f} s"
        left = elapsed / event.step * (event.total - event.step)
        return f"{left / 60:4.1f} min left" if left >= 90 else f"{left:4.0f} s left"

    def __call__(self, event: Progress) -> None:
        if not event.total or self.silent:
            return
        if self._stage != (event.stage, event.total) or event.step < 1:
            self._stage = (event.stage, event.total)
            self._started = time.monotonic()
            self._logged_tenth = -1
        if self.active:
            filled = int(self.width * event.fraction)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{event.stage} [{bar}] {event.step}/{event.total} {self._eta(event)} "
                              f"{event.message[:48]:<48}")
            if event.step >= event.total:
                self.stream.write("\n")
        else:
            tenth = int(10 * event.fraction)
            if event.stage == "validate" or tenth > self._logged_tenth:
                self._logged_tenth = tenth
                self.stream.write(f"{event.stage} {event.step}/{event.total} {self._eta(event)} {event.message}\n")
        self.stream.flush()


def drive(job: ProgressGenerator[Any]) -> Any:
    """Run a progress generator with a progress bar on stderr; returns its result."""
    return run(job, ProgressBar())


def say(text: str = "") -> None:
    """A line of the command's result, on stdout."""
    print(text)


def warn(text: str) -> None:
    """A line about something skipped or noteworthy, on stderr."""
    print(text, file=sys.stderr)


def say_json(obj: Any, *, indent: int | None = 2) -> None:
    """The command's result as JSON, on stdout."""
    print(json.dumps(obj, indent=indent, ensure_ascii=False) if indent else json.dumps(obj))
