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
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.annotations.model import CLASS_CODES, DISEASES
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
from core.models.endplate import EndplateGeometry, EndplateNet
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
from core.training.datasets import SliceRecord, collect_records, split_by_case
from core.training.endplate_engine import EndplateTraining, predict_endplate, train_endplate
from core.training.throughput import StepClock

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


@dataclass
class TrainedClassifier:
    package: Path
    best_epoch: int
    metrics: dict[str, Any]
    thresholds: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


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


def _truth(records: Sequence[SliceRecord]) -> np.ndarray:
    return np.stack([s.labels for s in box_samples(records)]) if records else np.zeros((0, len(CLASS_CODES)))


def predict_records(classifier: VertebraClassifier, records: Sequence[SliceRecord], cache: SliceCache,
                    chunk_slices: int = 8) -> np.ndarray:
    """(boxes, 6) test-time probabilities for every box of ``records``, in ``box_samples`` order."""
    out = []
    for start in range(0, len(records), chunk_slices):
        part = records[start : start + chunk_slices]
        out.extend(classifier.predict([cache.image(r) for r in part], [r.boxes for r in part]))
    return np.concatenate(out) if out else np.zeros((0, len(CLASS_CODES)))


def _score(truth: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean AUC over the diseases with both positive and negative boxes (0 when there are none)."""
    metrics = classification_metrics(truth, probabilities, calls_from(probabilities, {c: 0.5 for c in CLASS_CODES}))
    aucs = [metrics["per_class"][d.value]["auc"] for d in DISEASES]
    aucs = [a for a in aucs if a is not None]
    return float(np.mean(aucs)) if aucs else 0.0


def _epoch_batches(samples: Sequence[BoxSample], settings: ClassifierTraining, epoch: int) -> list[list[BoxSample]]:
    rng = np.random.default_rng([settings.seed, epoch])
    chosen: list[int] = []
    for _ in range(settings.patches_per_box):  # each repetition draws fresh jitter, as the paper's five patches
        chosen += resample(samples, rng)
    order = rng.permutation(len(chosen))
    picked = [samples[chosen[i]] for i in order]
    return [picked[i : i + settings.batch_size] for i in range(0, len(picked), settings.batch_size)]


def _train_epoch(model: torch.nn.Module, batches: list[list[BoxSample]], records: Sequence[SliceRecord],
                 cache: SliceCache, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler,
                 compute: Compute, settings: ClassifierTraining, geometry: PatchGeometry,
                 epoch: int) -> Iterator[Progress]:
    model.train()
    rng = np.random.default_rng([settings.seed, epoch, 1])
    generator = torch.Generator().manual_seed(settings.seed * 1000 + epoch)
    augmentation = Augmentation() if settings.augment else None
    loss_fn = torch.nn.BCEWithLogitsLoss()
    running: list[float] = []
    clock = StepClock()
    for step, batch in enumerate(batches, start=1):
        with clock.waiting():  # the patches are cut and augmented here, on the main thread
            patches, labels = patch_batch(batch, records, cache, geometry, compute.device, rng=rng,
                                          augmentation=augmentation, generator=generator)
        if compute.channels_last:
            patches = patches.contiguous(memory_format=torch.channels_last)
        with compute.autocast():
            loss = loss_fn(model(patches).float(), labels)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingError(f"the loss became {value} at epoch {epoch + 1}, step {step}; "
                                "lower the learning rate or check the annotations")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        running.append(value)
        yield Progress("train", step, len(batches), f"epoch {epoch + 1}/{settings.epochs} loss "
                       f"{np.mean(running[-20:]):.3f}", {"loss": value, "lr": optimizer.param_groups[0]["lr"],
                                                         "epoch": epoch + 1, **clock.step(len(patches))})


def _scheduler(optimizer: torch.optim.Optimizer, settings: ClassifierTraining, steps: int) -> Any:
    warmup = max(1, min(settings.warmup_steps, steps * settings.epochs))
    milestones = [max(1, e * steps - warmup) for e in range(settings.lr_step, settings.epochs, settings.lr_step)]
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [
        torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1e-2, total_iters=warmup),
        torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=settings.lr_gamma),
    ], milestones=[warmup])


def _train_and_validation(studies: Sequence[Path], validation: Sequence[str | Path], source: str,
                          fraction: float) -> tuple[list[SliceRecord], list[SliceRecord]]:
    """The annotated slices of ``studies``, and those of ``validation`` (or ``fraction`` of the cases held out)."""
    records = collect_records(studies, source)
    if validation:
        return records, collect_records([Path(v) for v in validation], source)
    return split_by_case(records, fraction)


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
    train, val = _train_and_validation(studies, validation, settings.source, settings.val_fraction)
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
    if run.resumed:
        log.info("resuming %s after epoch %d", model_id, run.first_epoch)
    truth = _truth(val)
    log.info("training %s on %s: %d boxes on %d slices, %d validation boxes%s", model_id, compute.describe(),
             len(samples), len(train), len(truth),
             f", {distributed.size()} processes" if distributed.active() else "")
    trained = distributed.wrap(model, compute.device)
    for epoch in range(run.first_epoch, settings.epochs):
        batches = distributed.shard(_epoch_batches(samples, settings, epoch))
        yield from _train_epoch(trained, batches, train, cache, optimizer, scheduler, scaler, compute, settings,
                                config.patch, epoch)
        probabilities = distributed.share(predict_records(VertebraClassifier(model, config, compute), val, cache)
                                          if distributed.is_main() else None)
        score = _score(truth, probabilities)
        loss = float(torch.nn.functional.binary_cross_entropy(
            torch.from_numpy(probabilities).clamp(1e-6, 1 - 1e-6), torch.from_numpy(truth).float()))
        run.end_epoch(epoch, {"mean_auc": score, "val_loss": loss}, asdict(settings),
                      probabilities=torch.from_numpy(np.asarray(probabilities)))
        yield Progress("validate", epoch + 1, settings.epochs,
                       f"epoch {epoch + 1}: mean AUC {score:.3f}, loss {loss:.3f}", run.history[-1])
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
            metrics={"validation": _stored_metrics(metrics)}, parent=parent, demo=demo,
            notes=DEMO_NOTICE if demo else "", half=demo,
        )
    run.finish()
    distributed.barrier()
    return TrainedClassifier(package, best["epoch"], metrics, thresholds, run.history, seconds)


@dataclass
class EndplateHead:
    """The endplate head a package gets: its bands, weights, validation SN probabilities and where it came from."""

    geometry: EndplateGeometry
    state: dict[str, torch.Tensor]
    validation: np.ndarray
    status: str  # "trained" or "kept from the parent"


def _endplate_head(train: Sequence[SliceRecord], val: Sequence[SliceRecord], config: ClassifierConfig,
                   settings: ClassifierTraining, compute: Compute, cache: SliceCache,
                   parent: dict[str, torch.Tensor] | None) -> ProgressGenerator[EndplateHead | None]:
    """The endplate head for the package: trained when ``settings.endplate`` and the data has enough nodes, else
    the parent's unchanged, else none."""
    geometry = config.endplate or EndplateGeometry()
    if not distributed.is_main():
        return None
    if settings.endplate:
        trained = yield from train_endplate(train, val, geometry,
                                            EndplateTraining(steps=settings.endplate_steps, seed=settings.seed),
                                            cache=cache, device=compute.device, initial_state=parent)
        if trained is not None:
            return EndplateHead(geometry, trained.state, trained.validation, "trained")
    if parent is None or config.endplate is None:
        return None
    model = EndplateNet(geometry)
    model.load_state_dict(parent)
    return EndplateHead(geometry, parent, predict_endplate(model.to(compute.device), val, cache, geometry,
                                                          compute.device), "kept from the parent")


def add_endplate_head(
    package: str | Path,
    studies: Sequence[str | Path],
    out: str | Path,
    *,
    validation: Sequence[str | Path] = (),
    steps: int = 400,
    seed: int = 0,
    device: str = "auto",
    source: str = "consensus",
    val_fraction: float = 0.2,
) -> ProgressGenerator[TrainedClassifier]:
    """A copy of the classifier ``package`` at ``out`` with a newly trained endplate head (replacing any it has) and
    the SN threshold chosen on the validation split: for a classifier that does not see Schmorl's nodes, without
    training its main network again. The main network's weights and the other classes' thresholds are kept."""
    from core.models.package import load_state, read_manifest

    started = time.perf_counter()
    source_package = Path(package)
    manifest = read_manifest(source_package, kind="classifier")
    config = ClassifierConfig.from_json(manifest.architecture)
    train, val = _train_and_validation([Path(s) for s in studies], validation, source, val_fraction)
    if not box_samples(train) or not box_samples(val):
        raise TrainingError("the endplate head needs annotated vertebrae to train on and to validate on")
    compute = training_compute(device, "fp32")
    network = build_classifier(config, use_imagenet=False)
    load_state(network, source_package, exclude=ENDPLATE_PREFIX)
    main = VertebraClassifier(network, replace(config, endplate=None), compute, source_package)
    cache = SliceCache(config.window)
    truth = _truth(val)
    yield Progress("validate", 0, 1, "the main network on the validation split")
    probabilities = predict_records(main, val, cache)
    geometry = config.endplate or EndplateGeometry()
    trained = yield from train_endplate(train, val, geometry, EndplateTraining(steps=steps, seed=seed), cache=cache,
                                        device=compute.device)
    if trained is None:
        raise TrainingError(f"too few Schmorl's node boxes to train the endplate head on in "
                            f"{', '.join(map(str, studies))}")
    probabilities[:, SN_COLUMN] = trained.validation
    thresholds = dict(config.thresholds) | {"SN": choose_thresholds(truth, probabilities)["SN"]}
    metrics = classification_metrics(truth, probabilities, calls_from(probabilities, thresholds))
    config = replace(config, endplate=geometry).with_thresholds(thresholds)
    state = dict(network.state_dict())
    state.update({ENDPLATE_PREFIX + k: v for k, v in trained.state.items()})
    seconds = time.perf_counter() - started
    training = dict(manifest.training) | {
        "endplate_head": "added", "not_learnt": unlearnt_classes(thresholds),
        "endplate_training": {"studies": [str(s) for s in studies], "validation": [str(v) for v in validation],
                              "steps": steps, "seed": seed, "best_step": trained.step,
                              "positives": trained.positives, "validation_auc": trained.auc,
                              "seconds": round(seconds, 1)},
        "threshold_rule": "per class, the highest threshold with the best sensitivity on the validation split "
                          f"among those with specificity >= {MIN_SPECIFICITY} (SN chosen again with the endplate "
                          "head; the other classes' kept)"}
    out = Path(out)
    write_package(out, kind="classifier", state=state, architecture=config.to_json(), classes=list(CLASS_CODES),
                  input_spec=manifest.input, training=training, metrics={"validation": _stored_metrics(metrics)},
                  parent=manifest.parent, demo=manifest.demo,
                  notes=DEMO_NOTICE if manifest.demo else "", half=manifest.demo)
    return TrainedClassifier(out, int(manifest.training.get("best_epoch", 0) or 0), metrics, thresholds, [],
                             seconds)


def _stored_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The validation metrics without the ROC curves (kept out of the manifest)."""
    per_class = {c: {k: v for k, v in m.items() if k != "roc"} for c, m in metrics["per_class"].items()}
    return {k: v for k, v in metrics.items() if k != "per_class"} | {"per_class": per_class}
