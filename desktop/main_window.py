"""The main window: puts the review workspace together (viewer, case list, panels, menus); no behaviour of its own
beyond opening and closing. What happens on a click or a key is in :mod:`desktop.review.controller`."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from core import __version__
from core.errors import VertebraReviewError
from core.imaging.windowing import Window
from core.review.opening import OpenedReview, demo_source
from core.review.preferences import AppDirs, Preferences
from desktop.consensus.controller import ConsensusController
from desktop.consensus.menu import add_consensus_menu
from desktop.dialogs.messages import confirm, show_error
from desktop.dialogs.reader_dialog import ask_reader
from desktop.panels.case_list import CaseListPanel
from desktop.panels.consensus_panel import ConsensusPanel
from desktop.panels.help_panel import HelpPanel
from desktop.panels.model_panel import ModelPanel
from desktop.panels.retrain_panel import RetrainPanel
from desktop.panels.vertebra_panel import VertebraPanel
from desktop.panels.window_panel import WindowLevelPanel
from desktop.retrain.controller import RetrainController
from desktop.retrain.runner import RetrainRunner
from desktop.review.controller import ReviewController
from desktop.review.export_actions import ExportActions
from desktop.review.menu import add_edit_menu, add_view_menu
from desktop.review.model_runner import Loader, ModelRunner
from desktop.review.pacs_actions import PacsActions
from desktop.review.reading_place import PlaceKeeper
from desktop.review.shortcuts import CONSENSUS_SHORTCUTS, SHORTCUTS
from desktop.review.study_opener import StudyOpener
from desktop.viewer.slice_view import SliceView

APP_NAME = "Vertebra Review"
_LEFT, _RIGHT = QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, QtCore.Qt.DockWidgetArea.RightDockWidgetArea
_BOTTOM = QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
#: The import dialog shows every file first: DICOM files exported from a PACS often have no extension.
IMPORT_FILTERS = ("DICOM, images and volumes, any name (*);;"
                  "Known extensions (*.dcm *.png *.jpg *.jpeg *.nii *.nii.gz)")


class MainWindow(QtWidgets.QMainWindow):
    """The review workspace. ``studyOpened(OpenedReview)`` once a study is on screen."""

    studyOpened = QtCore.Signal(object)
    openFailed = QtCore.Signal(str)

    def __init__(self, reader: str | None = None, *, pipeline_loader: Loader | None = None,
                 dirs: AppDirs | None = None) -> None:
        super().__init__()
        self.dirs = dirs
        self.preferences = Preferences.load(dirs)
        self.reader = reader or self.preferences.reader
        if reader and reader != self.preferences.reader:
            self._remember(reader=reader)
        self.lock = None
        self.opened: OpenedReview | None = None
        self.setWindowTitle(APP_NAME)
        screen = QtGui.QGuiApplication.primaryScreen()
        available = screen.availableGeometry() if screen is not None else QtCore.QRect(0, 0, 1400, 900)
        self.resize(min(1400, available.width()), min(900, available.height() - 40))
        self._setup_viewer()
        self._setup_panels()
        self._setup_controller(pipeline_loader)
        self._setup_actions()
        self._setup_status()

    # -- setup ------------------------------------------------------------------------------------------------------
    def _setup_viewer(self) -> None:
        self.viewer = SliceView(self)
        self.setCentralWidget(self.viewer)

    def _setup_panels(self) -> None:
        self.case_list = CaseListPanel()
        self.inspector = VertebraPanel()
        self.model_panel = ModelPanel()
        self.window_panel = WindowLevelPanel()
        self.help_panel = HelpPanel()
        self._add_dock("Cases", self.case_list, _LEFT)
        self._add_dock("Selected box", self.inspector, _RIGHT)
        self._add_dock("Model", self.model_panel, _RIGHT)
        display = self._add_dock("Window / level", self.window_panel, _RIGHT)
        self.help_dock = self._add_dock("Shortcuts", self.help_panel, _RIGHT)
        self.tabifyDockWidget(display, self.help_dock)
        self.review_docks = [self.findChild(QtWidgets.QDockWidget, f"dock-{name}")
                             for name in ("selected-box", "model")]
        self.consensus_panel = ConsensusPanel()
        self.consensus_dock = self._add_dock("Consensus", self._scrolled(self.consensus_panel), _RIGHT)
        self.tabifyDockWidget(self.help_dock, self.consensus_dock)
        self.consensus_dock.hide()
        display.raise_()
        self.retrain_panel = RetrainPanel()
        self.retrain_dock = self._add_dock("Retrain", self.retrain_panel, _BOTTOM)
        self.retrain_dock.hide()
        self.window_panel.windowChanged.connect(self.viewer.set_window)
        self.viewer.windowDragged.connect(self.window_panel.nudge)

    @staticmethod
    def _scrolled(widget: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
        area = QtWidgets.QScrollArea()
        area.setWidget(widget)
        area.setWidgetResizable(True)
        area.setMinimumWidth(430)
        return area

    def _add_dock(self, title: str, widget: QtWidgets.QWidget, area: QtCore.Qt.DockWidgetArea) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower().replace(' ', '-')}")
        dock.setWidget(widget)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _setup_controller(self, loader: Loader | None) -> None:
        self.runner = ModelRunner(loader, self)
        self.runner.stateChanged.connect(self.model_panel.set_state)
        self.runner.loadFailed.connect(lambda text: show_error(
            self, "Model not available", text, "The app goes on without a model: you can still draw, label and "
            "review boxes. Check the study's models/ folder, or activate another model."))
        self.controller = ReviewController(self.viewer, self.case_list, self.inspector, self.window_panel,
                                           self.model_panel, self.runner, self)
        self.controller.set_overlay(self.preferences.overlay)
        self.places = PlaceKeeper(self.controller, self.window_panel, self.dirs, self)
        self.consensus = ConsensusController(self.controller, self.consensus_panel, self)
        self.consensus.modeChanged.connect(self._on_consensus_mode)
        self.retrain_runner = RetrainRunner(parent=self)
        self.retrain = RetrainController(self, self.retrain_panel, self.retrain_runner, self._study,
                                         self._show_retrain_panel, self)
        self.retrain.modelSwitched.connect(self.controller.model_actions.switch_model)
        self.model_panel.retrainRequested.connect(self.retrain.ask_retrain)
        self.model_panel.versionsRequested.connect(self.retrain.show_versions)
        self.case_list.set_hidden_source(self.controller.reading.hidden)
        self.opener = StudyOpener(self, self.dirs)
        self.opener.opened.connect(self._on_opened)
        self.opener.failed.connect(self._on_open_failed)
        self.opener.progressed.connect(self.statusBar().showMessage)
        self.exports = ExportActions(self, lambda: self.controller.session, lambda: self.controller.key,
                                     self.current_window, self.dirs, preferences=lambda: self.preferences)
        self.pacs = PacsActions(self, lambda: self.controller.session, self.open_path, self.studyOpened, self.dirs,
                                preferences=lambda: self.preferences)

    def _action(self, menu: QtWidgets.QMenu, text: str, slot, name: str | None = None,
                keys: QtGui.QKeySequence.StandardKey | None = None,
                group: list[QtGui.QAction] | None = None) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if group is not None:
            group.append(action)
        if name is not None:
            table = CONSENSUS_SHORTCUTS if name in CONSENSUS_SHORTCUTS else SHORTCUTS
            action.setShortcuts([QtGui.QKeySequence(k) for k in table[name].keys])
        elif keys is not None:
            action.setShortcut(QtGui.QKeySequence(keys))
        action.triggered.connect(slot)
        self.addAction(action)
        menu.addAction(action)
        return action

    def _setup_actions(self) -> None:
        c = self.controller
        self.review_actions: list[QtGui.QAction] = []
        self._setup_file_menu()
        self.undo_action, self.redo_action = add_edit_menu(self.menuBar(), c, self._action, self.review_actions)
        self.smooth_action = add_view_menu(self.menuBar(), c, self.viewer, self.case_list, self._action,
                                           self.review_actions)
        model = self.menuBar().addMenu("&Model")
        self._action(model, "Run on this &slice", c.model_actions.run_on_slice, "run_slice")
        self._action(model, "Run on this &case", c.model_actions.run_on_case, "run_case")
        self._action(model, "&Cancel the run", self.runner.cancel)
        model.addSeparator()
        self.retrain_action = self._action(model, "&Retrain…", self.retrain.ask_retrain, "retrain")
        self._action(model, "Cancel the re&train", self.retrain.cancel)
        self._action(model, "Model &versions…", self.retrain.show_versions, "versions")
        self.retrain.busyChanged.connect(lambda busy: self.retrain_action.setEnabled(not busy))
        self.consensus_mode_action, self.consensus_actions = add_consensus_menu(
            self.menuBar(), self.consensus, self._action)
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&Shortcuts", self.toggle_help, "help")
        self._action(help_menu, "&About", self._about)

    def _setup_file_menu(self) -> None:
        keys = QtGui.QKeySequence.StandardKey
        file = self.menuBar().addMenu("&File")
        self._action(file, "&Open study…", self._ask_open_study, keys=keys.Open)
        self._action(file, "Open &images, DICOM or NIfTI (import)…", self._ask_import)
        self._action(file, "Import a &folder (DICOM or PACS export, images with LabelMe JSON)…",
                     self._ask_import_folder)
        self.recent_menu = file.addMenu("&Recent studies")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._action(file, "Open from &PACS…", self.pacs.ask_open)
        self._action(file, "Open the &demo", self.open_demo)
        file.addSeparator()
        self._action(file, "&Export for labelme (PNG + JSON + CSV)…", self.exports.ask_export)
        self._action(file, "Save findings as &CSV…", self.exports.ask_findings_csv)
        self._action(file, "Open this slice in &labelme", self.exports.open_in_labelme)
        self.pacs.watch_send(self._action(file, "Se&nd results to PACS…", self.pacs.ask_send))
        file.addSeparator()
        self._action(file, "Change &reader…", self._ask_reader)
        self._action(file, "&Quit", self.close, keys=keys.Quit)

    def _on_consensus_mode(self, on: bool) -> None:
        """The consensus mode has the viewer: its keys are on and the review's editing keys are off (and back)."""
        for action in self.review_actions:
            action.setEnabled(not on)
        for action in self.consensus_actions:
            action.setEnabled(on)
        self.consensus_mode_action.setChecked(on)
        self.consensus_dock.setVisible(on)
        for dock in self.review_docks:
            dock.setVisible(not on)
        if on:
            self.consensus_dock.raise_()
            self.resizeDocks([self.consensus_dock], [470], QtCore.Qt.Orientation.Horizontal)

    def _study(self):
        session = self.controller.session
        return session.study if session is not None else None

    def _show_retrain_panel(self) -> None:
        self.retrain_dock.show()
        self.retrain_dock.raise_()

    def _setup_status(self) -> None:
        self.problem_label = QtWidgets.QLabel()
        self.problem_label.setStyleSheet("color: #D55E00")
        self.statusBar().addWidget(self.problem_label)
        self.cursor_label = QtWidgets.QLabel()
        self.statusBar().addPermanentWidget(self.cursor_label)
        self.viewer.cursorMoved.connect(self._on_cursor)
        for told in (self.viewer.statusMessage, self.places.message, self.controller.message, self.exports.message,
                     self.consensus.message, self.retrain.message, self.pacs.message):
            told.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.controller.problemChanged.connect(self.problem_label.setText)
        self.controller.saveFailed.connect(self._on_save_failed)
        self.statusBar().showMessage("Open a study, or images, DICOM or NIfTI to import (File menu).")

    # -- opening ----------------------------------------------------------------------------------------------------
    def _ask_open_study(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open study folder")
        if path:
            self.open_path(Path(path))

    def _ask_import(self) -> None:
        """A file chosen imports its folder (a NIfTI file itself). Every file is shown: DICOM from a PACS often has
        no extension."""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Import images, DICOM or a NIfTI volume (the file's whole folder is imported)", "", IMPORT_FILTERS)
        if path:
            source = Path(path)
            self.open_path(source if source.name.endswith((".nii", ".nii.gz")) else source.parent)

    def _ask_import_folder(self) -> None:
        """A folder and everything under it: how a PACS export (folders of files without extension) comes."""
        path = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Import a folder (DICOM or PACS export, images with LabelMe JSON; subfolders too)")
        if path:
            self.open_path(Path(path))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.preferences.recent_studies() or []:
            self.recent_menu.addAction(str(path), partial(self.open_path, path))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def _ensure_reader(self) -> bool:
        if self.reader is None:
            return self._ask_reader()
        return True

    def _ask_reader(self) -> bool:
        known = self.controller.session.study.readers() if self.controller.session else []
        reader = ask_reader(self, known, self.reader)
        if reader is None:
            return False
        self.reader = reader
        self._remember(reader=reader)
        if self.opened is not None and reader != self.opened.session.reader:
            self.open_path(self.opened.session.study.root)
        return True

    def open_path(self, path: str | Path, *, import_into: str | Path | None = None) -> None:
        """Open a study, or import images, DICOM or NIfTI into one and open that (in the background)."""
        if not self._ensure_reader():
            return
        self.statusBar().showMessage(f"Opening {path} …")
        self.opener.open(path, self.reader, import_into=import_into)

    def open_demo(self) -> None:
        path, target = demo_source(self.dirs)
        self.open_path(path, import_into=target)

    def _on_opened(self, opened: OpenedReview, lock) -> None:
        self.consensus.leave()
        self._release_lock()
        self.runner.cancel()
        self.opened, self.lock = opened, lock
        study = opened.session.study
        self.setWindowTitle(f"{APP_NAME} — {study.settings.name} — reader {opened.session.reader}")
        self.places.save()  # where the reader was in the study being left
        place = self.places.place(opened.session)
        self.controller.set_session(opened, start=(place.case, place.slice_id) if place else None)
        self.places.restore(opened.session, place)
        self._remember(study=study.root)
        skipped = len(opened.imported.skipped) if opened.imported is not None else 0
        listed = f"; {skipped} file(s) not imported, listed with the reasons" if skipped else ""
        self.statusBar().showMessage(f"Opened {study.root} ({len(opened.session.keys)} slices{listed})", 8000)
        self.studyOpened.emit(opened)

    def _on_open_failed(self, text: str) -> None:
        self.statusBar().showMessage(f"Not opened: {text}")
        self.openFailed.emit(text)

    def _on_save_failed(self, text: str) -> None:
        if not getattr(self, "_told_read_only", False):
            self._told_read_only = True
            show_error(self, "Edits not saved in the study", text,
                       "Your edits stay in memory and in the recovery journal. Use File › Export to save them "
                       "in another folder.")

    def _remember(self, *, reader: str | None = None, study: Path | None = None) -> None:
        if reader is not None:
            self.preferences.set_reader(reader)
        if study is not None:
            self.preferences.remember_study(study)
        try:
            self.preferences.save(self.dirs)
        except VertebraReviewError as error:
            self.statusBar().showMessage(f"Preferences not saved: {error}")

    def _release_lock(self) -> None:
        if self.lock is not None:
            try:
                self.lock.release()
            except VertebraReviewError:
                pass
            self.lock = None

    # -- misc -------------------------------------------------------------------------------------------------------
    def current_window(self) -> Window:
        return self.window_panel.window()

    def toggle_help(self) -> None:
        self.help_dock.setVisible(not self.help_dock.isVisible() or self.help_dock.visibleRegion().isEmpty())
        if self.help_dock.isVisible():
            self.help_dock.raise_()

    def _on_cursor(self, where: tuple[int, int, float] | None) -> None:
        image = self.viewer.image
        if where is None or image is None:
            self.cursor_label.clear()
            return
        col, row, value = where
        unit = " HU" if image.hu else ""
        spacing = image.spacing_mm
        mm = f"  ({col * spacing[1]:.1f}, {row * spacing[0]:.1f}) mm" if spacing else ""
        self.cursor_label.setText(f"x {col}  y {row}{mm}   {value:.0f}{unit}")

    def _about(self) -> None:
        QtWidgets.QMessageBox.about(
            self,
            f"About {APP_NAME}",
            f"{APP_NAME} {__version__}\n\nReview of vertebra detection and disease labels on sagittal CT, after "
            "Wang et al., Quant Imaging Med Surg 2024;14(1):800-813.\n\nResearch software: not for clinical use.",
        )

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        session = self.controller.session
        if session is not None and session.saving():  # the last edits are being written: wait, then hear how it went
            session.flush(30)
            QtCore.QCoreApplication.sendPostedEvents()
        if session is not None and session.unsaved() and not confirm(
            self, "Unsaved edits",
            f"{len(session.unsaved())} slice(s) could not be saved in the study. They stay in the recovery journal "
            "and are offered again next time. Close anyway? (No: stay and export them, File › Export.)",
        ):
            event.ignore()
            return
        if self.retrain_runner.busy and not confirm(
            self, "Retrain running",
            "A retrain is running. Closing the window stops it; nothing is activated and the active model stays. "
            "Close anyway?",
        ):
            event.ignore()
            return
        self.retrain_runner.cancel()
        self.consensus.leave()
        self.places.save()
        self.runner.cancel()
        self.controller.summaries.stop()
        self._release_lock()
        self.preferences.overlay = self.controller.overlay_mode
        self._remember()
        super().closeEvent(event)
