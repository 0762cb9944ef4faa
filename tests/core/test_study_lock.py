"""One write lock per study: imports and settings changes from real processes running at the same time lose nothing.

Each race runs in separate processes (spawned, as two commands would be) that wait at a barrier and then write the
same study at once, round after round. The old code lost an examination or an import record in most rounds.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import StudyError
from core.study.importer import import_source
from core.study.layout import Study
from core.study.lock import LOCK_FILE, study_write_lock

ROUNDS = 8
WORKERS = 3


def _png_folder(folder: Path, seed: int, slices: int = 2) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for number in range(slices):
        Image.fromarray(rng.integers(0, 255, (24, 32), dtype=np.uint8)).save(folder / f"img{number}.png")
    return folder


def _drain(job):
    try:
        while True:
            next(job)
    except StopIteration as stop:
        return stop.value


def _importer(barrier, source: str, studies: list[str], errors) -> None:
    for study in studies:
        barrier.wait()
        try:
            _drain(import_source(source, study))
        except BaseException as exc:  # reported to the parent, which fails the test with it
            errors.put(f"{source} -> {study}: {exc!r}")


def _reader_adder(barrier, reader: str, studies: list[str], errors) -> None:
    for study in studies:
        barrier.wait()
        try:
            handle = Study.open(study)
            for number in range(5):
                handle.update_settings(lambda s, n=number: s.readers.append(f"{reader}-{n}"))
        except BaseException as exc:
            errors.put(f"{reader} -> {study}: {exc!r}")


def _race(target, args_per_worker: list[tuple]) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(args_per_worker))
    errors = context.Queue()
    workers = [context.Process(target=target, args=(barrier, *args, errors)) for args in args_per_worker]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    assert all(w.exitcode == 0 for w in workers), [w.exitcode for w in workers]
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert not problems, problems


def _pixels(path: Path) -> bytes:
    return np.asarray(Image.open(path)).tobytes()


def test_imports_into_one_study_at_once_keep_every_examination_and_record(tmp_path):
    sources = [_png_folder(tmp_path / f"source{w}", seed=w) for w in range(WORKERS)]
    # Half the rounds create the study in the race as well; the other half add to an existing study with a case.
    studies = []
    for number in range(ROUNDS):
        root = tmp_path / f"study{number}"
        if number % 2:
            _drain(import_source(_png_folder(tmp_path / f"first{number}", seed=100 + number), root))
        studies.append(str(root))
    _race(_importer, [(str(source), studies) for source in sources])

    expected = {_pixels(path) for source in sources for path in sorted(source.iterdir())}
    for number, root in enumerate(studies):
        study = Study.open(root)
        records = study.settings.imports
        cases = study.cases()
        before = number % 2
        assert len(records) == WORKERS + before, f"round {number}: {len(records)} import records"
        assert len({r["case"] for r in records}) == len(records), f"round {number}: a case id given twice"
        assert sorted(r["case"] for r in records) == cases, f"round {number}: cases and records differ"
        found = {_pixels(p) for case in cases for p in (Path(root) / "images" / case).glob("*.png")}
        assert expected <= found, f"round {number}: an examination was lost or overwritten"
        assert all(len(list((Path(root) / "images" / c).glob("*.png"))) == 2 for c in cases), "a case was mixed"
        assert not list(Path(root).rglob(".*.tmp")), "a temporary file was left behind"


def test_the_same_examination_imported_twice_at_once_is_kept_once(tmp_path):
    source = _png_folder(tmp_path / "source", seed=7)
    studies = [str(tmp_path / f"study{n}") for n in range(4)]
    for root in studies:
        Study.create(root)
    _race(_importer, [(str(source), studies) for _ in range(WORKERS)])
    for root in studies:
        study = Study.open(root)
        assert len(study.settings.imports) == 1
        assert study.cases() == [study.settings.imports[0]["case"]], "the loser's files must be removed"


def test_settings_changes_from_several_processes_are_all_kept(tmp_path):
    studies = [str(tmp_path / f"study{n}") for n in range(4)]
    for root in studies:
        Study.create(root)
    _race(_reader_adder, [(f"r{w}", studies) for w in range(WORKERS)])
    for root in studies:
        readers = json.loads((Path(root) / "study.json").read_text())["readers"]
        assert sorted(readers) == sorted(f"r{w}-{n}" for w in range(WORKERS) for n in range(5))


def test_update_settings_rereads_the_file_and_writes_nothing_when_the_change_fails(tmp_path):
    first, second = Study.create(tmp_path / "s"), Study.open(tmp_path / "s")
    first.update_settings(lambda s: s.readers.append("ann"))
    second.update_settings(lambda s: s.readers.append("bob"))  # second's copy was read before "ann" was added
    assert Study.open(tmp_path / "s").settings.readers == ["ann", "bob"]
    before = (tmp_path / "s" / "study.json").read_bytes()

    def broken(settings):
        settings.readers.append("carl")
        raise StudyError("no")

    with pytest.raises(StudyError):
        first.update_settings(broken)
    assert (tmp_path / "s" / "study.json").read_bytes() == before


def test_the_lock_file_does_not_make_a_new_folder_look_used(tmp_path):
    root = tmp_path / "new"
    root.mkdir()
    with study_write_lock(root):
        pass
    assert (root / LOCK_FILE).exists()
    Study.create(root)  # the lock file alone is not "a folder that is not empty"
    assert Study.is_study(root)


def test_a_writer_that_cannot_get_the_lock_in_time_is_told_why(tmp_path):
    root = tmp_path / "s"
    Study.create(root)
    context = multiprocessing.get_context("spawn")
    ready, done = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(root), ready, done))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(StudyError, match="another program"), study_write_lock(root, timeout=0.2):
            pass
    finally:
        done.set()
        holder.join(60)
    with study_write_lock(root, timeout=5):  # released when its holder ends
        pass


def _hold_lock(root: str, ready, done) -> None:
    with study_write_lock(root):
        ready.set()
        done.wait(60)


def test_study_json_with_entries_of_the_wrong_kind_is_one_clean_error(tmp_path):
    root = tmp_path / "s"
    Study.create(root)
    data = json.loads((root / "study.json").read_text())
    for key, value, words in (("imports", [1, "x"], "'imports' entry 1 must be an object"),
                              ("readers", [{"a": 1}], "'readers' entry 1 must be a string")):
        (root / "study.json").write_text(json.dumps({**data, key: value}))
        with pytest.raises(StudyError, match=words):
            Study.open(root)
