"""An interrupted ``synth`` never leaves half a study: Ctrl+C cleans up, ``kill -9`` leaves a clearly named partial
folder beside the study, which the next run removes and reports. The old code left ``study.json`` claiming every case
while the folder held a few, some half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.study.layout import Study
from core.study.staging import PARTIAL, staged_study, stale_partials

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _default_sigint() -> None:
    """A terminal's Ctrl+C reaches a program whose SIGINT is at its default; a test suite started as a background job
    (``cmd &`` in a script) inherits SIGINT ignored, and Python then keeps it ignored, so restore the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_synth(out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "desktop.cli", "synth", str(out), "--cases", "40", "--slices", "2", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=_default_sigint)


def _wait_for_cases(out: Path, at_least: int, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until the partial folder holds ``at_least`` written slices (the run is well under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        written = list(out.parent.glob(f".{out.name}{PARTIAL}*/images/*/*.png"))
        if len(written) >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError("synth wrote nothing in time")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_during_synth_leaves_nothing_behind(tmp_path, workers):
    out = tmp_path / "phantom"
    process = _start_synth(out, "--workers", workers)
    _wait_for_cases(out, 3, process)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl+C in a terminal does: the whole process group
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert not out.exists(), "an interrupted synth must not leave a study that claims cases it does not hold"
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "the partial folder and its lock must be removed"


def test_after_kill_9_the_partial_folder_is_marked_and_the_next_run_removes_it(tmp_path):
    out = tmp_path / "phantom"
    process = _start_synth(out, "--workers", "1")
    _wait_for_cases(out, 3, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert not out.exists()
    leftovers = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(f".{out.name}{PARTIAL}"), leftovers
    assert stale_partials(out) == leftovers  # its writer is dead: its lock is free

    done = subprocess.run([sys.executable, "-m", "desktop.cli", "synth", str(out), "--cases", "2", "--slices", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"removed {leftovers[0].name}" in done.stderr
    assert not leftovers[0].exists()
    study = Study.open(out)
    assert len(study.cases()) == 2 == study.settings.extra["synthetic"]["cases"]


def test_a_partial_folder_still_being_written_is_not_taken_for_a_leftover(tmp_path):
    out = tmp_path / "phantom"
    with staged_study(out) as staging:
        (staging / "file").write_text("x")
        assert stale_partials(out) == []  # its writer (this process) holds the lock
        with pytest.raises(Exception, match="not empty"), staged_study(staging):
            pass
    assert (out / "file").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["phantom"]


def test_an_error_inside_the_staged_study_removes_it_and_leaves_the_target_alone(tmp_path):
    out = tmp_path / "phantom"
    out.mkdir()  # an empty folder the user made for it
    with pytest.raises(RuntimeError), staged_study(out) as staging:
        (staging / "half").write_text("x")
        raise RuntimeError("boom")
    assert out.is_dir() and not any(out.iterdir())
    assert [p.name for p in tmp_path.iterdir()] == ["phantom"]
