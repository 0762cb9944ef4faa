"""Training the vertebra detector: a generator that yields progress, validates after each epoch, keeps the best
epoch, checkpoints every epoch (so a run resumes) and publishes a model package only at the end.

Presets:
- ``paper``: ResNet18-FPN at 1024 x 1024, SGD with momentum, learning rate 1e-3, batch 3, 5 epochs, the offline
  8-fold D4 augmentation. Mixed precision on CUDA. For a GPU.
- ``cpu``: ResNet18-FPN at half resolution (the 1024 letterbox scaled to 512), with a 128-channel pyramid and a
  256-wide box head (a third of torchvision's weights, at the same AP: see the README), learning rate 0.01 after a
  short warm-up and 0.001 for the last two of 10 epochs, batch 4, one random D4 element per slice and epoch. It
  trains on 360 slices in about 40 minutes on two cores.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from core.errors import TrainingError
from core.evaluation.detection import ImageDetections, detection_metrics
from core.imaging.letterbox import InputGeometry
from core.imaging.rendering import DEFAULT_RENDERING
from core.models.detector import CLASSES, DetectorConfig, build_detector, postprocess, to_tensor
from core.models.devices import Compute
from core.models.levels import fit_sacrum_model
from core.models.weights import find_imagenet
from core.progress import Progress, ProgressGenerator
from core.training import distributed
from core.training.datasets import DetectionDataset, SliceRecord, collate, collect_records, split_by_case
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
from core.training.transforms import AppearanceJitter

log = logging.getLogger(__name__)

LR_DROP_FACTOR = 0.1  # what the learning rate is multiplied by after each of ``lr_drop_epochs``


@dataclass(frozen=True)
class DetectorTraining:
    """Every training setting (defaults: the paper's)."""

    backbone: str = "resnet18"
    side: int = 1024
    size: int = 1024
    fpn_from: int = 1
    fpn_channels: int = 256
    box_representation: int = 1024
    epochs: int = 5
    batch_size: int = 3
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    lr_drop_epochs: tuple[int, ...] = ()  # epochs after which the learning rate is multiplied by 0.1
    grad_clip: float = 10.0
    augment: str = "d4-all"
    appearance: bool = False  # jitter each slice's grey values too (core.training.transforms.AppearanceJitter)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    workers: int = 0
    val_fraction: float = 0.2
    source: str = "consensus"
    imagenet: str | None = None
    max_slices: int | None = None
    window: str = DEFAULT_RENDERING  # how slices become the input (core.imaging.rendering), kept in the package
    test_views: int = 4  # the package's test-time views (core.models.detector.VIEW_FLIPS), fine-tuned ones too

    def architecture(self) -> DetectorConfig:
        imagenet = find_imagenet(self.backbone, Path(self.imagenet) if self.imagenet else None)
        return DetectorConfig(
            backbone=self.backbone,
            geometry=InputGeometry(self.side, self.size),
            fpn_from=self.fpn_from,
            fpn_channels=self.fpn_channels,
            box_representation=self.box_representation,
            norm="frozen" if imagenet else "batch",
            window=self.window,
            test_views=self.test_views,
        )


PRESETS: dict[str, DetectorTraining] = {
    "paper": DetectorTraining(),
    "cpu": DetectorTraining(size=512, lr=0.01, batch_size=4, epochs=10, lr_drop_epochs=(8,), augment="d4-random",
                            warmup_steps=50, fpn_channels=128, box_representation=256),
}


@dataclass
class TrainedModel:
    package: Path
    best_epoch: int
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _validate(model: torch.nn.Module, dataset: DetectionDataset, compute: Compute, batch_size: int,
              config: DetectorConfig) -> dict:
    """Detection metrics on ``dataset`` (input pixels; IoU and IoM do not change with the letterbox mapping)."""
    model.eval()
    images: list[ImageDetections] = []
    with torch.inference_mode(), compute.autocast():
        for start in range(0, len(dataset), batch_size):
            samples = [dataset.sample(i) for i in range(start, min(len(dataset), start + batch_size))]
            outputs = model([to_tensor(image).to(compute.device) for image, _, _ in samples])
            for offset, ((_, truth, _), output) in enumerate(zip(samples, outputs, strict=True)):
                record = dataset.records[start + offset]
                boxes, scores = postprocess(output, config)
                images.append(ImageDetections.of(record.key, boxes, scores, truth))
    metrics = detection_metrics(images)
    metrics.pop("per_image")
    return metrics


def _train_one_epoch(model: torch.nn.Module, loader: DataLoader, setup: TrainingSetup, settings: DetectorTraining,
                     epoch: int) -> Iterator[Progress]:
    device = setup.compute.device

    def forward(batch: tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]) -> Step:
        images = [image.to(device, non_blocking=True) for image in batch[0]]
        targets = [{k: v.to(device) for k, v in t.items()} for t in batch[1]]
        losses = model(images, targets)
        return Step(sum(losses.values()), len(images), losses)

    return train_one_epoch(model, iter(loader), len(loader), forward, setup.optimizer, setup.scheduler, setup.scaler,
                           setup.compute.autocast, epoch=epoch, epochs=settings.epochs, clip=settings.grad_clip)


def _evaluate(setup: TrainingSetup, dataset: DetectionDataset, batch_size: int, config: DetectorConfig) -> Evaluation:
    """The epoch's validation, on rank 0, shared with every process."""
    return Evaluation(distributed.share(_validate(setup.model, dataset, setup.compute, batch_size, config)
                                        if distributed.is_main() else None))


def _report(epochs: int, epoch: int, metrics: dict[str, Any]) -> Progress:
    return Progress("validate", epoch + 1, epochs,
                    f"epoch {epoch + 1}: AP50 {metrics['ap50']:.3f}, FP {metrics['fp_rate']:.1%}, "
                    f"FN {metrics['fn_rate']:.1%}", {k: v for k, v in metrics.items() if isinstance(v, float)})


def _learning_rate(settings: DetectorTraining) -> LearningRate:
    """From a thousandth of the rate, multiplied by :data:`LR_DROP_FACTOR` after each of ``lr_drop_epochs``."""
    return LearningRate(warmup_from=1e-3, drops=settings.lr_drop_epochs, gamma=LR_DROP_FACTOR)


def _loader(dataset: DetectionDataset, settings: DetectorTraining, epoch: int) -> DataLoader:
    """This epoch's batches (this rank's share of them when training on several processes)."""
    torch.manual_seed(settings.seed * 1000 + epoch + 7919 * distributed.rank())  # this epoch's augmentation
    if distributed.active():
        sampler = DistributedSampler(dataset, shuffle=True, seed=settings.seed, drop_last=True)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, batch_size=settings.batch_size, sampler=sampler, collate_fn=collate,
                          num_workers=settings.workers)
    shuffle = torch.Generator().manual_seed(settings.seed + epoch)
    return DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, collate_fn=collate,
                      num_workers=settings.workers, generator=shuffle)


def train_detector(
    studies: Sequence[str | Path],
    models_dir: str | Path,
    settings: DetectorTraining | None = None,
    *,
    validation: Sequence[str | Path] = (),
    **options: Any,
) -> ProgressGenerator[TrainedModel]:
    """Train on the annotated slices of ``studies`` (validation: ``validation`` studies, or held-out cases); publish
    the best epoch as ``models_dir/<model_id>``. ``options`` are those of :func:`train_detector_on`."""
    settings = settings or PRESETS["paper"]
    check_target(models_dir, options.get("model_id"))
    studies = [Path(s) for s in studies]
    records = collect_records(studies, settings.source)
    if validation:
        train, val = records, collect_records([Path(v) for v in validation], settings.source)
    else:
        train, val = split_by_case(records, settings.val_fraction)
    if settings.max_slices is not None:
        train = train[: settings.max_slices]
    if not train:
        raise TrainingError(f"no annotated slices to train on in {', '.join(map(str, studies))}")
    return (yield from train_detector_on(train, val, models_dir, settings, studies=studies, **options))


def train_detector_on(
    train: Sequence[SliceRecord],
    val: Sequence[SliceRecord],
    models_dir: str | Path,
    settings: DetectorTraining,
    *,
    model_id: str | None = None,
    parent: str | None = None,
    resume: bool = False,
    demo: bool = False,
    architecture: DetectorConfig | None = None,
    initial_state: dict[str, torch.Tensor] | None = None,
    studies: Sequence[Path] = (),
) -> ProgressGenerator[TrainedModel]:
    """Train on ``train`` records, validate on ``val``. ``architecture`` and ``initial_state`` fine-tune an existing
    model (a retrain) instead of starting from ImageNet or random weights."""
    started = time.perf_counter()
    config = architecture or settings.architecture()
    train_set = DetectionDataset(train, config.geometry, settings.augment, config.window,
                                 AppearanceJitter() if settings.appearance else None)
    val_set = DetectionDataset(val or train[:50], config.geometry, "none", config.window)
    setup = start_training("detector", build_detector, config, settings, initial_state=initial_state,
                           steps=lambda: len(_loader(train_set, settings, 0)), learning_rate=_learning_rate(settings),
                           models_dir=models_dir, model_id=model_id, score="ap50", resume=resume)
    log.info("training %s on %s: %d training, %d validation slices%s", setup.model_id, setup.compute.describe(),
             len(train), len(val), processes_note())
    trained = distributed.wrap(setup.model, setup.compute.device)
    yield from fit(setup.run, lambda epoch: _train_one_epoch(trained, _loader(train_set, settings, epoch), setup,
                                                             settings, epoch),
                   lambda epoch: _evaluate(setup, val_set, settings.batch_size, config), epochs=settings.epochs,
                   settings=asdict(settings), report=partial(_report, settings.epochs))
    best = setup.run.best
    seconds = time.perf_counter() - started
    config = replace(config, sacrum=fit_sacrum_model([(r.boxes, r.levels) for r in train]) or config.sacrum,
                     test_views=settings.test_views)
    validation = {"validation_slices": len(val),
                  "validation": "held-out cases" if val else "training slices (no held-out cases)"}
    publish(setup, kind="detector", state=setup.run.best_state, architecture=config.to_json(), classes=list(CLASSES),
            input_spec={**config.geometry.to_json(), "window": config.window, "channels": 3},
            training=training_record(setup, settings, studies, len(train), validation, seconds=seconds,
                                     fine_tuned=initial_state is not None),
            metrics={"validation": best}, parent=parent, demo=demo)
    return TrainedModel(setup.package, best["epoch"], best, setup.run.history, seconds)


def with_overrides(preset: str, **changes: Any) -> DetectorTraining:
    """A preset with some settings changed (None values are ignored)."""
    if preset not in PRESETS:
        raise TrainingError(f"unknown preset {preset!r}: use {', '.join(PRESETS)}")
    return replace(PRESETS[preset], **{k: v for k, v in changes.items() if v is not None})

