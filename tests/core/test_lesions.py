"""Diseases on the anatomy slab's bodies: compression loses the height it says where it says (and grades it by
Genant), the discs fill the room, clefts and cement stay inside the body, a Schmorl's node breaks an endplate and
keeps the height; fractions stay fractions, and a seed fixes every result."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.annotations.model import Disease
from core.synthetic.anatomy import Deformity
from core.synthetic.body_frame import body_frame
from core.synthetic.deform import DeformRanges, deform, draw_warp, warp_slab
from core.synthetic.lesions import (
    CementRanges,
    CleftRanges,
    CompressionRanges,
    NotchRanges,
    cement,
    cleft,
    compress,
    endplate_notch,
    genant_grade,
    make_lesions,
)
from core.synthetic.slab import AnatomySlab
from tests.core.slab_helpers import column_slab, rectangle_of

SLAB = column_slab()  # bodies 48 px deep, 40 px tall, 10 px discs, 0.75 mm pixels
X1, Y1, X2, Y2 = rectangle_of(2)  # the body the tests change
HEIGHT = Y2 - Y1


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_fractions(slab: AnatomySlab) -> None:
    assert slab.fractions.min() >= -1e-6 and slab.fractions.max() <= 1 + 1e-6
    np.testing.assert_allclose(slab.fractions.sum(axis=0), 1.0, atol=1e-5)


def column_heights(fraction: np.ndarray) -> np.ndarray:
    """Rows at least half body, per column of the body's rectangle (those fully inside it)."""
    return (fraction[:, int(np.ceil(X1)) : int(np.floor(X2))] >= 0.5).sum(axis=0)


def depth_position(columns: np.ndarray) -> np.ndarray:
    """t of column centres: 0 at the posterior wall (right), 1 at the anterior wall (left)."""
    return 1 - (columns + 0.5 - X1) / (X2 - X1)


def added(before: AnatomySlab, after: AnatomySlab, tissue: str) -> np.ndarray:
    return np.clip(after.tissue(tissue) - before.tissue(tissue), 0, None)


def test_genant_grades():
    grades = [genant_grade(loss) for loss in (0.0, 0.19, 0.2, 0.24, 0.25, 0.33, 0.4, 0.41, 0.6)]
    assert grades == [0, 0, 1, 1, 2, 2, 2, 3, 3]


@pytest.mark.parametrize("kind", ["wedge", "biconcave", "crush"])
@pytest.mark.parametrize("amount", [0.2, 0.3, 0.45, 0.6])
def test_compression_loses_the_height_its_profile_says(kind, amount):
    out = compress(SLAB, 2, kind, amount, rng())
    heights = column_heights(out.bodies[2].fraction)
    columns = np.arange(int(np.ceil(X1)), int(np.floor(X2)))
    expected = 1 - Deformity.of(kind, amount).height_fraction(depth_position(columns))
    measured = 1 - heights / HEIGHT
    assert np.abs(measured - expected).max() <= 1.5 / HEIGHT
    anterior, middle = measured[:3].mean(), measured[len(measured) // 2]
    if kind == "wedge":  # anterior height loss
        assert anterior == pytest.approx(amount, abs=0.05) and measured[-1] < 0.15 * amount + 0.04
    elif kind == "biconcave":  # central endplate depression
        assert middle == pytest.approx(amount, abs=0.04) and anterior < 0.35 * amount + 0.04
    else:  # the whole body
        assert measured.min() >= 0.85 * amount - 0.04 and middle == pytest.approx(amount, abs=0.04)
    box = out.bodies[2].box()
    assert box[0] == pytest.approx(X1, abs=1) and box[2] == pytest.approx(X2, abs=1)  # the depth is kept
    assert (box[3] - box[1]) == heights.max()  # the box stays tight on the collapsed body
    assert_fractions(out)


@pytest.mark.parametrize(
    ("amount", "disease", "grade", "diseases"),
    [
        (0.15, Disease.OVCF, 0, set()),  # a deformity, not a fracture
        (0.22, Disease.OVCF, 1, {Disease.OVCF}),
        (0.3, Disease.OF, 2, {Disease.OF}),
        (0.5, Disease.OVCF, 3, {Disease.OVCF}),
        (0.5, None, 3, set()),
    ],
)
def test_compression_is_graded_by_genant(amount, disease, grade, diseases):
    out = compress(SLAB, 2, "wedge", amount, rng(), disease)
    assert out.bodies[2].grade == grade and out.bodies[2].diseases == diseases
    assert all(b.grade == 0 and not b.diseases for i, b in enumerate(out.bodies) if i != 2)


def test_the_body_moves_with_its_tissue_and_the_discs_fill_the_room():
    out = compress(SLAB, 2, "crush", 0.5, rng(), None)
    bodies = sum(b.fraction for b in out.bodies)
    np.testing.assert_allclose(bodies, out.tissue("cancellous"), atol=1e-5)  # each body is still its bone
    vacated = 0
    for column in range(int(X1) + 3, int(X2) - 3):
        rows = np.flatnonzero(out.bodies[2].fraction[:, column] >= 0.5)
        room = np.r_[int(np.ceil(Y1)) : rows[0] - 3, rows[-1] + 4 : int(Y2)]  # less the edges, stretched
        assert out.tissue("disc")[room, column].min() > 0.99  # disc where bone was
        vacated += room.size
    assert vacated >= (int(X2) - int(X1) - 6) * (0.85 * 0.5 * HEIGHT - 8)
    for i in (0, 1, 3, 4):  # the neighbours stay as they were
        np.testing.assert_array_equal(out.bodies[i].fraction, SLAB.bodies[i].fraction)
    assert_fractions(out)


def test_a_body_at_the_image_edge_compresses_with_air_beyond_it():
    slab = column_slab(top=2.5)  # the first body touches the top of the image, with no disc above it
    out = compress(slab, 0, "crush", 0.5, rng(), None)
    assert_fractions(out)
    assert out.bodies[0].box()[1] > 10 and out.tissue("air")[0, int(X1) + 5 : int(X2) - 5].max() > 0.9


def test_old_fractures_get_sclerotic_endplates_and_fresh_ones_an_impaction_band():
    ranges_old = replace(CompressionRanges(), sclerosis_mm=(2.0, 2.0))
    old = compress(SLAB, 2, "crush", 0.3, rng(), Disease.OF, ranges_old)
    box, bone = old.bodies[2].box(), old.tissue("bone")
    rows = np.flatnonzero(bone[:, int(X1) + 5] > 0.2)
    band = 2.0 / SLAB.pixel_mm  # px
    assert rows.size and np.all((rows < box[1] + band + 1) | (rows >= box[3] - band - 1))
    assert rows.min() >= box[1] - 1 and rows.max() <= box[3]  # inside the body, at both endplates
    assert (rows < box[1] + band + 1).any() and (rows >= box[3] - band - 1).any()
    assert bone[: int(box[1]) - 1].max() == 0 and bone[int(box[3]) + 1 :].max() == 0
    fresh = compress(SLAB, 2, "crush", 0.3, rng(), Disease.OVCF, replace(CompressionRanges(), impaction_probability=1))
    rows = np.flatnonzero(fresh.tissue("bone")[:, int(X1) + 5] > 0.05)
    top = fresh.bodies[2].box()[1]
    assert rows.size and rows.min() >= top - 1 and rows.max() <= top + 6.0 / SLAB.pixel_mm + 1  # under the top
    assert_fractions(old)
    assert_fractions(fresh)


def test_the_body_frame_follows_the_spine():
    warp = draw_warp(SLAB.shape, SLAB.pixel_mm, rng(4), replace(DeformRanges.none(), rotation_deg=15.0))
    tilted = warp_slab(SLAB, warp).slab
    assert abs(warp.rotation_deg) > 5
    # turned clockwise on the screen, the inferior end swings anterior: a negative tilt
    assert np.rad2deg(body_frame(tilted, 2).angle) == pytest.approx(-warp.rotation_deg, abs=0.5)  # neighbours
    alone = tilted.with_changes(bodies=tilted.bodies[2:3])
    assert np.rad2deg(body_frame(alone, 0).angle) == pytest.approx(-warp.rotation_deg, abs=1.0)  # its own shape
    frame = body_frame(tilted, 2)
    assert frame.height == pytest.approx(HEIGHT * warp.scale[1], abs=1.5)
    assert frame.depth == pytest.approx((X2 - X1) * warp.scale[0], abs=1.5)


def test_a_tilted_body_collapses_along_its_own_axis():
    ranges = replace(DeformRanges.none(), rotation_deg=15.0)
    tilted = deform(SLAB, rng(4), ranges)
    before = body_frame(tilted, 2)
    out = compress(tilted, 2, "crush", 0.4, rng())
    after = body_frame(out, 2)
    assert after.height / before.height == pytest.approx(1 - 0.85 * 0.4, abs=0.05)
    assert after.depth == pytest.approx(before.depth, abs=1.5) and after.angle == pytest.approx(before.angle, abs=0.05)
    assert_fractions(out)


def test_a_cleft_of_gas_lies_inside_the_body():
    ranges = replace(CleftRanges(), collapse_probability=0.0, gas_probability=1.0)
    for seed in range(6):
        out = cleft(SLAB, 2, rng(seed), ranges)
        gas, body = added(SLAB, out, "gas"), SLAB.bodies[2].fraction
        assert gas.sum() > 10 and gas[body < 0.5].max() == 0  # inside its pixels that are more than half body
        np.testing.assert_array_equal(out.bodies[2].fraction, body)  # the body's extent stays
        assert out.bodies[2].diseases == {Disease.KD}
        rows, cols = np.nonzero(gas > 0.5)
        t = depth_position(cols.mean())
        assert 0.3 <= t <= 0.7 and rows.mean() < (Y1 + Y2) / 2 + 0.1 * HEIGHT  # the documented position
        assert_fractions(out)


def test_a_cleft_may_hold_fluid_and_collapses_a_body_that_stood():
    ranges = replace(CleftRanges(), collapse_probability=1.0, gas_probability=0.0)
    out = cleft(SLAB, 2, rng(1), ranges)
    assert added(SLAB, out, "gas").max() == 0 and added(SLAB, out, "canal").sum() > 10
    assert out.bodies[2].grade >= 2 and out.bodies[2].diseases == {Disease.KD}  # collapsed, not labelled OVCF
    fluid = added(SLAB, out, "canal")
    assert fluid[out.bodies[2].fraction < 0.5].max() == 0


def test_cement_fills_part_of_the_body():
    for seed in range(6):
        out = cement(SLAB, 2, rng(seed), replace(CementRanges(), leak_probability=0.0))
        filled, body = added(SLAB, out, "cement"), SLAB.bodies[2].fraction
        assert filled[body < 0.5].max() == 0
        assert 0.08 < filled.sum() / body.sum() < 0.9  # part of the body
        assert out.bodies[2].diseases == {Disease.PS} and out.bodies[2].box() == SLAB.bodies[2].box()
        assert_fractions(out)


@pytest.mark.parametrize("share", [0.0, 1.0])  # into a vein, into the disc
def test_cement_may_leak_out_of_the_body_nearby(share):
    ranges = replace(CementRanges(), leak_probability=1.0, disc_leak_share=share)
    for seed in range(4):
        out = cement(SLAB, 2, rng(seed), ranges)
        outside = added(SLAB, out, "cement") * (SLAB.bodies[2].fraction < 0.5)
        assert outside.sum() > 3
        rows, cols = np.nonzero(outside > 0)
        reach = (15 + 2) / SLAB.pixel_mm
        assert rows.min() >= Y1 - reach and rows.max() <= Y2 + reach
        assert cols.min() >= X1 - reach and cols.max() <= X2 + reach
        if share == 1.0:  # through an endplate, into the disc
            assert ((rows < Y1) | (rows >= Y2)).mean() > 0.3 and cols.min() >= X1 - 1 and cols.max() <= X2 + 1
        assert_fractions(out)


@pytest.mark.parametrize("superior", [True, False])
def test_a_schmorls_node_breaks_an_endplate_and_keeps_the_height(superior):
    ranges = replace(NotchRanges(), superior_probability=1.0 if superior else 0.0)
    widths = []
    for seed in range(8):
        out = endplate_notch(SLAB, 2, rng(seed), ranges)
        np.testing.assert_array_equal(out.bodies[2].fraction, SLAB.bodies[2].fraction)  # the height is kept
        disc = added(SLAB, out, "disc") * (SLAB.bodies[2].fraction >= 0.5)
        rows = np.nonzero(disc > 0.5)[0]
        assert rows.size
        if superior:  # it touches the endplate
            assert rows.min() <= np.ceil(Y1) and rows.max() < (Y1 + Y2) / 2
        else:
            assert rows.max() >= np.floor(Y2) - 1 and rows.min() > (Y1 + Y2) / 2
        across = np.nonzero(disc.max(axis=0) > 0.1)[0]  # its width, partial volume at the endplate included
        widths.append((across.max() - across.min() + 1) * SLAB.pixel_mm)
        rim = added(SLAB, out, "bone")
        assert rim.sum() > 1 and rim[SLAB.bodies[2].fraction == 0].max() == 0  # a sclerotic rim inside the body
        assert out.bodies[2].diseases == {Disease.SN}
        assert_fractions(out)
    assert min(widths) >= 3 - 2 * SLAB.pixel_mm and max(widths) <= 10 + SLAB.pixel_mm


@pytest.mark.parametrize(
    "change",
    [
        lambda s, r: compress(s, 2, "wedge", 0.4, r, Disease.OF),
        lambda s, r: cleft(s, 2, r),
        lambda s, r: cement(s, 2, r, replace(CementRanges(), leak_probability=0.5)),
        lambda s, r: endplate_notch(s, 2, r),
    ],
    ids=["compress", "cleft", "cement", "notch"],
)
def test_same_seed_same_lesion_other_seed_other_lesion(change):
    a, b, c = change(SLAB, rng(5)), change(SLAB, rng(5)), change(SLAB, rng(6))
    assert np.array_equal(a.fractions, b.fractions)
    assert all(np.array_equal(x.fraction, y.fraction) for x, y in zip(a.bodies, b.bodies, strict=True))
    assert not np.array_equal(a.fractions, c.fractions)
    assert np.array_equal(SLAB.fractions, column_slab().fractions)  # the input is left as it was


def test_lesions_on_a_deformed_slab_keep_fractions():
    slab = deform(SLAB, rng(2), replace(DeformRanges(), field_of_view=(1.0, 1.0)))
    out = compress(slab, 1, "biconcave", 0.35, rng(1), Disease.OF)
    out = cleft(out, 2, rng(2))
    out = cement(out, 3, rng(3), replace(CementRanges(), leak_probability=1.0))
    out = endplate_notch(out, 0, rng(4))
    assert_fractions(out)
    assert [sorted(b.diseases) for b in out.bodies[:4]] == [[Disease.SN], [Disease.OF], [Disease.KD], [Disease.PS]]


PLAN = {
    "L1": frozenset({Disease.OVCF}),
    "L2": frozenset({Disease.KD, Disease.OVCF}),
    "L3": frozenset({Disease.PS, Disease.OF}),
    "L4": frozenset({Disease.SN}),
    "T12": frozenset({Disease.OF}),  # not on the slab
}


def test_make_lesions_gives_each_body_its_planned_diseases():
    out = make_lesions(SLAB, PLAN, np.random.SeedSequence(9))
    assert [b.diseases for b in out.bodies] == [PLAN["L1"], PLAN["L2"], PLAN["L3"], PLAN["L4"], frozenset()]
    assert [b.grade >= 1 for b in out.bodies] == [True, True, True, False, False]
    assert added(SLAB, out, "cement").sum() > 10 and added(SLAB, out, "gas").sum() + added(SLAB, out, "canal").sum() > 5
    assert_fractions(out)
    again = make_lesions(SLAB, PLAN, np.random.SeedSequence(9))
    assert np.array_equal(out.fractions, again.fractions)
    other = make_lesions(SLAB, PLAN, np.random.SeedSequence(10))
    assert not np.array_equal(out.fractions, other.fractions)


def test_a_body_draws_the_same_lesion_whatever_else_is_planned():
    alone = make_lesions(SLAB, {"L3": PLAN["L3"]}, 9)
    together = make_lesions(SLAB, PLAN, 9)  # the neighbours' collapse tilts L3's frame a little, no more
    assert alone.bodies[2].grade == together.bodies[2].grade
    heights = column_heights(alone.bodies[2].fraction), column_heights(together.bodies[2].fraction)
    assert np.abs(heights[0].astype(int) - heights[1]).max() <= 1
    cemented = added(SLAB, alone, "cement").sum(), added(SLAB, together, "cement").sum()
    assert cemented[0] == pytest.approx(cemented[1], rel=0.03)
