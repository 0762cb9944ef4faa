"""Independent reading in the review workspace: what the reader may see of a case (blinding), the Mark case done
action, and the other readers' boxes once the case is done (or blinding is off for the study).

With blinding on, a reader sees only their own annotations of a case (and the model's pre-annotation) until they
mark it done: the consensus overlay and the other readers' boxes stay empty, and the case list shows no
disagreement mark for it. The consensus mode is the coordinator's view and is not blinded.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6 import QtWidgets

from core.consensus.blinding import ReaderBlinding
from core.consensus.coannotation import readers_with_annotations
from core.consensus.reading import unannotated_slices
from core.consensus.styles import reader_style
from core.errors import ConsensusError, VertebraReviewError
from core.review.session import ReviewSession
from core.review.summary import SliceKey, SliceSummary
from desktop.dialogs.messages import confirm, error_text
from desktop.viewer.box_overlay import chip_text
from desktop.viewer.reader_box_item import DrawnVersion

BLINDED = ("Blinded: you see only your own boxes of {case} until you mark the case done (Ctrl+D); blinding is a "
           "study setting.")


class ReadingView:
    def __init__(self) -> None:
        self.session: ReviewSession | None = None
        self.blinding: ReaderBlinding | None = None
        self.readers: list[str] = []

    def attach(self, session: ReviewSession) -> None:
        self.session = session
        self.blinding = ReaderBlinding(session.study, session.reader)
        self.readers = readers_with_annotations(session.study)

    def blinded(self, case: str) -> bool:
        return self.blinding is not None and self.blinding.blinded(case)

    def summaries(self, found: Mapping[SliceKey, SliceSummary]) -> dict[SliceKey, SliceSummary]:
        """The case list's summaries as the reader may see them."""
        if self.blinding is None or not self.blinding.on:
            return dict(found)
        model_id = self.session.model_id if self.session is not None else None
        return {key: self.blinding.summary(key, summary, model_id) for key, summary in found.items()}

    def other_readers(self, key: SliceKey) -> tuple[list[DrawnVersion], list[str]]:
        """The other readers' boxes of the slice (none while blinded), and problems with their files."""
        session = self.session
        if session is None or self.blinded(key[0]):
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
