"""Consulted co-annotation: the plain-Python model a GUI (or a script) drives to reach the consensus.

The readers meet, step through the disagreements only, see each reader's version of a vertebra side by side, and
decide: take one reader's version, take the majority, or set an edited result. Unanimous vertebrae can be accepted
in bulk; a conflict is never decided without an explicit choice. Every decision is a :class:`Resolution` with its
provenance (method, who agreed, when, the readers' versions it was made from; only readers of the slice are recorded
as agreeing), written at once to
``consensus/<case>/<slice>.json`` (see :mod:`core.consensus.record`), so reopening the session reproduces the state.
A slice whose every vertebra is decided can be finalised; a finalised slice (or an external consensus file) is
locked until it is reopened.

Events: ``changed(key)`` after every write of a slice's consensus.

What the session holds for each slice (its groups, its record, the decision tied to each group) is a
:class:`~core.consensus.slice_state.SliceState`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from core.annotations.model import Vertebra
from core.consensus.check import ConsistencyCheck, check_study
from core.consensus.counts import count_disagreements, is_open_disagreement
from core.consensus.matching import Agreement, MajorityCall, MatchSettings, VertebraGroup
from core.consensus.reading import Clock, now_utc, timestamp
from core.consensus.record import (
    CONSENSUS_SOURCE,
    ConsensusRecord,
    Resolution,
    consensus_annotation,
    external_history,
    result_json,
)
from core.consensus.slice_state import GroupRef, SliceState, slice_state
from core.errors import ConsensusError
from core.events import Event
from core.progress import ProgressGenerator
from core.study.layout import Study
from core.study.slice_key import SliceKey, slice_key

__all__ = ["ConsensusSession", "GroupRef", "GroupView", "ProposalReport", "SliceState"]


class GroupView(NamedTuple):
    """What a co-annotation view shows for one vertebra: each reader's version side by side and the decision."""

    ref: GroupRef
    group: VertebraGroup
    labels: Mapping[str, str]
    majority: MajorityCall | None
    resolution: Resolution | None
    absent: tuple[str, ...]  # readers with no file for this slice
    locked: bool


@dataclass
class ProposalReport:
    written: list[SliceKey] = field(default_factory=list)
    proposed: int = 0  # new or changed proposals written
    unchanged: int = 0  # proposals already in place
    conflicts: list[GroupRef] = field(default_factory=list)  # left open: no majority
    skipped: list[tuple[SliceKey, str]] = field(default_factory=list)  # (slice, why): finalised or external


class ConsensusSession:
    """Events: ``changed(key)``."""

    def __init__(self, study: Study, check: ConsistencyCheck, *, consulting: Sequence[str] | None = None,
                 clock: Clock = now_utc) -> None:
        self.study = study
        self.check = check
        self.consulting = tuple(consulting) if consulting is not None else check.readers
        self.clock = clock
        self.changed = Event()
        self._states: dict[SliceKey, SliceState] = {m.key: slice_state(m) for m in check.slices}

    @classmethod
    def open(cls, study: Study, readers: Sequence[str] | None = None, settings: MatchSettings | None = None, *,
             consulting: Sequence[str] | None = None, clock: Clock = now_utc) -> ProgressGenerator[ConsensusSession]:
        check = yield from check_study(study, readers, settings)
        return cls(study, check, consulting=consulting, clock=clock)

    # -- reading ----------------------------------------------------------------------------------------------------
    def slice_keys(self) -> list[SliceKey]:
        return list(self._states)

    def state(self, key: SliceKey) -> SliceState:
        try:
            return self._states[tuple(key)]
        except KeyError:
            raise ConsensusError(f"slice {slice_key(key).text} has no reader annotations in this session") from None

    def group(self, ref: GroupRef) -> VertebraGroup:
        for group in self.state(ref.key).match.groups:
            if group.index == ref.group:
                return group
        raise ConsensusError(f"there is no {ref}")

    def disagreements(self, *, include_decided: bool = False) -> list[GroupRef]:
        """The vertebrae to step through: disagreements without a confirmed decision (all of them with
        ``include_decided``), slice by slice, top to bottom. Locked slices are left out unless asked for."""
        refs = []
        for key, state in self._states.items():
            refs.extend(GroupRef(*key, g.index) for g in state.match.disagreements()
                        if include_decided or is_open_disagreement(state, g))
        return refs

    def view(self, ref: GroupRef) -> GroupView:
        state = self.state(ref.key)
        group = self.group(ref)
        return GroupView(ref, group, group.labels(), group.majority, state.resolved.get(group.index),
                         state.match.absent, state.record.locked)

    def summary(self) -> dict[str, int]:
        """Slices (final, made outside the workflow) and disagreements (:mod:`core.consensus.counts`: ``open`` is
        what :meth:`disagreements` steps through)."""
        states = list(self._states.values())
        counts = count_disagreements(states)
        return {
            "slices": len(states),
            "finalised": sum(s.record.finalised for s in states),
            "external": sum(s.record.external for s in states),
            "disagreements": counts.total,
            "decided": counts.decided,
            "locked": counts.locked,
            "open": counts.open,
        }

    def current_check(self) -> ConsistencyCheck:
        """The check with each slice's consensus as it is now (after the decisions of this session)."""
        slices = [replace(s.match, consensus=s.annotation) for s in self._states.values()]
        return replace(self.check, slices=slices)

    def statistics(self, **options: Any) -> dict[str, Any]:
        """The agreement statistics, each reader against the consensus as it is now (see
        :func:`core.consensus.agreement.agreement_statistics` for ``options``)."""
        from core.consensus.agreement import agreement_statistics

        return agreement_statistics(self.current_check(), **options)

    def decision_labels(self) -> dict[tuple[str, str, int], str]:
        """(case, slice, vertebra) → how it was decided, for reports (``reader r2``, ``proposed (majority)``, …)."""
        labels: dict[tuple[str, str, int], str] = {}
        for key, state in self._states.items():
            for group in state.match.groups:
                resolution = state.resolved.get(group.index)
                if state.problem is not None:
                    text = "unreadable consensus"
                elif state.record.external:
                    text = "external consensus"
                elif resolution is None:
                    continue
                elif resolution.method == "proposed":
                    text = f"proposed ({resolution.basis})"
                else:
                    text = f"reader {resolution.reader}" if resolution.method == "reader" else resolution.method
                    text += " (final)" if state.record.finalised else ""
                labels[(*key, group.index)] = text
        return labels

    # -- decisions --------------------------------------------------------------------------------------------------
    def take_reader(self, ref: GroupRef, reader: str, *, agreed_by: Sequence[str] | None = None,
                    note: str = "") -> Resolution:
        """Take ``reader``'s version (their box and diseases, or no vertebra if they drew none here)."""
        group = self.group(ref)
        if reader not in group.versions:
            raise ConsensusError(f"{reader} is not among the readers of {ref} ({', '.join(group.readers)})")
        version = group.versions[reader]
        result = None if version is None else Vertebra(version.box, version.diseases, level=version.level,
                                                       source=CONSENSUS_SOURCE, description=version.description,
                                                       genant=version.genant)
        return self._decide(ref, "reader", result, reader=reader, agreed_by=agreed_by, note=note)

    def take_majority(self, ref: GroupRef, *, agreed_by: Sequence[str] | None = None, note: str = "") -> Resolution:
        group = self.group(ref)
        if group.majority is None:
            labels = ", ".join(f"{r} {label}" for r, label in group.labels().items())
            raise ConsensusError(f"{ref} has no majority ({labels}): take one reader's version or edit the result")
        return self._decide(ref, "majority", _majority_vertebra(group.majority), agreed_by=agreed_by, note=note)

    def set_result(self, ref: GroupRef, vertebra: Vertebra | None, *, agreed_by: Sequence[str] | None = None,
                   note: str = "") -> Resolution:
        """An edited result (a box with diseases and level), or None: there is no vertebra here."""
        result = None if vertebra is None else vertebra.with_changes(source=CONSENSUS_SOURCE)
        return self._decide(ref, "edited", result, agreed_by=agreed_by, note=note)

    def clear(self, ref: GroupRef) -> None:
        """Undo the decision of a group (it is kept in the slice's history)."""
        state = self._unlocked(ref.key)
        self.group(ref)
        old = state.resolved.get(ref.group)
        if old is None:
            return
        at = timestamp(self.clock)
        resolved = {i: r for i, r in state.resolved.items() if i != ref.group}
        self._commit(state, resolved, [_superseded(old, at, "cleared")])

    def accept_unanimous(self, keys: Iterable[SliceKey] | None = None, *,
                         agreed_by: Sequence[str] | None = None) -> int:
        """Accept every undecided unanimous vertebra whose boxes agree (in ``keys``, or in every unlocked slice).
        Majorities and conflicts are left for an explicit choice. Returns how many were accepted."""
        accepted = 0
        at = timestamp(self.clock)
        for key in list(keys) if keys is not None else self.slice_keys():
            state = self.state(key)
            if state.record.locked:
                continue
            decided = dict(state.resolved)
            history = []
            if agreed_by is not None and not self._agreeing(state.match.readers, agreed_by):
                continue  # none of those agreeing read this slice
            for group in state.open_groups:
                if group.status is Agreement.UNANIMOUS and not group.boxes_differ and group.majority is not None:
                    if group.index in decided:
                        history.append(_superseded(decided[group.index], at, "confirmed as unanimous"))
                    decided[group.index] = self._resolution(group, "unanimous", _majority_vertebra(group.majority),
                                                            at=at, agreed_by=agreed_by)
                    accepted += 1
            if decided != dict(state.resolved):
                self._commit(state, decided, history)
        return accepted

    def propose(self, keys: Iterable[SliceKey] | None = None) -> ProposalReport:
        """Write the majority call of every undecided vertebra as a *proposal* (method ``proposed``, agreed by
        nobody yet). Conflicts stay open; finalised and external consensus files are never touched."""
        report = ProposalReport()
        at = timestamp(self.clock)
        for key in list(keys) if keys is not None else self.slice_keys():
            state = self.state(key)
            if state.record.locked:
                why = ("finalised" if state.record.finalised else "unreadable" if state.problem
                       else "made outside the consensus workflow")
                report.skipped.append((key, why))
                continue
            decided = dict(state.resolved)
            for group in state.open_groups:
                if group.majority is None:
                    report.conflicts.append(GroupRef(*key, group.index))
                    continue
                basis = "unanimous" if group.status is Agreement.UNANIMOUS and not group.boxes_differ else "majority"
                proposal = self._resolution(group, "proposed", _majority_vertebra(group.majority), at=at,
                                            agreed_by=(), basis=basis)
                earlier = decided.get(group.index)
                if earlier is None or result_json(earlier.result) != result_json(proposal.result):
                    decided[group.index] = proposal
                    report.proposed += 1
                else:
                    report.unchanged += 1
            if decided != dict(state.resolved) or state.stale:
                self._commit(state, decided, [])
                report.written.append(key)
        return report

    def finalise(self, key: SliceKey, *, agreed_by: Sequence[str] | None = None) -> None:
        """Mark the slice's consensus final; every vertebra must have a confirmed decision."""
        state = self._unlocked(key)
        open_groups = state.open_groups
        if open_groups:
            listing = ", ".join(str(g.index) for g in open_groups[:10])
            raise ConsensusError(
                f"{slice_key(key).text} cannot be finalised: {len(open_groups)} vertebrae are not decided ({listing})"
            )
        by = self._agreeing(state.match.readers, agreed_by, key=key)
        record = state.record.with_changes(finalised_at=timestamp(self.clock), finalised_by=by)
        self._commit(state, dict(state.resolved), [], record=record)

    def reopen(self, key: SliceKey, *, note: str = "") -> None:
        """Unlock a finalised slice, or start the workflow over an external consensus file (its content is kept
        in the history)."""
        state = self.state(key)
        self._check_readable(state)
        at = timestamp(self.clock)
        if state.record.external and state.annotation is not None:
            entry = external_history(state.annotation, at, note or "reopened an external consensus file")
            record = ConsensusRecord(history=(*state.record.history, entry))
            self._commit(state, {}, [], record=record)
        elif state.record.finalised:
            entry = {"reopened_at": at, "finalised_at": state.record.finalised_at,
                     "finalised_by": list(state.record.finalised_by), "note": note}
            record = state.record.with_changes(finalised_at=None, finalised_by=(),
                                               history=(*state.record.history, entry))
            self._commit(state, dict(state.resolved), [], record=record)

    # -- internals --------------------------------------------------------------------------------------------------
    @staticmethod
    def _check_readable(state: SliceState) -> None:
        if state.problem is not None:
            raise ConsensusError(f"the consensus file of {slice_key(state.key).text} cannot be read "
                                 f"({state.problem}); fix or remove it first")

    def _unlocked(self, key: SliceKey) -> SliceState:
        state = self.state(key)
        self._check_readable(state)
        if state.record.finalised:
            raise ConsensusError(f"the consensus of {slice_key(key).text} is finalised; reopen it to change it")
        if state.record.external:
            raise ConsensusError(
                f"the consensus of {slice_key(key).text} was made or edited outside the consensus workflow; "
                "reopen it to start over (its content is kept in the history)"
            )
        return state

    def _agreeing(self, readers: Sequence[str], agreed_by: Sequence[str] | None, *,
                  key: SliceKey | None = None) -> tuple[str, ...]:
        """Who is recorded as agreeing on a slice read by ``readers``: those named (the session's consulting readers
        when None) who read it; nobody is recorded for a slice they did not read. Naming only such people is an
        error when ``key`` is given."""
        by = self.consulting if agreed_by is None else tuple(agreed_by)
        chosen = tuple(r for r in dict.fromkeys(by) if r in readers)
        if key is not None and agreed_by and not chosen:
            raise ConsensusError(f"{', '.join(by)} did not read {slice_key(key).text}: of its readers "
                                 f"({', '.join(readers)}), tick who is agreeing")
        return chosen

    def _resolution(self, group: VertebraGroup, method: str, result: Vertebra | None, *, at: str,
                    agreed_by: Sequence[str] | None, key: SliceKey | None = None, **more: Any) -> Resolution:
        by = self._agreeing(group.readers, agreed_by, key=key)
        return Resolution(group.index, method, tuple(group.fingerprint()), result, by, at, **more)

    def _decide(self, ref: GroupRef, method: str, result: Vertebra | None, *, agreed_by: Sequence[str] | None,
                note: str, reader: str | None = None) -> Resolution:
        state = self._unlocked(ref.key)
        group = self.group(ref)
        at = timestamp(self.clock)
        resolution = self._resolution(group, method, result, at=at, agreed_by=agreed_by, key=ref.key, reader=reader,
                                      note=note)
        history = [_superseded(state.resolved[group.index], at, f"replaced ({method})")] \
            if group.index in state.resolved else []
        self._commit(state, {**state.resolved, group.index: resolution}, history)
        return resolution

    def _commit(self, state: SliceState, resolved: Mapping[int, Resolution], history: Sequence[Mapping[str, Any]],
                *, record: ConsensusRecord | None = None) -> None:
        """Write the slice's consensus, then (only when the write succeeded) take it as the new state."""
        base = record if record is not None else state.record
        at = timestamp(self.clock) if state.stale else ""
        stale = [_superseded(r, at, "the readers' annotations changed since") for r in state.stale]
        record = base.with_changes(
            readers=state.match.readers,
            match=self.check.settings.to_json(),
            resolutions=tuple(resolved[i] for i in sorted(resolved)),
            history=(*base.history, *stale, *history),
            external=False,
        )
        annotation = consensus_annotation(record, state.match.image_size, state.annotation)
        self.study.save_annotation(annotation, *state.key)
        self._states[state.key] = SliceState(state.match, record, dict(resolved), (), annotation)
        self.changed.emit(state.key)


def _majority_vertebra(call: MajorityCall) -> Vertebra | None:
    if not call.present or call.box is None:
        return None
    return Vertebra(call.box, call.diseases, level=call.level, source=CONSENSUS_SOURCE, genant=call.genant)


def _superseded(resolution: Resolution, at: str, reason: str) -> dict[str, Any]:
    return {**resolution.to_json(), "superseded_at": at, "reason": reason}
