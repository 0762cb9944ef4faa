"""Independent reading: done marks, blinding, and progress per reader and case."""

from __future__ import annotations

import json

import pytest

from core.consensus.reading import (
    DONE_FORMAT,
    cases_not_done,
    done_cases,
    done_path,
    is_case_done,
    load_visible,
    mark_case_done,
    may_see,
    progress_by_reader,
    reading_progress,
    set_blinding,
    visible_readers,
)
from core.errors import ConsensusError, StudyError
from core.study.layout import Study
from tests.core.test_consensus_helpers import READERS, FixedClock, column, make_study, write, write_all

CASE = "case-0001"


@pytest.fixture
def study(tmp_path):
    study = make_study(tmp_path / "study", cases=2, slices=3)
    write_all(study, column(3))
    return study


def test_marking_a_case_done_is_stored_atomically_and_can_be_undone(study):
    clock = FixedClock()
    path = mark_case_done(study, "r1", CASE, clock=clock)
    assert path == done_path(study, "r1") == study.root / "readers" / "r1" / "done.json"
    data = json.loads(path.read_text())
    assert data["format"] == DONE_FORMAT and data["cases"] == {CASE: {"done_at": "2024-05-01T09:01:00+00:00"}}
    assert is_case_done(study, "r1", CASE) and not is_case_done(study, "r2", CASE)
    mark_case_done(study, "r1", CASE, clock=clock)  # marking again keeps the first time
    assert done_cases(study, "r1")[CASE] == "2024-05-01T09:01:00+00:00"
    mark_case_done(study, "r1", CASE, done=False)
    assert not is_case_done(study, "r1", CASE)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temporary left
    assert Study.open(study.root).readers() == list(READERS)  # the marks file is not a reader


def test_a_case_with_slices_the_reader_has_not_annotated_needs_an_explicit_choice(study):
    study.reader_path("r2", CASE, "s002").unlink()
    with pytest.raises(ConsensusError, match=r"r2 has no annotation for 1 of 3 slices of case-0001 \(s002\)"):
        mark_case_done(study, "r2", CASE)
    mark_case_done(study, "r2", CASE, allow_incomplete=True)
    assert is_case_done(study, "r2", CASE)


def test_marks_for_unknown_cases_or_bad_reader_ids_are_refused(study):
    with pytest.raises(ConsensusError, match="no case 'case-0042'"):
        mark_case_done(study, "r1", "case-0042")
    with pytest.raises(StudyError):
        mark_case_done(study, "../r1", CASE)


@pytest.mark.parametrize("content", ["{broken", "[]", '{"format": "other", "cases": {}}',
                                     f'{{"format": "{DONE_FORMAT}", "version": 99, "cases": {{}}}}',
                                     f'{{"format": "{DONE_FORMAT}", "version": 1, "cases": {{"c": 5}}}}'])
def test_an_unreadable_marks_file_is_an_error_naming_it(study, content):
    path = done_path(study, "r1")
    path.write_text(content)
    with pytest.raises(ConsensusError) as caught:
        done_cases(study, "r1")
    assert str(path) in str(caught.value)


def test_blinding_hides_the_other_readers_and_the_consensus_until_the_case_is_done(study):
    assert study.settings.blinding
    assert may_see(study, "r1", "r1", CASE)
    assert not may_see(study, "r1", "r2", CASE) and not may_see(study, "r1", None, CASE)
    assert visible_readers(study, "r1", CASE) == ["r1"]
    with pytest.raises(ConsensusError, match="blinded: r1 cannot see r2's annotations of case-0001"):
        load_visible(study, "r1", CASE, "s001", owner="r2")
    assert load_visible(study, "r1", CASE, "s001", owner="r1") is not None
    mark_case_done(study, "r1", CASE)
    assert may_see(study, "r1", "r2", CASE) and may_see(study, "r1", None, CASE)
    assert visible_readers(study, "r1", CASE) == list(READERS)
    assert load_visible(study, "r1", CASE, "s001", owner="r2").vertebrae[0].source == "r2"
    # Another case stays blinded, and other readers are still blinded on this one.
    assert not may_see(study, "r1", "r2", "case-0002") and not may_see(study, "r2", "r1", CASE)


def test_blinding_can_be_turned_off_per_study(study):
    set_blinding(study, False)
    reopened = Study.open(study.root)
    assert reopened.settings.blinding is False
    assert may_see(reopened, "r1", "r2", CASE) and visible_readers(reopened, "r2", CASE) == list(READERS)


def test_the_coordinator_sees_everything(study):
    assert may_see(study, None, "r2", CASE) and visible_readers(study, None, CASE) == list(READERS)


def test_progress_per_reader_and_case(study):
    study.reader_path("r3", CASE, "s003").unlink()
    current = study.load_annotation(CASE, "s001", reader="r2")
    study.save_annotation(current.with_changes(reviewed=False), CASE, "s001", reader="r2")
    study.reader_path("r2", CASE, "s002").write_text("{broken")  # a broken file is annotated, not reviewed
    write(study, "r1", "case-0002", "s001", column(2))
    mark_case_done(study, "r1", CASE)
    progress = {(p.reader, p.case): p for p in reading_progress(study)}
    assert len(progress) == 6
    assert (progress[("r1", CASE)].annotated, progress[("r1", CASE)].reviewed, progress[("r1", CASE)].done) == (
        3, 3, True)
    assert (progress[("r2", CASE)].annotated, progress[("r2", CASE)].reviewed) == (3, 1)
    assert (progress[("r3", CASE)].annotated, progress[("r3", CASE)].done) == (2, False)
    assert progress[("r3", CASE)].to_json()["slices"] == 3
    totals = progress_by_reader(list(progress.values()))
    assert totals["r1"] == {"cases": 2, "cases_done": 1, "slices": 6, "annotated": 6, "reviewed": 6}
    assert totals["r3"]["annotated"] == 5
    assert cases_not_done(study, ["r1", "r2"]) == [("r1", "case-0002"), ("r2", CASE), ("r2", "case-0002")]
