"""Small parts: the PySide reference-count guard, the scale bar's lengths, chips, zones, the bench studies, and the
selected box's imported Genant grade."""

from __future__ import annotations

import sys

import pytest
from PySide6 import QtCore

from core.annotations.model import Box, Disease, Vertebra
from core.review.confidence import ModelCall
from core.study.layout import Study
from desktop.benchmark_data import BOXES, large_slice_study, many_slice_study
from desktop.panels.vertebra_panel import VertebraPanel
from desktop.qt_fixes import none_reference_loss
from desktop.viewer.box_item import _zone, dragged_rect
from desktop.viewer.box_overlay import chip_text
from desktop.viewer.scale_bar import nice_length


def test_many_void_qt_calls_cannot_exhaust_references_to_none():
    probe = QtCore.QObject()
    for _ in range(200_000):  # far more than None's own reference count on Python 3.11
        probe.setObjectName("x")
    if none_reference_loss() > 0 and sys.version_info < (3, 12):
        assert sys.getrefcount(None) > 2**59


@pytest.mark.parametrize(("mm_per_px", "mm"), [(0.1, 10), (0.5, 50), (0.62, 50), (2.0, 200), (0.01, 1)])
def test_scale_bar_picks_a_round_length_near_110_pixels(mm_per_px, mm):
    length, pixels = nice_length(mm_per_px)
    assert length == mm and pixels == pytest.approx(mm / mm_per_px)


def test_chip_text_and_drag_zones():
    box = Box(10, 10, 50, 30)
    assert chip_text(Vertebra(box, frozenset({Disease.OVCF, Disease.KD}), {"OVCF": 0.81, "KD": 0.92}, level="L1")) \
        == "L1 · OVCF+KD 0.92"
    assert chip_text(Vertebra(box, probabilities={"NORMAL": 0.7})) == "NORMAL 0.70"
    assert chip_text(Vertebra(box, diagnosed=False, score=0.9)) == "vertebra"
    assert chip_text(Vertebra(box, frozenset({Disease.KD}), {"KD": 0.3}, source="r1")) == "KD"  # the reader's label
    rect = QtCore.QRectF(10, 10, 40, 20)
    assert _zone(rect, QtCore.QPointF(30, 20), 2) == "move"
    assert _zone(rect, QtCore.QPointF(50, 30), 2) == "br" and _zone(rect, QtCore.QPointF(10.5, 20), 2) == "l"
    assert dragged_rect(rect, "br", QtCore.QPointF(5, 5)) == QtCore.QRectF(10, 10, 45, 25)
    assert dragged_rect(rect, "l", QtCore.QPointF(50, 0)) == QtCore.QRectF(50, 10, 10, 20)  # flipped, normalised
    assert dragged_rect(rect, "move", QtCore.QPointF(-3, 4)) == QtCore.QRectF(7, 14, 40, 20)


def test_bench_studies(tmp_path):
    large = large_slice_study(tmp_path / "large", slices=2)
    image = large.read_image("case-0001", "s001")
    assert image.pixels.shape == (1024, 1024) and image.hu
    assert len(large.load_annotation("case-0001", "s002", reader="bench").vertebrae) == BOXES
    assert len(large.load_annotation("case-0001", "s002", model="bench-model").vertebrae) == BOXES
    many = many_slice_study(tmp_path / "many", large, cases=3, per_case=4)
    assert len(Study.open(many.root).all_slices()) == 12
    assert many.reader_path("bench", "case-0003", "s004").is_file()


def test_the_vertebra_panel_shows_an_imported_genant_grade_read_only(qtbot):
    panel = VertebraPanel()
    qtbot.addWidget(panel)
    panel.resize(320, 400)
    plain = Vertebra(Box(10, 10, 50, 30), frozenset({Disease.OVCF}), level="L1", source="import")
    panel.show_vertebra(plain, 0, 2)
    widths = (panel.minimumSizeHint().width(), panel.sizeHint().width())
    assert "Genant" not in panel.details.text()
    panel.show_vertebra(plain.with_changes(genant=2), 0, 2)
    assert "Genant grade 2 (moderate, from the import)" in panel.details.text().splitlines()
    assert (panel.minimumSizeHint().width(), panel.sizeHint().width()) == widths  # the layout keeps its width
    panel.show_vertebra(plain.with_changes(genant=0), 1, 2, editable=False)
    assert "Genant grade 0 (normal, from the import)" in panel.details.text()
    panel.show_vertebra(None)
    assert panel.details.text() == ""


def test_the_vertebra_panel_names_the_models_close_calls_and_a_low_score(qtbot):
    panel = VertebraPanel()
    qtbot.addWidget(panel)
    model_box = Vertebra(Box(10, 10, 50, 30), frozenset({Disease.OVCF}), {"OVCF": 0.35, "KD": 0.5, "NORMAL": 0.1},
                         score=0.78)
    panel.show_vertebra(model_box, 0, 1, call=ModelCall({"OVCF": 0.26, "KD": 0.9}, (300, 200)))
    lines = panel.details.text().splitlines()
    assert "detector score: 0.78 (unsure: below 0.80)" in lines
    assert "close call: OVCF 0.35 called (from 0.26)" in lines
    assert not any(line.startswith("close call: KD") for line in lines)  # 0.5 is far under KD's 0.9
    panel.show_vertebra(model_box, 0, 1)  # a result without thresholds: each judged against 0.5
    assert ("close call against 0.50 (no thresholds recorded): OVCF 0.35 called; KD 0.50 not called"
            in panel.details.text().splitlines())
    panel.show_vertebra(model_box.with_changes(source="r1"), 0, 1, call=ModelCall({"OVCF": 0.26}))  # the reader's
    assert "close call" not in panel.details.text() and "unsure" not in panel.details.text()
    assert "edge" not in panel.details.text()  # the box lies well inside the 300 x 200 image


def test_the_vertebra_panel_says_a_disease_was_called_on_a_body_at_the_image_edge(qtbot):
    panel = VertebraPanel()
    qtbot.addWidget(panel)
    cut = Vertebra(Box(10, 170, 50, 199), frozenset({Disease.OVCF}), {"OVCF": 0.95, "NORMAL": 0.02}, score=0.99)
    panel.show_vertebra(cut, 0, 1, call=ModelCall({"OVCF": 0.26}, (300, 200)))
    lines = panel.details.text().splitlines()
    assert lines[-1] == "box: 10, 170 – 50, 199 px (unsure: at the image's edge, may be cut off)"
    assert len(lines) == 4  # source, score, probabilities, box: no line added for it
    panel.show_vertebra(cut.with_changes(diseases=frozenset()), 0, 1, call=ModelCall({"OVCF": 0.26}, (300, 200)))
    assert "edge" not in panel.details.text()  # called normal: nothing to doubt for the cut
    panel.show_vertebra(cut, 0, 1, call=ModelCall({"OVCF": 0.26}, (300, 260)))  # a taller image: not at its edge
    assert "edge" not in panel.details.text()


def test_the_model_panel_keeps_room_for_every_line_of_a_long_description(qtbot):
    from desktop.panels.model_panel import ModelPanel

    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.resize(300, 60)  # a short dock: the layout would squeeze a wrapped label to fewer lines than it needs
    panel.show()
    qtbot.waitExposed(panel)
    short = panel.description.minimumHeight()
    text = ("demo-v5 (detector + classifier, 4 views of each slice) · demo model, trained on synthetic phantoms, "
            "not for clinical use · CPU, bfloat16 mixed")
    panel.set_state("ready", text)
    width = panel.description.width()
    assert panel.description.minimumHeight() == panel.description.heightForWidth(width) > short
    assert panel.description.height() >= panel.description.heightForWidth(width)  # no line cut off
    lines = panel.description.minimumHeight()
    panel.resize(700, panel.height())  # wider: fewer lines, less room kept
    qtbot.waitUntil(lambda: panel.description.width() > width)
    assert 0 < panel.description.minimumHeight() < lines
