"""Building and caching one labelme virtual environment per version, under ``tests/.oracle/`` (git-ignored).

labelme uses PyQt5 (and onnxruntime in 6.x), so it is never imported into our PySide6 process. Each version gets its
own venv, built with uv; a stamp file marks a venv complete only after labelme imports in it, so a half-built venv
is rebuilt. A file lock keeps two pytest processes from building the same venv at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ORACLE_ROOT = Path(__file__).resolve().parents[1] / ".oracle"
PROBE = Path(__file__).resolve().with_name("labelme_probe.py")
VERSIONS = ("6.3.1", "5.0.1")
PYTHON = "3.11"
STAMP = "oracle-complete.json"
BUILD_TIMEOUT_S = 900
PROBE_TIMEOUT_S = 300
#: The dependencies of labelme 5.0.1, installed by name after ``--no-deps``.
FALLBACK_5_DEPS = ("imgviz", "numpy<2", "Pillow", "PyYAML", "qtpy", "termcolor", "PyQt5", "matplotlib")


class OracleBuildError(RuntimeError):
    """A labelme venv could not be built or does not import; the message says which step failed and its output."""


class OracleProbeError(RuntimeError):
    """The probe itself failed (not a file labelme refused: that is reported per file)."""


@dataclass(frozen=True)
class LabelmeOracle:
    """A ready labelme venv: its version and its python."""

    version: str
    python: Path

    def probe(self) -> LabelmeProbe:
        """A running probe (labelme imported once); use it as a context manager."""
        return LabelmeProbe(self)

    def load(self, paths: Iterable[str | Path]) -> list[dict[str, Any]]:
        """labelme's view of each label file (see ``labelme_probe.py``), in one subprocess."""
        with self.probe() as probe:
            return probe.load(paths)

    def save(self, pairs: Iterable[tuple[str | Path, str | Path]]) -> list[dict[str, Any]]:
        """Make labelme write ``out`` from each ``(out, spec)`` pair, in one subprocess."""
        with self.probe() as probe:
            return probe.save(pairs)


class LabelmeProbe:
    """``labelme_probe.py serve`` in the oracle venv: one command per line, one JSON reply per line."""

    def __init__(self, oracle: LabelmeOracle) -> None:
        self.version = oracle.version
        env = oracle_environment()
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._process = subprocess.Popen(
            [str(oracle.python), "-I", str(PROBE), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
            env=env,
        )
        self._replies: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_replies, name=f"labelme-{self.version}-probe", daemon=True).start()

    def _read_replies(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._replies.put(line)
        self._replies.put(None)

    def load(self, paths: Iterable[str | Path]) -> list[dict[str, Any]]:
        """labelme's view of each label file, one dict per file (see ``labelme_probe.py``)."""
        return self._ask(["load", *(str(p) for p in paths)])

    def save(self, pairs: Iterable[tuple[str | Path, str | Path]]) -> list[dict[str, Any]]:
        """Make labelme write ``out`` from each ``(out, spec)`` pair; one dict per file."""
        return self._ask(["save", *(str(item) for pair in pairs for item in pair)])

    def _ask(self, args: list[str]) -> list[dict[str, Any]]:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(args) + "\n")
            self._process.stdin.flush()
            line = self._replies.get(timeout=PROBE_TIMEOUT_S)
        except OSError as exc:
            raise self._failure(f"cannot send a command ({exc})") from exc
        except queue.Empty as exc:
            self._process.kill()
            raise self._failure(f"no reply within {PROBE_TIMEOUT_S} s") from exc
        if line is None:
            raise self._failure(f"exited with status {self._process.wait()}")
        reply = json.loads(line)
        if "error" in reply:
            raise self._failure(f"command {args[:2]} failed:\n{reply['error']}")
        return reply["results"]

    def _failure(self, what: str) -> OracleProbeError:
        self._stderr.seek(0)
        tail = self._stderr.read()[-4000:]
        return OracleProbeError(f"labelme {self.version} probe: {what}\n{tail}".rstrip())

    def close(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            try:
                self._process.stdin.close()
            except OSError:
                pass
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._stderr.close()

    def __enter__(self) -> LabelmeProbe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def oracle_environment() -> dict[str, str]:
    """Our environment without what points at our own process: our venv, our Python paths and our Qt choice
    (``desktop`` sets QT_API=pyside6, which would make labelme's qtpy look for PySide6)."""
    ours = ("PYTHON", "VIRTUAL_ENV", "QT_API", "PYQTGRAPH_QT_LIB")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["QT_API"] = "pyqt5"
    return env


def _run(command: list[str], step: str, timeout: float = BUILD_TIMEOUT_S) -> str:
    env = oracle_environment()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OracleBuildError(f"{step} failed: {exc}") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-4000:]
        raise OracleBuildError(f"{step} failed (exit {done.returncode}): {' '.join(command)}\n{output}")
    return done.stdout


def venv_dir(version: str) -> Path:
    return ORACLE_ROOT / f"labelme-{version}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


_IMPORT_CHECK = """
import os
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import importlib.metadata
try:
    from labelme._label_file import LabelFile
except ImportError:
    from labelme.label_file import LabelFile
from PyQt5 import QtGui
import PIL.Image
print(importlib.metadata.version("labelme"))
"""


def _import_check(python: Path, version: str) -> None:
    output = _run([str(python), "-I", "-c", _IMPORT_CHECK], f"importing labelme {version}", timeout=300)
    installed = output.strip().splitlines()[-1:]
    if installed != [version]:
        raise OracleBuildError(f"the oracle venv holds labelme {installed}, not {version}")


def _install(python: Path, version: str) -> None:
    pip = [*_uv(), "pip", "install", "--python", str(python)]
    if version == "5.0.1":
        # 5.0.1's setup.py chooses its Qt binding when its wheel is built, so a cached wheel may lack PyQt5 (and it
        # pins an old matplotlib): install it without dependencies and name each dependency.
        _run([*pip, "--no-deps", f"labelme=={version}"], f"installing labelme {version} without dependencies")
        _run([*pip, *FALLBACK_5_DEPS], f"installing the dependencies of labelme {version}")
        return
    _run([*pip, f"labelme=={version}"], f"installing labelme {version}")


def ensure_oracle(version: str) -> LabelmeOracle:
    """The labelme venv for ``version``, built if it is missing or incomplete. Raises :class:`OracleBuildError`."""
    folder = venv_dir(version)
    python = folder / "bin" / "python"
    stamp = folder / STAMP
    with _locked(ORACLE_ROOT / f"labelme-{version}.lock"):
        if stamp.is_file() and python.is_file():
            return LabelmeOracle(version, python)
        started = time.monotonic()
        if folder.exists():
            shutil.rmtree(folder)
        _run([*_uv(), "venv", str(folder), "--python", PYTHON, "--quiet"], f"creating the labelme {version} venv")
        _install(python, version)
        _import_check(python, version)
        record = {"labelme": version, "build_seconds": round(time.monotonic() - started, 1)}
        stamp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return LabelmeOracle(version, python)
