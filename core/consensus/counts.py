"""What is still open in the consensus, defined once, and counted the same way everywhere (the consensus mode's
position and session panel, the case list's "Readers disagree" filter and ≠ mark, ``vertebra-review consensus``
and its report).

A **disagreement** is a vertebra group the compared readers do not agree on
(:attr:`~core.consensus.matching.VertebraGroup.is_disagreement`: a different disease set, a box some reader did not
draw, or boxes drawn differently). It is

- **decided** when the slice's consensus holds a confirmed decision for it (a proposal of ``--propose`` is not one);
- **locked** when it is not decided but the slice's consensus is locked: finalised, made outside the consensus
  workflow (the demo's ``case-0001``, an imported truth), or unreadable. Nobody can decide it until the slice is
  reopened (or its file fixed);
- **open** otherwise: it waits for the readers. These are the ones the consensus mode steps through.

``disagreements = decided + locked + open``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.annotations.model import SliceAnnotation
from core.consensus.matching import VertebraGroup
from core.consensus.slice_state import SliceState, state_from_files
from core.study.slice_key import SliceKey


def is_decided(state: SliceState, group: VertebraGroup) -> bool:
    """Whether the slice's consensus holds a confirmed decision for the group."""
    resolution = state.resolved.get(group.index)
    return resolution is not None and resolution.confirmed


def is_open_disagreement(state: SliceState, group: VertebraGroup) -> bool:
    """*The* definition of an open disagreement: the readers disagree on the vertebra, it has no confirmed decision,
    and its slice is not locked."""
    return group.is_disagreement and not state.record.locked and not is_decided(state, group)


def open_disagreements(state: SliceState) -> list[VertebraGroup]:
    """The slice's open disagreements, top to bottom."""
    return [g for g in state.match.groups if is_open_disagreement(state, g)]


@dataclass(frozen=True)
class DisagreementCounts:
    """Disagreements over a set of slices: ``total = decided + locked + open``."""

    total: int = 0
    decided: int = 0
    locked: int = 0
    open: int = 0

    def __add__(self, other: DisagreementCounts) -> DisagreementCounts:
        return DisagreementCounts(self.total + other.total, self.decided + other.decided,
                                  self.locked + other.locked, self.open + other.open)

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "decided": self.decided, "locked": self.locked, "open": self.open}

    def describe(self) -> str:
        """``82 open of 91 (0 decided, 9 on locked slices)``."""
        return f"{self.open} open of {self.total} ({self.decided} decided, {self.locked} on locked slices)"


def slice_counts(state: SliceState) -> DisagreementCounts:
    disputed = [g for g in state.match.groups if g.is_disagreement]
    decided = sum(is_decided(state, g) for g in disputed)
    locked = 0 if not state.record.locked else len(disputed) - decided
    return DisagreementCounts(len(disputed), decided, locked, len(disputed) - decided - locked)


def count_disagreements(states: Iterable[SliceState]) -> DisagreementCounts:
    total = DisagreementCounts()
    for state in states:
        total += slice_counts(state)
    return total


@dataclass(frozen=True)
class SliceProgress:
    """Where one slice's consensus stands: its vertebrae, how many are decided, how many disagreements are open, and
    whether the consensus is final (finalised, or made outside the workflow)."""

    vertebrae: int
    decided: int
    open: int
    final: bool
    started: bool  # a consensus file exists

    @property
    def in_progress(self) -> bool:
        """A consensus file that is not final yet (its slice shows ``decided/vertebrae`` instead of "consensus")."""
        return self.started and not self.final

    def text(self) -> str:
        return f"{self.decided}/{self.vertebrae} decided"


def slice_progress(state: SliceState) -> SliceProgress:
    groups = state.match.groups
    decided = sum(is_decided(state, g) for g in groups)
    final = state.problem is None and (state.record.finalised or state.record.external)
    return SliceProgress(len(groups), decided, len(open_disagreements(state)), final, state.annotation is not None)


def progress_from_files(key: SliceKey, annotations: Mapping[str, SliceAnnotation],
                        consensus: SliceAnnotation | None, *, unreadable: bool = False) -> SliceProgress | None:
    """:func:`slice_progress` of one slice from the compared readers' annotations (reader → annotation, in the
    readers' order) and its consensus file (``unreadable``: there is one that cannot be read, which locks the slice);
    None when none of the readers has annotated it."""
    if len(annotations) < 2 and consensus is None and not unreadable:  # one reader and no consensus: nothing to match
        vertebrae = sum(len(a.vertebrae) for a in annotations.values())
        return SliceProgress(vertebrae, 0, 0, False, False) if annotations else None
    state = state_from_files(key, annotations, consensus, problem="cannot be read" if unreadable else None)
    return slice_progress(state) if state is not None else None
