"""A slice in the consensus: the readers' vertebra groups matched across the slice, the consensus record read from
its file, and each stored decision tied back to the group it was made for by the readers' versions it was made from
(a decision whose versions have since changed is *stale*). :class:`~core.consensus.session.ConsensusSession` holds
one :class:`SliceState` per slice; :mod:`core.consensus.counts` and the agreement statistics read the same states
from files, without a session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from core.annotations.model import SliceAnnotation
from core.consensus.check import SliceMatch, match_slice
from core.consensus.matching import MatchSettings, VertebraGroup
from core.consensus.record import ConsensusRecord, Resolution, read_record
from core.errors import ConsensusError
from core.study.slice_key import SliceKey


class GroupRef(NamedTuple):
    """One vertebra group: its slice and its number on the slice (1 = the top one)."""

    case: str
    slice_id: str
    group: int

    @property
    def key(self) -> SliceKey:
        return self.case, self.slice_id

    def __str__(self) -> str:
        return f"{self.case}/{self.slice_id} vertebra {self.group}"


@dataclass(frozen=True)
class SliceState:
    """A slice in the session: its matched groups, its consensus record, and the decision of each group."""

    match: SliceMatch
    record: ConsensusRecord
    resolved: Mapping[int, Resolution]
    stale: tuple[Resolution, ...] = ()  # decisions made from versions the readers have since changed
    annotation: SliceAnnotation | None = field(default=None, repr=False)  # the consensus file as on disk
    problem: str | None = None  # why the consensus file cannot be read: the slice is locked until it is fixed

    @property
    def key(self) -> SliceKey:
        return self.match.key

    @property
    def open_groups(self) -> list[VertebraGroup]:
        """Groups without a confirmed decision (undecided, or only proposed)."""
        return [g for g in self.match.groups if not (g.index in self.resolved and self.resolved[g.index].confirmed)]


def slice_state(match: SliceMatch) -> SliceState:
    """Tie the stored decisions to the current groups by the versions they were made from."""
    problem = match.consensus_problem
    try:
        record = read_record(match.consensus, f"{match.case}/{match.slice_id}")
    except ConsensusError as exc:
        problem = exc.message
    if problem is not None:
        return SliceState(match, ConsensusRecord(external=True), {}, (), match.consensus, problem)
    unused = list(match.groups)
    resolved: dict[int, Resolution] = {}
    stale = []
    for resolution in record.resolutions:
        group = next((g for g in unused if resolution.matches(g)), None)
        if group is None:
            stale.append(resolution)
            continue
        unused.remove(group)
        resolved[group.index] = replace(resolution, group=group.index)
    return SliceState(match, record, resolved, tuple(stale), match.consensus)


def state_from_files(key: SliceKey, annotations: Mapping[str, SliceAnnotation], consensus: SliceAnnotation | None,
                     settings: MatchSettings | None = None, *, problem: str | None = None) -> SliceState | None:
    """One slice's state from the compared readers' annotations (reader → annotation, in the readers' order) and its
    consensus file (``problem``: why it cannot be read), as a session would see it; None when no reader has
    annotated the slice."""
    if not annotations:
        return None
    match = match_slice(*key, list(annotations), annotations, settings or MatchSettings(), consensus, problem)
    return slice_state(match)
