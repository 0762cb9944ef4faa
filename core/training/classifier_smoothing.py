"""``train smoothing``: a copy of a classifier package that smooths each slice before its main network's patches are
cut (``ClassifierConfig.smoothing``), with its thresholds chosen again on validation studies, without training.

The weights are kept as they are; only what the main network sees changes, so the per-class thresholds (chosen on
the validation split when the model was trained) are chosen again, by the same rule, on the validation boxes scored
with the smoothing. The endplate head reads the slice as it is, so the SN probability and its threshold are kept.
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
from core.models.classifier import VertebraClassifier, check_smoothing
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


def set_smoothing(package: str | Path, out: str | Path, smoothing: float, validation: Sequence[str | Path], *,
                  device: str = "auto", source: str = "consensus") -> ProgressGenerator[TrainedClassifier]:
    """A copy of the classifier ``package`` at ``out`` that smooths each slice by a Gaussian of ``smoothing`` pixels
    under its main network's patches, its thresholds (all but SN's) chosen again on ``validation``."""
    started = time.perf_counter()
    try:
        check_smoothing(smoothing)
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
    config = replace(loaded.config, smoothing=float(smoothing))
    classifier = VertebraClassifier(loaded.model, config, loaded.compute, source_package, loaded.endplate)
    yield Progress("validate", 0, 1, f"the validation boxes, smoothed by {smoothing:g} px")
    probabilities = predict_records(classifier, records, SliceCache(config.window))
    truth = box_truth(records)
    thresholds = choose_thresholds(truth, probabilities) | {"SN": config.thresholds["SN"]}
    yield Progress("validate", 1, 1, "thresholds chosen")
    metrics = classification_metrics(truth, probabilities, calls_from(probabilities, thresholds))
    seconds = time.perf_counter() - started
    record = {"smoothing": float(smoothing), "validation": [str(v) for v in validation], "source": source,
              "thresholds_before": dict(manifest.architecture.get("thresholds", {})), "seconds": round(seconds, 1)}
    training = dict(manifest.training) | {
        "smoothing_set": record, "not_learnt": unlearnt_classes(thresholds),
        "threshold_rule": f"{THRESHOLD_RULE} (chosen again with the smoothing; SN, from the unsmoothed slice, kept)"}
    write_package(out, kind="classifier", state=read_weights(source_package),
                  architecture=config.with_thresholds(thresholds).to_json(), classes=list(CLASS_CODES),
                  input_spec=manifest.input, training=training, metrics={"validation": stored_metrics(metrics)},
                  parent=manifest.model_id or None, demo=manifest.demo, notes=DEMO_NOTICE if manifest.demo else "",
                  half=manifest.demo)
    return TrainedClassifier(out, int(manifest.training.get("best_epoch", 0) or 0), metrics, thresholds, [], seconds)
