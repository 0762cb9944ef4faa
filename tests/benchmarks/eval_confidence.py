"""What the low-confidence rule (:mod:`core.review.confidence`) marks, and whether the boxes it marks are the ones
the model got wrong: a model's results against a reference reading of the same slices.

    python tests/benchmarks/eval_confidence.py PREDICTIONS TRUTH [--thresholds MODELS] [--factors 1.5 2 3] [--json]

PREDICTIONS is a folder of the model's LabelMe results (a study's ``predictions/<model id>``, or what
``eval_diagnosis.py --out DIR`` wrote under ``DIR/<study>``); TRUTH a folder of the reference files at the same
relative paths (a study's ``consensus``, or one reader's folder). Results written before the model's thresholds
travelled with them take them from ``--thresholds`` (a model set or classifier package).

For each odds factor, and for the rule before this one (a fixed 0.55 on the probability behind the label, kept
here only as the baseline), it prints the slices and boxes marked and, of the model's boxes that hit a reference box
(IoM > 0.5, :func:`core.annotations.geometry.pair_by_iom`), how many of the marked and of the unmarked ones carry a
label that differs from the reference's. A useful rule marks few boxes, and many of the wrong ones among them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from pathlib import Path

from core.annotations.geometry import pair_by_iom
from core.annotations.labelme_io import read_labelme
from core.annotations.labelme_paths import labelme_at, labelme_files, no_labelme_files
from core.annotations.model import SliceAnnotation, Vertebra
from core.models.package import read_manifest
from core.models.pipeline import recorded_thresholds
from core.models.registry import resolve_models
from core.review.confidence import CLOSE_CALL, UNSURE_SCORE, ModelCall, call_probability, is_low_confidence

PREVIOUS_CALL = 0.55  # the rule before thresholds travelled with results: the label's probability under 0.55


def previous_rule(vertebra: Vertebra, _call: ModelCall) -> bool:
    if vertebra.source != "model":
        return False
    if vertebra.score is not None and vertebra.score < UNSURE_SCORE:
        return True
    probability = call_probability(vertebra)
    return probability is not None and probability < PREVIOUS_CALL


def package_thresholds(path: Path) -> dict[str, float]:
    """The disease thresholds of a classifier package, or of the classifier in a model set, as diagnose records
    them."""
    if not (path / "manifest.json").is_file() or json.loads((path / "manifest.json").read_text()).get(
            "kind") != "classifier":
        classifier = resolve_models(path).classifier
        if classifier is None:
            raise SystemExit(f"{path}: the model set has no classifier")
        path = classifier
    return recorded_thresholds(read_manifest(path, kind="classifier").architecture["thresholds"])


def load_pairs(predictions: Path, truth: Path) -> list[tuple[SliceAnnotation, SliceAnnotation]]:
    files, refused = labelme_files(truth)
    if not files:
        raise no_labelme_files(truth, refused)
    pairs = []
    for file in files:
        found = labelme_at(predictions, file.relative_to(truth))
        if found is not None:
            pairs.append((read_labelme(found), read_labelme(file)))
    if not pairs:
        raise SystemExit(f"{predictions}: no model result beside any of the {len(files)} files in {truth}")
    return pairs


def measure(pairs: list[tuple[SliceAnnotation, SliceAnnotation]],
            unsure: Callable[[Vertebra, ModelCall], bool],
            fallback: Mapping[str, float] | None) -> dict:
    slices = boxes = marked = 0
    hits = {True: [0, 0], False: [0, 0]}  # marked or not: [boxes that hit, of them with a wrong label]
    for predicted, reference in pairs:
        thresholds = predicted.thresholds if predicted.thresholds is not None else fallback
        call = ModelCall(thresholds, (predicted.image_width, predicted.image_height))
        flags = [unsure(v, call) for v in predicted.vertebrae]
        slices += any(flags)
        boxes, marked = boxes + len(flags), marked + sum(flags)
        for i, j in pair_by_iom([v.box for v in predicted.vertebrae], [v.box for v in reference.vertebrae]):
            hits[flags[i]][0] += 1
            hits[flags[i]][1] += predicted.vertebrae[i].diseases != reference.vertebrae[j].diseases
    wrong = hits[True][1] + hits[False][1]
    return {
        "slices": len(pairs), "slices_marked": slices, "boxes": boxes, "boxes_marked": marked,
        "marked_hits": hits[True][0], "marked_wrong": hits[True][1],
        "unmarked_hits": hits[False][0], "unmarked_wrong": hits[False][1],
        "wrong_caught": hits[True][1] / wrong if wrong else None,
    }


def _fraction(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.3f})" if whole else f"{part}/0"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--thresholds", type=Path, help="model set or classifier package (results without their own)")
    parser.add_argument("--factors", type=float, nargs="+", default=[1.5, CLOSE_CALL, 3.0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if any(f <= 1 for f in args.factors):
        parser.error("an odds factor must be above 1")
    fallback = package_thresholds(args.thresholds) if args.thresholds else None
    pairs = load_pairs(args.predictions, args.truth)
    rules: dict[str, Callable] = {
        f"odds within {f:g}x of the threshold": (
            lambda v, call, f=f: is_low_confidence(v, call.thresholds, factor=f, image_size=call.image_size))
        for f in args.factors}
    rules[f"previous: label probability < {PREVIOUS_CALL}"] = previous_rule
    figures = {name: measure(pairs, rule, fallback) for name, rule in rules.items()}
    if args.json:
        print(json.dumps({"rule_in_use": CLOSE_CALL, "rules": figures}, indent=2))
        return 0
    print(f"{args.predictions} against {args.truth}: {len(pairs)} slices (rule in use: odds within {CLOSE_CALL:g}x)")
    for name, m in figures.items():
        caught = "–" if m["wrong_caught"] is None else f"{m['wrong_caught']:.2f}"
        print(f"  {name:<40} slices {_fraction(m['slices_marked'], m['slices'])}, "
              f"boxes {_fraction(m['boxes_marked'], m['boxes'])}; "
              f"wrong label: marked {_fraction(m['marked_wrong'], m['marked_hits'])}, "
              f"unmarked {_fraction(m['unmarked_wrong'], m['unmarked_hits'])}; wrong ones marked {caught}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
