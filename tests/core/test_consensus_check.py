"""The consistency check over a study: injected disagreements are all found and none is invented; the phantom's
readers' disagreements are found exactly; bad input (missing files, sizes that differ, unknown readers)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from core.annotations.model import Box, Disease, Vertebra
from core.consensus.check import check_study, resolve_readers
from core.consensus.inconsistencies import inconsistency_rows
from core.consensus.matching import Agreement, MatchSettings
from core.errors import ConsensusError
from core.progress import run
from core.synthetic.generate import SynthOptions, plan_study
from tests.core.test_consensus_helpers import (
    READERS,
    column,
    edit,
    make_study,
    phantom_study,
    vertebra,
    write,
    write_all,
)

BASE = {1: ["OVCF"], 3: ["OF", "PS"]}


@pytest.fixture
def identical(tmp_path):
    """Two cases x two slices, three identical copies of one six-vertebra annotation."""
    study = make_study(tmp_path / "study")
    write_all(study, column(6, BASE))
    return study


def test_three_identical_copies_give_no_disagreement(identical):
    check = run(check_study(identical))
    assert check.readers == READERS and len(check.slices) == 4
    assert check.status_counts()["groups"] == 24
    assert check.disagreements() == [] and inconsistency_rows(check) == []
    assert not check.partial and check.missing == [] and check.unread == []


def test_every_injected_disagreement_is_found_and_none_is_invented(identical):
    def move_far(v):  # r2's L1 box moved down by most of a box: no longer a hit, a missing box and a stray one
        v[2] = v[2].with_changes(box=v[2].box.translated(0, 30))

    def move_a_little(v):  # r3's T11 box moved 14 px: still a hit, drawn differently
        v[0] = v[0].with_changes(box=v[0].box.translated(0, 14))

    def flip(v):  # r1 calls L4 an OVCF
        v[4] = v[4].with_changes(diseases=frozenset({Disease.OVCF}))

    def delete(v):  # r3 leaves out T12 (the OVCF)
        del v[1]

    def stray(v):  # r1 adds a box where there is no vertebra
        v.append(Vertebra(Box(10, 350, 50, 390), frozenset({Disease.SN}), source="r1"))

    edit(identical, "r2", "case-0001", "s001", move_far)
    edit(identical, "r3", "case-0001", "s002", move_a_little)
    edit(identical, "r1", "case-0002", "s001", flip)
    edit(identical, "r3", "case-0002", "s002", delete)
    edit(identical, "r1", "case-0002", "s002", stray)
    check = run(check_study(identical))
    found = {(s.case, s.slice_id, g.kinds, g.drawn_by, g.missing_for) for s, g in check.disagreements()}
    assert found == {
        ("case-0001", "s001", ("missing",), ("r1", "r3"), ("r2",)),  # the box r2 moved away from
        ("case-0001", "s001", ("missing",), ("r2",), ("r1", "r3")),  # where r2's box went
        ("case-0001", "s002", ("box",), READERS, ()),
        ("case-0002", "s001", ("label",), READERS, ()),
        ("case-0002", "s002", ("missing",), ("r1", "r2"), ("r3",)),
        ("case-0002", "s002", ("missing",), ("r1",), ("r2", "r3")),
    }
    flipped = next(g for s, g in check.disagreements() if s.key == ("case-0002", "s001"))
    assert flipped.status is Agreement.MAJORITY and flipped.flags["OVCF"] is Agreement.MAJORITY
    assert flipped.versions["r1"].level == "L3" and flipped.majority.diseases == frozenset()
    rows = Counter((r["case"], r["slice"], r["reader"], r["class"], r["kind"]) for r in inconsistency_rows(check))
    assert rows == Counter({
        ("case-0001", "s001", "r2", "NORMAL", "no box"): 1,
        ("case-0001", "s001", "r2", "NORMAL", "extra box"): 1,
        ("case-0001", "s002", "r3", "NORMAL", "box"): 1,
        ("case-0002", "s001", "r1", "OVCF", "label"): 1,
        ("case-0002", "s002", "r3", "OVCF", "no box"): 1,
        ("case-0002", "s002", "r1", "SN", "extra box"): 1,
    })
    # Everything else is still unanimous: 26 groups (the far move and the stray box add one each), 6 disagreements,
    # one of which (the box drawn differently) is unanimous in its label.
    counts = check.status_counts()
    assert counts["groups"] == 26 and counts["disagreements"] == 6 and counts["unanimous"] == 26 - 6 + 1


def test_the_phantom_readers_disagreements_are_found_exactly(tmp_path):
    options = SynthOptions(cases=3, seed=4, slices_per_case=2, readers=3, disagreement=0.2)
    study = phantom_study(tmp_path / "study", cases=3, slices=2, seed=4, disagreement=0.2)
    plan = plan_study(options)
    expected = set()
    for case_index, level, number in plan.readers[0]:
        calls = [r[(case_index, level, number)] for r in plan.readers]
        if len({(c.box is None, c.diseases) for c in calls}) > 1 and any(c.box is not None for c in calls):
            expected.add((f"case-{case_index + 1:04d}", f"s{number:03d}", level))
    check = run(check_study(study))
    found = set()
    for item, group in check.disagreements():
        levels = {v.level for v in group.versions.values() if v is not None}
        assert len(levels) == 1, "a group mixes vertebrae"
        found.add((item.case, item.slice_id, levels.pop()))
    assert len(expected) > 5
    assert found == expected
    assert check.status_counts()["boxes_differ"] == 0


def test_a_missing_reader_file_makes_the_check_partial_and_names_the_reader_and_slice(identical):
    identical.reader_path("r2", "case-0001", "s002").unlink()
    check = run(check_study(identical))
    assert check.partial and check.missing == [("r2", "case-0001", "s002")]
    item = next(s for s in check.slices if s.key == ("case-0001", "s002"))
    assert item.readers == ("r1", "r3") and item.absent == ("r2",)
    assert all(g.status is Agreement.UNANIMOUS for g in item.groups)  # compared among those who read it
    assert check.disagreements() == []


def test_a_slice_nobody_read_is_unread_not_missing(identical):
    for reader in READERS:
        identical.reader_path(reader, "case-0002", "s001").unlink()
    check = run(check_study(identical))
    assert check.unread == [("case-0002", "s001")] and check.missing == [] and not check.partial
    assert len(check.slices) == 3


def test_an_unreadable_reader_file_is_skipped_with_its_reason(identical):
    path = identical.reader_path("r3", "case-0001", "s001")
    path.write_text("{not json")
    check = run(check_study(identical))
    assert check.partial and check.skipped[0][0] == str(path) and "not valid JSON" in check.skipped[0][1]
    assert next(s for s in check.slices if s.key == ("case-0001", "s001")).readers == ("r1", "r2")


def test_image_sizes_that_differ_are_an_error_naming_the_files(identical):
    write(identical, "r2", "case-0001", "s002", column(6, BASE), size=(210, 400))
    with pytest.raises(ConsensusError) as caught:
        run(check_study(identical))
    message = str(caught.value)
    assert "case-0001/s002" in message and "210x400" in message and "200x400" in message
    for reader in READERS:
        assert str(identical.reader_path(reader, "case-0001", "s002")) in message


def test_readers_agreeing_on_a_size_other_than_the_image_is_an_error(tmp_path):
    study = make_study(tmp_path / "study", cases=1, slices=1)
    write_all(study, column(3), size=(300, 400))
    with pytest.raises(ConsensusError, match=r"image .*s001.png \(200x400\)"):
        run(check_study(study))


def test_unknown_reader_ids_are_a_clear_error_listing_the_known_readers(identical):
    with pytest.raises(ConsensusError) as caught:
        resolve_readers(identical, ["r1", "dr-who"])
    assert "'dr-who'" in str(caught.value) and "r1, r2, r3" in str(caught.value)
    with pytest.raises(ConsensusError, match="at least two readers, 1 was chosen of the study's 3"):
        resolve_readers(identical, ["r1"])
    assert resolve_readers(identical, [" r3", "r1 ", "r3"]) == ("r3", "r1")


def test_only_the_chosen_readers_are_compared(identical):
    edit(identical, "r3", "case-0001", "s001", lambda v: v.pop())
    assert len(run(check_study(identical)).disagreements()) == 1
    check = run(check_study(identical, ["r1", "r2"]))
    assert check.readers == ("r1", "r2") and check.disagreements() == []


def test_iou_matching_can_be_chosen(identical):
    def shrink(v):  # r2 draws T11 as a small box inside the others' (IoM 1, IoU 0.25)
        box = v[0].box
        v[0] = v[0].with_changes(box=Box(box.x1, box.y1, box.x1 + box.width / 2, box.y1 + box.height / 2))

    edit(identical, "r2", "case-0001", "s001", shrink)
    by_iom = run(check_study(identical, settings=MatchSettings("iom", 0.5, box_tolerance=0.2)))
    by_iou = run(check_study(identical, settings=MatchSettings("iou", 0.5, box_tolerance=0.2)))
    assert len(by_iom.disagreements()) == 0
    assert [g.kinds for _, g in by_iou.disagreements()] == [("missing",), ("missing",)]


def test_a_corrupt_consensus_file_does_not_stop_the_check(identical):
    path = identical.consensus_path("case-0001", "s001")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"shapes": "nope"}))
    check = run(check_study(identical))
    assert check.skipped and check.skipped[0][0] == str(path)


def test_slices_with_different_diseases_on_a_level_keep_their_level(identical):
    edit(identical, "r2", "case-0002", "s002", lambda v: v.__setitem__(5, vertebra(5, "SN", source="r2")))
    [(item, group)] = run(check_study(identical)).disagreements()
    assert item.key == ("case-0002", "s002")
    assert group.versions["r2"].level == "L4" and group.labels() == {"r1": "NORMAL", "r2": "SN", "r3": "NORMAL"}
