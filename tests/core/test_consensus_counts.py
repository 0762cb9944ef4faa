"""Open disagreements, defined once (core.consensus.counts) and counted the same by the session, the statistics, the
command line and the case list; who is compared (a fourth reader who read two slices is not); who is recorded as
agreeing; and a slice's consensus progress until it is final."""

from __future__ import annotations

import pytest

from core.annotations.model import Disease, SliceAnnotation
from core.consensus.agreement import agreement_statistics
from core.consensus.check import check_study, study_readers
from core.consensus.coannotation import consensus_readers
from core.consensus.counts import DisagreementCounts, count_disagreements
from core.consensus.session import ConsensusSession
from core.errors import ConsensusError
from core.progress import run
from core.review.status import SliceStatus
from core.review.summary import scan_study, summarize
from desktop.cli import main
from tests.core.test_consensus_helpers import column, edit, make_study, write_all

A, B, C, D = ("case-0001", "s001"), ("case-0001", "s002"), ("case-0002", "s001"), ("case-0002", "s002")
OVCF, OF = frozenset({Disease.OVCF}), frozenset({Disease.OF})


def relabel(index: int, diseases: frozenset[Disease]):
    def change(vertebrae):
        vertebrae[index] = vertebrae[index].with_changes(diseases=diseases)
    return change


@pytest.fixture
def study(tmp_path):
    """Four slices, two disagreements on each (r2 calls vertebra 1 OVCF, r3 calls vertebra 3 OF); A gets a consensus
    made outside the workflow, B one decision, C is decided and finalised, D is untouched."""
    study = make_study(tmp_path / "study", cases=2, slices=2)
    write_all(study, column(5))
    for key in (A, B, C, D):
        edit(study, "r2", *key, relabel(1, OVCF))
        edit(study, "r3", *key, relabel(3, OF))
    truth = study.load_annotation(*A, reader="r1")
    study.save_annotation(SliceAnnotation(truth.image_width, truth.image_height, truth.vertebrae), *A)
    session = run(ConsensusSession.open(study))
    first_b = next(r for r in session.disagreements() if r.key == B)
    session.take_majority(first_b)
    for ref in [r for r in session.disagreements() if r.key == C]:
        session.take_majority(ref)
    session.accept_unanimous([C])
    session.finalise(C)
    return study


def test_one_definition_of_an_open_disagreement_is_counted_the_same_everywhere(study, tmp_path, capsys):
    session = run(ConsensusSession.open(study))
    expected = DisagreementCounts(total=8, decided=3, locked=2, open=3)  # A: 2 locked; B: 1 decided; C: 2 decided
    assert count_disagreements(session.state(k) for k in session.slice_keys()) == expected
    summary = session.summary()
    assert (summary["disagreements"], summary["decided"], summary["locked"], summary["open"]) == (8, 3, 2, 3)
    assert len(session.disagreements()) == 3  # what the consensus mode steps through
    assert {r.key for r in session.disagreements()} == {B, D}
    check = run(check_study(study))
    assert agreement_statistics(check, bootstrap=0)["disagreements"] == expected.to_json()
    assert main(["consensus", str(study.root), "--report", str(tmp_path / "report"), "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    assert ("disagreements: 3 open of 8 (3 decided, 2 on slices whose consensus is final or made outside this "
            "workflow)") in out
    page = (tmp_path / "report" / "report.html").read_text()
    assert "open disagreements: to resolve (not decided, slice not locked)</th><td>3<" in page
    # The case list's mark and its "Readers disagree" filter: the slices with an open disagreement, for anyone.
    summaries = run(scan_study(study, "coord", None))
    assert {key for key, s in summaries.items() if s.disagreement} == {B, D}
    assert summaries[B].disagreement == summarize(study, B, "r1", None).disagreement


def test_a_fourth_reader_who_read_two_slices_is_left_out_with_the_reason(study, tmp_path, capsys):
    for key in (B, D):  # "me" (not one of the study's readers) tries two slices, calling everything OVCF
        mine = study.load_annotation(*key, reader="r1")
        study.save_annotation(mine.with_changes(vertebrae=tuple(v.with_changes(diseases=OVCF)
                                                                 for v in mine.vertebrae)), *key, reader="me")
    assert "me" in study.readers()
    assert study_readers(study).readers == ("r1", "r2", "r3")
    choice = consensus_readers(study)
    assert choice.readers == ("r1", "r2", "r3")
    assert choice.left_out == {"me": "2 slices read; not one of the study's readers in study.json"}
    assert run(check_study(study)).readers == ("r1", "r2", "r3")
    session = run(ConsensusSession.open(study))
    assert session.summary()["open"] == 3  # the same three as without "me"
    assert {k for k, s in run(scan_study(study, "me", None)).items() if s.disagreement} == {B, D}
    assert main(["consensus", str(study.root), "--report", str(tmp_path / "r"), "--bootstrap", "0"]) == 0
    captured = capsys.readouterr()
    assert "readers r1, r2, r3" in captured.out
    assert "Left out of the consensus: me (not one of the study's readers in study.json)" in captured.err
    # Named explicitly, "me" is compared (and is missing on the slices they did not read).
    assert run(check_study(study, ["r1", "r2", "r3", "me"])).readers == ("r1", "r2", "r3", "me")


def test_only_readers_of_the_slice_are_recorded_as_agreeing(study):
    study.reader_path("r3", *D).unlink()  # r3 has not read D: r2's OVCF is now a 1:1 tie, no majority
    session = run(ConsensusSession.open(study))
    [ref] = [r for r in session.disagreements() if r.key == D]
    assert session.take_reader(ref, "r1").agreed_by == ("r1", "r2")  # by default the slice's readers, not r3
    assert session.take_reader(ref, "r1", agreed_by=["r1", "r3"]).agreed_by == ("r1",)
    with pytest.raises(ConsensusError, match="r3 did not read case-0002/s002"):
        session.take_reader(ref, "r2", agreed_by=["r3"])
    accepted = session.accept_unanimous([D], agreed_by=["r3"])  # nobody who read D agreed: nothing accepted
    assert accepted == 0
    session.accept_unanimous([D], agreed_by=["r2", "r3"])
    session.finalise(D, agreed_by=["r1", "r3"])
    record = session.state(D).record
    assert record.finalised_by == ("r1",)
    assert {r.agreed_by for r in record.resolutions} == {("r1",), ("r2",)}


def test_a_slice_shows_its_progress_until_its_consensus_is_final(study):
    in_progress = summarize(study, B, "r1", None)
    assert in_progress.status is SliceStatus.REVIEWED  # r1's own status, not "consensus"
    assert in_progress.consensus_progress == (1, 5) and in_progress.disagreement
    final = summarize(study, C, "r1", None)
    assert final.status is SliceStatus.CONSENSUS and final.consensus_progress is None and not final.disagreement
    external = summarize(study, A, "r1", None)
    assert external.status is SliceStatus.CONSENSUS and not external.disagreement
    untouched = summarize(study, D, "r1", None)
    assert untouched.consensus_progress is None and untouched.disagreement
    session = run(ConsensusSession.open(study))
    session.accept_unanimous([B])
    for ref in [r for r in session.disagreements() if r.key == B]:
        session.take_majority(ref)
    assert summarize(study, B, "r1", None).consensus_progress == (5, 5)  # all decided, still not final
    session.finalise(B)
    assert summarize(study, B, "r1", None).status is SliceStatus.CONSENSUS


def test_an_unreadable_consensus_locks_its_slice_in_every_count(study):
    study.consensus_path(*D).write_text("{not json")
    session = run(ConsensusSession.open(study))
    assert session.summary()["open"] == 1 and session.summary()["locked"] == 4
    summary = summarize(study, D, "r1", None)
    assert not summary.disagreement and summary.problem
