"""The real-anatomy phantom source end to end, on the bundled label maps only (the T11/T12 labels of the DICOM series,
TotalSegmentator numbering; the L3 cut-out's vertebrae, VerSe numbering): the atlas cut into slabs, the body drawn
around a spine-only map, the rendered slices and their truth, and the study written from them."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from core.annotations.model import LEVELS, Box
from core.errors import StudyError
from core.progress import run
from core.resources import sample_label_maps
from core.study.layout import Study
from core.synthetic.anatomy_study import (
    MIN_VISIBLE,
    NOT_PATIENT_DATA,
    AnatomyOptions,
    AnatomySource,
    atlas_for,
    generate_anatomy_study,
    plan_case,
    render_slice,
    truth,
)
from core.synthetic.atlas import fill_spine, tissue_of
from core.synthetic.preview import TILE_WIDTH
from core.synthetic.slab import TISSUE, TISSUES, AnatomySlab, SlabBody
from core.synthetic.surroundings import around_the_spine, whole_body
from desktop.cli import main
from tests.core.slab_helpers import column_slab

REPO = Path(__file__).resolve().parents[2]
SERIES, CUTOUT = (AnatomySource(path, scheme) for path, scheme in sample_label_maps())


def test_structure_names_map_to_tissues():
    names = {"lung_upper_lobe_left": "lung", "aorta": "blood", "liver": "organ", "rib_left_3": "bone",
             "autochthon_right": "soft", "colon": "bowel", "trachea": "gas", "spinal_cord": "canal",
             "heart": "blood", "sacrum": "bone", "something_new": "organ"}
    assert {name: tissue_of(name) for name in names} == names


@pytest.mark.parametrize("source", [SERIES, CUTOUT], ids=["series", "cutout"])
def test_the_atlas_keeps_the_maps_bodies_and_gives_them_bone(source):
    atlas = atlas_for(source)
    names = {b.name for b in atlas.bodies if b.boxed}
    if source is SERIES:
        assert names == {b.name for b in atlas.bodies} == {"T11", "T12"}
    else:  # L3 whole; L2 and L4 cut off by the cut-out's edge, boxed only where the cut-off rule allows
        assert "L3" in names and names <= {"L2", "L3", "L4"}
    assert not atlas.whole_body  # vertebrae only: the rest of the body is drawn
    for body in atlas.bodies:
        region = tuple(slice(o, o + n) for o, n in zip(body.offset, body.mask.shape, strict=True))
        assert (atlas.tissues[region][body.mask] == TISSUE["cancellous"]).all()
    assert set(np.unique(atlas.tissues)) <= {TISSUE["air"], TISSUE["cancellous"], TISSUE["posterior"]}


@pytest.mark.parametrize("thickness", [1.0, 2.0, 3.0])
def test_a_slab_is_fractions_that_sum_to_one_and_match_the_reformat(thickness):
    atlas = atlas_for(SERIES)
    slab = atlas.slab(atlas.midline, thickness)
    assert slab.fractions.shape[0] == len(TISSUES) and slab.fractions.dtype == np.float32
    np.testing.assert_allclose(slab.fractions.sum(axis=0), 1.0, atol=1e-5)
    assert slab.fractions.min() >= 0 and slab.fractions.max() <= 1 + 1e-6
    # the same planes, averaged one by one through the reformat: what the one-gather cut must equal
    reformat = atlas._reformat
    lo, hi = reformat.slab_range(atlas.midline, thickness)
    expected = np.zeros_like(slab.fractions)
    for x in range(lo, hi):
        plane = reformat.plane_image(atlas.tissues[x], order=0)
        for k in range(len(TISSUES)):
            expected[k] += (plane == k) / (hi - lo)
    np.testing.assert_allclose(slab.fractions, expected, atol=1e-6)
    assert slab.thickness_mm == pytest.approx((hi - lo) * atlas.x_spacing_mm)
    assert {b.name for b in slab.bodies} == {"T12"}  # T11's sagittal section here is under the slab rule
    for body in slab.bodies:  # a body's own fraction is the cancellous bone it covers
        assert (body.fraction <= slab.tissue("cancellous") + 1e-6).all() and body.box() is not None


def test_a_slab_beside_the_bodies_has_none_of_them():
    atlas = atlas_for(SERIES)
    far = 0 if atlas.midline > atlas.tissues.shape[0] / 2 else atlas.tissues.shape[0] - 1
    assert atlas.slab(far, 1.0).bodies == ()


def test_discs_and_canal_fill_only_unlabelled_pixels_between_and_behind_the_bodies():
    column = column_slab()  # rectangles: bodies, discs, canal, posterior elements
    fractions = column.fractions.copy()
    for tissue in ("disc", "canal"):  # as a vertebra-only map has them: unlabelled
        fractions[TISSUE["air"]] += fractions[TISSUE[tissue]]
        fractions[TISSUE[tissue]] = 0
    slab = column.with_changes(fractions=fractions)
    filled = fill_spine(slab, np.random.default_rng(0))
    disc, canal = filled.tissue("disc"), filled.tissue("canal")
    boxes = sorted(b.box() for b in slab.bodies)
    for upper, lower in itertools.pairwise(sorted(boxes, key=lambda b: b[1])):
        gap = disc[int(upper[3]) + 1 : int(lower[1]) - 1, int(upper[0]) + 2 : int(upper[2]) - 2]
        assert gap.size and gap.min() > 0.9  # the disc between two bodies
    assert disc[: int(boxes[0][1]) - 15].max() == 0  # none above the first body
    rows = slice(int(boxes[0][1]), int(boxes[-1][3]))
    behind = np.flatnonzero(canal[rows].max(axis=0) > 0.5)
    assert behind.size and behind.min() >= boxes[0][2] - 1  # behind the bodies' posterior walls
    assert behind.max() < np.flatnonzero(filled.tissue("posterior").max(axis=0) > 0.5).min() + 1  # before the arch
    was_air = slab.tissue("air")
    assert (disc <= was_air + 1e-6).all() and (canal <= was_air + 1e-6).all()
    np.testing.assert_allclose(filled.fractions.sum(axis=0), 1.0, atol=1e-5)


def _spine_only(seed: int = 0) -> AnatomySlab:
    atlas = atlas_for(SERIES)
    return fill_spine(atlas.slab(atlas.midline, 2.0), np.random.default_rng(seed))


@pytest.mark.parametrize("seed", range(4))
def test_the_body_drawn_around_a_spine_only_map(seed):
    slab = _spine_only()
    out = around_the_spine(slab, np.random.default_rng(seed))
    (h, w), (h0, w0) = out.shape, slab.shape
    pixel = slab.pixel_mm
    assert (70 + 35) / pixel - 2 <= w - w0 <= (170 + 70) / pixel + 2  # room in front and behind
    assert 0 <= h - h0 <= 2 * 30 / pixel + 2
    np.testing.assert_allclose(out.fractions.sum(axis=0), 1.0, atol=1e-5)
    for before, after in zip(slab.bodies, out.bodies, strict=True):  # bodies padded, not moved against each other
        (x1, y1, x2, y2), (a1, b1, a2, b2) = before.box(), after.box()
        assert (a2 - a1, b2 - b1) == (x2 - x1, y2 - y1)
    boxes = [b.box() for b in out.bodies]
    front = min(b[0] for b in boxes)
    rows = slice(int(min(b[1] for b in boxes)), int(max(b[3] for b in boxes)))
    in_front = out.fractions[:, rows, int(front - 50 / pixel) : int(front)]  # the front wall is ≥ 60 mm ahead
    assert in_front[TISSUE["air"]].mean() < 0.05  # a body in front of the spine, not air
    assert (in_front[[TISSUE["fat"], TISSUE["soft"], TISSUE["organ"], TISSUE["bowel"], TISSUE["blood"],
                      TISSUE["lung"]]].sum(axis=0) > 0.5).mean() > 0.4
    assert out.fractions[TISSUE["air"], :, 0].mean() > 0.9  # air beyond the skin


def test_whole_body_closes_the_outline_around_the_labelled_organs():
    shape = (200, 160)
    fractions = np.zeros((len(TISSUES), *shape), dtype=np.float32)
    fractions[TISSUE["air"]] = 1
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    for tissue, (cy, cx, r) in {"organ": (60, 50, 18), "lung": (60, 110, 18), "cancellous": (140, 80, 15)}.items():
        disk = (rows - cy) ** 2 + (cols - cx) ** 2 <= r**2
        fractions[:, disk] = 0
        fractions[TISSUE[tissue], disk] = 1
    slab = AnatomySlab(fractions, (SlabBody("L1", fractions[TISSUE["cancellous"]].copy()),), pixel_mm=1.0)
    out = whole_body(slab, np.random.default_rng(3))
    between = out.fractions[:, 58:63, 72:88]  # between the organ and the lung: inside the body now
    assert between[TISSUE["air"]].max() == 0
    assert (between[TISSUE["fat"]] + between[TISSUE["soft"]]).min() == pytest.approx(1)
    assert out.fractions[TISSUE["air"], :3, :3].min() == 1  # the far corner stays outside
    np.testing.assert_array_equal(out.tissue("organ"), slab.tissue("organ"))  # labelled pixels are kept
    np.testing.assert_allclose(out.fractions.sum(axis=0), 1.0, atol=1e-5)


def _options(**changes) -> AnatomyOptions:
    return AnatomyOptions((SERIES, CUTOUT), **{"cases": 2, "slices_per_case": 2, "seed": 7, **changes})


def test_a_seed_renders_the_same_slices_and_another_seed_others():
    first = render_slice(plan_case(_options(), 0), 1)
    again = render_slice(plan_case(_options(), 0), 1)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1] and first[2] == again[2]
    other = render_slice(plan_case(_options(seed=8), 0), 1)
    assert first[0].shape != other[0].shape or not np.array_equal(first[0], other[0])


def test_slab_positions_and_thicknesses_stay_in_their_ranges():
    options = _options(cases=4, slices_per_case=12)
    for index in range(4):
        plan = plan_case(options, index)
        atlas = plan.atlas
        widths = [b.mask.shape[0] for b in atlas.bodies if b.boxed]
        half = 0.35 * float(np.median(widths))
        xs = [x for x, _ in plan.positions]
        assert xs == sorted(xs)
        assert all(atlas.midline - half - 1 <= x <= atlas.midline + half + 1 for x in xs)
        assert all(1.0 <= t <= 3.0 for _, t in plan.positions)
        assert len({round(t, 3) for _, t in plan.positions}) > 3  # drawn, not fixed


def test_the_truth_is_each_visible_body_boxed_tight_with_its_level():
    plan = plan_case(_options(), 0)
    hu, pixel_mm, vertebrae = render_slice(plan, 1)
    assert hu.dtype == np.float32 and np.isfinite(hu).all() and 0.2 < pixel_mm < 2.0
    assert vertebrae and all(v.level in LEVELS and v.source == "truth" for v in vertebrae)
    assert [v.box.y1 for v in vertebrae] == sorted(v.box.y1 for v in vertebrae)  # top to bottom
    for v in vertebrae:
        b = v.box
        assert 0 <= b.x1 < b.x2 <= hu.shape[1] and 0 <= b.y1 < b.y2 <= hu.shape[0]


def test_truth_keeps_bodies_mostly_in_view_and_names_levels_beyond_t1_l5():
    shape = (60, 60)
    fractions = np.zeros((len(TISSUES), *shape), dtype=np.float32)
    fractions[TISSUE["air"]] = 1
    def body(name, y):
        f = np.zeros(shape, np.float32)
        f[y : y + 10, 20:40] = 1
        f[y + 10, 20:40] = 0.6  # a row of partial volume over half: inside the box
        f[y - 1, 20:40] = 0.4  # under half: outside
        return SlabBody(name, f)
    slab = AnatomySlab(fractions, (body("L1", 5), body("L6", 25), body("L2", 45)), pixel_mm=1.0)
    found = truth(slab, [1.0, 1.0, MIN_VISIBLE - 0.01])
    assert [v.level for v in found] == ["L1", None]  # L2 mostly out of view; L6 beyond the known levels
    assert found[0].box == Box(20, 5, 40, 16)
    assert "L6" in found[1].description


def test_the_study_is_written_and_the_same_with_one_or_two_processes(tmp_path):
    options = _options()
    one = run(generate_anatomy_study(tmp_path / "one", options, workers=1))
    two = run(generate_anatomy_study(tmp_path / "two", options, workers=2))
    assert (one.cases, one.slices) == (2, 4) and one.boxes == two.boxes > 0
    study = Study.open(tmp_path / "one")
    assert study.settings.extra["synthetic"]["note"] == NOT_PATIENT_DATA
    assert sorted(study.all_slices()) == [(f"case-000{c}", f"s00{s}") for c in (1, 2) for s in (1, 2)]
    for case, slice_id in study.all_slices():
        for root in ("one", "two"):
            files = tmp_path / root
            assert (files / "images" / case / f"{slice_id}.png").is_file()
        a = pydicom.dcmread(tmp_path / "one" / "images" / case / f"{slice_id}.dcm")
        b = pydicom.dcmread(tmp_path / "two" / "images" / case / f"{slice_id}.dcm")
        np.testing.assert_array_equal(a.pixel_array, b.pixel_array)
        assert "SYNTHETIC" in a.ImageType and a.Modality == "CT"
        mine = study.load_annotation(case, slice_id)
        theirs = Study.open(tmp_path / "two").load_annotation(case, slice_id)
        assert mine.vertebrae == theirs.vertebrae and (mine.image_width, mine.image_height) == (a.Columns, a.Rows)


def test_synth_anatomy_on_the_command_line_and_its_refusals(tmp_path, capsys):
    labels = [f"{SERIES.labels}:totalsegmentator", f"{CUTOUT.labels}:verse"]
    assert main(["synth", str(tmp_path / "s"), "--anatomy", *labels, "--cases", "2", "--slices", "1",
                 "--workers", "1", "--preview"]) == 0
    out = capsys.readouterr().out
    assert "wrote 2 cases, 2 slices" in out and "from real anatomy: 2 label maps" in out
    preview = tmp_path / "s" / "preview.png"
    assert f"preview: {preview}" in out
    with Image.open(preview) as montage:  # both slices, a tile each, side by side
        assert montage.format == "PNG" and montage.width == 2 * TILE_WIDTH
    assert json.loads((tmp_path / "s" / "study.json").read_text())["synthetic"]["generator"] == "anatomy"
    # a map whose numbering cannot be told, an empty file, a missing one: named, nothing written
    empty, unnamed = tmp_path / "empty.nii.gz", tmp_path / "mask.nii.gz"
    empty.write_bytes(b"")
    unnamed.write_bytes(CUTOUT.labels.read_bytes())  # no VerSe file name, no table: the numbering is unknown
    for bad, words in ((str(unnamed), "--label-scheme"), (str(empty), "empty.nii.gz"),
                       (str(tmp_path / "none.nii.gz"), "none.nii.gz")):
        assert main(["synth", str(tmp_path / "bad"), "--anatomy", bad, "--cases", "1", "--workers", "1"]) != 0
        err = capsys.readouterr().err
        assert words in err and "internal error" not in err
        assert not (tmp_path / "bad").exists()  # nothing half-made is left
    with pytest.raises(StudyError, match="at least one label map"):
        AnatomyOptions(())


def test_synth_anatomy_with_worker_processes_in_a_process_of_its_own(tmp_path):
    """As a user runs it, with two forked workers."""
    command = [sys.executable, "-m", "desktop.cli", "synth", str(tmp_path / "s"), "--anatomy",
               f"{SERIES.labels}:totalsegmentator", "--cases", "2", "--slices", "1", "--workers", "2"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "s" / "images").rglob("*.dcm"))) == 2
