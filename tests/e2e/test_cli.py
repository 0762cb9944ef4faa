"""The command line end to end, as a user runs it: a real subprocess, real files, exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.cli import main
from tests.conftest import CUTOUT, DICOM_SERIES, SAMPLE, pydicom_file

pytestmark = pytest.mark.slow  # a real subprocess each (PyTorch imports take seconds)

CLI = [sys.executable, "-m", "desktop.cli"]
REPO = Path(__file__).resolve().parents[2]


def vr(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd or REPO, env=env,
                          timeout=300)


def test_version():
    result = vr("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("vertebra-review 0.")


def _real_files() -> list[Path]:
    return sorted(p for p in SAMPLE.rglob("*") if p.is_file() and (p.name.startswith("CT.") or ".nii" in p.name))


def test_sample_matches_the_shared_real_data_checksums():
    import hashlib

    expected = dict(reversed(line.split("  ", 1)) for line in (SAMPLE / "SHA256SUMS").read_text().splitlines())
    assert len(expected) == 24
    for relative, digest in expected.items():
        assert hashlib.sha256((SAMPLE / relative).read_bytes()).hexdigest() == digest, relative


def test_inspect_every_real_file_and_ct_small(capsys):
    """Every file in-process through ``main`` (a subprocess each would take minutes), then three as a user would."""
    paths = [*_real_files(), DICOM_SERIES, pydicom_file("CT_small.dcm")]
    assert len(paths) == 26
    for path in paths:
        assert main(["inspect", str(path)]) == 0, path
        info = json.loads(capsys.readouterr().out)
        for key in ("kind", "width", "height", "slices", "spacing_mm"):
            assert key in info, (path, key)
        assert info["width"] > 0 and info["height"] > 0 and info["slices"] >= 1
    series = json.loads(vr("inspect", DICOM_SERIES).stdout)
    assert series["kind"] == "dicom-series" and series["slices"] == 20
    assert series["spacing_mm"] == [0.9766, 0.9766] and series["slice_spacing_mm"] == 2.0
    assert abs(series["sagittal"]["height_mm"] - 40.0) <= 0.5
    nifti = json.loads(vr("inspect", CUTOUT / "sub-ct_label-22_ct.nii.gz").stdout)
    assert (nifti["kind"], nifti["orientation"], nifti["hu"]) == ("nifti", "PIR", True)
    small = json.loads(vr("inspect", pydicom_file("CT_small.dcm")).stdout)
    assert (small["kind"], small["width"], small["height"], small["hu"]) == ("dicom", 128, 128, True)


def test_inspect_annotation(tmp_path):
    shapes = [
        {"label": "OVCF+KD", "points": [[10, 20], [60, 50]], "shape_type": "rectangle", "level": "L1",
         "source": "r1"},
        {"label": "normal", "points": [[10, 55], [60, 80], [30, 90]], "shape_type": "polygon"},
    ]
    data = {"version": "5.0.1", "shapes": shapes, "imagePath": "x.png", "imageData": None, "imageWidth": 100,
            "imageHeight": 120, "reader": "r1"}
    (tmp_path / "a.json").write_text(json.dumps(data))
    info = json.loads(vr("inspect", tmp_path / "a.json").stdout)
    assert info["kind"] == "annotation" and (info["width"], info["height"]) == (100, 120)
    assert info["reader"] == "r1"
    assert info["vertebrae"][0] == {"box": [10.0, 20.0, 60.0, 50.0], "diseases": ["OVCF", "KD"], "level": "L1",
                                    "source": "r1"}
    assert info["vertebrae"][1]["box"] == [10.0, 55.0, 60.0, 90.0] and info["vertebrae"][1]["diseases"] == []


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("broken.json", b"{ nope", "not valid JSON"),
        ("empty.json", b"", "file is empty"),
        ("nan.json", b'{"imageWidth": 10, "imageHeight": 10, "shapes": [{"label": "OF", "points": [[NaN, 1], [2, 3]]'
                     b', "shape_type": "rectangle"}]}', "NaN"),
        ("garbage.dcm", bytes(range(256)) * 40, "not a DICOM file"),
        ("image.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "PNG"),
        ("volume.nii.gz", b"\x1f\x8b\x08\x00" + b"\0" * 30, "NIfTI"),
    ],
)
def test_bad_input_gives_one_line_naming_the_file(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    result = vr("inspect", path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and expected.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{")
    result = vr("--debug", "inspect", path)
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_missing_path_and_truncated_dicom(tmp_path, dicom_series_files):
    result = vr("inspect", tmp_path / "nothing-here")
    assert result.returncode == 1 and "no such file" in result.stderr
    truncated = tmp_path / "half.dcm"
    truncated.write_bytes(dicom_series_files[0].read_bytes()[:60_000])
    result = vr("inspect", truncated)
    assert result.returncode == 1 and str(truncated) in result.stderr and "Traceback" not in result.stderr


def test_import_then_export_round_trip(tmp_path):
    study = tmp_path / "study"
    result = vr("import", DICOM_SERIES, study, "--sagittal", "--count", "3", "--window", "bone")
    assert result.returncode == 0, result.stderr  # the label map beside the series is ignored, not an error
    assert "case-0001: 3 slices" in result.stdout
    info = json.loads(vr("inspect", study).stdout)
    assert (info["kind"], info["cases"], info["slices"]) == ("study", 1, 3)
    out = tmp_path / "export"
    result = vr("export", study, out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (out / "case-0001").iterdir()) == ["s001.png", "s002.png", "s003.png"]
    again = vr("import", DICOM_SERIES, study, "--sagittal")
    assert "already imported as case-0001" in again.stderr


def test_import_with_bad_window_and_unknown_reader_id(tmp_path):
    result = vr("import", CUTOUT, tmp_path / "s", "--window", "purple")
    assert result.returncode == 1 and "unknown window" in result.stderr
    result = vr("import", CUTOUT, tmp_path / "s2", "--reader", "../evil")
    assert result.returncode == 1 and "not allowed" in result.stderr


def test_synth_writes_a_study_with_a_preview(tmp_path):
    out = tmp_path / "phantom"
    result = vr("synth", out, "--cases", "2", "--slices", "2", "--seed", "3", "--preview", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "wrote 2 cases, 4 slices" in result.stdout and "prevalence per box" in result.stdout
    assert (out / "preview.png").is_file()
    info = json.loads(vr("inspect", out).stdout)
    assert (info["kind"], info["cases"], info["slices"], info["readers"]) == ("study", 2, 4, ["r1", "r2", "r3"])
    again = vr("synth", out, "--cases", "1")
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_synth_rejects_bad_prevalence(tmp_path):
    result = vr("synth", tmp_path / "x", "--prevalence", "OVCF=lots")
    assert result.returncode == 2 and "CODE=RATE" in result.stderr
    result = vr("synth", tmp_path / "y", "--prevalence", "OVCF=0.6,OF=0.4", "--cases", "1")
    assert result.returncode == 1 and "room for NORMAL" in result.stderr
