"""The ``evaluate`` group: predictions against annotations (``detection``, ``classification``) and the level
counting (``levels``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.annotations.geometry import DETECTION_THRESHOLD
from core.errors import VertebraReviewError
from desktop.cli.arguments import number
from desktop.cli.output import EXIT_OK, say, warn


def cmd_evaluate_detection(args: argparse.Namespace) -> int:
    from core.evaluation.detection_report import pair_files, write_detection_report

    images, notes = pair_files(args.predictions, args.truth)
    for note in notes:
        warn(f"note: {note}")
    metrics = write_detection_report(images, args.report, threshold=args.threshold)
    say(json.dumps({k: v for k, v in metrics.items() if k != "per_image"}, indent=2))
    return EXIT_OK


def cmd_evaluate_classification(args: argparse.Namespace) -> int:
    from core.evaluation.classification_report import evaluate_paths

    metrics, notes = evaluate_paths(args.predictions, args.truth, args.report)
    for note in notes:
        warn(f"note: {note}")
    rows = {c: {k: m[k] for k in ("sensitivity", "specificity", "ppv", "npv", "f1", "auc")}
            for c, m in metrics["per_class"].items()}
    say(json.dumps({"per_class": rows, "summary": metrics["summary"], "boxes": metrics["boxes"],
                    "missed_vertebrae": metrics["missed_vertebrae"]}, indent=2))
    say(f"report: {args.report / 'report.html'}")
    return EXIT_OK


def cmd_evaluate_levels(args: argparse.Namespace) -> int:
    from core.evaluation.levels import level_report, study_cases

    sacrum = None
    if args.detector is not None:
        from core.models.package import read_manifest

        sacrum = read_manifest(args.detector, kind="detector").architecture.get("sacrum")
    cases = study_cases(args.study, args.reader)
    if not cases:
        raise VertebraReviewError(f"no annotated slices of {args.reader or 'the consensus'} here", args.study)
    say(json.dumps(level_report(cases, sacrum), indent=2))
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    """Adds the ``evaluate`` group: ``detection``, ``classification`` and ``levels``."""
    evaluate = commands.add_parser("evaluate", help="compare predictions with annotations").add_subparsers(
        dest="task", metavar="TASK")
    ev_det = evaluate.add_parser("detection", help="AP, the paper's IoM hits, FP and FN, and counts")
    ev_det.add_argument("predictions", type=Path, help="folder of predicted LabelMe JSON")
    ev_det.add_argument("truth", type=Path, help="folder of annotated LabelMe JSON (same relative paths)")
    ev_det.add_argument("--report", type=Path, required=True, help="folder for metrics.json and the plots")
    ev_det.add_argument("--threshold", type=number(0, 1), default=DETECTION_THRESHOLD,
                        help=f"lowest score that counts as a detection (default {DETECTION_THRESHOLD})")
    ev_det.set_defaults(func=cmd_evaluate_detection)

    ev_cls = evaluate.add_parser("classification", help="per-class Table 3 figures, ROC and AUC, HTML report")
    ev_cls.add_argument("predictions", type=Path, help="folder of predicted LabelMe JSON")
    ev_cls.add_argument("truth", type=Path, help="folder of annotated LabelMe JSON (same relative paths)")
    ev_cls.add_argument("--report", type=Path, required=True, help="folder for metrics.json, plots and report.html")
    ev_cls.set_defaults(func=cmd_evaluate_classification)
    ev_lv = evaluate.add_parser("levels", help="how often the level counting gives the true levels of a study's boxes")
    ev_lv.add_argument("study", type=Path, help="a study whose boxes carry true levels (an imported segmentation)")
    ev_lv.add_argument("--reader", help="whose boxes (default: the consensus)")
    ev_lv.add_argument("--detector", type=Path, help="a detector package whose sacrum model to measure too")
    ev_lv.set_defaults(func=cmd_evaluate_levels)
