"""Choosing the compute device and precision.

``auto`` means CUDA if present, then Apple's MPS, then the CPU. On CUDA, mixed precision (float16 autocast) is used.
On a CPU with AMX or AVX-512 BF16 units, inference runs in bfloat16 autocast with channels-last memory, which
oneDNN turns into several times the float32 speed; the evaluation shows that AP does not change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from core.errors import DeviceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Compute:
    device: torch.device
    autocast_dtype: torch.dtype | None  # None: plain float32
    channels_last: bool

    @property
    def kind(self) -> str:
        return self.device.type

    def autocast(self) -> torch.autocast:
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def describe(self) -> str:
        precision = {None: "float32", torch.float16: "float16 mixed", torch.bfloat16: "bfloat16 mixed"}[
            self.autocast_dtype
        ]
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else self.device.type.upper()
        return f"{name}, {precision}"


def cpu_has_bf16() -> bool:
    """True when the CPU has matrix units for bfloat16 (AMX) or AVX-512 BF16, which make bf16 faster than fp32."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(bool(check()) for check in checks if callable(check))


def resolve_device(name: str = "auto") -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("CUDA was asked for but no CUDA GPU is available; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("MPS was asked for but is not available; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda or mps") from exc


def inference_compute(name: str = "auto", precision: str = "auto") -> Compute:
    """Device and precision for inference. ``precision``: auto, fp32 or bf16 (CPU) / fp16 (CUDA)."""
    device = resolve_device(name)
    if device.type == "cuda":
        return Compute(device, None if precision == "fp32" else torch.float16, True)
    if device.type == "cpu":
        use_bf16 = precision == "bf16" or (precision == "auto" and cpu_has_bf16())
        return Compute(device, torch.bfloat16 if use_bf16 else None, use_bf16)
    return Compute(device, None, False)


def training_compute(name: str = "auto", precision: str = "auto") -> Compute:
    """Device and precision for training: float16 mixed precision on CUDA; bfloat16 mixed precision on a CPU with
    bf16 units (about 3.5 times the float32 speed for this detector); float32 otherwise or when asked."""
    device = resolve_device(name)
    if device.type == "cuda":
        return Compute(device, None if precision == "fp32" else torch.float16, False)
    if device.type == "cpu" and (precision == "bf16" or (precision == "auto" and cpu_has_bf16())):
        return Compute(device, torch.bfloat16, True)
    return Compute(device, None, False)
