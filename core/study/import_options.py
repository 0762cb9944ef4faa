"""What an import is asked to do (:class:`ImportOptions`) and what it did (:class:`ImportReport`, one
:class:`ImportedCase` per new case). :func:`core.study.importer.import_source` takes the one and returns the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.imaging.reformat import DEFAULT_SLICE_COUNT, DEFAULT_STEP_MM, DEFAULT_THICKNESS_MM
from core.study.segmented import LabelOptions


@dataclass
class ImportOptions:
    reader: str | None = None
    window: str | None = None
    sagittal: bool = False
    count: int = DEFAULT_SLICE_COUNT
    step_mm: float = DEFAULT_STEP_MM
    thickness_mm: float = DEFAULT_THICKNESS_MM
    key_file: Path | None = None
    #: A vertebra segmentation of the source CT: its bodies become boxes (see core.study.segmented).
    labels: LabelOptions | None = None


@dataclass
class ImportedCase:
    case: str
    source: str
    slices: int
    annotations: int


@dataclass
class ImportReport:
    cases: list[ImportedCase] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    #: Files that are fine but not for import (segmentation label maps), with the reason.
    ignored: list[tuple[str, str]] = field(default_factory=list)
    #: Changes made on the way in (for example a 16-bit PNG stored as 8-bit).
    notes: list[str] = field(default_factory=list)

    @property
    def slice_count(self) -> int:
        return sum(c.slices for c in self.cases)
