"""DICOM input that cannot be read: each case raises a typed error from core.errors whose message names the file
and the problem, and folder scans pass bad files over with a reason instead of failing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import generate_uid

from core.errors import DicomReadError, GeometryError, ImageReadError, UnsupportedTransferSyntaxError
from core.imaging.dicom import read_dicom
from core.imaging.dicom_series import scan_dicom
from tests.conftest import pydicom_file
from tests.core.imaging_helpers import copy_files, rewrite_dicom, run_python

MPEG2_MAIN_PROFILE = "1.2.840.10008.1.2.4.100"


def read_error(path: Path, error: type[Exception] = DicomReadError) -> DicomReadError:
    """The error that reading ``path`` raises; it must carry the file."""
    with pytest.raises(error) as caught:
        read_dicom(path)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    return caught.value


def cut(source: Path, dest: Path, size: int) -> Path:
    data = source.read_bytes()
    assert 0 < size < len(data)
    dest.write_bytes(data[:size])
    return dest


# --- truncated files ------------------------------------------------------------------------------------------


def test_header_cut_short(ct_small: Path, tmp_path: Path) -> None:
    error = read_error(cut(ct_small, tmp_path / "header.dcm", 1000))
    assert "truncated" in error.message


def test_file_cut_before_its_first_element(ct_small: Path, tmp_path: Path) -> None:
    error = read_error(cut(ct_small, tmp_path / "preamble.dcm", 132))  # preamble and "DICM" only
    assert "truncated" in error.message


def test_pixel_data_cut_in_half(ct_small: Path, tmp_path: Path) -> None:
    error = read_error(cut(ct_small, tmp_path / "half.dcm", ct_small.stat().st_size // 2))
    assert "truncated" in error.message and "PixelData" in error.message


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning")
def test_compressed_file_cut_in_half(dicom_series_files: list[Path], tmp_path: Path) -> None:
    source = dicom_series_files[0]
    error = read_error(cut(source, tmp_path / "j2k_half", source.stat().st_size // 2))
    assert "truncated" in error.message


def test_file_cut_just_before_its_pixel_data(ct_small: Path, tmp_path: Path) -> None:
    """The cut falls between two elements, so the parser sees a complete but pixel-less CT image."""
    pixel_data = pydicom.dcmread(ct_small, defer_size=1024).get_item(0x7FE00010, keep_deferred=True)
    path = cut(ct_small, tmp_path / "no_pixels.dcm", pixel_data.value_tell - 12)  # tag, VR, reserved, length

    error = read_error(path)

    assert "no pixel data" in error.message and "truncated" in error.message
    [(skipped, reason)] = scan_dicom(tmp_path).skipped
    assert skipped == path and "truncated" in reason


def test_pydicom_truncated_test_file() -> None:
    error = read_error(pydicom_file("MR_truncated.dcm"))
    assert "truncated" in error.message


# --- not an image, not DICOM ----------------------------------------------------------------------------------


def test_rt_plan_is_not_an_image() -> None:
    error = read_error(pydicom_file("rtplan.dcm"))
    assert "no pixel data" in error.message and "not an image" in error.message and "RT Plan" in error.message


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.dcm"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    assert "not a DICOM file" in read_error(path).message


def test_png_renamed_dcm(tmp_path: Path) -> None:
    path = tmp_path / "slice.dcm"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(path, format="PNG")
    assert "not a DICOM file" in read_error(path).message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    assert "not a DICOM file" in read_error(path).message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert "not found" in read_error(tmp_path / "missing.dcm").message
    assert "folder" in read_error(tmp_path).message


# --- transfer syntaxes that cannot be decoded -----------------------------------------------------------------

#: Run in a fresh interpreter: pylibjpeg-libjpeg looks uninstalled (no entry points, no module), the rest stays.
WITHOUT_LIBJPEG = """
import json, sys
import importlib.metadata as metadata

_entry_points = metadata.entry_points

def entry_points(**kwargs):
    found = _entry_points(**kwargs)
    if str(kwargs.get("group", "")).startswith("pylibjpeg."):
        return metadata.EntryPoints(ep for ep in found if not ep.value.startswith("libjpeg"))
    return found

metadata.entry_points = entry_points
sys.modules["libjpeg"] = None

from core.errors import VertebraReviewError
from core.imaging.dicom import read_dicom

outcome = {}
for name in sys.argv[1:]:
    try:
        outcome[name] = {"ok": list(read_dicom(name)[0].pixels.shape)}
    except VertebraReviewError as error:
        outcome[name] = {"error": type(error).__name__, "message": str(error)}
print(json.dumps(outcome))
"""


def test_missing_jpeg_plugin_names_the_package_to_install() -> None:
    jpeg_lossless, jpeg_2000 = str(pydicom_file("JPEG-LL.dcm")), str(pydicom_file("JPEG2000.dcm"))
    assert read_dicom(jpeg_lossless)[0].pixels.shape == (1024, 256), "decodes when the plugin is there"

    result = run_python(WITHOUT_LIBJPEG, jpeg_lossless, jpeg_2000)

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome[jpeg_lossless]["error"] == "UnsupportedTransferSyntaxError"
    message = outcome[jpeg_lossless]["message"]
    assert "pylibjpeg-libjpeg" in message and "install" in message and jpeg_lossless in message
    assert "JPEG Lossless" in message
    assert outcome[jpeg_2000] == {"ok": [1024, 256]}, "only the JPEG plugin is missing"


def test_syntax_that_no_decoder_supports(ct_small: Path, tmp_path: Path) -> None:
    def as_mpeg2(ds: pydicom.Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = MPEG2_MAIN_PROFILE
        ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
        ds["PixelData"].VR = "OB"

    path = rewrite_dicom(ct_small, tmp_path / "mpeg2.dcm", as_mpeg2)

    error = read_error(path, UnsupportedTransferSyntaxError)
    assert "MPEG2" in error.message and MPEG2_MAIN_PROFILE in error.message
    assert isinstance(error, DicomReadError)


# --- folder scans ---------------------------------------------------------------------------------------------


def test_scan_lists_bad_files_and_keeps_the_good_series(
    dicom_series_files: list[Path], ct_small: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    good = copy_files(dicom_series_files[:5], folder)
    (folder / "garbage.dcm").write_bytes(np.random.default_rng(2).bytes(3000))
    (folder / "empty").write_bytes(b"")
    copy_files([pydicom_file("rtplan.dcm")], folder, ["plan.dcm"])
    cut(ct_small, folder / "cut.dcm", ct_small.stat().st_size // 2)
    png = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(png, format="PNG")
    (folder / "preview.png").write_bytes(png.getvalue())
    (folder / "notes.txt").write_text("reader notes")

    scan = scan_dicom(folder)

    [series] = scan.series
    assert set(series.files) == set(good)
    assert series.load_volume().shape == (5, 512, 512)
    reasons = {path.name: reason for path, reason in scan.skipped}
    assert set(reasons) == {"garbage.dcm", "empty", "plan.dcm", "cut.dcm"}, "png and txt are passed over quietly"
    assert "not a DICOM file" in reasons["garbage.dcm"]
    assert "not a DICOM file" in reasons["empty"]
    assert "not an image" in reasons["plan.dcm"]
    assert "truncated" in reasons["cut.dcm"]


def test_scan_of_one_bad_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "garbage.dcm"
    path.write_bytes(b"not dicom at all" * 20)
    with pytest.raises(DicomReadError, match="not a DICOM file") as caught:
        scan_dicom(path)
    assert caught.value.path == str(path)


def test_scan_of_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no such file") as caught:
        scan_dicom(tmp_path / "nowhere")
    assert caught.value.path == str(tmp_path / "nowhere")


# --- geometry that is not a volume ----------------------------------------------------------------------------


def test_missing_middle_slice_is_a_gap(dicom_series_files: list[Path], tmp_path: Path) -> None:
    files = list(dicom_series_files)
    removed = files.pop(10)
    copy_files(files, tmp_path / "gap")
    [series] = scan_dicom(tmp_path / "gap").series
    assert len(series.frames) == 19

    with pytest.raises(GeometryError) as caught:
        series.load_volume()

    message = caught.value.message
    assert "irregular slice spacing" in message and "4.00 mm" in message and "2.00 mm" in message
    assert "missing slice" in message
    neighbours = {dicom_series_files[9].name, dicom_series_files[11].name}
    assert all(name in message for name in neighbours), message
    assert removed.name not in message
    assert caught.value.path == str(tmp_path / "gap")


def test_duplicated_position_is_refused(dicom_series_files: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "duplicate"
    copy_files(dicom_series_files[:6], folder)

    def another_instance(ds: pydicom.Dataset) -> None:
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = 999

    rewrite_dicom(dicom_series_files[3], folder / "again.dcm", another_instance)
    [series] = scan_dicom(folder).series
    assert len(series.frames) == 7

    with pytest.raises(GeometryError, match="same position") as caught:
        series.load_volume()
    assert dicom_series_files[3].name in caught.value.message and "again.dcm" in caught.value.message


@pytest.mark.parametrize(
    ("tag", "named"),
    [("PixelSpacing", "PixelSpacing"), ("ImagePositionPatient", "ImagePositionPatient")],
)
def test_series_without_geometry_cannot_be_stacked(
    dicom_series_files: list[Path], tmp_path: Path, tag: str, named: str
) -> None:
    folder = tmp_path / "no_geometry"
    for path in dicom_series_files[:3]:
        rewrite_dicom(path, folder / path.name, lambda ds: delattr(ds, tag))
    [series] = scan_dicom(folder).series
    with pytest.raises(GeometryError, match=named):
        series.load_volume()
