"""Training checkpoints: model, optimizer, scheduler, gradient scaler, epoch and settings, so that a run resumes.

Checkpoints are the app's own files, written atomically into the models folder's ``.training/<model-id>/``; they
are still read with ``weights_only=True``, which refuses anything but tensors and plain values.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
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
