"""Model packages: a folder with ``manifest.json`` and ``weights.safetensors``.

Weights are only ever read with safetensors, which holds plain tensors: nothing in a package handed in by a user is
unpickled or executed. A package is written into a temporary folder beside its destination and renamed into place,
so a half-written package never appears. Its folder and files get the modes that ``mkdir`` and ``open`` give under
the process's umask (:func:`follow_umask`), as every other file of a study does, so that the other readers of a
shared study can load it. While a staging folder is written its writer holds an OS lock on it, which tells the folder
of a writer that was killed (:func:`remove_abandoned_staging`) from one still being written.

Every file of a package is read through :func:`core.paths.inside`: a manifest or weights file that is a symbolic link
out of its package, or not a regular file, is refused. The weights file is checked to be safetensors by its header
(an 8-byte little-endian length, then a JSON table of the tensors) before it is loaded, and weights holding NaN or
infinity are refused when they are loaded, whatever their precision.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import __version__
from core.errors import ModelPackageError
from core.fileio import atomic_write_json, follow_umask
from core.paths import inside

if TYPE_CHECKING:  # PyTorch is imported where weights are read or written, so that reading a manifest is quick
    import torch

try:
    import fcntl
except ImportError:  # Windows: abandoned staging folders are left (hidden, and never read)
    fcntl = None  # type: ignore[assignment]

PACKAGE_FORMAT = "vertebra-review-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
KINDS = ("detector", "classifier")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: The largest safetensors header read (safetensors' own limit).
MAX_HEADER_BYTES = 100 * 1024 * 1024
#: Bytes per element of each safetensors dtype.
#: A staging folder (``.<name>.`` and tempfile's 8 random characters) untouched this long, with its lock free, was
#: abandoned by a killed writer.
ABANDONED_AFTER_S = 60.0
_STAGING_NAME = re.compile(r"\.[A-Za-z0-9._-]+\.[a-z0-9_]{8}")
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4, "I16": 2,
               "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}


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
    if not folder.exists():
        raise ModelPackageError("no such model package", folder)
    if not os.path.lexists(folder / MANIFEST):
        raise ModelPackageError(f"not a model package (no {MANIFEST})", folder)
    file = inside(folder, MANIFEST, what="the manifest", error=ModelPackageError)
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


def weights_file(path: str | Path) -> Path:
    """The package's weights file: present, a regular file inside the package (not a link out of it)."""
    folder = package_dir(path)
    if not os.path.lexists(folder / WEIGHTS):
        raise ModelPackageError(f"the package has no {WEIGHTS}", folder)
    return inside(folder, WEIGHTS, what="the weights file", error=ModelPackageError)


def package_files(path: str | Path) -> list[Path]:
    """The files of a package to copy: every entry of its folder, each a regular file inside it (sub-folders are
    left out). A link out of the package, or a pipe or a device, refuses the whole package."""
    folder = package_dir(path)
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise ModelPackageError(f"the package cannot be listed: {exc.strerror or exc}", folder) from exc
    files = []
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            continue
        files.append(inside(folder, entry.name, what=f"the package's {entry.name}", error=ModelPackageError))
    return files


def safetensors_header(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The dtype and shape of each tensor, from the weights file's header (nothing else is read): refuses a file
    that is not safetensors (a pickle, a zip from ``torch.save``, a truncated or inconsistent file)."""
    file = weights_file(path)
    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            head = handle.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < length <= min(MAX_HEADER_BYTES, size - 8):
                raise ModelPackageError(f"weights are not a safetensors file ({_looks_like(head, length, size)})",
                                        file)
            table = json.loads(handle.read(length).decode("utf-8"))
    except OSError as exc:
        raise ModelPackageError(f"weights cannot be read: {exc.strerror or exc}", file) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelPackageError(f"weights are not a safetensors file (its header is not JSON: {exc})", file) from exc
    return _tensor_table(table, size - 8 - length, file)


def _looks_like(head: bytes, length: int, size: int) -> str:
    """Why a file is not safetensors, from its first bytes."""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "it is a Python pickle, which is never loaded: convert it to safetensors"
    if head[:4] == b"PK\x03\x04":
        return "it is a zip archive, as torch.save writes, which is never loaded: convert it to safetensors"
    if size < 8:
        return f"it is only {size} bytes long"
    if 0 < length <= MAX_HEADER_BYTES:
        return f"its header claims {length} bytes, the file has {size}: truncated?"
    return "its first 8 bytes do not give the length of a header"


def _tensor_table(table: object, data_bytes: int, file: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    if not isinstance(table, dict):
        raise ModelPackageError("weights are not a safetensors file (its header is not a JSON object)", file)
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    end = 0
    for name, entry in table.items():
        if name == "__metadata__":
            continue
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if dtype not in DTYPE_BYTES or not _ints(shape) or not _ints(offsets) or len(offsets) != 2:
            raise ModelPackageError(f"weights header: tensor {name!r} has no valid dtype, shape and offsets", file)
        begin, stop = offsets
        if not 0 <= begin <= stop <= data_bytes or stop - begin != math.prod(shape) * DTYPE_BYTES[dtype]:
            raise ModelPackageError(f"weights header: tensor {name!r} does not fit the file (truncated?)", file)
        tensors[name] = (dtype, tuple(shape))
        end = max(end, stop)
    if not tensors:
        raise ModelPackageError("weights hold no tensors", file)
    if end != data_bytes:
        raise ModelPackageError(f"weights file is {data_bytes - end:+d} bytes off what its header describes", file)
    return tensors


def _ints(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def non_finite(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors holding NaN or infinity."""
    import torch

    return [name for name, tensor in tensors.items()
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The package's tensors, read with safetensors (never unpickled), after its header is checked; weights that
    hold NaN or infinity are refused (a model that diverged would otherwise run and find nothing)."""
    safetensors_header(path)
    file = weights_file(path)
    import safetensors
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(file), device="cpu")
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelPackageError(f"weights are not a valid safetensors file ({exc})", file) from exc
    bad = non_finite(tensors)
    if bad:
        raise ModelPackageError(f"weights hold NaN or infinite values in {len(bad)} of {len(tensors)} tensors "
                                f"(first: {bad[0]}): the model is unusable, train or export it again", file)
    return tensors


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
    try:
        with staging_folder(destination.parent, f".{destination.name}.", "cannot write the model package") as staging:
            from safetensors.torch import save_file

            tensors = {name: _stored(t, half) for name, t in state.items()}
            save_file(tensors, str(staging / WEIGHTS))
            follow_umask(staging / WEIGHTS)  # safetensors makes the file 0600
            atomic_write_json(staging / MANIFEST, manifest)
            os.rename(staging, destination)
    except OSError as exc:
        raise ModelPackageError(f"cannot write the model package: {exc.strerror or exc}", destination) from exc
    return destination


@contextmanager
def staging_folder(parent: Path, prefix: str, what: str) -> Iterator[Path]:
    """A new, empty staging folder ``parent/<prefix><8 characters>`` (``parent`` is created too) with the mode of a
    folder made by ``mkdir``, for the body of the ``with``, which renames it into place. While the body runs, an OS
    lock on the folder marks it as being written (see :func:`remove_abandoned_staging`); when the body raises, the
    folder is removed. An unwritable ``parent`` (a read-only disk, no permission) is a :class:`ModelPackageError`
    saying ``what`` failed."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    except OSError as exc:
        raise ModelPackageError(f"{what}: {exc.strerror or exc}", parent) from exc
    follow_umask(staging)
    claim = _claim(staging)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if claim is not None:
            os.close(claim)


def remove_abandoned_staging(parent: Path) -> list[Path]:
    """Remove the staging folders in ``parent`` that a killed writer left (``kill -9``, a power cut): named as
    :func:`staging_folder` names them, untouched for a minute, and with their OS lock free (the kernel drops it when
    the writer ends, however it ends). A folder being written keeps its lock and is left alone. Returns those removed
    (none where the system has no ``flock``)."""
    removed = []
    try:
        children = list(parent.iterdir()) if fcntl is not None else []
    except OSError:
        return []
    for child in children:
        try:
            if (not _STAGING_NAME.fullmatch(child.name) or child.is_symlink() or not child.is_dir()
                    or time.time() - child.stat().st_mtime < ABANDONED_AFTER_S):
                continue
        except OSError:
            continue
        claim = _claim(child)
        if claim is None:
            continue
        try:
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
        finally:
            os.close(claim)
    return removed


def _claim(folder: Path) -> int | None:
    """An open descriptor holding an OS lock on ``folder`` (closing it releases the lock), or None where the lock is
    held by another writer, or the system or file system has none."""
    if fcntl is None:
        return None
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
