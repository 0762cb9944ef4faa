"""What the consensus mode draws and says about a slice: every reader's boxes in their own style (the vertebra in
question bold, with the readers' names and labels; the slice's other vertebrae faint), and short texts for the
panel."""

from __future__ import annotations

from collections.abc import Mapping

from core.consensus.counts import is_decided, slice_progress
from core.consensus.session import ConsensusSession, GroupRef, SliceState
from core.consensus.styles import ReaderStyle
from core.study.slice_key import slice_key
from desktop.viewer.box_overlay import chip_text
from desktop.viewer.reader_box_item import DrawnVersion


def versions_on_slice(state: SliceState, styles: Mapping[str, ReaderStyle], current: int | None) -> list[DrawnVersion]:
    readers = list(state.match.readers)
    drawn = []
    for group in state.match.groups:
        is_current = group.index == current
        for number, reader in enumerate(readers):
            vertebra = group.versions.get(reader)
            if vertebra is None:
                continue
            text = f"{reader} · {chip_text(vertebra.with_changes(level=None))}" if is_current else ""
            drawn.append(DrawnVersion(reader, vertebra, styles[reader], text, number - (len(readers) - 1) / 2,
                                      is_current))
    return drawn


def slice_position(session: ConsensusSession, ref: GroupRef | None, key: tuple[str, str]) -> str:
    """``case-0001/s002 · vertebra 6 · disagreement 3 of 17 open``."""
    where = f"<b>{slice_key(key).text}</b>"
    if ref is None:
        return f"{where} · the readers agree on every vertebra here"
    open_refs = session.disagreements()
    if ref in open_refs:
        place = f"disagreement {open_refs.index(ref) + 1} of {len(open_refs)} open"
    else:
        state = session.state(ref.key)
        done = "decided" if is_decided(state, session.group(ref)) else "on a locked slice"
        place = f"{done} ({len(open_refs)} open left)"
    return f"{where} · vertebra {ref.group} · {place}"


def slice_text(state: SliceState) -> str:
    """``1/10 decided (2 of 3 disagreements open) · not final`` and the like."""
    progress = slice_progress(state)
    disputes = sum(g.is_disagreement for g in state.match.groups)
    if state.problem:
        return f"The consensus file cannot be read ({state.problem}); fix or remove it: the slice is locked."
    if state.record.external:
        return "The consensus of this slice was made outside this workflow: it is locked; reopen it to start over."
    head = f"{progress.text()} ({progress.open} of {disputes} disagreements open)"
    if state.record.finalised:
        return f"{head} · final since {state.record.finalised_at} (agreed by {', '.join(state.record.finalised_by)})"
    absent = f" · no file from {', '.join(state.match.absent)}" if state.match.absent else ""
    return f"{head} · not final{absent}"
