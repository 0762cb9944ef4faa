"""Asking once who is reading (the reader id names their own files in every study)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtWidgets

from core.errors import StudyError
from core.study.layout import check_id


def ask_reader(parent: QtWidgets.QWidget | None, known: Sequence[str] = (), current: str | None = None) -> str | None:
    """The reader id typed or picked, or None when cancelled. Asks again until the id is valid."""
    items = list(dict.fromkeys([*(filter(None, [current])), *known]))
    message = ("Your reader id (letters, digits, '-', '_' and '.'). It names your own annotation files; it is "
               "remembered on this computer.")
    while True:
        text, ok = QtWidgets.QInputDialog.getItem(parent, "Who is reading?", message, items or [""], 0, True)
        if not ok:
            return None
        try:
            return check_id(str(text).strip(), "reader")
        except StudyError as exc:
            message = f"{exc}\n\nYour reader id:"
