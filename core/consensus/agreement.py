"""Agreement statistics of the readers, from a consistency check.

**Units.** A *subject* is one matched vertebra group on one slice (the paper's unit, a box on a slice). Per class
(OVCF, OF, SN, KD, PS, and NORMAL = no disease) each reader who drew the box rates it positive or negative.

- **Fleiss' kappa** over the groups that *every* compared reader drew (the fully rated vertebrae, so each subject
  has the same raters), computed with ``statsmodels.stats.inter_rater.fleiss_kappa``. When one reader has read
  fewer slices it covers only the vertebrae of those slices (``subjects`` says how many).
- **Krippendorff's alpha** (nominal, the ``krippendorff`` package) over every group that at least two readers rated:
  a reader who has no file for the slice, or drew no box there, gives no rating. It is the statistic for
  agreement with missing ratings, so it stays defined when a reader has read fewer slices.
- **Cohen's kappa** for each pair of readers over the groups both drew (``statsmodels``' ``cohens_kappa``).
- **Intervals.** Every 95 % interval of a kappa or alpha is a percentile bootstrap that resamples *cases*
  (``bootstrap`` resamples, fixed ``seed``; the same resamples for every statistic): the slices of a case show the
  same vertebrae and a reader keeps their opinion across them, so vertebrae are not independent. A percentile
  interval lies inside the statistic's range, [-1, 1] (it is clipped there besides, which changes nothing).
  ``ci95_asymptotic`` keeps statsmodels' interval for Cohen's kappa, which assumes independent vertebrae and can
  pass 1 on few vertebrae; it is clipped to [-1, 1] and is not shown.
- A kappa or alpha is ``null`` when it is undefined: every rating of the class is the same, so chance agreement is
  1 (``observed_agreement`` then says how much the readers agreed, which is 1).
- **Box agreement**: the mean IoU of every two matched boxes of a group; **detection agreement rate**: the share of
  groups drawn by every reader with a file for the slice.
- **Each reader against the consensus** (the consensus files found by the check): the reader's boxes are matched
  to the consensus boxes with the same rule; per class, a consensus-positive vertebra the reader called negative or
  did not draw is a false negative, a reader-positive box the consensus calls negative or does not have is a false
  positive. Sensitivity and specificity come with Wilson 95 % intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from core.annotations.geometry import iou
from core.annotations.model import DISEASES, NORMAL, Vertebra
from core.consensus.check import ConsistencyCheck
from core.consensus.matching import match_vertebrae

CLASSES: tuple[str, ...] = (*[d.value for d in DISEASES], NORMAL)
DEFAULT_BOOTSTRAP = 1000
CONSENSUS = "<consensus>"  # not a valid reader id, so it never clashes with one


def rates(vertebra: Vertebra, code: str) -> bool:
    """Whether the vertebra is positive for the class (NORMAL: no disease)."""
    return not vertebra.diseases if code == NORMAL else any(d.value == code for d in vertebra.diseases)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def _interval(values: np.ndarray) -> list[float] | None:
    """The percentile 95 % interval of bootstrap estimates (None when fewer than half of them are defined), inside
    [-1, 1]."""
    finite = values[np.isfinite(values)]
    if finite.size < max(10, values.size // 2):
        return None
    low, high = np.clip(np.percentile(finite, [2.5, 97.5]), -1.0, 1.0)
    return [_r(low), _r(high)]


# -- Fleiss -----------------------------------------------------------------------------------------------------------
def fleiss_from_counts(positives: np.ndarray, raters: int) -> float | None:
    """Fleiss' kappa of a binary rating from the positive count of each subject (statsmodels), None if undefined."""
    table = np.stack([raters - positives, positives], axis=1)
    if table.shape[0] == 0 or min(table.sum(axis=0)) == 0:
        return None
    from statsmodels.stats.inter_rater import fleiss_kappa  # statsmodels loads in ~3 s: only when asked

    return float(fleiss_kappa(table, method="fleiss"))


def _fleiss_from_sums(
    count: np.ndarray, agreement_sum: np.ndarray, positive_sum: np.ndarray, raters: int
) -> np.ndarray:
    """The same kappa from per-sample sums (vectorised over bootstrap samples); NaN where undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p_bar = agreement_sum / count
        p1 = positive_sum / (count * raters)
        p_e = p1 * p1 + (1 - p1) * (1 - p1)
        return np.where(p_e < 1 - 1e-12, (p_bar - p_e) / (1 - p_e), np.nan)


def subject_agreement(positives: np.ndarray, raters: int) -> np.ndarray:
    """Fleiss' P_i: the share of agreeing rater pairs on each subject."""
    negatives = raters - positives
    return (positives**2 + negatives**2 - raters) / (raters * (raters - 1))


def _case_sums(values: np.ndarray, cases: np.ndarray, n_cases: int) -> np.ndarray:
    return np.bincount(cases, weights=values.astype(float), minlength=n_cases)


def fleiss_estimate(ratings: np.ndarray, cases: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    """``ratings`` (subjects x raters, bool), ``cases`` (subject → case number), bootstrap ``weights``
    (samples x cases: how often each case is drawn)."""
    subjects, raters = ratings.shape
    positives = ratings.sum(axis=1)
    kappa = fleiss_from_counts(positives, raters) if raters >= 2 else None
    agreement = subject_agreement(positives, raters) if subjects and raters >= 2 else np.zeros(0)
    interval = None
    if kappa is not None and weights.shape[1] >= 2:
        n_cases = weights.shape[1]
        sums = [_case_sums(v, cases, n_cases) for v in (np.ones(subjects), agreement, positives)]
        samples = _fleiss_from_sums(*(weights @ s for s in sums), raters)
        interval = _interval(samples)
    return {"kappa": _r(kappa), "ci95": interval, "subjects": int(subjects),
            "positive_ratings": int(positives.sum()), "observed_agreement": _r(agreement.mean() if subjects else None)}


# -- Cohen ------------------------------------------------------------------------------------------------------------
def _cohen_from_cells(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Cohen's kappa of 2x2 tables [[a, b], [c, d]] (vectorised); NaN where undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = a + b + c + d
        p_o = (a + d) / n
        p_e = ((a + b) * (a + c) + (c + d) * (b + d)) / (n * n)
        return np.where(p_e < 1 - 1e-12, (p_o - p_e) / (1 - p_e), np.nan)


def cohen_estimate(first: np.ndarray, second: np.ndarray, cases: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    """Cohen's kappa of two readers' binary ratings (statsmodels) with a case bootstrap interval (``ci95``), and
    statsmodels' asymptotic interval clipped to [-1, 1] (``ci95_asymptotic``, for reference)."""
    cells = [(first & second), (first & ~second), (~first & second), (~first & ~second)]
    table = np.array([[c.sum() for c in cells[:2]], [c.sum() for c in cells[2:]]], dtype=float)
    result: dict[str, Any] = {"kappa": None, "ci95": None, "ci95_asymptotic": None, "subjects": int(first.size),
                              "table": table.astype(int).tolist()}
    if first.size == 0 or not np.isfinite(_cohen_from_cells(*table.ravel())):
        return result
    with np.errstate(divide="ignore", invalid="ignore"):  # its z test divides by 0 when the null variance is 0
        from statsmodels.stats.inter_rater import cohens_kappa

        fitted = cohens_kappa(table, return_results=True)
    result["kappa"] = _r(fitted.kappa)
    result["ci95_asymptotic"] = [_r(v) for v in np.clip([fitted.kappa_low, fitted.kappa_upp], -1.0, 1.0)]
    if weights.shape[1] >= 2:
        per_case = [weights @ _case_sums(c, cases, weights.shape[1]) for c in cells]
        result["ci95"] = _interval(_cohen_from_cells(*per_case))
    return result


# -- Krippendorff -----------------------------------------------------------------------------------------------------
def alpha_from_sums(ratings: np.ndarray, totals: np.ndarray, disagreement: np.ndarray) -> np.ndarray:
    """Krippendorff's alpha (nominal) from sums over pairable units, vectorised over bootstrap samples: ``ratings``
    n = the sum of m_u (ratings per unit), ``totals`` n_c (..., values) = the ratings of each value, ``disagreement``
    = the sum of each unit's off-diagonal coincidences (m_u² - Σ_c n_uc²) / (m_u - 1). alpha = 1 - (n - 1) D /
    (n² - Σ_c n_c²); NaN where undefined (a single value)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = ratings**2 - (totals**2).sum(axis=-1)
        return np.where(expected > 0, 1 - (ratings - 1) * disagreement / expected, np.nan)


def krippendorff_estimate(ratings: np.ndarray, cases: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    """Krippendorff's alpha (nominal) of ``ratings`` (units x raters, NaN for no rating) with the ``krippendorff``
    package, and a case bootstrap interval from :func:`alpha_from_sums`. Units rated fewer than twice do not count."""
    rated = np.isfinite(ratings)
    values = np.unique(ratings[rated])
    value_counts = np.stack([(ratings == v).sum(axis=1) for v in values], axis=1).astype(float) if values.size \
        else np.zeros((ratings.shape[0], 0))
    counts = value_counts.sum(axis=1)
    pairable = counts >= 2
    value_counts, counts, cases = value_counts[pairable], counts[pairable], cases[pairable]
    result: dict[str, Any] = {"alpha": None, "ci95": None, "units": int(pairable.sum()), "ratings": int(counts.sum())}
    with np.errstate(divide="ignore", invalid="ignore"):
        disagreement = (counts**2 - (value_counts**2).sum(axis=1)) / (counts - 1)
    if not np.isfinite(alpha_from_sums(counts.sum(), value_counts.sum(axis=0), disagreement.sum())):
        return result
    import krippendorff

    result["alpha"] = _r(krippendorff.alpha(value_counts=value_counts, level_of_measurement="nominal"))
    if weights.shape[1] >= 2:
        n_cases = weights.shape[1]
        totals = np.stack([weights @ _case_sums(column, cases, n_cases) for column in value_counts.T], axis=-1)
        samples = alpha_from_sums(weights @ _case_sums(counts, cases, n_cases), totals,
                                  weights @ _case_sums(disagreement, cases, n_cases))
        result["ci95"] = _interval(samples)
    return result


# -- gathering ratings ------------------------------------------------------------------------------------------------
def _bootstrap_weights(n_cases: int, samples: int, seed: int) -> np.ndarray:
    if n_cases < 2 or samples <= 0:
        return np.zeros((0, n_cases))
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_cases, np.full(n_cases, 1.0 / n_cases), size=samples).astype(float)


def _units(check: ConsistencyCheck, readers: Sequence[str]) -> tuple[list[list[Vertebra]], list[str]]:
    """The groups every one of ``readers`` drew: their vertebrae (in reader order) and the case of each."""
    units, cases = [], []
    for item, group in check.groups():
        versions = [group.versions.get(r) for r in readers]
        if all(v is not None for v in versions):
            units.append(versions)
            cases.append(item.case)
    return units, cases


def _ratings(units: list[list[Vertebra]], code: str, raters: int) -> np.ndarray:
    return np.array([[rates(v, code) for v in unit] for unit in units], dtype=bool).reshape(len(units), raters)


def _all_ratings(check: ConsistencyCheck, readers: Sequence[str]) -> tuple[list[list[Vertebra | None]], list[str]]:
    """Every group with each reader's vertebra (None: no rating) and the case of each."""
    units, cases = [], []
    for item, group in check.groups():
        units.append([group.versions.get(r) for r in readers])
        cases.append(item.case)
    return units, cases


def _missing_ratings(units: list[list[Vertebra | None]], code: str, raters: int) -> np.ndarray:
    values = [[np.nan if v is None else float(rates(v, code)) for v in unit] for unit in units]
    return np.array(values, dtype=float).reshape(len(units), raters)


def kappa_statistics(check: ConsistencyCheck, *, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
    """Fleiss' kappa of all readers and Cohen's kappa of each pair, per class."""
    readers = list(check.readers)
    case_names = sorted({s.case for s in check.slices})
    case_index = {c: i for i, c in enumerate(case_names)}
    weights = _bootstrap_weights(len(case_names), bootstrap, seed)
    units, cases = _units(check, readers)
    case_numbers = np.array([case_index[c] for c in cases], dtype=int)
    fleiss = {code: fleiss_estimate(_ratings(units, code, len(readers)), case_numbers, weights) for code in CLASSES}
    every, every_cases = _all_ratings(check, readers)
    every_numbers = np.array([case_index[c] for c in every_cases], dtype=int)
    alpha = {code: krippendorff_estimate(_missing_ratings(every, code, len(readers)), every_numbers, weights)
             for code in CLASSES}
    cohen: dict[str, dict[str, Any]] = {}
    for a, b in combinations(readers, 2):
        pair_units, pair_cases = _units(check, [a, b])
        pair_numbers = np.array([case_index[c] for c in pair_cases], dtype=int)
        cohen[f"{a}-{b}"] = {}
        for code in CLASSES:
            ratings = _ratings(pair_units, code, 2)
            cohen[f"{a}-{b}"][code] = cohen_estimate(ratings[:, 0], ratings[:, 1], pair_numbers, weights)
    return {"fleiss": fleiss, "krippendorff": alpha, "cohen": cohen, "cases": len(case_names),
            "bootstrap_samples": int(weights.shape[0])}


def box_statistics(check: ConsistencyCheck) -> dict[str, Any]:
    """Mean IoU of matched boxes (overall and per pair of readers) and the detection agreement rate."""
    per_pair: dict[str, list[float]] = {f"{a}-{b}": [] for a, b in combinations(check.readers, 2)}
    found_by_all = total = 0
    for _, group in check.groups():
        total += 1
        found_by_all += not group.missing_for
        for a, b in combinations(check.readers, 2):
            va, vb = group.versions.get(a), group.versions.get(b)
            if va is not None and vb is not None:
                per_pair[f"{a}-{b}"].append(iou(va.box, vb.box))
    every = [x for values in per_pair.values() for x in values]
    return {
        "mean_iou": _r(float(np.mean(every)) if every else None),
        "matched_pairs": len(every),
        "per_pair": {k: {"mean_iou": _r(float(np.mean(v)) if v else None), "pairs": len(v)}
                     for k, v in per_pair.items()},
        "groups": total,
        "found_by_all": found_by_all,
        "detection_agreement_rate": _r(found_by_all / total if total else None),
    }


def _proportion(hits: int, total: int) -> dict[str, Any]:
    if total == 0:
        return {"value": None, "ci95": None}
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(hits, total, alpha=0.05, method="wilson")
    return {"value": _r(hits / total), "ci95": [_r(low), _r(high)]}


def reader_vs_consensus(check: ConsistencyCheck) -> dict[str, Any]:
    """Each reader's sensitivity and specificity per disease against the consensus files of the checked slices."""
    codes = [d.value for d in DISEASES]
    counts = {r: {c: {"tp": 0, "fn": 0, "fp": 0, "tn": 0} for c in codes} for r in check.readers}
    slices = 0
    for item in check.slices:
        if item.consensus is None:
            continue
        slices += 1
        for reader, annotation in item.annotations.items():
            groups = match_vertebrae({reader: annotation.vertebrae, CONSENSUS: item.consensus.vertebrae},
                                     check.settings)
            for group in groups:
                mine, truth = group.versions[reader], group.versions[CONSENSUS]
                for code in codes:
                    said = mine is not None and rates(mine, code)
                    true = truth is not None and rates(truth, code)
                    if truth is None and not said:
                        continue
                    if mine is None and not true:
                        continue
                    cell = ("tp" if said else "fn") if true else ("fp" if said else "tn")
                    counts[reader][code][cell] += 1
    result: dict[str, Any] = {"slices_with_consensus": slices, "readers": {}}
    for reader, per_class in counts.items():
        result["readers"][reader] = {
            code: {**cells, "sensitivity": _proportion(cells["tp"], cells["tp"] + cells["fn"]),
                   "specificity": _proportion(cells["tn"], cells["tn"] + cells["fp"])}
            for code, cells in per_class.items()
        }
    return result


def agreement_statistics(check: ConsistencyCheck, *, bootstrap: int = DEFAULT_BOOTSTRAP,
                         seed: int = 0) -> dict[str, Any]:
    """Everything that goes into ``agreement.json``."""
    from core.consensus.counts import count_disagreements
    from core.consensus.slice_state import slice_state

    kappas = kappa_statistics(check, bootstrap=bootstrap, seed=seed)
    return {
        "readers": list(check.readers),
        "match": check.settings.to_json(),
        "slices": len(check.slices),
        "cases": kappas["cases"],
        "vertebrae": check.status_counts(),
        "disagreements": count_disagreements(slice_state(m) for m in check.slices).to_json(),
        "fleiss_kappa": {code: est["kappa"] for code, est in kappas["fleiss"].items()},
        "fleiss_kappa_ci95": {code: est["ci95"] for code, est in kappas["fleiss"].items()},
        "fleiss_kappa_detail": kappas["fleiss"],
        "krippendorff_alpha": {code: est["alpha"] for code, est in kappas["krippendorff"].items()},
        "krippendorff_alpha_ci95": {code: est["ci95"] for code, est in kappas["krippendorff"].items()},
        "krippendorff_alpha_detail": kappas["krippendorff"],
        "cohen_kappa": kappas["cohen"],
        "box_agreement": box_statistics(check),
        "reader_vs_consensus": reader_vs_consensus(check),
        "methods": {
            "unit": "one matched vertebra group on one slice",
            "matching": f"Hungarian assignment, every box of a group hits every other ({check.settings.describe()})",
            "disagreements": "core.consensus.counts: open = readers disagree, no confirmed decision, slice not "
                             "locked (finalised, made outside the workflow, or unreadable)",
            "fleiss_kappa": "statsmodels fleiss_kappa over the groups all readers drew",
            "krippendorff_alpha": "krippendorff.alpha (nominal) over the groups at least two readers rated; no box "
                                  "or no file is a missing rating",
            "cohen_kappa": "statsmodels cohens_kappa over the groups both readers drew",
            "intervals": f"percentile bootstrap over cases, {kappas['bootstrap_samples']} samples, seed {seed}, "
                         "inside [-1, 1]",
            "fleiss_ci": f"percentile bootstrap over cases, {kappas['bootstrap_samples']} samples, seed {seed}",
            "sensitivity_ci": "Wilson score interval",
        },
    }
