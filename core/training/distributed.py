"""Data-parallel training across processes (``torchrun --nproc_per_node N``): DistributedDataParallel with NCCL on
GPUs and gloo on CPUs. Without torchrun's environment every function here is a no-op, so the engines run the same
code in one process.

Rank 0 validates, checkpoints and publishes; the other ranks train on their share of the batches and wait for it.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def start(device: torch.device) -> bool:
    """Join the process group that torchrun describes in the environment; False when not under torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def local_device(device: torch.device) -> torch.device:
    """Each rank's own GPU under torchrun (LOCAL_RANK); the device unchanged otherwise."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        index = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` inside DistributedDataParallel when running distributed (gradients are averaged across ranks)."""
    if not active():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def share(value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(items: list, *, equal: bool = True) -> list:
    """This rank's share of ``items`` (every ``size()``-th item); with ``equal`` every rank gets the same count, so
    that DistributedDataParallel's collective steps stay in step."""
    if not active():
        return items
    count = len(items) // size() if equal else None
    return items[rank() :: size()][:count]
