"""The shortcuts, listed from :mod:`desktop.shortcuts` (F1 shows or hides the panel)."""

from __future__ import annotations

from html import escape

from PySide6 import QtWidgets

from desktop.shortcuts import MOUSE, SHORTCUTS


def shortcuts_html() -> str:
    rows = [f"<tr><td><b>{escape(' / '.join(s.keys))}</b></td><td>{escape(s.text)}</td></tr>"
            for s in SHORTCUTS.values()]
    rows += [f"<tr><td><b>{escape(what)}</b></td><td>{escape(does)}</td></tr>" for what, does in MOUSE]
    return "<table cellspacing='2' cellpadding='1'>" + "".join(rows) + "</table>"


class HelpPanel(QtWidgets.QTextBrowser):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHtml(shortcuts_html())
        self.setOpenLinks(False)
