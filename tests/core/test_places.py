"""Where each reader left off: kept per study and reader in the user's state folder, most recent first, and a broken
or hostile file is ignored (the study opens at its first slice) rather than stopping the app."""

from __future__ import annotations

import json

import pytest

from core.imaging.windowing import Window
from core.review.places import MAX_PLACES, PLACES_FILE, PlaceBook, ReadingPlace
from core.review.preferences import AppDirs


@pytest.fixture()
def dirs(tmp_path) -> AppDirs:
    return AppDirs(tmp_path / "config", tmp_path / "state", tmp_path / "data")


def test_a_place_round_trips_per_study_and_reader(dirs, tmp_path):
    book = PlaceBook(dirs)
    study_a, study_b = tmp_path / "a", tmp_path / "b"
    book.remember(study_a, "r1", ReadingPlace("case-0002", "s007", Window(40, 300, "soft"), "soft"))
    book.remember(study_a, "r2", ReadingPlace("case-0001", "s001"))
    book.remember(study_b, "r1", ReadingPlace("case-0009", "s003", Window(-5.5, 12.25), "custom"))
    again = PlaceBook(dirs)
    assert again.place(study_a, "r1") == ReadingPlace("case-0002", "s007", Window(40, 300, "soft"), "soft")
    assert again.place(study_a, "r2") == ReadingPlace("case-0001", "s001")
    assert again.place(study_b, "r1").window == Window(-5.5, 12.25)
    assert again.place(study_b, "r2") is None and again.place(tmp_path / "c", "r1") is None
    assert (dirs.state / PLACES_FILE).is_file() and not dirs.config.exists()  # state, not the settings


def test_the_most_recent_studies_are_kept(dirs, tmp_path):
    book = PlaceBook(dirs)
    for number in range(MAX_PLACES + 5):
        book.remember(tmp_path / f"study-{number}", "r1", ReadingPlace("case-0001", f"s{number:03d}"))
    book.remember(tmp_path / "study-7", "r1", ReadingPlace("case-0001", "s999"))  # used again: the most recent
    studies = json.loads((dirs.state / PLACES_FILE).read_text())["studies"]
    assert len(studies) == MAX_PLACES
    assert next(iter(studies)).endswith("study-7")
    assert book.place(tmp_path / "study-0", "r1") is None  # the oldest fell out
    assert book.place(tmp_path / f"study-{MAX_PLACES + 4}", "r1").slice_id == f"s{MAX_PLACES + 4:03d}"


@pytest.mark.parametrize("content", [
    b"", b"\x00\xff\xfe garbage", b"[1, 2, 3]", b'{"studies": "no"}', b'{"studies": {"X": 5}}',
    b"{" + b" " * 10,  # truncated
])
def test_a_broken_file_is_ignored_and_replaced(dirs, tmp_path, content):
    (dirs.state).mkdir(parents=True)
    (dirs.state / PLACES_FILE).write_bytes(content)
    book = PlaceBook(dirs)
    assert book.place(tmp_path / "a", "r1") is None
    book.remember(tmp_path / "a", "r1", ReadingPlace("case-0001", "s002"))
    assert book.place(tmp_path / "a", "r1") == ReadingPlace("case-0001", "s002")


def test_hostile_entries_give_no_place_or_no_window(dirs, tmp_path):
    study = str((tmp_path / "a").resolve())
    entries = {
        "r1": {"case": 5, "slice": "s001"},
        "r2": {"case": "case-0001", "slice": "s001", "window": {"center": 40, "width": -3}},
        "r3": {"case": "case-0001", "slice": "s001", "window": {"center": "NaN", "width": 300}, "preset": 7},
        "r4": "not a place",
    }
    dirs.state.mkdir(parents=True)
    (dirs.state / PLACES_FILE).write_text(json.dumps({"studies": {study: entries}}))
    book = PlaceBook(dirs)
    assert book.place(tmp_path / "a", "r1") is None and book.place(tmp_path / "a", "r4") is None
    assert book.place(tmp_path / "a", "r2") == ReadingPlace("case-0001", "s001")  # the slice, not the bad window
    assert book.place(tmp_path / "a", "r3") == ReadingPlace("case-0001", "s001")


def test_a_huge_file_is_not_read(dirs, tmp_path):
    dirs.state.mkdir(parents=True)
    with (dirs.state / PLACES_FILE).open("wb") as file:
        file.truncate(64 << 20)  # sparse: 64 MB claimed, nothing allocated
    assert PlaceBook(dirs).place(tmp_path / "a", "r1") is None


def test_an_unwritable_state_folder_is_reported_not_raised(dirs, tmp_path):
    dirs.state.parent.mkdir(parents=True, exist_ok=True)
    dirs.state.write_text("a file where the folder should be")
    problem = PlaceBook(dirs).try_remember(tmp_path / "a", "r1", ReadingPlace("case-0001", "s001"))
    assert problem and str(dirs.state) in problem
