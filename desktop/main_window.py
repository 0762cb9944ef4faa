"""The main window: puts the viewer, the panels and the menus together; opening runs in the background."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from core import __version__
from core.errors import VertebraReviewError
from core.imaging.stacks import SliceStack
from core.imaging.windowing import Window
from core.study.stack import open_any
from desktop.dialogs.messages import show_error
from desktop.panels.slice_list import SliceListPanel
from desktop.panels.window_panel import WindowLevelPanel
from desktop.viewer.slice_view import SliceView
from desktop.workers import run_in_background

APP_NAME = "Vertebra Review"


class MainWindow(QtWidgets.QMainWindow):
    """Opens an image, a DICOM file or folder, a NIfTI volume or a study, and pages through its slices."""

    stackOpened = QtCore.Signal(object)
    openFailed = QtCore.Signal(str)

    def __init__(self, reader: str | None = None) -> None:
        super().__init__()
        self.reader = reader
        self.stack: SliceStack | None = None
        self.index = 0
        self._opening: Path | None = None
        self.setWindowTitle(APP_NAME)
        screen = QtGui.QGuiApplication.primaryScreen()
        available = screen.availableGeometry() if screen is not None else QtCore.QRect(0, 0, 1280, 860)
        self.resize(min(1280, available.width()), min(860, available.height() - 40))
        self._setup_viewer()
        self._setup_panels()
        self._setup_actions()
        self._setup_status()

    # -- setup ----------------------------------------------------------------------------------------------------
    def _setup_viewer(self) -> None:
        self.viewer = SliceView(self)
        self.setCentralWidget(self.viewer)

    def _setup_panels(self) -> None:
        self.slice_list = SliceListPanel()
        self.slice_list.sliceSelected.connect(self.show_slice)
        self._add_dock("Slices", self.slice_list, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        self.window_panel = WindowLevelPanel()
        self.window_panel.windowChanged.connect(self.viewer.set_window)
        self.viewer.windowDragged.connect(self.window_panel.nudge)
        self._add_dock("Display", self.window_panel, QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        self.resizeDocks(
            [self.findChild(QtWidgets.QDockWidget, "dock-display")], [300], QtCore.Qt.Orientation.Horizontal
        )

    def _add_dock(self, title: str, widget: QtWidgets.QWidget, area: QtCore.Qt.DockWidgetArea) -> None:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(area, dock)

    def _action(self, text: str, slot, shortcut: QtGui.QKeySequence | str | None = None) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _setup_actions(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(
            self._action("Open &image or volume…", self._ask_open_file, QtGui.QKeySequence.StandardKey.Open)
        )
        file_menu.addAction(self._action("Open &DICOM folder…", self._ask_open_folder, "Ctrl+Shift+O"))
        file_menu.addAction(self._action("Open &study…", self._ask_open_study, "Ctrl+Alt+O"))
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", self.close, QtGui.QKeySequence.StandardKey.Quit))
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self._action("&Fit to window", self.viewer.fit, "F"))
        view_menu.addAction(
            self._action("&Next slice", lambda: self.step(1), QtGui.QKeySequence.StandardKey.MoveToNextPage)
        )
        view_menu.addAction(
            self._action("&Previous slice", lambda: self.step(-1), QtGui.QKeySequence.StandardKey.MoveToPreviousPage)
        )
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self._action("&About", self._about))

    def _setup_status(self) -> None:
        self.problem_label = QtWidgets.QLabel()
        self.problem_label.setStyleSheet("color: #D55E00")
        self.statusBar().addWidget(self.problem_label)
        self.cursor_label = QtWidgets.QLabel()
        self.statusBar().addPermanentWidget(self.cursor_label)
        self.viewer.cursorMoved.connect(self._on_cursor)
        self.statusBar().showMessage("Open an image, a DICOM folder, a NIfTI volume or a study (File menu).")

    # -- opening --------------------------------------------------------------------------------------------------
    def _ask_open_file(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self,
            "Open image or volume",
            "",
            "Images and volumes (*.dcm *.png *.jpg *.jpeg *.nii *.nii.gz);;All files (*)",
        )
        if path:
            self.open_path(Path(path))

    def _ask_open_folder(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open DICOM or image folder")
        if path:
            self.open_path(Path(path))

    def _ask_open_study(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open study folder")
        if path:
            self.open_path(Path(path))

    def open_path(self, path: str | Path) -> None:
        """Open ``path`` in the background; the current slices stay on screen until it has loaded."""
        path = Path(path)
        self._opening = path
        self.statusBar().showMessage(f"Opening {path} …")
        run_in_background(
            open_any,
            path,
            self.reader,
            on_result=lambda stack: self._on_opened(path, stack),
            on_error=lambda error: self._on_open_failed(path, error),
        )

    def _on_opened(self, path: Path, stack: SliceStack) -> None:
        if len(stack) == 0:
            self._on_open_failed(path, VertebraReviewError("nothing to show: no slices", path))
            return
        self.stack = stack
        self.slice_list.set_stack(stack)
        self.setWindowTitle(f"{APP_NAME} — {stack.name or path.name}")
        self.show_slice(min(stack.start_index, len(stack) - 1), fit=True)
        message = f"Opened {path} ({len(stack)} slices)"
        self.statusBar().showMessage(f"{message}. {stack.warning}" if stack.warning else message)
        self.stackOpened.emit(stack)

    def _on_open_failed(self, path: Path, error: BaseException) -> None:
        self.statusBar().showMessage(f"Could not open {path.name}")
        self.openFailed.emit(str(error))
        show_error(self, "Could not open", error, "Nothing else has changed. Check the file, or open another one.")

    # -- slices ---------------------------------------------------------------------------------------------------
    def show_slice(self, index: int, *, fit: bool = False) -> None:
        if self.stack is None or not 0 <= index < len(self.stack):
            return
        self.index = index
        self.slice_list.select(index)
        self.problem_label.clear()
        try:
            image = self.stack.image(index)
        except VertebraReviewError as error:
            self._slice_problem(index, f"image not shown: {error}")
            self.viewer.clear()
            return
        window = self.window_panel.set_image(image)
        self.viewer.set_slice(image, window, fit=fit)
        try:
            self.viewer.set_annotation(self.stack.annotation(index))
        except VertebraReviewError as error:
            self.viewer.set_annotation(None)
            self._slice_problem(index, f"annotation not shown: {error}")

    def _slice_problem(self, index: int, problem: str) -> None:
        """Mark only this slice: everything else keeps working."""
        self.slice_list.mark_problem(index, problem)
        self.problem_label.setText(f"⚠ {self.stack.label(index) if self.stack else ''}: {problem}")

    def step(self, delta: int) -> None:
        if self.stack is not None:
            self.show_slice(max(0, min(len(self.stack) - 1, self.index + delta)))

    def current_window(self) -> Window:
        return self.window_panel.window()

    # -- status ---------------------------------------------------------------------------------------------------
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
