"""The synthetic spine CT phantom: prevalences, tight boxes, realistic HU, determinism, readers, sites, and output
that loads through core.imaging, the LabelMe reader and labelme itself."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from core.annotations.geometry import iom_matrix
from core.annotations.labelme_io import read_labelme
from core.annotations.model import Disease
from core.errors import StudyError
from core.imaging.dicom import read_dicom
from core.imaging.raster import read_raster
from core.progress import run
from core.study.layout import Study
from core.synthetic.anatomy import SPINE_LEVELS
from core.synthetic.case import SITES
from core.synthetic.diseases import PAPER_PREVALENCE, systematic_sample
from core.synthetic.generate import SynthOptions, generate_study, plan_study
from core.synthetic.render import CaseRenderer
from tests.oracle.labelme_env import ensure_oracle

#: Over 500+ slices (about 6,000 boxes), each disease's per-box prevalence is within this many percentage points of
#: the requested one. The allocation is stratified over the whole study, so the rest is rounding and the varying
#: number of boxes per vertebra (focal lesions show in some slices only).
PREVALENCE_TOLERANCE = {"OVCF": 0.8, "OF": 0.6, "SN": 0.35, "KD": 0.3, "PS": 0.5}
DISAGREEMENT_TOLERANCE = 0.012


@pytest.fixture(scope="module")
def big_plan():
    plan = plan_study(SynthOptions(cases=55, seed=11))
    assert sum(len(p.truth) for p in plan.cases) >= 500
    return plan


@pytest.fixture(scope="module")
def small_study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "study"
    run(generate_study(out, SynthOptions(cases=2, seed=5, slices_per_case=4, preview=True)))
    return out


def test_prevalence_matches_the_paper_over_500_slices(big_plan):
    measured = big_plan.prevalence()
    for disease, wanted in PAPER_PREVALENCE.items():
        assert abs(measured[disease.value] - wanted) * 100 <= PREVALENCE_TOLERANCE[disease.value], (disease, measured)
    assert measured["NORMAL"] > 0.7


def test_prevalence_can_be_changed():
    asked = {Disease.OVCF: 0.20, Disease.OF: 0.08, Disease.SN: 0.05, Disease.KD: 0.02, Disease.PS: 0.05}
    measured = plan_study(SynthOptions(cases=55, seed=3, prevalence=asked)).prevalence()
    for disease, wanted in asked.items():
        assert abs(measured[disease.value] - wanted) * 100 <= 1.5 * PREVALENCE_TOLERANCE[disease.value], measured


def test_diseases_co_occur(big_plan):
    sets = {box.diseases for box in big_plan.truth_boxes()}
    assert frozenset({Disease.PS, Disease.OF}) in sets
    assert frozenset({Disease.KD, Disease.OVCF}) in sets


def test_each_slice_shows_8_to_14_vertebrae_from_t1_to_s1(big_plan):
    for planned in big_plan.cases:
        assert 8 <= planned.case.skeleton.count <= 14
        for boxes in planned.truth.values():
            assert len(boxes) <= 14
            levels = [b.level for b in boxes]
            assert levels == sorted(levels, key=SPINE_LEVELS.index)  # top to bottom, T1 … S1
        mid = planned.truth[len(planned.truth) // 2]
        assert len(mid) >= 8  # the mid-sagittal slice shows every body of the window
    sizes = np.array([(p.case.width_px, p.case.height_px) for p in big_plan.cases])
    assert 600 < sizes[:, 0].mean() < 900 and 450 < sizes[:, 1].mean() < 800  # around the paper's 743 x 619


def test_truth_boxes_are_tight_to_the_rendered_bodies():
    plan = plan_study(SynthOptions(cases=3, seed=7, slices_per_case=5))
    checked = 0
    for planned in plan.cases:
        case = planned.case
        renderer = CaseRenderer(case, np.random.default_rng(0))
        index_of = {shape.level: i for i, shape in enumerate(case.spine.vertebrae, start=1)}
        for number, x_mm in enumerate(case.offsets_mm, start=1):
            rendered = renderer.render(x_mm, number=number, labels=True)
            for truth in rendered.boxes:
                rows, cols = np.nonzero(rendered.labels == index_of[truth.level])
                mask_box = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
                assert np.allclose(mask_box, truth.box, atol=1.5), (truth.level, mask_box, truth.box)
                checked += 1
    assert checked > 100


def test_hu_ranges_are_realistic_per_tissue():
    plan = plan_study(SynthOptions(cases=6, seed=2, slices_per_case=3))
    for planned in plan.cases:
        case = planned.case
        rendered = CaseRenderer(case, np.random.default_rng(1)).render(case.offsets_mm[1], number=2, labels=True)
        cemented = [
            i
            for i, shape in enumerate(case.spine.vertebrae, start=1)
            if Disease.PS in case.disease_of(shape.level).diseases
        ]
        hu, bodies = rendered.hu, (rendered.labels > 0) & ~np.isin(rendered.labels, cemented)
        assert np.percentile(hu, 0.5) < -950  # air around the patient
        assert -130 < np.median(hu[(hu > -160) & (hu < -40)]) < -60  # fat
        assert 40 < np.median(hu[bodies]) < 320  # osteoporotic to normal cancellous bone
        assert 400 < np.percentile(hu[bodies], 98) < 1500  # the cortical shell and endplates
        assert hu.max() <= 3071 and hu.min() >= -1024


def test_cement_and_clefts_have_their_densities():
    asked = {Disease.OVCF: 0.0, Disease.OF: 0.0, Disease.SN: 0.0, Disease.KD: 0.3, Disease.PS: 0.3}
    plan = plan_study(SynthOptions(cases=2, seed=4, slices_per_case=3, prevalence=asked))
    cement, cleft = [], []
    for planned in plan.cases:
        rendered = CaseRenderer(planned.case, np.random.default_rng(1)).render(planned.case.offsets_mm[1], number=2)
        for box in rendered.boxes:
            x1, y1, x2, y2 = (int(v) for v in box.box)
            patch = rendered.hu[y1:y2, x1:x2]
            if Disease.PS in box.diseases:
                cement.append(patch.max())
            if Disease.KD in box.diseases:
                cleft.append(patch.min())
    assert cement and all(1400 <= v <= 3100 for v in cement)
    lesions = [d for p in plan.cases for d in p.case.diseases.values() for d in d.lesions if d.kind == Disease.KD]
    gas = any(lesion.gas for lesion in lesions)
    assert cleft and (not gas or min(cleft) < -500)


@pytest.mark.slow
def test_generation_is_deterministic(tmp_path):
    options = SynthOptions(cases=2, seed=9, slices_per_case=2)
    run(generate_study(tmp_path / "a", options))
    run(generate_study(tmp_path / "b", options, workers=2))
    run(generate_study(tmp_path / "c", SynthOptions(cases=2, seed=10, slices_per_case=2)))

    def digest(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert a == b  # same seed: the same bytes, whatever the number of processes
    # per slice: .dcm, .png, consensus, three readers; plus study.json and the study's (empty) write-lock file
    assert len(a) == 2 * 2 * 6 + 2 and a[".lock"] == hashlib.sha256(b"").hexdigest()
    assert a.keys() == c.keys() and a != c


@pytest.mark.parametrize("asked", [0.0, 0.08, 0.2])
def test_reader_disagreement_matches_its_parameter(asked):
    plan = plan_study(SynthOptions(cases=55, seed=21, disagreement=asked))
    measured = plan.disagreement()
    if asked == 0.0:
        assert measured == 0.0
    else:
        assert abs(measured - asked) <= DISAGREEMENT_TOLERANCE, measured


def test_readers_make_realistic_mistakes(big_plan):
    truth = {(i, b.level, n): b for i, p in enumerate(big_plan.cases) for n, bs in p.truth.items() for b in bs}
    omitted = sn_missed = of_for_ovcf = 0
    for calls in big_plan.readers:
        for key, call in calls.items():
            t = truth[key]
            if call.box is None:
                omitted += 1
                continue
            assert iom_matrix(np.array([call.box]), np.array([t.box]))[0, 0] > 0.9  # jitter keeps the hit
            sn_missed += Disease.SN in t.diseases and Disease.SN not in call.diseases
            of_for_ovcf += Disease.OVCF in t.diseases and Disease.OF in call.diseases and Disease.OF not in t.diseases
    sn_boxes = sum(Disease.SN in t.diseases for t in truth.values()) * 3
    ovcf_boxes = sum(Disease.OVCF in t.diseases for t in truth.values()) * 3
    assert omitted > 0 and of_for_ovcf > 0
    assert sn_missed / sn_boxes > of_for_ovcf / ovcf_boxes  # the subtle SN is missed most often


def test_site_b_is_another_scanner():
    a = plan_study(SynthOptions(cases=3, seed=1, site="A", slices_per_case=2))
    b = plan_study(SynthOptions(cases=3, seed=1, site="B", slices_per_case=2))
    for planned in b.cases:
        low, high = SITES["B"].spacing_mm
        assert low <= planned.case.spacing_mm <= high

    def fat_and_noise(plan):
        values, noise = [], []
        for planned in plan.cases:
            hu = CaseRenderer(planned.case, np.random.default_rng(0)).render(planned.case.offsets_mm[0]).hu
            fat = (hu > -200) & (hu < 0)
            values.append(np.median(hu[fat]))
            both = fat[:, 1:] & fat[:, :-1]  # horizontal neighbours, both in fat: their difference is noise
            noise.append(np.std((hu[:, 1:] - hu[:, :-1])[both]))
        return np.median(values), np.median(noise)

    fat_a, noise_a = fat_and_noise(a)
    fat_b, noise_b = fat_and_noise(b)
    assert 20 < fat_b - fat_a < 50  # HU calibration offset of site B (+35)
    assert noise_b > 1.3 * noise_a


def test_study_loads_through_core_and_the_labelme_reader(small_study):
    study = Study.open(small_study)
    assert study.cases() == ["case-0001", "case-0002"]
    assert study.readers() == ["r1", "r2", "r3"]
    assert "not patient data" in study.settings.extra["synthetic"]["note"]
    for case, slice_id in study.all_slices():
        image = read_dicom(study.image_path(case, slice_id))[0]
        assert image.hu and image.orientation == "sagittal" and image.spacing_mm[0] == image.spacing_mm[1]
        png = read_raster(study.labelme_image_path(case, slice_id))
        assert png.bits == 8 and png.pixels.shape == image.pixels.shape
        # The PNG is the paper's export: min-max of the HU slice.
        assert png.pixels.min() == 0 and png.pixels.max() == 255
        truth = study.load_annotation(case, slice_id, image_size=(image.width, image.height))
        assert truth.vertebrae and all(v.source == "truth" and v.level for v in truth.vertebrae)
        for reader in ("r1", "r2", "r3"):
            annotation = read_labelme(study.reader_path(reader, case, slice_id), image_size=(png.width, png.height))
            assert annotation.reader == reader and annotation.reviewed
    assert (small_study / "preview.png").is_file()


@pytest.mark.slow
@pytest.mark.oracle
def test_generated_files_open_in_labelme(small_study):
    files = sorted((small_study / "readers").rglob("*.json")) + sorted((small_study / "consensus").rglob("*.json"))
    assert len(files) == 2 * 4 * 4
    for version in ("6.3.1", "5.0.1"):
        results = ensure_oracle(version).load(files)
        for path, result in zip(files, results, strict=True):
            assert result["ok"], (version, path, result.get("error"))
            assert len(result["shapes"]) == len(read_labelme(path).vertebrae)


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(StudyError, match="unknown site"):
        SynthOptions(site="C")
    with pytest.raises(StudyError, match="prevalence"):
        SynthOptions(prevalence={Disease.OVCF: 1.5})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("precious")
    with pytest.raises(StudyError, match="not empty"):
        run(generate_study(tmp_path / "full", SynthOptions(cases=1, slices_per_case=1)))
    assert (tmp_path / "full" / "keep.txt").read_text() == "precious"


def test_systematic_sample_keeps_the_total_and_each_chance():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.3, 400)
    totals = [systematic_sample(p, rng).sum() for _ in range(50)]
    assert all(abs(t - p.sum()) < 1.0 for t in totals)
    hits = np.mean([systematic_sample(p, rng) for _ in range(2000)], axis=0)
    assert np.abs(hits - p).max() < 0.05


def test_written_consensus_is_the_planned_truth(small_study):
    plan = plan_study(SynthOptions(cases=2, seed=5, slices_per_case=4))
    study = Study.open(small_study)
    for planned in plan.cases:
        for number, boxes in planned.truth.items():
            written = study.load_annotation(planned.case_id, f"s{number:03d}")
            assert [v.level for v in written.vertebrae] == [b.level for b in boxes]
            assert [v.diseases for v in written.vertebrae] == [b.diseases for b in boxes]
            assert all(np.allclose(v.box.as_list(), b.box) for v, b in zip(written.vertebrae, boxes, strict=True))
