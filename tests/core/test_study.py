"""Studies: the folder layout, importing (anonymised) and exporting for labelme."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from core.annotations.labelme_io import read_labelme
from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.errors import StudyError
from core.progress import run
from core.study.exporter import export_study
from core.study.importer import ImportOptions, import_source
from core.study.layout import Study, check_id


def _jpeg(path: Path, width: int = 80, height: int = 60) -> np.ndarray:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)
    return np.asarray(Image.open(path))


def _paper_style_json(image_name: str, width: int, height: int) -> dict:
    """The paper's LabelMe style: a 'vertebra' box per body and a box per disease repeating it."""
    def rect(label, x1, y1, x2, y2):
        return {"label": label, "points": [[x1, y1], [x2, y2]], "group_id": None, "shape_type": "rectangle",
                "flags": {}}

    return {
        "version": "5.0.1", "flags": {}, "imagePath": image_name, "imageData": None,
        "imageWidth": width, "imageHeight": height,
        "shapes": [
            rect("vertebra", 10, 5, 40, 20),
            rect("OVCF", 10.2, 5.1, 40.1, 20.0),
            rect("Kummell", 10, 5, 40, 20.2),
            rect("vertebra", 10, 25, 40, 40),
            rect("schmorl's node", 10, 42, 40, 55),
        ],
    }


@pytest.fixture()
def paper_folder(tmp_path: Path) -> Path:
    source = tmp_path / "paper_export"
    for patient, n in (("patient_17", 2), ("patient_42", 1)):
        for i in range(n):
            image = source / patient / f"IMG{i:03d}.jpg"
            _jpeg(image)
            (image.with_suffix(".json")).write_text(json.dumps(_paper_style_json(image.name, 80, 60)))
    return source


def test_check_id_refuses_paths_and_odd_names():
    assert check_id("case-0001", "case") == "case-0001"
    for bad in ("../x", "a/b", "", ".hidden", "a b", "x" * 65, "..", "a..b"):
        with pytest.raises(StudyError):
            check_id(bad, "case")


def test_create_refuses_non_empty_folder_and_open_needs_study_file(tmp_path):
    (tmp_path / "stuff.txt").write_text("x")
    with pytest.raises(StudyError, match="not empty"):
        Study.create(tmp_path)
    with pytest.raises(StudyError, match="not a study"):
        Study.open(tmp_path)
    study = Study.create(tmp_path / "new")
    assert Study.open(tmp_path / "new").settings.name == "new"
    assert {p.name for p in study.root.iterdir()} >= {"study.json", "images", "readers", "consensus", "models"}


def test_study_settings_keep_unknown_keys_and_refuse_future_versions(tmp_path):
    study = Study.create(tmp_path / "s")
    data = json.loads((study.root / "study.json").read_text())
    data["site_note"] = {"kept": True}
    (study.root / "study.json").write_text(json.dumps(data))
    reopened = Study.open(study.root)
    reopened.save_settings()
    assert json.loads((study.root / "study.json").read_text())["site_note"] == {"kept": True}
    data["version"] = 99
    (study.root / "study.json").write_text(json.dumps(data))
    with pytest.raises(StudyError, match="newer"):
        Study.open(study.root)
    (study.root / "study.json").write_text("{not json")
    with pytest.raises(StudyError, match="cannot read"):
        Study.open(study.root)


def test_import_paper_png_folder_with_labelme(paper_folder, tmp_path):
    study_root = tmp_path / "study"
    report = run(import_source(paper_folder, study_root, ImportOptions(reader="wang")))
    assert [c.slices for c in report.cases] == [2, 1]
    assert [c.annotations for c in report.cases] == [2, 1]
    assert not report.skipped
    study = Study.open(study_root)
    assert study.cases() == ["case-0001", "case-0002"]
    assert study.slices("case-0001") == ["s001", "s002"]
    assert study.settings.readers == ["wang"]
    # Pixels are kept exactly (JPEG decoded once, stored as PNG); names are anonymous.
    original = np.asarray(Image.open(paper_folder / "patient_17" / "IMG000.jpg"))
    stored = study.image_path("case-0001", "s001")
    assert stored.suffix == ".png"
    assert np.array_equal(np.asarray(Image.open(stored)), original)
    assert not any("patient" in str(p) or "IMG" in str(p) for p in study_root.rglob("*"))
    # The paper's per-disease boxes were merged into one vertebra per body.
    annotation = study.load_annotation("case-0001", "s001", reader="wang")
    assert [v.label for v in annotation.vertebrae] == ["OVCF+KD", "vertebra", "SN"]
    assert annotation.vertebrae[0].box == Box(10, 5, 40, 20)
    assert annotation.reader == "wang"
    raw = json.loads(study.reader_path("wang", "case-0001", "s001").read_text())
    assert raw["imagePath"] == "../../../images/case-0001/s001.png"
    assert (study.reader_path("wang", "case-0001", "s001").parent / raw["imagePath"]).resolve() == stored.resolve()


def test_reimporting_the_same_source_is_detected(paper_folder, tmp_path):
    study_root = tmp_path / "study"
    run(import_source(paper_folder, study_root))
    again = run(import_source(paper_folder, study_root))
    assert not again.cases
    assert sorted(existing for _, existing in again.duplicates) == ["case-0001", "case-0002"]
    assert Study.open(study_root).cases() == ["case-0001", "case-0002"]


def test_bad_json_beside_an_image_is_reported_and_the_image_still_imported(tmp_path):
    source = tmp_path / "src" / "p1"
    _jpeg(source / "a.jpg")
    (source / "a.json").write_text("{ this is not json")
    _jpeg(source / "b.jpg")
    (source / "b.json").write_text(json.dumps(_paper_style_json("b.jpg", 80, 60)))
    report = run(import_source(tmp_path / "src", tmp_path / "study"))
    assert report.cases[0].slices == 2 and report.cases[0].annotations == 1
    assert len(report.skipped) == 1
    where, why = report.skipped[0]
    assert where.endswith("a.json") and "not valid JSON" in why


def test_labelme_json_with_only_embedded_image_is_imported(tmp_path):
    buffer = io.BytesIO()
    pixels = np.arange(40 * 30, dtype=np.uint16).reshape(30, 40).astype(np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    data = _paper_style_json("gone.png", 40, 30)
    data["shapes"] = [data["shapes"][1]]
    data["shapes"][0]["points"] = [[1, 1], [20, 20]]
    data["imageData"] = base64.b64encode(buffer.getvalue()).decode()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "only.json").write_text(json.dumps(data))
    report = run(import_source(tmp_path / "src", tmp_path / "study", ImportOptions(reader="r1")))
    assert report.slice_count == 1
    study = Study.open(tmp_path / "study")
    assert np.array_equal(study.read_image("case-0001", "s001").pixels, pixels)
    assert study.load_annotation("case-0001", "s001", reader="r1").vertebrae[0].diseases == {Disease.OVCF}


def test_axial_series_needs_sagittal_flag(dicom_series_dir, tmp_path):
    report = run(import_source(dicom_series_dir, tmp_path / "study"))
    assert not report.cases
    assert any("add --sagittal" in why for _, why in report.skipped)
    assert any("label map" in why for _, why in report.ignored)


def _without_new_uids(path):
    """The file's bytes without the UIDs the import made: they are random digits, which hold "60064" now and then."""
    raw = path.read_bytes()
    ds = pydicom.dcmread(path)
    for element in [*ds.file_meta.iterall(), *ds.iterall()]:
        if element.VR == "UI" and element.value:
            raw = raw.replace(str(element.value).encode(), b"")
    return raw


def test_dicom_series_import_reformats_and_anonymises(dicom_series_dir, tmp_path):
    key = tmp_path / "key.csv"
    report = run(import_source(dicom_series_dir, tmp_path / "study", ImportOptions(sagittal=True, key_file=key)))
    assert [c.slices for c in report.cases] == [11]
    study = Study.open(tmp_path / "study")
    dcm = study.image_path("case-0001", "s006")
    assert dcm.suffix == ".dcm" and study.labelme_image_path("case-0001", "s006").is_file()
    ds = pydicom.dcmread(dcm)
    assert ds.Modality == "CT" and ds.PatientID == "case-0001" and ds.PatientIdentityRemoved == "YES"
    text = b"".join(_without_new_uids(p) for p in study.root.rglob("*.dcm"))
    for identifying in (b"Basel", b"Petersgraben", b"PETCT2", b"60064", b"SIEMENS", b"FDG_TK_KM"):
        assert identifying not in text
    assert not any(elem.tag.is_private for elem in ds)
    # The written slice is a real sagittal image: orientation, square pixels, 40 mm high, HU kept.
    image = study.read_image("case-0001", "s006")
    assert image.orientation == "sagittal" and image.hu
    assert abs(image.height * image.spacing_mm[0] - 40.0) <= image.spacing_mm[0] / 2
    assert image.pixels.min() <= -1000 and image.pixels.max() > 300
    rows = key.read_text().splitlines()
    assert rows[0] == "case,slice,source" and len(rows) == 12 and str(dicom_series_dir) in rows[1]
    assert not str(key).startswith(str(study.root))


def test_nifti_import_gives_sagittal_slices(cutout_ct, tmp_path):
    report = run(import_source(cutout_ct, tmp_path / "study", ImportOptions(count=5, step_mm=3)))
    assert report.cases[0].slices == 5
    image = Study.open(tmp_path / "study").read_image("case-0001", "s003")
    assert image.pixels.shape == (47, 73) and image.spacing_mm == (1.5, 1.5)


def test_failed_import_leaves_no_partial_case(tmp_path, monkeypatch, paper_folder):
    import core.study.import_case as importer

    calls = {"n": 0}
    original = importer._write_image

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise StudyError("disk full (simulated)")
        return original(*args, **kwargs)

    monkeypatch.setattr(importer, "_write_image", failing)
    Study.create(tmp_path / "study")  # an existing study stays, without a partial case
    report = run(import_source(paper_folder / "patient_17", tmp_path / "study"))
    assert not report.cases and "disk full" in report.skipped[0][1] and not report.notes
    study = Study.open(tmp_path / "study")
    assert study.cases() == [] and study.settings.imports == []
    assert not any(study.root.glob("readers/*/case-0001"))


def test_a_first_import_that_imports_nothing_leaves_no_empty_study(tmp_path):
    """A new folder goes again; a folder the user made keeps being there, empty; a study with a case stays."""
    (tmp_path / "empty.dcm").write_bytes(b"")
    report = run(import_source(tmp_path / "empty.dcm", tmp_path / "new"))
    assert not report.cases and "empty file" in report.skipped[0][1]
    assert report.notes == [f"nothing was imported, so the new study {tmp_path / 'new'} was not kept"]
    assert not (tmp_path / "new").exists()
    (tmp_path / "made").mkdir()
    run(import_source(tmp_path / "empty.dcm", tmp_path / "made"))
    assert (tmp_path / "made").is_dir() and not any((tmp_path / "made").iterdir())


def test_a_first_import_keeps_the_study_when_another_import_put_a_case_in_it(tmp_path, monkeypatch):
    import core.study.importer as importer

    def case_meanwhile(*_args, **_kwargs):
        (tmp_path / "new" / "images" / "case-0001").mkdir()
        return []

    (tmp_path / "empty.dcm").write_bytes(b"")
    monkeypatch.setattr(importer, "discover_units", case_meanwhile)
    report = run(import_source(tmp_path / "empty.dcm", tmp_path / "new"))
    assert not report.notes and Study.open(tmp_path / "new").cases() == ["case-0001"]


def test_a_study_is_never_imported_into_itself(paper_folder, tmp_path):
    study_root = tmp_path / "study"
    run(import_source(paper_folder, study_root))
    before = sorted(p.relative_to(study_root) for p in study_root.rglob("*"))
    with pytest.raises(StudyError, match=r"is inside the study .*twice"):
        run(import_source(study_root / "images" / "case-0001", study_root))
    with pytest.raises(StudyError, match=r"holds the study .*put the study elsewhere"):
        run(import_source(tmp_path, study_root))
    for other in ("other", "other-without-settings"):
        shutil.copytree(study_root, tmp_path / "elsewhere" / other)
    (tmp_path / "elsewhere" / "other-without-settings" / "study.json").unlink()
    for other in ("other", "other-without-settings"):
        with pytest.raises(StudyError, match=r"is a study .*not a source of images"):
            run(import_source(tmp_path / "elsewhere" / other, study_root))
    assert sorted(p.relative_to(study_root) for p in study_root.rglob("*")) == before


def _one_slice_study(tmp_path: Path) -> Study:
    study = Study.create(tmp_path / "study")
    folder = study.root / "images" / "case-0001"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((50, 70), 128, dtype=np.uint8)).save(folder / "s001.png")
    annotation = SliceAnnotation(70, 50, (Vertebra(Box(5, 5, 30, 20), frozenset({Disease.PS, Disease.OF}),
                                                   source="r1", level="L1"),))
    study.save_annotation(annotation, "case-0001", "s001", reader="r1")
    study.save_annotation(annotation.with_changes(vertebrae=()), "case-0001", "s001")
    return study


def test_export_writes_png_and_labelme_json(tmp_path):
    study = _one_slice_study(tmp_path)
    out = tmp_path / "out"
    report = run(export_study(study.root, out, reader="r1"))
    assert (report.images, report.annotations, report.errors) == (1, 1, [])
    data = json.loads((out / "case-0001" / "s001.json").read_text())
    assert data["imagePath"] == "s001.png" and data["imageData"] is None
    assert (data["imageWidth"], data["imageHeight"]) == Image.open(out / "case-0001" / "s001.png").size
    assert data["shapes"][0]["label"] == "OF+PS" and data["shapes"][0]["level"] == "L1"
    embedded = run(export_study(study.root, tmp_path / "emb", embed_images=True))
    assert embedded.annotations == 1
    consensus = read_labelme(tmp_path / "emb" / "case-0001" / "s001.json")
    assert consensus.image_data is not None and consensus.vertebrae == ()


def test_export_refuses_to_write_inside_the_study_and_reports_bad_files(tmp_path):
    study = _one_slice_study(tmp_path)
    with pytest.raises(StudyError, match="outside the study"):
        run(export_study(study.root, study.root / "export"))
    study.reader_path("r1", "case-0001", "s001").write_text("[]")
    report = run(export_study(study.root, tmp_path / "out", reader="r1"))
    assert report.images == 1 and report.annotations == 0
    assert "top level must be a JSON object" in report.errors[0][1]


def test_export_names_an_annotated_slice_whose_image_is_gone(tmp_path):
    """The image was deleted by hand: the slice cannot be exported, and the report says so instead of dropping it;
    a case an import is still writing (its images not listed yet) is not named."""
    study = _one_slice_study(tmp_path)
    annotation = study.load_annotation("case-0001", "s001", reader="r1")
    study.save_annotation(annotation, "case-0001", "s002", reader="r1")
    study.save_annotation(annotation, "case-0009", "s001", reader="r1")
    study.save_annotation(annotation, "case-0002", "s001", reader="r1")
    (study.root / "images" / "case-0002").mkdir()
    (study.root / "images" / "case-0002" / ".importing").write_text("")
    report = run(export_study(study.root, tmp_path / "out", reader="r1"))
    assert (report.images, report.annotations) == (1, 1)
    assert [where for where, _ in report.errors] == ["case-0001/s002", "case-0009/s001"]
    assert all("its image is no longer in the study" in why for _, why in report.errors)
    assert run(export_study(study.root, tmp_path / "out2")).errors == []  # the consensus covers only s001


def test_a_reader_folder_linked_to_another_or_out_of_the_study_is_neither_read_nor_written(tmp_path):
    """readers/r1 a link to readers/r2: r1 would see r2's reading as their own and save over it; a link out of the
    study would take the edit outside. Both refused, naming the file; r2's file and the outside stay as they were."""
    from core.errors import AnnotationFileError, FileWriteError

    study = _one_slice_study(tmp_path)
    annotation = study.load_annotation("case-0001", "s001", reader="r1")
    study.save_annotation(annotation, "case-0001", "s001", reader="r2")
    r2 = study.reader_path("r2", "case-0001", "s001")
    before = r2.read_bytes()
    shutil.rmtree(study.root / "readers" / "r1")
    (study.root / "readers" / "r1").symlink_to("r2")
    with pytest.raises(AnnotationFileError, match="reached through a symbolic link"):
        study.load_annotation("case-0001", "s001", reader="r1")
    with pytest.raises(FileWriteError, match="reached through a symbolic link"):
        study.save_annotation(annotation.with_changes(vertebrae=()), "case-0001", "s001", reader="r1")
    assert r2.read_bytes() == before
    outside = tmp_path / "outside"
    outside.mkdir()
    (study.root / "readers" / "r1").unlink()
    (study.root / "readers" / "r1").symlink_to(outside)
    with pytest.raises(FileWriteError, match="leads outside"):
        study.save_annotation(annotation, "case-0001", "s001", reader="r1")
    assert not any(outside.iterdir())


def test_save_annotation_never_touches_another_readers_file(tmp_path):
    study = _one_slice_study(tmp_path)
    before = study.reader_path("r1", "case-0001", "s001").read_bytes()
    study.save_annotation(SliceAnnotation(70, 50), "case-0001", "s001", reader="r2")
    assert study.reader_path("r1", "case-0001", "s001").read_bytes() == before
    assert study.load_annotation("case-0001", "s001", reader="r2").reader == "r2"
    shutil.rmtree(study.root / "readers" / "r2")
    assert study.load_annotation("case-0001", "s001", reader="r2") is None


def test_a_study_opened_by_a_relative_path_reads_its_annotations(tmp_path, monkeypatch):
    """The path check of a stored file named it from the root twice when the root was relative."""
    study = Study.create(tmp_path / "s")
    annotation = SliceAnnotation(64, 48, (Vertebra(Box(4, 4, 20, 20), frozenset({Disease.OF})),))
    study.save_annotation(annotation, "c1", "s001", model="m1")
    study.save_annotation(annotation, "c1", "s001", reader="ana")
    monkeypatch.chdir(tmp_path)
    relative = Study.open("s")
    assert relative.load_annotation("c1", "s001", model="m1").vertebrae == annotation.vertebrae
    assert relative.load_annotation("c1", "s001", reader="ana").vertebrae == annotation.vertebrae
    assert relative.load_annotation("c1", "s002", reader="ana") is None


@pytest.mark.parametrize(("change", "message"), [
    ({"version": "1"}, "version '1' is not a version number"),
    ({"version": True}, "version True is not a version number"),
    ({"version": -1}, "version -1 is not a version number"),
    ({"model": ".."}, "'model' must be a model id"),
    ({"model": 5}, "'model' must be a model id"),
])
def test_study_settings_with_a_wrong_version_or_model_are_refused_naming_the_file(tmp_path, change, message):
    study = Study.create(tmp_path / "s")
    data = json.loads((study.root / "study.json").read_text())
    (study.root / "study.json").write_text(json.dumps({**data, **change}))
    with pytest.raises(StudyError, match=message) as info:
        Study.open(study.root)
    assert info.value.path == str(study.root / "study.json")


def test_study_settings_nested_too_deep_are_an_error_naming_the_file(tmp_path):
    study = Study.create(tmp_path / "s")
    (study.root / "study.json").write_text('{"format": "vertebra-review-study", "x": ' + "[" * 100_000
                                            + "]" * 100_000 + "}")
    with pytest.raises(StudyError, match="nests too deep"):
        Study.open(study.root)
