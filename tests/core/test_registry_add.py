"""Adding models trained elsewhere to a study (issue 19): any folder ``--models`` accepts, or another study, becomes a
new version; it is activated only when none is active; the demo mark travels with it; and what a rollback would
go back to can be asked without changing anything."""

from __future__ import annotations

import json
import shutil

import pytest

from core.errors import ModelPackageError
from core.models.adding import add_models, bundled_demo_models
from core.models.registry import Registry
from core.study.layout import Study
from tests.bundled_models import BUNDLED_SET

DEMO_DETECTOR = BUNDLED_SET / "detector"


def test_added_models_become_new_versions_activated_only_when_none_is_active(tmp_path):
    study = Study.create(tmp_path / "study")
    models = study.root / "models"
    first = add_models(models, bundled_demo_models())  # the bundled demo study's models folder: its active set
    assert first.activated and first.active == "v1" and first.added.demo and first.added.classifier is not None
    plain = tmp_path / "plain" / "detector"
    shutil.copytree(DEMO_DETECTOR, plain)
    manifest = json.loads((plain / "manifest.json").read_text())
    (plain / "manifest.json").write_text(json.dumps({**manifest, "demo": False}))
    second = add_models(models, plain.parent)  # a folder holding one detector package
    assert not second.activated and second.active == "v1" and second.added.model_id == "v2"
    assert not second.added.demo and second.added.classifier is None and second.added.parent == "v1"
    third = add_models(models, study.root)  # another study (here the same one): its active set
    assert third.added.model_id == "v3" and third.added.demo
    registry = Registry(models)
    assert registry.previous_id() is None
    registry.activate("v2")
    assert registry.previous_id() == "v1" and registry.active_id() == "v2"  # asking changed nothing


def test_a_package_that_does_not_fit_adds_nothing_and_names_its_file(tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(DEMO_DETECTOR, bad)
    (bad / "weights.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(ModelPackageError) as raised:
        add_models(tmp_path / "models", bad)
    assert raised.value.path == str(bad / "weights.safetensors")
    assert Registry(tmp_path / "models").versions() == []
