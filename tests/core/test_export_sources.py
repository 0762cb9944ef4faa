"""Export for labelme from a chosen source (a reader, the consensus, a model), the export folder, and the findings
CSV in spine order."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from core.annotations.labelme_io import read_labelme
from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.errors import FileWriteError, StudyError
from core.progress import run
from core.review.export import (
    FINDINGS_FILE,
    ExportSource,
    SourceChoice,
    export_review,
    export_sources,
    prepare_export_folder,
)
from core.review.findings import COLUMNS, findings_csv, spine_rows
from core.study.layout import Study

W, H = 90, 60
SLICES = [("case-0001", "s001"), ("case-0001", "s002"), ("case-0002", "s001")]


def box(y: float, label: set[Disease] = frozenset(), level: str | None = None, x: float = 5) -> Vertebra:
    return Vertebra(Box(x, y, x + 30, y + 12), frozenset(label), level=level)


@pytest.fixture()
def study(tmp_path) -> Study:
    """Three slices; reader r1 read one, the consensus holds two, model m-v1 (in use) predicted all three, the older
    m-v0 one, and m-v2 has an empty predictions folder."""
    study = Study.create(tmp_path / "study")
    for case, slice_id in SLICES:
        folder = study.root / "images" / case
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((H, W), 90, np.uint8)).save(folder / f"{slice_id}.png")
    study.save_annotation(SliceAnnotation(W, H, (box(5, {Disease.SN}),)), *SLICES[0], reader="r1")
    for key in SLICES[:2]:
        study.save_annotation(SliceAnnotation(W, H, (box(30, {Disease.OF}, "L2"), box(5, {Disease.KD}, "L1"))), *key)
    for key in SLICES:
        study.save_annotation(SliceAnnotation(W, H, (box(20, {Disease.PS}),), model="m-v1"), *key, model="m-v1")
    study.save_annotation(SliceAnnotation(W, H, (box(20),), model="m-v0"), *SLICES[0], model="m-v0")
    (study.root / "predictions" / "m-v2").mkdir()
    return study


def test_sources_offered_with_their_slice_counts(study):
    choices = export_sources(study, "r1", active_model="m-v1", unsaved=[SLICES[2]])
    assert choices == [
        SourceChoice(ExportSource.reader("r1"), 2),  # one file and one unsaved edit
        SourceChoice(ExportSource.consensus(), 2),
        SourceChoice(ExportSource.model("m-v1"), 3, active=True),
        SourceChoice(ExportSource.model("m-v0"), 1),  # m-v2 has no predictions: left out
    ]
    fresh = export_sources(study, "r9", active_model="m-new")
    assert [(c.source.kind, c.source.name, c.slices) for c in fresh] == [
        ("reader", "r9", 0), ("consensus", None, 2), ("model", "m-new", 0), ("model", "m-v0", 1), ("model", "m-v1", 3)]


def test_a_source_is_checked():
    assert ExportSource.model("m-v1").where == {"model": "m-v1"} and ExportSource.consensus().where == {}
    assert ExportSource.model("m-v1").who == "model:m-v1" and ExportSource.reader("r1").who == "r1"
    with pytest.raises(StudyError, match="not allowed"):
        ExportSource.reader("../r1")
    with pytest.raises(ValueError):
        ExportSource("consensus", "r1")
    with pytest.raises(ValueError):
        ExportSource("everyone")


def test_the_consensus_is_exported_with_its_findings(study, tmp_path):
    out = tmp_path / "new" / "nested" / "out"
    report = run(export_review(study, out, ExportSource.consensus()))
    assert (report.images, report.annotations, report.errors) == (3, 2, [])
    exported = read_labelme(out / "case-0001" / "s002.json")
    assert [v.label for v in exported.vertebrae] == ["OF", "KD"] and exported.image_path == "s002.png"
    assert not (out / "case-0002" / "s001.json").exists() and (out / "case-0002" / "s001.png").is_file()
    rows = list(csv.DictReader((out / FINDINGS_FILE).open()))
    assert {r["reader"] for r in rows} == {"consensus"}
    assert [(r["slice"], r["vertebra"], r["level"], r["label"]) for r in rows] == [
        ("s001", "1", "L1", "KD"), ("s001", "2", "L2", "OF"), ("s002", "1", "L1", "KD"), ("s002", "2", "L2", "OF")]


def test_a_model_is_exported_and_unsaved_edits_belong_to_a_reader(study, tmp_path):
    out = tmp_path / "model"
    report = run(export_review(study, out, ExportSource.model("m-v0")))
    assert (report.images, report.annotations) == (3, 1)
    written = json.loads((out / "case-0001" / "s001.json").read_text())
    assert written["model"] == "m-v0" and [s["label"] for s in written["shapes"]] == ["NORMAL"]
    assert [r["reader"] for r in csv.DictReader((out / FINDINGS_FILE).open())] == ["model:m-v0"]
    unsaved = {SLICES[1]: SliceAnnotation(W, H, (box(5),), reader="r1")}
    with pytest.raises(ValueError, match="reader"):
        run(export_review(study, tmp_path / "x", ExportSource.consensus(), overrides=unsaved))
    mine = run(export_review(study, tmp_path / "mine", ExportSource.reader("r1"), overrides=unsaved))
    assert mine.annotations == 2 and read_labelme(tmp_path / "mine" / "case-0001" / "s002.json").reader == "r1"


def test_the_export_folder_is_made_or_refused_with_its_name(study, tmp_path):
    nested = tmp_path / "a" / "b" / "c"
    assert prepare_export_folder(nested, study) == nested and nested.is_dir() and not any(nested.iterdir())
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(FileWriteError, match="not a folder") as error:
        prepare_export_folder(a_file)
    assert str(a_file) in str(error.value)
    with pytest.raises(FileWriteError, match="full path"):
        prepare_export_folder("relative/out")
    with pytest.raises(StudyError, match="outside the study"):
        prepare_export_folder(study.root / "export", study)
    with pytest.raises(FileWriteError, match="cannot create") as error:
        prepare_export_folder(a_file / "below")
    assert str(a_file / "below") in str(error.value)


def test_a_folder_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("core.review.export.tempfile.mkstemp", refused)
    with pytest.raises(FileWriteError, match=r"cannot write in the export folder \(Permission denied") as error:
        prepare_export_folder(tmp_path / "read-only")
    assert str(tmp_path / "read-only") in str(error.value)


def rows_of(vertebrae) -> list[dict[str, str]]:
    text = findings_csv([(("case-0001", "s001"), SliceAnnotation(200, 200, tuple(vertebrae), reader="r1"))])
    return [dict(zip(COLUMNS, row, strict=True)) for row in list(csv.reader(text.splitlines()))[1:]]


def test_findings_go_down_the_spine():
    # boxes drawn bottom first, one level unknown: by place along the spine, top first
    rows = rows_of([box(90, {Disease.OF}, "L3"), box(10, level="L1"), box(50, {Disease.SN})])
    assert [(r["vertebra"], r["y1"], r["label"]) for r in rows] == [
        ("1", "10.0", "NORMAL"), ("2", "50.0", "SN"), ("3", "90.0", "OF")]
    # every level known, on a slice turned on its side (the boxes are side by side): by level, C1 to S1
    sideways = [box(50, level="L1", x=60), box(49, level="S1", x=160), box(51, level="T12", x=10),
                box(50, level="L2", x=110)]
    assert [r["level"] for r in rows_of(sideways)] == ["T12", "L1", "L2", "S1"]
    assert spine_rows(sideways) == [2, 0, 3, 1] and spine_rows([]) == []
