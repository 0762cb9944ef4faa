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

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.annotations.model import CLASS_CODES
from core.errors import TrainingError
from core.evaluation.classification import (
    MIN_AUC,
    calls_from,
    choose_thresholds,
    classification_metrics,
    unlearnt_classes,
)
from core.imaging.rendering import DEFAULT_RENDERING
from core.models.classifier import (
    ENDPLATE_PREFIX,
    SN_COLUMN,
    ClassifierConfig,
    VertebraClassifier,
    build_classifier,
    check_smoothing,
    check_spacing,
)
from core.models.endplate import EndplateGeometry
from core.models.extraction import PatchGeometry
from core.models.weights import find_imagenet
from core.progress import Progress, ProgressGenerator
from core.training import distributed
from core.training.checkpoints import TrainingRun
from core.training.classification_data import (
    APPEARANCE_GRAIN,
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
from core.training.endplate_head import THRESHOLD_RULE, EndplateHead, add_endplate_head, with_head
from core.training.endplate_head import endplate_head as _endplate_head
from core.training.fit import Evaluation, Step, fit, train_one_epoch
from core.training.training_setup import (
    LearningRate,
    TrainingSetup,
    check_target,
    processes_note,
    publish,
    start_training,
    training_record,
)

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
    appearance: bool = False  # also jitter each patch's grey values (core.training.transforms.AppearanceJitter)
    appearance_grain: str = "fine"  # its spatial effects fine or coarse (classification_data.APPEARANCE_GRAIN)
    edge_cut: float = 0.0  # the share of training patches cut as by the image's edge (classification_data.cut_at_edge)
    smoothing: float = 0.0  # Gaussian SD (pixels) of the slice under the patches, trained and used (ClassifierConfig)
    spacing_mm: float = 0.0  # the pixel size slices are resampled to under the patches, trained and used; 0: none
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
                                endplate=EndplateGeometry() if self.endplate else None, window=self.window,
                                smoothing=self.smoothing, spacing_mm=self.spacing_mm)


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
                     cache: SliceCache, setup: TrainingSetup, settings: ClassifierTraining, config: ClassifierConfig,
                     epoch: int) -> Iterator[Progress]:
    """One epoch of this process's share of the resampled boxes; the patches are cut and augmented as each batch is
    fetched, on the main thread (timed as waiting for data)."""
    compute = setup.compute
    batches = distributed.shard(_epoch_batches(samples, settings, epoch))
    rng = np.random.default_rng([settings.seed, epoch, 1])
    generator = torch.Generator().manual_seed(settings.seed * 1000 + epoch)
    jitter = APPEARANCE_GRAIN[settings.appearance_grain] if settings.appearance else None
    augmentation = Augmentation(appearance=jitter) if settings.augment else None
    loss_fn = torch.nn.BCEWithLogitsLoss()
    patches = (patch_batch(batch, records, cache, config.patch, compute.device, rng=rng, augmentation=augmentation,
                           generator=generator, edge_cut=settings.edge_cut if settings.augment else 0.0,
                           smoothing=config.smoothing, spacing_mm=config.spacing_mm)
               for batch in batches)

    def forward(batch: tuple[torch.Tensor, torch.Tensor]) -> Step:
        images, labels = batch
        if compute.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return Step(loss_fn(model(images).float(), labels), len(images))

    return train_one_epoch(model, patches, len(batches), forward, setup.optimizer, setup.scheduler, setup.scaler,
                           compute.autocast, epoch=epoch, epochs=settings.epochs)


def _learning_rate(settings: ClassifierTraining) -> LearningRate:
    """From a hundredth of the rate, multiplied by ``lr_gamma`` every ``lr_step`` epochs."""
    return LearningRate(warmup_from=1e-2, drops=range(settings.lr_step, settings.epochs, settings.lr_step),
                        gamma=settings.lr_gamma)


def check_settings(settings: ClassifierTraining) -> None:
    """Refuse settings that would fail only after the main network's hours of training."""
    if settings.appearance_grain not in APPEARANCE_GRAIN:
        raise TrainingError(f"the jitter's grain is {' or '.join(APPEARANCE_GRAIN)}, not {settings.appearance_grain!r}")
    if not 0.0 <= settings.edge_cut <= 1.0:
        raise TrainingError(f"the share of patches cut at an edge is between 0 and 1, not {settings.edge_cut}")
    try:
        check_smoothing(settings.smoothing)
        check_spacing(settings.spacing_mm)
    except ValueError as exc:
        raise TrainingError(str(exc)) from exc
    if settings.endplate and settings.endplate_steps < 1:
        raise TrainingError(f"the endplate head needs at least one training step, not {settings.endplate_steps} "
                            "(to train none, leave it out: --no-endplate)")


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
    check_settings(settings)
    check_target(models_dir, options.get("model_id"))
    studies = [Path(s) for s in studies]
    train, val = train_and_validation(studies, validation, settings.source, settings.val_fraction)
    if settings.normals == "detector":
        yield from _add_detector_normals(train, Path(detector) if detector else None, settings.device)
        yield from _add_detector_normals(val, Path(detector) if detector else None, settings.device)
    if not box_samples(train):
        raise TrainingError(f"no annotated vertebrae to train on in {', '.join(map(str, studies))}")
    return (yield from train_classifier_on(train, val, models_dir, settings, studies=studies, **options))


def _without_head(initial_state: dict[str, torch.Tensor] | None) -> tuple[dict[str, torch.Tensor] | None,
                                                                           dict[str, torch.Tensor] | None]:
    """A retrain's parent weights split into the main network's and its endplate head's (None: it has none)."""
    if initial_state is None:
        return None, None
    head = {k[len(ENDPLATE_PREFIX):]: v for k, v in initial_state.items() if k.startswith(ENDPLATE_PREFIX)}
    return {k: v for k, v in initial_state.items() if not k.startswith(ENDPLATE_PREFIX)}, head or None


@dataclass(frozen=True)
class _Boxes:
    """The boxes trained on and the validation split (the first 50 training slices when there is none) with its
    truth, one row of classes per box."""

    train: Sequence[SliceRecord]
    samples: list[BoxSample]
    val: list[SliceRecord]
    truth: np.ndarray

    @classmethod
    def of(cls, train: Sequence[SliceRecord], val: Sequence[SliceRecord]) -> _Boxes:
        samples = box_samples(train)
        if not samples:
            raise TrainingError("no annotated vertebrae to train on")
        val = list(val) or list(train[:50])
        return cls(train, samples, val, box_truth(val))

    def counts(self) -> dict[str, int]:
        return {"boxes": len(self.samples), "validation_slices": len(self.val), "validation_boxes": len(self.truth)}

    def evaluate(self, setup: TrainingSetup, config: ClassifierConfig, cache: SliceCache) -> Evaluation:
        """Mean AUC and loss of the model now (computed on rank 0, shared with every process); the probabilities
        are kept with the best epoch."""
        classifier = VertebraClassifier(setup.model, config, setup.compute)
        probabilities = distributed.share(predict_records(classifier, self.val, cache)
                                          if distributed.is_main() else None)
        loss = float(torch.nn.functional.binary_cross_entropy(
            torch.from_numpy(probabilities).clamp(1e-6, 1 - 1e-6), torch.from_numpy(self.truth).float()))
        return Evaluation({"mean_auc": mean_auc(self.truth, probabilities), "val_loss": loss},
                          {"probabilities": torch.from_numpy(np.asarray(probabilities))})


def _report(epochs: int, epoch: int, metrics: dict[str, Any]) -> Progress:
    return Progress("validate", epoch + 1, epochs, f"epoch {epoch + 1}: mean AUC {metrics['mean_auc']:.3f}, loss "
                    f"{metrics['val_loss']:.3f}", metrics)


@dataclass(frozen=True)
class _Published:
    """What the package gets after the epochs: the weights with the endplate head, the configuration with the
    thresholds, and the validation metrics at those thresholds."""

    config: ClassifierConfig
    state: dict[str, torch.Tensor]
    thresholds: dict[str, float]
    unlearnt: list[str]
    metrics: dict[str, Any]
    endplate_head: str  # "trained", "kept from the parent" or "none"


def _with_head_and_thresholds(run: TrainingRun, head: EndplateHead | None, config: ClassifierConfig,
                              truth: np.ndarray) -> _Published:
    """The best epoch with ``head`` added (its SN probabilities replace the main network's) and per-class
    thresholds chosen on the validation split."""
    probabilities, state = run.best_extra["probabilities"].numpy().copy(), dict(run.best_state)
    if head is not None:
        config = replace(config, endplate=head.geometry)
        probabilities[:, SN_COLUMN] = head.validation
        state = with_head(state, head.state)
    thresholds = choose_thresholds(truth, probabilities)
    unlearnt = unlearnt_classes(thresholds)
    if unlearnt:
        log.warning("%s not learnt (validation AUC below %.1f): never called by this model", ", ".join(unlearnt),
                    MIN_AUC)
    metrics = classification_metrics(truth, probabilities, calls_from(probabilities, thresholds))
    return _Published(config.with_thresholds(thresholds), state, thresholds, unlearnt, metrics,
                      head.status if head is not None else "none")


def _publish(setup: TrainingSetup, settings: ClassifierTraining, boxes: _Boxes, final: _Published, *,
             studies: Sequence[Path], seconds: float, fine_tuned: bool, parent: str | None, demo: bool) -> None:
    """Write the classifier's package with its training record (rank 0), then end the run."""
    patch, window = final.config.patch, final.config.window
    training = training_record(setup, settings, studies, len(boxes.train), boxes.counts(), seconds=seconds,
                               fine_tuned=fine_tuned)
    publish(setup, kind="classifier", state=final.state, architecture=final.config.to_json(),
            classes=list(CLASS_CODES),
            input_spec={"canvas": patch.canvas, "size": patch.size, "window": window, "channels": 3},
            training={**training, "threshold_rule": THRESHOLD_RULE, "not_learnt": final.unlearnt,
                      "endplate_head": final.endplate_head},
            metrics={"validation": stored_metrics(final.metrics)}, parent=parent, demo=demo)


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
    check_settings(settings)
    started = time.perf_counter()
    boxes = _Boxes.of(train, val)
    full_config = architecture or settings.architecture()
    # a fine-tune's record says what it trained with
    settings = replace(settings, smoothing=full_config.smoothing, spacing_mm=full_config.spacing_mm)
    config = replace(full_config, endplate=None)  # the main network alone, until its head is trained
    main_state, parent_head = _without_head(initial_state)  # a retrain keeps the parent's head apart
    setup = start_training("classifier", build_classifier, config, settings, initial_state=main_state,
                           steps=lambda: len(distributed.shard(_epoch_batches(boxes.samples, settings, 0))),
                           learning_rate=_learning_rate(settings), models_dir=models_dir, model_id=model_id,
                           score="mean_auc", resume=resume)
    cache = SliceCache(config.window)
    log.info("training %s on %s: %d boxes on %d slices, %d validation boxes%s", setup.model_id,
             setup.compute.describe(), len(boxes.samples), len(train), len(boxes.truth), processes_note())
    trained = distributed.wrap(setup.model, setup.compute.device)
    yield from fit(setup.run, lambda epoch: _train_one_epoch(trained, boxes.samples, train, cache, setup, settings,
                                                             config, epoch),
                   lambda epoch: boxes.evaluate(setup, config, cache), epochs=settings.epochs,
                   settings=asdict(settings), report=partial(_report, settings.epochs))
    head = yield from _endplate_head(train, boxes.val, full_config, settings, setup.compute, cache, parent_head)
    final = _with_head_and_thresholds(setup.run, head, config, boxes.truth)
    seconds = time.perf_counter() - started
    _publish(setup, settings, boxes, final, studies=studies, seconds=seconds, fine_tuned=initial_state is not None,
             parent=parent, demo=demo)
    return TrainedClassifier(setup.package, setup.run.best["epoch"], final.metrics, final.thresholds,
                             setup.run.history, seconds)
