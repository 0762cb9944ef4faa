"""Training the vertebra classifier: a generator that yields progress, validates after each epoch, keeps the best
epoch (highest mean AUC over the diseases present in the validation split), checkpoints every epoch and publishes a
model package at the end, with per-class decision thresholds chosen on the validation split.

Presets:
- ``paper``: ResNet50 at 224 x 224 from a 196 x 196 canvas, SGD with momentum, learning rate 1e-2 multiplied by
  0.2 every 5 epochs, 15 epochs, batch 64, five jittered patches per box and epoch, the paper's resampling and
  augmentation. Mixed precision on CUDA. For a GPU.
- ``cpu``: ResNet18 at 128 x 128 from a 128 x 128 canvas (the box at full resolution: the paper's 196 canvas
  shrunk to 128 loses a third of the detail, and on the phantom's validation split the mean sensitivity over OVCF,
  OF, KD and PS was 0.96 against 0.77, at the same specificity), two fresh random patches per box and epoch,
  10 epochs with the learning rate multiplied by 0.2 every 4. Trains on 360 slices in about 15 minutes on two
  cores.

Both then train the endplate head (:mod:`core.training.endplate_engine`) for Schmorl's nodes, unless
``endplate`` is off; its SN probabilities replace the main network's before the thresholds are chosen.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.annotations.model import CLASS_CODES
from core.errors import TrainingError
from core.evaluation.classification import (
    MIN_AUC,
    MIN_SPECIFICITY,
    calls_from,
    choose_thresholds,
    classification_metrics,
    unlearnt_classes,
)
from core.imaging.rendering import DEFAULT_RENDERING
from core.models.classifier import ENDPLATE_PREFIX, SN_COLUMN, ClassifierConfig, VertebraClassifier, build_classifier
from core.models.devices import Compute, training_compute
from core.models.endplate import EndplateGeometry
from core.models.extraction import PatchGeometry
from core.models.package import write_package
from core.models.registry import DEMO_NOTICE
from core.models.weights import find_imagenet
from core.progress import Progress, ProgressGenerator
from core.training import distributed
from core.training.checkpoints import TrainingRun
from core.training.classification_data import (
    Augmentation,
    BoxSample,
    SliceCache,
    box_samples,
    detector_normals,
    patch_batch,
    resample,
)
from core.training.classification_validation import (
    TrainedClassifier,
    box_truth,
    mean_auc,
    predict_records,
    stored_metrics,
    train_and_validation,
)
from core.training.datasets import SliceRecord
from core.training.endplate_head import add_endplate_head
from core.training.endplate_head import endplate_head as _endplate_head
from core.training.fit import Evaluation, Step, fit, train_one_epoch

__all__ = ["PRESETS", "ClassifierTraining", "TrainedClassifier", "add_endplate_head", "predict_records",
           "train_classifier", "train_classifier_on", "with_overrides"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassifierTraining:
    """Every training setting (defaults: the paper's)."""

    arch: str = "resnet50"
    size: int = 224
    canvas: int = 196
    context: float = 0.0  # margin kept around each box, as a fraction of its size (0: the paper's crop)
    fit: bool = False  # scale each box to fill the patch (False: the paper's crop at the pixels' own scale)
    endplate: bool = True  # train the Schmorl's-node endplate head after the main network
    endplate_steps: int = 400
    epochs: int = 15
    batch_size: int = 64
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_step: int = 5
    lr_gamma: float = 0.2
    warmup_steps: int = 50
    patches_per_box: int = 5
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    val_fraction: float = 0.2
    source: str = "consensus"
    normals: str = "annotated"  # "detector": the paper's normal boxes, from the detector's output
    imagenet: str | None = None
    window: str = DEFAULT_RENDERING  # how slices become the input (core.imaging.rendering), kept in the package

    def architecture(self) -> ClassifierConfig:
        imagenet = find_imagenet(self.arch, Path(self.imagenet) if self.imagenet else None)
        patch = PatchGeometry(canvas=self.canvas, size=self.size, context=self.context, fit=self.fit)
        return ClassifierConfig(arch=self.arch, patch=patch, norm="frozen" if imagenet else "batch",
                                endplate=EndplateGeometry() if self.endplate else None, window=self.window)


PRESETS: dict[str, ClassifierTraining] = {
    "paper": ClassifierTraining(),
    "cpu": ClassifierTraining(arch="resnet18", size=128, canvas=128, epochs=10, lr_step=4, patches_per_box=2),
}


def with_overrides(preset: str, **changes: Any) -> ClassifierTraining:
    if preset not in PRESETS:
        raise TrainingError(f"unknown preset {preset!r}: use {', '.join(PRESETS)}")
    return replace(PRESETS[preset], **{k: v for k, v in changes.items() if v is not None})


def _add_detector_normals(records: list[SliceRecord], detector_package: Path | None,
                          device: str) -> Iterator[Progress]:
    """Replace ``records`` in place with the paper's normal boxes added from the detector's output."""
    from core.models.detector import VertebraDetector

    if detector_package is None:
        raise TrainingError("normal boxes from the detector need a detector package (--detector)")
    detector = VertebraDetector.from_package(detector_package, device=device)
    cache = SliceCache(detector.config.window)
    for i, record in enumerate(records):
        yield Progress("normals", i, len(records), f"{record.case}/{record.slice_id}")
        [found] = detector.detect([cache.image(record)])
        records[i] = detector_normals(record, found.boxes)


def _epoch_batches(samples: Sequence[BoxSample], settings: ClassifierTraining, epoch: int) -> list[list[BoxSample]]:
    rng = np.random.default_rng([settings.seed, epoch])
    chosen: list[int] = []
    for _ in range(settings.patches_per_box):  # each repetition draws fresh jitter, as the paper's five patches
        chosen += resample(samples, rng)
    order = rng.permutation(len(chosen))
    picked = [samples[chosen[i]] for i in order]
    return [picked[i : i + settings.batch_size] for i in range(0, len(picked), settings.batch_size)]


def _train_one_epoch(model: torch.nn.Module, samples: Sequence[BoxSample], records: Sequence[SliceRecord],
                     cache: SliceCache, optimizer: torch.optim.Optimizer, scheduler: Any,
                     scaler: torch.amp.GradScaler, compute: Compute, settings: ClassifierTraining,
                     geometry: PatchGeometry, epoch: int) -> Iterator[Progress]:
    """One epoch of this process's share of the resampled boxes; the patches are cut and augmented as each batch is
    fetched, on the main thread (timed as waiting for data)."""
    batches = distributed.shard(_epoch_batches(samples, settings, epoch))
    rng = np.random.default_rng([settings.seed, epoch, 1])
    generator = torch.Generator().manual_seed(settings.seed * 1000 + epoch)
    augmentation = Augmentation() if settings.augment else None
    loss_fn = torch.nn.BCEWithLogitsLoss()
    patches = (patch_batch(batch, records, cache, geometry, compute.device, rng=rng, augmentation=augmentation,
                           generator=generator) for batch in batches)

    def forward(batch: tuple[torch.Tensor, torch.Tensor]) -> Step:
        images, labels = batch
        if compute.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return Step(loss_fn(model(images).float(), labels), len(images))

    return train_one_epoch(model, patches, len(batches), forward, optimizer, scheduler, scaler, compute.autocast,
                           epoch=epoch, epochs=settings.epochs)


def _scheduler(optimizer: torch.optim.Optimizer, settings: ClassifierTraining, steps: int) -> Any:
    warmup = max(1, min(settings.warmup_steps, steps * settings.epochs))
    milestones = [max(1, e * steps - warmup) for e in range(settings.lr_step, settings.epochs, settings.lr_step)]
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [
        torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1e-2, total_iters=warmup),
        torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=settings.lr_gamma),
    ], milestones=[warmup])


def train_classifier(
    studies: Sequence[str | Path],
    models_dir: str | Path,
    settings: ClassifierTraining | None = None,
    *,
    detector: str | Path | None = None,
    validation: Sequence[str | Path] = (),
    **options: Any,
) -> ProgressGenerator[TrainedClassifier]:
    """Train on the annotated vertebrae of ``studies`` (validation: ``validation`` studies, or held-out cases);
    publish the best epoch as ``models_dir/<model_id>``. ``options`` are those of :func:`train_classifier_on`."""
    settings = settings or PRESETS["paper"]
    studies = [Path(s) for s in studies]
    train, val = train_and_validation(studies, validation, settings.source, settings.val_fraction)
    if settings.normals == "detector":
        yield from _add_detector_normals(train, Path(detector) if detector else None, settings.device)
        yield from _add_detector_normals(val, Path(detector) if detector else None, settings.device)
    if not box_samples(train):
        raise TrainingError(f"no annotated vertebrae to train on in {', '.join(map(str, studies))}")
    return (yield from train_classifier_on(train, val, models_dir, settings, studies=studies, **options))


def _model(config: ClassifierConfig, settings: ClassifierTraining, compute: Compute,
           initial_state: dict[str, torch.Tensor] | None) -> torch.nn.Module:
    torch.manual_seed(settings.seed)
    model = build_classifier(config, Path(settings.imagenet) if settings.imagenet else None,
                             use_imagenet=initial_state is None)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    model = model.to(compute.device)
    return model.to(memory_format=torch.channels_last) if compute.channels_last else model


def train_classifier_on(
    train: Sequence[SliceRecord],
    val: Sequence[SliceRecord],
    models_dir: str | Path,
    settings: ClassifierTraining,
    *,
    model_id: str | None = None,
    parent: str | None = None,
    resume: bool = False,
    demo: bool = False,
    architecture: ClassifierConfig | None = None,
    initial_state: dict[str, torch.Tensor] | None = None,
    studies: Sequence[Path] = (),
) -> ProgressGenerator[TrainedClassifier]:
    """Train on ``train`` records, validate on ``val``. ``architecture`` and ``initial_state`` fine-tune an existing
    model (a retrain) instead of starting from ImageNet or random weights."""
    started = time.perf_counter()
    samples = box_samples(train)
    if not samples:
        raise TrainingError("no annotated vertebrae to train on")
    val = list(val) or list(train[:50])
    full_config = architecture or settings.architecture()
    config = replace(full_config, endplate=None)  # the main network alone, until its head is trained
    parent_head = None
    if initial_state is not None:  # a retrain: the parent's endplate head, if it has one, is kept apart
        parent_head = {k[len(ENDPLATE_PREFIX):]: v for k, v in initial_state.items() if k.startswith(ENDPLATE_PREFIX)}
        initial_state = {k: v for k, v in initial_state.items() if not k.startswith(ENDPLATE_PREFIX)}
    compute = training_compute(settings.device, settings.precision)
    distributed.start(compute.device)
    compute = replace(compute, device=distributed.local_device(compute.device))
    model = _model(config, settings, compute, initial_state)
    cache = SliceCache(config.window)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=settings.lr,
                                momentum=settings.momentum, weight_decay=settings.weight_decay)
    scheduler = _scheduler(optimizer, settings, len(distributed.shard(_epoch_batches(samples, settings, 0))))
    scaler = torch.amp.GradScaler("cuda", enabled=compute.kind == "cuda" and compute.autocast_dtype is not None)
    models_dir = Path(models_dir)
    model_id = model_id or distributed.share(f"classifier-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}")
    run = TrainingRun(models_dir / ".training" / model_id,
                      {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler},
                      score="mean_auc", resume=resume)
    truth = box_truth(val)
    log.info("training %s on %s: %d boxes on %d slices, %d validation boxes%s", model_id, compute.describe(),
             len(samples), len(train), len(truth),
             f", {distributed.size()} processes" if distributed.active() else "")
    trained = distributed.wrap(model, compute.device)

    def evaluate(epoch: int) -> Evaluation:
        probabilities = distributed.share(predict_records(VertebraClassifier(model, config, compute), val, cache)
                                          if distributed.is_main() else None)
        loss = float(torch.nn.functional.binary_cross_entropy(
            torch.from_numpy(probabilities).clamp(1e-6, 1 - 1e-6), torch.from_numpy(truth).float()))
        return Evaluation({"mean_auc": mean_auc(truth, probabilities), "val_loss": loss},
                          {"probabilities": torch.from_numpy(np.asarray(probabilities))})

    def report(epoch: int, metrics: dict[str, Any]) -> Progress:
        return Progress("validate", epoch + 1, settings.epochs, f"epoch {epoch + 1}: mean AUC "
                        f"{metrics['mean_auc']:.3f}, loss {metrics['val_loss']:.3f}", metrics)

    yield from fit(run, lambda epoch: _train_one_epoch(trained, samples, train, cache, optimizer, scheduler, scaler,
                                                       compute, settings, config.patch, epoch),
                   evaluate, epochs=settings.epochs, settings=asdict(settings), report=report)
    best, best_probabilities = run.best, run.best_extra["probabilities"].numpy().copy()
    state = dict(run.best_state)
    head = yield from _endplate_head(train, val, full_config, settings, compute, cache, parent_head or None)
    if head is not None:
        config = replace(config, endplate=head.geometry)
        best_probabilities[:, SN_COLUMN] = head.validation
        state.update({ENDPLATE_PREFIX + k: v for k, v in head.state.items()})
    thresholds = choose_thresholds(truth, best_probabilities)
    unlearnt = unlearnt_classes(thresholds)
    if unlearnt:
        log.warning("%s not learnt (validation AUC below %.1f): never called by this model", ", ".join(unlearnt),
                    MIN_AUC)
    metrics = classification_metrics(truth, best_probabilities, calls_from(best_probabilities, thresholds))
    config = config.with_thresholds(thresholds)
    seconds = time.perf_counter() - started
    package = models_dir / model_id
    if distributed.is_main():
        write_package(
            package, kind="classifier", state=state, architecture=config.to_json(),
            classes=list(CLASS_CODES), input_spec={"canvas": config.patch.canvas, "size": config.patch.size,
                                                   "window": config.window, "channels": 3},
            training={"settings": asdict(settings), "studies": [str(s) for s in studies], "slices": len(train),
                      "boxes": len(samples), "validation_slices": len(val), "validation_boxes": len(truth),
                      "epochs": settings.epochs, "best_epoch": best["epoch"], "history": run.history,
                      "seconds": round(seconds, 1), "device": compute.describe(), "processes": distributed.size(),
                      "fine_tuned": initial_state is not None,
                      "threshold_rule": "per class, the highest threshold with the best sensitivity on the "
                                        f"validation split among those with specificity >= {MIN_SPECIFICITY}",
                      "not_learnt": unlearnt,
                      "endplate_head": head.status if head is not None else "none"},
            metrics={"validation": stored_metrics(metrics)}, parent=parent, demo=demo,
            notes=DEMO_NOTICE if demo else "", half=demo,
        )
    run.finish()
    distributed.barrier()
    return TrainedClassifier(package, best["epoch"], metrics, thresholds, run.history, seconds)
