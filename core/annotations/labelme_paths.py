"""Which files an annotation folder or a LabelMe file leads to: every path taken from data passes
:func:`core.paths.inside` before it is read.

- A folder of annotations (the truth or the predictions an evaluation compares) is searched for ``*.json``; a file
  there that is a symbolic link out of the folder, or not a regular file (a pipe, a device), is refused with the
  reason and never read.
- The file at the same relative path in another folder (a prediction for an annotated slice) obeys the same rule.
- A LabelMe file's ``imagePath`` is a name inside the JSON's folder, or, for a file of a study (a reader's, a model's
  or the consensus, which name ``../../../images/<case>/<slice>.png``), inside the study: an absolute path, or one
  that leads out of that folder with ``..`` or through a link, is refused.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from core.errors import AnnotationFileError, StudyError
from core.paths import inside

#: ``core.study.layout.STUDY_FILE`` (annotations are a layer below studies, so the name is repeated here).
STUDY_FILE = "study.json"


def labelme_files(folder: Path, *, exclude: frozenset[Path] = frozenset()) -> tuple[list[Path], list[str]]:
    """Every ``*.json`` under ``folder`` (recursively, in order; ``exclude`` left out), and a note for each one that
    was refused: a link leading outside the folder, or not a regular file."""
    files, refused = [], []
    for path in sorted(folder.rglob("*.json")):
        if path in exclude:
            continue
        try:
            files.append(inside(folder, path.relative_to(folder), what="LabelMe file", error=AnnotationFileError))
        except AnnotationFileError as exc:
            refused.append(str(exc))
    return files, refused


def no_labelme_files(folder: Path, refused: list[str], what: str = "LabelMe JSON files") -> StudyError:
    """The error for a folder without a readable annotation file: naming the first one refused, if any."""
    first = f" (refused: {refused[0]}{f', and {len(refused) - 1} more' if len(refused) > 1 else ''})" if refused else ""
    return StudyError(f"no {what} here{first}", folder)


def check_predictions_folder(folder: Path) -> None:
    """A :class:`StudyError` unless ``folder`` (of predictions to score) is a folder: a mistyped path would otherwise
    score as a model that detected nothing."""
    if not folder.is_dir():
        raise StudyError("no folder of predictions here" if not folder.exists() else
                         "the predictions are a folder of LabelMe JSON, not a file", folder)


def labelme_at(folder: Path, relative: Path) -> Path | None:
    """``folder / relative`` when a file is there and it lies inside ``folder``; None when nothing is there. Raises
    :class:`AnnotationFileError` when it leads outside the folder or is not a regular file."""
    if not (folder / relative).is_symlink() and not (folder / relative).exists():
        return None
    return inside(folder, relative, what="LabelMe file", error=AnnotationFileError)


def labelme_image(json_path: Path, image_path: str) -> Path | None:
    """The image a LabelMe file's ``imagePath`` names (Windows separators too), when it is there; None when it names
    nothing. Raises :class:`AnnotationFileError` naming the JSON when the name leads outside the JSON's folder (an
    absolute path, ``..`` or a symbolic link) or to something that is not a regular file: it is not read."""
    if not image_path:
        return None
    name = PureWindowsPath(image_path).as_posix() if "\\" in image_path else image_path
    folder = json_path.parent
    root = _study_around(folder) or folder
    what = f"the image its imagePath names ({_brief(image_path)})"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(image_path).drive:
        raise AnnotationFileError(f"{what} is an absolute path; only a name inside the JSON's folder is read",
                                  json_path)
    if not (folder / name).is_symlink() and not (folder / name).exists():
        return None
    try:
        relative = Path(os.path.relpath(folder / name, root))
        return inside(root, relative, what=what, error=AnnotationFileError)
    except (AnnotationFileError, ValueError) as exc:  # ValueError: another drive (Windows)
        raise AnnotationFileError(getattr(exc, "message", str(exc)), json_path) from exc


def _study_around(folder: Path, levels: int = 4) -> Path | None:
    """The study folder that holds ``folder`` (``readers/<reader>/<case>`` is three levels down), if any."""
    for candidate in [folder, *folder.parents][: levels + 1]:
        if (candidate / STUDY_FILE).is_file():
            return candidate
    return None


def _brief(text: str) -> str:
    return repr(text) if len(text) <= 80 else repr(text[:77] + "...")
