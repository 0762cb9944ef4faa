"""Co-annotation: decisions with provenance, kept across a restart; proposals never over a finalised consensus."""

from __future__ import annotations

import json

import pytest

from core.annotations.labelme_io import read_labelme
from core.annotations.model import Box, Disease, Vertebra
from core.consensus.check import check_study
from core.consensus.record import RECORD_KEY, read_record
from core.consensus.session import ConsensusSession, GroupRef
from core.errors import ConsensusError, FileWriteError
from core.progress import run
from tests.core.test_consensus_helpers import READERS, FixedClock, column, edit, make_study, phantom_study, write_all

KEY = ("case-0001", "s001")


@pytest.fixture
def study(tmp_path):
    """One slice, five vertebrae: T12 majority OVCF (r3 says OF), L1 a conflict, L2 left out by r3, the rest
    unanimous; r2 adds a stray box."""
    study = make_study(tmp_path / "study", cases=1, slices=1)
    write_all(study, column(5))

    def r1(v):
        v[1] = v[1].with_changes(diseases=frozenset({Disease.OVCF}))
        v[2] = v[2].with_changes(diseases=frozenset({Disease.OVCF}))

    def r2(v):
        v[1] = v[1].with_changes(diseases=frozenset({Disease.OVCF}))
        v[2] = v[2].with_changes(diseases=frozenset({Disease.OF}))
        v.append(Vertebra(Box(10, 350, 50, 390), frozenset({Disease.SN}), source="r2"))

    def r3(v):
        v[1] = v[1].with_changes(diseases=frozenset({Disease.OF}))
        v[2] = v[2].with_changes(diseases=frozenset({Disease.KD}))
        del v[3]

    for reader, change in (("r1", r1), ("r2", r2), ("r3", r3)):
        edit(study, reader, *KEY, change)
    return study


def open_session(study, **kwargs):
    return run(ConsensusSession.open(study, clock=kwargs.pop("clock", FixedClock()), **kwargs))


def refs_by_label(session):
    return {session.view(ref).labels["r1"] + "/" + session.view(ref).labels["r2"]: ref
            for ref in session.disagreements()}


def test_the_disagreements_to_step_through_and_their_side_by_side_versions(study):
    session = open_session(study)
    refs = session.disagreements()
    assert [r.group for r in refs] == [2, 3, 4, 6]
    views = [session.view(r) for r in refs]
    assert [v.group.status.value for v in views] == ["majority", "conflict", "missing", "missing"]
    assert views[0].labels == {"r1": "OVCF", "r2": "OVCF", "r3": "OF"}
    assert views[1].majority is None and views[0].majority.diseases == {Disease.OVCF}
    assert views[3].labels == {"r1": "no box", "r2": "SN", "r3": "no box"}
    assert session.summary() == {"slices": 1, "finalised": 0, "external": 0, "disagreements": 4, "decided": 0,
                                 "locked": 0, "open": 4}


def test_each_decision_is_written_with_its_provenance_and_survives_a_restart(study):
    clock = FixedClock()
    session = open_session(study, clock=clock, consulting=["r1", "r2", "r3"])
    changed = []
    session.changed.connect(changed.append)
    majority, conflict, missing, stray = session.disagreements()
    session.take_majority(majority)
    session.take_reader(conflict, "r3", note="cleft seen on the next slice")
    edited = Vertebra(Box(70, 110, 130, 150), frozenset({Disease.OF}), level="L2", source="r1")
    session.set_result(missing, edited, agreed_by=["r1", "r2"])
    session.take_majority(stray)  # two of three drew no box: no vertebra
    assert session.accept_unanimous() == 2
    assert changed == [KEY] * 5
    path = study.consensus_path(*KEY)
    written = read_labelme(path)
    assert [v.label for v in written.vertebrae] == ["NORMAL", "OVCF", "KD", "OF", "NORMAL"]
    assert {v.source for v in written.vertebrae} == {"consensus"}
    assert written.vertebrae[2].extra[RECORD_KEY]["method"] == "reader"
    record = json.loads(path.read_text())[RECORD_KEY]
    by_group = {r["group"]: r for r in record["resolutions"]}
    assert by_group[3]["method"] == "reader" and by_group[3]["reader"] == "r3"
    assert by_group[3]["note"] == "cleft seen on the next slice"
    assert by_group[3]["agreed_by"] == ["r1", "r2", "r3"] and by_group[3]["at"] == "2024-05-01T09:02:00+00:00"
    assert [v["diseases"] for v in by_group[3]["versions"]] == [["OVCF"], ["OF"], ["KD"]]  # the earlier versions
    assert by_group[4]["method"] == "edited" and by_group[4]["agreed_by"] == ["r1", "r2"]
    assert by_group[4]["versions"][2] == {"reader": "r3", "box": None}
    assert by_group[6]["result"] is None and by_group[6]["method"] == "majority"
    assert by_group[1]["method"] == "unanimous"
    # A restart (a new session from the files) reproduces every decision.
    again = open_session(study)
    assert again.disagreements() == []
    assert again.summary()["decided"] == 4
    for ref in (majority, conflict, missing, stray):
        assert again.view(ref).resolution == session.view(ref).resolution
    assert again.state(KEY).resolved == session.state(KEY).resolved


def test_a_conflict_is_never_decided_silently(study):
    session = open_session(study)
    conflict = session.disagreements()[1]
    with pytest.raises(ConsensusError, match="no majority"):
        session.take_majority(conflict)
    session.accept_unanimous()
    proposal = session.propose()
    assert proposal.conflicts == [conflict]
    assert session.view(conflict).resolution is None
    assert conflict in session.disagreements()
    assert 2 not in {r.group for r in session.state(KEY).resolved.values() if r.result and "OF" in r.result.label}


def test_accept_unanimous_leaves_majorities_missing_boxes_and_conflicts(study):
    session = open_session(study)
    assert session.accept_unanimous() == 2
    assert len(session.disagreements()) == 4
    assert sorted(session.state(KEY).resolved) == [1, 5]


def test_replacing_or_clearing_a_decision_keeps_the_earlier_one_in_the_history(study):
    session = open_session(study)
    ref = session.disagreements()[0]
    session.take_majority(ref)
    session.take_reader(ref, "r3")
    session.clear(ref)
    assert session.view(ref).resolution is None
    history = json.loads(study.consensus_path(*KEY).read_text())[RECORD_KEY]["history"]
    assert [(h["method"], h["reason"]) for h in history] == [("majority", "replaced (reader)"),
                                                            ("reader", "cleared")]


def test_finalising_needs_every_vertebra_decided_and_locks_the_slice(study):
    session = open_session(study)
    with pytest.raises(ConsensusError, match="6 vertebrae are not decided"):
        session.finalise(KEY)
    session.accept_unanimous()
    for ref in session.disagreements():
        session.take_reader(ref, "r1")
    session.finalise(KEY)
    assert read_labelme(study.consensus_path(*KEY)).reviewed is True
    again = open_session(study)
    assert again.state(KEY).record.finalised and again.state(KEY).record.finalised_by == READERS
    with pytest.raises(ConsensusError, match="finalised"):
        again.take_reader(GroupRef(*KEY, 1), "r2")
    again.reopen(KEY, note="r2 wants another look")
    again.take_reader(GroupRef(*KEY, 2), "r3")
    history = json.loads(study.consensus_path(*KEY).read_text())[RECORD_KEY]["history"]
    assert history[-2]["note"] == "r2 wants another look" and history[-2]["finalised_by"] == list(READERS)


def test_propose_never_overwrites_a_finalised_consensus(study, tmp_path):
    session = open_session(study)
    session.accept_unanimous()
    for ref in session.disagreements():
        session.take_reader(ref, "r2")
    session.finalise(KEY)
    before = study.consensus_path(*KEY).read_bytes()
    report = open_session(study).propose()
    assert report.skipped == [(KEY, "finalised")] and report.written == [] and report.proposed == 0
    assert study.consensus_path(*KEY).read_bytes() == before


def test_propose_writes_majorities_as_unconfirmed_proposals(study):
    report = open_session(study).propose()
    assert report.written == [KEY] and report.proposed == 5 and len(report.conflicts) == 1
    session = open_session(study)
    resolved = session.state(KEY).resolved
    assert {r.method for r in resolved.values()} == {"proposed"} and all(r.agreed_by == () for r in resolved.values())
    assert {r.basis for r in resolved.values()} == {"unanimous", "majority"}
    assert len(session.disagreements()) == 4  # proposals still need the readers
    assert session.propose().proposed == 0  # nothing new the second time
    assert session.accept_unanimous() == 2
    assert {session.state(KEY).resolved[i].method for i in (1, 5)} == {"unanimous"}


def test_an_external_consensus_file_is_locked_until_reopened(tmp_path):
    study = phantom_study(tmp_path / "study", cases=1, slices=1, keep_consensus=True)
    key = study.all_slices()[0]
    path = study.consensus_path(*key)
    before = path.read_bytes()
    session = open_session(study)
    assert session.state(key).record.external
    assert session.propose().skipped == [(key, "made outside the consensus workflow")]
    assert path.read_bytes() == before
    assert session.disagreements() == []
    session.reopen(key)
    record = read_record(read_labelme(path))
    assert not record.external and record.resolutions == ()
    assert len(record.history[0]["vertebrae"]) == len(read_labelme(path).extra[RECORD_KEY]["history"][0]["vertebrae"])
    assert record.history[0]["vertebrae"][0]["reader"] == "truth"
    assert read_labelme(path).extra["synthetic"]  # the file's own keys are kept


def test_a_consensus_edited_in_labelme_is_not_overwritten(study):
    session = open_session(study)
    session.accept_unanimous()
    path = study.consensus_path(*KEY)
    data = json.loads(path.read_text())
    data["shapes"][0]["points"][0][0] += 5  # someone moved a box in labelme
    path.write_text(json.dumps(data))
    again = open_session(study)
    assert again.state(KEY).record.external
    with pytest.raises(ConsensusError, match="outside the consensus workflow"):
        again.take_reader(again.disagreements(include_decided=True)[0], "r1")


def test_decisions_made_before_a_reader_changed_their_file_become_stale(study):
    session = open_session(study)
    majority = session.disagreements()[0]
    session.take_majority(majority)
    edit(study, "r3", *KEY, lambda v: v.__setitem__(1, v[1].with_changes(diseases=frozenset({Disease.OVCF}))))
    again = open_session(study)
    state = again.state(KEY)
    assert [r.group for r in state.stale] == [2] and 2 not in state.resolved
    again.accept_unanimous()  # now T12 is unanimous; the stale decision goes to the history
    history = json.loads(study.consensus_path(*KEY).read_text())[RECORD_KEY]["history"]
    assert history[0]["reason"] == "the readers' annotations changed since"


def test_a_failed_write_keeps_the_last_good_state(study, monkeypatch):
    session = open_session(study)
    ref = session.disagreements()[0]

    def refuse(*args, **kwargs):
        raise FileWriteError("disk full", study.consensus_path(*KEY))

    monkeypatch.setattr(study, "save_annotation", refuse)
    with pytest.raises(FileWriteError):
        session.take_majority(ref)
    assert session.view(ref).resolution is None and not study.consensus_path(*KEY).exists()


def test_bad_references_are_clear_errors(study):
    session = open_session(study)
    with pytest.raises(ConsensusError, match="no case-0001/s001 vertebra 42"):
        session.take_majority(GroupRef(*KEY, 42))
    with pytest.raises(ConsensusError, match="not among the readers"):
        session.take_reader(session.disagreements()[0], "r9")
    with pytest.raises(ConsensusError, match="no reader annotations"):
        session.state(("case-0009", "s001"))


def test_the_session_on_phantom_readers_reaches_a_full_consensus(tmp_path):
    study = phantom_study(tmp_path / "study", cases=2, slices=2, disagreement=0.2)
    session = open_session(study)
    assert session.accept_unanimous() > 0
    for ref in session.disagreements():
        view = session.view(ref)
        if view.majority is not None:
            session.take_majority(ref)
        else:
            session.take_reader(ref, view.group.drawn_by[0])
    for key in session.slice_keys():
        session.finalise(key)
    assert session.summary()["finalised"] == 4 and session.summary()["open"] == 0
    check = run(check_study(study))
    assert all(item.consensus is not None and item.consensus.reviewed for item in check.slices)


@pytest.mark.parametrize("content", ["{not json", json.dumps({"version": "5.0.1", "shapes": [], "imageWidth": 200,
                                                              "imageHeight": 400, "consensus": {"format": 99}})])
def test_an_unreadable_consensus_file_is_never_overwritten(study, content):
    path = study.consensus_path(*KEY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    session = open_session(study)
    assert session.state(KEY).problem
    assert session.propose().skipped == [(KEY, "unreadable")]
    assert session.accept_unanimous() == 0
    for action in (lambda: session.take_majority(GroupRef(*KEY, 2)), lambda: session.reopen(KEY)):
        with pytest.raises(ConsensusError, match="cannot be read"):
            action()
    assert path.read_text() == content
    assert set(session.decision_labels().values()) == {"unreadable consensus"}


def test_statistics_follow_the_consensus_the_session_writes(study):
    session = open_session(study)
    assert session.statistics(bootstrap=0)["reader_vs_consensus"]["slices_with_consensus"] == 0
    session.accept_unanimous()
    for ref in session.disagreements():
        session.take_reader(ref, "r3")
    stats = session.statistics(bootstrap=0)
    versus = stats["reader_vs_consensus"]
    assert versus["slices_with_consensus"] == 1
    assert versus["readers"]["r3"]["OVCF"]["sensitivity"]["value"] is None  # r3 called no OVCF, nor did we
    assert versus["readers"]["r1"]["OVCF"]["fp"] == 2 and versus["readers"]["r3"]["KD"]["tp"] == 1
    assert session.check.slices[0].consensus is None  # the check itself is what was read at the start


def test_imported_genant_grades_are_kept_in_the_consensus(tmp_path):
    """Grades came with the images (every reader's copy holds them): each way of deciding keeps the grade, the file
    and the record hold it, and a restart reads it back."""
    from core.consensus.coannotation import draft_result

    study = make_study(tmp_path / "study", cases=1, slices=1)
    write_all(study, [v.with_changes(genant=grade) for v, grade in zip(column(4), (0, 1, 2, 3), strict=True)])

    def r1(v):
        v[1] = v[1].with_changes(diseases=frozenset({Disease.OVCF}))

    def r2(v):
        v[1] = v[1].with_changes(diseases=frozenset({Disease.OVCF}))
        v[2] = v[2].with_changes(diseases=frozenset({Disease.OF}))

    def r3(v):
        v[1] = v[1].with_changes(diseases=frozenset({Disease.OF}))
        v[2] = v[2].with_changes(diseases=frozenset({Disease.KD}), genant=3)

    for reader, change in (("r1", r1), ("r2", r2), ("r3", r3)):
        edit(study, reader, *KEY, change)
    session = open_session(study)
    majority, conflict = session.disagreements()
    assert session.view(majority).majority.genant == 1
    assert draft_result(session.view(conflict)).genant == 3  # the highest of the readers' copies
    session.take_majority(majority)
    session.take_reader(conflict, "r2")
    assert session.accept_unanimous() == 2
    written = read_labelme(study.consensus_path(*KEY))
    assert [v.genant for v in written.vertebrae] == [0, 1, 2, 3]
    record = json.loads(study.consensus_path(*KEY).read_text())[RECORD_KEY]
    assert [r["result"]["genant"] for r in record["resolutions"]] == [0, 1, 2, 3]
    again = open_session(study)
    assert again.disagreements() == [] and not again.state(KEY).record.external
    assert [again.state(KEY).resolved[g].result.genant for g in (1, 2, 3, 4)] == [0, 1, 2, 3]


def test_a_record_with_a_bad_genant_grade_cannot_be_read(study):
    session = open_session(study)
    session.take_majority(session.disagreements()[0])
    written = read_labelme(study.consensus_path(*KEY))
    record = json.loads(json.dumps(written.extra[RECORD_KEY]))
    record["resolutions"][0]["result"]["genant"] = 7
    with pytest.raises(ConsensusError, match="cannot be read: Genant grade must be a whole number from 0 to 3"):
        read_record(written.with_changes(extra={RECORD_KEY: record}), "case-0001/s001")
