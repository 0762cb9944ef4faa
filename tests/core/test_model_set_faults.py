"""Model sets under faults (issue 18): what a killed retrain leaves behind, a retrain lock whose process id was
reused, a set added while a retrain runs, two writers taking ids at once, and the modes of new sets and of
retrained weights under a given umask."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import core
from core import fileio
from core.models.registry import Registry, read_model_set, write_model_set
from core.progress import run
from core.training.retrain import LOCK, RetrainBusyError, RetrainOptions, retrain
from desktop.cli import main

pytestmark = pytest.mark.slow  # retrains, or starts Python processes

REPO = Path(core.__file__).resolve().parents[1]  # the code under test, in the processes started too
CLASSIFIER_ONLY = RetrainOptions(epochs=1, batch_size=2, precision="fp32", margin=1.0, detector=False)


@pytest.fixture()
def study(tiny_model_study, tmp_path) -> Path:
    """A copy of the tiny study; its weights are hard links (nothing writes weights in place)."""
    copy = tmp_path / "study"
    shutil.copytree(tiny_model_study, copy, copy_function=os.link)
    return copy


def _versions(study: Path) -> list[str]:
    return [v.model_id for v in Registry(study / "models").versions()]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _link_package(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for file in source.iterdir():
        os.link(file, target / file.name)


def _modes_follow_the_umask(root: Path, umask: int) -> list[str]:
    """Every folder and file under ``root`` whose mode is not what ``mkdir`` and ``open`` give under ``umask``."""
    wrong = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        wanted = (0o777 if path.is_dir() else 0o666) & ~umask
        if mode != wanted:
            wrong.append(f"{path.relative_to(root)}: {mode:o}, not {wanted:o}")
    return wrong


def test_a_retrain_killed_after_staging_its_packages_does_not_block_the_next(study):
    """What ``kill -9`` during the gate leaves: both packages staged, a checkpoint, and the lock file naming a process
    that has ended. The next retrain takes the lock over, clears the staging and publishes."""
    models = study / "models"
    active = read_model_set(models / "tiny-v1")
    stale = models / ".staging" / "v2"
    _link_package(active.detector, stale / "detector")
    _link_package(active.classifier, stale / "classifier")
    (stale / ".training" / "classifier").mkdir(parents=True)
    (stale / ".training" / "classifier" / "checkpoint.pt").write_bytes(b"half a checkpoint")
    (models / ".staging" / ".detector.x1y2z3").mkdir()  # write_package's own staging, killed mid-write
    (models / LOCK).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(),
                                           "started": "2026-01-01T00:00:00+00:00"}))

    result = run(retrain(study, CLASSIFIER_ONLY))

    assert result.activated and result.model_id == "v2" and _versions(study) == ["tiny-v1", "v2"]
    assert Registry(models).active().classifier is not None
    assert not (models / LOCK).exists() and list((models / ".staging").iterdir()) == []
    # Retrained weights and the new set follow the umask, as every other file of the study does.
    assert _modes_follow_the_umask(models / "v2", fileio._UMASK) == []


def test_a_lock_whose_process_id_now_belongs_to_a_live_process_is_taken_over(study):
    """A killed run's lock file, its process id since given to another process (here: this one). The OS lock the
    killed run held is free, so the lock is taken over, not refused for ever."""
    models = study / "models"
    (models / LOCK).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "os_lock": True,
                                           "started": "2026-01-01T00:00:00+00:00"}))
    job = retrain(study, CLASSIFIER_ONLY)
    assert next(job).stage == "gather"  # the lock is held now
    assert json.loads((models / LOCK).read_text())["started"] != "2026-01-01T00:00:00+00:00"
    job.close()
    assert not (models / LOCK).exists()


def test_a_live_retrain_in_another_process_keeps_its_lock_and_staging_until_it_is_killed(study):
    models = study / "models"
    holder = ("import sys, time\nfrom core.training.retrain_lock import RetrainLock\n"
              "with RetrainLock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n")
    process = subprocess.Popen([sys.executable, "-c", holder, str(study)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert process.stdout.readline().strip() == "held"
        staged = models / ".staging" / "live-run" / "detector" / "weights.safetensors"
        staged.parent.mkdir(parents=True)
        staged.write_bytes(b"being written")
        with pytest.raises(RetrainBusyError, match="already running"):
            next(retrain(study, CLASSIFIER_ONLY))
        assert staged.read_bytes() == b"being written"  # a live run's staging is left alone
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert (models / LOCK).exists()  # kill -9 left its file, but not its OS lock
    job = retrain(study, CLASSIFIER_ONLY)
    assert next(job).stage == "gather"
    assert not staged.exists()  # the dead run's staging is cleared
    job.close()


def test_what_a_killed_models_add_left_is_removed_by_the_next_publish_and_a_live_one_is_kept(study):
    """A staging folder that a killed ``models add`` left (its writer's OS lock gone) is removed by the next publish;
    one whose writer still holds its lock (here: this process, on another descriptor) is left alone."""
    import fcntl

    models = study / "models"
    active = read_model_set(models / "tiny-v1")
    abandoned, live = models / ".v9.k1ll3d00", models / ".v8.st1llrun"
    _link_package(active.detector, abandoned / "detector")
    live.mkdir()
    an_hour_ago = time.time() - 3600
    for folder in (abandoned, live):
        os.utime(folder, (an_hour_ago, an_hour_ago))
    writer = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(writer, fcntl.LOCK_EX)
        assert main(["models", str(study), "add", "v9", "--detector", str(active.detector)]) == 0
        assert not abandoned.exists() and live.is_dir()
    finally:
        os.close(writer)
    assert _versions(study) == ["tiny-v1", "v9"]
    assert sorted(p.name for p in models.iterdir() if p.name.startswith(".")) == [".v8.st1llrun"]


def test_a_set_added_while_a_retrain_trains_does_not_collide_with_it(study):
    """The retrain's id is taken when it publishes, under the study's write lock, so a ``models add v2`` made while
    it trains neither fails it at the end nor is overwritten."""
    models = study / "models"
    active = read_model_set(models / "tiny-v1")
    added = []

    def add_while_training(event) -> None:
        if event.stage == "train" and not added:
            added.append(write_model_set(models, "v2", active.detector, None, data={"added_from": ["elsewhere"]}))

    result = run(retrain(study, CLASSIFIER_ONLY), add_while_training)
    assert added and not (models / "v2" / "classifier").exists()
    assert result.model_id == "v3" and _versions(study) == ["tiny-v1", "v2", "v3"]
    assert read_model_set(models / "v2").data == {"added_from": ["elsewhere"]}
    assert Registry(models).active_id() == "v3"


def test_two_writers_taking_the_next_id_at_once_get_two_ids(study):
    models = study / "models"
    active = read_model_set(models / "tiny-v1")
    published: list[str] = []
    failures: list[BaseException] = []

    def publish() -> None:
        try:
            published.append(write_model_set(models, None, active.detector, None).model_id)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and sorted(published) == ["v2", "v3", "v4"]


@pytest.mark.parametrize("umask", [0o002])  # not the 022 the suite runs under: the modes must follow it
def test_new_sets_and_retrained_weights_follow_the_umask(study, tmp_path, umask):
    """``models add`` and a retrain's packages (written by write_package, published by write_model_set) in a process
    run under ``umask``: every new folder and file has the mode ``mkdir`` and ``open`` give under it, also when the
    package added has 0600 weights (which keep their own mode: they are copied, not linked and changed)."""
    active = read_model_set(study / "models" / "tiny-v1")
    private = tmp_path / "private-classifier"  # as an older retrain wrote it
    private.mkdir()
    for file in active.classifier.iterdir():
        shutil.copyfile(file, private / file.name)
    os.chmod(private / "weights.safetensors", 0o600)
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from desktop.cli import main\n"
        "from core.models.package import read_manifest, read_weights, write_package\n"
        "from core.models.registry import write_model_set\n"
        "study, detector, classifier = map(Path, sys.argv[1:])\n"
        "assert main(['models', str(study), 'add', 'added', '--detector', str(detector), '--classifier',"
        " str(classifier)]) == 0\n"
        "staged = study / 'models' / '.staging' / 'run' / 'classifier'\n"
        "manifest = read_manifest(classifier)\n"
        "write_package(staged, kind='classifier', state=read_weights(classifier), architecture=manifest.architecture,"
        " classes=list(manifest.classes), input_spec=manifest.input)\n"
        "write_model_set(study / 'models', 'retrained', detector, staged)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(study), str(active.detector), str(private)],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                            preexec_fn=lambda: os.umask(umask), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    models = study / "models"
    for new in (models / "added", models / "retrained", models / ".staging" / "run"):
        assert _modes_follow_the_umask(new, umask) == []
    assert stat.S_IMODE((private / "weights.safetensors").stat().st_mode) == 0o600


@pytest.mark.parametrize("model_id", ["../../x", "..", "/tmp/x", "a/b", ""])
def test_models_add_with_an_id_that_is_a_path_is_one_clean_line(study, tmp_path, capsys, model_id):
    active = read_model_set(study / "models" / "tiny-v1")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["models", str(study), "add", model_id, "--detector", str(active.detector)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("vertebra-review: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == before and _versions(study) == ["tiny-v1"]
