"""Training checkpoints: model, optimizer, scheduler, gradient scaler, epoch and settings, so that a run resumes.

Checkpoints are the app's own files, written atomically into the models folder's ``.training/<model-id>/``; they
are still read with ``weights_only=True``, which refuses anything but tensors and plain values.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from core.errors import TrainingError
from core.fileio import atomic_write_bytes

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(folder: Path, state: Mapping[str, Any]) -> Path:
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    return atomic_write_bytes(folder / CHECKPOINT, buffer.getvalue())


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The checkpoint in ``folder``, or None when there is none. Raises TrainingError when it cannot be read."""
    path = folder / CHECKPOINT
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainingError(f"the checkpoint cannot be read ({type(exc).__name__}: {exc}); start afresh", path) from exc
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise TrainingError("not a training checkpoint of this app", path)
    return state


class TrainingRun:
    """The bookkeeping of :func:`core.training.fit.fit`: resuming from a checkpoint, the history of validation
    metrics, the best epoch's weights (and any extra tensors kept with it), a checkpoint after every epoch and
    the clean-up after publishing. Under several processes only rank 0 writes.

    The best epoch has the highest ``metrics[score]``, or the highest ``rank(metrics)`` when ``rank`` is given;
    with ``ties`` a later epoch that ties replaces it. Without ``work`` nothing is written (a short run that
    cannot resume)."""

    def __init__(self, work: Path | None, parts: Mapping[str, Any], *, score: str, resume: bool,
                 rank: Callable[[Mapping[str, Any]], Any] | None = None, ties: bool = False) -> None:
        from core.training import distributed

        self.work = work
        self.parts = dict(parts)  # model, optimizer, scheduler, scaler: anything with state_dict()
        self.score = score
        self.rank = rank or (lambda metrics: metrics[score])
        self.ties = ties
        self.main = distributed.is_main()
        self.first_epoch, self.history, self.best = 0, [], None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_extra: dict[str, torch.Tensor] = {}
        checkpoint = load_checkpoint(work) if resume and work is not None else None
        if checkpoint is not None:
            for name, part in self.parts.items():
                part.load_state_dict(checkpoint[name])
            self.first_epoch, self.history, self.best = checkpoint["epoch"], checkpoint["history"], checkpoint["best"]
            self.best_state, self.best_extra = checkpoint["best_state"], checkpoint.get("best_extra", {})

    @property
    def resumed(self) -> bool:
        return self.first_epoch > 0

    def end_epoch(self, epoch: int, metrics: dict[str, Any], settings: Mapping[str, Any],
                  **extra: torch.Tensor) -> None:
        """Record epoch ``epoch``'s validation ``metrics``; keep the weights if they are the best so far; save."""
        metrics["epoch"] = epoch + 1
        self.history.append(metrics)
        if self.best is None or self._better(metrics, self.best):
            self.best = metrics
            model = self.parts["model"]
            self.best_state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
            self.best_extra = dict(extra)
        if self.main and self.work is not None:
            state = {name: part.state_dict() for name, part in self.parts.items()}
            save_checkpoint(self.work, {**state, "epoch": epoch + 1, "history": self.history, "best": self.best,
                                        "best_state": self.best_state, "best_extra": self.best_extra,
                                        "settings": dict(settings)})

    def _better(self, metrics: Mapping[str, Any], best: Mapping[str, Any]) -> bool:
        new, old = self.rank(metrics), self.rank(best)
        return bool(new >= old if self.ties else new > old)

    def finish(self) -> None:
        """After the package is published: the checkpoint is no longer needed."""
        if self.main and self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
