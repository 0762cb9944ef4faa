"""A study reopens where the reader left off: the same slice, drawn with the same window, named the same in the
preset box; another reader, another study, or a slice no longer there opens at the first slice."""

from __future__ import annotations

import pytest

from core.imaging.windowing import Window
from core.review.places import PlaceBook, ReadingPlace
from core.review.preferences import app_dirs
from desktop.panels.window_panel import PRESET_CUSTOM, PRESET_MIN_MAX
from desktop.review.reading_place import SAVE_DELAY_MS
from tests.desktop.workspace_helpers import make_study, shown_window


def _drawn(win) -> tuple[float, float]:
    low, high = win.viewer.image_item.getLevels()
    return float(low), float(high)


@pytest.fixture()
def study(tmp_path):
    return make_study(tmp_path / "study")


def test_reopening_shows_the_slice_and_window_left(qtbot, study):
    first = shown_window(qtbot, study.root)
    assert first.controller.key == ("case-0001", "s001")
    first.case_list.sliceChosen.emit(("case-0002", "s002"))  # as a click in the case list does
    first.window_panel.set_window(Window(100, 50))
    assert first.controller.key == ("case-0002", "s002") and _drawn(first) == (75, 125)
    first.close()

    again = shown_window(qtbot, study.root)
    assert again.controller.key == ("case-0002", "s002")
    current = again.case_list.tree.currentItem()
    assert current is not None and current.parent() is not None and "s002" in current.text(0)  # the list agrees
    assert _drawn(again) == (75, 125)
    assert again.window_panel.shown_preset() == PRESET_CUSTOM
    assert again.window_panel.preset.currentText() == "Custom (100/50)"


def test_a_preset_is_worked_out_again_for_the_slice(qtbot, study):
    first = shown_window(qtbot, study.root)
    first.case_list.sliceChosen.emit(("case-0001", "s002"))
    first.window_panel.set_window(Window(10, 10))  # custom first, then back to the preset
    combo = first.window_panel.preset
    combo.setCurrentIndex(combo.findData(PRESET_MIN_MAX))
    expected = _drawn(first)
    first.close()

    again = shown_window(qtbot, study.root)
    assert again.controller.key == ("case-0001", "s002")
    assert again.window_panel.shown_preset() == PRESET_MIN_MAX
    assert _drawn(again) == expected and expected != (5, 15)


def test_the_place_is_written_a_moment_after_paging_stops(qtbot, study):
    win = shown_window(qtbot, study.root)
    book = PlaceBook(app_dirs())
    win.controller.step(1)
    win.controller.step(1)
    assert book.place(study.root, "r1") is None  # not on every step
    qtbot.waitUntil(lambda: book.place(study.root, "r1") is not None, timeout=SAVE_DELAY_MS + 3000)
    assert book.place(study.root, "r1").case == "case-0002"
    assert (book.place(study.root, "r1").case, book.place(study.root, "r1").slice_id) == win.controller.key


def test_other_readers_and_missing_slices_open_at_the_first_slice(qtbot, study):
    book = PlaceBook(app_dirs())
    book.remember(study.root, "r1", ReadingPlace("case-0002", "s001"))
    book.remember(study.root, "r2", ReadingPlace("case-0404", "s001", Window(1, 2), PRESET_CUSTOM))
    win = shown_window(qtbot, study.root, reader="r2")
    assert win.controller.key == ("case-0001", "s001")  # r2's slice is not in the study: no error, the first slice
    win.close()
    win = shown_window(qtbot, study.root, reader="r3")
    assert win.controller.key == ("case-0001", "s001")
    win.close()
    win = shown_window(qtbot, study.root, reader="r1")
    assert win.controller.key == ("case-0002", "s001")
