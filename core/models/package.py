"""Model packages: a folder with ``manifest.json`` and ``weights.safetensors``.

Weights are only ever read with safetensors, which holds plain tensors: nothing in a package handed in by a user is
unpickled or executed. A package is written into a temporary folder beside its destination and renamed into place,
so a half-written package never appears.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import __version__
from core.errors import ModelPackageError
from core.fileio import atomic_write_json

if TYPE_CHECKING:  # PyTorch is imported where weights are read or written, so that reading a manifest is quick
    import torch

PACKAGE_FORMAT = "vertebra-review-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
KINDS = ("detector", "classifier")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Manifest:
    """What a package says about itself (the parsed ``manifest.json``)."""

    kind: str
    architecture: Mapping[str, Any]
    classes: tuple[str, ...]
    input: Mapping[str, Any]
    training: Mapping[str, Any]
    metrics: Mapping[str, Any]
    parent: str | None
    created: str
    demo: bool
    raw: Mapping[str, Any]

    @property
    def model_id(self) -> str:
        return str(self.raw.get("id", ""))


def package_dir(path: str | Path) -> Path:
    """The package folder for ``path`` (the folder, or its manifest file)."""
    path = Path(path)
    return path.parent if path.name == MANIFEST else path


def read_manifest(path: str | Path, *, kind: str | None = None) -> Manifest:
    """Parse and check a package's manifest. Raises :class:`ModelPackageError` naming the package."""
    folder = package_dir(path)
    file = folder / MANIFEST
    if not folder.exists():
        raise ModelPackageError("no such model package", folder)
    if not file.is_file():
        raise ModelPackageError(f"not a model package (no {MANIFEST})", folder)
    try:
        if file.stat().st_size > MAX_MANIFEST_BYTES:
            raise ModelPackageError("manifest is too large to be a model manifest", file)
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelPackageError(f"manifest is not readable JSON ({exc})", file) from exc
    if not isinstance(data, dict) or data.get("format") != PACKAGE_FORMAT:
        raise ModelPackageError(f"not a Vertebra Review model (format is not {PACKAGE_FORMAT!r})", file)
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelPackageError(f"package format {version!r} is newer than this app reads ({FORMAT_VERSION})", file)
    found = data.get("kind")
    if found not in KINDS:
        raise ModelPackageError(f"unknown model kind {found!r}", file)
    if kind is not None and found != kind:
        raise ModelPackageError(f"this is a {found} package, not a {kind}, which is needed here", file)
    for key, kind_of in (("architecture", dict), ("classes", list), ("input", dict)):
        if not isinstance(data.get(key), kind_of):
            raise ModelPackageError(f"manifest has no valid {key!r}", file)
    return Manifest(
        kind=found,
        architecture=data["architecture"],
        classes=tuple(str(c) for c in data["classes"]),
        input=data["input"],
        training=data.get("training") or {},
        metrics=data.get("metrics") or {},
        parent=data.get("parent"),
        created=str(data.get("created", "")),
        demo=bool(data.get("demo", False)),
        raw=data,
    )


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The package's tensors, read with safetensors (never unpickled)."""
    file = package_dir(path) / WEIGHTS
    if not file.is_file():
        raise ModelPackageError(f"the package has no {WEIGHTS}", package_dir(path))
    import safetensors
    from safetensors.torch import load_file

    try:
        return load_file(str(file), device="cpu")
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelPackageError(f"weights are not a valid safetensors file ({exc})", file) from exc


def load_state(model: torch.nn.Module, path: str | Path, *, prefix: str = "", exclude: str | None = None) -> None:
    """Load the package's weights into ``model``; every tensor must fit (names and shapes). ``prefix``: only the
    tensors whose names start with it, without it (a part stored beside the main model); ``exclude``: leave out the
    tensors whose names start with that."""
    state = {name[len(prefix):]: tensor for name, tensor in read_weights(path).items()
             if name.startswith(prefix) and not (exclude and name.startswith(exclude))}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ModelPackageError(f"weights do not fit the architecture in the manifest ({_first_line(exc)})",
                                package_dir(path)) from exc
    if missing or unexpected:
        names = ", ".join([*missing[:3], *unexpected[:3]])
        raise ModelPackageError(
            f"weights do not fit the architecture ({len(missing)} missing, {len(unexpected)} unexpected: {names})",
            package_dir(path),
        )


def _stored(tensor: torch.Tensor, half: bool) -> torch.Tensor:
    import torch

    tensor = tensor.detach().to("cpu")
    if half and tensor.is_floating_point():
        tensor = tensor.to(torch.float16)
    return tensor.contiguous()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def write_package(
    destination: str | Path,
    *,
    kind: str,
    state: Mapping[str, torch.Tensor],
    architecture: Mapping[str, Any],
    classes: list[str],
    input_spec: Mapping[str, Any],
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    parent: str | None = None,
    demo: bool = False,
    notes: str = "",
    half: bool = False,
) -> Path:
    """Write a new package at ``destination`` (which must not exist), atomically. ``half`` stores floating-point
    tensors as float16 (half the size; they are widened again when loaded), for the bundled demo models."""
    destination = Path(destination)
    if destination.exists():
        raise ModelPackageError("a model package already exists here", destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": PACKAGE_FORMAT,
        "format_version": FORMAT_VERSION,
        "id": destination.name,
        "kind": kind,
        "architecture": dict(architecture),
        "classes": list(classes),
        "input": dict(input_spec),
        "training": dict(training or {}),
        "metrics": dict(metrics or {}),
        "parent": parent,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "app_version": __version__,
        "demo": demo,
        "notes": notes,
        "weights_dtype": "float16" if half else "float32",
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        from safetensors.torch import save_file

        tensors = {name: _stored(t, half) for name, t in state.items()}
        save_file(tensors, str(staging / WEIGHTS))
        atomic_write_json(staging / MANIFEST, manifest)
        os.rename(staging, destination)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ModelPackageError(f"cannot write the model package: {exc.strerror or exc}", destination) from exc
        raise
    return destination
