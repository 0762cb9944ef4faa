"""The packaged application: ``vertebra-review --smoke-test`` as a user runs it, the bundle's rules, icons and desktop
entry, and (opt-in, slow) the PyInstaller build with the bundle's own smoke test.

The build test takes about 5 minutes on 2 cores and about 4 GB of disk (installer/dist/); run it with
``VERTEBRA_REVIEW_BUILD_INSTALLER=1 .venv/bin/pytest -q tests/e2e/test_installer.py -k bundle``.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from tests.bundled_models import BUNDLED_ID

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "installer"
ICONS = REPO / "resources" / "icons"
CLI = [sys.executable, "-m", "desktop.cli"]
BUILD_OPT_IN = "VERTEBRA_REVIEW_BUILD_INSTALLER"


def _load(name: str) -> ModuleType:
    """A module of installer/ (not a package: the spec and build.py import these by path)."""
    if str(INSTALLER) not in sys.path:
        sys.path.insert(0, str(INSTALLER))
    spec = importlib.util.spec_from_file_location(f"installer_{name}", INSTALLER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERTEBRA_REVIEW_")}
    return {**env, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen",
            "VERTEBRA_REVIEW_CONFIG_DIR": str(tmp_path / "user-config"), **extra}


def smoke(tmp_path: Path, *args: str | Path, command: list[str] | None = None,
          **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(command or CLI), "--smoke-test", *map(str, args)], capture_output=True, text=True,
                          env=_env(tmp_path, **extra), cwd=tmp_path, timeout=600)


@pytest.fixture()
def study(tiny_model_study, tmp_path) -> Path:
    copy = tmp_path / "study"
    shutil.copytree(tiny_model_study, copy)
    return copy


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines, "a failing smoke test must say why"
    return lines[-1]


# -- vertebra-review --smoke-test -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_smoke_test_opens_the_study_runs_the_models_and_shows_the_window(study, tmp_path):
    # The tiny model is far from the real demo model: its boxes score below the 0.75 default, hence threshold 0.
    before = sorted(p.relative_to(study) for p in study.rglob("*"))
    result = smoke(tmp_path, study, VERTEBRA_REVIEW_SMOKE_THRESHOLD="0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = lines[0]
    assert summary.startswith("smoke test passed: ")
    assert f"of {study} by model tiny-v1, demo model on CPU" in summary
    assert "main window shown ('Vertebra Review" in summary
    vertebrae = int(summary.split("passed: ")[1].split(" vertebrae")[0])
    assert vertebrae >= 1
    # The smoke test leaves nothing behind: the study (perhaps in a read-only bundle) is not written at all, and no
    # settings go to the user's folder.
    assert before == sorted(p.relative_to(study) for p in study.rglob("*"))
    assert not (tmp_path / "user-config").exists()


def smoke_in_process(monkeypatch, capsys, tmp_path: Path, *args: str | Path,
                     **extra: str) -> subprocess.CompletedProcess[str]:
    """The smoke test's failures through ``main`` in this process (a subprocess each takes PyTorch's import time);
    the passing run above is the one that runs as a user starts it."""
    from desktop.cli import main

    for name in [k for k in os.environ if k.startswith("VERTEBRA_REVIEW_")]:
        monkeypatch.delenv(name)
    for name, value in {"QT_QPA_PLATFORM": "offscreen",
                        "VERTEBRA_REVIEW_CONFIG_DIR": str(tmp_path / "user-config"), **extra}.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = main(["--smoke-test", *map(str, args)])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess([], code, out, err)


@pytest.mark.slow
def test_smoke_test_fails_when_the_models_find_no_vertebra(study, tmp_path, monkeypatch, capsys):
    result = smoke_in_process(monkeypatch, capsys, tmp_path, study)  # the tiny model at 0.75 finds nothing
    assert result.returncode == 1
    assert result.stdout == ""
    line = _error_line(result)
    assert line.startswith("vertebra-review: error: smoke test failed: model tiny-v1")
    assert "found no vertebra on case-0001/" in line and "threshold 0.75" in line


@pytest.mark.slow
def test_smoke_test_fails_with_a_clear_message_on_broken_weights(study, tmp_path, monkeypatch, capsys):
    weights = study / "models" / "tiny-v1" / "detector" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated, as by a failed copy
    result = smoke_in_process(monkeypatch, capsys, tmp_path, VERTEBRA_REVIEW_SMOKE_STUDY=str(study),
                              VERTEBRA_REVIEW_SMOKE_THRESHOLD="0")
    assert result.returncode == 1
    assert result.stdout == ""
    line = _error_line(result)
    assert line.startswith("vertebra-review: error: smoke test failed: ")
    assert str(weights) in line and "safetensors" in line


def test_smoke_test_refuses_a_folder_that_is_not_a_study_and_a_study_without_models(monkeypatch, tmp_path):
    from core.study.layout import Study
    from desktop.smoke import SmokeTestFailed, run_smoke_test

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # the smoke test sets it; restored after the test
    with pytest.raises(SmokeTestFailed, match=r"smoke test failed: .*not a study folder \(no study.json\)"):
        run_smoke_test(tmp_path)
    Study.create(tmp_path / "empty")
    with pytest.raises(SmokeTestFailed, match=r"models: the study has no active model set"):
        run_smoke_test(tmp_path / "empty")


def test_smoke_test_default_study_is_the_bundled_demo(monkeypatch, tmp_path):
    from desktop.smoke import STUDY_ENV, default_study

    monkeypatch.delenv(STUDY_ENV, raising=False)
    monkeypatch.delenv("VERTEBRA_REVIEW_RESOURCES", raising=False)
    assert default_study() == REPO / "resources" / "demo"
    monkeypatch.setenv("VERTEBRA_REVIEW_RESOURCES", str(tmp_path))  # the packaged app's data folder
    assert default_study() == tmp_path / "demo"
    monkeypatch.setenv(STUDY_ENV, str(tmp_path / "other"))
    assert default_study() == tmp_path / "other"


def test_smoke_test_rejects_a_threshold_that_is_not_a_number(monkeypatch, tmp_path):
    from desktop.smoke import THRESHOLD_ENV, SmokeTestFailed, run_smoke_test

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv(THRESHOLD_ENV, "high")
    with pytest.raises(SmokeTestFailed, match=r"\$VERTEBRA_REVIEW_SMOKE_THRESHOLD is 'high', not a number"):
        run_smoke_test(tmp_path)


# -- what goes into the bundle ----------------------------------------------------------------------------------------
def test_bundle_variant_is_cpu_unless_cuda_is_asked_for():
    rules = _load("bundle_rules")
    assert rules.variant({}) == "cpu"
    assert rules.variant({rules.VARIANT_ENV: "CUDA"}) == "cuda"
    with pytest.raises(ValueError, match="use one of cpu, cuda"):
        rules.variant({rules.VARIANT_ENV: "rocm"})


@pytest.mark.parametrize(("dest", "cpu", "cuda"), [
    ("nvidia/cu13/lib/libcublasLt.so.13", True, True),  # torch_cuda needs it to load
    ("nvidia/cudnn/lib/libcudnn.so.9", True, True),
    ("nvidia/cudnn/lib/libcudnn_engines_precompiled.so.9", False, True),  # opened only on a GPU
    ("nvidia/cu13/lib/libnvrtc-builtins.so.13.0", False, True),
    ("nvidia/nvshmem/lib/nvshmem_transport_ibgda.so.3", False, True),
    ("torch/lib/libtorch_cpu.so", True, True),
    ("libcuda.so.1", False, False),  # the driver is never bundled
])
def test_bundle_keeps_what_torch_needs_to_load_and_drops_what_a_gpu_run_opens(dest, cpu, cuda):
    rules = _load("bundle_rules")
    assert rules.keep_binary(dest, "cpu") is cpu
    assert rules.keep_binary(dest, "cuda") is cuda


def test_bundle_resources_skip_locks_journals_and_caches(tmp_path):
    rules = _load("bundle_rules")
    (tmp_path / "demo" / "images" / "case-0001").mkdir(parents=True)
    (tmp_path / "demo" / "study.json").write_text("{}")
    (tmp_path / "demo" / "images" / "case-0001" / "s001.png").write_bytes(b"png")
    (tmp_path / "demo" / ".locks").mkdir()
    (tmp_path / "demo" / ".locks" / "r1.json").write_text("{}")
    (tmp_path / "demo" / "x.tmp").write_text("")
    (tmp_path / "screenshots").mkdir()
    (tmp_path / "screenshots" / "a.png").write_bytes(b"png")
    entries = sorted(rules.resource_files(tmp_path))
    assert entries == [
        (str(tmp_path / "demo" / "images" / "case-0001" / "s001.png"), str(Path("resources/demo/images/case-0001"))),
        (str(tmp_path / "demo" / "study.json"), str(Path("resources/demo"))),
    ]


def test_the_cuda_bundle_takes_every_nvidia_library_under_its_own_folder(tmp_path):
    rules = _load("bundle_rules")
    lib = tmp_path / "nvidia" / "cudnn" / "lib"
    lib.mkdir(parents=True)
    for name in ("libcudnn.so.9", "libcudnn_ops.so.9", "libcuda.so.1", "__init__.py"):
        (lib / name).write_bytes(b"")
    assert list(rules.nvidia_libraries(tmp_path)) == [
        (str(lib / "libcudnn.so.9"), "nvidia/cudnn/lib"), (str(lib / "libcudnn_ops.so.9"), "nvidia/cudnn/lib")]
    assert list(rules.nvidia_libraries(tmp_path / "none")) == []


def test_icons_are_the_generators_output_in_every_size(tmp_path):
    icons = _load("make_icons")
    written = icons.write_icons(tmp_path)
    for path in written:
        assert (ICONS / path.name).read_bytes() == path.read_bytes(), f"{path.name}: run installer/make_icons.py"
    for size in icons.PNG_SIZES:
        with Image.open(ICONS / f"vertebra-review-{size}.png") as image:
            assert image.size == (size, size) and image.mode == "RGBA"
            assert image.getpixel((size // 2, size // 2))[3] == 255  # opaque in the middle
            assert image.getpixel((0, 0))[3] < 128  # the tile's rounded corner is transparent
    with Image.open(ICONS / "vertebra-review.ico") as ico:
        assert {(16, 16), (32, 32), (256, 256)} <= set(ico.info["sizes"])
    svg = (ICONS / "vertebra-review.svg").read_text()
    assert svg.startswith("<svg ") and 'viewBox="0 0 512 512"' in svg and svg.count("<rect") == 10


def _desktop_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_template_and_the_one_written_into_a_bundle(tmp_path):
    template = _desktop_entry(INSTALLER / "vertebra-review.desktop")
    assert template["Type"] == "Application" and template["Name"] == "Vertebra Review"
    assert template["Exec"] == "vertebra-review gui %f" and template["Icon"] == "vertebra-review"
    assert "not for clinical use" in template["Comment"]
    if shutil.which("desktop-file-validate"):
        checked = subprocess.run(["desktop-file-validate", str(INSTALLER / "vertebra-review.desktop")],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    build = _load("build")
    bundle = tmp_path / "my bundle" / "vertebra-review"
    bundle.mkdir(parents=True)
    entry = _desktop_entry(build.write_desktop_entry(bundle))
    assert entry["Exec"] == f'"{bundle / "vertebra-review"}" gui %f'
    assert entry["TryExec"] == str(bundle / "vertebra-review")
    assert entry["Icon"] == str(bundle / "_internal" / "resources" / "icons" / "vertebra-review-256.png")


def test_build_script_measures_a_bundle_folder(tmp_path):
    build = _load("build")
    bundle = tmp_path / "vertebra-review"
    (bundle / "_internal" / "torch" / "lib").mkdir(parents=True)
    (bundle / "_internal" / "torch" / "lib" / "libtorch_cpu.so").write_bytes(b"x" * 1000)
    (bundle / "_internal" / "resources").mkdir()
    (bundle / "_internal" / "resources" / "a.png").write_bytes(b"x" * 10)
    (bundle / "vertebra-review").write_bytes(b"x" * 5)
    assert build.size_breakdown(bundle) == {"torch": 1000, "resources": 10, "total": 1015, "other": 5}


# -- the bundle itself (opt-in) ---------------------------------------------------------------------------------------
@pytest.mark.skipif(os.environ.get(BUILD_OPT_IN) != "1",
                    reason=f"builds the PyInstaller bundle (about 5 min, 4 GB of disk): set {BUILD_OPT_IN}=1")
def test_bundle_builds_and_passes_its_smoke_test(tiny_model_study, tmp_path):
    assert (REPO / "resources" / "demo" / "study.json").is_file(), "the bundle's smoke test runs the demo study"
    built = subprocess.run([sys.executable, str(INSTALLER / "build.py"), "--smoke-runs", "2"],
                           capture_output=True, text=True, cwd=REPO, timeout=4 * 3600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    report = json.loads((INSTALLER / "dist" / "build-report.json").read_text())
    assert report["variant"] == "cpu" and report["size_bytes"]["total"] > 100e6
    assert report["size_bytes"]["resources"] > 50e6  # the demo study with its models is inside
    summary = report["smoke_test"]["summary"]
    assert summary.startswith("smoke test passed: ") and f"by model {BUNDLED_ID}, demo model" in summary
    assert len(report["smoke_test"]["runs_s"]) == 2 and report["smoke_test"]["median_s"] > 0
    executable = INSTALLER / "dist" / "vertebra-review" / "vertebra-review"
    version = subprocess.run([str(executable), "--version"], capture_output=True, text=True, timeout=300)
    assert version.returncode == 0 and version.stdout.startswith("vertebra-review ")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_study, broken)
    (broken / "models" / "active").write_text("not json")
    failed = smoke(tmp_path, broken, command=[str(executable)])
    assert failed.returncode == 1
    assert "smoke test failed: " in _error_line(failed) and "active" in _error_line(failed)
