"""One write per edit (the reader's file; the journal only when that fails), saves on a background writer that
never writes an older state after a newer one, finer events (which boxes changed, the selection), and summaries
whose other files are parsed once while they do not change."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from core.annotations import labelme_io
from core.annotations.model import Box, Disease, SliceAnnotation
from core.errors import FileWriteError
from core.review import autosave
from core.review.box_edits import BoxRef, changed_boxes
from core.review.journal import RecoveryJournal
from core.review.session import ReviewSession
from core.study.slice_key import SliceKey
from tests.core.conftest import KEY, KEY2, model_prediction


class Writes:
    """Counts the atomic writes under the study and the journal."""

    def __init__(self, monkeypatch) -> None:
        self.paths: list[str] = []
        real = labelme_io.atomic_write_json
        journal_real = RecoveryJournal._write

        def counted(path, *args, **kwargs):
            self.paths.append(str(path))
            return real(path, *args, **kwargs)

        def journal_counted(journal):
            self.paths.append("journal")
            return journal_real(journal)

        monkeypatch.setattr(labelme_io, "atomic_write_json", counted)
        monkeypatch.setattr(RecoveryJournal, "_write", journal_counted)


def test_an_edit_is_one_write_of_the_readers_file_and_no_journal_write(study, dirs, monkeypatch):
    writes = Writes(monkeypatch)
    session = ReviewSession(study, "r1", journal=RecoveryJournal.for_study(study.root, "r1", dirs))
    index = session.add_box(KEY, Box(10, 10, 50, 30))
    session.move_box(KEY, index, Box(12, 12, 52, 32))
    session.set_diseases(KEY, index, {Disease.OVCF})
    assert writes.paths == [str(study.reader_path("r1", *KEY))] * 3
    assert session.unsaved() == []


def test_a_failed_write_goes_to_the_journal_and_the_next_good_save_clears_it(study, dirs, monkeypatch):
    session = ReviewSession(study, "r1", journal=RecoveryJournal.for_study(study.root, "r1", dirs))
    real = study.save_annotation
    monkeypatch.setattr(study, "save_annotation", lambda *a, **k: (_ for _ in ()).throw(FileWriteError("disk full")))
    session.add_box(KEY, Box(10, 10, 50, 30))
    assert session.read_only and list(session.journal.pending()) == [KEY]
    monkeypatch.setattr(study, "save_annotation", real)
    session.read_only = False  # the user freed space and went on
    session.add_box(KEY, Box(10, 32, 50, 52))
    assert session.unsaved() == [] and session.journal.pending() == {} and not session.journal.path.exists()
    assert len(study.load_annotation(*KEY, reader="r1").vertebrae) == 2


def test_background_saves_coalesce_and_never_write_an_older_state_last(study, dirs, monkeypatch):
    delivered: queue.Queue = queue.Queue()
    session = ReviewSession(study, "r1", journal=RecoveryJournal.for_study(study.root, "r1", dirs),
                            deliver=delivered.put)
    release = threading.Event()
    real = study.save_annotation
    written: list[int] = []

    def slow(annotation, *args, **kwargs):
        release.wait(10)
        written.append(len(annotation.vertebrae))
        return real(annotation, *args, **kwargs)

    monkeypatch.setattr(study, "save_annotation", slow)
    main = threading.get_ident()
    for number in range(5):
        started = time.perf_counter()
        session.add_box(KEY, Box(10, 2 + 11 * number, 50, 12 + 11 * number))
        assert time.perf_counter() - started < 1.0  # the edit did not wait for the blocked writer
    assert session.saving() and session.unsaved() == [KEY]
    release.set()
    assert session.flush(10)
    assert written[-1] == 5 and len(written) <= 3  # the first, perhaps one in flight, then only the latest
    assert len(study.load_annotation(*KEY, reader="r1").vertebrae) == 5
    callbacks = []
    while not delivered.empty():
        callbacks.append(delivered.get())
    assert callbacks and threading.get_ident() == main
    for callback in callbacks:  # the app runs these on its GUI thread
        callback()
    assert session.unsaved() == []
    assert session.close(5)


def test_a_background_failure_reaches_the_owner_thread_and_later_edits_still_save(study, dirs, monkeypatch):
    delivered: queue.Queue = queue.Queue()
    session = ReviewSession(study, "r1", journal=RecoveryJournal.for_study(study.root, "r1", dirs),
                            deliver=delivered.put)
    failures = []
    session.save_failed.connect(lambda key, error: failures.append((key, str(error), threading.get_ident())))
    monkeypatch.setattr(study, "save_annotation", lambda *a, **k: 1 / 0)  # a bug, not a typed error
    session.add_box(KEY, Box(10, 10, 50, 30))
    assert session.flush(10)
    while not delivered.empty():
        delivered.get()()
    assert failures and failures[0][0] == KEY and "ZeroDivisionError" in failures[0][1]
    assert failures[0][2] == threading.get_ident() and session.read_only
    assert session.unsaved() == [KEY] and list(session.journal.pending()) == [KEY]  # kept in the journal


def test_boxes_changed_names_the_boxes_an_edit_changed(study, dirs):
    session = ReviewSession(study, "r1", journal=RecoveryJournal.for_study(study.root, "r1", dirs))
    events = []
    session.boxes_changed.connect(lambda key, state, indices: events.append((key, indices)))
    session.add_box(KEY, Box(10, 10, 50, 30))
    session.add_box(KEY, Box(10, 32, 50, 52))
    session.set_diseases(KEY, 1, {Disease.OF})
    session.move_box(KEY, 0, Box(11, 11, 51, 31))
    session.undo(KEY)
    assert events == [(KEY, None), (KEY, None), (KEY, (1,)), (KEY, (0,)), (KEY, (0,))]
    before = session.editor(KEY).state
    assert changed_boxes(before, before) == ()
    assert changed_boxes(before, SliceAnnotation(90, 60)) is None


def test_the_selection_lives_in_the_session_and_is_announced_once_per_change(study, dirs):
    session = ReviewSession(study, "r1", journal=RecoveryJournal.for_study(study.root, "r1", dirs))
    seen = []
    session.selected.connect(lambda key, box: seen.append((key, box)))
    session.select(KEY, BoxRef(1, model=True))
    session.select(("case-0001", "s001"), BoxRef(1, model=True))  # the same: no event
    session.select(KEY2)
    assert seen == [(KEY, BoxRef(1, model=True)), (KEY2, None)]
    assert type(session.current) is SliceKey and session.current.slice_id == "s002" and session.selection is None


def test_a_summary_after_an_edit_parses_the_other_files_only_when_they_change(study, dirs, monkeypatch):
    model_prediction(study)
    study.save_annotation(SliceAnnotation(90, 60), *KEY, reader="r2")
    session = ReviewSession(study, "r1", model_id="m1",
                            journal=RecoveryJournal.for_study(study.root, "r1", dirs))
    parsed = []
    real = labelme_io.read_labelme

    def counted(path, *args, **kwargs):
        parsed.append(path.name if hasattr(path, "name") else path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr("core.study.layout.read_labelme", counted)
    session.add_box(KEY, Box(10, 10, 50, 30))
    session.summary(KEY)
    first = len(parsed)
    for number in range(3):
        session.move_box(KEY, 0, Box(10 + number, 10, 50, 30))
        session.summary(KEY)
    assert first >= 2 and len(parsed) == first  # the model's and r2's files, once
    time.sleep(0.01)
    study.save_annotation(SliceAnnotation(90, 60, reviewed=True), *KEY, reader="r2")  # r2 changed it meanwhile
    session.summary(KEY)
    assert len(parsed) == first + 1


def test_the_save_queue_runs_inline_without_a_way_back():
    stored, told = [], []
    saves = autosave.SaveQueue(lambda key, state: stored.append(key), lambda key, state: told.append(key),
                               lambda key, error: None)
    saves.submit(SliceKey("c", "s"), SliceAnnotation(4, 4))
    assert stored == told == [("c", "s")] and not saves.saving() and not saves.background
    with pytest.raises(ZeroDivisionError):  # inline, a bug is raised where it happened
        autosave.SaveQueue(lambda key, state: 1 / 0, print, print).submit(SliceKey("c", "s"), SliceAnnotation(4, 4))
