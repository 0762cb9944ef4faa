"""House rules checked in CI: core never imports Qt (import-linter and at run time), nor do the headless commands of
the command line, and the code passes ruff."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_import_linter_contracts_hold():
    result = subprocess.run([str(BIN / "lint-imports")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in ("core never imports Qt", "core does not depend on desktop",
                     "the folders of core import one another without circles",
                     "only the command line knows both core and the desktop app", "headless commands import no Qt"):
        assert f"{contract} KEPT" in result.stdout


def test_no_module_is_imported_by_name_across_the_boundary():
    """Every arrow is one the contracts see: nothing in core loads a module by name (``importlib``), as core once
    loaded the desktop app and its benchmark."""
    hidden = [str(path.relative_to(REPO)) for path in (REPO / "core").rglob("*.py")
              if "import_module(" in path.read_text(encoding="utf-8")]
    assert hidden == []


@pytest.mark.slow
def test_importing_all_of_core_loads_no_qt():
    code = (
        "import importlib, pkgutil, sys, core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    importlib.import_module(m.name)\n"
        "qt = {'PySide6', 'PyQt5', 'pyqtgraph', 'superqt', 'qtpy', 'labelme'}\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in qt)\n"
        "print(len([n for n in sys.modules if n.startswith('core')]), bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(result.stdout.split()[0]) > 20  # it really imported the modules


@pytest.mark.slow
def test_the_headless_command_line_loads_no_qt():
    """Every module of the command line imported, its parser built and a headless command run: no Qt module loads
    (only ``gui``, ``--smoke-test`` and ``bench gui`` import the desktop app, when they run)."""
    code = (
        "import importlib, pkgutil, sys, desktop.cli\n"
        "from desktop.cli.main import build_parser, main\n"
        "for m in pkgutil.walk_packages(desktop.cli.__path__, 'desktop.cli.'):\n"
        "    importlib.import_module(m.name)\n"
        "build_parser().format_help()\n"
        "status = main(['inspect', sys.argv[1]])\n"
        "qt = {'PySide6', 'PyQt5', 'pyqtgraph', 'superqt', 'qtpy', 'labelme'}\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in qt)\n"
        "print(len([n for n in sys.modules if n.startswith('desktop.cli.')]), status, bad, file=sys.stderr)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code, str(REPO / "resources" / "demo")], cwd=REPO,
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    modules, status = result.stderr.strip().splitlines()[-1].split()[:2]
    assert int(modules) >= 14  # it really imported the command modules
    assert int(status) == 0


def test_ruff_is_clean():
    folders = [name for name in ("core", "desktop", "tests", "installer") if (REPO / name).is_dir()]
    result = subprocess.run(
        [str(BIN / "ruff"), "check", *folders], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
