"""Measurements on a slice: distances in mm, and a region's mean, SD and area checked against numpy directly,
with the region's pixels picked by an independent loop over pixel centres."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.imaging.image import SliceImage, Volume
from core.imaging.measure import distance_mm, distance_text, roi_mask, roi_stats, slice_position_mm
from core.imaging.reformat import SagittalReformat


def _centres_inside(shape, rect, kind):
    """Pixel (r, c) is inside when its centre (c + 0.5, r + 0.5) is: a loop, no vectorised geometry."""
    x0, y0, x1, y1 = rect
    cx, cy, a, b = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    inside = np.zeros(shape, dtype=bool)
    for r in range(shape[0]):
        for c in range(shape[1]):
            x, y = c + 0.5, r + 0.5
            if kind == "rectangle":
                inside[r, c] = x0 <= x <= x1 and y0 <= y <= y1
            else:
                inside[r, c] = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0
    return inside


def test_distance_uses_the_row_and_column_spacing():
    assert distance_mm((10, 20), (13, 24), (2.0, 0.5)) == pytest.approx(math.hypot(3 * 0.5, 4 * 2.0))
    assert distance_text((0, 0), (3, 4), (1.0, 1.0)) == "5.0 mm"
    assert distance_mm((0, 0), (3, 4), None) is None
    assert distance_text((0, 0), (3, 4), None) == "5.0 px"  # no spacing: said in pixels, never called mm


@pytest.mark.parametrize("kind", ["ellipse", "rectangle"])
@pytest.mark.parametrize("rect", [(3.2, 4.7, 17.9, 12.1), (-5.0, 10.0, 8.0, 30.0), (0.0, 0.0, 40.0, 25.0)])
def test_the_region_holds_the_pixels_whose_centres_are_inside(kind, rect):
    shape = (25, 40)
    assert np.array_equal(roi_mask(shape, rect, kind), _centres_inside(shape, rect, kind))


def test_a_region_drawn_backwards_or_flat_or_off_the_image():
    shape = (20, 20)
    assert np.array_equal(roi_mask(shape, (15, 12, 3, 2)), roi_mask(shape, (3, 2, 15, 12)))
    assert not roi_mask(shape, (5, 5, 5, 9)).any()
    assert not roi_mask(shape, (30, 30, 40, 40)).any()
    with pytest.raises(ValueError, match="polygon"):
        roi_mask(shape, (0, 0, 5, 5), "polygon")


def test_region_statistics_are_the_slices_own_values_against_numpy():
    rng = np.random.default_rng(3)
    hu = rng.normal(250.0, 80.0, (60, 50)).astype(np.float32)
    hu[30, 20] = np.nan  # a missing value inside the region is left out, never a NaN mean
    image = SliceImage(hu, spacing_mm=(0.8, 0.6), hu=True)
    rect = (10.3, 18.0, 35.6, 44.9)
    inside = _centres_inside(hu.shape, rect, "ellipse")
    values = hu[inside].astype(np.float64)
    values = values[np.isfinite(values)]
    stats = roi_stats(image, rect, "ellipse")
    assert stats.count == values.size == inside.sum() - 1
    assert stats.mean == pytest.approx(values.mean())
    assert stats.sd == pytest.approx(values.std(ddof=1))
    assert (stats.minimum, stats.maximum) == pytest.approx((values.min(), values.max()))
    assert stats.area == pytest.approx(values.size * 0.8 * 0.6) and stats.area_unit == "mm²"
    assert stats.lines() == [f"Mean {values.mean():.1f} HU", f"SD {values.std(ddof=1):.1f} HU",
                             f"Area {values.size * 0.48:.1f} mm²"]


def test_statistics_without_hu_or_spacing_say_so():
    image = SliceImage(np.arange(100, dtype=np.float32).reshape(10, 10))
    stats = roi_stats(image, (2, 2, 4, 3), "rectangle")  # pixels (2, 2) and (2, 3)
    assert (stats.count, stats.mean, stats.area, stats.area_unit, stats.unit) == (2, 22.5, 2.0, "px²", "")
    assert stats.lines()[0] == "Mean 22.5"
    empty = roi_stats(image, (50, 50, 60, 60))
    assert empty.count == 0 and empty.lines() == ["no pixels inside"]


def test_the_slice_position_comes_from_its_plane():
    affine = np.diag([2.0, 1.0, 1.0, 1.0])
    affine[0, 3] = -30.0
    volume = Volume(np.zeros((20, 16, 12), dtype=np.float32), affine, hu=True)
    image = SagittalReformat(volume).slice(5)
    assert slice_position_mm(image) == pytest.approx(-30.0 + 5 * 2.0)
    assert slice_position_mm(SliceImage(np.zeros((4, 4), dtype=np.float32))) is None


def test_a_dicom_slice_knows_its_left_right_position():
    """A sagittal DICOM frame's position comes from ImagePositionPatient (LPS x, so RAS x is its negative); other
    planes, or a frame without geometry, have none."""
    from core.imaging.dicom_header import FrameGeometry, sagittal_position_mm
    from core.resources import resources_dir
    from core.study.layout import Study

    sagittal = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    axial = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert sagittal_position_mm(FrameGeometry((12.5, -80.0, 40.0), sagittal)) == -12.5
    assert sagittal_position_mm(FrameGeometry((12.5, -80.0, 40.0), axial)) is None
    assert sagittal_position_mm(FrameGeometry(None, sagittal)) is None
    study = Study.open(resources_dir() / "demo")
    first, second = (study.read_image("case-0001", s) for s in ("s001", "s002"))
    assert slice_position_mm(first) is not None and slice_position_mm(second) is not None
    assert 1.0 < abs(slice_position_mm(second) - slice_position_mm(first)) < 10.0  # neighbouring slices, mm apart
