"""Window and level: the linear mapping to 8-bit grey, the presets, the paper's min-max export, and parsing the
command line's window names."""

from __future__ import annotations

import numpy as np
import pytest

from core.imaging.image import SliceImage
from core.imaging.windowing import (
    BONE,
    DICOM,
    MIN_MAX,
    PRESETS,
    SOFT_TISSUE,
    Window,
    apply_window,
    min_max_window,
    parse_window,
    to_uint8_min_max,
)


def test_bounds_map_to_black_and_white() -> None:
    window = Window(40.0, 400.0)
    assert (window.lower, window.upper) == (-160.0, 240.0)
    out = apply_window(np.array([[-160.0, 240.0, 40.0]], np.float32), window)
    assert out.tolist() == [[0, 255, 128]]  # the centre: 200 * 255 / 400 = 127.5, rounded half to even


def test_values_in_between_are_linear() -> None:
    window = Window(400.0, 1800.0)  # -500 … 1300
    values = np.array([-500.0, -140.0, 220.0, 940.0, 1300.0])
    expected = np.rint((values + 500) * 255 / 1800)
    assert apply_window(values, window).tolist() == expected.astype(int).tolist()
    assert expected.tolist() == [0.0, 51.0, 102.0, 204.0, 255.0]


def test_values_outside_are_clipped() -> None:
    out = apply_window(np.array([-3000.0, -161.0, 241.0, 3000.0, np.inf, -np.inf]), Window(40.0, 400.0))
    assert out.tolist() == [0, 0, 255, 255, 255, 0]


def test_nan_is_black() -> None:
    out = apply_window(np.array([np.nan, 100.0, np.nan], np.float32), Window(100.0, 200.0))
    assert out.tolist() == [0, 128, 0]


def test_output_is_c_contiguous_uint8_of_the_same_shape() -> None:
    pixels = np.arange(-1000, 2000, 3, dtype=np.int16).reshape(25, 40)[:, ::2]  # a strided view
    out = apply_window(pixels, BONE)
    assert out.dtype == np.uint8 and out.flags.c_contiguous and out.shape == (25, 20)
    np.testing.assert_array_equal(out, apply_window(np.ascontiguousarray(pixels, np.float64), BONE))


def test_integer_input_does_not_wrap() -> None:
    pixels = np.array([0, 255, 4095, 65535], dtype=np.uint16)
    assert apply_window(pixels, Window(2048.0, 4096.0)).tolist() == [0, 16, 255, 255]


def test_presets() -> None:
    assert (BONE.center, BONE.width) == (400.0, 1800.0)
    assert (SOFT_TISSUE.center, SOFT_TISSUE.width) == (40.0, 400.0)
    assert PRESETS["bone"] is BONE and PRESETS["soft"] is SOFT_TISSUE


def test_min_max_window_is_the_papers_linear_export() -> None:
    pixels = np.array([[-1000.0, -200.0], [600.0, 3000.0]], np.float32)
    window = min_max_window(pixels)
    assert (window.lower, window.upper, window.name) == (-1000.0, 3000.0, MIN_MAX)
    # By hand: (v - min) / (max - min) * 255 → 0, 51, 102, 255.
    assert to_uint8_min_max(pixels).tolist() == [[0, 51], [102, 255]]
    assert apply_window(pixels, window).tolist() == [[0, 51], [102, 255]]


def test_min_max_ignores_nan_and_survives_flat_or_empty_images() -> None:
    window = min_max_window(np.array([np.nan, 10.0, 20.0, np.nan], np.float32))
    assert (window.lower, window.upper) == (10.0, 20.0)
    flat = min_max_window(np.full((4, 4), 7.0))
    assert flat.width > 0 and flat.lower == 7.0
    assert to_uint8_min_max(np.full((2, 2), 7.0)).tolist() == [[0, 0], [0, 0]]
    assert min_max_window(np.array([np.nan], np.float32)).width > 0


def test_slice_default_window() -> None:
    hu = SliceImage(pixels=np.zeros((2, 2), np.float32), hu=True)
    assert hu.default_window() == BONE
    grey = SliceImage(pixels=np.array([[10.0, 90.0]], np.float32))
    assert grey.default_window() == min_max_window(grey.pixels)
    stored = SliceImage(pixels=np.zeros((2, 2), np.float32), hu=True, windows=(Window(50.0, 350.0, "DICOM 1"),))
    assert stored.default_window() == Window(50.0, 350.0, "DICOM 1")
    assert grey.display().tolist() == [[0, 255]]


@pytest.mark.parametrize("bad", [(0.0, 0.0), (40.0, -10.0), (float("nan"), 400.0), (40.0, float("inf"))])
def test_window_needs_finite_centre_and_positive_width(bad: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="window"):
        Window(*bad)


def test_window_label() -> None:
    assert BONE.label() == "bone (C 400 / W 1800)"
    assert Window(-600.0, 1500.0).label() == "C -600 / W 1500"
    assert Window.from_bounds(-1000.0, 3000.0) == Window(1000.0, 4000.0)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("bone", BONE),
        ("BONE", BONE),
        (" soft ", SOFT_TISSUE),
        ("soft-tissue", SOFT_TISSUE),
        ("soft_tissue", SOFT_TISSUE),
        ("min-max", MIN_MAX),
        ("minmax", MIN_MAX),
        ("paper", MIN_MAX),
        ("dicom", DICOM),
        ("40,400", Window(40.0, 400.0)),
        ("-600/1500", Window(-600.0, 1500.0)),
        ("400.5, 1800", Window(400.5, 1800.0)),
    ],
)
def test_parse_window_accepts(spec: str, expected: Window | str) -> None:
    assert parse_window(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", "lung", "40", "40,", "40,0", "40,-400", "a,b", "1,2,3", "nan,400", "40,inf", "bone,400"]
)
def test_parse_window_rejects_junk(spec: str) -> None:
    with pytest.raises(ValueError, match="unknown window"):
        parse_window(spec)
