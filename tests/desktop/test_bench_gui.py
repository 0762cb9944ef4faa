"""``vertebra-review bench gui`` at its smallest size, in this test's QApplication: it runs through the real command
line (the diagnosis pipeline included, whose ``fast`` classifier has the endplate head) and prints the keys the
README lists for it; it leaves the settings folder and the grad mode as they were."""

from __future__ import annotations

import json
import os

import pytest
import torch
from PySide6 import QtWidgets

from core.review.preferences import CONFIG_ENV
from desktop.cli import main
from tests.e2e.test_bench import check_documented


@pytest.mark.slow
def test_bench_gui_smoke(qtbot, capsys, config_dir):
    app = QtWidgets.QApplication.instance()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two spin-waiting threads on two shared cores are slower than one
    try:
        status = main(["bench", "gui", "--size", "smoke", "--repeats", "1", "--json"])
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    result = json.loads(captured.out)
    check_documented("gui", result)
    assert result["open_slices"] == 4 and result["gui_block_ms"] >= 0
    # the app was started as a user starts it, in a new process, and showed its window before the demo's first slice
    assert 0 < result["startup_window_ms"] < result["startup_image_ms"]
    assert 0 < result["startup_first_window_ms"] < result["startup_first_image_ms"]
    assert QtWidgets.QApplication.instance() is app  # the running one was used, not a second one
    assert os.environ[CONFIG_ENV] == str(config_dir)
