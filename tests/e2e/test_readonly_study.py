"""A study that cannot be written (issue 18): ``models add``, ``models activate``, ``models rollback``, ``retrain``
and ``export`` each end in one clean error line with exit code 1, and write nothing; an export into a read-only
folder says it failed (exit 1), not that it was partial (exit 3).

The read-only file system is real where the system allows it: the study (or only its ``models/`` folder, or the
export folder) is bind-mounted read-only in a private mount namespace (``unshare -rm``), so every write fails with
EROFS, as on a read-only share or disk. Where user namespaces are not allowed, the same commands run in this process
with every write under those folders failing with EROFS at the lowest level (``os`` and ``open``) instead."""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import core
from desktop.cli import main

pytestmark = pytest.mark.slow  # starts Python in a namespace and validates the tiny model's packages

REPO = Path(core.__file__).resolve().parents[1]  # the code under test, also in the process started
RUNNER = """
import contextlib, io, json, logging, sys
from desktop.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    logging.getLogger().handlers.clear()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


@pytest.fixture()
def studies(tiny_model_study, tmp_path) -> tuple[Path, Path, Path]:
    """Two copies of the tiny study (weights hard-linked) and an empty export folder: the first study and the export
    folder are made read-only, and only the ``models/`` folder of the second."""
    whole, models_only, out = tmp_path / "readonly", tmp_path / "models-readonly", tmp_path / "export"
    for copy in (whole, models_only):
        shutil.copytree(tiny_model_study, copy, copy_function=os.link)
    out.mkdir()
    return whole, models_only, out


def _commands(whole: Path, models_only: Path, out: Path) -> list[list[str]]:
    package = str(whole / "models" / "tiny-v1" / "detector")
    commands = []
    for study in (whole, models_only):
        commands += [["models", str(study), "add", "v9", "--detector", package, "--activate"],
                     ["models", str(study), "activate", "tiny-v1"],
                     ["retrain", str(study), "--epochs", "1", "--batch-size", "2", "--no-refresh"]]
    return [*commands, ["models", str(whole), "rollback"], ["export", str(whole), str(out)],
            ["export", str(whole), str(out / "new")]]


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mode, p.stat().st_mtime_ns) for root in roots for p in [root, *root.rglob("*")]}


def _check(commands: list[list[str]], results: list[tuple[int, str]]) -> None:
    for argv, (code, err) in zip(commands, results, strict=True):
        lines = err.strip().splitlines()
        said = [line for line in lines if line.startswith("vertebra-review:")]
        assert code == 1 and said == [lines[-1]], (argv, code, err)
        assert said[0].startswith("vertebra-review: error:") and "Errno" not in err, (argv, err)
        assert "Traceback" not in err and "skipped" not in err, (argv, err)
        if argv[0] == "export":
            assert "nothing was exported" in said[0], err


def _readonly_mounts_work(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    quoted = shlex.quote(str(probe))
    script = f"mount --bind {quoted} {quoted} && mount -o remount,bind,ro {quoted} && ! touch {quoted}/x 2>/dev/null"
    return bool(shutil.which("unshare")) and subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True).returncode == 0


def test_writes_to_a_read_only_study_fail_in_one_line_on_a_read_only_mount(studies, tmp_path):
    if not _readonly_mounts_work(tmp_path):
        pytest.skip("read-only bind mounts in a user namespace are not allowed here")
    whole, models_only, out = studies
    readonly = [whole, models_only / "models", out]
    before = _snapshot(*readonly)
    commands = _commands(whole, models_only, out)
    mounts = " && ".join(f"mount --bind {q} {q} && mount -o remount,bind,ro {q}"
                         for q in map(shlex.quote, map(str, readonly)))
    python = " ".join(map(shlex.quote, [sys.executable, "-c", RUNNER, json.dumps(commands)]))
    script = f"{mounts} && exec {python}"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    _check(commands, json.loads(done.stdout.strip().splitlines()[-1]))
    assert _snapshot(*readonly) == before


class _ReadOnly:
    """Every write under ``roots`` fails with EROFS, at the lowest level: opening for writing, creating, renaming,
    linking, removing and changing the mode of a file or folder."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, roots: list[Path]) -> None:
        self.roots = [os.path.realpath(r) for r in roots]
        real = {name: getattr(os, name) for name in ("open", "mkdir", "rename", "replace", "link", "unlink", "rmdir",
                                                     "chmod", "symlink")}
        real_open = builtins.open
        writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

        def os_open(path, flags, *args, **kwargs):
            if flags & writing:
                self.check(path)
            return real["open"](path, flags, *args, **kwargs)

        def guard(name: str, *checked: int):
            def call(*args, **kwargs):
                for index in checked:
                    self.check(args[index])
                return real[name](*args, **kwargs)
            return call

        def builtin_open(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+"):
                self.check(file)
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(os, "open", os_open)
        for name, checked in (("mkdir", (0,)), ("rename", (0, 1)), ("replace", (0, 1)), ("link", (1,)),
                              ("unlink", (0,)), ("rmdir", (0,)), ("chmod", (0,)), ("symlink", (1,))):
            monkeypatch.setattr(os, name, guard(name, *checked))
        monkeypatch.setattr(builtins, "open", builtin_open)
        monkeypatch.setattr(io, "open", builtin_open)

    def check(self, path: object) -> None:
        if isinstance(path, int):
            return
        full = os.path.realpath(os.path.join(os.path.dirname(os.fsdecode(path)) or ".", ""))
        target = os.path.join(full, os.path.basename(os.fsdecode(path)))
        if any(target == root or target.startswith(root + os.sep) for root in self.roots):
            raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))


def test_writes_to_a_read_only_study_fail_in_one_line_with_erofs_injected(studies, monkeypatch):
    """The same commands in this process, every write under the read-only folders failing with EROFS."""
    whole, models_only, out = studies
    readonly = [whole, models_only / "models", out]
    before = _snapshot(*readonly)
    commands = _commands(whole, models_only, out)
    results = []
    with monkeypatch.context() as patch:
        _ReadOnly(patch, readonly)
        for argv in commands:
            logging.getLogger().handlers.clear()
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
            results.append((code, err.getvalue()))
    _check(commands, results)
    assert _snapshot(*readonly) == before
