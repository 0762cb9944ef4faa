"""The current slice's boxes as the viewer shows them: the reader's result as last drawn or edited, the model's boxes
beside it, which of those the reader's boxes repeat, and whether the reader's boxes can be edited. Draws them for the
overlay mode, draws again only the boxes an edit changed where that is enough, shows the selected box in the
selected-box panel, and answers which box a click on a model box, Tab or a level step means. Owned by
:class:`desktop.review.controller.ReviewController`."""

from __future__ import annotations

from core.annotations.model import SliceAnnotation, Vertebra
from core.review.box_edits import BoxRef, next_along_spine, reader_partners, repeated_by_reader
from core.review.confidence import ModelCall
from core.review.session import ReviewSession
from core.review.status import SliceStatus
from core.study.slice_key import SliceKey
from desktop.panels.case_list import CaseListPanel
from desktop.panels.vertebra_panel import VertebraPanel
from desktop.review.inspector_view import show_selected_box
from desktop.review.reading_view import ReadingView
from desktop.review.slice_overlay import redraws_alone, slice_overlay
from desktop.viewer.slice_view import SliceView


def selected_index(session: ReviewSession | None, model: bool) -> int | None:
    """The index of ``session``'s selected box when it is one of the model's (``model``) or the reader's, else
    None."""
    box = session.selection if session is not None else None
    return box.index if box is not None and box.model == model else None


class ShownBoxes:
    """Draws the current slice's boxes in ``view`` and the selected one in ``inspector``; ``cases`` says whether the
    slice is finished (its summary), and ``reading`` what blinding hides."""

    def __init__(self, view: SliceView, inspector: VertebraPanel, cases: CaseListPanel, reading: ReadingView) -> None:
        self._view, self._inspector, self._cases, self._reading = view, inspector, cases, reading
        self.mine: SliceAnnotation | None = None
        self.model_shown: tuple[Vertebra, ...] = ()
        self.unlabelled: frozenset[int] | tuple[int, ...] = ()  # the model's boxes the reader's repeat
        self.editable = False
        self.call: ModelCall | None = None  # what the shown model result says for judging its unsure boxes

    def draw(self, session: ReviewSession, key: SliceKey, overlay_mode: str) -> list[str]:
        """Draw the boxes ``overlay_mode`` asks for; returns problems with the model's or consensus files."""
        shown = slice_overlay(overlay_mode, session, self._reading, key, self.mine)
        self._view.show_readers(shown.readers)
        self.editable, self.model_shown, self.call = shown.editable, shown.model_boxes, shown.call
        selected, selected_model = selected_index(session, False), selected_index(session, True)
        if (selected is not None and selected >= len(shown.mine)) or \
                (selected_model is not None and selected_model >= len(self.model_shown)):
            session.select(key, None)
        self.unlabelled = repeated_by_reader(shown.mine, shown.others) if shown.from_model else ()
        self._view.show_boxes(shown.mine, shown.others, selected=selected_index(session, False),
                              selected_other=selected_index(session, True), editable=self.editable,
                              others_from_model=shown.from_model, unlabelled_others=self.unlabelled,
                              flag_unsure=not self._finished(key), call=shown.call)
        self.show_selected(session)
        return shown.problems

    def _finished(self, key: SliceKey) -> bool:
        """Whether the reader has finished the shown slice (reviewed it, or the consensus exists): the model's unsure
        results are no longer marked."""
        summary = self._cases.summary(key)
        return bool(self.mine is not None and self.mine.reviewed) or (
            summary is not None and summary.status is SliceStatus.CONSENSUS)

    def redraw_changed(self, session: ReviewSession, state: SliceAnnotation, indices: tuple[int, ...] | None) -> bool:
        """The reader's result is now ``state``: only the boxes ``indices`` are drawn again, and True. False where
        that is not enough and every box must be drawn again: the edit changed what the other boxes show (boxes
        added or removed, the slice reviewed, a model box now repeated by the reader's), or the reader's boxes are
        not the ones shown editable."""
        before, self.mine = self.mine, state
        if indices is None or not self.editable or \
                not redraws_alone(before, state, self.model_shown, self.unlabelled):
            return False
        self._view.update_boxes(indices, state.vertebrae, selected_index(session, False))
        self.show_selected(session)
        return True

    def show_selected(self, session: ReviewSession | None) -> None:
        """Show the session's selected box in the selected-box panel."""
        has_model = session is not None and session.model_id is not None
        show_selected_box(self._inspector, self.mine, self.model_shown, session.selection if session else None,
                          editable=self.editable, has_model=has_model, call=self.call)

    def resolve(self, box: BoxRef) -> BoxRef:
        """A model box on a vertebra where the reader has a box of their own stands for that box."""
        mine = self.mine.vertebrae if box.model and self.mine is not None and self.editable else ()
        partner = reader_partners(mine, self.model_shown).get(box.index)
        return box if partner is None else BoxRef(partner)

    def along_spine(self, target: BoxRef | None, delta: int) -> BoxRef | None:
        """Tab's box: the next one down the spine from ``target`` (``delta`` -1: up), or None."""
        mine = self.mine.vertebrae if self.mine is not None and self.editable else ()
        return next_along_spine(mine, self.model_shown, target, delta)

    def vertebra(self, target: BoxRef | None) -> Vertebra | None:
        """The shown box ``target`` names (the model's or the reader's), or None where there is none."""
        if target is None:
            return None
        boxes = self.model_shown if target.model else (self.mine.vertebrae if self.mine is not None else ())
        return boxes[target.index] if target.index < len(boxes) else None
