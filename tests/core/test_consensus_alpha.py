"""Krippendorff's alpha beside Fleiss' kappa, and intervals that stay inside [-1, 1], each against an independent
computation: Krippendorff's own worked example, a hand-computed table, and bootstraps redone by explicit resampling
with scikit-learn and the ``krippendorff`` package."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import cohens_kappa

from core.consensus.agreement import (
    _bootstrap_weights,
    agreement_statistics,
    alpha_from_sums,
    cohen_estimate,
    kappa_statistics,
    krippendorff_estimate,
)
from core.consensus.check import ConsistencyCheck, match_slice
from tests.core.test_consensus_agreement import READERS, check_from_ratings, random_ratings
from tests.core.test_consensus_helpers import annotation

NAN = np.nan
#: Krippendorff, "Computing Krippendorff's alpha-reliability" (2011), the example with missing values: 4 observers,
#: 12 units, values 1-5; nominal alpha = 0.743.
KRIPPENDORFF_EXAMPLE = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]).T  # units x observers


def test_alpha_reproduces_krippendorffs_worked_example_with_missing_values():
    estimate = krippendorff_estimate(KRIPPENDORFF_EXAMPLE, np.arange(12), np.zeros((0, 12)))
    assert estimate["alpha"] == pytest.approx(0.743, abs=5e-4)
    assert estimate["units"] == 11 and estimate["ratings"] == 40  # unit 12 has one rating: not pairable
    # The vectorised formula the bootstrap uses, on its own (no package): the same 0.743.
    data = KRIPPENDORFF_EXAMPLE[np.isfinite(KRIPPENDORFF_EXAMPLE).sum(axis=1) >= 2]
    counts = np.stack([(data == v).sum(axis=1) for v in (1, 2, 3, 4, 5)], axis=1).astype(float)
    m = counts.sum(axis=1)
    disagreement = ((m**2 - (counts**2).sum(axis=1)) / (m - 1)).sum()
    assert float(alpha_from_sums(m.sum(), counts.sum(axis=0), disagreement)) == pytest.approx(0.743, abs=5e-4)


def test_alpha_of_a_binary_rating_by_hand():
    # Units [1, 1, -], [0, 0, 0], [1, 0, -], [-, 1, 1]: n = 9 pairable ratings, 5 positive and 4 negative; only the
    # third unit disagrees, with 2·1·1/(2-1) = 2 off-diagonal coincidences. alpha = 1 - (9-1)·2/(81-25-16) = 0.6.
    ratings = np.array([[1, 1, NAN], [0, 0, 0], [1, 0, NAN], [NAN, 1, 1]])
    assert krippendorff_estimate(ratings, np.arange(4), np.zeros((0, 4)))["alpha"] == pytest.approx(0.6)
    everyone_agrees = np.array([[0, 0, NAN], [0, 0, 0]])
    assert krippendorff_estimate(everyone_agrees, np.arange(2), np.zeros((0, 2)))["alpha"] is None


def explicit_resample(cases: np.ndarray, row: np.ndarray) -> np.ndarray:
    """The subject indices of one bootstrap sample: each case's subjects repeated as often as the case was drawn."""
    return np.concatenate([np.flatnonzero(cases == c) for c, times in enumerate(row.astype(int)) for _ in range(times)]
                          or [np.zeros(0, dtype=int)])


def percentile_interval(values: list[float]) -> list[float]:
    finite = np.array([v for v in values if np.isfinite(v)])
    return [round(float(x), 4) for x in np.clip(np.percentile(finite, [2.5, 97.5]), -1, 1)]


def test_the_alpha_interval_equals_a_bootstrap_redone_with_the_krippendorff_package():
    rng = np.random.default_rng(4)
    truth = rng.random(120) < 0.3
    ratings = np.where(rng.random((120, 4)) < 0.85, truth[:, None], ~truth[:, None]).astype(float)
    ratings[rng.random((120, 4)) < 0.25] = NAN  # readers who read fewer slices, or drew no box
    cases = np.repeat(np.arange(12), 10)
    weights = _bootstrap_weights(12, 200, seed=1)
    estimate = krippendorff_estimate(ratings, cases, weights)
    assert estimate["alpha"] == pytest.approx(krippendorff.alpha(ratings.T, level_of_measurement="nominal"), abs=1e-4)
    redone = []
    for row in weights:
        sample = ratings[explicit_resample(cases, row)]
        pairable = sample[np.isfinite(sample).sum(axis=1) >= 2]
        values = np.unique(pairable[np.isfinite(pairable)])
        redone.append(krippendorff.alpha(pairable.T, level_of_measurement="nominal") if values.size > 1 else NAN)
    assert estimate["ci95"] == pytest.approx(percentile_interval(redone), abs=2e-4)


def test_the_cohen_interval_is_a_case_bootstrap_redone_with_scikit_learn_and_stays_inside_its_range():
    # Twelve vertebrae of four cases and a high kappa: statsmodels' asymptotic interval passes 1 here.
    first = np.array([1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    second = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    cases = np.repeat(np.arange(4), 3)
    table = np.array([[2, 1], [0, 9]])
    asymptotic = cohens_kappa(table, return_results=True)
    assert asymptotic.kappa_upp > 1  # the kind of interval the issue saw ([0.16, 1.09])
    weights = _bootstrap_weights(4, 500, seed=0)
    estimate = cohen_estimate(first, second, cases, weights)
    assert estimate["kappa"] == pytest.approx(cohen_kappa_score(first, second), abs=1e-4)
    low, high = estimate["ci95"]
    assert -1 <= low <= high <= 1
    assert estimate["ci95_asymptotic"] == pytest.approx([asymptotic.kappa_low, 1.0], abs=1e-4)  # clipped
    redone = []
    for row in weights:
        index = explicit_resample(cases, row)
        a, b = first[index], second[index]
        same = (a == a[0]).all() and (b == a[0]).all()
        redone.append(NAN if same or len(set(a) | set(b)) < 2 else cohen_kappa_score(a, b))
    assert estimate["ci95"] == pytest.approx(percentile_interval(redone), abs=2e-4)


def test_every_interval_of_a_check_lies_inside_minus_one_to_one():
    rng = np.random.default_rng(11)
    ratings = random_ratings(rng, 48, {"OVCF": 0.3, "OF": 0.1, "SN": 0.05, "KD": 0.05, "PS": 0.05})
    check = check_from_ratings(ratings, [f"case-{i // 2:04d}" for i in range(8)])
    stats = agreement_statistics(check, bootstrap=300)
    intervals = [*stats["fleiss_kappa_ci95"].values(), *stats["krippendorff_alpha_ci95"].values()]
    intervals += [e["ci95"] for pair in stats["cohen_kappa"].values() for e in pair.values()]
    intervals += [e["ci95_asymptotic"] for pair in stats["cohen_kappa"].values() for e in pair.values()]
    assert any(intervals)
    for interval in filter(None, intervals):
        assert -1 <= interval[0] <= interval[1] <= 1


def test_alpha_stays_defined_when_a_reader_has_read_fewer_slices():
    rng = np.random.default_rng(3)
    ratings = random_ratings(rng, 36, {"OVCF": 0.3, "OF": 0.15, "SN": 0.1, "KD": 0.05, "PS": 0.05})
    cases = [f"case-{i:04d}" for i in range(6)]
    three = check_from_ratings(ratings, cases)
    # A fourth reader has read one slice (of six), where every vertebra is normal to them.
    readers = (*READERS, "r4")
    slices = []
    for number, item in enumerate(three.slices):
        annotations = dict(item.annotations)
        if number == 0:
            annotations["r4"] = annotation([v.with_changes(diseases=frozenset(), source="r4")
                                            for v in item.annotations["r1"].vertebrae])
        slices.append(match_slice(item.case, item.slice_id, readers, annotations, three.settings))
    four = ConsistencyCheck(readers, three.settings, slices)
    stats = kappa_statistics(four, bootstrap=200)
    assert stats["fleiss"]["OVCF"]["subjects"] == 6  # only the vertebrae of the one slice r4 read
    assert stats["krippendorff"]["OVCF"]["units"] == 36
    alpha = stats["krippendorff"]["OVCF"]["alpha"]
    assert alpha is not None and alpha == pytest.approx(kappa_statistics(three, bootstrap=0)
                                                        ["krippendorff"]["OVCF"]["alpha"], abs=0.15)
