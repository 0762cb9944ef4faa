"""A second retrain of a study is refused at once, before the training code (and torch) is loaded: the app's child
process says so in about a second instead of after tens of seconds of imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from multiprocessing import Pipe

from core.study.layout import Study
from core.training.retrain_child import run_retrain
from core.training.retrain_lock import BUSY, RetrainLock


def test_a_running_retrain_refuses_a_second_one_in_the_child_body(tmp_path):
    study = Study.create(tmp_path / "study")
    with RetrainLock(study.root):
        parent, child = Pipe()
        run_retrain(child, str(study.root), {})  # refused before its options are even looked at
        kind, text = parent.recv()
    assert kind == "error" and text.endswith(BUSY) and ".retrain.lock" in text
    RetrainLock(study.root).check_free()  # once the first has ended, the next one is let through


def test_the_refusal_does_not_load_torch(tmp_path):
    study = Study.create(tmp_path / "study")
    script = textwrap.dedent(f"""
        import sys
        from multiprocessing import Pipe
        from core.training.retrain_child import run_retrain
        parent, child = Pipe()
        run_retrain(child, {str(study.root)!r}, {{}})
        print(parent.recv()[1]); print("torch" in sys.modules)
    """)
    with RetrainLock(study.root):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said, torch_loaded = done.stdout.splitlines()
    assert said.endswith(BUSY) and torch_loaded == "False"
