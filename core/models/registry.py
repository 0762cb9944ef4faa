"""Model versions in a study's ``models/`` folder, and which one is active.

A **model set** is one version of the diagnosis models: a folder ``models/<model-id>/`` with ``manifest.json``
(kind ``model-set``: parent, creation time, metrics, training data counts, the demo flag) and the two packages it
is made of, ``detector/`` and ``classifier/`` (each a manifest plus safetensors, see :mod:`core.models.package`).
A set may lack a classifier: then the app only detects vertebrae.

``models/active`` is a small JSON file naming the active set and the ones active before it. It is replaced
atomically, so switching models (or rolling back) is one ``os.replace``; earlier versions stay on disk.
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
from typing import Any

from core.errors import ModelPackageError
from core.fileio import atomic_write_json
from core.models.package import MANIFEST, PACKAGE_FORMAT, WEIGHTS, read_manifest

MODEL_SET = "model-set"
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelPackageError(f"{what} is not readable JSON ({exc})", file) from exc
    if not isinstance(data, dict):
        raise ModelPackageError(f"{what} is not a JSON object", file)
    return data


def is_model_set(path: Path) -> bool:
    file = path / MANIFEST
    if not file.is_file():
        return False
    try:
        return _read_json(file, "manifest").get("kind") == MODEL_SET
    except ModelPackageError:
        return False


def read_model_set(path: str | Path) -> ModelSet:
    """Read and check a model set folder (both packages' manifests are checked too)."""
    path = Path(path)
    file = path / MANIFEST
    if not file.is_file():
        raise ModelPackageError(f"not a model set (no {MANIFEST})", path)
    data = _read_json(file, "model set manifest")
    if data.get("format") != PACKAGE_FORMAT or data.get("kind") != MODEL_SET:
        raise ModelPackageError("not a Vertebra Review model set", file)
    detector = path / DETECTOR_DIR
    read_manifest(detector, kind="detector")
    classifier: Path | None = path / CLASSIFIER_DIR
    if classifier.exists():
        read_manifest(classifier, kind="classifier")
    else:
        classifier = None
    return ModelSet(path, path.name, detector, classifier, bool(data.get("demo")), str(data.get("created", "")),
                    data.get("parent"), data.get("metrics") or {}, data.get("data") or {})


def _packages_in(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {"detector": [], "classifier": []}
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and (child / MANIFEST).is_file():
            try:
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


def _copy_package(source: Path, target: Path) -> None:
    """Copy a package, hard-linking the weights where the file system allows (the app never writes them in place);
    the manifest is copied, so that editing one version's manifest cannot change another's."""
    target.mkdir(parents=True)
    for file in source.iterdir():
        if not file.is_file():
            continue
        if file.name == WEIGHTS:
            try:
                os.link(file, target / file.name)
                continue
            except OSError:
                pass
        shutil.copy2(file, target / file.name)


def write_model_set(models_dir: str | Path, model_id: str, detector: Path, classifier: Path | None, *,
                    parent: str | None = None, metrics: Mapping[str, Any] | None = None,
                    data: Mapping[str, Any] | None = None, demo: bool = False) -> ModelSet:
    """Publish a new model set ``models_dir/model_id`` from two packages, atomically (a staging folder renamed).
    Each package is checked to be of its kind first, so nothing is written for a package that does not fit."""
    models_dir = Path(models_dir)
    read_manifest(detector, kind="detector")
    if classifier is not None:
        read_manifest(classifier, kind="classifier")
    destination = models_dir / model_id
    if destination.exists():
        raise ModelPackageError("a model with this id already exists", destination)
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_id}.", dir=models_dir))
    try:
        _copy_package(Path(detector), staging / DETECTOR_DIR)
        if classifier is not None:
            _copy_package(Path(classifier), staging / CLASSIFIER_DIR)
        atomic_write_json(staging / MANIFEST, {
            "format": PACKAGE_FORMAT, "format_version": 1, "kind": MODEL_SET, "id": model_id,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "parent": parent,
            "metrics": dict(metrics or {}), "data": dict(data or {}), "demo": demo,
            "notes": DEMO_NOTICE if demo else "",
        })
        os.rename(staging, destination)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ModelPackageError(f"cannot publish the model: {exc.strerror or exc}", destination) from exc
        raise
    return read_model_set(destination)


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
                    sets.append(read_model_set(child))
                except ModelPackageError:
                    continue
        return sorted(sets, key=lambda s: (s.created, s.model_id))

    def _state(self) -> dict[str, Any]:
        file = self.root / ACTIVE
        if not file.is_file():
            return {}
        return _read_json(file, "the active-model file")

    def active_id(self) -> str | None:
        value = self._state().get("id")
        return value if isinstance(value, str) and value else None

    def active(self) -> ModelSet | None:
        model_id = self.active_id()
        return read_model_set(self.root / model_id) if model_id else None

    def activate(self, model_id: str) -> ModelSet:
        """Make ``model_id`` the active set: one atomic replace of ``models/active``."""
        found = read_model_set(self.root / model_id)
        state = self._state()
        history = [h for h in state.get("history", []) if isinstance(h, str)]
        current = state.get("id")
        if isinstance(current, str) and current and current != model_id:
            history.append(current)
        atomic_write_json(self.root / ACTIVE, {
            "id": model_id, "history": history[-50:],
            "activated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        })
        return found

    def rollback(self) -> ModelSet:
        """Go back to the set that was active before this one."""
        state = self._state()
        history = [h for h in state.get("history", []) if isinstance(h, str)]
        while history:
            previous = history.pop()
            if is_model_set(self.root / previous):
                atomic_write_json(self.root / ACTIVE, {
                    "id": previous, "history": history,
                    "activated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                })
                return read_model_set(self.root / previous)
        raise ModelPackageError("there is no earlier model to roll back to", self.root / ACTIVE)


def active_model_dir(study_root: str | Path) -> Path | None:
    """The folder of the study's active model set, or None when it has none (a manual annotation study)."""
    registry = Registry(Path(study_root) / "models")
    model_id = registry.active_id()
    return registry.root / model_id if model_id else None
