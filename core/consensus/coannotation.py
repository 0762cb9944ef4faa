"""What a co-annotation view needs besides the session (Qt-free): which readers to compare, the order of the steps
through the disagreements, where an edited result starts, and how a decision reads for people.

The session (:class:`core.consensus.session.ConsensusSession`) holds every decision and writes it with its
provenance; these helpers only choose and describe.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.annotations.model import Vertebra, highest_genant
from core.consensus.check import ReaderChoice, study_readers
from core.consensus.matching import Agreement, common_level
from core.consensus.record import CONSENSUS_SOURCE, Resolution
from core.consensus.session import ConsensusSession, GroupRef, GroupView
from core.study.layout import Study
from core.study.slice_key import SliceKey


def readers_with_annotations(study: Study, readers: Sequence[str] | None = None) -> list[str]:
    """The study's readers (or ``readers``) with at least one annotation file. A reader folder without files (the
    coordinator's own, made when they opened the study) would otherwise leave no vertebra that every reader drew."""
    found = []
    for reader in study.readers() if readers is None else readers:
        folder = study.root / "readers" / reader
        if folder.is_dir() and next(folder.glob("*/*.json"), None) is not None:
            found.append(reader)
    return found


def consensus_readers(study: Study) -> ReaderChoice:
    """The readers the consensus mode compares: :func:`~core.consensus.check.study_readers` who have annotated a
    slice (the others change no count), and who is left out with annotations of their own, and why."""
    choice = study_readers(study)
    annotated = readers_with_annotations(study, [*choice.readers, *choice.left_out])
    left_out = {r: why for r, why in choice.left_out.items() if r in annotated}
    for reader in left_out:
        files = sum(1 for _ in (study.root / "readers" / reader).glob("*/*.json"))
        left_out[reader] = f"{files} slice{'s' if files != 1 else ''} read; {left_out[reader]}"
    return ReaderChoice(tuple(r for r in choice.readers if r in annotated), left_out)


def _rank(session: ConsensusSession) -> dict[SliceKey, int]:
    return {key: i for i, key in enumerate(session.slice_keys())}


def step_disagreement(session: ConsensusSession, current: GroupRef | None, delta: int, *,
                      include_decided: bool = False, wrap: bool = True) -> GroupRef | None:
    """The disagreement one step (``delta`` > 0: forward, < 0: back) from ``current`` among those to step through:
    the open ones, or all with ``include_decided``. ``current`` need not be in that list (it was just decided): the
    step counts from its place on the slices, top to bottom. At either end it wraps round (with ``wrap``). None when
    there is nothing to step to."""
    candidates = session.disagreements(include_decided=include_decided)
    if not candidates:
        return None
    if current is None:
        return candidates[0] if delta >= 0 else candidates[-1]
    rank = _rank(session)

    def place(ref: GroupRef) -> tuple[int, int]:
        return rank.get(ref.key, -1), ref.group

    here = place(current)
    if delta >= 0:
        later = [r for r in candidates if place(r) > here]
        return later[0] if later else (candidates[0] if wrap and candidates[0] != current else None)
    earlier = [r for r in candidates if place(r) < here]
    return earlier[-1] if earlier else (candidates[-1] if wrap and candidates[-1] != current else None)


def first_on_slice(session: ConsensusSession, key: SliceKey, *, include_decided: bool = True) -> GroupRef | None:
    """The slice's first disagreement (open ones first), or None when the readers agree on every vertebra there."""
    refs = [r for r in session.disagreements(include_decided=include_decided) if r.key == tuple(key)]
    open_refs = [r for r in session.disagreements() if r.key == tuple(key)]
    return (open_refs or refs or [None])[0]


def draft_result(view: GroupView) -> Vertebra:
    """Where an edited result starts: the decided result, else the majority's vertebra, else the readers' median box
    with no disease (a conflict: nothing is preselected, the readers choose)."""
    if view.resolution is not None and view.resolution.result is not None:
        return view.resolution.result
    majority = view.majority
    if majority is not None and majority.present and majority.box is not None:
        return Vertebra(majority.box, majority.diseases, level=majority.level, source=CONSENSUS_SOURCE,
                        genant=majority.genant)
    drawn = [v for v in view.group.versions.values() if v is not None]
    return Vertebra(view.group.box, frozenset(), level=common_level(drawn), source=CONSENSUS_SOURCE,
                    genant=highest_genant(v.genant for v in drawn))


def group_status_text(view: GroupView) -> str:
    """``majority (label, box)``, ``conflict: no majority``, ``missing for r2 (label)`` …"""
    group = view.group
    kinds = ", ".join(group.kinds)
    if group.status is Agreement.CONFLICT:
        text = "conflict: no majority"
    elif group.status is Agreement.MISSING:
        text = f"missing for {', '.join(group.missing_for)}" + ("" if group.majority else "; no majority")
    else:
        text = group.status.value
    return f"{text} ({kinds})" if kinds else text


def resolution_text(resolution: Resolution | None) -> str:
    """How a vertebra was decided, for people: ``reader r2's version, agreed by r1, r2, r3 at …``."""
    if resolution is None:
        return "not decided yet"
    method = {
        "reader": f"{resolution.reader}'s version",
        "majority": "the majority",
        "unanimous": "unanimous",
        "edited": "an edited result",
        "proposed": f"proposed ({resolution.basis or 'majority'}), not confirmed",
    }.get(resolution.method, resolution.method)
    result = "no vertebra here" if resolution.result is None else resolution.result.label
    by = ", ".join(resolution.agreed_by) or "nobody yet"
    return f"{method} → {result}; agreed by {by} at {resolution.at}"


def describe_version(vertebra: Vertebra | None) -> tuple[str, str, str]:
    """(label, level, box) of one reader's version for a side-by-side table."""
    if vertebra is None:
        return "no box", "", ""
    box = vertebra.box
    return vertebra.label, vertebra.level or "", f"{box.x1:.0f},{box.y1:.0f} – {box.x2:.0f},{box.y2:.0f}"


def consulting_readers(chosen: Sequence[str], readers: Sequence[str]) -> tuple[str, ...]:
    """The readers agreeing, in the session's order (those not compared are kept after them)."""
    chosen_set = set(chosen)
    ordered = [r for r in readers if r in chosen_set]
    return tuple(ordered + [r for r in chosen if r not in readers])
