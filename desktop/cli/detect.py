"""``vertebra-review detect``: the detector alone, writing LabelMe JSON predictions."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.annotations.geometry import DETECTION_THRESHOLD
from desktop.cli.arguments import number
from desktop.cli.output import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, drive, say, warn

#: The detector's test-time views (core.models.detector.TEST_VIEWS; PyTorch is not loaded for the parser).
TEST_VIEWS = (1, 2, 4)
VIEWS_HELP = ("test-time views of each slice: 1 as it is, 2 also mirrored left-right, 4 also upside down and both; "
              "default: the package's own setting (4 for a detector trained by this version)")


def cmd_detect(args: argparse.Namespace) -> int:
    from core.models.package import read_manifest

    read_manifest(args.model, kind="detector")  # a missing or unfit package is named at once, before PyTorch loads
    from core.models.run_detect import detect_inputs

    report = drive(detect_inputs(args.inputs, args.model, args.out, threshold=args.threshold, device=args.device,
                                  precision=args.precision, fast=args.proposals == "fast", views=args.views))
    for where, why in report.errors:
        warn(f"skipped {where}: {why}")
    say(f"{report.vertebrae} vertebrae on {report.slices} slices written to {args.out}")
    if report.slices == 0:
        return EXIT_ERROR
    return EXIT_PARTIAL if report.errors else EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    """Adds ``detect``."""
    detect = commands.add_parser("detect", help="detect vertebrae and write LabelMe JSON predictions")
    detect.add_argument("inputs", type=Path, nargs="+", help="images, DICOM files or folders, NIfTI files or studies")
    detect.add_argument("--model", type=Path, required=True, help="a detector package")
    detect.add_argument("--out", type=Path, required=True)
    detect.add_argument("--threshold", type=number(0, 1), default=DETECTION_THRESHOLD,
                        help=f"lowest score kept (default {DETECTION_THRESHOLD}, the paper's)")
    detect.add_argument("--device", default="auto")
    detect.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="auto: bfloat16 on CPUs with bf16 units, float16 on CUDA, else float32")
    detect.add_argument("--proposals", choices=["fast", "default"], default="fast",
                        help="fast: 100 region proposals (default); default: torchvision's 1000")
    detect.add_argument("--views", type=int, choices=TEST_VIEWS, help=VIEWS_HELP)
    detect.set_defaults(func=cmd_detect)
