"""Model versions: publishing a model set, the atomic active switch, rollback, and what --models may name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.errors import ModelPackageError
from core.models.registry import (
    ACTIVE,
    Registry,
    active_model_dir,
    read_model_set,
    resolve_models,
    write_model_set,
)


@pytest.fixture(scope="module")
def packages(tiny_model_study) -> tuple[Path, Path]:
    active = read_model_set(tiny_model_study / "models" / "tiny-v1")
    return active.detector, active.classifier


def test_publish_activate_and_roll_back(packages, tmp_path):
    detector, classifier = packages
    models = tmp_path / "models"
    registry = Registry(models)
    assert registry.active() is None and registry.versions() == []
    write_model_set(models, "v1", detector, classifier, demo=True)
    write_model_set(models, "v2", detector, None, parent="v1", metrics={"ap50": 0.9})
    assert [v.model_id for v in registry.versions()] == ["v1", "v2"]
    registry.activate("v1")
    registry.activate("v2")
    assert registry.active_id() == "v2" and registry.active().classifier is None
    assert registry.active().parent == "v1" and registry.active().metrics == {"ap50": 0.9}
    assert registry.rollback().model_id == "v1"
    assert registry.active_id() == "v1" and registry.active().demo
    with pytest.raises(ModelPackageError, match="no earlier model"):
        registry.rollback()
    assert not [p for p in models.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_publishing_over_an_existing_version_is_refused(packages, tmp_path):
    detector, classifier = packages
    write_model_set(tmp_path, "v1", detector, classifier)
    with pytest.raises(ModelPackageError, match="already exists"):
        write_model_set(tmp_path, "v1", detector, classifier)


def test_activating_a_missing_or_broken_version_keeps_the_active_one(packages, tmp_path):
    detector, classifier = packages
    registry = Registry(tmp_path)
    write_model_set(tmp_path, "good", detector, classifier)
    registry.activate("good")
    with pytest.raises(ModelPackageError):
        registry.activate("nope")
    broken = write_model_set(tmp_path, "broken", detector, classifier).path
    (broken / "classifier" / "manifest.json").write_text("{")
    with pytest.raises(ModelPackageError):
        registry.activate("broken")
    assert registry.active_id() == "good"
    assert [v.model_id for v in registry.versions()] == ["good"]  # the broken one is left out of the list


def test_a_corrupt_active_file_is_a_typed_error(packages, tmp_path):
    (tmp_path / ACTIVE).write_text("not json")
    with pytest.raises(ModelPackageError, match="active-model file"):
        Registry(tmp_path).active()


def test_resolve_models_accepts_sets_models_folders_and_package_folders(packages, tiny_model_study, tmp_path):
    detector, classifier = packages
    assert resolve_models(tiny_model_study / "models").model_id == "tiny-v1"  # the active set
    assert resolve_models(tiny_model_study / "models" / "tiny-v1").classifier is not None
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copytree(detector, loose / "det")
    shutil.copytree(classifier, loose / "cls")
    found = resolve_models(loose)
    assert (found.detector.name, found.classifier.name) == ("det", "cls")
    assert resolve_models(loose / "det").classifier is None  # a detector package alone
    shutil.copytree(detector, loose / "det2")
    with pytest.raises(ModelPackageError, match="one detector"):
        resolve_models(loose)
    with pytest.raises(ModelPackageError, match="no such"):
        resolve_models(tmp_path / "missing")
    assert active_model_dir(tiny_model_study) == tiny_model_study / "models" / "tiny-v1"
    assert active_model_dir(tmp_path) is None


def test_the_active_file_names_the_history(packages, tmp_path):
    detector, classifier = packages
    registry = Registry(tmp_path)
    for name in ("a", "b", "c"):
        write_model_set(tmp_path, name, detector, classifier)
        registry.activate(name)
    state = json.loads((tmp_path / ACTIVE).read_text())
    assert state["id"] == "c" and state["history"] == ["a", "b"]
