"""One guard for every path the program derives from data, rather than takes from the user.

Ids (case, slice, reader, model), the entries of a model package, the image a slice names, the set ``models/active``
names: each is joined to the folder it belongs to (its *root*: the study, the models folder, the package) and
checked by :func:`inside` before it is read, copied or written. What the guard guarantees:

- the name is relative (an absolute name is refused, unless it was built from the root itself);
- what it resolves to, symbolic links and ``..`` followed, lies inside the root, so nothing outside the root is
  read through it and nothing is written outside it;
- what is to be read is of the kind expected: a regular file (not a folder, a device or a pipe, which could block
  or never end) or a folder; a path about to be written may be missing, but if it is there it obeys the same rules.

A failed check raises the caller's typed error (a :class:`~core.errors.VertebraReviewError`), naming the path and
the reason. The path returned is ``root / name`` as given, not resolved, so that the names shown and the relative
links written stay the user's; it was checked through its resolved target.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Literal

from core.errors import StudyError, VertebraReviewError

#: Case, slice, reader and model ids: short names safe in any file system (no paths, no spaces).
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

Kind = Literal["file", "dir", "new"]
_KIND_WORDS = {"file": "a regular file", "dir": "a folder"}


def is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None and ".." not in value


def check_name(value: object, what: str, error: type[VertebraReviewError] = StudyError) -> str:
    """``value`` if it is a valid id (letters, digits, ``-``, ``_`` and ``.``; no path), else ``error``."""
    if not is_id(value):
        raise error(f"{what} id {value!r} is not allowed: use letters, digits, '-', '_' and '.' (up to 64)")
    return str(value)


def resolved(path: str | os.PathLike[str]) -> Path:
    """``path`` with every symbolic link and ``..`` followed (as far as it exists); a link loop is an OSError."""
    try:
        return Path(path).resolve()
    except RuntimeError as exc:  # Python before 3.13 reports a symbolic link loop so
        raise OSError(f"symbolic link loop: {exc}") from exc


def is_inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` resolves to ``root`` itself or to something inside it (both resolved)."""
    try:
        return resolved(path).is_relative_to(resolved(root))
    except OSError:
        return False


def inside(
    root: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    kind: Kind = "file",
    what: str = "file",
    error: type[VertebraReviewError] = StudyError,
    links: bool = True,
) -> Path:
    """``root / path``, checked: relative, resolving inside ``root``, and of ``kind``.

    ``kind``: ``"file"`` (must exist, a regular file), ``"dir"`` (must exist, a folder) or ``"new"`` (about to be
    written: may be missing; if present, it resolves inside ``root`` all the same). ``what`` names the path in the
    message (``"weights file"``, ``"model set"``); ``error`` is the typed error raised. ``links`` False refuses a
    symbolic link below ``root`` even where it stays inside (``readers/r1`` linked to ``readers/r2`` would make one
    reader's file another's).
    """
    root = Path(root)
    part = Path(path)
    joined = root / part
    if part.is_absolute() and not _lexically_under(part, root):
        raise error(f"{what} is named by an absolute path, which is not allowed here (only names inside {root})",
                    path)
    try:
        base = resolved(root)
        target = resolved(joined)
    except OSError as exc:
        raise error(f"{what} cannot be followed: {exc}", joined) from exc
    if not target.is_relative_to(base):
        how = "goes up with '..'" if ".." in part.parts else "resolves through a symbolic link"
        raise error(f"{what} leads outside {root} (it {how} to {target}): refused, only what lies inside is used",
                    joined)
    if not links and not part.is_absolute() and target != base / part:
        raise error(f"{what} is reached through a symbolic link (to {target}): refused, so that it is never read or "
                    f"written as another file", joined)
    if kind == "new":
        return joined
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError as exc:
        raise error(f"{what} is missing", joined) from exc
    except OSError as exc:
        raise error(f"{what} cannot be read: {exc.strerror or exc}", joined) from exc
    if (stat.S_ISREG(mode) if kind == "file" else stat.S_ISDIR(mode)):
        return joined
    raise error(f"{what} is not {_KIND_WORDS[kind]} (it is {_describe(mode)})", joined)


def _lexically_under(path: Path, root: Path) -> bool:
    """A path built from ``root`` (``root / name``), before anything is resolved."""
    return Path(os.path.normpath(path)).is_relative_to(Path(os.path.normpath(root)))


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"
