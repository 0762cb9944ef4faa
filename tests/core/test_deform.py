"""The anatomy slab's random deformation: every randomisation stays in its range and does what it says (measured on
rectangles), boxes stay tight on the deformed bodies, fractions stay fractions, and a seed fixes the result."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.synthetic.deform import DeformRanges, Warp, deform, draw_warp, warp_slab
from core.synthetic.slab import TISSUE, AnatomySlab, SlabBody
from tests.core.slab_helpers import busy_slab, column_slab, rectangle, rectangle_of

AFFINE_ONLY = replace(DeformRanges(), elastic_mm=(0.0, 0.0), bend_mm=(0.0, 0.0))
NO_ELASTIC = replace(DeformRanges(), elastic_mm=(0.0, 0.0))
NONE = DeformRanges.none()


def forward_box(warp: Warp, rectangle_px, in_shape: tuple[int, int], in_pixel_mm: float) -> np.ndarray | None:
    """The output box (x1, y1, x2, y2) of the part in the field of view of an input rectangle, moved by the
    documented map without its elastic field, from points 0.02 px apart on its outline (the map is one to one, so
    the outline bounds the image); None when none is in the field of view. The bend only shifts x by a function of
    y, so its inverse is exact: ``v = (w_x - bend(w_y), w_y)``."""
    x1, y1, x2, y2 = rectangle_px
    xs, ys = np.arange(x1, x2 + 1e-9, 0.02), np.arange(y1, y2 + 1e-9, 0.02)
    points = np.concatenate([np.stack([xs, np.full_like(xs, y)], axis=1) for y in (y1, y2)]
                            + [np.stack([np.full_like(ys, x), ys], axis=1) for x in (x1, x2)])  # fmt: skip
    half_in, half_out = np.array(in_shape[::-1]) / 2, np.array(warp.shape[::-1]) / 2
    mm = (points - half_in) * in_pixel_mm
    mm[:, 0] -= warp.bend_shift_mm(mm[:, 1])
    out = (mm @ warp.matrix.T - np.array(warp.centre_mm)) / warp.pixel_mm + half_out
    out = out[np.all((out >= 0) & (out <= warp.shape[::-1]), axis=1)]
    return np.concatenate([out.min(axis=0), out.max(axis=0)]) if len(out) else None


def centroid(fraction: np.ndarray) -> np.ndarray:
    rows, cols = np.indices(fraction.shape)
    return np.array([(fraction * (cols + 0.5)).sum(), (fraction * (rows + 0.5)).sum()]) / fraction.sum()


def dots_slab(shape=(240, 240), pixel_mm=1.0, spacing=30, size=4.0) -> AnatomySlab:
    """Small square bodies on a grid, to measure displacements at many places."""
    fractions = np.zeros((16, *shape), dtype=np.float32)
    fractions[TISSUE["soft"]] = 1
    bodies = []
    for y in range(spacing, shape[0] - spacing + 1, spacing):
        for x in range(spacing, shape[1] - spacing + 1, spacing):
            weight = rectangle(shape, x, y, x + size, y + size)
            fractions[TISSUE["soft"]] -= weight
            fractions[TISSUE["cancellous"]] += weight
            bodies.append(SlabBody(f"dot{len(bodies)}", weight))
    return AnatomySlab(fractions, tuple(bodies), pixel_mm)


def test_drawn_parameters_stay_in_their_ranges_and_fill_them():
    ranges, shape, pixel = DeformRanges(), (300, 220), 0.75
    warps = [draw_warp(shape, pixel, np.random.default_rng(seed), ranges) for seed in range(300)]
    size = np.array([np.sqrt(w.scale[0] * w.scale[1]) for w in warps])
    skew = np.array([0.5 * np.log(w.scale[0] / w.scale[1]) for w in warps])
    rotation, shear = np.array([w.rotation_deg for w in warps]), np.array([w.shear for w in warps])
    elastic, smooth = np.array([w.elastic_mm for w in warps]), np.array([w.smoothness_mm for w in warps])
    bend, pixels = np.array([w.bend_mm for w in warps]), np.array([w.pixel_mm for w in warps])
    extent = np.array([np.array(w.shape) * w.pixel_mm / (np.array(shape) * pixel) for w in warps])
    for values, low, high in [
        (size, 0.85, 1.15), (skew, -0.05, 0.05), (rotation, -12, 12), (shear, -0.08, 0.08), (elastic, 0, 6),
        (smooth, 20, 60), (bend, -15, 15), (pixels, 0.6, 1.0),
    ]:  # fmt: skip
        assert low <= values.min() and values.max() <= high
        assert values.min() < low + 0.1 * (high - low) and values.max() > high - 0.1 * (high - low)  # it varies
    assert {w.bends for w in warps} == {1, 2}
    tolerance = 1.0 / (np.array(shape) * pixel).min()  # a pixel of rounding
    assert extent.min() >= 0.7 - tolerance and extent.max() <= 1.0 + tolerance
    assert extent.min() < 0.72 and extent.max() > 0.98
    input_mm = np.array(shape[::-1]) * pixel  # (x, y)
    for w in warps:  # the field of view's centre keeps it inside the input's extent
        output_mm = np.array(w.shape[::-1]) * w.pixel_mm
        assert np.all(np.abs(w.centre_mm) <= (input_mm - output_mm) / 2 + w.pixel_mm)


@pytest.mark.parametrize("seed", range(6))
def test_measured_scale_and_rotation_of_a_rectangle_match_the_drawn_ones(seed):
    shape, pixel = (240, 240), 0.8
    fractions = np.zeros((16, *shape), dtype=np.float32)
    weight = rectangle(shape, 70.3, 100.6, 170.3, 140.6)  # 100 x 40 px, centred
    fractions[TISSUE["soft"]], fractions[TISSUE["cancellous"]] = 1 - weight, weight
    slab = AnatomySlab(fractions, (SlabBody("L1", weight),), pixel)
    ranges = replace(AFFINE_ONLY, shear=0.0, field_of_view=(1.0, 1.0))
    warp = draw_warp(shape, pixel, np.random.default_rng(seed), ranges)
    body = warp_slab(slab, warp).slab.bodies[0].fraction
    rows, cols = np.indices(body.shape)
    centre = centroid(body)
    dx, dy = cols + 0.5 - centre[0], rows + 0.5 - centre[1]
    covariance = np.array([[(body * dx * dx).sum(), (body * dx * dy).sum()], [0, (body * dy * dy).sum()]])
    covariance[1, 0] = covariance[0, 1]
    values, vectors = np.linalg.eigh(covariance / body.sum())
    long, short = np.sqrt(12 * values[::-1]) * warp.pixel_mm / pixel  # side lengths in input pixels
    angle = np.rad2deg(np.arctan2(vectors[1, 1], vectors[0, 1]))
    angle = (angle + 90) % 180 - 90
    assert long / 100 == pytest.approx(warp.scale[0], abs=0.02)
    assert short / 40 == pytest.approx(warp.scale[1], abs=0.03)
    assert angle == pytest.approx(warp.rotation_deg, abs=0.5)


@pytest.mark.parametrize("seed", range(10))
def test_boxes_stay_tight_on_deformed_bodies(seed):
    slab = column_slab()  # scale, rotation, shear, bend, field of view and pixel size, all at once
    warped = warp_slab(slab, warp := draw_warp(slab.shape, slab.pixel_mm, np.random.default_rng(seed), NO_ELASTIC))
    for i, body in enumerate(warped.slab.bodies):
        expected = forward_box(warp, rectangle_of(i), slab.shape, slab.pixel_mm)
        box = body.box()
        if expected is None or expected[2] - expected[0] < 2 or expected[3] - expected[1] < 2:  # (nearly) left
            continue
        assert box is not None
        assert np.abs(np.array(box) - expected).max() <= 1.0, (i, box, expected)
        low = np.floor(expected[:2]).astype(int) - 1
        high = np.ceil(expected[2:]).astype(int) + 1
        outside = body.fraction.copy()
        outside[max(low[1], 0) : high[1], max(low[0], 0) : high[0]] = 0
        assert outside.max() == 0  # nothing of the body outside its box (a pixel of partial volume)


def test_visible_share_of_bodies_cut_by_the_field_of_view():
    slab = column_slab()
    identity = draw_warp(slab.shape, slab.pixel_mm, np.random.default_rng(0), NONE)
    _, y1, _, y2 = rectangle_of(2)
    cut = y1 + 0.3 * (y2 - y1)  # keep the rows above 30 % into body 2
    rows = round(cut)
    centre_y = (rows / 2 - slab.shape[0] / 2) * slab.pixel_mm
    warped = warp_slab(slab, replace(identity, shape=(rows, slab.shape[1]), centre_mm=(0.0, centre_y)))
    assert warped.visible[:2] == pytest.approx((1.0, 1.0))
    assert warped.visible[2] == pytest.approx((rows - y1) / (y2 - y1), abs=0.01)
    assert warped.visible[3:] == (0.0, 0.0)
    assert warped.slab.bodies[4].box() is None and warped.slab.bodies[4].name == "L5"
    assert warped.slab.bodies[2].box() == (80.0, 130.0, 128.0, float(rows))


@pytest.mark.parametrize("seed", range(4))
def test_elastic_displacement_is_bounded_by_its_amplitude_and_smooth(seed):
    slab = dots_slab()
    ranges = replace(NONE, elastic_mm=(2.0, 6.0), smoothness_mm=(20.0, 60.0))
    warp = draw_warp(slab.shape, slab.pixel_mm, np.random.default_rng(seed), ranges)
    moved = warp_slab(slab, warp).slab
    before = np.array([centroid(b.fraction) for b in slab.bodies])
    after = np.array([centroid(b.fraction) for b in moved.bodies])
    shift = np.linalg.norm(after - before, axis=1) * slab.pixel_mm
    assert shift.max() <= warp.elastic_mm + 0.3
    assert shift.max() >= 0.25 * warp.elastic_mm  # it moved things
    grid = (after - before).reshape(7, 7, 2)  # dots 30 mm apart: neighbours move alike, the field is smooth
    assert np.abs(np.diff(grid, axis=0)).max() < warp.elastic_mm * 30 / warp.smoothness_mm * 1.5 + 0.3


@pytest.mark.parametrize("seed", range(4))
def test_bend_shifts_rows_horizontally_by_its_documented_sine(seed):
    slab = dots_slab()
    ranges = replace(NONE, bend_mm=(5.0, 15.0), bends=(1, 2))
    warp = draw_warp(slab.shape, slab.pixel_mm, np.random.default_rng(seed), ranges)
    moved = warp_slab(slab, warp).slab
    before = np.array([centroid(b.fraction) for b in slab.bodies])
    after = np.array([centroid(b.fraction) for b in moved.bodies])
    y_mm = (before[:, 1] - slab.shape[0] / 2) * slab.pixel_mm
    expected = -warp.bend_shift_mm(y_mm)  # content moves against the backward map
    assert np.abs((after[:, 0] - before[:, 0]) * slab.pixel_mm - expected).max() < 0.1
    assert np.abs(after[:, 1] - before[:, 1]).max() < 1e-3  # only horizontally
    assert np.abs(expected).max() <= abs(warp.bend_mm) and np.ptp(expected) > 0.5 * abs(warp.bend_mm)
    assert np.abs(warp.bend_shift_mm(np.linspace(-500, 500, 2001))).max() <= abs(warp.bend_mm)


@pytest.mark.parametrize("seed", range(5))
def test_fractions_stay_fractions_that_sum_to_one(seed):
    slab = busy_slab((256, 256), bodies=10)
    out = deform(slab, np.random.default_rng(seed))
    assert out.fractions.dtype == np.float32
    assert out.fractions.min() >= 0 and out.fractions.max() <= 1 + 1e-6
    np.testing.assert_allclose(out.fractions.sum(axis=0), 1.0, atol=2e-6)
    for body in out.bodies:
        assert body.fraction.shape == out.shape and body.fraction.min() >= 0 and body.fraction.max() <= 1 + 1e-6
    assert out.fractions.shape[1:] == out.shape and out.pixel_mm != slab.pixel_mm


@pytest.mark.parametrize("seed", range(3))
def test_bodies_move_with_their_tissue(seed):
    slab = column_slab()  # each body is exactly the cancellous bone there
    strong = replace(DeformRanges(), elastic_mm=(6.0, 6.0), bend_mm=(15.0, 15.0))
    out = deform(slab, np.random.default_rng(seed), strong)
    bodies = sum(b.fraction for b in out.bodies)
    np.testing.assert_allclose(bodies, out.tissue("cancellous"), atol=1e-5)


def test_outside_the_input_is_air():
    slab = column_slab()
    out = deform(slab, np.random.default_rng(1), replace(NONE, scale=(0.8, 0.8)))  # shrunk about the centre
    frame = (1 - 0.8) / 2 * np.array(slab.shape)  # rows, cols of air left by the input's edge
    air = out.tissue("air")
    assert air[: int(frame[0])].min() == 1 and air[-int(frame[0]) :].min() == 1 and air[:, : int(frame[1])].min() == 1
    fat_starts = 110 - (110 - 6.5) * 0.8  # the fat's edge, x = 6.5 in the input, moved toward the centre
    rows = slice(int(frame[0]) + 1, -int(frame[0]) - 1)
    assert out.tissue("fat")[rows, int(fat_starts) + 2].min() > 0.99


def test_identity_when_the_ranges_are_zero():
    slab = busy_slab((200, 180), bodies=6)
    out = deform(slab, np.random.default_rng(3), NONE)
    assert out.shape == slab.shape and out.pixel_mm == slab.pixel_mm
    np.testing.assert_allclose(out.fractions, slab.fractions, atol=1e-5)
    for a, b in zip(out.bodies, slab.bodies, strict=True):
        np.testing.assert_allclose(a.fraction, b.fraction, atol=1e-5)
        assert a.box() == b.box() and a.name == b.name


def test_same_seed_same_slab_other_seed_other_slab():
    slab = busy_slab((200, 180), bodies=6)
    a, b = deform(slab, np.random.default_rng(7)), deform(slab, np.random.default_rng(7))
    c = deform(slab, np.random.default_rng(8))
    assert np.array_equal(a.fractions, b.fractions) and a.notes == b.notes
    assert all(np.array_equal(x.fraction, y.fraction) for x, y in zip(a.bodies, b.bodies, strict=True))
    assert a.shape != c.shape or not np.array_equal(a.fractions, c.fractions)
