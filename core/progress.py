"""Progress events for long-running work.

Long functions in ``core`` are generators: they ``yield`` :class:`Progress` events and ``return`` their result.
A caller that wants to stop simply stops iterating (``close()``), which the generator sees at its current yield.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """``step`` of ``total`` done in ``stage``; ``message`` for people, ``metrics`` for curves."""

    stage: str
    step: int
    total: int
    message: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0


ProgressGenerator = Generator[Progress, None, T]


def run(job: ProgressGenerator[T], on_progress: Callable[[Progress], Any] | None = None) -> T:
    """Drive a progress generator to the end and return its result."""
    while True:
        try:
            event = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(event)
