"""The window as a whole: the demo, importing a DICOM series, window presets, and what happens at start-up."""

from __future__ import annotations

import pytest

from core.imaging.windowing import BONE, SOFT_TISSUE
from core.resources import resources_dir
from core.review.opening import DEMO_SAMPLE_STUDY, DEMO_STUDY
from core.review.preferences import app_dirs
from desktop.main_window import MainWindow
from desktop.panels.window_panel import PRESET_MIN_MAX, PRESET_SOFT
from tests.desktop.workspace_helpers import FakePipeline, make_study, written


def test_without_a_demo_study_the_demo_imports_the_bundled_ct_once(qtbot, window, tmp_path, monkeypatch):
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "sample").symlink_to(resources_dir() / "sample")
    monkeypatch.setenv("VERTEBRA_REVIEW_RESOURCES", str(resources))
    with qtbot.waitSignal(window.studyOpened, timeout=60_000) as opened:
        window.open_demo()
    session = opened.args[0].session
    assert session.study.root == app_dirs().data / DEMO_SAMPLE_STUDY and len(session.keys) == 11
    assert opened.args[0].imported is not None and opened.args[0].imported.slice_count == 11
    image = window.viewer.image
    assert image.hu and image.orientation == "sagittal"
    assert tuple(window.viewer.image_item.levels) == (BONE.lower, BONE.upper)
    assert window.runner.state == "none" and "manual annotation" in window.model_panel.description.text()
    with qtbot.waitSignal(window.studyOpened, timeout=60_000) as again:
        window.open_demo()
    assert again.args[0].imported.duplicates and again.args[0].session.study.root == session.study.root
    assert len(again.args[0].session.keys) == 11


def test_the_bundled_demo_study_is_reviewed_in_a_copy(qtbot, tmp_path, monkeypatch):
    resources = tmp_path / "resources"
    bundled = make_study(resources / "demo").root
    before = sorted(p.relative_to(bundled) for p in bundled.rglob("*"))
    monkeypatch.setenv("VERTEBRA_REVIEW_RESOURCES", str(resources))
    win = MainWindow(reader="r1", pipeline_loader=lambda path: FakePipeline())
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.studyOpened, timeout=60_000) as opened:
        win.open_demo()
    session = opened.args[0].session
    assert session.study.root == app_dirs().data / DEMO_STUDY and len(session.keys) == 4
    assert win.viewer.demo_banner.isVisible() and len(win.viewer.overlay.other_items()) == 2
    win.controller.accept_model()
    written()
    assert session.study.reader_path("r1", "case-0001", "s001").is_file()
    assert sorted(p.relative_to(bundled) for p in bundled.rglob("*")) == before  # the bundle is never written
    qtbot.waitUntil(lambda: win.runner.state == "ready", timeout=10_000)


def test_an_axial_dicom_series_becomes_sagittal_slabs(qtbot, window, dicom_series_dir):
    with qtbot.waitSignal(window.studyOpened, timeout=60_000) as opened:
        window.open_path(dicom_series_dir)
    assert len(opened.args[0].session.keys) == 11
    assert window.viewer.image.orientation == "sagittal" and window.viewer.image.hu


def test_window_presets_and_right_drag_change_the_levels(qtbot, window, cutout_ct):
    with qtbot.waitSignal(window.studyOpened, timeout=60_000):
        window.open_path(cutout_ct)
    panel = window.window_panel
    panel.preset.setCurrentIndex(panel.preset.findData(PRESET_SOFT))
    assert tuple(window.viewer.image_item.levels) == (SOFT_TISSUE.lower, SOFT_TISSUE.upper)
    panel.preset.setCurrentIndex(panel.preset.findData(PRESET_MIN_MAX))
    pixels = window.viewer.image.pixels
    assert tuple(window.viewer.image_item.levels) == pytest.approx((pixels.min(), pixels.max()), abs=1)
    before = window.current_window()
    window.viewer.windowDragged.emit(40.0, -20.0)  # right-drag: wider, lower level
    after = window.current_window()
    assert after.width > before.width and after.center < before.center
    assert tuple(window.viewer.image_item.levels) == pytest.approx((after.lower, after.upper))


def test_a_missing_path_says_why(qtbot, window, tmp_path, message_boxes):
    with qtbot.waitSignal(window.openFailed, timeout=20_000) as failed:
        window.open_path(tmp_path / "nowhere")
    assert "nowhere" in failed.args[0] and message_boxes[-1][0] == "warning"


def test_the_app_carries_its_icon_at_the_shipped_sizes(qapp):
    from desktop.app import app_icon

    icon = app_icon()
    sizes = {(size.width(), size.height()) for size in icon.availableSizes()}
    assert {(16, 16), (48, 48), (256, 256)} <= sizes
    assert not icon.pixmap(32, 32).isNull()
