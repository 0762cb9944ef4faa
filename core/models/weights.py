"""ImageNet weights, only from a file given by path or already in the torch cache: nothing is downloaded.

Without them a model starts from random weights, and the log says so once per backbone. Weights that are not a
state dict, or that hold NaN or infinity, are reported and left out the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from core.models.package import non_finite

log = logging.getLogger(__name__)

#: torchvision's file names for its ImageNet weights (as they sit in ``torch.hub.get_dir()/checkpoints``).
CACHE_FILES: dict[str, tuple[str, ...]] = {
    "resnet18": ("resnet18-f37072fd.pth",),
    "resnet50": ("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth"),
    "mobilenet_v2": ("mobilenet_v2-7ebf99e0.pth", "mobilenet_v2-b0353104.pth"),
    "mobilenet_v3_large": ("mobilenet_v3_large-5c1a4163.pth", "mobilenet_v3_large-8738ca79.pth"),
}
_said: set[str] = set()


def find_imagenet(backbone: str, explicit: Path | None = None) -> Path | None:
    if explicit is not None:
        return explicit if explicit.is_file() else None
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for name in CACHE_FILES.get(backbone, ()):
        if (folder / name).is_file():
            return folder / name
    return None


def imagenet_state(backbone: str, explicit: Path | None = None) -> dict[str, torch.Tensor] | None:
    """The ImageNet state dict for ``backbone`` if it is on this machine, else None (and one log line)."""
    path = find_imagenet(backbone, explicit)
    if path is None:
        if backbone not in _said:
            _said.add(backbone)
            where = explicit or Path(torch.hub.get_dir()) / "checkpoints"
            log.info("no ImageNet weights for %s in %s: starting from random weights", backbone, where)
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a bad file is reported and ignored, never executed
        log.warning("ImageNet weights %s could not be read (%s): starting from random weights", path, exc)
        return None
    if not isinstance(state, dict):
        log.warning("ImageNet weights %s are not a state dict: starting from random weights", path)
        return None
    bad = non_finite({name: t for name, t in state.items() if isinstance(t, torch.Tensor)})
    if bad:
        log.warning("ImageNet weights %s hold NaN or infinite values (%s): starting from random weights", path, bad[0])
        return None
    log.info("using ImageNet weights %s for %s", path, backbone)
    return state
