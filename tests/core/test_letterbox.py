"""Letterbox: centre-crop and zero-pad to N x N with an exact box mapping both ways."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.imaging.letterbox import Letterbox


def test_paper_mean_slice_is_padded_centrally():
    box = Letterbox(width=743, height=619, side=1024)
    assert (box.dx, box.dy) == (140, 202)  # (1024-743)//2, (1024-619)//2
    image = np.ones((619, 743), dtype=np.float32)
    out = box.apply(image)
    assert out.shape == (1024, 1024)
    assert out.sum() == 743 * 619
    assert out[202, 140] == 1 and out[201, 140] == 0 and out[202, 139] == 0
    assert out[202 + 618, 140 + 742] == 1 and out[202 + 619, 140 + 742] == 0


def test_large_slice_is_centre_cropped_not_resized():
    box = Letterbox(width=1200, height=1100, side=1024)
    assert (box.dx, box.dy) == (-88, -38)
    image = np.arange(1100 * 1200, dtype=np.int64).reshape(1100, 1200)
    out = box.apply(image)
    assert np.array_equal(out, image[38 : 38 + 1024, 88 : 88 + 1024])
    assert box.visible_region() == (88, 38, 1112, 1062)


def test_colour_channels_are_kept():
    out = Letterbox(3, 2, side=4).apply(np.full((2, 3, 3), 7, dtype=np.uint8))
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8 and out.sum() == 7 * 18


def test_boxes_are_clipped_to_the_square_and_back_to_the_slice():
    box = Letterbox(width=1200, height=500, side=1024)
    inside = box.to_letterbox(np.array([[0.0, 0.0, 1200.0, 500.0]]))
    assert inside.tolist() == [[0.0, 262.0, 1024.0, 762.0]]
    back = box.from_letterbox(np.array([[-5.0, 250.0, 1030.0, 800.0]]))
    assert back.tolist() == [[83.0, 0.0, 1118.0, 500.0]]


def test_wrong_image_size_is_refused():
    with pytest.raises(ValueError, match="expects"):
        Letterbox(10, 20, side=16).apply(np.zeros((10, 20)))
    with pytest.raises(ValueError):
        Letterbox(0, 20)


sizes = st.integers(min_value=1, max_value=300)


@settings(max_examples=300, deadline=None)
@given(width=sizes, height=sizes, side=st.integers(min_value=1, max_value=300), data=st.data())
def test_box_mapping_is_exact_both_ways(width, height, side, data):
    box = Letterbox(width, height, side)
    # Coordinates on a 1/256 px grid are exact in floating point, so the round trip must be bit-exact.
    xs = sorted(data.draw(st.integers(0, width * 256)) / 256 for _ in range(2))
    ys = sorted(data.draw(st.integers(0, height * 256)) / 256 for _ in range(2))
    boxes = np.array([[xs[0], ys[0], xs[1], ys[1]]])
    there = box.to_letterbox(boxes, clip=False)
    back = box.from_letterbox(there, clip=False)
    assert np.array_equal(back, boxes)
    assert np.array_equal(there - boxes, [[box.dx, box.dy, box.dx, box.dy]])
    # Arbitrary floats come back to within rounding of one addition.
    arbitrary = boxes + data.draw(st.floats(min_value=0, max_value=0.999, allow_nan=False))
    assert np.allclose(box.from_letterbox(box.to_letterbox(arbitrary, clip=False), clip=False), arbitrary,
                       rtol=0, atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(width=sizes, height=sizes, side=st.integers(min_value=1, max_value=300), data=st.data())
def test_pixels_move_with_the_boxes(width, height, side, data):
    """Every slice pixel inside the square lands where the box mapping says, and nothing else is non-zero."""
    box = Letterbox(width, height, side)
    image = np.arange(1, width * height + 1, dtype=np.int64).reshape(height, width)
    out = box.apply(image)
    x = data.draw(st.integers(0, width - 1))
    y = data.draw(st.integers(0, height - 1))
    mapped = box.to_letterbox(np.array([[x, y, x + 1, y + 1]], dtype=float), clip=False)[0]
    lx, ly = int(mapped[0]), int(mapped[1])
    if 0 <= lx < side and 0 <= ly < side:
        assert out[ly, lx] == image[y, x]
    else:
        assert image[y, x] not in out
    x1, y1, x2, y2 = box.visible_region()
    assert np.count_nonzero(out) == (x2 - x1) * (y2 - y1)
