"""Reading NIfTI volumes: the real CT cut-out and its masks, 4D files, and files that must be refused."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from core.errors import NiftiReadError
from core.imaging.nifti import MAX_VOXELS, is_nifti, read_nifti


@pytest.fixture(scope="module")
def cutout(cutout_ct: Path) -> nib.Nifti1Image:
    return nib.load(cutout_ct)


def read_error(path: Path) -> NiftiReadError:
    with pytest.raises(NiftiReadError) as caught:
        read_nifti(path)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    return caught.value


def test_cutout_ct_geometry_and_hu(cutout_ct: Path, cutout: nib.Nifti1Image) -> None:
    volume = read_nifti(cutout_ct)

    assert volume.shape == (73, 47, 73)
    assert volume.spacing_mm == pytest.approx((1.5, 1.5, 1.5))
    assert volume.axis_codes == "PIR"
    assert volume.hu and not volume.is_label_map
    assert volume.voxels.dtype == np.float32
    np.testing.assert_array_equal(volume.voxels, np.asarray(cutout.dataobj, dtype=np.float32))
    np.testing.assert_array_equal(volume.affine, cutout.affine)
    assert volume.source == cutout_ct


def test_cutout_masks_are_integer_label_maps(cutout_ct: Path, cutout_vert_mask: Path, cutout_subreg_mask: Path) -> None:
    ct = read_nifti(cutout_ct)
    vert, subreg = read_nifti(cutout_vert_mask), read_nifti(cutout_subreg_mask)

    for mask in (vert, subreg):
        assert mask.is_label_map and not mask.hu
        assert mask.voxels.dtype.kind in "iu", "labels are not turned into floats"
        assert mask.shape == ct.shape
        np.testing.assert_allclose(mask.affine, ct.affine)
    assert set(np.unique(vert.voxels)) == {0, 21, 22, 23}
    assert set(np.unique(subreg.voxels)) == {0, *range(41, 51)}
    # The masks sit on the CT: the vertebral arch (41) is dense bone, the mask background is mostly soft tissue.
    assert ct.voxels[subreg.voxels == 41].mean() > 300
    assert ct.voxels[vert.voxels == 0].mean() < ct.voxels[vert.voxels == 22].mean() - 100


def test_four_d_file_with_one_volume_is_read(cutout: nib.Nifti1Image, tmp_path: Path) -> None:
    data = np.asarray(cutout.dataobj)
    path = tmp_path / "one.nii.gz"
    nib.save(nib.Nifti1Image(data[..., np.newaxis], cutout.affine), path)

    volume = read_nifti(path)

    assert volume.shape == (73, 47, 73)
    np.testing.assert_array_equal(volume.voxels, data.astype(np.float32))


def test_four_d_file_with_several_volumes_is_refused(cutout: nib.Nifti1Image, tmp_path: Path) -> None:
    data = np.asarray(cutout.dataobj)
    path = tmp_path / "two.nii.gz"
    nib.save(nib.Nifti1Image(np.stack([data, data], axis=-1), cutout.affine), path)

    error = read_error(path)

    assert "3D" in error.message and "(73, 47, 73, 2)" in error.message


def test_two_d_file_is_one_slice(tmp_path: Path) -> None:
    path = tmp_path / "flat.nii"
    nib.save(nib.Nifti1Image(np.arange(12, dtype=np.float32).reshape(3, 4) - 1000, np.eye(4)), path)
    volume = read_nifti(path)
    assert volume.shape == (3, 4, 1)


def test_nan_voxels_are_replaced_by_the_minimum(tmp_path: Path) -> None:
    data = np.full((4, 4, 4), 10.0, np.float32)
    data[0, 0, 0], data[1, 1, 1] = -1000.0, np.nan
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)

    volume = read_nifti(path)

    assert np.all(np.isfinite(volume.voxels))
    assert volume.voxels[1, 1, 1] == -1000.0


def test_truncated_gzip_is_refused(cutout_ct: Path, tmp_path: Path) -> None:
    data = cutout_ct.read_bytes()
    path = tmp_path / "half.nii.gz"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in read_error(path).message


def test_truncated_uncompressed_file_is_refused(cutout_ct: Path, tmp_path: Path) -> None:
    data = gzip.decompress(cutout_ct.read_bytes())
    path = tmp_path / "half.nii"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in read_error(path).message


def test_header_cut_short_is_refused(cutout_ct: Path, tmp_path: Path) -> None:
    path = tmp_path / "header.nii"
    path.write_bytes(gzip.decompress(cutout_ct.read_bytes())[:200])
    assert "not a readable NIfTI file" in read_error(path).message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("text.nii.gz", b"this is not a volume\n"),
        ("random.nii", np.random.default_rng(4).bytes(2000)),
        ("empty.nii", b""),
    ],
)
def test_non_nifti_files_are_refused(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert "not a readable NIfTI file" in read_error(path).message


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in read_error(tmp_path / "missing.nii.gz").message


def test_singular_affine_is_refused(cutout: nib.Nifti1Image, tmp_path: Path) -> None:
    singular = cutout.affine.copy()
    singular[:3, 2] = singular[:3, 1]  # two voxel axes along the same direction
    image = nib.Nifti1Image(np.asarray(cutout.dataobj), None)
    image.set_sform(singular, code=1)
    image.set_qform(None, code=0)
    path = tmp_path / "singular.nii.gz"
    nib.save(image, path)
    assert abs(np.linalg.det(nib.load(path).affine[:3, :3])) < 1e-9, "the file really carries it"

    assert "affine" in read_error(path).message


def test_huge_declared_size_is_refused_before_reading(tmp_path: Path) -> None:
    header = nib.Nifti1Header()
    header.set_data_shape((2048, 2048, 2048))
    header.set_data_dtype(np.int16)
    header.set_sform(np.diag([0.5, 0.5, 0.5, 1.0]), code=1)
    path = tmp_path / "huge.nii"
    path.write_bytes(header.binaryblock + b"\x00" * 4 + b"\x00" * 1024)
    assert MAX_VOXELS < 2048**3

    started = time.perf_counter()
    error = read_error(path)
    assert time.perf_counter() - started < 2
    assert "limit" in error.message


def test_nifti_suffixes() -> None:
    assert is_nifti(Path("a/CT.NII.GZ")) and is_nifti(Path("b.nii"))
    assert not is_nifti(Path("c.gz")) and not is_nifti(Path("d.nii.zip"))
