"""``diagnose`` (detect and classify, writing LabelMe JSON) and ``report`` (the per-patient summary of its output)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.annotations.geometry import DETECTION_THRESHOLD
from desktop.cli.arguments import number
from desktop.cli.detect import TEST_VIEWS, VIEWS_HELP
from desktop.cli.output import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, drive, say, warn


def cmd_diagnose(args: argparse.Namespace) -> int:
    from core.models.registry import resolve_models

    resolve_models(args.models)  # a missing or unfit model set is named at once, before PyTorch loads
    from core.models.pipeline import DiagnosisPipeline

    pipeline = DiagnosisPipeline.load(args.models, device=args.device, precision=args.precision,
                                      threshold=args.threshold, views=args.views)
    say(f"models: {pipeline.describe()}")
    report = drive(pipeline.diagnose_inputs(args.inputs, args.out, overwrite=args.overwrite))
    for where, why in report.errors:
        warn(f"skipped {where}: {why}")
    done = f"; {report.skipped} slices already done were skipped" if report.skipped else ""
    say(f"{report.vertebrae} vertebrae on {report.slices} slices written to {args.out}{done}")
    if report.slices == 0 and report.skipped == 0:
        return EXIT_ERROR
    return EXIT_PARTIAL if report.errors else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from core.evaluation.patient_summary import write_patient_report

    summaries, notes, out = write_patient_report(args.predictions, args.out)
    for note in notes:
        warn(f"note: {note}")
    if args.json:
        say(json.dumps({"cases": summaries}, indent=2))
    else:
        for summary in summaries:
            alerts = "; ".join(f"{a['vertebra']} {a['disease']} (p {a['max_probability'] or 0:.2f})"
                               for a in summary["alerts"]) or "no disease called"
            say(f"{summary['case']}: {alerts}")
    say(f"summary: {out / 'summary.json'} and {out / 'summary.html'}")
    return EXIT_PARTIAL if notes else EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    """Adds ``diagnose`` and ``report``."""
    diagnose = commands.add_parser("diagnose", help="detect and classify vertebrae; write LabelMe JSON")
    diagnose.add_argument("inputs", type=Path, nargs="+", help="images, image folders, DICOM files or series, NIfTI "
                                                                "volumes or studies")
    diagnose.add_argument("--models", type=Path, required=True,
                          help="a model set, a models folder (its active set), or a folder with one detector and one "
                               "classifier package")
    diagnose.add_argument("--out", type=Path, required=True)
    diagnose.add_argument("--device", default="auto")
    diagnose.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    diagnose.add_argument("--threshold", type=number(0, 1), default=DETECTION_THRESHOLD,
                          help=f"lowest detector score kept (default {DETECTION_THRESHOLD})")
    diagnose.add_argument("--views", type=int, choices=TEST_VIEWS, help=VIEWS_HELP)
    diagnose.add_argument("--overwrite", action="store_true", help="run again on slices this model already did")
    diagnose.set_defaults(func=cmd_diagnose)


    report = commands.add_parser("report", help="per-patient summary (levels, diseases, alerts) as JSON and HTML")
    report.add_argument("predictions", type=Path, help="folder of predicted LabelMe JSON, one sub-folder per case")
    report.add_argument("--out", type=Path, help="where summary.json and summary.html go (default: PREDICTIONS)")
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.set_defaults(func=cmd_report)
