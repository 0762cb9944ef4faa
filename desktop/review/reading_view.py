"""Independent reading in the review workspace: what the reader may see of a case (blinding), the Mark case done
action, and the other readers' boxes once the case is done (or blinding is off for the study).

With blinding on, a reader sees only their own annotations of a case (and the model's pre-annotation) until they
mark it done: the consensus overlay and the other readers' boxes stay empty, and the case list shows no
disagreement mark for it. The consensus mode is the coordinator's view and is not blinded.

What blinding hides is said, not only hidden: :meth:`ReadingView.hidden` names whose annotations (and how many
slices of them) wait behind it, for the case list to show; a reader who imported LabelMe files under another reader
would otherwise see bare images marked "unread".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PySide6 import QtWidgets

from core.consensus.coannotation import readers_with_annotations
from core.consensus.reading import unannotated_slices
from core.consensus.styles import reader_style
from core.errors import ConsensusError, VertebraReviewError
from core.review.blinding import ReaderBlinding
from core.review.session import ReviewSession
from core.review.summary import SliceSummary
from core.study.slice_key import SliceKey, slice_key
from desktop.dialogs.messages import confirm, error_text
from desktop.viewer.box_overlay import chip_text
from desktop.viewer.reader_box_item import DrawnVersion

BLINDED = ("Blinded: the other readers' boxes and the consensus of {case} are hidden until you mark the case done "
           "(Ctrl+D), so that your reading stays independent; blinding is a study setting.")


def _slices_word(count: int) -> str:
    return f"{count} slice{'s' if count != 1 else ''}"


@dataclass(frozen=True)
class HiddenAnnotations:
    """What blinding hides of one case from the reader: the slices each other reader annotated, and the slices with
    a consensus."""

    case: str
    by_reader: dict[str, tuple[str, ...]] = field(default_factory=dict)
    consensus: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.by_reader or self.consensus)

    def owners(self) -> list[str]:
        return [*(f"'{r}'" for r in self.by_reader), *(["the consensus"] if self.consensus else [])]

    def short(self) -> str:
        """For the case's row: ``hidden: 'imported' (2), consensus (1)``."""
        parts = [f"'{r}' ({len(s)})" for r, s in self.by_reader.items()]
        parts += [f"consensus ({len(self.consensus)})"] if self.consensus else []
        return "hidden: " + ", ".join(parts)

    def text(self) -> str:
        """The whole sentence: what is hidden, why, and how to see it."""
        parts = [f"{_slices_word(len(s))} annotated by '{r}'" for r, s in self.by_reader.items()]
        parts += [f"the consensus of {_slices_word(len(self.consensus))}"] if self.consensus else []
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return (f"Blinded: {self.case} has {listed}, hidden from you until you mark the case done (Ctrl+D), so that "
                "your reading stays independent. Blinding is a study setting.")

    def on_slice(self, slice_id: str) -> str | None:
        """For the slice's row: whose annotations of this slice are hidden, or None."""
        owners = [f"'{r}'" for r, s in self.by_reader.items() if slice_id in s]
        owners += ["the consensus"] if slice_id in self.consensus else []
        if not owners:
            return None
        return f"Annotated by {' and '.join(owners)}: hidden until you mark the case done (blinding)."


class ReadingView:
    def __init__(self) -> None:
        self.session: ReviewSession | None = None
        self.blinding: ReaderBlinding | None = None
        self.readers: list[str] = []
        self._hidden: dict[str, HiddenAnnotations] = {}

    def attach(self, session: ReviewSession) -> None:
        self.session = session
        self.blinding = ReaderBlinding(session.study, session.reader)
        self.readers = readers_with_annotations(session.study)
        self._hidden.clear()

    def blinded(self, case: str) -> bool:
        return self.blinding is not None and self.blinding.blinded(case)

    def hidden(self, case: str) -> HiddenAnnotations | None:
        """What blinding hides of ``case`` from the reader (from the files there when the study was opened), or None
        when it hides nothing."""
        if self.session is None or not self.blinded(case):
            return None
        if case not in self._hidden:
            study = self.session.study
            by_reader = {r: s for r in study.readers() if r != self.session.reader
                         and (s := _annotated(study.root / "readers" / r / case))}
            self._hidden[case] = HiddenAnnotations(case, by_reader, _annotated(study.root / "consensus" / case))
        return self._hidden[case] or None

    def summaries(self, found: Mapping[SliceKey, SliceSummary]) -> dict[SliceKey, SliceSummary]:
        """The case list's summaries as the reader may see them."""
        if self.blinding is None or not self.blinding.on:
            return dict(found)
        model_id = self.session.model_id if self.session is not None else None
        compared = self.blinding.is_compared()  # once for the list, not once per slice (it lists the readers)
        return {key: self.blinding.summary(key, summary, model_id, compared=compared)
                for key, summary in found.items()}

    def other_readers(self, key: SliceKey) -> tuple[list[DrawnVersion], list[str]]:
        """The other readers' boxes of the slice (none while blinded), and problems with their files."""
        session = self.session
        if session is None or self.blinded(slice_key(key).case):
            return [], []
        others = [r for r in session.study.readers() if r != session.reader]
        order = list(dict.fromkeys([*self.readers, *others]))
        drawn, problems = [], []
        for number, reader in enumerate(others):
            try:
                annotation = session.study.load_annotation(*key, reader=reader, image_size=session.image_size(key))
            except VertebraReviewError as error:
                problems.append(f"{reader}'s annotation not shown: {error_text(error)}")
                continue
            row = number - (len(others) - 1) / 2
            for vertebra in annotation.vertebrae if annotation is not None else ():
                drawn.append(DrawnVersion(reader, vertebra, reader_style(order, reader),
                                          f"{reader} · {chip_text(vertebra)}", row))
        return drawn, problems

    def mark_done(self, case: str, parent: QtWidgets.QWidget) -> str | None:
        """Mark the reader's case done (asking first when slices have no file of theirs); the message to show, or
        None when nothing was done."""
        if self.blinding is None:
            return None
        if self.blinding.is_done(case):
            return f"{case} is already marked done"
        missing = unannotated_slices(self.blinding.study, self.blinding.reader, case)
        if missing and not confirm(
                parent, "Mark case done",
                f"You have no annotation for {len(missing)} of the slices of {case} ({', '.join(missing[:5])}). The "
                "consistency check counts them as missing for you.\n\nMark the case done anyway?"):
            return None
        try:
            self.blinding.mark_done(case, allow_incomplete=bool(missing))
        except ConsensusError as error:
            return f"{case} not marked done: {error_text(error)}"
        seen = " You can now see the other readers' boxes (M) and the consensus of it." if self.blinding.on else ""
        return f"{case} marked done.{seen}"


def _annotated(folder: Path) -> tuple[str, ...]:
    """The slices with a file in ``folder`` (one reader's, or the consensus, of one case)."""
    try:
        return tuple(sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith(".")))
    except OSError:
        return ()
