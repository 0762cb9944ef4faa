"""The ``train`` group: ``train detector``, ``train classifier``, ``train endplate``, ``train smoothing`` and
``train spacing``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from desktop.cli.arguments import (
    BATCH_SIZE,
    EPOCHS,
    LEARNING_RATE,
    RENDERING_HELP,
    check_studies,
    from_presets,
    number,
    rendering_arg,
    whole,
)
from desktop.cli.detect import TEST_VIEWS
from desktop.cli.output import EXIT_OK, drive, say

MAX_STEPS = 1_000_000


def cmd_train_detector(args: argparse.Namespace) -> int:
    check_studies(args.study, args.validation)
    from core.training.detection_engine import train_detector, with_overrides

    settings = with_overrides(
        args.preset, backbone=args.backbone, epochs=args.epochs, device=args.device, precision=args.precision,
        batch_size=args.batch_size, lr=args.lr, size=args.input_size, seed=args.seed, imagenet=args.imagenet,
        source=args.source, augment=args.augment, appearance=args.appearance or None, fpn_from=args.fpn_from,
        fpn_channels=args.fpn_channels, box_representation=args.box_head, window=args.window,
        lr_drop_epochs=tuple(args.lr_drop) if args.lr_drop is not None else None, workers=args.workers,
        test_views=args.test_views,
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


def cmd_train_classifier(args: argparse.Namespace) -> int:
    check_studies(args.study, args.validation)
    from core.training.classification_engine import train_classifier, with_overrides

    settings = with_overrides(
        args.preset, arch=args.arch, epochs=args.epochs, device=args.device, precision=args.precision,
        batch_size=args.batch_size, lr=args.lr, size=args.input_size, canvas=args.canvas, context=args.context,
        fit=args.fit, endplate=args.endplate, endplate_steps=args.endplate_steps, seed=args.seed,
        imagenet=args.imagenet, source=args.source, normals=args.normals,
        patches_per_box=args.patches_per_box, window=args.window, appearance=args.appearance or None,
        appearance_grain=args.appearance_grain, edge_cut=args.edge_cut, smoothing=args.smoothing,
        spacing_mm=args.spacing_mm,
    )
    from core.training.fine_tune import fine_tune_from

    given = {"smoothing": args.smoothing, "spacing_mm": args.spacing_mm}
    changes = {k: v for k, v in given.items() if v is not None} or None  # else the package's own
    start = fine_tune_from(args.init, "classifier", changes) if args.init else {}
    result = drive(train_classifier(args.study, args.out, settings, detector=args.detector,
                                    validation=args.validation or (), model_id=args.model_id, resume=args.resume,
                                    demo=args.demo, **start))
    say(f"model: {result.package}")
    summary = result.metrics["summary"]
    say(f"best epoch {result.best_epoch} ({result.seconds / 60:.1f} min); on the validation split, mean over "
        f"OVCF, OF, KD, PS: sensitivity {summary['sensitivity']['mean']}, specificity "
        f"{summary['specificity']['mean']}")
    say("thresholds: " + ", ".join(f"{c} {t:.3f}" for c, t in result.thresholds.items()))
    return EXIT_OK


def cmd_train_endplate(args: argparse.Namespace) -> int:
    from core.training.classification_engine import add_endplate_head

    result = drive(add_endplate_head(args.classifier, args.study, args.out, validation=args.validation or (),
                                     steps=args.steps, seed=args.seed, device=args.device, source=args.source))
    say(f"model: {result.package}")
    per_class = result.metrics["per_class"]["SN"]
    say(f"on the validation split, SN: AUC {per_class['auc']}, sensitivity {per_class['sensitivity']}, PPV "
        f"{per_class['ppv']}")
    say("thresholds: " + ", ".join(f"{c} {t:.3f}" for c, t in result.thresholds.items()))
    return EXIT_OK


def cmd_train_smoothing(args: argparse.Namespace) -> int:
    return _set_view(args, smoothing=args.sd)


def cmd_train_spacing(args: argparse.Namespace) -> int:
    return _set_view(args, spacing_mm=args.mm)


def _set_view(args: argparse.Namespace, **view: float) -> int:
    check_studies(args.validation)
    from core.models.classifier import ClassifierConfig
    from core.models.package import read_manifest
    from core.training.classifier_smoothing import describe_view, set_view

    result = drive(set_view(args.classifier, args.out, args.validation, device=args.device, source=args.source, **view))
    say(f"model: {result.package}")
    summary = result.metrics["summary"]
    config = ClassifierConfig.from_json(read_manifest(result.package, kind="classifier").architecture)
    say(f"slices {describe_view(config)}; on the validation split, mean over OVCF, OF, KD, PS: sensitivity "
        f"{summary['sensitivity']['mean']}, specificity {summary['specificity']['mean']}")
    say("thresholds: " + ", ".join(f"{c} {t:.3f}" for c, t in result.thresholds.items()))
    return EXIT_OK


# -- the presets, described from their settings for --help ----------------------------------------------------------
AUGMENTATION = {"d4-all": "8-fold D4", "d4-random": "random D4", "flip": "flips", "none": "no augmentation"}
DETECTOR_USE = {"paper": "for a GPU", "cpu": "under an hour on two cores"}
CLASSIFIER_USE = {"paper": "for a GPU", "cpu": "under an hour on a CPU"}
PRESET_NAMES = ("paper", "cpu")  # the --preset choices (reading the presets loads PyTorch; a test keeps them equal)


def describe_detector_preset(name: str, p: Any, paper: Any) -> str:
    """One detector preset ``p`` for ``--help``, from its settings (``paper``: the preset its heads are compared
    with)."""
    heads = ("" if (p.fpn_channels, p.box_representation) == (paper.fpn_channels, paper.box_representation)
             else f"compact heads (pyramid {p.fpn_channels}, box head {p.box_representation}), ")
    use = f" ({DETECTOR_USE[name]})" if name in DETECTOR_USE else ""
    return (f"{name}: {p.size} px, {heads}lr {p.lr:g}, batch {p.batch_size}, {p.epochs} epochs, "
            f"{AUGMENTATION.get(p.augment, p.augment)}{use}")


def describe_classifier_preset(name: str, p: Any) -> str:
    """One classifier preset ``p`` for ``--help``, from its settings."""
    use = f" ({CLASSIFIER_USE[name]})" if name in CLASSIFIER_USE else ""
    return (f"{name}: {p.arch.replace('resnet', 'ResNet')} at {p.size} px, lr {p.lr:g} x{p.lr_gamma:g} every "
            f"{p.lr_step} epochs, {p.epochs} epochs, batch {p.batch_size}, {p.patches_per_box} patches per box{use}")


def _detector_presets() -> dict[str, Any]:
    from core.training.detection_engine import LR_DROP_FACTOR, PRESETS

    paper = PRESETS["paper"]
    return {"paper": paper, "lr_drop": LR_DROP_FACTOR,
            "presets": "; ".join(describe_detector_preset(name, p, paper) for name, p in PRESETS.items())}


def _classifier_presets() -> dict[str, Any]:
    from core.training.classification_engine import PRESETS

    return {"paper": PRESETS["paper"],
            "presets": "; ".join(describe_classifier_preset(name, p) for name, p in PRESETS.items())}


def _data_options(parser: argparse.ArgumentParser, learns: str) -> None:
    """The studies to learn ``learns`` from and the models folder the package goes in."""
    parser.add_argument("study", type=Path, nargs="+", help=f"one or more studies with consensus (or reader) {learns}")
    parser.add_argument("--out", type=Path, required=True,
                        help="the models folder; the package goes in OUT/<model-id>")


def _run_options(parser: argparse.ArgumentParser, learns: str, kind: str) -> None:
    """The options both ``train`` commands share: seed, source, validation, ImageNet weights, id, resume, demo."""
    parser.add_argument("--seed", type=int)
    parser.add_argument("--source", help=f"whose {learns} to learn: consensus (default), best, or a reader id")
    parser.add_argument("--validation", type=Path, nargs="*",
                        help="validation studies (default: 20%% of the cases)")
    parser.add_argument("--imagenet", help="a local file with the backbone's ImageNet weights")
    parser.add_argument("--model-id", help=f"the package's folder name (default: {kind}-<date-time>)")
    parser.add_argument("--resume", action="store_true",
                        help="resume the run with this --model-id from its checkpoint")
    parser.add_argument("--demo", action="store_true", help="mark the package as a demo model")


def register(commands: argparse._SubParsersAction) -> None:
    """Adds the ``train`` group: ``detector``, ``classifier``, ``endplate`` and ``smoothing``."""
    train = commands.add_parser("train", help="train a model").add_subparsers(dest="model_kind", metavar="MODEL")
    _register_detector(train)
    _register_classifier(train)
    _register_endplate(train)
    _register_smoothing(train)


def _register_detector(train: argparse._SubParsersAction) -> None:
    det = train.add_parser("detector", help="train the vertebra detector (Faster R-CNN) on a study")
    _data_options(det, "boxes")
    det.add_argument("--preset", choices=PRESET_NAMES, default="paper", help="{presets}")
    det.add_argument("--backbone", choices=["resnet18", "mobilenet_v2", "mobilenet_v3_large"])
    det.add_argument("--epochs", type=EPOCHS)
    det.add_argument("--batch-size", type=BATCH_SIZE)
    det.add_argument("--lr", type=LEARNING_RATE)
    det.add_argument("--lr-drop", type=EPOCHS, nargs="*", metavar="EPOCH",
                     help="epochs after which the learning rate is multiplied by {lr_drop:g}")
    det.add_argument("--input-size", type=whole(64, 4096),
                     help="model input side in pixels (the {paper.side} letterbox scaled to it)")
    det.add_argument("--fpn-from", type=int, choices=[1, 2], help="1: pyramid P2-P6 (default), 2: P3-P6 (faster)")
    det.add_argument("--fpn-channels", type=whole(8, 1024),
                     help="width of the feature pyramid (default {paper.fpn_channels})")
    det.add_argument("--box-head", type=whole(8, 4096),
                     help="width of the box head's two layers (default {paper.box_representation})")
    det.add_argument("--augment", choices=["d4-all", "d4-random", "flip", "none"])
    det.add_argument("--appearance", action="store_true",
                     help="also jitter each slice's grey values (resolution, blur or sharpening, levels, gamma, noise)")
    det.add_argument("--window", type=rendering_arg, help=RENDERING_HELP)
    det.add_argument("--test-views", type=int, choices=TEST_VIEWS,
                     help="test-time views the package keeps: 1 as it is, 2 also mirrored, 4 (default) also upside "
                          "down and both")
    det.add_argument("--init", type=Path, metavar="PKG",
                     help="fine-tune this detector package (its architecture and weights) instead of starting anew")
    det.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    det.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None)
    det.add_argument("--workers", type=whole(0, 64),
                     help="processes that load and augment the slices beside training (default 0: none; on a GPU, "
                          "a few keep it fed)")
    _run_options(det, "boxes", "detector")
    det.set_defaults(func=cmd_train_detector)
    from_presets(det, _detector_presets)


def _register_classifier(train: argparse._SubParsersAction) -> None:
    cls = train.add_parser("classifier", help="train the vertebra disease classifier (ResNet, six sigmoid outputs)")
    _data_options(cls, "labels")
    cls.add_argument("--detector", type=Path, help="a detector package (for --normals detector)")
    cls.add_argument("--preset", choices=PRESET_NAMES, default="paper", help="{presets}")
    cls.add_argument("--arch", choices=["resnet18", "resnet34", "resnet50"])
    cls.add_argument("--epochs", type=EPOCHS)
    cls.add_argument("--batch-size", type=BATCH_SIZE)
    cls.add_argument("--lr", type=LEARNING_RATE)
    cls.add_argument("--input-size", type=whole(32, 1024),
                     help="patch side given to the network (default {paper.size})")
    cls.add_argument("--window", type=rendering_arg, help=RENDERING_HELP)
    cls.add_argument("--appearance", action="store_true",
                     help="also jitter each patch's grey values (resolution, blur or sharpening, levels, gamma, noise)")
    cls.add_argument("--appearance-grain", choices=["fine", "coarse"],
                     help="with --appearance: fine (default, the detector's jitter, white noise) or coarse (noise "
                          "correlated over a pixel, as CT noise is, and the blur, resolution loss and sharpening drawn "
                          "1.5-4.5 times larger)")
    cls.add_argument("--edge-cut", type=number(0, 1), metavar="P",
                     help="cut a share P (0-1) of the training patches as the image's edge cuts a body, the label kept "
                          "(default 0): a body cut by the scan is not a compressed one")
    cls.add_argument("--smoothing", type=float, metavar="SD",
                     help="smooth each slice by a Gaussian of SD pixels (0-3) before the patches are cut, in training "
                          "and in use (default 0, the paper's; with --init, the package's): the network then weighs a "
                          "body's shape and density rather than one scanner's noise")
    cls.add_argument("--spacing-mm", type=float, metavar="MM",
                     help="resample each slice whose pixel spacing is known to pixels of MM (0.2-2) before the patches "
                          "are cut, in training and in use (default 0, the paper's: each slice at its own scale; with "
                          "--init, the package's), so a body spans the same pixels whatever the scanner's")
    cls.add_argument("--init", type=Path, metavar="PKG",
                     help="fine-tune this classifier package (its architecture, weights and endplate head)")
    cls.add_argument("--canvas", type=whole(16, 4096),
                     help="side of the canvas the box is cut onto at its own scale, before the resize to --input-size "
                          "(default {paper.canvas})")
    cls.add_argument("--context", type=number(0, 1),
                     help="margin kept around each box, as a fraction of its width and height (default "
                          "{paper.context:g}, the paper's crop); keeps endplate lesions such as Schmorl's nodes in the "
                          "patch under jitter")
    cls.add_argument("--fit", action=argparse.BooleanOptionalAction, default=None,
                     help="scale each box (with its --context margin) to fill the patch, and the jitter with it, "
                          "instead of cutting it at its own scale onto the fixed canvas (the paper's crop)")
    cls.add_argument("--endplate", action=argparse.BooleanOptionalAction, default=None,
                     help="train the Schmorl's-node endplate head after the main network (default: on); it scores "
                          "the upper and lower endplate bands of each box and gives the SN probability")
    cls.add_argument("--endplate-steps", type=whole(1, MAX_STEPS),
                     help="training steps of the endplate head (default {paper.endplate_steps})")
    cls.add_argument("--patches-per-box", type=whole(1, 64),
                     help="jittered patches per box and epoch (default {paper.patches_per_box})")
    cls.add_argument("--normals", choices=["annotated", "detector"],
                     help="annotated (default): every vertebra is boxed; detector: readers boxed only diseased "
                          "vertebrae, normal ones come from the detector (no hit, IoM > 0.5, with any disease box)")
    cls.add_argument("--device", help="auto (default), cpu, cuda or mps")
    cls.add_argument("--precision", choices=["auto", "fp32", "bf16"])
    _run_options(cls, "labels", "classifier")
    cls.set_defaults(func=cmd_train_classifier)
    from_presets(cls, _classifier_presets)


def _register_endplate(train: argparse._SubParsersAction) -> None:
    head = train.add_parser("endplate", help="add (or train again) the Schmorl's-node endplate head of a classifier "
                                             "package, keeping its main network")
    head.add_argument("classifier", type=Path, help="the classifier package")
    head.add_argument("study", type=Path, nargs="+", help="studies with consensus (or reader) labels")
    head.add_argument("--out", type=Path, required=True, help="the new package (a new folder)")
    head.add_argument("--validation", type=Path, nargs="*", help="validation studies (default: 20%% of the cases); "
                                                                 "the SN threshold is chosen on them")
    head.add_argument("--steps", type=whole(1, MAX_STEPS), default=400, help="training steps (default %(default)s)")
    head.add_argument("--seed", type=int, default=0)
    head.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    head.add_argument("--source", default="consensus",
                      help="whose labels to learn: consensus (default), best, or a reader id")
    head.set_defaults(func=cmd_train_endplate)


#: ``train smoothing`` and ``train spacing``: (command, help, option, its help, handler), one way of seeing the slice
#: each, both set by ``set_view`` on a copy of a package.
_VIEW_COMMANDS = (
    ("smoothing", "copy a classifier package so that it smooths each slice before its patches are cut, its thresholds "
                  "chosen again (no training)",
     "--sd", "the Gaussian's SD in slice pixels (0-3; 0 switches the smoothing off)", cmd_train_smoothing),
    ("spacing", "copy a classifier package so that it resamples each slice to one pixel size before its patches are "
                "cut, its thresholds chosen again (no training)",
     "--mm", "the pixel size in mm (0.2-2; 0 uses every slice at its own scale)", cmd_train_spacing),
)


def _register_smoothing(train: argparse._SubParsersAction) -> None:
    for name, what, option, option_help, handler in _VIEW_COMMANDS:
        parser = train.add_parser(name, help=what)
        parser.add_argument("classifier", type=Path, help="the classifier package")
        parser.add_argument(option, type=float, required=True, help=option_help)
        parser.add_argument("--validation", type=Path, nargs="+", required=True,
                            help="studies with consensus (or reader) labels; the thresholds are chosen on them")
        parser.add_argument("--out", type=Path, required=True, help="the new package (a new folder)")
        parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
        parser.add_argument("--source", default="consensus",
                            help="whose labels to choose on: consensus (default), best, or a reader id")
        parser.set_defaults(func=handler)
