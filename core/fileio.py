"""Atomic file writes: write a temporary file beside the target, flush it to disk, then ``os.replace``.

A reader of the target sees either the old content or the new content, never a partial file. Also the one wording of
a failed read (:func:`read_failure`), shared by every reader of a file format.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
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
    """Write ``data`` to ``path`` atomically, creating parent folders. Raises :class:`FileWriteError`.

    A ``path`` that is a symbolic link is written through (the file it points to is replaced, the link kept); one
    that is a device, a pipe or a socket is refused, never replaced by a file."""
    target = _final_target(Path(path))
    tmp_name = _staged(target, data)
    try:
        os.replace(tmp_name, target)
    except OSError as exc:
        _remove_quietly(tmp_name)
        raise FileWriteError(f"write failed, the previous file is unchanged: {exc.strerror or exc}", target) from exc
    return target


def atomic_write_together(files: Mapping[Path, bytes]) -> list[Path]:
    """Write several files that belong together (a report's pages and tables) so that a failure leaves every one as
    it was: each new content is written and flushed to a temporary file beside its target first, and only when all
    are on disk are they renamed over their targets. A target that is a folder is refused before anything is
    written. Raises :class:`FileWriteError`."""
    for target in files:
        if Path(target).is_dir():
            raise FileWriteError("is a folder, not a file; nothing was written", target)
    finals = {_final_target(Path(target)): data for target, data in files.items()}
    staged: list[tuple[str, Path]] = []
    try:
        for target, data in finals.items():
            staged.append((_staged(target, data), target))
    except BaseException:
        for tmp_name, _ in staged:
            _remove_quietly(tmp_name)
        raise
    for done, (tmp_name, target) in enumerate(staged):
        try:
            os.replace(tmp_name, target)
        except OSError as exc:
            for left, _ in staged[done:]:
                _remove_quietly(left)
            raise FileWriteError(f"write failed ({exc.strerror or exc}) after {done} of the {len(staged)} files "
                                 f"were replaced", target) from exc
    return [target for _, target in staged]


def _final_target(target: Path) -> Path:
    """Where a write to ``target`` goes: the file a symbolic link points to (so the link stays a link), else
    ``target``; a device, pipe or socket there is refused (``os.replace`` would put a plain file in its place)."""
    if target.is_symlink():
        try:
            target = target.resolve(strict=False)
        except (OSError, RuntimeError) as exc:
            raise FileWriteError(f"is a symbolic link that cannot be followed: {exc}", target) from exc
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return target  # not there yet (or not readable: the write says why)
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise FileWriteError("is a device, a pipe or a socket, not a file: not replaced", target)
    return target


def _staged(target: Path, data: bytes) -> str:
    """A temporary file beside ``target`` holding ``data``, flushed to disk and with the mode the target will have."""
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
    except OSError as exc:
        _remove_quietly(tmp_name)
        raise FileWriteError(f"write failed, the previous file is unchanged: {exc.strerror or exc}", target) from exc
    except BaseException:
        _remove_quietly(tmp_name)
        raise
    return tmp_name


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
    return atomic_write_bytes(path, text_bytes(text, path))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> Path:
    """Serialise ``obj`` as strict JSON (no NaN or Infinity) and write it atomically."""
    return atomic_write_bytes(path, json_bytes(obj, path, indent=indent))


def json_bytes(obj: Any, path: str | os.PathLike[str], *, indent: int | None = 2) -> bytes:
    """``obj`` as strict JSON text (no NaN or Infinity) in UTF-8, for the file ``path`` (named by the error)."""
    try:
        text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise FileWriteError(f"cannot serialise to JSON: {exc}", path) from exc
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON can only hold escaped ("\\ud800")
        return (json.dumps(obj, indent=indent, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def text_bytes(text: str, path: str | os.PathLike[str]) -> bytes:
    """``text`` in UTF-8, for the file ``path`` (named by the error)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FileWriteError(f"text cannot be written as UTF-8: {exc.reason} at position {exc.start}", path) from exc


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
