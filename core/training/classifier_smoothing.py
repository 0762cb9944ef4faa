"""``train smoothing`` and ``train spacing``: a copy of a classifier package that changes how a slice is prepared for
its main network, without training: smoothed by a Gaussian before the patches are cut (``ClassifierConfig.smoothing``),
or resampled to a reference pixel size (``ClassifierConfig.spacing_mm``), its thresholds chosen again on validation
studies.

The weights are kept as they are; only what the main network sees changes, so the per-class thresholds (chosen on
the validation split when the model was trained) are chosen again, by the same rule, on the validation boxes scored
the new way. The endplate head reads the slice as it is, so the SN probability and its threshold are kept.
Measured on the phantom's two scanners and on real CT before the bundled set took it (README, "On real CT").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from core.annotations.model import CLASS_CODES
from core.errors import TrainingError
from core.evaluation.classification import calls_from, choose_thresholds, classification_metrics, unlearnt_classes
from core.models.classifier import ClassifierConfig, VertebraClassifier, check_smoothing, check_spacing
from core.models.package import read_manifest, read_weights, write_package
from core.models.registry import DEMO_NOTICE
from core.progress import Progress, ProgressGenerator
from core.training.classification_data import SliceCache, box_samples
from core.training.classification_validation import (
    TrainedClassifier,
    box_truth,
    predict_records,
    stored_metrics,
)
from core.training.datasets import collect_records
from core.training.endplate_head import THRESHOLD_RULE


def set_view(package: str | Path, out: str | Path, validation: Sequence[str | Path], *, smoothing: float | None = None,
             spacing_mm: float | None = None, device: str = "auto",
             source: str = "consensus") -> ProgressGenerator[TrainedClassifier]:
    """A copy of the classifier ``package`` at ``out`` whose main network sees each slice smoothed by a Gaussian of
    ``smoothing`` pixels and (``spacing_mm`` > 0) resampled to pixels of that size (None keeps the package's own), its
    thresholds (all but SN's) chosen again on ``validation``."""
    started = time.perf_counter()
    if smoothing is None and spacing_mm is None:
        raise TrainingError("give the smoothing or the reference spacing to set")
    try:
        if smoothing is not None:
            check_smoothing(smoothing)
        if spacing_mm is not None:
            check_spacing(spacing_mm)
    except ValueError as exc:
        raise TrainingError(str(exc)) from exc
    if not validation:
        raise TrainingError("the thresholds are chosen again on validation studies: give at least one")
    out = Path(out)
    if out.exists():
        raise TrainingError(f"{out} exists: the new package needs a new folder")
    source_package = Path(package)
    manifest = read_manifest(source_package, kind="classifier")
    records = collect_records([Path(v) for v in validation], source)
    if not box_samples(records):
        raise TrainingError(f"no annotated vertebrae to choose the thresholds on in "
                            f"{', '.join(map(str, validation))}")
    loaded = VertebraClassifier.from_package(source_package, device=device)
    config = replace(loaded.config, smoothing=float(loaded.config.smoothing if smoothing is None else smoothing),
                     spacing_mm=float(loaded.config.spacing_mm if spacing_mm is None else spacing_mm))
    classifier = VertebraClassifier(loaded.model, config, loaded.compute, source_package, loaded.endplate)
    yield Progress("validate", 0, 1, f"the validation boxes, {describe_view(config)}")
    probabilities = predict_records(classifier, records, SliceCache(config.window))
    truth = box_truth(records)
    thresholds = choose_thresholds(truth, probabilities) | {"SN": config.thresholds["SN"]}
    yield Progress("validate", 1, 1, "thresholds chosen")
    metrics = classification_metrics(truth, probabilities, calls_from(probabilities, thresholds))
    seconds = time.perf_counter() - started
    record = {"smoothing": config.smoothing, "spacing_mm": config.spacing_mm,
              "validation": [str(v) for v in validation], "source": source,
              "thresholds_before": dict(manifest.architecture.get("thresholds", {})), "seconds": round(seconds, 1)}
    key = "smoothing_set" if spacing_mm is None else "view_set"
    training = dict(manifest.training) | {
        key: record, "not_learnt": unlearnt_classes(thresholds),
        "threshold_rule": f"{THRESHOLD_RULE} (chosen again on slices {describe_view(config)}; SN, from the slice as it "
                          f"is, kept)"}
    write_package(out, kind="classifier", state=read_weights(source_package),
                  architecture=config.with_thresholds(thresholds).to_json(), classes=list(CLASS_CODES),
                  input_spec=manifest.input, training=training, metrics={"validation": stored_metrics(metrics)},
                  parent=manifest.model_id or None, demo=manifest.demo, notes=DEMO_NOTICE if manifest.demo else "",
                  half=manifest.demo)
    return TrainedClassifier(out, int(manifest.training.get("best_epoch", 0) or 0), metrics, thresholds, [], seconds)


def describe_view(config: ClassifierConfig) -> str:
    """How the main network's slices are prepared, in words: "resampled to 0.6 mm pixels, smoothed by 1 px"."""
    parts = [f"resampled to {config.spacing_mm:g} mm pixels"] if config.spacing_mm > 0 else []
    parts.append(f"smoothed by {config.smoothing:g} px" if config.smoothing > 0 else "not smoothed")
    return ", ".join(parts)
