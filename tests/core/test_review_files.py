"""Per-user preferences, the study lock, the findings CSV and the reader's export, opening sources and models."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from core.annotations.labelme_io import read_labelme
from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.errors import ImageReadError, ModelPackageError, StudyError
from core.progress import run
from core.review.export import FINDINGS_FILE, ExportSource, export_review
from core.review.findings import COLUMNS, findings_csv
from core.review.lock import StudyLock
from core.review.models import DEMO_BANNER, ModelLink, load_pipeline, peek_active_model
from core.review.opening import default_study_for, import_as_study
from core.review.preferences import CONFIG_ENV, AppDirs, Preferences, app_dirs
from core.study.layout import Study


@pytest.fixture()
def dirs(tmp_path) -> AppDirs:
    return AppDirs(tmp_path / "cfg", tmp_path / "cfg" / "state", tmp_path / "cfg" / "data")


@pytest.fixture()
def study(tmp_path) -> Study:
    study = Study.create(tmp_path / "study")
    folder = study.root / "images" / "case-0001"
    folder.mkdir(parents=True)
    for number in (1, 2):
        Image.fromarray(np.full((60, 90), 50 * number, np.uint8)).save(folder / f"s{number:03d}.png")
    return study


# -- preferences ---------------------------------------------------------------------------------------------------
def test_config_dir_override_and_round_trip(tmp_path, monkeypatch, study):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "elsewhere"))
    dirs = app_dirs()
    assert dirs.config == tmp_path / "elsewhere" and dirs.state.parent == dirs.config
    prefs = Preferences.load()
    assert prefs.reader is None and prefs.problem is None
    prefs.set_reader(" dr-lee ")
    prefs.remember_study(study.root)
    prefs.remember_study(tmp_path / "gone")
    prefs.remember_study(study.root)
    prefs.extra["future"] = 1
    prefs.save()
    again = Preferences.load()
    assert again.reader == "dr-lee" and again.recent[0] == str(study.root.resolve()) and len(again.recent) == 2
    assert again.recent_studies() == [study.root.resolve()] and again.extra == {"future": 1}
    with pytest.raises(StudyError, match="not allowed"):
        prefs.set_reader("../x")


@pytest.mark.parametrize("content", ["{not json", "[1]", '{"reader": "a b"}', '{"recent": "x"}', "\udcff"])
def test_bad_preferences_fall_back_to_defaults(dirs, content):
    dirs.config.mkdir(parents=True)
    Preferences.path(dirs).write_bytes(content.encode("utf-8", "surrogateescape"))
    prefs = Preferences.load(dirs)
    assert prefs.reader is None and prefs.recent == [] and "preferences.json" in prefs.problem


# -- lock ------------------------------------------------------------------------------------------------------------
def test_the_same_reader_opening_twice_is_seen_and_another_reader_is_not(study):
    first = StudyLock(study.root, "r1")
    assert first.holder() is None
    first.acquire()
    second = StudyLock(study.root, "r1")
    holder = second.holder()
    assert holder is not None and holder.pid == os.getpid() and "reader r1" in holder.describe()
    assert first.holder() is None  # our own lock
    assert StudyLock(study.root, "r2").holder() is None
    second.acquire()  # taken over after the warning
    first.release()  # not ours any more: stays
    assert second.path.is_file()
    second.release()
    assert not second.path.exists()


def test_a_stale_or_broken_lock_is_free(study):
    lock = StudyLock(study.root, "r1")
    lock.path.parent.mkdir(parents=True)
    import socket

    dead = {"reader": "r1", "host": socket.gethostname(), "pid": 2**22 + 12345, "since": "x", "token": "t"}
    lock.path.write_text(json.dumps(dead))
    assert lock.holder() is None
    lock.path.write_text(json.dumps(dead | {"host": "other-machine"}))
    assert lock.holder() is not None and "other-machine" in lock.holder().describe()
    lock.path.write_text("garbage")
    assert lock.holder() is None


# -- findings and export ---------------------------------------------------------------------------------------------
def vertebrae() -> tuple[Vertebra, ...]:
    return (
        Vertebra(Box(5, 5, 40, 25), frozenset({Disease.OVCF, Disease.KD}), {"OVCF": 0.9, "KD": 0.7}, 0.98, "L1",
                 genant=3),
        Vertebra(Box(5, 30, 40, 50), level=None, source="r1"),
    )


def test_findings_csv_has_one_row_per_vertebra():
    rows = list(csv.reader(findings_csv([(("case-0001", "s001"), SliceAnnotation(90, 60, vertebrae(), reader="r1",
                                                                                reviewed=True))]).splitlines()))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 3
    first = dict(zip(COLUMNS, rows[1], strict=True))
    assert first["label"] == "OVCF+KD" and first["OVCF"] == first["KD"] == "1" and first["OF"] == "0"
    assert first["p_OVCF"] == "0.9" and first["p_NORMAL"] == "" and first["level"] == "L1"
    assert first["reviewed"] == "1" and first["reader"] == "r1" and first["x2"] == "40.0"
    assert first["genant"] == "3"
    second = dict(zip(COLUMNS, rows[2], strict=True))
    assert second["label"] == "NORMAL" and second["score"] == "" and second["source"] == "r1"
    assert second["genant"] == ""  # unknown
    assert COLUMNS.index("genant") == COLUMNS.index("PS") + 1


def test_export_writes_labelme_files_csv_and_unsaved_edits(study, tmp_path):
    study.save_annotation(SliceAnnotation(90, 60, vertebrae()[:1]), "case-0001", "s001", reader="r1")
    unsaved = SliceAnnotation(90, 60, vertebrae()[1:], reader="r1")
    out = tmp_path / "out"
    report = run(export_review(study, out, ExportSource.reader("r1"), overrides={("case-0001", "s002"): unsaved}))
    assert report.images == 2 and report.annotations == 2 and not report.errors
    first = read_labelme(out / "case-0001" / "s001.json")
    assert first.image_path == "s001.png" and first.vertebrae[0].diseases == {Disease.OVCF, Disease.KD}
    second = json.loads((out / "case-0001" / "s002.json").read_text())
    assert second["imagePath"] == "s002.png" and second["shapes"][0]["label"] == "NORMAL"
    assert Image.open(out / "case-0001" / "s002.png").size == (90, 60)
    rows = list(csv.DictReader((out / FINDINGS_FILE).open()))
    assert [(r["slice"], r["label"]) for r in rows] == [("s001", "OVCF+KD"), ("s002", "NORMAL")]
    with pytest.raises(StudyError, match="outside the study"):
        run(export_review(study, study.root / "export", ExportSource.reader("r1")))


# -- opening sources and models ------------------------------------------------------------------------------------
def test_an_image_folder_becomes_a_study_found_again_next_time(tmp_path, dirs):
    source = tmp_path / "pngs"
    source.mkdir()
    for number in (1, 2):
        Image.fromarray(np.full((40, 30), 10 * number, np.uint8)).save(source / f"img{number}.png")
    root, report = run(import_as_study(source, dirs=dirs))
    assert root == default_study_for(source, dirs) and root.parent == dirs.data / "studies"
    assert len(Study.open(root).all_slices()) == 2 and report.slice_count == 2
    root_again, again = run(import_as_study(source, dirs=dirs))
    assert root_again == root and again.duplicates and len(Study.open(root).all_slices()) == 2
    with pytest.raises(StudyError, match="open it directly"):
        run(import_as_study(root, dirs=dirs))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(StudyError, match="nothing could be imported"):
        run(import_as_study(empty, tmp_path / "empty-study"))


def test_peek_active_model(study):
    assert peek_active_model(study) == ModelLink()
    (study.root / "predictions" / "old-model").mkdir(parents=True)
    study.settings.model = "old-model"
    assert peek_active_model(study) == ModelLink("old-model", None)
    models = study.root / "models"
    (models / "v2").mkdir(parents=True)
    (models / "v2" / "manifest.json").write_text(json.dumps({"kind": "model-set", "demo": True}))
    (models / "active").write_text(json.dumps({"id": "v2"}))
    assert peek_active_model(study) == ModelLink("v2", models / "v2", demo=True)
    (models / "active").write_text(json.dumps({"id": "../../etc"}))
    assert "not usable" in peek_active_model(study).problem
    (models / "active").write_text(json.dumps({"id": "v3"}))
    link = peek_active_model(study)
    assert link.model_id == "v3" and link.path is None and "cannot be read" in link.problem
    elsewhere = study.root.parent / "elsewhere-v4"  # a whole model set linked out of the study: not run
    shutil.copytree(models / "v2", elsewhere)
    (models / "v4").symlink_to(elsewhere)
    (models / "active").write_text(json.dumps({"id": "v4"}))
    link = peek_active_model(study)
    assert link.path is None and "leads outside" in link.problem and "resolves through a symbolic link" in link.problem


def test_loading_a_missing_model_says_so(tmp_path):
    with pytest.raises(ModelPackageError, match="no such model folder"):
        load_pipeline(tmp_path / "nothing", device="cpu")


def test_demo_banner_is_the_registrys_notice():
    from core.models.registry import DEMO_NOTICE

    assert DEMO_BANNER == DEMO_NOTICE


def test_open_review_gives_a_session_quick_statuses_and_the_model(study, dirs, tmp_path):
    from core.review.opening import open_review
    from core.review.status import SliceStatus

    study.save_annotation(SliceAnnotation(90, 60, vertebrae()), "case-0001", "s002", model="v2")
    models = study.root / "models"
    (models / "v2").mkdir(parents=True)
    (models / "v2" / "manifest.json").write_text(json.dumps({"kind": "model-set", "demo": False}))
    (models / "active").write_text(json.dumps({"id": "v2"}))
    events = []
    opened = run(open_review(study.root, "r1", dirs=dirs), events.append)
    assert opened.session.keys == [("case-0001", "s001"), ("case-0001", "s002")] and opened.imported is None
    assert opened.model == ModelLink("v2", models / "v2") and opened.session.model_id == "v2"
    assert [s.status for s in opened.summaries.values()] == [SliceStatus.UNREAD, SliceStatus.PRE_ANNOTATED]
    assert opened.session.journal.path.parent == dirs.state / "journal" and events[-1].message.startswith("opened")
    with pytest.raises(ImageReadError, match="no such file"):
        run(open_review(tmp_path / "missing", "r1", dirs=dirs))


def test_a_study_opened_into_a_folder_is_worked_on_in_a_copy(study, dirs, tmp_path):
    from core.review.opening import open_review, working_copy

    copy = tmp_path / "copies" / "mine"
    opened = run(open_review(study.root, "r1", import_into=copy, dirs=dirs))
    assert opened.session.study.root == copy and len(opened.session.keys) == 2
    opened.session.add_box(("case-0001", "s001"), Box(1, 1, 30, 30))
    assert (copy / "readers" / "r1" / "case-0001" / "s001.json").is_file()
    assert not study.reader_path("r1", "case-0001", "s001").exists()
    assert run(working_copy(study.root, copy)) == copy  # made once, then reused
    assert not [p for p in copy.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_the_working_copy_shares_only_the_model_weights_with_the_bundle(tmp_path):
    """A file written in place in the bundle (an update, a hand edit) must not change the working copy: only the
    weights, which are never written in place, are shared by a hard link."""
    from core.review.opening import working_copy

    source = tmp_path / "bundle"
    (source / "models" / "v1" / "detector").mkdir(parents=True)
    (source / "study.json").write_text('{"name": "demo"}')
    (source / "models" / "active").write_text('{"id": "v1"}')
    (source / "models" / "v1" / "detector" / "weights.safetensors").write_bytes(b"w" * 64)
    copy = run(working_copy(source, tmp_path / "copy"))
    with (source / "models" / "active").open("w") as handle:  # in place: the same inode
        handle.write('{"id": "v2"}')
    assert (copy / "models" / "active").read_text() == '{"id": "v1"}'
    assert (copy / "study.json").stat().st_ino != (source / "study.json").stat().st_ino
    weights = "models/v1/detector/weights.safetensors"
    assert (copy / weights).read_bytes() == b"w" * 64
    assert (copy / weights).stat().st_ino == (source / weights).stat().st_ino  # shared on one file system


def test_a_study_without_its_settings_file_is_not_imported_as_new_images(study, tmp_path, dirs):
    """study.json lost (or replaced by a folder): the study's images would become a new study in the data folder,
    each DICOM and its PNG twice, and the readers' files left behind; it is refused with what to do instead."""
    (study.root / "readers" / "r1").mkdir(parents=True)
    (study.root / "study.json").unlink()
    for broken in ("missing", "a folder"):
        if broken == "a folder":
            (study.root / "study.json").mkdir()
        with pytest.raises(StudyError, match=r"laid out as a study but its study\.json is missing"):
            run(import_as_study(study.root, dirs=dirs))
    assert not (dirs.data / "studies").exists()
