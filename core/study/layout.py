"""A study is a folder. Readers' files sit side by side and nobody's file is overwritten by another reader::

study/
  study.json                                   settings: classes, readers, model in use
  images/<case>/<slice>.dcm|.png|.jpg          a DICOM slice (HU) has a .png rendering beside it for labelme
  readers/<reader>/<case>/<slice>.json         LabelMe JSON, one file per reader per slice
  consensus/<case>/<slice>.json                the agreed result
  predictions/<model-id>/<case>/<slice>.json   written by a model
  models/<model-id>/                           model packages; models/active names the one in use

Every path is built from ids checked by :func:`check_id` (plain names, no paths), and the slice images and the
annotation files, which are read and copied out (by export), go through :func:`core.paths.inside`: a slice or an
annotation that is a link to a file outside the study, or not a regular file, is refused with the reason.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from core.annotations.labelme_io import read_labelme, write_labelme
from core.annotations.model import CLASS_CODES, SliceAnnotation
from core.errors import AnnotationFileError, FileWriteError, StudyError
from core.fileio import atomic_write_json
from core.imaging import limits
from core.imaging.image import SliceImage
from core.imaging.limits import size_text
from core.paths import check_name, inside, is_id
from core.study.lock import LOCK_FILE, study_write_lock
from core.study.slice_key import SliceKey

STUDY_FILE = "study.json"
#: The folders every study has, made with it.
STUDY_FOLDERS = ("images", "readers", "consensus", "predictions", "models")
STUDY_FORMAT = "vertebra-review-study"
STUDY_VERSION = 1
#: In a case's image folder while an import writes the case (and after one that was killed): the case is not listed.
IMPORTING = ".importing"
IMAGE_SUFFIXES = (".dcm", ".png", ".jpg", ".jpeg")
#: The reader that imported annotations belong to when neither the user nor the file names one.
DEFAULT_READER = "imported"
_T = TypeVar("_T")


def check_id(value: str, what: str) -> str:
    """Case, slice, reader and model ids are short names safe in any file system (no paths, no spaces)."""
    return check_name(value, what, StudyError)


@dataclass
class StudySettings:
    name: str
    classes: list[str] = field(default_factory=lambda: list(CLASS_CODES))
    readers: list[str] = field(default_factory=list)
    model: str | None = None
    png_window: str = "min-max"
    blinding: bool = True
    salt: str = field(default_factory=lambda: secrets.token_hex(16))
    imports: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    _KEYS = ("name", "classes", "readers", "model", "png_window", "blinding", "salt", "imports")

    def to_json(self) -> dict[str, Any]:
        data = dict(self.extra)
        data.update({"format": STUDY_FORMAT, "version": STUDY_VERSION})
        data.update({key: getattr(self, key) for key in self._KEYS})
        return data

    @classmethod
    def from_json(cls, data: Any, path: Path) -> StudySettings:
        if not isinstance(data, dict) or data.get("format") != STUDY_FORMAT:
            raise StudyError(f'not a Vertebra Review study file (no "format": "{STUDY_FORMAT}")', path)
        version = data.get("version")
        if type(version) is not int or version < 1:
            raise StudyError(f"study format version {version!r} is not a version number (a whole number from 1)", path)
        if version > STUDY_VERSION:
            raise StudyError(f"study format version {version!r} is newer than this app supports", path)
        kwargs = {key: data[key] for key in cls._KEYS if key in data}
        types = {
            "name": str,
            "classes": list,
            "readers": list,
            "png_window": str,
            "blinding": bool,
            "salt": str,
            "imports": list,
        }
        for key, kind in types.items():
            if key in kwargs and not isinstance(kwargs[key], kind):
                raise StudyError(f"'{key}' must be {kind.__name__}", path)
        model = kwargs.get("model")
        if model is not None and not (isinstance(model, str) and (model == "" or is_id(model))):
            raise StudyError(f"'model' must be a model id (letters, digits, '.', '_' and '-') or null, not "
                             f"{json.dumps(model)[:40]}", path)
        for key, kind, name in (("classes", str, "a string"), ("readers", str, "a string"),
                                ("imports", dict, "an object")):
            for number, entry in enumerate(kwargs.get(key, []), start=1):
                if not isinstance(entry, kind):
                    raise StudyError(f"'{key}' entry {number} must be {name}, not {type(entry).__name__} "
                                     f"({json.dumps(entry)[:40]})", path)
        extra = {k: v for k, v in data.items() if k not in (*cls._KEYS, "format", "version")}
        return cls(**kwargs, extra=extra)


def _make_folder(root: Path) -> None:
    """The study's folder, made when missing (the lock file lives in it), with one clear error otherwise."""
    if root.exists() and not root.is_dir():
        raise StudyError("not a folder; choose a new folder for the study", root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"cannot create the study folder: {exc.strerror or exc}", root) from exc


class Study:
    """An open study folder."""

    def __init__(self, root: Path, settings: StudySettings) -> None:
        self.root = root
        self.settings = settings

    # -- opening and creating -------------------------------------------------------------------------------------
    @staticmethod
    def is_study(path: str | Path) -> bool:
        return (Path(path) / STUDY_FILE).is_file()

    @staticmethod
    def looks_like_study(path: str | Path) -> bool:
        """Whether ``path`` is laid out as a study (``images/case-…`` beside ``readers/``, ``consensus/``, ``models/``
        or ``predictions/``), whatever its ``study.json`` holds: a study whose settings file is lost or broken, which
        must be mended, not imported as new images."""
        root = Path(path)
        images = root / "images"
        try:
            return images.is_dir() and any(p.is_dir() and is_id(p.name) for p in images.iterdir()) and any(
                (root / name).is_dir() for name in ("readers", "consensus", "models", "predictions"))
        except OSError:
            return False

    @classmethod
    def open(cls, root: str | Path) -> Study:
        root = Path(root)
        return cls(root, cls._read_settings(root))

    @staticmethod
    def _read_settings(root: Path) -> StudySettings:
        file = root / STUDY_FILE
        if not file.is_file():
            raise StudyError(f"not a study folder (no {STUDY_FILE}); create one with 'vertebra-review import'", root)
        try:
            size = file.stat().st_size
            if size > limits.MAX_SETTINGS_BYTES:  # before it is read
                raise StudyError(f"the study settings file is {size_text(size)}; the limit is "
                                 f"{size_text(limits.MAX_SETTINGS_BYTES)}", file)
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StudyError(f"cannot read the study settings: {exc}", file) from exc
        except RecursionError as exc:
            raise StudyError("cannot read the study settings: its JSON nests too deep", file) from exc
        return StudySettings.from_json(data, file)

    @classmethod
    def create(cls, root: str | Path, name: str | None = None) -> Study:
        root = Path(root)
        _make_folder(root)
        with study_write_lock(root):
            if cls.is_study(root):
                raise StudyError("a study already exists here", root)
            if any(p.name != LOCK_FILE for p in root.iterdir()):
                raise StudyError("folder exists and is not empty; choose a new folder for the study", root)
            study = cls(root, StudySettings(name=name or root.name))
            for folder in STUDY_FOLDERS:
                (root / folder).mkdir(parents=True, exist_ok=True)
            study.save_settings()
        return study

    @classmethod
    def open_or_create(cls, root: str | Path) -> Study:
        """Open the study, or create it; two commands that create the same study at once get one study."""
        root = Path(root)
        if cls.is_study(root):
            return cls.open(root)
        _make_folder(root)
        with study_write_lock(root):
            return cls.open(root) if cls.is_study(root) else cls.create(root)

    def save_settings(self) -> None:
        """Write these settings over ``study.json`` as they are. Where another program may be changing the study at
        the same time, use :meth:`update_settings`, which does not lose its changes."""
        with study_write_lock(self.root):
            atomic_write_json(self.root / STUDY_FILE, self.settings.to_json())

    def update_settings(self, change: Callable[[StudySettings], _T]) -> _T:
        """Change ``study.json`` without losing another writer's changes: under the study's write lock, read it
        afresh, apply ``change`` to the settings, write them back, and keep them as :attr:`settings`. Returns what
        ``change`` returns; when it raises, nothing is written."""
        with study_write_lock(self.root):
            fresh = self._read_settings(self.root)
            result = change(fresh)
            atomic_write_json(self.root / STUDY_FILE, fresh.to_json())
            self.settings = fresh
        return result

    def reload_settings(self) -> StudySettings:
        """Read ``study.json`` again (another program may have changed it)."""
        self.settings = self._read_settings(self.root)
        return self.settings

    # -- layout ---------------------------------------------------------------------------------------------------
    def cases(self) -> list[str]:
        """The cases, without those an import is still writing or was killed writing (their folder holds
        :data:`IMPORTING`; see :mod:`core.study.case_claim`)."""
        return [case for case in self._case_folders()
                if not os.path.lexists(self.root / "images" / case / IMPORTING)]

    def _case_folders(self) -> list[str]:
        folder = self.root / "images"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and is_id(p.name))

    def slices(self, case: str) -> list[str]:
        folder = self.root / "images" / check_id(case, "case")
        if not folder.is_dir():
            return []
        stems = {p.stem for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and is_id(p.stem)}
        return sorted(stems)

    def all_slices(self) -> list[SliceKey]:
        return [SliceKey(case, name) for case in self.cases() for name in self.slices(case)]

    def image_path(self, case: str, slice_id: str) -> Path:
        """The slice's primary image: DICOM when there is one (HU), else its PNG or JPEG."""
        found = self._slice_file(case, slice_id, IMAGE_SUFFIXES)
        if found is None:
            raise StudyError(f"no image for slice {case}/{slice_id}", self.root / "images" / case)
        return found

    def labelme_image_path(self, case: str, slice_id: str) -> Path:
        """The PNG or JPEG that LabelMe JSON points to (a DICOM slice's PNG rendering); where there is none yet, the
        PNG to write (inside the study all the same)."""
        found = self._slice_file(case, slice_id, IMAGE_SUFFIXES[1:])
        if found is not None:
            return found
        return inside(self.root, Path("images", case, f"{slice_id}.png"), kind="new", what="slice image")

    def _slice_file(self, case: str, slice_id: str, suffixes: tuple[str, ...]) -> Path | None:
        """The first of the slice's files with these suffixes, checked to be a regular file inside the study (a
        link out of it is refused, not followed)."""
        folder = Path("images", check_id(case, "case"))
        for suffix in suffixes:
            name = folder / f"{check_id(slice_id, 'slice')}{suffix}"
            if os.path.lexists(self.root / name):
                return inside(self.root, name, what=f"slice image {case}/{slice_id}")
        return None

    def reader_path(self, reader: str, case: str, slice_id: str) -> Path:
        return self.annotation_path(case, slice_id, reader=reader)

    def consensus_path(self, case: str, slice_id: str) -> Path:
        return self.annotation_path(case, slice_id)

    def prediction_path(self, model_id: str, case: str, slice_id: str) -> Path:
        return self.annotation_path(case, slice_id, model=model_id)

    def annotation_folder(self, *, reader: str | None = None, model: str | None = None) -> Path:
        """The folder of the reader's files, of the model's predictions, or (with neither) of the consensus; a case
        folder in it holds one JSON file per slice."""
        if reader is not None and model is not None:
            raise StudyError("give a reader or a model, not both")
        if reader is not None:
            return self.root / "readers" / check_id(reader, "reader")
        if model is not None:
            return self.root / "predictions" / check_id(model, "model")
        return self.root / "consensus"

    def annotation_path(self, case: str, slice_id: str, *, reader: str | None = None, model: str | None = None) -> Path:
        """The reader's file, the model's prediction, or (with neither) the consensus."""
        return (self.annotation_folder(reader=reader, model=model) / check_id(case, "case")
                / f"{check_id(slice_id, 'slice')}.json")

    def prediction_models(self) -> list[str]:
        """The models with a predictions folder in the study, by id."""
        folder = self.root / "predictions"
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and is_id(p.name)) if folder.is_dir() else []

    def readers(self) -> list[str]:
        folder = self.root / "readers"
        on_disk = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        return list(dict.fromkeys([*self.settings.readers, *on_disk]))

    # -- reading and writing --------------------------------------------------------------------------------------
    def read_image(self, case: str, slice_id: str) -> SliceImage:
        path = self.image_path(case, slice_id)
        if path.suffix.lower() == ".dcm":
            from core.imaging.dicom import read_dicom  # pydicom is loaded with the first DICOM slice

            return read_dicom(path)[0]
        from core.imaging.raster import read_raster

        return read_raster(path)

    def load_annotation(
        self,
        case: str,
        slice_id: str,
        *,
        reader: str | None = None,
        model: str | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> SliceAnnotation | None:
        """The stored annotation, or None when there is none. Raises AnnotationFileError for a bad file, and for one
        that is a link out of the study, or a pipe or a device (:func:`core.paths.inside`: not followed)."""
        path = self.annotation_path(case, slice_id, reader=reader, model=model)
        if not os.path.lexists(path):
            return None
        # named relative to the root: a study opened by a relative path would otherwise have it twice
        inside(self.root, path.relative_to(self.root), what="annotation file", error=AnnotationFileError, links=False)
        return read_labelme(path, image_size=image_size)

    def save_annotation(
        self,
        annotation: SliceAnnotation,
        case: str,
        slice_id: str,
        *,
        reader: str | None = None,
        model: str | None = None,
    ) -> Path:
        """Write atomically to the reader's own file (or the model's, or the consensus, under the study's write
        lock), pointing at the PNG."""
        path = self.annotation_path(case, slice_id, reader=reader, model=model)
        inside(self.root, path.relative_to(self.root), kind="new", what="annotation file", error=FileWriteError,
               links=False)
        image = self.labelme_image_path(case, slice_id)
        relative = Path(os.path.relpath(image, path.parent)).as_posix()
        changes: dict[str, Any] = {"image_path": relative, "image_data": None}
        if reader is not None:
            changes["reader"] = reader
        if model is not None:
            changes["model"] = model
        if reader is None and model is None:  # the consensus is shared by every reader: one writer at a time
            with study_write_lock(self.root):
                return write_labelme(annotation.with_changes(**changes), path)
        return write_labelme(annotation.with_changes(**changes), path)

    def next_case_id(self) -> str:
        """The lowest case id that no case folder and no import record uses (see
        :func:`core.study.case_claim.claim_case` to claim one where another program may be adding cases too)."""
        used = set(self._case_folders()) | {i.get("case") for i in self.settings.imports if isinstance(i, dict)}
        number = 1
        while f"case-{number:04d}" in used:
            number += 1
        return f"case-{number:04d}"

    def find_import(self, fingerprint: str) -> str | None:
        for record in self.settings.imports:
            if isinstance(record, dict) and record.get("fingerprint") == fingerprint:
                return record.get("case")
        return None
