"""Memory and time bombs: files whose headers claim far more than they hold are refused from the header, before
anything is allocated, with a typed error that names the file, what it claims and the limit (issue 18).

Every hostile file is built here, small, at test time: its header lies (a DICOM claiming 2147483647 frames over 128
bytes, a 385-byte NIfTI claiming 8 GiB), or it is sparse (a 200 MB LabelMe file that takes no disk), or it is a
stream of compressed zeros (a 4 MB ``.nii.gz`` that inflates to 4 GiB, built from repeated gzip members).
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from core.annotations.labelme_io import read_labelme
from core.errors import AnnotationFileError, DicomReadError, GeometryError, NiftiReadError, VertebraReviewError
from core.imaging import limits
from core.imaging.dicom import read_dicom, read_header
from core.imaging.dicom_series import scan_dicom
from core.imaging.dicom_write import SliceTags, ct_slice_bytes, derived_uid
from core.imaging.image import Volume
from core.imaging.nifti import check_nifti_header, read_nifti
from core.imaging.reformat import SagittalReformat, SagittalSize
from core.imaging.vertebra_masks import read_label_volume
from core.inspection import inspect_path
from desktop.cli import main
from tests.core.imaging_helpers import run_python

MiB = 1 << 20
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


# -- hostile files --------------------------------------------------------------------------------------------------
def ct_bytes(index: int = 0, *, size: int = 8, spacing: float = 1.0, step: float = 1.0) -> bytes:
    """One small axial CT slice of a series (slices ``step`` mm apart, square pixels of ``spacing`` mm)."""
    tags = SliceTags(
        patient_id="BOMB", study_uid=derived_uid("bomb"), series_uid=derived_uid("bomb", "series"),
        sop_uid=derived_uid("bomb", str(index)), frame_of_reference_uid=derived_uid("bomb", "for"),
        instance_number=index + 1, spacing_mm=(spacing, spacing), position_lps=(0.0, 0.0, index * step),
        orientation_lps=AXIAL,
    )
    return ct_slice_bytes(np.full((size, size), -1000.0), tags)


def dicom_claiming(path: Path, *, frames: int = 1, rows: int = 8, columns: int = 8, pixel_bytes: int = 128) -> Path:
    """A CT file whose header claims ``frames`` frames of ``columns`` x ``rows`` over ``pixel_bytes`` of pixels."""
    ds = pydicom.dcmread(io.BytesIO(ct_bytes()))
    ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = rows, columns
    ds.PixelData = b"\x00" * pixel_bytes
    ds.save_as(path, enforce_file_format=True)
    return path


def deflated_dicom(path: Path, *, side: int = 1024) -> Path:
    """A deflated DICOM whose dataset (a ``side`` x ``side`` slice of zeros) inflates a thousandfold."""
    ds = pydicom.dcmread(io.BytesIO(ct_bytes(size=side)))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


def nifti_header(shape: tuple[int, ...], dtype: type, zooms: tuple[float, ...] = (1.0, 1.0, 1.0)) -> nib.Nifti1Header:
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_zooms(zooms + (1.0,) * (len(shape) - len(zooms)))
    header.set_sform(np.diag([*zooms[:3], 1.0]), code=1)
    header.set_qform(np.diag([*zooms[:3], 1.0]), code=1)
    header.set_data_offset(352)
    return header


def nifti_claiming(path: Path, shape: tuple[int, ...], dtype: type, data: bytes = b"\x00" * 33) -> Path:
    """An uncompressed NIfTI whose header claims ``shape`` voxels of ``dtype`` over ``data`` (385 bytes in all)."""
    path.write_bytes(nifti_header(shape, dtype).binaryblock + b"\x00" * 4 + data)
    return path


@functools.cache
def _gzip_of_zeros(count: int) -> bytes:
    return gzip.compress(b"\x00" * count, compresslevel=9)


def gz_of_zeros(head: bytes, inflated: int, *, member: int = 64 * MiB) -> bytes:
    """``head`` followed by ``inflated`` bytes of zeros, gzip-compressed as repeated members: about 1 KB a MB."""
    count, rest = divmod(inflated, member)
    return gzip.compress(head) + _gzip_of_zeros(member) * count + _gzip_of_zeros(rest)


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk (a hole)."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def axial_series(folder: Path, *, count: int = 3, spacing: float = 1.0, step: float = 1.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"CT{index:03d}.dcm").write_bytes(ct_bytes(index, spacing=spacing, step=step))
    return folder


def refusal(error_type: type[VertebraReviewError], read: Callable[[Path], object], path: Path) -> VertebraReviewError:
    """The error ``read(path)`` raises, which names the file; fails if Python allocated 16 MiB on the way."""
    tracemalloc.start()
    try:
        with pytest.raises(error_type) as caught:
            read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MiB, f"refused only after allocating {peak / MiB:.0f} MiB"
    assert caught.value.path is not None and Path(caught.value.path).name == path.name
    return caught.value


# -- DICOM ----------------------------------------------------------------------------------------------------------
def test_frame_count_bomb_is_refused_before_any_geometry(tmp_path: Path) -> None:
    path = dicom_claiming(tmp_path / "frames.dcm", frames=2147483647)

    for read in (read_header, read_dicom):
        error = refusal(DicomReadError, read, path)
        assert "claims 2147483647 frames" in error.message
        assert f"the limit is {limits.MAX_FRAMES} frames" in error.message


def test_frames_under_the_limit_over_too_few_bytes_are_truncated(tmp_path: Path) -> None:
    path = dicom_claiming(tmp_path / "short.dcm", frames=5000)

    error = refusal(DicomReadError, read_header, path)

    assert "truncated" in error.message and "claims 5000 frames of 8 x 8 pixels" in error.message
    assert "640000 bytes of pixel data" in error.message and "holds 128 bytes" in error.message


def test_huge_frame_is_refused_by_its_decoded_size(tmp_path: Path) -> None:
    path = dicom_claiming(tmp_path / "wide.dcm", rows=65535, columns=65535)

    error = refusal(DicomReadError, read_dicom, path)

    assert "claims 1 frame of 65535 x 65535 pixels (16.0 GiB)" in error.message
    assert "the limit is 2 GiB" in error.message


def test_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = sparse_file(tmp_path / "huge.dcm", limits.MAX_FILE_BYTES + 1)

    error = refusal(DicomReadError, read_header, path)

    assert error.message == "the file is 2.0 GiB; the limit is 2 GiB per file"


def test_deflate_bomb_is_refused_before_pydicom_inflates_it(tmp_path: Path, monkeypatch) -> None:
    path = deflated_dicom(tmp_path / "deflated.dcm")
    assert path.stat().st_size < 8 * 1024
    read_header(path)  # 2 MiB inflated: under the real limit
    monkeypatch.setattr(limits, "MAX_INFLATED_BYTES", MiB)

    error = refusal(DicomReadError, read_header, path)

    assert "deflated dataset of more than 1 MiB once inflated" in error.message
    assert "the limit is 1 MiB" in error.message


def test_series_over_the_volume_limit_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    series = scan_dicom(axial_series(tmp_path / "series", count=4)).series[0]
    monkeypatch.setattr(limits, "MAX_VOLUME_BYTES", 4 * 8 * 8 * 4 - 1)

    for load in (series.load_volume, series.load_slices):
        with pytest.raises(DicomReadError) as caught:
            load()
        assert caught.value.path == str(tmp_path / "series")
        assert "the series claims 4 slices of 8 x 8 pixels (1 KiB); the limit is 1023 bytes" in caught.value.message


def test_series_with_a_reformat_bomb_is_refused_before_the_reformat(tmp_path: Path) -> None:
    series = scan_dicom(axial_series(tmp_path / "series", spacing=0.0001, step=1000.0)).series[0]

    error = refusal(GeometryError, lambda _: SagittalReformat(series.load_volume()), tmp_path / "series")

    assert "voxels of 0.0001 x 0.0001 x 1000 mm" in error.message
    assert "sagittal images of 8 x 30000000 pixels (915.5 MiB); the limit is 64 MiB" in error.message


# -- NIfTI ----------------------------------------------------------------------------------------------------------
def test_385_byte_nifti_claiming_8_gib_is_refused(tmp_path: Path) -> None:
    path = nifti_claiming(tmp_path / "claims.nii", (1024, 1024, 1000), np.float64)
    assert path.stat().st_size == 385

    error = refusal(NiftiReadError, read_nifti, path)

    assert error.message == "the file claims 1024 x 1024 x 1000 voxels of float64 (7.8 GiB); the limit is 2 GiB"


def test_label_map_reader_checks_the_same_limits(tmp_path: Path) -> None:
    path = nifti_claiming(tmp_path / "mask.nii", (1024, 1024, 1000), np.float64)

    error = refusal(NiftiReadError, read_label_volume, path)

    assert "the limit is 2 GiB" in error.message


def test_int8_voxels_are_counted_as_the_float32_they_become(tmp_path: Path) -> None:
    path = nifti_claiming(tmp_path / "int8.nii", (1024, 1024, 600), np.int8)

    error = refusal(NiftiReadError, read_nifti, path)

    assert "1024 x 1024 x 600 voxels of int8 (2.3 GiB)" in error.message


def test_gz_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    """4 MB of gzip that inflates to 4 GiB, behind a header that tells the truth about it."""
    header = nifti_header((1024, 1024, 1024), np.int32)
    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(gz_of_zeros(header.binaryblock + b"\x00" * 4, 4 << 30))
    assert path.stat().st_size < 5 * MiB

    error = refusal(NiftiReadError, read_nifti, path)

    assert "claims 1024 x 1024 x 1024 voxels of int32 (4 GiB); the limit is 2 GiB" in error.message


def test_gz_that_inflates_past_the_limit_in_its_extensions_is_refused(tmp_path: Path) -> None:
    header = nifti_header((8, 8, 8), np.int16)
    header.set_data_offset(3 << 30)
    path = tmp_path / "extensions.nii.gz"
    path.write_bytes(gz_of_zeros(header.binaryblock + b"\x01\x00\x00\x00", 64 * MiB))

    error = refusal(NiftiReadError, read_nifti, path)

    assert "after a 3221225472-byte header, 3221226496 bytes once inflated" in error.message
    assert "the limit is 2 GiB" in error.message


@pytest.mark.parametrize("esize", [0, -8, 1 << 30])
def test_extension_sizes_that_would_read_the_whole_stream_are_refused(tmp_path: Path, esize: int) -> None:
    """nibabel reads ``esize - 8`` bytes: a negative count reads to the end of a 4 GiB stream."""
    header = nifti_header((8, 8, 8), np.int16)
    header.set_data_offset(352 + 16)
    extension = esize.to_bytes(4, "little", signed=True) + (0).to_bytes(4, "little") + b"\x00" * 8
    path = tmp_path / "extension.nii.gz"
    path.write_bytes(gz_of_zeros(header.binaryblock + b"\x01\x00\x00\x00" + extension, 256 * MiB))

    error = refusal(NiftiReadError, read_nifti, path)

    assert f"claims a header extension of {esize} bytes at byte 352" in error.message
    assert "the limit is the 16 bytes before its voxel data" in error.message


def test_truncated_uncompressed_nifti_is_refused_from_its_size(tmp_path: Path) -> None:
    path = nifti_claiming(tmp_path / "short.nii", (64, 64, 64), np.int16)

    error = refusal(NiftiReadError, read_nifti, path)

    assert error.message == "voxel data is truncated: the header claims 524640 bytes, the file holds 385"


def test_nifti_reformat_bomb_is_refused_before_the_reformat(tmp_path: Path) -> None:
    data = np.full((16, 16, 16), -1000, np.int16)
    path = tmp_path / "pixdim.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 0.0001, 1000.0, 1.0])), path)
    volume = read_nifti(path)

    error = refusal(GeometryError, lambda _: SagittalReformat(volume), path)

    assert error.message.startswith(
        "the volume claims voxels of 1 x 0.0001 x 1000 mm (left-right, front-back, head-foot), so sagittal images "
        "of 16 x 16000000"  # pixdim is float32: 0.0001 is 0.000099999997
    )
    assert error.message.endswith("pixels (9.5 GiB); the limit is 64 MiB")


def test_two_d_nifti_has_no_sagittal_image(tmp_path: Path) -> None:
    path = tmp_path / "flat.nii"
    nib.save(nib.Nifti1Image(np.zeros((48, 48), np.float32) - 1000, np.eye(4)), path)
    volume = read_nifti(path)

    error = refusal(GeometryError, lambda _: SagittalReformat(volume), path)

    assert "48 x 48 x 1 voxels is one voxel thick from head to foot, so it has no sagittal image" in error.message


def test_scaled_nifti_is_read_as_float32_not_float64(tmp_path: Path) -> None:
    image = nib.Nifti1Image(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), np.eye(4))
    image.header.set_slope_inter(2.0, -1024.0)
    path = tmp_path / "scaled.nii"
    nib.save(image, path)

    volume = read_nifti(path)

    assert volume.voxels.dtype == np.float32 and not volume.is_label_map
    np.testing.assert_array_equal(volume.voxels, np.arange(120).reshape(4, 5, 6) * 2.0 - 1024.0)


# -- real CT still fits -----------------------------------------------------------------------------------------------
def test_limits_leave_room_for_real_ct() -> None:
    """A 2000-slice 512 x 512 series as float32, and the sagittal images of a 1000-slice one, fit."""
    assert limits.MAX_VOLUME_BYTES >= 2000 * 512 * 512 * 4
    assert min(limits.MAX_FILE_BYTES, limits.MAX_INFLATED_BYTES) >= 1000 * 512 * 512 * 2 + 352
    affine = np.diag([0.7, 0.7, 1.0, 1.0])
    size = SagittalSize.checked(affine, (512, 512, 1000))
    assert (size.columns, size.rows) == (512, 1429)
    thin = SagittalSize.checked(np.diag([0.98, 0.98, 0.5, 1.0]), (512, 512, 2000))
    assert thin.rows * thin.columns * 4 < limits.MAX_SAGITTAL_IMAGE_BYTES


def test_a_real_size_volume_reformats(tmp_path: Path) -> None:
    """A header-only check of a 1000 x 512 x 512 int16 NIfTI passes (nothing is read), and a reformat of a volume
    with real CT spacing works."""
    path = tmp_path / "ct.nii"
    sparse_file(path, 352 + 1000 * 512 * 512 * 2)
    with path.open("r+b") as handle:
        handle.write(nifti_header((512, 512, 1000), np.int16, (0.7, 0.7, 1.0)).binaryblock)

    check_nifti_header(path)
    volume = Volume(np.zeros((64, 64, 100), np.int16), np.diag([0.7, 0.7, 1.0, 1.0]))
    image = SagittalReformat(volume).slice(32)
    assert image.pixels.shape == (143, 64)


# -- LabelMe --------------------------------------------------------------------------------------------------------
def test_huge_labelme_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = sparse_file(tmp_path / "huge.json", 200 * 1000 * 1000)

    for read in (read_labelme, inspect_path):
        error = refusal(AnnotationFileError, read, path)
        assert error.message == "file is 200.0 MB; LabelMe JSON over 64 MB is refused"


# -- the command line: one clean line, and memory that stays flat -----------------------------------------------------
@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bombs")
    flat = root / "flat.nii"
    nib.save(nib.Nifti1Image(np.zeros((48, 48), np.float32) - 1000, np.eye(4)), flat)
    pixdim = root / "pixdim.nii.gz"
    nib.save(nib.Nifti1Image(np.full((16, 16, 16), -1000, np.int16), np.diag([1.0, 0.0001, 1000.0, 1.0])), pixdim)
    gz = root / "bomb.nii.gz"
    gz.write_bytes(gz_of_zeros(nifti_header((1024, 1024, 1024), np.int32).binaryblock + b"\x00" * 4, 4 << 30))
    return {
        "frames": dicom_claiming(root / "frames.dcm", frames=2147483647),
        "short-frames": dicom_claiming(root / "short.dcm", frames=5000),
        "nifti": nifti_claiming(root / "claims.nii", (1024, 1024, 1000), np.float64),
        "gz": gz,
        "pixdim": pixdim,
        "flat": flat,
        "labelme": sparse_file(root / "huge.json", 200 * 1000 * 1000),
    }


@pytest.mark.parametrize("name", ["frames", "short-frames", "nifti", "gz", "pixdim", "flat", "labelme"])
def test_inspect_refuses_with_one_clean_line(bombs: dict[str, Path], name: str, capsys) -> None:
    path = bombs[name]

    assert main(["inspect", str(path)]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"vertebra-review: error: {path}: ")
    assert any(word in lines[0] for word in ("the limit is", "no sagittal image", "truncated", "is refused"))
    assert "internal error" not in lines[0] and "Traceback" not in captured.err


@pytest.mark.parametrize("name", ["frames", "short-frames", "nifti", "gz", "pixdim", "flat"])
def test_import_skips_with_one_clean_line(bombs: dict[str, Path], name: str, tmp_path: Path, capsys) -> None:
    path = bombs[name]

    assert main(["import", str(path), str(tmp_path / "study"), "--sagittal"]) != 0

    captured = capsys.readouterr()
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and skipped[0].startswith(f"skipped {path}: "), captured.err
    assert any(word in skipped[0] for word in ("the limit is", "no sagittal image", "truncated"))
    assert "internal error" not in captured.err and "Traceback" not in captured.err


def test_dicom_series_reformat_bomb_is_described_and_not_imported(tmp_path: Path, capsys) -> None:
    folder = axial_series(tmp_path / "series", spacing=0.0001, step=1000.0)

    assert main(["inspect", str(folder)]) == 0
    sagittal = json.loads(capsys.readouterr().out)["sagittal"]
    assert sagittal.startswith(f"cannot reformat: {folder}: the volume claims voxels of 0.0001 x 0.0001 x 1000 mm")
    assert main(["import", str(folder), str(tmp_path / "study"), "--sagittal"]) != 0
    err = capsys.readouterr().err
    assert f"skipped {folder}: the volume claims" in err and "the limit is 64 MiB" in err


_MEASURE = """
import contextlib, io, json, resource, sys
from desktop.cli import main
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peaks = {}
for path in sys.argv[1:]:
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["inspect", path])
    peaks[path] = [code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline, err.getvalue()]
print(json.dumps(peaks))
"""


@pytest.mark.slow  # a fresh interpreter (imports take seconds)
def test_memory_stays_flat_while_the_bombs_are_refused(bombs: dict[str, Path]) -> None:
    """Every bomb inspected in one fresh interpreter: its peak resident memory grows by under 64 MiB in all."""
    result = run_python(_MEASURE, *map(str, bombs.values()), timeout=120)

    assert result.returncode == 0, result.stderr
    peaks = json.loads(result.stdout)
    for path, (code, grown_kib, err) in peaks.items():
        assert code == 1, (path, err)
        assert grown_kib < 64 * 1024, f"{path}: resident memory grew by {grown_kib // 1024} MiB ({err})"
