"""Atomic file writes: write a temporary file beside the target, flush it to disk, then ``os.replace``.

A reader of the target sees either the old content or the new content, never a partial file. Also the one wording of
a failed read (:func:`read_failure`), shared by every reader of a file format.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import FileWriteError


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Read once at import: ``os.umask`` can only be read by setting it, which is not safe once threads run.
_UMASK = _read_umask()


def new_mode(*, folder: bool) -> int:
    """The mode ``mkdir`` (a folder) or ``open`` (a file) gives under the process's umask."""
    return (0o777 if folder else 0o666) & ~_UMASK


def follow_umask(path: str | os.PathLike[str]) -> None:
    """Give ``path`` the mode ``mkdir`` or ``open`` would have given it (:func:`new_mode`): ``tempfile.mkdtemp`` makes
    folders 0700 and ``mkstemp`` or safetensors make files 0600, which the other readers of a shared study could not
    read. A file system that refuses ``chmod`` (some network and FAT mounts) keeps its own modes."""
    try:
        os.chmod(path, new_mode(folder=os.path.isdir(path)))
    except OSError:
        pass


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent folders. Raises :class:`FileWriteError`."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise FileWriteError(f"cannot write here: {exc.strerror or exc}", target) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _copy_mode(tmp_name, target)
        os.replace(tmp_name, target)
    except OSError as exc:
        _remove_quietly(tmp_name)
        raise FileWriteError(f"write failed, the previous file is unchanged: {exc.strerror or exc}", target) from exc
    except BaseException:
        _remove_quietly(tmp_name)
        raise
    return target


def _copy_mode(tmp_name: str, target: Path) -> None:
    """Give the temporary file the old file's mode, or what ``open`` gives a new file (mkstemp makes it 0600)."""
    try:
        mode = os.stat(target).st_mode & 0o7777
    except OSError:
        mode = new_mode(folder=False)
    try:
        os.chmod(tmp_name, mode)
    except OSError:  # some network and FAT mounts refuse chmod; the content matters more than the mode
        pass


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FileWriteError(f"text cannot be written as UTF-8: {exc.reason} at position {exc.start}", path) from exc
    return atomic_write_bytes(path, data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> Path:
    """Serialise ``obj`` as strict JSON (no NaN or Infinity) and write it atomically."""
    try:
        text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise FileWriteError(f"cannot serialise to JSON: {exc}", path) from exc
    try:
        data = (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON can only hold escaped ("\\ud800")
        data = (json.dumps(obj, indent=indent, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")
    return atomic_write_bytes(path, data)


def _remove_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


def read_failure(error: Callable[[str, Path], Exception], exc: OSError, path: Path, kind: str) -> Exception:
    """The format's own error (``error(message, path)``) for an operating-system failure to read ``path``, a
    ``kind`` of file ("DICOM file", "JSON file"): missing, a folder, or unreadable with the system's reason."""
    if isinstance(exc, FileNotFoundError):
        return error("file not found", path)
    if isinstance(exc, IsADirectoryError):
        return error(f"is a folder, not a {kind}", path)
    return error(f"cannot read: {exc.strerror or exc}", path)
