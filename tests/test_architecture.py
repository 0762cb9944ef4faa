"""House rules checked in CI: core never imports Qt (import-linter and at run time), and the code passes ruff."""

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
    assert "core never imports Qt KEPT" in result.stdout


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


def test_ruff_is_clean():
    folders = [name for name in ("core", "desktop", "tests", "installer") if (REPO / name).is_dir()]
    result = subprocess.run(
        [str(BIN / "ruff"), "check", *folders], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
