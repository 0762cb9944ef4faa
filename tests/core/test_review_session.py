"""The review session: edits through the command stack, autosave to the reader's own file, journal, read-only."""

from __future__ import annotations

import json

import pytest

from core.annotations.labelme_io import read_labelme
from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.errors import AnnotationFileError, FileWriteError, ReviewError
from core.review.journal import RecoveryJournal
from core.review.preferences import AppDirs
from core.review.session import ReviewSession
from core.review.status import SliceStatus
from core.study.layout import Study
from tests.core.conftest import KEY, KEY2, model_prediction


def session_for(study: Study, dirs: AppDirs, **kwargs) -> ReviewSession:
    return ReviewSession(study, "r1", journal=RecoveryJournal.for_study(study.root, "r1", dirs), **kwargs)


def test_every_edit_is_saved_to_the_readers_own_file_and_undo_saves_too(study, dirs):
    session = session_for(study, dirs)
    seen = []
    session.changed.connect(lambda key, state: seen.append((key, len(state.vertebrae))))
    index = session.add_box(KEY, Box(10, 10, 50, 30))
    session.toggle_disease(KEY, index, Disease.KD)
    session.set_level(KEY, index, "T12")
    saved = read_labelme(study.reader_path("r1", *KEY))
    assert saved.reader == "r1" and len(saved.vertebrae) == 1
    vertebra = saved.vertebrae[0]
    assert vertebra.diseases == {Disease.KD} and vertebra.level == "T12" and vertebra.source == "r1"
    assert saved.image_path == "../../../images/case-0001/s001.png"
    assert session.undo(KEY) and read_labelme(study.reader_path("r1", *KEY)).vertebrae[0].level is None
    assert session.redo(KEY) and read_labelme(study.reader_path("r1", *KEY)).vertebrae[0].level == "T12"
    assert seen == [(KEY, 1)] * 5
    assert not session.unsaved() and not session.journal.path.exists()
    assert not (study.root / "readers" / "r2").exists() and not study.consensus_path(*KEY).exists()


def test_move_clips_to_the_image_and_tiny_or_outside_boxes_are_refused(study, dirs):
    session = session_for(study, dirs)
    index = session.add_box(KEY, Box(-10, 40, 30, 80))  # sticks out: clipped to 90x60
    assert session.mine(KEY).vertebrae[index].box == Box(0, 40, 30, 60)
    session.move_box(KEY, index, Box(70, 10, 120, 20))
    assert session.mine(KEY).vertebrae[index].box == Box(70, 10, 90, 20)
    with pytest.raises(ReviewError, match="too small"):
        session.add_box(KEY, Box(10, 10, 11, 30))
    with pytest.raises(ReviewError, match="outside"):
        session.add_box(KEY, Box(100, 10, 120, 30))
    with pytest.raises(ReviewError, match="no box number 5"):
        session.delete_box(KEY, 4)
    session.delete_box(KEY, index)
    assert session.mine(KEY).vertebrae == ()


def test_accept_model_copies_its_result_in_one_undoable_step(study, dirs):
    model = model_prediction(study)
    session = session_for(study, dirs, model_id="m1")
    with pytest.raises(ReviewError, match="run the model"):
        session.accept_model(KEY2)
    session.accept_model(KEY)
    mine = read_labelme(study.reader_path("r1", *KEY))
    assert [v.box for v in mine.vertebrae] == [v.box for v in model.vertebrae]
    assert mine.vertebrae[0].probabilities["OVCF"] == pytest.approx(0.91) and mine.reader == "r1"
    assert session.undo_text(KEY) == "accept the model's result"
    session.undo(KEY)
    assert read_labelme(study.reader_path("r1", *KEY)).vertebrae == ()


def test_enter_on_an_untouched_pre_annotated_slice_accepts_and_marks_reviewed(study, dirs):
    model_prediction(study)
    session = session_for(study, dirs, model_id="m1")
    assert session.summary(KEY).status == SliceStatus.PRE_ANNOTATED
    assert "accepted" in session.mark_reviewed(KEY)
    mine = read_labelme(study.reader_path("r1", *KEY))
    assert mine.reviewed and len(mine.vertebrae) == 2
    assert session.summary(KEY).status == SliceStatus.REVIEWED
    session.undo(KEY)  # one step undoes both
    assert session.mine(KEY).vertebrae == () and not session.mine(KEY).reviewed
    # a slice with my own boxes is only marked reviewed, the model's result is not taken
    session.add_box(KEY2, Box(1, 1, 30, 30))
    assert session.mark_reviewed(KEY2) == "marked the slice reviewed"
    assert read_labelme(study.reader_path("r1", *KEY2)).reviewed
    assert session.mark_reviewed(KEY2) == "already reviewed"


def test_a_failed_save_keeps_the_edit_in_memory_and_in_the_journal(study, dirs, monkeypatch):
    session = session_for(study, dirs)
    failures = []
    session.save_failed.connect(lambda key, error: failures.append((key, str(error))))

    def refuse(*args, **kwargs):
        raise FileWriteError("cannot write here: Read-only file system", study.root / "readers")

    monkeypatch.setattr(study, "save_annotation", refuse)
    session.add_box(KEY, Box(10, 10, 50, 30))
    assert session.read_only and "Read-only" in session.save_problem
    assert failures and failures[0][0] == KEY
    assert not study.reader_path("r1", *KEY).exists()
    assert session.unsaved() == [KEY] and len(session.unsaved_annotations()[KEY].vertebrae) == 1
    # the journal has it: a restart recovers it
    pending = RecoveryJournal.for_study(study.root, "r1", dirs).pending()
    assert list(pending) == [KEY] and pending[KEY].vertebrae[0].box == Box(10, 10, 50, 30)


def test_a_read_only_study_is_found_when_opened(study, dirs, monkeypatch):
    monkeypatch.setattr("core.review.session.tempfile.mkstemp", lambda **kw: (_ for _ in ()).throw(PermissionError))
    session = session_for(study, dirs)
    assert session.read_only and "cannot be written" in session.save_problem
    session.add_box(KEY, Box(10, 10, 50, 30))
    assert session.unsaved() == [KEY] and not study.reader_path("r1", *KEY).exists()


def test_crash_between_journal_and_save_is_recovered_on_the_next_open(study, dirs):
    journal = RecoveryJournal.for_study(study.root, "r1", dirs)
    lost = SliceAnnotation(90, 60, (Vertebra(Box(3, 3, 33, 23), frozenset({Disease.PS}), source="r1"),))
    journal.record(KEY, lost)  # the app died here, before saving
    reopened = session_for(study, dirs)
    pending = reopened.journal.pending()
    assert list(pending) == [KEY]
    assert reopened.recover(pending) == [KEY]
    saved = read_labelme(study.reader_path("r1", *KEY))
    assert saved.vertebrae[0].diseases == {Disease.PS} and saved.reader == "r1"
    assert reopened.mine(KEY).vertebrae == saved.vertebrae
    assert not reopened.journal.path.exists()


def test_recovery_skips_entries_that_no_longer_fit(study, dirs):
    journal = RecoveryJournal.for_study(study.root, "r1", dirs)
    journal.record(("case-0009", "s001"), SliceAnnotation(90, 60))  # a case that is gone
    journal.record(KEY, SliceAnnotation(100, 100))  # another image size
    session = session_for(study, dirs)
    assert session.recover(session.journal.pending()) == []
    assert not study.reader_path("r1", *KEY).exists()
    assert len(RecoveryJournal.for_study(study.root, "r1", dirs).pending()) == 2


def test_a_corrupt_reader_file_stops_editing_of_that_slice_only(study, dirs):
    path = study.reader_path("r1", *KEY)
    path.parent.mkdir(parents=True)
    path.write_text("{broken")
    session = session_for(study, dirs)
    with pytest.raises(AnnotationFileError, match=r"s001\.json"):
        session.editor(KEY)
    assert path.read_text() == "{broken"  # never overwritten
    assert "s001.json" in session.summary(KEY).problem
    session.add_box(KEY2, Box(1, 1, 30, 30))
    assert study.reader_path("r1", *KEY2).is_file()


def test_a_corrupt_journal_is_put_aside_not_lost(study, dirs):
    path = RecoveryJournal.for_study(study.root, "r1", dirs).path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"format": "something else"}')
    journal = RecoveryJournal.for_study(study.root, "r1", dirs)
    assert journal.problem and "not a recovery journal" in journal.problem
    assert journal.pending() == {} and not path.exists()
    assert len(list(path.parent.glob("*.unreadable-*.json"))) == 1


def test_discarded_journal_is_renamed(study, dirs):
    journal = RecoveryJournal.for_study(study.root, "r1", dirs)
    journal.record(KEY, SliceAnnotation(90, 60))
    kept = journal.discard()
    assert kept is not None and kept.is_file() and "discarded" in kept.name
    assert json.loads(kept.read_text())["entries"]["case-0001/s001"]["annotation"]["imageWidth"] == 90
    assert RecoveryJournal.for_study(study.root, "r1", dirs).pending() == {}


def test_two_readers_write_only_their_own_files(study, dirs):
    first, second = session_for(study, dirs), ReviewSession(study, "r2")
    first.add_box(KEY, Box(10, 10, 50, 30))
    second.add_box(KEY, Box(20, 20, 60, 40))
    second.toggle_disease(KEY, 0, Disease.OF)
    assert read_labelme(study.reader_path("r1", *KEY)).vertebrae[0].diseases == frozenset()
    assert read_labelme(study.reader_path("r2", *KEY)).vertebrae[0].diseases == {Disease.OF}


def test_read_ahead_reads_files_before_they_are_shown(study, dirs):
    study.save_annotation(SliceAnnotation(90, 60, (Vertebra(Box(1, 1, 20, 20)),)), *KEY, reader="r1")
    bad = study.reader_path("r1", *KEY2)
    bad.write_text("{")
    model_prediction(study, KEY)
    session = session_for(study, dirs, model_id="m1")
    session.read_ahead(KEY)
    session.read_ahead(KEY2)
    study.reader_path("r1", *KEY).unlink()  # showing it now reads nothing from disk
    study.prediction_path("m1", *KEY).unlink()
    assert len(session.editor(KEY).state.vertebrae) == 1 and len(session.model_result(KEY).vertebrae) == 2
    with pytest.raises(AnnotationFileError, match=r"s002\.json"):
        session.editor(KEY2)
