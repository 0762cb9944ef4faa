"""The shortcuts, listed from :mod:`desktop.review.shortcuts` (F1 shows or hides the panel)."""

from __future__ import annotations

from html import escape

from PySide6 import QtWidgets

from desktop.review.shortcuts import CONSENSUS_SHORTCUTS, MOUSE, SHORTCUTS, Shortcut


def shortcuts_html() -> str:
    rows = [f"<tr><td><b>{escape(' / '.join(s.keys))}</b></td><td>{escape(s.text)}</td></tr>"
            for s in SHORTCUTS.values()]
    rows += [f"<tr><td><b>{escape(what)}</b></td><td>{escape(does)}</td></tr>" for what, does in MOUSE]
    takes = [k for k in CONSENSUS_SHORTCUTS if k.startswith("take_reader_")]
    consensus = [s for k, s in CONSENSUS_SHORTCUTS.items() if k not in takes]
    consensus.insert(2, Shortcut(("1", "2", "3", "…"), "Take reader 1's, 2's, 3's … version"))
    rows.append("<tr><td colspan='2'><br><b>Consensus mode</b></td></tr>")
    rows += [f"<tr><td><b>{escape(' / '.join(s.keys))}</b></td><td>{escape(s.text)}</td></tr>" for s in consensus]
    return "<table cellspacing='2' cellpadding='1'>" + "".join(rows) + "</table>"


class HelpPanel(QtWidgets.QTextBrowser):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHtml(shortcuts_html())
        self.setOpenLinks(False)
