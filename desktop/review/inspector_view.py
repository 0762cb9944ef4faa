"""What the selected-box panel shows for the current selection: the reader's box, or the model's (an edit makes
it the reader's), its place down the spine, and which slice actions are possible."""

from __future__ import annotations

from collections.abc import Sequence

from core.annotations.model import SliceAnnotation, Vertebra
from core.review.box_edits import BoxRef, spine_sequence
from core.review.confidence import ModelCall
from desktop.panels.vertebra_panel import VertebraPanel


def show_selected_box(inspector: VertebraPanel, mine: SliceAnnotation | None, model_shown: Sequence[Vertebra],
                      selection: BoxRef | None, *, editable: bool, has_model: bool,
                      call: ModelCall | None = None) -> None:
    """``call``: what the model's result says (its close calls and boxes at the image's edge are named)."""
    boxes: Sequence[Vertebra] = mine.vertebrae if mine is not None and editable else ()
    note = ""
    if selection is not None and selection.model:
        boxes = model_shown
        note = "the model's: an edit makes it yours" if editable else "the model's"
    index = selection.index if selection is not None and selection.index < len(boxes) else None
    vertebra = boxes[index] if index is not None else None
    place = spine_sequence(boxes).index(index) if vertebra is not None else 0
    inspector.show_vertebra(vertebra, place, len(boxes), editable=editable, note=note, call=call)
    inspector.set_actions_enabled(accept=has_model and mine is not None, review=mine is not None)
