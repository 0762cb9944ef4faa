"""Detection commands: ``train detector``, ``detect`` and ``evaluate detection``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.annotations.geometry import DETECTION_THRESHOLD
from core.cli import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PARTIAL,
    RENDERING_HELP,
    check_studies,
    drive,
    rendering_arg,
    say,
    warn,
)


def cmd_train_detector(args: argparse.Namespace) -> int:
    check_studies(args.study, args.validation)
    from core.training.detection_engine import train_detector, with_overrides

    settings = with_overrides(
        args.preset, backbone=args.backbone, epochs=args.epochs, device=args.device, precision=args.precision,
        batch_size=args.batch_size, lr=args.lr, size=args.input_size, seed=args.seed, imagenet=args.imagenet,
        source=args.source, augment=args.augment, fpn_from=args.fpn_from,
        fpn_channels=args.fpn_channels, box_representation=args.box_head, window=args.window,
        lr_drop_epochs=tuple(args.lr_drop) if args.lr_drop is not None else None,
    )
    from core.training.fine_tune import fine_tune_from

    start = fine_tune_from(args.init, "detector") if args.init else {}
    result = drive(train_detector(args.study, args.out, settings, validation=args.validation or (),
                                   model_id=args.model_id, resume=args.resume, demo=args.demo, **start))
    m = result.metrics
    say(f"model: {result.package}")
    say(f"best epoch {result.best_epoch}: AP50 {m['ap50']:.3f}, AP50:95 {m['ap50_95']:.3f}, FP rate "
          f"{m['fp_rate']:.2%}, FN rate {m['fn_rate']:.2%} on {m['images']} validation slices "
          f"({result.seconds / 60:.1f} min)")
    return EXIT_OK


def cmd_detect(args: argparse.Namespace) -> int:
    from core.models.package import read_manifest

    read_manifest(args.model, kind="detector")  # a missing or unfit package is named at once, before PyTorch loads
    from core.models.run_detect import detect_inputs

    report = drive(detect_inputs(args.inputs, args.model, args.out, threshold=args.threshold, device=args.device,
                                  precision=args.precision, fast=args.proposals == "fast"))
    for where, why in report.errors:
        warn(f"skipped {where}: {why}")
    say(f"{report.vertebrae} vertebrae on {report.slices} slices written to {args.out}")
    if report.slices == 0:
        return EXIT_ERROR
    return EXIT_PARTIAL if report.errors else EXIT_OK


def cmd_evaluate_detection(args: argparse.Namespace) -> int:
    from core.evaluation.detection_report import pair_files, write_detection_report

    images, notes = pair_files(args.predictions, args.truth)
    for note in notes:
        warn(f"note: {note}")
    metrics = write_detection_report(images, args.report, threshold=args.threshold)
    say(json.dumps({k: v for k, v in metrics.items() if k != "per_image"}, indent=2))
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> dict[str, argparse._SubParsersAction]:
    """Adds ``train detector``, ``detect`` and ``evaluate detection``; returns the ``train`` and ``evaluate`` groups."""
    train = commands.add_parser("train", help="train a model").add_subparsers(dest="model_kind", metavar="MODEL")
    det = train.add_parser("detector", help="train the vertebra detector (Faster R-CNN) on a study")
    det.add_argument("study", type=Path, nargs="+", help="one or more studies with consensus (or reader) boxes")
    det.add_argument("--out", type=Path, required=True, help="the models folder; the package goes in OUT/<model-id>")
    det.add_argument("--preset", choices=["paper", "cpu"], default="paper",
                     help="paper: 1024 px, lr 1e-3, batch 3, 5 epochs, 8-fold D4 (for a GPU); cpu: 512 px, compact "
                          "heads, lr 0.01, batch 4, 10 epochs, random D4 (under an hour on two cores)")
    det.add_argument("--backbone", choices=["resnet18", "mobilenet_v2", "mobilenet_v3_large"])
    det.add_argument("--epochs", type=int)
    det.add_argument("--batch-size", type=int)
    det.add_argument("--lr", type=float)
    det.add_argument("--lr-drop", type=int, nargs="*", metavar="EPOCH",
                     help="epochs after which the learning rate is multiplied by 0.1")
    det.add_argument("--input-size", type=int, help="model input side in pixels (the 1024 letterbox scaled to it)")
    det.add_argument("--fpn-from", type=int, choices=[1, 2], help="1: pyramid P2-P6 (default), 2: P3-P6 (faster)")
    det.add_argument("--fpn-channels", type=int, help="width of the feature pyramid (default 256)")
    det.add_argument("--box-head", type=int, help="width of the box head's two layers (default 1024)")
    det.add_argument("--augment", choices=["d4-all", "d4-random", "flip", "none"])
    det.add_argument("--window", type=rendering_arg, help=RENDERING_HELP)
    det.add_argument("--init", type=Path, metavar="PKG",
                     help="fine-tune this detector package (its architecture and weights) instead of starting anew")
    det.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    det.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None)
    det.add_argument("--seed", type=int)
    det.add_argument("--source", help="whose boxes to learn: consensus (default), best, or a reader id")
    det.add_argument("--validation", type=Path, nargs="*", help="validation studies (default: 20%% of the cases)")
    det.add_argument("--imagenet", help="a local file with the backbone's ImageNet weights")
    det.add_argument("--model-id", help="the package's folder name (default: detector-<date-time>)")
    det.add_argument("--resume", action="store_true", help="resume the run with this --model-id from its checkpoint")
    det.add_argument("--demo", action="store_true", help="mark the package as a demo model")
    det.set_defaults(func=cmd_train_detector)

    detect = commands.add_parser("detect", help="detect vertebrae and write LabelMe JSON predictions")
    detect.add_argument("inputs", type=Path, nargs="+", help="images, DICOM files or folders, NIfTI files or studies")
    detect.add_argument("--model", type=Path, required=True, help="a detector package")
    detect.add_argument("--out", type=Path, required=True)
    detect.add_argument("--threshold", type=float, default=DETECTION_THRESHOLD,
                        help=f"lowest score kept (default {DETECTION_THRESHOLD}, the paper's)")
    detect.add_argument("--device", default="auto")
    detect.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="auto: bfloat16 on CPUs with bf16 units, float16 on CUDA, else float32")
    detect.add_argument("--proposals", choices=["fast", "default"], default="fast",
                        help="fast: 100 region proposals (default); default: torchvision's 1000")
    detect.set_defaults(func=cmd_detect)

    evaluate = commands.add_parser("evaluate", help="compare predictions with annotations").add_subparsers(
        dest="task", metavar="TASK")
    ev_det = evaluate.add_parser("detection", help="AP, the paper's IoM hits, FP and FN, and counts")
    ev_det.add_argument("predictions", type=Path, help="folder of predicted LabelMe JSON")
    ev_det.add_argument("truth", type=Path, help="folder of annotated LabelMe JSON (same relative paths)")
    ev_det.add_argument("--report", type=Path, required=True, help="folder for metrics.json and the plots")
    ev_det.add_argument("--threshold", type=float, default=DETECTION_THRESHOLD,
                        help=f"lowest score that counts as a detection (default {DETECTION_THRESHOLD})")
    ev_det.set_defaults(func=cmd_evaluate_detection)
    return {"train": train, "evaluate": evaluate}
