"""What the detector's and the classifier's training do alike around :func:`core.training.fit.fit`: before the epochs,
the compute (this process's device when training on several), the model on it (ImageNet, random or fine-tuned
weights), SGD with a linear warm-up and step drops, the gradient scaler and the resumable :class:`TrainingRun`; after
them, the training record every package has and the publication (rank 0 writes, every process waits)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch

from core.errors import TrainingError
from core.models.devices import Compute, training_compute
from core.models.package import write_package
from core.models.registry import DEMO_NOTICE
from core.paths import check_name
from core.training import distributed
from core.training.checkpoints import TrainingRun


class EngineSettings(Protocol):
    """What the shared set-up reads of a detector's or a classifier's training settings."""

    seed: int
    device: str
    precision: str
    imagenet: str | None
    epochs: int
    lr: float
    momentum: float
    weight_decay: float
    warmup_steps: int


@dataclass(frozen=True)
class LearningRate:
    """SGD with momentum: the rate rises linearly from ``warmup_from`` times itself over the warm-up steps, then is
    multiplied by ``gamma`` after each epoch in ``drops``."""

    warmup_from: float
    drops: Sequence[int]
    gamma: float

    def sgd(self, model: torch.nn.Module, settings: EngineSettings, steps: int) -> tuple[Any, Any]:
        """The optimiser and scheduler for ``steps`` optimiser steps an epoch."""
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=settings.lr,
                                    momentum=settings.momentum, weight_decay=settings.weight_decay)
        warmup = max(1, min(settings.warmup_steps, steps * settings.epochs))
        milestones = [max(1, e * steps - warmup) for e in self.drops]
        scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [
            torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=self.warmup_from, total_iters=warmup),
            torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=self.gamma),
        ], milestones=[warmup])
        return optimizer, scheduler


@dataclass(frozen=True)
class TrainingSetup:
    """One training's parts: where it runs, the model, its optimiser, scheduler and gradient scaler, the run that
    checkpoints them all, and the package it will publish."""

    compute: Compute
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    run: TrainingRun
    package: Path

    @property
    def model_id(self) -> str:
        return self.package.name


def distributed_compute(settings: EngineSettings) -> Compute:
    """The settings' compute, on this process's device (starting the process group when launched on several)."""
    compute = training_compute(settings.device, settings.precision)
    distributed.start(compute.device)
    return replace(compute, device=distributed.local_device(compute.device))


def placed_model(build: Callable[..., torch.nn.Module], config: Any, settings: EngineSettings, compute: Compute,
                 initial_state: Mapping[str, torch.Tensor] | None) -> torch.nn.Module:
    """``build(config)`` seeded with ``settings.seed``, from ImageNet weights (when found) or ``initial_state``, on
    the compute's device and memory format."""
    torch.manual_seed(settings.seed)
    model = build(config, Path(settings.imagenet) if settings.imagenet else None, use_imagenet=initial_state is None)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    model = model.to(compute.device)
    return model.to(memory_format=torch.channels_last) if compute.channels_last else model


def check_target(models_dir: str | Path, model_id: str | None) -> None:
    """Refuse, before any training, what would fail or do harm only when the package is published: a model id that
    is not a plain name (``../x`` would put the package outside the models folder and its checkpoint folder, which
    is deleted after publishing, on a folder of the user's), a models folder that is a file, and a package that
    exists already."""
    if model_id is not None:
        check_name(model_id, "model", TrainingError)
    models_dir = Path(models_dir)
    if models_dir.exists() and not models_dir.is_dir():
        raise TrainingError("the models folder is a file, not a folder", models_dir)
    if model_id is not None and (models_dir / model_id).exists():
        raise TrainingError("exists already: a new package needs a new model id", models_dir / model_id)


def start_training(kind: str, build: Callable[..., torch.nn.Module], config: Any, settings: EngineSettings, *,
                   initial_state: Mapping[str, torch.Tensor] | None, steps: Callable[[], int],
                   learning_rate: LearningRate, models_dir: str | Path, model_id: str | None, score: str,
                   resume: bool) -> TrainingSetup:
    """Everything a ``kind`` training needs before its first epoch; ``steps()``: the optimiser steps an epoch (asked
    once the processes are started), ``score``: the validation metric that picks the best epoch."""
    check_target(models_dir, model_id)
    compute = distributed_compute(settings)
    model = placed_model(build, config, settings, compute, initial_state)
    optimizer, scheduler = learning_rate.sgd(model, settings, steps())
    scaler = torch.amp.GradScaler("cuda", enabled=compute.kind == "cuda" and compute.autocast_dtype is not None)
    models_dir = Path(models_dir)
    model_id = model_id or distributed.share(f"{kind}-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}")
    run = TrainingRun(models_dir / ".training" / model_id,
                      {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler},
                      score=score, resume=resume)
    return TrainingSetup(compute, model, optimizer, scheduler, scaler, run, models_dir / model_id)


def processes_note() -> str:
    """For the log line that starts a training: how many processes share it, when more than one."""
    return f", {distributed.size()} processes" if distributed.active() else ""


def training_record(setup: TrainingSetup, settings: EngineSettings, studies: Sequence[Path], slices: int,
                    data: Mapping[str, Any], *, seconds: float, fine_tuned: bool) -> dict[str, Any]:
    """The package's ``training`` entry: the settings, the data (``slices`` and the model's own counts, ``data``), the
    epochs with the best one and the history, the time, where it ran, and whether it was fine-tuned."""
    return {"settings": asdict(settings), "studies": [str(s) for s in studies], "slices": slices, **data,
            "epochs": settings.epochs, "best_epoch": setup.run.best["epoch"], "history": setup.run.history,
            "seconds": round(seconds, 1), "device": setup.compute.describe(), "processes": distributed.size(),
            "fine_tuned": fine_tuned}


def publish(setup: TrainingSetup, *, parent: str | None, demo: bool, **package: Any) -> None:
    """Write the package (rank 0; ``package``: :func:`~core.models.package.write_package`'s content), drop the
    checkpoint, and wait for every process."""
    if distributed.is_main():
        write_package(setup.package, **package, parent=parent, demo=demo, notes=DEMO_NOTICE if demo else "",
                      half=demo)
    setup.run.finish()
    distributed.barrier()
