"""Model versions in a study's ``models/`` folder, and which one is active.

A **model set** is one version of the diagnosis models: a folder ``models/<model-id>/`` with ``manifest.json``
(kind ``model-set``: parent, creation time, metrics, training data counts, the demo flag) and the two packages it
is made of, ``detector/`` and ``classifier/`` (each a manifest plus safetensors, see :mod:`core.models.package`).
A set may lack a classifier: then the app only detects vertebrae.

``models/active`` is a small JSON file naming the active set and the ones active before it. It is replaced
atomically, so switching models (or rolling back) is one ``os.replace``; earlier versions stay on disk.

Model ids are plain names (:func:`core.paths.check_name`), and every folder and file reached from them goes through
:func:`core.paths.inside`: an ``active`` file naming ``../x`` or ``/abs``, or a set (or its packages) that is a link
out of ``models/``, is refused, never followed. A package is validated completely (:func:`validate_package`) before
anything of it is copied into a study.

Taking a model id and publishing a set (its rename into ``models/<id>``), and every change of ``models/active``,
happen under the study's write lock (:func:`models_write_lock`), so two writers (two retrains, a retrain and
``models add``, two app windows) never take the same id or lose each other's activation. Every failed write is a
:class:`ModelPackageError` (or the lock's :class:`~core.errors.StudyError`) naming the folder: a read-only study
fails in one line. Sets are written with the modes ``mkdir`` and ``open`` give under the umask, like the rest of
the study, so that its other readers can load them. A set is staged in a hidden ``.<id>.XXXXXXXX`` folder, which
is never read as a set; one that a killed writer left is removed by the next publish.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ModelPackageError
from core.fileio import atomic_write_json, follow_umask, new_mode
from core.models.package import (
    MANIFEST,
    PACKAGE_FORMAT,
    WEIGHTS,
    read_manifest,
    remove_abandoned_staging,
    staging_folder,
)
from core.models.package_check import validate_package
from core.paths import check_name, inside, is_id

MODEL_SET = "model-set"
STUDY_FILE = "study.json"  # as core.study.layout names it (imported from there only when writing: it is slow)
ACTIVE = "active"
DETECTOR_DIR = "detector"
CLASSIFIER_DIR = "classifier"
DEMO_NOTICE = "demo model, trained on synthetic phantoms, not for clinical use"
_MAX_ACTIVE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ModelSet:
    """A detector package, optionally a classifier package, and what is known about them as one version."""

    path: Path
    model_id: str
    detector: Path
    classifier: Path | None
    demo: bool
    created: str = ""
    parent: str | None = None
    metrics: Mapping[str, Any] | None = None
    data: Mapping[str, Any] | None = None

    def describe(self) -> str:
        parts = [self.model_id, "detector + classifier" if self.classifier else "detector only"]
        if self.demo:
            parts.append(DEMO_NOTICE)
        return " · ".join(parts)


def _read_json(file: Path, what: str) -> dict[str, Any]:
    try:
        if file.stat().st_size > _MAX_ACTIVE_BYTES * 4:
            raise ModelPackageError(f"{what} is too large", file)
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelPackageError(f"{what} is not readable JSON ({exc})", file) from exc
    if not isinstance(data, dict):
        raise ModelPackageError(f"{what} is not a JSON object", file)
    return data


def is_model_set(path: Path) -> bool:
    if not (path / MANIFEST).is_file():
        return False
    try:
        file = inside(path, MANIFEST, what="the model set manifest", error=ModelPackageError)
        return _read_json(file, "manifest").get("kind") == MODEL_SET
    except ModelPackageError:
        return False


def read_model_set(path: str | Path) -> ModelSet:
    """Read and check a model set folder (both packages' manifests are checked too, and that both packages lie
    inside the set)."""
    path = Path(path)
    if not os.path.lexists(path / MANIFEST):
        raise ModelPackageError(f"not a model set (no {MANIFEST})", path)
    file = inside(path, MANIFEST, what="the model set manifest", error=ModelPackageError)
    data = _read_json(file, "model set manifest")
    if data.get("format") != PACKAGE_FORMAT or data.get("kind") != MODEL_SET:
        raise ModelPackageError("not a Vertebra Review model set", file)
    detector = inside(path, DETECTOR_DIR, kind="dir", what="the detector package", error=ModelPackageError)
    read_manifest(detector, kind="detector")
    classifier: Path | None = None
    if os.path.lexists(path / CLASSIFIER_DIR):
        classifier = inside(path, CLASSIFIER_DIR, kind="dir", what="the classifier package", error=ModelPackageError)
        read_manifest(classifier, kind="classifier")
    return ModelSet(path, path.name, detector, classifier, bool(data.get("demo")), str(data.get("created", "")),
                    data.get("parent"), data.get("metrics") or {}, data.get("data") or {})


def _packages_in(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {"detector": [], "classifier": []}
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and (child / MANIFEST).is_file():
            try:
                inside(folder, child.name, kind="dir", what="the package", error=ModelPackageError)
                manifest = read_manifest(child)
            except ModelPackageError:
                continue
            found[manifest.kind].append(child)
    return found


def resolve_models(path: str | Path) -> ModelSet:
    """What ``--models PATH`` means: a model set; a models folder with ``active``; a folder holding exactly one
    detector package (and at most one classifier package); or a detector package by itself."""
    path = Path(path)
    if not path.exists():
        raise ModelPackageError("no such model folder", path)
    if is_model_set(path):
        return read_model_set(path)
    if (path / ACTIVE).is_file():
        found = Registry(path).active()
        if found is None:
            raise ModelPackageError("no model is active here", path)
        return found
    if (path / MANIFEST).is_file():
        manifest = read_manifest(path, kind="detector")
        return ModelSet(path, path.name, path, None, manifest.demo, manifest.created)
    if not path.is_dir():
        raise ModelPackageError("not a model folder", path)
    packages = _packages_in(path)
    if len(packages["detector"]) != 1 or len(packages["classifier"]) > 1:
        names = ", ".join(p.name for p in packages["detector"] + packages["classifier"]) or "none"
        raise ModelPackageError(f"expected one detector and at most one classifier package here (found: {names}); "
                                "name one model set, or activate one", path)
    detector = packages["detector"][0]
    classifier = packages["classifier"][0] if packages["classifier"] else None
    demo = read_manifest(detector).demo or bool(classifier and read_manifest(classifier).demo)
    return ModelSet(path, path.name, detector, classifier, demo)


@contextmanager
def models_write_lock(models_dir: str | Path) -> Iterator[None]:
    """Hold the write lock of the study whose ``models/`` folder this is, for taking an id, publishing a set or
    changing ``models/active``. Raises :class:`~core.errors.StudyError` in one line when the study cannot be
    written. A models folder of no study (``train --out``) has no lock; there a set published under a taken id
    still fails cleanly, as a folder is never renamed over one that holds files."""
    from core.study.lock import study_write_lock

    models_dir = Path(models_dir)
    if not (models_dir.parent / STUDY_FILE).is_file():
        yield
        return
    with study_write_lock(models_dir.parent):
        yield


def next_model_id(models_dir: str | Path) -> str:
    """The next free ``v<n>`` id in ``models_dir``; take it under :func:`models_write_lock`."""
    models_dir = Path(models_dir)
    taken = {v.model_id for v in Registry(models_dir).versions()}
    number = len(taken) + 1
    while f"v{number}" in taken or os.path.lexists(models_dir / f"v{number}"):
        number += 1
    return f"v{number}"


def _copy_package(files: list[Path], target: Path) -> None:
    """Copy a validated package's files, hard-linking the weights where the file system allows and the file already
    has the mode a new file gets here (the app never writes them in place; a link shares the mode, so a file of
    another mode is copied and given this one); the manifest is copied, so that editing one version's manifest
    cannot change another's. What is copied is each file's resolved target, so a link inside the package becomes a
    plain file."""
    target.mkdir()
    for file in files:
        source = file.resolve()
        if file.name == WEIGHTS and _has_new_file_mode(source):
            try:
                os.link(source, target / file.name)
                continue
            except OSError:
                pass
        shutil.copyfile(source, target / file.name)
        follow_umask(target / file.name)


def _has_new_file_mode(file: Path) -> bool:
    try:
        return file.stat().st_mode & 0o7777 == new_mode(folder=False)
    except OSError:
        return False


def write_model_set(models_dir: str | Path, model_id: str | None, detector: Path, classifier: Path | None, *,
                    parent: str | None = None, metrics: Mapping[str, Any] | None = None,
                    data: Mapping[str, Any] | None = None, demo: bool = False) -> ModelSet:
    """Publish a new model set ``models_dir/model_id`` from two packages, atomically (a staging folder renamed);
    ``model_id`` None takes the next free ``v<n>``. The id and each package are checked first
    (:func:`validate_package`), so nothing is written for a package that does not fit. The packages are copied
    into a staging folder, then the id is taken (or checked to be free), the manifest written and the folder renamed
    under the study's write lock, so two writers cannot publish under one id. What a killed writer left (its
    staging folder) is removed first (:func:`~core.models.package.remove_abandoned_staging`)."""
    models_dir = Path(models_dir)
    if model_id is not None:
        _destination(models_dir, model_id)
    detector_files = validate_package(detector, "detector")
    classifier_files = validate_package(classifier, "classifier") if classifier is not None else None
    destination = models_dir / model_id if model_id else models_dir  # named in an error before the id is taken
    try:
        if models_dir.is_dir():
            remove_abandoned_staging(models_dir)
        with staging_folder(models_dir, f".{model_id or 'new'}.", "cannot publish the model") as staging:
            _copy_package(detector_files, staging / DETECTOR_DIR)
            if classifier_files is not None:
                _copy_package(classifier_files, staging / CLASSIFIER_DIR)
            with models_write_lock(models_dir):
                model_id = model_id or next_model_id(models_dir)
                destination = _destination(models_dir, model_id)
                atomic_write_json(staging / MANIFEST, {
                    "format": PACKAGE_FORMAT, "format_version": 1, "kind": MODEL_SET, "id": model_id,
                    "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "parent": parent,
                    "metrics": dict(metrics or {}), "data": dict(data or {}), "demo": demo,
                    "notes": DEMO_NOTICE if demo else "",
                })
                os.rename(staging, destination)
    except OSError as exc:
        raise ModelPackageError(f"cannot publish the model: {exc.strerror or exc}", destination) from exc
    return read_model_set(destination)


def _destination(models_dir: Path, model_id: str) -> Path:
    """``models_dir/model_id`` for a new set: a plain id, not taken."""
    check_name(model_id, "model", ModelPackageError)
    destination = inside(models_dir, model_id, kind="new", what="the model set", error=ModelPackageError)
    if os.path.lexists(destination):
        raise ModelPackageError("a model with this id already exists", destination)
    return destination


class Registry:
    """The model versions of one ``models/`` folder, and the active one."""

    def __init__(self, models_dir: str | Path) -> None:
        self.root = Path(models_dir)

    def versions(self) -> list[ModelSet]:
        """Every readable model set, oldest first (unreadable folders are left out)."""
        if not self.root.is_dir():
            return []
        sets = []
        for child in self.root.iterdir():
            if child.is_dir() and not child.name.startswith(".") and is_model_set(child):
                try:
                    sets.append(read_model_set(self.member(child.name)))
                except ModelPackageError:
                    continue
        return sorted(sets, key=lambda s: (s.created, s.model_id))

    def member(self, model_id: object) -> Path:
        """The folder of the set ``model_id``: a plain id, naming a folder inside ``models/`` (not a link out)."""
        name = check_name(model_id, "model", ModelPackageError)
        return inside(self.root, name, kind="dir", what=f"model set {name}", error=ModelPackageError)

    def _state(self) -> dict[str, Any]:
        if not os.path.lexists(self.root / ACTIVE):
            return {}
        file = inside(self.root, ACTIVE, what="the active-model file", error=ModelPackageError)
        return _read_json(file, "the active-model file")

    def active_id(self) -> str | None:
        """The active set's id; an ``active`` file naming anything but a plain id (``../x``, ``/abs``) is refused."""
        value = self._state().get("id")
        if value is None or value == "":
            return None
        if not is_id(value):
            raise ModelPackageError(f"names {value!r} as the active model, which is not a model id: activate one of "
                                    "the study's model sets again", self.root / ACTIVE)
        return value

    def active_or_none(self) -> str | None:
        """The active set's id, or None when there is none or the ``active`` file is not usable."""
        try:
            return self.active_id()
        except ModelPackageError:
            return None

    def previous_id(self) -> str | None:
        """The set that :meth:`rollback` would go back to (None: there is none), changing nothing."""
        try:
            history = [h for h in self._state().get("history", []) if is_id(h)]
        except ModelPackageError:
            return None
        for model_id in reversed(history):
            try:
                if is_model_set(self.member(model_id)):
                    return model_id
            except ModelPackageError:
                continue
        return None

    def active(self) -> ModelSet | None:
        model_id = self.active_id()
        return read_model_set(self.member(model_id)) if model_id else None

    def write_lock(self) -> AbstractContextManager[None]:
        """The study's write lock (:func:`models_write_lock`), for changes made of several steps."""
        return models_write_lock(self.root)

    def activate(self, model_id: str) -> ModelSet:
        """Make ``model_id`` the active set: one atomic replace of ``models/active`` (which repairs one that names no
        valid id), under the study's write lock."""
        with self.write_lock():
            return self._activate(model_id)

    def _activate(self, model_id: str) -> ModelSet:
        found = read_model_set(self.member(model_id))
        try:
            state = self._state()
        except ModelPackageError:
            state = {}
        history = [h for h in state.get("history", []) if is_id(h)]
        current = state.get("id")
        if is_id(current) and current != model_id:
            history.append(current)
        atomic_write_json(self.root / ACTIVE, {
            "id": model_id, "history": history[-50:],
            "activated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        })
        return found

    def rollback(self) -> ModelSet:
        """Go back to the set that was active before this one (under the study's write lock)."""
        with self.write_lock():
            return self._rollback()

    def _rollback(self) -> ModelSet:
        state = self._state()
        history = [h for h in state.get("history", []) if is_id(h)]
        while history:
            previous = history.pop()
            try:
                folder = self.member(previous)
            except ModelPackageError:
                continue
            if is_model_set(folder):
                found = read_model_set(folder)
                atomic_write_json(self.root / ACTIVE, {
                    "id": previous, "history": history,
                    "activated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                })
                return found
        raise ModelPackageError("there is no earlier model to roll back to", self.root / ACTIVE)


def active_model_dir(study_root: str | Path) -> Path | None:
    """The folder of the study's active model set, or None when it has none (a manual annotation study)."""
    registry = Registry(Path(study_root) / "models")
    model_id = registry.active_id()
    return registry.member(model_id) if model_id else None
