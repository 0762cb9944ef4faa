"""One-click retraining: from the corrected cases of a study to a validated, versioned model set.

1. **Gather**: every slice with a consensus, else a reader annotation marked reviewed (the consensus is preferred).
   The summary counts boxes per class and the slices that are new or changed since the active model was trained.
2. **Split**: a fixed validation split by case (from the study's salt), never by slice, so no patient is on both sides.
3. **Train** the detector, the classifier or both, fine-tuning from the active model's weights (or from scratch).
   On a GPU out-of-memory error the run is retried once with half the batch.
4. **Gate**: the new model and the active one are evaluated on the same validation split (detector: AP50; classifier:
   mean AUC over the diseases present). The new model set is published either way, and activated (one atomic switch)
   only when it is not worse than the active one by more than ``margin``; otherwise it stays a candidate.

Only one retrain runs per study at a time (``models/.retrain.lock``, :mod:`core.training.retrain_lock`), and it
trains into a staging folder of its own, ``models/.staging/<run>/``; what a killed run left there is removed by the
next retrain. Nothing is activated before the gate, so a cancel, a crash, a non-finite loss or a failed write leaves
the active model as it was. The new set's id (the next free ``v<n>``) is taken when it is published, under the
study's write lock (:func:`core.models.registry.write_model_set`), so a set added meanwhile does not collide with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.annotations.model import CLASS_CODES
from core.errors import TrainingError
from core.models.devices import resolve_device
from core.models.package import read_manifest, read_weights
from core.models.registry import ModelSet, Registry, write_model_set
from core.progress import Progress, ProgressGenerator
from core.study.annotation_source import unreviewed_slices
from core.study.layout import Study
from core.training import distributed
from core.training.datasets import SliceRecord, split_by_case, study_records
from core.training.gate import GateResult, compare_classifiers, compare_detectors
from core.training.retrain_lock import LOCK, STAGING, RetrainBusyError, RetrainLock

__all__ = ["LOCK", "DataSummary", "RetrainBusyError", "RetrainOptions", "RetrainResult", "refresh_predictions",
           "retrain", "training_data"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainOptions:
    detector: bool = True
    classifier: bool = True
    from_scratch: bool = False
    preset: str = "cpu"
    epochs: int | None = None
    batch_size: int | None = None
    device: str = "auto"
    precision: str = "auto"
    margin: float = 0.01
    seed: int = 0
    val_fraction: float = 0.2


@dataclass
class DataSummary:
    slices: int
    cases: int
    training_slices: int
    validation_slices: int
    validation_cases: list[str]
    boxes_per_class: dict[str, int]
    new_slices: int
    active_model: str | None
    fingerprints: dict[str, str] = field(repr=False, default_factory=dict)

    def describe(self) -> str:
        classes = ", ".join(f"{c} {n}" for c, n in self.boxes_per_class.items())
        since = f"since {self.active_model}" if self.active_model else "(no active model)"
        return (f"{self.slices} slices from {self.cases} cases ({self.training_slices} training, "
                f"{self.validation_slices} validation from {len(self.validation_cases)} held-out cases); "
                f"{self.new_slices} new or changed {since}; boxes: {classes}")


@dataclass
class RetrainResult:
    model_id: str
    activated: bool
    gate: list[GateResult]
    summary: DataSummary
    previous: str | None

    def describe(self) -> str:
        verdict = "activated" if self.activated else "kept as a candidate (the active model stays)"
        return f"{self.model_id}: {verdict}; " + "; ".join(g.describe() for g in self.gate)


def _fingerprint(record: SliceRecord) -> str:
    content = [np.round(record.boxes, 1).tolist(), [sorted(d.value for d in ds) for ds in record.diseases]]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()[:16]


def training_data(study: Study, options: RetrainOptions = RetrainOptions()) -> tuple[list, list, DataSummary]:
    """(training records, validation records, summary) for a retrain of ``study``."""
    records, notes = study_records(study.root, source="best")
    for note in notes:
        log.warning("left out of retraining: %s", note)
    train, val = split_by_case(records, options.val_fraction)
    active = Registry(study.root / "models").active()
    recorded = dict((active.data or {}).get("fingerprints", {})) if active else {}
    # Keyed case/slice, so that a study folder moved or renamed keeps its history (older models also named the
    # study's folder first).
    before = {"/".join(str(key).split("/")[-2:]): value for key, value in recorded.items()}
    fingerprints = {f"{r.case}/{r.slice_id}": _fingerprint(r) for r in records}
    counts: Counter[str] = Counter()
    for record in records:
        for diseases in record.diseases:
            counts.update([d.value for d in diseases] or ["NORMAL"])
    summary = DataSummary(
        slices=len(records), cases=len({r.case for r in records}), training_slices=len(train),
        validation_slices=len(val), validation_cases=sorted({r.case for r in val}),
        boxes_per_class={c: counts.get(c, 0) for c in CLASS_CODES},
        new_slices=sum(1 for key, value in fingerprints.items() if before.get(key) != value),
        active_model=active.model_id if active else None, fingerprints=fingerprints)
    return train, val, summary


def _with_oom_retry(make_job: Any, batch_size: int) -> Iterator[Progress]:
    """Run ``make_job(batch_size)``; on a GPU out-of-memory error, once more with half the batch."""
    try:
        return (yield from make_job(batch_size))
    except torch.OutOfMemoryError:
        smaller = max(1, batch_size // 2)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        yield Progress("note", 0, 1, f"out of GPU memory at batch {batch_size}: retrying with batch {smaller}")
        return (yield from make_job(smaller))


def _train_component(kind: str, train: list, val: list, staging: Path, options: RetrainOptions,
                     active: ModelSet | None) -> Iterator[Progress]:
    """Train the ``detector`` or the ``classifier`` into ``staging/<kind>``, fine-tuning the active one's weights."""
    if kind == "detector":
        from core.models.detector import DetectorConfig as Config
        from core.training.detection_engine import PRESETS
        from core.training.detection_engine import train_detector_on as train_on

        current = active.detector if active else None
    else:
        from core.models.classifier import ClassifierConfig as Config
        from core.training.classification_engine import PRESETS
        from core.training.classification_engine import train_classifier_on as train_on

        current = active.classifier if active else None
    changes = {"device": options.device, "precision": options.precision, "seed": options.seed,
               "epochs": options.epochs}
    settings = replace(PRESETS[options.preset], **{k: v for k, v in changes.items() if v is not None})
    architecture = initial = None
    if current is not None and not options.from_scratch:
        architecture = Config.from_json(read_manifest(current).architecture)
        initial = read_weights(current)

    def job(batch: int) -> Iterator[Progress]:
        return train_on(train, val, staging, replace(settings, batch_size=batch), model_id=kind,
                        parent=active.model_id if active else None, architecture=architecture,
                        initial_state=initial)

    return (yield from _with_oom_retry(job, options.batch_size or settings.batch_size))


def retrain(study_root: str | Path, options: RetrainOptions = RetrainOptions()) -> ProgressGenerator[RetrainResult]:
    """Retrain the study's models (the steps are in the module's description)."""
    study = Study.open(study_root)
    if not (options.detector or options.classifier):
        raise TrainingError("nothing to retrain: choose the detector, the classifier or both")
    models = study.root / "models"
    registry = Registry(models)
    distributed.start(resolve_device(options.device))  # under torchrun: only rank 0 locks, gates and publishes
    lock = RetrainLock(study.root) if distributed.is_main() else None
    if lock is not None:
        lock.__enter__()
    try:
        return (yield from _retrain_locked(study, registry, options))
    finally:
        if lock is not None:
            lock.__exit__()


def _retrain_locked(study: Study, registry: Registry, options: RetrainOptions) -> Iterator[Progress]:
    active = registry.active()
    if active is None and not options.detector:
        raise TrainingError("there is no active model whose detector the new classifier could be paired with")
    train, val, summary = training_data(study, options)
    if not train:
        raise TrainingError("no reviewed or agreed slices to train on: review some slices or agree a consensus first",
                            study.root)
    yield Progress("gather", 1, 1, summary.describe())
    run_name = distributed.share(f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{os.getpid()}")
    staging = registry.root / STAGING / run_name
    try:
        detector = classifier = None
        if options.detector:
            detector = (yield from _train_component("detector", train, val, staging, options, active)).package
        if options.classifier:
            classifier = (yield from _train_component("classifier", train, val, staging, options, active)).package
        if not distributed.is_main():
            return None
        yield Progress("gate", 0, 1, "comparing the new model with the active one on the validation split")
        gate = _gate(detector, classifier, active, val, options)
        result = _publish(registry, detector or active.detector,
                          classifier or (active.classifier if active else None), active, gate, summary, options)
    finally:
        if distributed.is_main():
            shutil.rmtree(staging, ignore_errors=True)
    yield Progress("gate", 1, 1, result.describe())
    return result


def _gate(detector: Path | None, classifier: Path | None, active: ModelSet | None, val: list,
          options: RetrainOptions) -> list[GateResult]:
    results = []
    if detector is not None:
        results.append(compare_detectors(detector, active.detector if active else None, val, options.margin,
                                         options.device))
    if classifier is not None:
        results.append(compare_classifiers(classifier, active.classifier if active else None, val, options.margin,
                                           options.device))
    return results


def _publish(registry: Registry, detector: Path, classifier: Path | None, active: ModelSet | None,
             gate: list[GateResult], summary: DataSummary, options: RetrainOptions) -> RetrainResult:
    data = {k: v for k, v in asdict(summary).items() if k != "active_model"}
    published = write_model_set(registry.root, None, detector, classifier,  # the next free id, taken under the lock
                                parent=active.model_id if active else None,
                                metrics={"gate": [asdict(g) for g in gate]},
                                data=data | {"options": asdict(options)})
    passed = all(g.passed for g in gate)
    if passed:
        registry.activate(published.model_id)
    return RetrainResult(published.model_id, passed, gate, summary, active.model_id if active else None)


def refresh_predictions(study_root: str | Path, *, device: str = "auto") -> ProgressGenerator[Any]:
    """Run the active model over the unreviewed slices into ``predictions/<model-id>/``."""
    from core.models.pipeline import DiagnosisPipeline

    study = Study.open(study_root)
    pipeline = DiagnosisPipeline.load(study.root / "models", device=device)
    return (yield from pipeline.diagnose_study(study, unreviewed_slices(study)))
