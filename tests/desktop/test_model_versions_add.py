"""Model versions in the app (issue 19): a study opened without a model gets the bundled demo models or a model
package from the Model versions dialog, the running model switches to it, a bad package or a read-only study is
told in one message naming the folder, and the dialog speaks plain words ("1 model version", "Rolled back to model
version v1 (created …)", no internal paths)."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
from PySide6 import QtCore, QtWidgets

from core.models.adding import add_models, bundled_demo_models
from core.models.registry import DEMO_NOTICE, Registry
from desktop.main_window import MainWindow
from tests.bundled_models import BUNDLED_SET
from tests.desktop.workspace_helpers import FakePipeline, make_study

No = QtWidgets.QMessageBox.StandardButton.No
LEFT = QtCore.Qt.MouseButton.LeftButton


def open_window(qtbot, root: Path, loaded: list[Path]) -> MainWindow:
    """The main window on ``root``; every model it loads is recorded in ``loaded`` (a fake pipeline runs it)."""
    win = MainWindow(reader="r1", pipeline_loader=lambda path: loaded.append(Path(path)) or FakePipeline())
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    with qtbot.waitSignal(win.studyOpened, timeout=20_000):
        win.open_path(root)
    return win


def open_versions(qtbot, win: MainWindow):
    qtbot.mouseClick(win.model_panel.versions, LEFT)
    dialog = win.retrain.versions_dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def settle(qtbot, win: MainWindow) -> None:
    """The model's run has ended (``finished`` comes just before the runner is ready again)."""
    qtbot.waitUntil(lambda: win.runner.state == "ready" and not win.runner.busy, timeout=20_000)


def user_package(tmp_path: Path) -> Path:
    """A detector package trained elsewhere (the demo detector, not marked demo), in a folder of its own."""
    folder = tmp_path / "from-the-gpu-box"
    shutil.copytree(BUNDLED_SET / "detector", folder / "detector")
    manifest = json.loads((folder / "detector" / "manifest.json").read_text())
    manifest.update(demo=False, notes="")
    (folder / "detector" / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_study_without_a_model_gets_the_bundled_demo_models_and_the_app_runs_them(qtbot, tmp_path):
    study = make_study(tmp_path / "study", model=False, predictions=False)
    loaded: list[Path] = []
    win = open_window(qtbot, study.root, loaded)
    assert win.runner.state == "none" and win.model_panel.add_hint.isVisible()
    dialog = open_versions(qtbot, win)
    assert "No model versions in this study yet" in dialog.heading.text() and dialog.row_texts() == []
    note = dialog.demo_note.text()
    assert "synthetic phantoms" in note and "not for clinical use" in note and not dialog.rollback_button.isEnabled()
    # then the new model's predictions of the unreviewed slices
    with qtbot.waitSignal(win.runner.finished, timeout=60_000) as refreshed, \
            qtbot.waitSignal(win.retrain.modelsAdded, timeout=60_000) as added:
        qtbot.mouseClick(dialog.add_demo_button, LEFT)
        assert not dialog.add_demo_button.isEnabled()  # one add at a time
    settle(qtbot, win)
    assert added.args[0].activated and len(refreshed.args[1]) == 4
    assert loaded == [study.root / "models" / "v1"]  # the running model switched to the new version
    registry = Registry(study.root / "models")
    version = registry.active()
    assert version.model_id == "v1" and version.demo and version.classifier is not None
    assert [row[0] for row in dialog.row_texts()] == ["v1"]
    notes = dialog.row_texts()[0][6]
    assert "active" in notes and "demo" in notes and "just added" in notes
    assert dialog.heading.text().startswith("1 model version in this study;")
    assert DEMO_NOTICE in dialog.status.text() and "It is now the active model" in dialog.status.text()
    assert not win.model_panel.add_hint.isVisible() and dialog.add_demo_button.isEnabled()


def test_a_package_the_user_points_to_is_checked_copied_and_activated_when_they_say_so(
        qtbot, tmp_path, monkeypatch, message_boxes):
    study = make_study(tmp_path / "study")  # the fake model fake-v1 is active
    package = user_package(tmp_path)
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(package)))
    loaded: list[Path] = []
    win = open_window(qtbot, study.root, loaded)
    qtbot.waitUntil(lambda: win.runner.state == "ready", timeout=20_000)
    dialog = open_versions(qtbot, win)
    with qtbot.waitSignal(win.runner.finished, timeout=60_000), \
            qtbot.waitSignal(win.retrain.modelsAdded, timeout=60_000) as added:
        qtbot.mouseClick(dialog.add_package_button, LEFT)  # answered Yes: make it the active model
    assert not added.args[0].activated and added.args[0].active == "fake-v1"
    kind, _, question = message_boxes[-1]
    assert kind == "question" and "Make v1 the active model now?" in question and str(package) in question
    assert Registry(study.root / "models").active_id() == "v1"
    settle(qtbot, win)
    assert loaded[-1] == study.root / "models" / "v1"
    rows = {row[0]: row for row in dialog.row_texts()}
    assert rows["v1"][3] == "detector only" and "demo" not in rows["v1"][6] and "active" in rows["v1"][6]
    assert (study.root / "models" / "v1" / "detector" / "weights.safetensors").is_file()
    # a second time the answer is No: the new version waits, selected, for the Activate button
    message_boxes.answers.append(No)
    with qtbot.waitSignal(win.retrain.modelsAdded, timeout=60_000):
        qtbot.mouseClick(dialog.add_package_button, LEFT)
    assert Registry(study.root / "models").active_id() == "v1" and dialog.selected_id() == "v2"
    assert dialog.activate_button.isEnabled()
    with qtbot.waitSignal(win.runner.finished, timeout=60_000):
        qtbot.mouseClick(dialog.activate_button, LEFT)
        assert Registry(study.root / "models").active_id() == "v2"
    assert dialog.status.text().startswith("Model version v2 (created ") and "is now the active model" in \
        dialog.status.text()
    assert loaded[-1] == study.root / "models" / "v2"


def test_a_bad_package_is_told_in_one_message_naming_the_folder_and_the_app_goes_on(
        qtbot, tmp_path, monkeypatch, message_boxes):
    study = make_study(tmp_path / "study", model=False, predictions=False)
    broken = tmp_path / "downloaded-model"
    broken.mkdir()
    (broken / "manifest.json").write_text("{ not json")
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(broken)))
    win = open_window(qtbot, study.root, [])
    dialog = open_versions(qtbot, win)
    with qtbot.waitSignal(win.retrain.addFailed, timeout=60_000):
        qtbot.mouseClick(dialog.add_package_button, LEFT)
    warnings = [m for m in message_boxes if m[0] == "warning"]
    assert len(warnings) == 1 and warnings[0][1] == "Models not added"
    text = warnings[0][2]
    assert text.startswith(f"{broken} is not a model package this app can use. Manifest is not readable JSON")
    assert "The problem is in manifest.json." in text and "Nothing was added" in text
    assert Registry(study.root / "models").versions() == [] and win.isVisible() and dialog.isVisible()
    assert dialog.add_package_button.isEnabled() and "not a model package" in dialog.status.text()


def test_a_read_only_study_is_told_in_one_message_and_nothing_is_added(qtbot, tmp_path, monkeypatch,
                                                                        message_boxes):
    import core.study.lock

    class ReadOnly:
        def acquire(self, timeout=None):
            raise OSError(errno.EROFS, "Read-only file system")

    study = make_study(tmp_path / "study", model=False, predictions=False)
    win = open_window(qtbot, study.root, [])
    dialog = open_versions(qtbot, win)
    monkeypatch.setattr(core.study.lock, "_lock_for", lambda root: ReadOnly())
    with qtbot.waitSignal(win.retrain.addFailed, timeout=60_000):
        qtbot.mouseClick(dialog.add_demo_button, LEFT)
    (_, title, text), = [m for m in message_boxes if m[0] == "warning"]
    assert title == "Models not added"
    assert text.startswith(f"The models in {bundled_demo_models()} could not be added to this study. "
                           "Cannot write to this study: it is on a read-only disk.")
    assert Registry(study.root / "models").versions() == [] and win.runner.state == "none" and win.isVisible()


def test_versions_and_rollback_are_told_in_plain_words(qtbot, tmp_path, message_boxes):
    study = make_study(tmp_path / "study", model=False, predictions=False)
    models = study.root / "models"
    first = add_models(models, BUNDLED_SET / "detector")  # activated: none was active
    second = add_models(models, BUNDLED_SET / "detector")
    Registry(models).activate(second.added.model_id)
    win = open_window(qtbot, study.root, [])
    qtbot.waitUntil(lambda: win.runner.state == "ready", timeout=20_000)
    win.retrain_messages = []
    win.retrain.message.connect(win.retrain_messages.append)
    dialog = open_versions(qtbot, win)
    assert dialog.heading.text().startswith("2 model versions in this study; active: <b>v2</b>")
    assert dialog.rollback_button.text() == "Roll back to v1" and dialog.rollback_button.isEnabled()
    with qtbot.waitSignal(win.runner.finished, timeout=60_000):
        qtbot.mouseClick(dialog.rollback_button, LEFT)
    created = first.added.created.replace("T", " ")[:16]
    assert dialog.status.text() == f"Rolled back to model version v1 (created {created})."
    assert dialog.status.text() in win.retrain_messages
    assert Registry(models).active_id() == "v1" and not dialog.rollback_button.isEnabled()
    win.retrain.rollback()  # nothing earlier: one message, without the internal path of models/active
    (_, title, text), = [m for m in message_boxes if m[0] == "warning"]
    assert title == "Model not changed" and str(study.root) not in text
    assert text.startswith("There is no earlier model to roll back to.")


@pytest.mark.parametrize(("count", "word", "words"), [(0, "model version", "no model versions"),
                                                      (1, "model version", "1 model version"),
                                                      (2, "model version", "2 model versions"),
                                                      (1, "diseased box", "1 diseased box"),
                                                      (3, "diseased box", "3 diseased boxes")])
def test_counts_are_pluralised(count, word, words):
    from desktop.dialogs.model_versions_dialog import plural

    assert plural(count, word) == words


def test_the_training_data_column_counts_in_plain_words():
    from desktop.dialogs.model_versions_dialog import data_text

    text = data_text({"slices": 1, "cases": 1, "new_slices": 1, "boxes_per_class": {"OVCF": 1, "NORMAL": 9}})
    assert text == "1 slice, 1 case; 1 new; 1 diseased box"
