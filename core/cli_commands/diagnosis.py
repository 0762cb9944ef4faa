"""Diagnosis commands: ``train classifier``, ``diagnose``, ``evaluate classification``, ``report`` and ``models``."""

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
from core.errors import VertebraReviewError


def cmd_train_classifier(args: argparse.Namespace) -> int:
    check_studies(args.study, args.validation)
    from core.training.classification_engine import train_classifier, with_overrides

    settings = with_overrides(
        args.preset, arch=args.arch, epochs=args.epochs, device=args.device, precision=args.precision,
        batch_size=args.batch_size, lr=args.lr, size=args.input_size, canvas=args.canvas, context=args.context,
        fit=args.fit, endplate=args.endplate, endplate_steps=args.endplate_steps, seed=args.seed,
        imagenet=args.imagenet, source=args.source, normals=args.normals,
        patches_per_box=args.patches_per_box, window=args.window,
    )
    from core.training.fine_tune import fine_tune_from

    start = fine_tune_from(args.init, "classifier") if args.init else {}
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


def cmd_diagnose(args: argparse.Namespace) -> int:
    from core.models.registry import resolve_models

    resolve_models(args.models)  # a missing or unfit model set is named at once, before PyTorch loads
    from core.models.pipeline import DiagnosisPipeline

    pipeline = DiagnosisPipeline.load(args.models, device=args.device, precision=args.precision,
                                      threshold=args.threshold)
    say(f"models: {pipeline.describe()}")
    report = drive(pipeline.diagnose_inputs(args.inputs, args.out, overwrite=args.overwrite))
    for where, why in report.errors:
        warn(f"skipped {where}: {why}")
    done = f"; {report.skipped} slices already done were skipped" if report.skipped else ""
    say(f"{report.vertebrae} vertebrae on {report.slices} slices written to {args.out}{done}")
    if report.slices == 0 and report.skipped == 0:
        return EXIT_ERROR
    return EXIT_PARTIAL if report.errors else EXIT_OK


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


def cmd_models(args: argparse.Namespace) -> int:
    from core.models.registry import Registry

    registry = Registry(args.study / "models" if (args.study / "study.json").is_file() else args.study)
    if args.action == "activate":
        if not args.model_id:
            warn("vertebra-review: error: activate needs a model id")
            return EXIT_ERROR
        say(f"active: {registry.activate(args.model_id).describe()}")
    elif args.action == "rollback":
        say(f"active: {registry.rollback().describe()}")
    elif args.action == "add" and _add_model_set(registry, args) != EXIT_OK:
        return EXIT_ERROR
    active = registry.active_id()
    for version in registry.versions():
        mark = "*" if version.model_id == active else " "
        say(f"{mark} {version.model_id}  {version.created}  parent {version.parent or '-'}  "
            f"{'demo' if version.demo else ''}")
    if not registry.versions():
        say(f"no model versions in {registry.root}")
    return EXIT_OK


def _add_model_set(registry, args: argparse.Namespace) -> int:
    """``models STUDY add ID --detector PKG [--classifier PKG] [--activate]``: packages trained elsewhere (on a GPU
    machine, say) become a version of the study; the packages are checked before anything is written."""
    from core.models.package import read_manifest
    from core.models.registry import write_model_set

    if not args.model_id or args.detector is None:
        warn("vertebra-review: error: add needs a new model id and --detector PKG")
        return EXIT_ERROR
    packages = [p for p in (args.detector, args.classifier) if p is not None]
    demo = any(read_manifest(p).demo for p in packages)  # write_model_set checks each package's kind
    added = write_model_set(registry.root, args.model_id, args.detector, args.classifier,
                            parent=registry.active_id(), demo=demo,
                            data={"added_from": [str(p) for p in packages]})
    say(f"added: {added.describe()}")
    if args.activate:
        say(f"active: {registry.activate(args.model_id).describe()}")
    return EXIT_OK


def _train_parser(train: argparse._SubParsersAction) -> None:
    cls = train.add_parser("classifier", help="train the vertebra disease classifier (ResNet, six sigmoid outputs)")
    cls.add_argument("study", type=Path, nargs="+", help="one or more studies with consensus (or reader) labels")
    cls.add_argument("--out", type=Path, required=True, help="the models folder; the package goes in OUT/<model-id>")
    cls.add_argument("--detector", type=Path, help="a detector package (for --normals detector)")
    cls.add_argument("--preset", choices=["paper", "cpu"], default="paper",
                     help="paper: ResNet50 at 224 px, lr 1e-2 x0.2 every 5 epochs, 15 epochs, batch 64, 5 patches per "
                          "box (for a GPU); cpu: ResNet18 at 128 px, 10 epochs, 2 patches per box (under an hour "
                          "on a CPU)")
    cls.add_argument("--arch", choices=["resnet18", "resnet34", "resnet50"])
    cls.add_argument("--epochs", type=int)
    cls.add_argument("--batch-size", type=int)
    cls.add_argument("--lr", type=float)
    cls.add_argument("--input-size", type=int, help="patch side given to the network (default 224)")
    cls.add_argument("--window", type=rendering_arg, help=RENDERING_HELP)
    cls.add_argument("--init", type=Path, metavar="PKG",
                     help="fine-tune this classifier package (its architecture, weights and endplate head)")
    cls.add_argument("--canvas", type=int, help="side of the canvas the box is cut onto at its own scale, before the "
                                                "resize to --input-size (default 196)")
    cls.add_argument("--context", type=float,
                     help="margin kept around each box, as a fraction of its width and height (default 0, the "
                          "paper's crop); keeps endplate lesions such as Schmorl's nodes in the patch under jitter")
    cls.add_argument("--fit", action=argparse.BooleanOptionalAction, default=None,
                     help="scale each box (with its --context margin) to fill the patch, and the jitter with it, "
                          "instead of cutting it at its own scale onto the fixed canvas (the paper's crop)")
    cls.add_argument("--endplate", action=argparse.BooleanOptionalAction, default=None,
                     help="train the Schmorl's-node endplate head after the main network (default: on); it scores "
                          "the upper and lower endplate bands of each box and gives the SN probability")
    cls.add_argument("--endplate-steps", type=int, help="training steps of the endplate head (default 400)")
    cls.add_argument("--patches-per-box", type=int, help="jittered patches per box and epoch (default 5)")
    cls.add_argument("--normals", choices=["annotated", "detector"],
                     help="annotated (default): every vertebra is boxed; detector: readers boxed only diseased "
                          "vertebrae, normal ones come from the detector (no hit, IoM > 0.5, with any disease box)")
    cls.add_argument("--device", help="auto (default), cpu, cuda or mps")
    cls.add_argument("--precision", choices=["auto", "fp32", "bf16"])
    cls.add_argument("--seed", type=int)
    cls.add_argument("--source", help="whose labels to learn: consensus (default), best, or a reader id")
    cls.add_argument("--validation", type=Path, nargs="*", help="validation studies (default: 20%% of the cases)")
    cls.add_argument("--imagenet", help="a local file with the backbone's ImageNet weights")
    cls.add_argument("--model-id", help="the package's folder name (default: classifier-<date-time>)")
    cls.add_argument("--resume", action="store_true", help="resume the run with this --model-id from its checkpoint")
    cls.add_argument("--demo", action="store_true", help="mark the package as a demo model")
    cls.set_defaults(func=cmd_train_classifier)

    head = train.add_parser("endplate", help="add (or train again) the Schmorl's-node endplate head of a classifier "
                                             "package, keeping its main network")
    head.add_argument("classifier", type=Path, help="the classifier package")
    head.add_argument("study", type=Path, nargs="+", help="studies with consensus (or reader) labels")
    head.add_argument("--out", type=Path, required=True, help="the new package (a new folder)")
    head.add_argument("--validation", type=Path, nargs="*", help="validation studies (default: 20%% of the cases); "
                                                                 "the SN threshold is chosen on them")
    head.add_argument("--steps", type=int, default=400, help="training steps (default 400)")
    head.add_argument("--seed", type=int, default=0)
    head.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    head.add_argument("--source", default="consensus",
                      help="whose labels to learn: consensus (default), best, or a reader id")
    head.set_defaults(func=cmd_train_endplate)


def register(commands: argparse._SubParsersAction, *, train: argparse._SubParsersAction,
             evaluate: argparse._SubParsersAction) -> None:
    _train_parser(train)
    diagnose = commands.add_parser("diagnose", help="detect and classify vertebrae; write LabelMe JSON")
    diagnose.add_argument("inputs", type=Path, nargs="+", help="images, image folders, DICOM files or series, NIfTI "
                                                                "volumes or studies")
    diagnose.add_argument("--models", type=Path, required=True,
                          help="a model set, a models folder (its active set), or a folder with one detector and one "
                               "classifier package")
    diagnose.add_argument("--out", type=Path, required=True)
    diagnose.add_argument("--device", default="auto")
    diagnose.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    diagnose.add_argument("--threshold", type=float, default=DETECTION_THRESHOLD,
                          help=f"lowest detector score kept (default {DETECTION_THRESHOLD})")
    diagnose.add_argument("--overwrite", action="store_true", help="run again on slices this model already did")
    diagnose.set_defaults(func=cmd_diagnose)

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

    report = commands.add_parser("report", help="per-patient summary (levels, diseases, alerts) as JSON and HTML")
    report.add_argument("predictions", type=Path, help="folder of predicted LabelMe JSON, one sub-folder per case")
    report.add_argument("--out", type=Path, help="where summary.json and summary.html go (default: PREDICTIONS)")
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.set_defaults(func=cmd_report)

    models = commands.add_parser(
        "models", help="list a study's model versions, activate one, roll back, or add packages trained elsewhere")
    models.add_argument("study", type=Path, help="a study (or its models folder)")
    models.add_argument("action", nargs="?", choices=["list", "activate", "rollback", "add"], default="list")
    models.add_argument("model_id", nargs="?", help="the version to activate, or the id of the version to add")
    models.add_argument("--detector", type=Path, help="add: a detector package trained elsewhere")
    models.add_argument("--classifier", type=Path, help="add: a classifier package trained elsewhere")
    models.add_argument("--activate", action="store_true", help="add: activate the new version at once")
    models.set_defaults(func=cmd_models)
