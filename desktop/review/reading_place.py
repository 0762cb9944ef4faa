"""Reopen a study where the reader left off: the slice and the window. The place is written a moment after the
reader stops paging or changing the window (never on every step), and when the study is closed or replaced."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore

from core.review.places import PlaceBook, ReadingPlace
from core.review.preferences import AppDirs
from core.review.session import ReviewSession
from core.study.slice_key import slice_key
from desktop.panels.window_panel import PRESET_CUSTOM, WindowLevelPanel
from desktop.review.controller import ReviewController
from desktop.workers import run_in_background

#: How long after the last change the place is written (ms).
SAVE_DELAY_MS = 1500


class PlaceKeeper(QtCore.QObject):
    """Follows the controller's slice and the panel's window; ``save()`` before another study replaces this one and
    when the window closes; ``place()`` says where to open a study (the controller shows that slice first, so that
    reopening draws one slice, not two) and ``restore()`` then draws its window."""

    message = QtCore.Signal(str)

    def __init__(self, controller: ReviewController, window_panel: WindowLevelPanel, dirs: AppDirs | None = None,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.controller, self.window_panel = controller, window_panel
        self.book = PlaceBook(dirs)
        self._session: ReviewSession | None = None
        self._restoring = False
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SAVE_DELAY_MS)
        self._timer.timeout.connect(self._save_in_background)
        controller.sliceShown.connect(self._changed)
        window_panel.windowChanged.connect(self._changed)
        self._told = False

    def place(self, session: ReviewSession) -> ReadingPlace | None:
        """Where ``session``'s reader left off in its study, when that slice is still in the study."""
        place = self.book.place(session.study.root, session.reader)
        if place is None or (place.case, place.slice_id) not in session.position:
            return None
        return place

    def restore(self, session: ReviewSession, place: ReadingPlace | None) -> bool:
        """Follow ``session`` from now on; draw ``place``'s window (its slice was shown by the controller). False
        where there is no place, and the study stays at its first slice with the image's own window."""
        self._session = session
        if place is None:
            return False
        self._restoring = True
        try:
            self._restore_window(place)
        finally:
            self._restoring = False
        return True

    def _restore_window(self, place: ReadingPlace) -> None:
        combo = self.window_panel.preset
        index = combo.findData(place.preset) if place.preset and place.preset != PRESET_CUSTOM else -1
        if index >= 0:
            combo.setCurrentIndex(index)  # a preset is worked out again for this image (min-max, the file's)
        elif place.window is not None:
            self.window_panel.set_window(place.window)

    def current(self) -> ReadingPlace | None:
        key = self.controller.key
        if self._session is None or key is None or self.controller.session is not self._session:
            return None
        key = slice_key(key)
        return ReadingPlace(key.case, key.slice_id, self.window_panel.window(), self.window_panel.shown_preset() or "")

    def _changed(self, *_args) -> None:
        if not self._restoring and self._session is not None:
            self._timer.start()

    def _save_in_background(self) -> None:
        """The timer's write: off the GUI thread (the file is written atomically, with an fsync)."""
        place, session = self.current(), self._session
        if place is not None and session is not None:
            run_in_background(self.book.try_remember, Path(session.study.root), session.reader, place,
                              on_result=self._tell, owner=self)

    def _tell(self, problem: str | None) -> None:
        if problem and not self._told:
            self._told = True
            self.message.emit(f"Where you left off is not remembered: {problem}")

    def save(self) -> None:
        """Write the current place now, on this thread (a study being left, the window closing)."""
        self._timer.stop()
        place, session = self.current(), self._session
        if place is None or session is None:
            return
        self._tell(self.book.try_remember(Path(session.study.root), session.reader, place))
