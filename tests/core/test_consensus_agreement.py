"""Agreement statistics against reference implementations (statsmodels, scikit-learn) and hand-computed tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

from core.annotations.model import Box, Disease, Vertebra
from core.consensus.agreement import (
    _fleiss_from_sums,
    agreement_statistics,
    box_statistics,
    cohen_estimate,
    fleiss_estimate,
    fleiss_from_counts,
    kappa_statistics,
    reader_vs_consensus,
    subject_agreement,
)
from core.consensus.check import ConsistencyCheck, match_slice
from core.consensus.matching import MatchSettings
from tests.core.test_consensus_helpers import annotation, vertebra

READERS = ("r1", "r2", "r3")
CODES = ("OVCF", "OF", "SN", "KD", "PS")


def check_from_ratings(ratings: dict[str, list[set[str]]], cases: list[str], per_slice: int = 6,
                       consensus: list[set[str]] | None = None) -> ConsistencyCheck:
    """A check whose vertebra i carries ``ratings[reader][i]`` for every reader, six vertebrae per slice."""
    settings = MatchSettings()
    slices = []
    total = len(next(iter(ratings.values())))
    for start in range(0, total, per_slice):
        count = min(per_slice, total - start)
        annotations = {
            r: annotation([vertebra(i, *ratings[r][start + i], source=r) for i in range(count)]) for r in ratings
        }
        truth = None
        if consensus is not None:
            truth = annotation([vertebra(i, *consensus[start + i], source="consensus") for i in range(count)])
        number = start // per_slice
        slices.append(match_slice(cases[number], f"s{number:03d}", tuple(ratings), annotations, settings, truth))
    return ConsistencyCheck(tuple(ratings), settings, slices)


def random_ratings(rng: np.random.Generator, subjects: int, rates: dict[str, float]) -> dict[str, list[set[str]]]:
    truth = [{c for c, p in rates.items() if rng.random() < p} for _ in range(subjects)]
    result = {}
    for reader in READERS:
        calls = []
        for diseases in truth:
            call = set(diseases)
            for code in rates:
                if rng.random() < 0.08:
                    call ^= {code}
            calls.append(call)
        result[reader] = calls
    return result


def test_fleiss_matches_a_hand_computed_table():
    # 4 subjects, 3 raters, positives 3, 2, 0, 1: P_i = 1, 1/3, 1, 1/3; P = 2/3; p = 0.5, Pe = 0.5; kappa = 1/3
    assert fleiss_from_counts(np.array([3, 2, 0, 1]), 3) == pytest.approx(1 / 3)
    assert subject_agreement(np.array([3, 2, 0, 1]), 3) == pytest.approx([1, 1 / 3, 1, 1 / 3])


def test_fleiss_is_undefined_when_every_rating_is_the_same():
    assert fleiss_from_counts(np.zeros(5, dtype=int), 3) is None
    assert fleiss_from_counts(np.full(5, 3), 3) is None
    assert fleiss_from_counts(np.zeros(0, dtype=int), 3) is None


def test_the_vectorised_fleiss_used_for_the_bootstrap_equals_statsmodels():
    rng = np.random.default_rng(0)
    for raters in (2, 3, 5):
        positives = rng.integers(0, raters + 1, 200)
        table = np.stack([raters - positives, positives], axis=1)
        agreement = subject_agreement(positives, raters)
        ours = _fleiss_from_sums(np.array([200.0]), np.array([agreement.sum()]), np.array([positives.sum()]), raters)
        assert ours[0] == pytest.approx(fleiss_kappa(table, method="fleiss"))


def test_cohen_matches_sklearn_and_statsmodels_interval():
    rng = np.random.default_rng(1)
    first = rng.random(300) < 0.3
    second = np.where(rng.random(300) < 0.85, first, ~first)
    cases = np.repeat(np.arange(30), 10)
    weights = np.random.default_rng(0).multinomial(30, np.full(30, 1 / 30), size=500).astype(float)
    estimate = cohen_estimate(first, second, cases, weights)
    assert estimate["kappa"] == pytest.approx(cohen_kappa_score(first, second), abs=1e-4)
    table = np.array([[np.sum(first & second), np.sum(first & ~second)],
                      [np.sum(~first & second), np.sum(~first & ~second)]])
    reference = cohens_kappa(table, return_results=True)
    assert estimate["ci95_asymptotic"] == pytest.approx([reference.kappa_low, reference.kappa_upp], abs=1e-4)
    low, high = estimate["ci95"]  # the case bootstrap
    assert low < estimate["kappa"] < high
    assert estimate["table"] == table.tolist() and estimate["subjects"] == 300


def test_cohen_is_undefined_for_a_constant_table():
    flat = np.zeros(20, dtype=bool)
    estimate = cohen_estimate(flat, flat, np.zeros(20, dtype=int), np.ones((10, 1)))
    assert estimate["kappa"] is None and estimate["ci95"] is None


def test_kappas_of_a_check_match_the_reference_implementations():
    rng = np.random.default_rng(7)
    rates = {"OVCF": 0.2, "OF": 0.1, "SN": 0.05, "KD": 0.03, "PS": 0.05}
    ratings = random_ratings(rng, 240, rates)
    cases = [f"case-{i // 4:04d}" for i in range(40)]  # 40 slices of 6 vertebrae, 4 slices per case
    check = check_from_ratings(ratings, cases)
    stats = kappa_statistics(check, bootstrap=300, seed=3)
    assert stats["cases"] == 10 and stats["bootstrap_samples"] == 300
    for code in (*CODES, "NORMAL"):
        matrix = np.array([[(code in ratings[r][i]) if code != "NORMAL" else not ratings[r][i] for r in READERS]
                           for i in range(240)], dtype=int)
        table, _ = aggregate_raters(matrix, n_cat=2)
        expected = fleiss_kappa(table, method="fleiss")
        estimate = stats["fleiss"][code]
        assert estimate["kappa"] == pytest.approx(expected, abs=1e-4), code
        assert estimate["subjects"] == 240
        assert estimate["ci95"][0] <= estimate["kappa"] <= estimate["ci95"][1]
        for a, b in (("r1", "r2"), ("r1", "r3"), ("r2", "r3")):
            pair = stats["cohen"][f"{a}-{b}"][code]
            ia, ib = READERS.index(a), READERS.index(b)
            assert pair["kappa"] == pytest.approx(cohen_kappa_score(matrix[:, ia], matrix[:, ib]), abs=1e-4)
    # The same seed gives the same intervals.
    assert kappa_statistics(check, bootstrap=300, seed=3) == stats


def test_only_vertebrae_every_reader_drew_enter_fleiss_but_pairs_use_what_both_drew():
    ratings = {r: [set() for _ in range(6)] for r in READERS}
    ratings["r1"][0] = {"OVCF"}
    ratings["r2"][0] = {"OVCF"}
    check = check_from_ratings(ratings, ["case-0001"])
    item = check.slices[0]
    annotations = dict(item.annotations)
    annotations["r3"] = annotation([v for v in annotations["r3"].vertebrae][1:])  # r3 left out the OVCF
    check = ConsistencyCheck(READERS, check.settings, [match_slice("case-0001", "s000", READERS, annotations,
                                                                   check.settings)])
    stats = kappa_statistics(check, bootstrap=0)
    assert stats["fleiss"]["OVCF"]["subjects"] == 5 and stats["fleiss"]["OVCF"]["kappa"] is None
    assert stats["cohen"]["r1-r2"]["OVCF"]["subjects"] == 6 and stats["cohen"]["r1-r2"]["OVCF"]["kappa"] == 1.0
    assert stats["cohen"]["r1-r3"]["OVCF"]["subjects"] == 5
    assert stats["fleiss"]["OVCF"]["ci95"] is None  # one case: no case bootstrap


def test_box_statistics_by_hand():
    settings = MatchSettings()
    a = Vertebra(Box(0, 0, 10, 10), source="r1")
    b = Vertebra(Box(0, 0, 10, 10), source="r2")
    c = Vertebra(Box(0, 0, 10, 8), source="r3")  # IoU 0.8 with a and b
    stray = Vertebra(Box(50, 50, 60, 60), source="r3")
    annotations = {"r1": annotation([a]), "r2": annotation([b]), "r3": annotation([c, stray])}
    check = ConsistencyCheck(READERS, settings, [match_slice("case-0001", "s001", READERS, annotations, settings)])
    boxes = box_statistics(check)
    assert boxes["mean_iou"] == pytest.approx((1.0 + 0.8 + 0.8) / 3, abs=1e-4)
    assert boxes["per_pair"]["r1-r2"] == {"mean_iou": 1.0, "pairs": 1}
    assert boxes["groups"] == 2 and boxes["found_by_all"] == 1 and boxes["detection_agreement_rate"] == 0.5


def test_readers_against_the_consensus_by_hand():
    truth = [{"OVCF"}, {"OVCF"}, set(), set(), {"OF"}, set()]
    ratings = {
        "r1": [{"OVCF"}, set(), {"OVCF"}, set(), {"OF"}, set()],  # TP, FN, FP, TN for OVCF
        "r2": [{"OVCF"}, {"OVCF"}, set(), set(), {"OF"}, set()],
        "r3": [{"OVCF"}, {"OVCF"}, set(), set(), {"OF"}, set()],
    }
    check = check_from_ratings(ratings, ["case-0001"], consensus=truth)
    item = check.slices[0]
    annotations = dict(item.annotations)
    # r2 leaves out the second OVCF (a false negative) and draws a stray OF box (a false positive).
    kept = [v for i, v in enumerate(annotations["r2"].vertebrae) if i != 1]
    annotations["r2"] = annotation([*kept, Vertebra(Box(5, 350, 40, 390), {Disease.OF}, source="r2")])
    check.slices[0] = match_slice("case-0001", "s000", READERS, annotations, check.settings, item.consensus)
    result = reader_vs_consensus(check)
    assert result["slices_with_consensus"] == 1
    r1 = result["readers"]["r1"]["OVCF"]
    assert (r1["tp"], r1["fn"], r1["fp"], r1["tn"]) == (1, 1, 1, 3)
    assert r1["sensitivity"]["value"] == 0.5 and r1["specificity"]["value"] == 0.75
    low, high = r1["sensitivity"]["ci95"]
    assert 0 < low < 0.5 < high < 1
    r2_ovcf, r2_of = result["readers"]["r2"]["OVCF"], result["readers"]["r2"]["OF"]
    assert (r2_ovcf["tp"], r2_ovcf["fn"], r2_ovcf["fp"], r2_ovcf["tn"]) == (1, 1, 0, 4)
    assert (r2_of["tp"], r2_of["fn"], r2_of["fp"], r2_of["tn"]) == (1, 0, 1, 4)
    assert result["readers"]["r3"]["OVCF"]["sensitivity"]["value"] == 1.0


def test_agreement_json_has_a_kappa_for_each_class_and_no_nan():
    rng = np.random.default_rng(2)
    ratings = random_ratings(rng, 120, {"OVCF": 0.3, "OF": 0.2, "SN": 0.2, "KD": 0.1, "PS": 0.1})
    check = check_from_ratings(ratings, [f"case-{i // 2:04d}" for i in range(20)])
    stats = agreement_statistics(check, bootstrap=200)
    text = json.dumps(stats, allow_nan=False)
    assert "NaN" not in text
    for code in CODES:
        assert isinstance(stats["fleiss_kappa"][code], float)
        assert len(stats["fleiss_kappa_ci95"][code]) == 2
    assert stats["vertebrae"]["groups"] == 120 and stats["readers"] == list(READERS)
    assert stats["box_agreement"]["mean_iou"] == 1.0


def test_the_case_bootstrap_widens_the_interval_when_slices_of_a_case_repeat_each_other():
    # 4 distinct slices, each repeated 10 times (a reader keeps their opinion across the slices of a case).
    rng = np.random.default_rng(5)
    base = random_ratings(rng, 24, {"OVCF": 0.3, "OF": 0.1, "SN": 0.1, "KD": 0.1, "PS": 0.1})
    ratings = {r: calls * 10 for r, calls in base.items()}
    clustered = kappa_statistics(check_from_ratings(ratings, [f"c{k % 4}" for k in range(40)]), bootstrap=400)
    as_if_independent = kappa_statistics(check_from_ratings(ratings, [f"c{k}" for k in range(40)]), bootstrap=400)
    width = [s["fleiss"]["OVCF"]["ci95"][1] - s["fleiss"]["OVCF"]["ci95"][0] for s in (as_if_independent, clustered)]
    assert clustered["fleiss"]["OVCF"]["kappa"] == as_if_independent["fleiss"]["OVCF"]["kappa"]
    assert width[1] > 2 * width[0]


def test_fleiss_estimate_without_bootstrap_weights_gives_no_interval():
    positives = np.array([[True, True, False], [False, False, False], [True, True, True]])
    estimate = fleiss_estimate(positives, np.zeros(3, dtype=int), np.zeros((0, 1)))
    assert estimate["ci95"] is None and estimate["kappa"] is not None and estimate["positive_ratings"] == 5
