"""Bad input files on the command line (issue 18), as a user runs it: in this process through ``main``, and in a real
subprocess where what a fresh interpreter prints is the point (tracebacks, library warnings). A bad file never stops
``import``, ``inspect``, ``detect`` or ``diagnose``: the good files are processed, each bad one is listed with its
reason, and the command exits 3. Only our lines reach stderr: no library traceback or warning, unless ``--debug``.

Every hostile file is made here at test time from pydicom's CT_small: a vendor-private transfer syntax, corrupt
JPEG 2000 and JPEG-LS data, a palette image without its palette, an empty ``.dcm``, a harmless header quirk that
pydicom warns about, a decompression bomb in a LabelMe file's ``imageData`` and an ``imagePath`` out of its folder.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate

from desktop.cli import main
from tests.conftest import pydicom_file
from tests.core.imaging_helpers import png_claiming_size, rewrite_dicom

REPO = Path(__file__).resolve().parents[2]
PRIVATE_SYNTAX = "1.2.840.113619.5.2"
SYNTAX_MESSAGE = f"transfer syntax {PRIVATE_SYNTAX} (unknown, vendor-private) cannot be decoded"
JPEG_2000, JPEG_LS = "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80"
#: Corrupt codestreams: a valid start-of-codestream marker and then nothing a decoder can use.
GARBAGE = {JPEG_2000: b"\xff\x4f\xff\x51" + bytes(200), JPEG_LS: b"\xff\xd8\xff\xf7" + bytes(200)}


def here(capfd: pytest.CaptureFixture[str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The command run through ``main`` in this process, with what it wrote to stdout and stderr."""
    capfd.readouterr()
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(["vertebra-review", *map(str, args)], code, out, err)


def vr(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "desktop.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


def ct_small(dest: Path, edit=None) -> Path:
    return rewrite_dicom(pydicom_file("CT_small.dcm"), dest, edit)


def private_syntax(dest: Path) -> Path:
    def relabel(ds: pydicom.Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = PRIVATE_SYNTAX
        ds.PixelData = encapsulate([bytes(256)])
        ds["PixelData"].VR = "OB"

    return ct_small(dest, relabel)


def corrupt(dest: Path, syntax: str) -> Path:
    def compress(ds: pydicom.Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([GARBAGE[syntax]])
        ds["PixelData"].VR = "OB"

    return ct_small(dest, compress)


def palette_without_palette(dest: Path) -> Path:
    """pydicom raises a bare ValueError converting it: once an internal error that stopped the whole command."""

    def palette(ds: pydicom.Dataset) -> None:
        ds.PhotometricInterpretation = "PALETTE COLOR"

    return ct_small(dest, palette)


def png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.arange(128 * 96) % 251).astype(np.uint8).reshape(96, 128)).save(path)
    return path


def skipped_lines(stderr: str) -> dict[str, str]:
    """``skipped PATH: REASON`` lines of stderr, by path."""
    lines = [line[len("skipped "):] for line in stderr.splitlines() if line.startswith("skipped ")]
    return dict(line.split(": ", 1) for line in lines)


def assert_clean(stderr: str) -> None:
    assert "Traceback" not in stderr and "Warning" not in stderr and "warn" not in stderr, stderr


# -- every input command skips the bad files and processes the good ones -----------------------------------------------
def test_import_keeps_the_good_series_and_lists_the_bad_files(dicom_series_files: list[Path], tmp_path: Path,
                                                              capfd) -> None:
    source = tmp_path / "export"
    series = source / "series"
    series.mkdir(parents=True)
    for file in dicom_series_files[:5]:
        shutil.copy(file, series)
    private = private_syntax(source / "private.dcm")
    palette = palette_without_palette(source / "palette" / "IM0001")
    zero = source / "zero.dcm"
    zero.write_bytes(b"")

    result = here(capfd, "import", source, tmp_path / "study", "--sagittal", "--count", "2")

    assert result.returncode == 3, result.stderr
    assert "case-0001: 2 slices" in result.stdout and "imported 1 cases, 2 slices" in result.stdout
    skipped = skipped_lines(result.stderr)
    assert SYNTAX_MESSAGE in skipped[str(private)]
    assert skipped[str(zero)].startswith("empty file (0 bytes)")
    reason = skipped.get(str(palette)) or skipped.get(str(palette.parent))  # the file, or its series' folder
    assert reason is not None and "ValueError" in reason, result.stderr
    assert_clean(result.stderr)


def test_inspect_of_a_folder_lists_the_bad_files_and_exits_3(dicom_series_files: list[Path], tmp_path: Path,
                                                              capfd) -> None:
    for file in dicom_series_files[:3]:
        shutil.copy(file, tmp_path)
    private = private_syntax(tmp_path / "private.dcm")
    zero = tmp_path / "zero.dcm"
    zero.write_bytes(b"")

    result = here(capfd, "inspect", tmp_path)

    assert result.returncode == 3, result.stderr
    info = json.loads(result.stdout)
    assert info["kind"] == "dicom-series" and info["slices"] == 3
    assert {e["path"] for e in info["skipped"]} == {str(private), str(zero)}
    skipped = skipped_lines(result.stderr)
    assert SYNTAX_MESSAGE in skipped[str(private)] and "empty file" in skipped[str(zero)]
    assert_clean(result.stderr)


def test_inspect_of_the_private_file_names_the_syntax(tmp_path: Path, capfd) -> None:
    private = private_syntax(tmp_path / "private.dcm")
    result = here(capfd, "inspect", private)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"vertebra-review: error: {private}: {SYNTAX_MESSAGE}; export the "
                                                  "image again in a standard DICOM transfer syntax (uncompressed, "
                                                  "JPEG or JPEG 2000)"]


@pytest.fixture
def bad_and_good(tmp_path: Path) -> tuple[Path, Path, Path]:
    return (private_syntax(tmp_path / "in" / "private.dcm"), palette_without_palette(tmp_path / "in" / "palette.dcm"),
            png(tmp_path / "in" / "good.png"))


def test_diagnose_processes_the_good_file_beside_bad_ones(tiny_model_study: Path, bad_and_good, tmp_path,
                                                          capfd) -> None:
    private, palette, good = bad_and_good
    out = tmp_path / "out"

    result = here(capfd, "diagnose", private, palette, good, "--models", tiny_model_study / "models", "--out", out)

    assert result.returncode == 3, result.stderr
    assert "on 1 slices written" in result.stdout
    assert (out / "good.json").is_file()
    skipped = skipped_lines(result.stderr)
    assert set(skipped) == {str(private), str(palette)}
    assert SYNTAX_MESSAGE in skipped[str(private)] and "ValueError" in skipped[str(palette)]
    assert_clean(result.stderr)


def test_detect_processes_the_good_file_beside_bad_ones(tiny_model_study: Path, bad_and_good, tmp_path,
                                                          capfd) -> None:
    private, palette, good = bad_and_good
    out = tmp_path / "out"
    detector = tiny_model_study.parent / "packages" / "tiny-detector"

    result = here(capfd, "detect", private, palette, good, "--model", detector, "--out", out)

    assert result.returncode == 3, result.stderr
    assert "on 1 slices written" in result.stdout
    assert (out / "good.json").is_file()
    skipped = skipped_lines(result.stderr)
    assert set(skipped) == {str(private), str(palette)}
    assert SYNTAX_MESSAGE in skipped[str(private)]
    assert_clean(result.stderr)


# -- only our one line reaches the user; the details with --debug ------------------------------------------------------
@pytest.mark.slow  # a fresh interpreter: what it prints before our line is the point
@pytest.mark.parametrize("syntax", [JPEG_2000, JPEG_LS], ids=["jpeg2000", "jpeg-ls"])
def test_corrupt_compressed_pixels_give_one_clean_line(tmp_path: Path, syntax: str) -> None:
    path = corrupt(tmp_path / "corrupt.dcm", syntax)

    result = vr("inspect", path)

    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"vertebra-review: error: {path}: cannot decode"), line
    assert_clean(result.stderr)
    debug = vr("--debug", "inspect", path)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "pydicom" in debug.stderr, "the decoder's details are there with --debug"


@pytest.mark.slow  # a fresh interpreter: its warnings filters are the user's, not pytest's
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # pydicom's, when the test writes the file
def test_a_library_warning_is_a_detail_for_debug(tmp_path: Path) -> None:
    """A readable file with a header quirk: pydicom warns (and logs) about the invalid UID; the user sees the result."""

    def quirk(ds: pydicom.Dataset) -> None:
        ds.SeriesInstanceUID = "1.2.3.abc"

    path = ct_small(tmp_path / "quirk.dcm", quirk)

    result = vr("inspect", path)

    assert result.returncode == 0 and json.loads(result.stdout)["kind"] == "dicom"
    assert result.stderr == ""
    assert "Invalid value for VR UI" in vr("--debug", "inspect", path).stderr


def test_image_data_bomb_gives_one_line_and_does_not_stop_an_import(tmp_path: Path, capfd) -> None:
    source = tmp_path / "source"
    png(source / "good.png")
    data = base64.b64encode(png_claiming_size(10_000, 10_000)).decode()  # 100 MP: over Pillow's warning limit
    bomb = source / "bomb.json"
    bomb.write_text(json.dumps({"version": "5.0.1", "shapes": [], "imagePath": "bomb.png", "imageData": data,
                                "imageWidth": 10_000, "imageHeight": 10_000}))

    result = here(capfd, "inspect", bomb)

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"vertebra-review: error: {bomb}: 'imageData' holds an image too large"), line
    assert_clean(result.stderr)
    imported = here(capfd, "import", source, tmp_path / "study")
    assert imported.returncode == 3 and "1 slices" in imported.stdout, imported.stderr
    assert "too large" in skipped_lines(imported.stderr)[str(bomb)]
    assert_clean(imported.stderr)


def test_image_path_out_of_the_folder_is_named_not_followed(tmp_path: Path, capfd) -> None:
    png(tmp_path / "elsewhere" / "secret.png")
    folder = tmp_path / "annotations"
    folder.mkdir()
    path = folder / "a.json"
    path.write_text(json.dumps({"version": "5.0.1", "shapes": [], "imagePath": "../elsewhere/secret.png",
                                "imageData": None, "imageWidth": 40, "imageHeight": 30}))

    result = here(capfd, "inspect", path)

    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["image_checked"] is False
    reason = skipped_lines(result.stderr)[str(path)]
    assert "imagePath" in reason and "leads outside" in reason and "not checked" in reason
