"""Sagittal reformat: physical size, the fixed orientation (superior up, anterior left), and exact box geometry.

Expected boxes are computed from the files' own affines in millimetres, independently of the reformat code.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel import orientations

from core.imaging.dicom_series import scan_dicom
from core.imaging.image import Volume
from core.imaging.nifti import read_nifti
from core.imaging.reformat import SagittalReformat, SagittalSize, sagittal_slices


def _mask_box(mask2d: np.ndarray) -> tuple[float, float, float, float]:
    rows, cols = np.nonzero(mask2d)
    return float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)


def _voxel_mm(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _grid_edges_mm(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Min and max RAS mm over the outer edges of the voxel grid."""
    corners = np.array([[i, j, k] for i in (-0.5, shape[0] - 0.5) for j in (-0.5, shape[1] - 0.5)
                        for k in (-0.5, shape[2] - 0.5)])
    mm = _voxel_mm(affine, corners)
    return mm.min(axis=0), mm.max(axis=0)


def _expected_box(affine: np.ndarray, shape: tuple[int, ...], mask: np.ndarray, plane_x_mm: float,
                  pixel_mm: float) -> tuple[float, float, float, float]:
    """The mask's box on the sagittal plane at ``plane_x_mm``, in sagittal pixels, from millimetres alone.

    Column 0 starts at the most anterior edge of the volume and row 0 at the most superior edge.
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    ijk = np.argwhere(mask).astype(float)
    mm = _voxel_mm(affine, ijk)
    lr_axis = int(np.argmax(np.abs(affine[0, :3])))
    on_plane = np.abs(mm[:, 0] - plane_x_mm) < spacing[lr_axis] / 2
    assert on_plane.any(), "the mask does not cross the plane"
    ap_axis = int(np.argmax(np.abs(affine[1, :3])))
    si_axis = int(np.argmax(np.abs(affine[2, :3])))
    half_ap, half_si = spacing[ap_axis] / 2, spacing[si_axis] / 2
    _, hi = _grid_edges_mm(affine, shape)
    anterior_edge, superior_edge = hi[1], hi[2]
    y, z = mm[on_plane, 1], mm[on_plane, 2]
    x1 = (anterior_edge - (y.max() + half_ap)) / pixel_mm
    x2 = (anterior_edge - (y.min() - half_ap)) / pixel_mm
    y1 = (superior_edge - (z.max() + half_si)) / pixel_mm
    y2 = (superior_edge - (z.min() - half_si)) / pixel_mm
    return x1, y1, x2, y2


def _plane_index_near(reformat: SagittalReformat, x_mm: float) -> int:
    positions = np.array([reformat.plane_position_mm(i) for i in range(reformat.plane_count)])
    return int(np.argmin(np.abs(positions - x_mm)))


def test_dicom_series_sagittal_is_40_mm_high(dicom_series_dir):
    series = scan_dicom(dicom_series_dir).series[0]
    reformat = SagittalReformat(series.load_volume())
    image = reformat.slice(reformat.midline_index(), 3.0)
    height_mm = image.height * image.spacing_mm[0]
    assert image.spacing_mm[0] == pytest.approx(image.spacing_mm[1])  # square pixels
    assert image.spacing_mm[0] == pytest.approx(0.9765625)
    assert abs(height_mm - 40.0) <= image.spacing_mm[0] / 2  # 20 slices x 2 mm, to half a pixel
    assert image.width * image.spacing_mm[1] == pytest.approx(500.0)
    # The size is known from the headers alone, without the pixels.
    size = SagittalSize.of(series.affine(), (20, 512, 512))
    assert (size.rows, size.columns) == image.pixels.shape


def test_cutout_l3_body_box_matches_volume_within_one_pixel(cutout_vert_mask, cutout_subreg_mask):
    vert, subreg = nib.load(cutout_vert_mask), nib.load(cutout_subreg_mask)
    body = (np.asarray(vert.dataobj) == 22) & np.isin(np.asarray(subreg.dataobj), (49, 50))
    assert body.sum() > 1000
    centroid_mm = _voxel_mm(vert.affine, np.argwhere(body).mean(axis=0))
    body_volume = Volume(body.astype(np.uint8), vert.affine, is_label_map=True)
    reformat = SagittalReformat(body_volume)
    index = _plane_index_near(reformat, centroid_mm[0])
    image = reformat.slice(index, label_map=True)
    got = _mask_box(image.pixels > 0)
    expected = _expected_box(vert.affine, vert.shape, body, reformat.plane_position_mm(index), reformat.pixel_mm)
    assert np.allclose(got, expected, atol=1.0), (got, expected)
    # The body sits in the anterior (left) part of the image, above the bottom.
    assert got[2] < image.width * 0.75


def test_t12_box_on_anisotropic_dicom_grid_within_one_pixel(series_labels):
    labels = nib.load(series_labels)
    t12 = np.asarray(labels.dataobj) == 32
    centroid_mm = _voxel_mm(labels.affine, np.argwhere(t12).mean(axis=0))
    reformat = SagittalReformat(Volume(t12.astype(np.uint8), labels.affine, is_label_map=True))
    assert reformat.pixel_mm == pytest.approx(0.9765625)  # 2 mm slices resampled to square pixels
    index = _plane_index_near(reformat, centroid_mm[0])
    image = reformat.slice(index, label_map=True)
    got = _mask_box(image.pixels > 0)
    expected = _expected_box(labels.affine, labels.shape, t12, reformat.plane_position_mm(index), reformat.pixel_mm)
    assert np.allclose(got, expected, atol=1.0), (got, expected)


def test_ct_and_label_grids_agree_after_reformat(dicom_series_dir, series_labels):
    """The T12 label, reformatted from its own NIfTI, lies on bone in the reformatted DICOM series."""
    ct = SagittalReformat(scan_dicom(dicom_series_dir).series[0].load_volume())
    labels = SagittalReformat(read_nifti(series_labels))
    t12_mm = _voxel_mm(nib.load(series_labels).affine, np.argwhere(np.asarray(nib.load(series_labels).dataobj) == 32))
    x_mm = float(np.median(t12_mm[:, 0]))
    ct_image = ct.slice(_plane_index_near(ct, x_mm))
    label_image = labels.slice(_plane_index_near(labels, x_mm), label_map=True)
    assert ct_image.pixels.shape == label_image.pixels.shape
    on_t12 = label_image.pixels == 32
    assert on_t12.sum() > 50
    assert np.median(ct_image.pixels[on_t12]) > 100  # vertebral bone, in HU
    assert np.median(ct_image.pixels[~on_t12]) < np.median(ct_image.pixels[on_t12])
    # The spine is posterior, so it is in the right half of the image (anterior is on the left).
    cols = np.nonzero(on_t12)[1]
    assert cols.mean() > ct_image.width / 2


def _marker_volume() -> tuple[np.ndarray, np.ndarray]:
    """A RAS volume with a bright voxel at the anterior-superior corner and a dim one posterior-inferior."""
    voxels = np.zeros((5, 12, 9), dtype=np.float32)
    voxels[2, 11, 8] = 1000.0  # x mid, y most anterior, z most superior
    voxels[2, 0, 0] = 500.0  # most posterior, most inferior
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    return voxels, affine


@pytest.mark.parametrize("codes", ["RAS", "LPS", "PIR", "LAS", "SRA", "IPL", "ASL"])
def test_superior_up_anterior_left_for_any_storage_orientation(codes):
    voxels, affine = _marker_volume()
    target = orientations.axcodes2ornt(tuple(codes))
    transform = orientations.ornt_transform(orientations.axcodes2ornt(("R", "A", "S")), target)
    stored = orientations.apply_orientation(voxels, transform)
    stored_affine = affine @ orientations.inv_ornt_aff(transform, voxels.shape)
    volume = Volume(np.ascontiguousarray(stored), stored_affine)
    assert volume.axis_codes == codes
    image = SagittalReformat(volume).slice(2)
    assert image.pixels.shape == (9, 12)
    assert np.unravel_index(np.argmax(image.pixels), image.pixels.shape) == (0, 0)  # top-left
    bottom_right = image.pixels[-1, -1]
    assert bottom_right == pytest.approx(500.0)


def test_anisotropic_volume_gets_square_pixels_with_exact_geometry():
    voxels = np.zeros((3, 20, 10), dtype=np.float32)
    voxels[1, 5:15, 2:8] = 1.0
    affine = np.diag([1.0, 0.5, 2.0, 1.0])  # 0.5 mm A-P, 2 mm S-I
    reformat = SagittalReformat(Volume(voxels, affine, is_label_map=True))
    image = reformat.slice(1, label_map=True)
    assert image.spacing_mm == (0.5, 0.5)
    assert image.pixels.shape == (40, 20)  # 10 x 2 mm / 0.5 mm rows, 20 x 0.5 mm / 0.5 mm columns
    got = _mask_box(image.pixels > 0)
    # Rows 2..7 (z) are superior-inferior 4..16 mm from the bottom → rows 8..32 from the top at 0.5 mm.
    assert got == (5.0, 8.0, 15.0, 32.0)
    # pixel_to_patient and patient_to_pixel are inverse.
    plane = image.plane
    points = np.array([[0.0, 0.0], [3.5, 7.25], [20.0, 40.0]])
    mm = plane.pixel_to_patient(points[:, 0], points[:, 1])
    assert np.allclose(plane.patient_to_pixel(mm), points)


def test_slab_thickness_averages_neighbouring_planes():
    voxels = np.zeros((7, 4, 4), dtype=np.float32)
    voxels[2], voxels[3], voxels[4] = 0.0, 300.0, 600.0
    reformat = SagittalReformat(Volume(voxels, np.eye(4), hu=True))
    assert np.all(reformat.slice(3).pixels == 300.0)
    thick = reformat.slice(3, thickness_mm=3.0)
    assert np.allclose(thick.pixels, 300.0)  # mean of 0, 300, 600
    assert thick.plane.thickness_mm == pytest.approx(3.0)
    assert np.allclose(reformat.slice(4, thickness_mm=3.0).pixels, 300.0)  # mean of 300, 600, 0


def test_default_sagittal_set_is_centred_on_the_spine(dicom_series_dir, series_labels):
    volume = scan_dicom(dicom_series_dir).series[0].load_volume()
    slices = sagittal_slices(volume, count=11, step_mm=3.0, thickness_mm=3.0)
    assert len(slices) == 11
    positions = [s.plane.position_mm for s in slices]
    assert np.allclose(np.diff(positions), 3 * 0.9765625, atol=1e-6)  # 3 mm rounded to whole voxels
    labels = nib.load(series_labels)
    spine_mm = _voxel_mm(labels.affine, np.argwhere(np.isin(np.asarray(labels.dataobj), (32, 33))))
    assert abs(np.median(positions) - np.median(spine_mm[:, 0])) < 15.0  # within a vertebral half-width


def test_reformat_rejects_out_of_range_plane(cutout_ct):
    from core.errors import GeometryError

    reformat = SagittalReformat(read_nifti(cutout_ct))
    with pytest.raises(GeometryError, match="outside"):
        reformat.slice(reformat.plane_count)
