"""Undoable edits of one slice annotation, as a command stack that lives in the model, not in a widget.

Each command turns one :class:`SliceAnnotation` value into another and back. :class:`AnnotationEditor` holds the
current value, applies commands, and emits ``changed`` after every change (apply, undo or redo) so that views redraw
and the session saves. Indices into ``vertebrae`` stay valid because undo and redo are strictly last-in first-out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.annotations.model import LEVELS, Box, Disease, SliceAnnotation, Vertebra, disease_label
from core.errors import AnnotationEditError
from core.events import Event


class Command:
    """An edit with its inverse. ``text`` says what it did, for Undo/Redo menu items."""

    text = "edit"

    def apply(self, state: SliceAnnotation) -> SliceAnnotation:
        raise NotImplementedError

    def revert(self, state: SliceAnnotation) -> SliceAnnotation:
        raise NotImplementedError


def _check_index(state: SliceAnnotation, index: int) -> None:
    if not 0 <= index < len(state.vertebrae):
        raise AnnotationEditError(f"no vertebra number {index + 1} on this slice ({len(state.vertebrae)} boxes)")


def _with(state: SliceAnnotation, index: int, vertebra: Vertebra) -> SliceAnnotation:
    items = list(state.vertebrae)
    items[index] = vertebra
    return state.with_changes(vertebrae=tuple(items))


def _check_box(state: SliceAnnotation, box: Box) -> None:
    if box.x1 < 0 or box.y1 < 0 or box.x2 > state.image_width or box.y2 > state.image_height:
        raise AnnotationEditError(f"box {box.as_list()} is outside the {state.image_width}x{state.image_height} image")


@dataclass
class AddVertebra(Command):
    vertebra: Vertebra
    text = "add box"

    def apply(self, state: SliceAnnotation) -> SliceAnnotation:
        _check_box(state, self.vertebra.box)
        return state.with_changes(vertebrae=(*state.vertebrae, self.vertebra))

    def revert(self, state: SliceAnnotation) -> SliceAnnotation:
        return state.with_changes(vertebrae=state.vertebrae[:-1])


@dataclass
class DeleteVertebra(Command):
    index: int
    _removed: Vertebra | None = None
    text = "delete box"

    def apply(self, state: SliceAnnotation) -> SliceAnnotation:
        _check_index(state, self.index)
        self._removed = state.vertebrae[self.index]
        return state.with_changes(vertebrae=state.vertebrae[: self.index] + state.vertebrae[self.index + 1 :])

    def revert(self, state: SliceAnnotation) -> SliceAnnotation:
        assert self._removed is not None
        items = list(state.vertebrae)
        items.insert(self.index, self._removed)
        return state.with_changes(vertebrae=tuple(items))


@dataclass
class _ReplaceVertebra(Command):
    """Base for edits that change one vertebra's fields."""

    index: int
    _before: Vertebra | None = None

    def changed(self, vertebra: Vertebra) -> Vertebra:
        raise NotImplementedError

    def apply(self, state: SliceAnnotation) -> SliceAnnotation:
        _check_index(state, self.index)
        self._before = state.vertebrae[self.index]
        return _with(state, self.index, self.changed(self._before))

    def revert(self, state: SliceAnnotation) -> SliceAnnotation:
        assert self._before is not None
        return _with(state, self.index, self._before)


@dataclass
class SetBox(_ReplaceVertebra):
    """Move or resize a box."""

    box: Box | None = None
    source: str | None = None
    text = "move or resize box"

    def apply(self, state: SliceAnnotation) -> SliceAnnotation:
        if self.box is None:
            raise AnnotationEditError("no box given")
        _check_box(state, self.box)
        return super().apply(state)

    def changed(self, vertebra: Vertebra) -> Vertebra:
        return vertebra.with_changes(box=self.box, source=self.source or vertebra.source)


@dataclass
class SetDiseases(_ReplaceVertebra):
    """Set a vertebra's diseases; an empty set makes it NORMAL."""

    diseases: Iterable[Disease] = ()
    source: str | None = None

    def __post_init__(self) -> None:
        # Frozen once: a generator would be empty on redo, and a misspelt code must fail as an edit error.
        try:
            self.diseases = frozenset(Disease(d) for d in self.diseases)
        except ValueError as exc:
            raise AnnotationEditError(f"unknown disease: {exc}") from exc

    @property
    def text(self) -> str:  # type: ignore[override]
        return f"set {disease_label(self.diseases)}"

    def changed(self, vertebra: Vertebra) -> Vertebra:
        return vertebra.with_changes(
            diseases=frozenset(self.diseases), source=self.source or vertebra.source, diagnosed=True
        )


@dataclass
class SetLevel(_ReplaceVertebra):
    """Set a vertebra's level (``None`` for unknown)."""

    level: str | None = None
    text = "set level"

    def apply(self, state: SliceAnnotation) -> SliceAnnotation:
        if self.level is not None and self.level not in LEVELS:
            raise AnnotationEditError(f"unknown level {self.level!r}")
        return super().apply(state)

    def changed(self, vertebra: Vertebra) -> Vertebra:
        return vertebra.with_changes(level=self.level)


@dataclass
class ReplaceAll(Command):
    """Replace every vertebra at once (for example: accept the model's result for this slice)."""

    vertebrae: tuple[Vertebra, ...]
    text: str = "replace all boxes"
    _before: tuple[Vertebra, ...] | None = None

    def __post_init__(self) -> None:
        self.vertebrae = tuple(self.vertebrae)  # a generator would be used up by the box check

    def apply(self, state: SliceAnnotation) -> SliceAnnotation:
        for vertebra in self.vertebrae:
            _check_box(state, vertebra.box)
        self._before = state.vertebrae
        return state.with_changes(vertebrae=tuple(self.vertebrae))

    def revert(self, state: SliceAnnotation) -> SliceAnnotation:
        assert self._before is not None
        return state.with_changes(vertebrae=self._before)


@dataclass
class SetReviewed(Command):
    reviewed: bool = True
    _before: bool | None = None

    @property
    def text(self) -> str:  # type: ignore[override]
        return "mark reviewed" if self.reviewed else "mark not reviewed"

    def apply(self, state: SliceAnnotation) -> SliceAnnotation:
        self._before = state.reviewed
        return state.with_changes(reviewed=self.reviewed)

    def revert(self, state: SliceAnnotation) -> SliceAnnotation:
        return state.with_changes(reviewed=bool(self._before))


class AnnotationEditor:
    """The current annotation of one slice with its undo and redo stacks.

    ``changed`` is emitted with the new :class:`SliceAnnotation` after every apply, undo and redo.
    """

    def __init__(self, state: SliceAnnotation, *, limit: int = 500) -> None:
        self.state = state
        self.changed = Event()
        self._undo: list[Command] = []
        self._redo: list[Command] = []
        self._limit = limit

    def apply(self, command: Command) -> SliceAnnotation:
        """Apply ``command``; on :class:`AnnotationEditError` nothing changes."""
        self.state = command.apply(self.state)
        self._undo.append(command)
        del self._undo[: max(0, len(self._undo) - self._limit)]
        self._redo.clear()
        self.changed.emit(self.state)
        return self.state

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_text(self) -> str:
        return self._undo[-1].text if self._undo else ""

    def redo_text(self) -> str:
        return self._redo[-1].text if self._redo else ""

    def undo(self) -> SliceAnnotation:
        if not self._undo:
            return self.state
        command = self._undo.pop()
        self.state = command.revert(self.state)
        self._redo.append(command)
        self.changed.emit(self.state)
        return self.state

    def redo(self) -> SliceAnnotation:
        if not self._redo:
            return self.state
        command = self._redo.pop()
        self.state = command.apply(self.state)
        self._undo.append(command)
        self.changed.emit(self.state)
        return self.state
