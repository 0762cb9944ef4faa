"""Paths and packages that would escape the study (issue 18): one guard, :func:`core.paths.inside`, for every path
derived from data, and model packages validated completely before anything is copied.

Every hostile case is built here at test time: links out of a package or a study, pickles and zips as weights,
``models/active`` naming ``../x`` or ``/abs``, a key file inside the study, weights full of NaN. Each must end in
a typed error (or one clean command-line line) naming the path and the reason, with nothing copied or written.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import ModelPackageError, StudyError
from core.imaging.letterbox import InputGeometry
from core.models.classifier import ClassifierConfig, VertebraClassifier, build_classifier
from core.models.detector import DetectorConfig, VertebraDetector, build_detector
from core.models.package import WEIGHTS, read_weights, write_package
from core.models.registry import ACTIVE, Registry, active_model_dir, read_model_set, write_model_set
from core.paths import inside
from core.progress import run
from core.study.exporter import export_study
from core.study.importer import ImportOptions, import_source
from core.study.layout import Study
from desktop.cli import main

SECRET = b"PATIENT SOURCE PATHS...." + bytes([8]) + b" and more that must never reach a study or an export\n"


# -- tiny packages and studies ----------------------------------------------------------------------------------------
def _nan_state(state: dict[str, torch.Tensor], every: bool) -> dict[str, torch.Tensor]:
    out = {}
    for number, (name, tensor) in enumerate(state.items()):
        tensor = tensor.clone()
        if tensor.is_floating_point() and (every or number == 0):
            tensor.fill_(float("nan"))
        out[name] = tensor
    return out


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    """Untrained but well-formed packages: a small detector (float16, as the demo models are), a ResNet18
    classifier, a detector whose weights are all NaN (float16) and a classifier with one NaN tensor (float32)."""
    root = tmp_path_factory.mktemp("packages")
    torch.manual_seed(0)
    detector = DetectorConfig(geometry=InputGeometry(size=64), fpn_channels=16, box_representation=32)
    classifier = ClassifierConfig(arch="resnet18")
    det_state = build_detector(detector, use_imagenet=False).state_dict()
    cls_state = build_classifier(classifier, use_imagenet=False).state_dict()
    made = {}
    for name, kind, config, state, half in (
        ("detector", "detector", detector, det_state, True),
        ("classifier", "classifier", classifier, cls_state, False),
        ("nan-detector", "detector", detector, _nan_state(det_state, every=True), True),
        ("nan-classifier", "classifier", classifier, _nan_state(cls_state, every=False), False),
    ):
        made[name] = write_package(root / name, kind=kind, state=state, architecture=config.to_json(),
                                   classes=["vertebra"] if kind == "detector" else list(config.classes),
                                   input_spec={}, half=half)
    return made


def _copy(package: Path, target: Path) -> Path:
    shutil.copytree(package, target)
    return target


def _tree(root: Path) -> list[str]:
    """Everything under ``root`` (hidden entries and links included), to show nothing was written."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _png(path: Path, value: int = 128, size: tuple[int, int] = (48, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0]), value, dtype=np.uint8)).save(path)


def _study(root: Path, slices: tuple[str, ...] = ("s001",)) -> Study:
    study = Study.create(root)
    for slice_id in slices:
        _png(study.root / "images" / "case-0001" / f"{slice_id}.png")
    return study


def _error_line(capsys, *needles: str) -> str:
    """The one clean error line the command printed (no traceback, no internal error), holding each needle."""
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text and "internal error" not in text, text
    lines = [line for line in captured.err.splitlines() if line.startswith("vertebra-review: error:")]
    assert len(lines) == 1, captured.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- the guard itself -------------------------------------------------------------------------------------------------
def test_the_guard_keeps_paths_inside_their_root_and_to_regular_files(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("a")
    (tmp_path / "outside.txt").write_bytes(SECRET)
    (root / "in-link").symlink_to(root / "sub" / "a.txt")
    (root / "out-link").symlink_to(tmp_path / "outside.txt")
    (root / "out-dir").symlink_to(tmp_path)
    os.mkfifo(root / "pipe")

    assert inside(root, "sub/a.txt") == root / "sub" / "a.txt"
    assert inside(root, "in-link") == root / "in-link"  # a link that stays inside is fine
    assert inside(root, root / "sub" / "a.txt") == root / "sub" / "a.txt"  # built from the root itself
    assert inside(root, "sub", kind="dir") == root / "sub"
    assert inside(root, "not-yet/b.txt", kind="new") == root / "not-yet" / "b.txt"
    cases = {
        "out-link": "symbolic link",
        "out-dir/outside.txt": "symbolic link",
        "../outside.txt": "'..'",
        "sub/../../outside.txt": "'..'",
        str(tmp_path / "outside.txt"): "absolute path",
        "/etc/hostname": "absolute path",
        "pipe": "not a regular file (it is a pipe)",
        "sub": "not a regular file (it is a folder)",
        "missing.txt": "is missing",
    }
    for name, reason in cases.items():
        with pytest.raises(StudyError) as info:
            inside(root, name, what="slice image")
        assert reason in str(info.value) and "slice image" in str(info.value), (name, str(info.value))
    with pytest.raises(ModelPackageError, match="leads outside"):
        inside(root, "out-dir/new.json", kind="new", error=ModelPackageError)
    with pytest.raises(StudyError, match="not a folder"):
        inside(root, "sub/a.txt", kind="dir")


# -- packages: validated completely before anything is copied ---------------------------------------------------------
@pytest.mark.parametrize("name", ["notes.txt", WEIGHTS, "manifest.json"])
def test_a_package_file_that_links_out_of_the_package_is_refused_and_nothing_is_copied(packages, tmp_path, name):
    package = _copy(packages["detector"], tmp_path / "pkg")
    outside = tmp_path / "elsewhere" / name
    outside.parent.mkdir()
    if (package / name).exists():
        (package / name).rename(outside)  # the real file moves out; a link is left in its place
    else:
        outside.write_bytes(SECRET)
    (package / name).symlink_to(outside)
    models = tmp_path / "study" / "models"
    with pytest.raises(ModelPackageError, match="leads outside") as info:
        write_model_set(models, "v1", package, None)
    assert name in str(info.value) and "symbolic link" in str(info.value)
    assert not models.exists()


def _pickle(file: Path) -> None:
    file.write_bytes(pickle.dumps({"backbone.weight": [0.0] * 8}, protocol=4))


def _torch_zip(file: Path) -> None:
    torch.save({"backbone.weight": torch.zeros(8)}, file)


def _truncated(file: Path) -> None:
    file.write_bytes(file.read_bytes()[:1000])


def _missing(file: Path) -> None:
    file.unlink()


def _pipe(file: Path) -> None:
    file.unlink()
    os.mkfifo(file)


def _folder(file: Path) -> None:
    file.unlink()
    file.mkdir()


@pytest.mark.parametrize(("spoil", "reason"), [
    (_pickle, "Python pickle, which is never loaded"),
    (_torch_zip, "zip archive"),
    (_truncated, "truncated?"),
    (_missing, f"has no {WEIGHTS}"),
    (_pipe, "not a regular file (it is a pipe)"),
    (_folder, f"has no {WEIGHTS}"),
])
def test_weights_that_are_not_a_safetensors_file_are_refused_before_anything_is_written(packages, tmp_path, spoil,
                                                                                      reason):
    package = _copy(packages["detector"], tmp_path / "pkg")
    spoil(package / WEIGHTS)
    models = tmp_path / "models"
    with pytest.raises(ModelPackageError) as info:
        write_model_set(models, "v1", package, None)
    assert reason in str(info.value) and str(package) in str(info.value)
    assert not models.exists()


def test_weights_of_another_architecture_are_refused_with_the_first_difference(packages, tmp_path):
    package = _copy(packages["detector"], tmp_path / "pkg")
    shutil.copyfile(packages["classifier"] / WEIGHTS, package / WEIGHTS)
    with pytest.raises(ModelPackageError, match="do not fit the architecture"):
        write_model_set(tmp_path / "models", "v1", package, None)
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["architecture"]["fpn_channels"] = 32  # the same names, other shapes
    (package / "manifest.json").write_text(json.dumps(manifest))
    shutil.copyfile(packages["detector"] / WEIGHTS, package / WEIGHTS)
    with pytest.raises(ModelPackageError, match=r"of another shape: .* is \[16"):
        write_model_set(tmp_path / "models", "v1", package, None)
    assert not (tmp_path / "models").exists()


def test_a_good_package_is_published_with_plain_files_only(packages, tmp_path):
    detector = _copy(packages["detector"], tmp_path / "det")
    (detector / "README.txt").symlink_to(detector / "manifest.json")  # a link that stays inside the package
    published = write_model_set(tmp_path / "models", "v1", detector, packages["classifier"])
    for file in (published.path / "detector").iterdir():
        assert file.is_file() and not file.is_symlink()
    assert (published.path / "detector" / "README.txt").read_bytes() == (detector / "manifest.json").read_bytes()
    assert read_model_set(published.path).classifier is not None


# -- non-finite weights: refused when loaded --------------------------------------------------------------------------
def test_weights_holding_nan_are_refused_when_loaded_in_float16_and_float32(packages, tmp_path):
    with pytest.raises(ModelPackageError, match=r"NaN or infinite values in .* tensors") as info:
        VertebraDetector.from_package(packages["nan-detector"], device="cpu", precision="fp32")
    assert str(packages["nan-detector"] / WEIGHTS) in str(info.value)
    with pytest.raises(ModelPackageError, match="NaN or infinite values in 1 of"):
        VertebraClassifier.from_package(packages["nan-classifier"], device="cpu", precision="fp32")
    with pytest.raises(ModelPackageError, match="NaN"):
        read_weights(packages["nan-detector"])  # fine-tuning from it (train --init, retrain) is refused too
    with pytest.raises(ModelPackageError, match="NaN"):
        write_model_set(tmp_path / "models", "v1", packages["nan-detector"], None)
    assert not (tmp_path / "models").exists()


def test_diagnose_with_nan_weights_fails_with_one_clean_line(packages, tmp_path, capsys):
    study = _study(tmp_path / "study")
    good = write_model_set(study.root / "models", "v1", packages["detector"], None).path
    (good / "detector" / WEIGHTS).unlink()  # a model set spoilt after it was added (not through `models add`)
    shutil.copyfile(packages["nan-detector"] / WEIGHTS, good / "detector" / WEIGHTS)
    Registry(study.root / "models").activate("v1")
    out = tmp_path / "pred"
    code = main(["diagnose", str(study.root / "images" / "case-0001" / "s001.png"), "--models",
                 str(study.root / "models"), "--out", str(out), "--device", "cpu", "--precision", "fp32"])
    assert code == 1
    _error_line(capsys, str(good / "detector" / WEIGHTS), "NaN")
    assert not out.exists()


# -- models/active and model ids --------------------------------------------------------------------------------------
@pytest.fixture()
def study_with_outside_set(packages, tmp_path) -> tuple[Study, Path]:
    """A study holding set v1, and a valid model set ``x`` beside the study (which the study does not hold)."""
    study = _study(tmp_path / "study")
    write_model_set(study.root / "models", "v1", packages["detector"], None)
    outside = write_model_set(tmp_path, "x", packages["detector"], None).path
    return study, outside


@pytest.mark.parametrize("named", ["../../x", "../x", "ABSOLUTE", "x/../../../x"])
def test_an_active_file_naming_a_path_is_refused_not_followed(study_with_outside_set, tmp_path, capsys, named):
    study, outside = study_with_outside_set
    named = str(outside) if named == "ABSOLUTE" else named
    active = study.root / "models" / ACTIVE
    active.write_text(json.dumps({"id": named, "history": []}))
    registry = Registry(study.root / "models")
    with pytest.raises(ModelPackageError, match="not a model id") as info:
        registry.active()
    assert str(active) in str(info.value)
    with pytest.raises(ModelPackageError):
        active_model_dir(study.root)
    out = tmp_path / "pred"
    assert main(["diagnose", str(study.root / "images"), "--models", str(study.root / "models"), "--out", str(out),
                 "--device", "cpu"]) == 1
    _error_line(capsys, str(active), "not a model id")
    assert not out.exists()
    assert registry.activate("v1").model_id == "v1"  # activating a set of the study repairs the file
    assert registry.active_id() == "v1" and json.loads(active.read_text())["history"] == []


def test_rollback_skips_history_entries_that_are_paths(study_with_outside_set):
    study, outside = study_with_outside_set
    (study.root / "models" / ACTIVE).write_text(json.dumps({"id": "v1", "history": ["../../x", str(outside)]}))
    with pytest.raises(ModelPackageError, match="no earlier model"):
        Registry(study.root / "models").rollback()


def test_a_model_set_that_links_out_of_the_study_is_not_a_version_of_it(study_with_outside_set):
    study, outside = study_with_outside_set
    models = study.root / "models"
    (models / "linked").symlink_to(outside)
    registry = Registry(models)
    assert [v.model_id for v in registry.versions()] == ["v1"]
    with pytest.raises(ModelPackageError, match="leads outside"):
        registry.activate("linked")
    shutil.rmtree(models / "v1" / "detector")
    (models / "v1" / "detector").symlink_to(outside / "detector")  # a package inside a set, linked out
    with pytest.raises(ModelPackageError, match="detector package leads outside"):
        read_model_set(models / "v1")


@pytest.mark.parametrize("model_id", ["../../x", "../x", "/tmp/x", "a/b", ".."])
def test_models_add_with_a_path_for_an_id_is_one_clean_line_and_writes_nothing(packages, tmp_path, capsys,
                                                                              model_id):
    study = _study(tmp_path / "a" / "b" / "study")
    before = _tree(tmp_path)
    assert main(["models", str(study.root), "add", model_id, "--detector", str(packages["detector"])]) == 1
    _error_line(capsys, "not allowed")
    assert _tree(tmp_path) == before
    assert main(["models", str(study.root), "activate", model_id]) == 1
    _error_line(capsys, "not allowed")


def test_models_add_of_a_hostile_package_is_one_clean_line_and_writes_nothing(packages, tmp_path, capsys):
    study = _study(tmp_path / "study")
    package = _copy(packages["detector"], tmp_path / "pkg")
    (package / "secret.txt").symlink_to(tmp_path / "secret.txt")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    before = _tree(study.root)
    assert main(["models", str(study.root), "add", "v1", "--detector", str(package)]) == 1
    _error_line(capsys, str(package / "secret.txt"), "leads outside")
    assert _tree(study.root) == before
    _pickle(package / WEIGHTS)
    (package / "secret.txt").unlink()
    assert main(["models", str(study.root), "add", "v1", "--detector", str(package)]) == 1
    _error_line(capsys, str(package / WEIGHTS), "pickle")
    assert _tree(study.root) == before


# -- export: only the study's own files ------------------------------------------------------------------------------
def test_export_never_copies_a_slice_that_links_out_of_the_study(tmp_path, capsys):
    study = _study(tmp_path / "study", slices=("s001", "s002", "s003", "s004"))
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)  # byte 24 is 8, the one byte export looked at
    foreign = tmp_path / "foreign.png"
    _png(foreign, value=7)  # a real PNG, from outside the study
    system = next((Path(p) for p in ("/etc/hostname", "/etc/passwd") if Path(p).is_file()), secret)
    slices = study.root / "images" / "case-0001"
    for slice_id, target in (("s001", secret), ("s002", foreign), ("s004", system)):
        (slices / f"{slice_id}.png").unlink()
        (slices / f"{slice_id}.png").symlink_to(target)
    out = tmp_path / "out"
    report = run(export_study(study.root, out))
    assert report.images == 1
    reasons = dict(report.errors)
    assert set(reasons) == {"case-0001/s001", "case-0001/s002", "case-0001/s004"}
    assert all("leads outside" in why and "symbolic link" in why for why in reasons.values())
    assert sorted(p.name for p in (out / "case-0001").iterdir()) == ["s003.png"]
    assert main(["export", str(study.root), str(tmp_path / "out2")]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    assert f"skipped case-0001/s001: {slices / 's001.png'}: slice image case-0001/s001 leads outside" in err


def test_export_copies_a_stored_png_only_when_it_is_one(tmp_path):
    study = _study(tmp_path / "study")
    (study.root / "images" / "case-0001" / "s001.png").write_bytes(SECRET)  # inside, byte 24 is 8, not a PNG
    report = run(export_study(study.root, tmp_path / "out"))
    assert report.images == 0 and len(report.errors) == 1
    assert not (tmp_path / "out" / "case-0001" / "s001.png").exists()


# -- the key file stays out of the study ------------------------------------------------------------------------------
@pytest.fixture()
def source(tmp_path) -> Path:
    folder = tmp_path / "patient_17"
    _png(folder / "IMG001.png")
    return folder


@pytest.mark.parametrize("where", ["inside", "new-study", "through-a-link", "dot-dot"])
def test_a_key_file_inside_the_study_is_refused_before_anything_is_written(source, tmp_path, capsys, where):
    study = tmp_path / "study"
    if where != "new-study":
        Study.create(study)
    key = {
        "inside": study / "key.csv",
        "new-study": study / "keys" / "key.csv",
        "through-a-link": tmp_path / "link" / "key.csv",
        "dot-dot": tmp_path / "elsewhere" / ".." / "study" / "key.csv",
    }[where]
    if where == "through-a-link":
        (tmp_path / "link").symlink_to(study, target_is_directory=True)
    before = _tree(tmp_path)
    with pytest.raises(StudyError, match="must be kept outside the study") as info:
        run(import_source(source, study, ImportOptions(key_file=key)))
    assert str(key) in str(info.value)
    assert _tree(tmp_path) == before
    assert main(["import", str(source), str(study), "--key-file", str(key)]) == 1
    _error_line(capsys, str(key), "outside the study")
    assert _tree(tmp_path) == before


def test_a_key_file_outside_the_study_receives_the_sources(source, tmp_path):
    key = tmp_path / "keys" / "key.csv"
    key.parent.mkdir()
    report = run(import_source(source, tmp_path / "study", ImportOptions(key_file=key)))
    assert report.slice_count == 1
    assert str(source / "IMG001.png") in key.read_text()
    assert str(source) not in (tmp_path / "study" / "study.json").read_text()
