"""What ``detect`` and ``diagnose`` run over: folders walked recursively, each file's path kept in the output, and
no two inputs ever writing one output file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from core.annotations.labelme_io import read_labelme
from core.errors import FileWriteError
from core.imaging.png_io import write_png
from core.models.inputs import collect_inputs
from core.study.layout import Study
from desktop.cli import main


def _relative_outputs(items, out):
    return sorted(item.json_path.relative_to(out).as_posix() for item in items)


@pytest.mark.slow
def test_a_study_images_folder_gives_every_case_its_own_outputs(tiny_model_study, tmp_path, capsys):
    images = tiny_model_study / "images"
    code = main(["diagnose", str(images), "--models", str(tiny_model_study / "models"), "--out",
                 str(tmp_path / "pred"), "--precision", "fp32"])
    assert code == 0
    assert "on 6 slices" in capsys.readouterr().out
    written = sorted(p.relative_to(tmp_path / "pred").as_posix() for p in (tmp_path / "pred").rglob("*.json"))
    assert written == [f"images/case-000{c}/s00{s}.json" for c in (1, 2, 3) for s in (1, 2)]
    annotation = read_labelme(tmp_path / "pred" / "images" / "case-0002" / "s001.json")
    # The JSON points at the study's own PNG of that slice (no second copy is written).
    picture = (tmp_path / "pred" / "images" / "case-0002" / annotation.image_path).resolve()
    assert picture == (images / "case-0002" / "s001.png").resolve()
    assert not list((tmp_path / "pred").rglob("*.png"))


@pytest.mark.slow
def test_detect_on_a_folder_of_case_folders_keeps_the_tree(tiny_model_study, tmp_path):
    code = main(["detect", str(tiny_model_study / "images"), "--model",
                 str(tiny_model_study / "models" / "tiny-v1" / "detector"), "--out", str(tmp_path / "pred"),
                 "--precision", "fp32"])
    assert code == 0
    assert len(list((tmp_path / "pred" / "images").glob("case-000*/s00*.json"))) == 6


@pytest.mark.slow
def test_two_files_of_one_name_are_refused_naming_both(tiny_model_study, tmp_path, capsys):
    first = tiny_model_study / "images" / "case-0001" / "s001.dcm"
    second = tiny_model_study / "images" / "case-0002" / "s001.dcm"
    code = main(["detect", str(first), str(second), "--model",
                 str(tiny_model_study / "models" / "tiny-v1" / "detector"), "--out", str(tmp_path / "pred")])
    assert code == 1
    message = capsys.readouterr().err
    assert "s001.json" in message and "would both be written" in message
    assert not (tmp_path / "pred").exists()  # refused before anything was written


@pytest.mark.slow
def test_diagnose_refuses_the_same_clash(tiny_model_study, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_study, copy)
    code = main(["diagnose", str(tiny_model_study), str(copy), "--models", str(tiny_model_study / "models"),
                 "--out", str(tmp_path / "pred")])
    assert code == 1
    assert "case-0001/s001 and case-0001/s001 would both be written" in capsys.readouterr().err


def test_the_clash_message_names_both_inputs(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_png(tmp_path / name / "x.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(FileWriteError) as error:
        collect_inputs([tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"], tmp_path / "out", "min-max")
    assert "x.png and x.png would both be written" in str(error.value) and "x.json" in str(error.value)


def test_nested_folders_of_images_keep_their_relative_paths(tmp_path):
    root = tmp_path / "export"
    for folder in ("patient-a", "patient-b/visit-2"):
        (root / folder).mkdir(parents=True)
        write_png(root / folder / "slice.png", np.full((20, 10), 7, np.uint8))
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    write_png(root / ".hidden" / "skip.png", np.zeros((4, 4), np.uint8))
    items, errors = collect_inputs([root], tmp_path / "out", "min-max")
    assert errors == []
    assert _relative_outputs(items, tmp_path / "out") == ["export/patient-a/slice.json",
                                                         "export/patient-b/visit-2/slice.json"]
    assert len({item.group for item in items}) == 2  # each folder is an examination of its own
    assert items[0].image_path == root / "patient-a" / "slice.png" and not items[0].write_png
    assert items[0].load().pixels.shape == (20, 10)


def test_a_mixed_folder_takes_volumes_series_images_and_reports_bad_files(tmp_path, dicom_series_dir, cutout_ct):
    root = tmp_path / "incoming"
    shutil.copytree(dicom_series_dir, root / "ct" / "series", ignore=shutil.ignore_patterns("*.nii.gz"))
    shutil.copy(cutout_ct, root / "cutout.nii.gz")
    write_png(root / "ct" / "export.png", np.full((30, 30), 50, np.uint8))
    (root / "ct" / "broken.dcm").write_bytes(b"DICM" * 10)
    items, errors = collect_inputs([root], tmp_path / "out", "min-max")
    outputs = _relative_outputs(items, tmp_path / "out")
    assert "incoming/ct/export.json" in outputs
    series = [o for o in outputs if o.startswith("incoming/ct/series/s")]
    volume = [o for o in outputs if o.startswith("incoming/cutout/s")]
    assert len(series) >= 3 and len(volume) >= 3  # sagittal slabs of the axial series and of the NIfTI volume
    assert all(item.write_png for item in items if "/s0" in item.json_path.as_posix())
    assert [path for path, _ in errors] == [str(root / "ct" / "broken.dcm")]
    assert len(outputs) == len(set(outputs))


def test_a_study_inside_a_folder_is_read_as_a_study(tiny_model_study, tmp_path):
    shutil.copytree(tiny_model_study, tmp_path / "projects" / "spine", ignore=shutil.ignore_patterns("models"))
    items, errors = collect_inputs([tmp_path / "projects"], tmp_path / "out", "min-max")
    assert errors == []
    assert _relative_outputs(items, tmp_path / "out")[:2] == ["projects/spine/case-0001/s001.json",
                                                             "projects/spine/case-0001/s002.json"]
    assert len(items) == len(Study.open(tmp_path / "projects" / "spine").all_slices())


def test_a_label_map_is_not_run_as_ct(cutout_vert_mask, tmp_path):
    items, errors = collect_inputs([cutout_vert_mask], tmp_path / "out", "min-max")
    assert items == [] and "label map" in errors[0][1]


def test_an_empty_folder_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    items, errors = collect_inputs([tmp_path / "empty"], tmp_path / "out", "min-max")
    assert items == [] and errors == [(str(tmp_path / "empty"), "no DICOM, NIfTI, PNG or JPEG images found")]
