"""``vertebra-review retrain``: the app's one-click retrain, for headless machines (and ``torchrun``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from desktop.cli.arguments import BATCH_SIZE, EPOCHS, number
from desktop.cli.output import EXIT_OK, drive, say


def cmd_retrain(args: argparse.Namespace) -> int:
    from core.training import distributed
    from core.training.retrain import RetrainOptions, refresh_predictions, retrain

    options = RetrainOptions(detector=not args.classifier_only, classifier=not args.detector_only,
                             from_scratch=args.from_scratch, preset=args.preset, epochs=args.epochs,
                             batch_size=args.batch_size, device=args.device, precision=args.precision,
                             margin=args.margin, seed=args.seed)
    result = drive(retrain(args.study, options))
    if not distributed.is_main():
        return EXIT_OK
    say(result.summary.describe())
    say(result.describe())
    if result.activated and not args.no_refresh:
        report = drive(refresh_predictions(args.study, device=args.device))
        say(f"predictions refreshed on {report.slices} unreviewed slices")
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    retrain = commands.add_parser("retrain", help="retrain from the study's corrected cases; activate if not worse")
    retrain.add_argument("study", type=Path)
    which = retrain.add_mutually_exclusive_group()
    which.add_argument("--detector-only", action="store_true", help="retrain only the detector")
    which.add_argument("--classifier-only", action="store_true", help="retrain only the classifier")
    retrain.add_argument("--from-scratch", action="store_true", help="start from ImageNet or random weights, not "
                         "from the active model's")
    retrain.add_argument("--preset", choices=["cpu", "paper"], default="cpu",
                         help="training settings of both models (default cpu; paper for a GPU)")
    retrain.add_argument("--epochs", type=EPOCHS, help="epochs for each model (default: the preset's)")
    retrain.add_argument("--batch-size", type=BATCH_SIZE)
    retrain.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then the CPU), cpu, cuda or mps")
    retrain.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    retrain.add_argument("--margin", type=number(0, 1), default=0.01,
                         help="activate when the new model's score is at least the active one's minus this")
    retrain.add_argument("--seed", type=int, default=0)
    retrain.add_argument("--no-refresh", action="store_true", help="do not re-run the new model on unreviewed slices")
    retrain.set_defaults(func=cmd_retrain)
