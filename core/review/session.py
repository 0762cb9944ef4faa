"""One reader's review of a study: per-slice edit stacks, the selection, autosave after every edit, and a
read-only mode.

Each slice the reader touches gets an :class:`~core.annotations.commands.AnnotationEditor` (its own undo and redo
history). After every change the new state is saved: one atomic write of the reader's own file, inline or on the
app's background writer (:mod:`core.review.autosave`). Only when that write fails, or the study cannot be written,
does the state go to the recovery journal instead; then ``read_only`` becomes true and ``save_failed`` tells the
view, and nothing is lost. A journal entry is dropped once its slice is saved.

Events (plain callbacks, :class:`~core.events.Event`): ``changed(key, state)`` after every edit, undo or redo;
``boxes_changed(key, state, indices)`` with the reader's boxes that changed (``None``: the list itself changed), so
that a view redraws only those; ``selected(key, box)`` when the slice or the selected box changes;
``save_failed(key, error)``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence

from core.annotations.commands import (
    AddVertebra,
    AnnotationEditor,
    Command,
    DeleteVertebra,
    ReplaceAll,
    SetBox,
    SetDiseases,
    SetReviewed,
)
from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra, disease_label
from core.errors import FileWriteError, ReviewError, VertebraReviewError
from core.events import Event
from core.imaging.image import SliceImage
from core.review.autosave import Deliver, SaveQueue
from core.review.box_edits import ACCEPT_TEXT, BoxRef, adoption, changed_boxes, following_levels
from core.review.commands import CompoundCommand
from core.review.file_cache import AnnotationCache
from core.review.image_cache import SliceImageCache
from core.review.journal import RecoveryJournal
from core.review.summary import SliceSummary, row_spacing, summarize
from core.study.layout import Study, check_id
from core.study.slice_key import SliceKey, slice_key

#: A drawn box smaller than this (pixels, either side) is a slip of the mouse, not a vertebra.
MIN_BOX_PX = 3.0
#: The commands of an edit of the reader's box ``index`` in ``state``.
BoxEdit = Callable[[SliceAnnotation, int], Sequence[Command]]


def study_writable(study: Study, reader: str) -> bool:
    """Whether the reader's folder in the study can be written (probed with a temporary file)."""
    folder = study.root / "readers" / reader
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError:
        return False
    return True


class ReviewSession:
    """One reader's review; see the module for its events. ``deliver`` (the app's) runs a callback on the thread that
    owns the session: given, saves run on a background thread and report back through it."""

    def __init__(self, study: Study, reader: str, *, model_id: str | None = None,
                 journal: RecoveryJournal | None = None, writable: bool | None = None,
                 deliver: Deliver | None = None) -> None:
        self.study = study
        self.reader = check_id(reader, "reader")
        self.model_id = model_id
        self.journal = journal
        self.keys: list[SliceKey] = study.all_slices()
        self.position = {key: i for i, key in enumerate(self.keys)}
        self.read_only = not (study_writable(study, reader) if writable is None else writable)
        self.save_problem: str | None = "the study folder cannot be written" if self.read_only else None
        self.changed = Event()
        self.boxes_changed = Event()
        self.selected = Event()
        self.save_failed = Event()
        self.current: SliceKey | None = None
        self.selection: BoxRef | None = None
        self._saves = SaveQueue(self._store, self._on_saved, self._on_save_failed, background=deliver is not None,
                                deliver=deliver)
        self._files = AnnotationCache(study)
        self._editors: dict[SliceKey, AnnotationEditor] = {}
        self._unsaved: set[SliceKey] = set()
        self._images = SliceImageCache(study)
        self._model_cache: dict[SliceKey, SliceAnnotation | None] = {}
        self._read_ahead: dict[SliceKey, SliceAnnotation | VertebraReviewError | None] = {}
        self._row_mm: dict[str, float | None] = {}

    # -- reading ----------------------------------------------------------------------------------------------------
    def image(self, key: SliceKey) -> SliceImage:
        """The slice's image (cached; safe to call from a worker thread to read ahead)."""
        return self._images.get(key)

    def image_size(self, key: SliceKey) -> tuple[int, int]:
        image = self.image(key)
        return image.width, image.height

    def editor(self, key: SliceKey) -> AnnotationEditor:
        """The slice's editor, started from the reader's file (or empty). Raises when the image or the reader's
        file cannot be read: such a slice is shown with its problem and cannot be edited."""
        if key in self._editors:
            return self._editors[key]
        size = self.image_size(key)
        state = self._read_ahead.pop(key, False)
        if state is False:
            state = self.study.load_annotation(*key, reader=self.reader, image_size=size)
        elif isinstance(state, VertebraReviewError):
            raise state
        if state is None:
            state = SliceAnnotation(size[0], size[1], reader=self.reader)
        return self._adopt(key, AnnotationEditor(state))

    def read_ahead(self, key: SliceKey) -> None:
        """Read a slice's image, the reader's file and the model's result before they are needed (from a worker
        thread), so that showing the slice reads nothing from disk. Problems are kept for when it is shown."""
        try:
            size = self.image_size(key)
            if key not in self._editors and key not in self._read_ahead:
                try:
                    self._read_ahead[key] = self.study.load_annotation(*key, reader=self.reader, image_size=size)
                except VertebraReviewError as exc:
                    self._read_ahead[key] = exc
            self.model_result(key)
        except VertebraReviewError:
            pass  # the image or the model's file: reported when the slice is shown

    def _adopt(self, key: SliceKey, editor: AnnotationEditor) -> AnnotationEditor:
        key = slice_key(key)
        self._editors[key] = editor
        previous = [editor.state]

        def on_changed(state: SliceAnnotation) -> None:
            before, previous[0] = previous[0], state
            self._on_changed(key, before, state)

        editor.changed.connect(on_changed)
        return editor

    def mine(self, key: SliceKey) -> SliceAnnotation | None:
        """The reader's current annotation (with unsaved edits), or None when they have none yet."""
        if key in self._editors:
            editor = self._editors[key]
            return editor.state if (editor.can_undo or key in self._unsaved or self._has_file(key)) else None
        return self.study.load_annotation(*key, reader=self.reader, image_size=self.image_size(key))

    def _has_file(self, key: SliceKey) -> bool:
        return self.study.reader_path(self.reader, *key).is_file()

    def model_result(self, key: SliceKey) -> SliceAnnotation | None:
        """The active model's prediction for the slice (cached), or None."""
        if not self.model_id:
            return None
        if key not in self._model_cache:
            self._model_cache[key] = self.study.load_annotation(*key, model=self.model_id,
                                                                image_size=self.image_size(key))
        return self._model_cache[key]

    def consensus(self, key: SliceKey) -> SliceAnnotation | None:
        return self.study.load_annotation(*key, image_size=self.image_size(key))

    # -- the selection ----------------------------------------------------------------------------------------------
    def select(self, key: SliceKey | None, box: BoxRef | None = None) -> None:
        """Make ``key`` the current slice and ``box`` its selected box (None: no box); ``selected`` tells the views
        when either changed."""
        key = None if key is None else slice_key(key)
        if (key, box) == (self.current, self.selection):
            return
        self.current, self.selection = key, box
        self.selected.emit(key, box)

    def set_model(self, model_id: str | None) -> None:
        self.model_id = model_id
        self._model_cache.clear()

    def forget_model_results(self, keys: Iterable[SliceKey] | None = None) -> None:
        """Read the model's results again (after a run wrote new ones)."""
        if keys is None:
            self._model_cache.clear()
        for key in keys or ():
            self._model_cache.pop(key, None)

    def summary(self, key: SliceKey) -> SliceSummary:
        """The slice's case-list summary. The reader's state is in memory; the other files (the model's, the other
        readers', the consensus) are parsed once and again only when they change on disk."""
        mine = self.mine(key) if key in self._editors else None
        return summarize(self.study, key, self.reader, self.model_id, mine=mine,
                         row_mm=lambda: self._row_spacing(slice_key(key).case), load=self._files.load)

    def _row_spacing(self, case: str) -> float | None:
        if case not in self._row_mm:
            self._row_mm[case] = row_spacing(self.study, case)
        return self._row_mm[case]

    # -- editing ----------------------------------------------------------------------------------------------------
    def apply(self, key: SliceKey, command: Command) -> SliceAnnotation:
        return self.editor(key).apply(command)

    def undo(self, key: SliceKey) -> bool:
        editor = self._editors.get(key)
        if editor is None or not editor.can_undo:
            return False
        editor.undo()
        return True

    def redo(self, key: SliceKey) -> bool:
        editor = self._editors.get(key)
        if editor is None or not editor.can_redo:
            return False
        editor.redo()
        return True

    def _vertebra(self, key: SliceKey, box: int | BoxRef) -> Vertebra:
        """The reader's box, or the model's (``BoxRef(i, model=True)``)."""
        box = box if isinstance(box, BoxRef) else BoxRef(box)
        state = self.model_result(key) if box.model else self.editor(key).state
        if state is None or not 0 <= box.index < len(state.vertebrae):
            whose = "the model has" if box.model else "there is"
            raise ReviewError(f"{whose} no box number {box.index + 1} on {slice_key(key).text}")
        return state.vertebrae[box.index]

    def edit_box(self, key: SliceKey, box: int | BoxRef, build: BoxEdit, text: str) -> int:
        """Apply the commands ``build(state, index)`` gives for one of the reader's boxes, in one undoable step. A box
        of the model's is first taken into the reader's result in that same step (:func:`adoption`). Returns the
        box's index in the reader's result."""
        box = box if isinstance(box, BoxRef) else BoxRef(box)
        self._vertebra(key, box)
        state, index, commands = self.editor(key).state, box.index, []
        if box.model:
            adopt, index = adoption(state, self.model_result(key), box.index)
            state, commands = adopt.apply(state), [adopt]
            text = f"take the model's box and {text}"
        commands += build(state, index)
        self.apply(key, commands[0] if len(commands) == 1 else CompoundCommand(commands, text))
        return index

    def add_box(self, key: SliceKey, box: Box) -> int:
        """Add a NORMAL box drawn by the reader (clipped to the image); returns its index."""
        width, height = self.image_size(key)
        try:
            box = box.clipped(width, height)
        except ValueError as exc:
            raise ReviewError("the box is outside the image") from exc
        if box.width < MIN_BOX_PX or box.height < MIN_BOX_PX:
            raise ReviewError(f"the box is too small ({box.width:.0f}x{box.height:.0f} px)")
        state = self.apply(key, AddVertebra(Vertebra(box, source=self.reader)))
        return len(state.vertebrae) - 1

    def move_box(self, key: SliceKey, index: int | BoxRef, box: Box) -> int:
        width, height = self.image_size(key)
        try:
            box = box.clipped(width, height)
        except ValueError as exc:
            raise ReviewError("the box is outside the image") from exc
        return self.edit_box(key, index, lambda state, i: [SetBox(i, box=box, source=self.reader)],
                             "move or resize it")

    def delete_box(self, key: SliceKey, index: int | BoxRef) -> None:
        ref = index if isinstance(index, BoxRef) else BoxRef(index)
        state = self.editor(key).state
        if ref.model and (state.vertebrae or state.reviewed):
            raise ReviewError("that box is the model's and not in your result, so there is nothing of yours to delete "
                              "(M shows your boxes alone)")
        self.edit_box(key, ref, lambda state, i: [DeleteVertebra(i)], "delete it")

    def set_diseases(self, key: SliceKey, index: int | BoxRef, diseases: Iterable[Disease]) -> int:
        diseases = frozenset(diseases)
        return self.edit_box(key, index, lambda state, i: [SetDiseases(i, diseases=diseases, source=self.reader)],
                             f"set {disease_label(diseases)}")

    def toggle_disease(self, key: SliceKey, index: int | BoxRef, disease: Disease) -> int:
        current = self._vertebra(key, index).diseases
        return self.set_diseases(key, index, current ^ {Disease(disease)})

    def set_level(self, key: SliceKey, index: int | BoxRef, level: str | None) -> int:
        """Set the box's level; the reader's other boxes on the slice follow, counted along the spine from it (all
        in one undoable step)."""
        return self.edit_box(key, index, lambda state, i: following_levels(state, i, level),
                             f"set level {level or 'unknown'} along the spine")

    def accept_model(self, key: SliceKey) -> None:
        """Take the model's boxes and labels for this slice as mine (one undoable step)."""
        self.apply(key, self._accept_command(key))

    def _accept_command(self, key: SliceKey) -> ReplaceAll:
        model = self.model_result(key)
        if model is None:
            raise ReviewError(f"no model result for {slice_key(key).text}: run the model on this slice first")
        return ReplaceAll(model.vertebrae, text=ACCEPT_TEXT)

    def mark_reviewed(self, key: SliceKey) -> str:
        """Mark the slice reviewed. On a slice the reader has not started, where the model has a result, that
        result is accepted in the same step (look, agree, Enter). Returns what was done."""
        if self.mine(key) is None and self.model_result(key) is not None:
            self.apply(key, CompoundCommand([self._accept_command(key), SetReviewed(True)],
                                            "accept the model's result and mark reviewed"))
            return "accepted the model's result and marked the slice reviewed"
        if self.editor(key).state.reviewed:
            return "already reviewed"
        self.apply(key, SetReviewed(True))
        return "marked the slice reviewed"

    # -- saving -----------------------------------------------------------------------------------------------------
    def _on_changed(self, key: SliceKey, before: SliceAnnotation, state: SliceAnnotation) -> None:
        self._unsaved.add(key)
        self._saves.submit(key, state)
        self.changed.emit(key, state)
        self.boxes_changed.emit(key, state, changed_boxes(before, state))

    def _store(self, key: SliceKey, state: SliceAnnotation) -> None:
        """One save (on the save queue's thread): the reader's file; the journal only when that cannot be written."""
        if self.read_only:
            self._journal(key, state)
            return
        try:
            self.study.save_annotation(state, *key, reader=self.reader)
        except Exception:  # whatever stopped the write, the edit is kept where a restart finds it
            self._journal(key, state)
            raise
        if self.journal is not None:
            self.journal.saved(key)  # writes only when an earlier failure left an entry

    def _journal(self, key: SliceKey, state: SliceAnnotation) -> None:
        if self.journal is not None:
            self.journal.record(key, state)

    def _on_saved(self, key: SliceKey, state: SliceAnnotation) -> None:
        editor = self._editors.get(key)
        if not self.read_only and (editor is None or editor.state is state):  # not when a newer edit is queued
            self._unsaved.discard(key)

    def _on_save_failed(self, key: SliceKey, error: VertebraReviewError) -> None:
        if isinstance(error, FileWriteError):
            if self.read_only:
                return  # a save that was already queued when the first failed: the view has been told
            self.read_only, self.save_problem = True, str(error)
        self.save_failed.emit(key, error)

    def saving(self) -> bool:
        """Whether a save is queued or being written."""
        return self._saves.saving()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every edit is written (or has failed); False when ``timeout`` ran out first."""
        return self._saves.flush(timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write what is queued and stop the writer; the session is not edited after this."""
        return self._saves.close(timeout)

    def unsaved(self) -> list[SliceKey]:
        return sorted(self._unsaved, key=lambda k: self.position.get(k, -1))

    def unsaved_annotations(self) -> dict[SliceKey, SliceAnnotation]:
        return {key: self._editors[key].state for key in self.unsaved()}

    # -- recovery ---------------------------------------------------------------------------------------------------
    def recover(self, entries: Mapping[SliceKey, SliceAnnotation]) -> list[SliceKey]:
        """Make journal entries the current state of their slices and save them; returns the slices recovered.
        Entries for slices that are gone, or that no longer fit their image, are left in the journal."""
        recovered = []
        for key, state in entries.items():
            if key not in self.position:
                continue
            try:
                if self.image_size(key) != (state.image_width, state.image_height):
                    continue
            except VertebraReviewError:
                continue
            self._adopt(key, AnnotationEditor(state.with_changes(reader=self.reader)))
            self._unsaved.add(key)
            self._saves.submit(key, self._editors[key].state)
            recovered.append(key)
        return recovered

    def undo_text(self, key: SliceKey) -> str:
        editor = self._editors.get(key)
        return editor.undo_text() if editor else ""

    def redo_text(self, key: SliceKey) -> str:
        editor = self._editors.get(key)
        return editor.redo_text() if editor else ""

