"""Bad input files never stop a batch (issue 18): each is a typed error naming the file and the problem, so the
scans and batch loops skip it with its reason and go on. Every hostile file is built here at test time: a vendor's
private transfer syntax, a palette image without its palette (pydicom raises a bare ValueError), empty and misnamed
files, a decompression bomb in a LabelMe file's ``imageData``, and paths out of an annotation folder (``imagePath``
going up or absolute, symbolic links).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate

from core.annotations.labelme_io import read_labelme
from core.errors import AnnotationFileError, DicomReadError, UnsupportedTransferSyntaxError
from core.evaluation.detection_report import pair_files
from core.evaluation.patient_summary import patient_summaries
from core.imaging.dicom import read_dicom
from core.imaging.dicom_series import scan_dicom
from core.inspection import inspect_path
from core.progress import run
from core.study.importer import import_source
from tests.conftest import pydicom_file
from tests.core.imaging_helpers import png_claiming_size, rewrite_dicom

PRIVATE_SYNTAX = "1.2.840.113619.5.2"  # a GE private transfer syntax UID
SYNTAX_MESSAGE = f"transfer syntax {PRIVATE_SYNTAX} (unknown, vendor-private) cannot be decoded"


# -- hostile files, made here ------------------------------------------------------------------------------------------
def private_syntax(dest: Path, *, encapsulated: bool = False) -> Path:
    """CT_small relabelled with a vendor-private transfer syntax (its pixel data native or encapsulated)."""

    def relabel(ds: pydicom.Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = PRIVATE_SYNTAX
        if encapsulated:
            ds.PixelData = encapsulate([bytes(256)])
            ds["PixelData"].VR = "OB"

    return rewrite_dicom(pydicom_file("CT_small.dcm"), dest, relabel)


def palette_without_palette(dest: Path) -> Path:
    """A CT slice that says PALETTE COLOR but has no palette: pydicom raises a bare ValueError converting it."""

    def palette(ds: pydicom.Dataset) -> None:
        ds.PhotometricInterpretation = "PALETTE COLOR"

    return rewrite_dicom(pydicom_file("CT_small.dcm"), dest, palette)


def png(path: Path, width: int = 40, height: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width), 80, np.uint8)).save(path)
    return path


def labelme(path: Path, **fields) -> Path:
    obj = {"version": "5.0.1", "flags": {}, "shapes": [], "imagePath": None, "imageData": None,
           "imageWidth": 40, "imageHeight": 30, **fields}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


# -- item 1: an unknown transfer syntax is named, and the good files beside it are kept --------------------------------
@pytest.mark.parametrize("encapsulated", [False, True], ids=["native", "encapsulated"])
def test_private_transfer_syntax_is_named(tmp_path: Path, encapsulated: bool) -> None:
    path = private_syntax(tmp_path / "private.dcm", encapsulated=encapsulated)

    with pytest.raises(UnsupportedTransferSyntaxError) as caught:
        read_dicom(path)

    assert caught.value.path == str(path)
    assert SYNTAX_MESSAGE in caught.value.message


def test_scan_keeps_the_good_series_and_names_the_private_file(dicom_series_files: list[Path], tmp_path: Path) -> None:
    good = [Path(shutil.copy(f, tmp_path)) for f in dicom_series_files[:3]]
    private = private_syntax(tmp_path / "private.dcm", encapsulated=True)

    scan = scan_dicom(tmp_path)

    [series] = scan.series
    assert set(series.files) == set(good)
    assert [(p, SYNTAX_MESSAGE in why) for p, why in scan.skipped] == [(private, True)]


def test_a_library_error_in_a_file_is_a_typed_error_naming_it(tmp_path: Path) -> None:
    """pydicom raises ValueError for a palette image without its palette: the reader turns it into DicomReadError,
    so the batch that reads it skips it instead of stopping on an internal error."""
    path = palette_without_palette(tmp_path / "palette.dcm")

    with pytest.raises(DicomReadError) as caught:
        read_dicom(path)

    assert caught.value.path == str(path) and "ValueError" in caught.value.message


# -- item 3: empty and misnamed files are told, other non-DICOM files passed over quietly ------------------------------
def test_empty_and_misnamed_files_are_told_and_the_rest_passed_over(dicom_series_files: list[Path],
                                                                  tmp_path: Path) -> None:
    shutil.copy(dicom_series_files[0], tmp_path)
    (tmp_path / "zero.dcm").write_bytes(b"")
    (tmp_path / "EMPTY").write_bytes(b"")
    (tmp_path / "notes.dicom").write_text("not an image")
    (tmp_path / "VERSION").write_text("PACS export 3.2")  # a PACS export's own file: not DICOM, not named so

    scan = scan_dicom(tmp_path)

    reasons = {path.name: why for path, why in scan.skipped}
    assert set(reasons) == {"zero.dcm", "EMPTY", "notes.dicom"}
    assert reasons["zero.dcm"].startswith("empty file (0 bytes)")
    assert reasons["notes.dicom"].startswith("named .dicom, but not a DICOM file")
    assert [path.name for path, _ in scan.passed_over] == ["VERSION"]


def test_import_names_the_zero_byte_dcm_and_the_broken_json(tmp_path: Path) -> None:
    source = tmp_path / "source"
    png(source / "s1.png")
    png(source / "s2.png")
    (source / "s2.json").write_text('{"shapes": [')
    (source / "lone.json").write_text("{broken")
    (source / "zero.dcm").write_bytes(b"")

    report = run(import_source(source, tmp_path / "study"))

    assert report.slice_count == 2
    skipped = {Path(where).name: why for where, why in report.skipped}
    assert set(skipped) == {"zero.dcm", "s2.json", "lone.json"}
    assert "empty file (0 bytes)" in skipped["zero.dcm"]
    assert "not valid JSON" in skipped["s2.json"] and "not valid JSON" in skipped["lone.json"]


# -- item 2: a decompression bomb in imageData is refused without Pillow's warning -------------------------------------
def test_image_data_bomb_is_refused_without_a_warning(tmp_path: Path) -> None:
    data = base64.b64encode(png_claiming_size(10_000, 10_000)).decode()  # 100 MP: over Pillow's warning limit
    path = labelme(tmp_path / "bomb.json", imageData=data, imageWidth=10_000, imageHeight=10_000)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(AnnotationFileError, match="too large") as error:
            read_labelme(path)

    assert error.value.path == str(path)
    assert [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []


# -- item 4: paths taken from annotation files and folders stay inside -------------------------------------------------
@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A PNG outside the annotation folder, of a size that would not fit the annotation."""
    return png(tmp_path / "outside" / "secret.png", width=17, height=11)


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "etc-passwd"])
def test_image_path_out_of_the_folder_is_not_followed(tmp_path: Path, outside: Path, how: str) -> None:
    folder = tmp_path / "annotations"
    folder.mkdir()
    name = {"dotdot": "../outside/secret.png", "absolute": str(outside), "symlink": "linked.png",
            "etc-passwd": "../../../../../../../../etc/passwd"}[how]
    if how == "symlink":
        os.symlink(outside, folder / "linked.png")
    path = labelme(folder / "a.json", imagePath=name)

    info = inspect_path(path)

    assert info["image_checked"] is False
    [entry] = info["skipped"]
    assert entry["path"] == str(path)
    expected = {"dotdot": "goes up with '..'", "absolute": "absolute path", "symlink": "symbolic link",
                "etc-passwd": "goes up with '..'"}[how]
    assert expected in entry["reason"] and "imagePath" in entry["reason"], entry["reason"]


def test_image_path_inside_the_folder_is_still_checked(tmp_path: Path) -> None:
    png(tmp_path / "images" / "x.png", width=40, height=30)
    info = inspect_path(labelme(tmp_path / "x.json", imagePath="images\\x.png"))
    assert info["image_checked"] is True and info["skipped"] == []


def test_annotation_folder_links_out_are_refused_not_read(tmp_path: Path, monkeypatch) -> None:
    truth, predictions, elsewhere = tmp_path / "truth", tmp_path / "predictions", tmp_path / "elsewhere"
    labelme(truth / "case" / "s001.json")
    labelme(predictions / "case" / "s001.json")
    secret = labelme(elsewhere / "secret.json")
    labelme(elsewhere / "s002.json")
    os.symlink(secret, truth / "case" / "linked.json")
    labelme(truth / "case" / "s002.json")
    os.symlink(elsewhere / "s002.json", predictions / "case" / "s002.json")
    read = []
    import core.evaluation.detection_report as detection_report

    monkeypatch.setattr(detection_report, "read_labelme", lambda p: read.append(Path(p)) or read_labelme(p))

    images, notes = pair_files(predictions, truth)

    assert [Path(p).resolve().is_relative_to(elsewhere.resolve()) for p in read] == [False] * len(read)
    assert len(images) == 1, "s001 is paired; s002's prediction and the linked truth file are refused"
    refused = [n for n in notes if "leads outside" in n]
    assert len(refused) == 2 and any("linked.json" in n for n in refused) and any("s002.json" in n for n in refused)


def test_prediction_folder_links_out_are_refused_in_the_summary(tmp_path: Path) -> None:
    predictions, elsewhere = tmp_path / "predictions", tmp_path / "elsewhere"
    labelme(predictions / "case" / "s001.json")
    os.symlink(labelme(elsewhere / "other.json"), predictions / "case" / "s002.json")

    summaries, notes = patient_summaries(predictions)

    assert [s["slices"] for s in summaries] == [1]
    assert len(notes) == 1 and "s002.json" in notes[0] and "leads outside" in notes[0]


def test_a_bomb_beside_the_annotation_is_named_not_opened(tmp_path: Path) -> None:
    (tmp_path / "big.png").write_bytes(png_claiming_size(10_000, 10_000))
    path = labelme(tmp_path / "big.json", imagePath="big.png")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = inspect_path(path)

    assert info["image_checked"] is False
    [entry] = info["skipped"]
    assert entry["path"] == str(tmp_path / "big.png") and "too large" in entry["reason"]
    assert [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []


def test_whatever_a_library_raises_loading_an_input_is_a_reason_to_skip_it(tmp_path: Path) -> None:
    """The last guard of ``detect`` and ``diagnose``: an input whose loading fails with a library's own error becomes
    an ImageReadError, which their loops list and go past (it once stopped the whole run as an internal error)."""
    from core.errors import ImageReadError
    from core.models.inputs import SliceInput
    from core.models.run_detect import load_input

    def load() -> np.ndarray:
        raise ValueError("the codec gave up")

    item = SliceInput("x.dcm", "group", load, tmp_path / "x.json", tmp_path / "x.png")

    with pytest.raises(ImageReadError, match="cannot be read \\(ValueError: the codec gave up\\)"):
        load_input(item)


def test_a_study_file_naming_its_image_up_the_study_is_checked(tmp_path: Path) -> None:
    """A reader's file in a study names ``../../../images/<case>/<slice>.png``: inside the study, so it is read; the
    same climb out of a folder that is not a study is refused."""
    from core.annotations.labelme_paths import labelme_image
    from core.study.layout import Study

    study = Study.create(tmp_path / "study")
    image = study.root / "images" / "case-0001" / "s001.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"png")
    reader_file = study.root / "readers" / "ann" / "case-0001" / "s001.json"
    reader_file.parent.mkdir(parents=True)
    assert labelme_image(reader_file, "../../../images/case-0001/s001.png") == image
    (tmp_path / "outside.png").write_bytes(b"x")
    with pytest.raises(AnnotationFileError, match="outside"):
        labelme_image(reader_file, "../../../../outside.png")
    loose = tmp_path / "loose" / "a" / "x.json"
    loose.parent.mkdir(parents=True)
    with pytest.raises(AnnotationFileError):
        labelme_image(loose, "../../study/images/case-0001/s001.png")
