"""Telling people what went wrong and what to do, without losing what they have."""

from __future__ import annotations

from PySide6 import QtWidgets

from core.errors import VertebraReviewError


def error_text(error: BaseException) -> str:
    if isinstance(error, VertebraReviewError):
        return str(error)
    return f"Unexpected error: {type(error).__name__}: {error}"


def show_error(parent: QtWidgets.QWidget | None, title: str, error: BaseException | str, advice: str = "") -> None:
    text = error if isinstance(error, str) else error_text(error)
    if advice:
        text = f"{text}\n\n{advice}"
    QtWidgets.QMessageBox.warning(parent, title, text)


def show_info(parent: QtWidgets.QWidget | None, title: str, text: str) -> None:
    QtWidgets.QMessageBox.information(parent, title, text)


def confirm(parent: QtWidgets.QWidget | None, title: str, text: str) -> bool:
    """Yes/No question; only an explicit No (or closing the box) says no."""
    Button = QtWidgets.QMessageBox.StandardButton
    answer = QtWidgets.QMessageBox.question(parent, title, text, Button.Yes | Button.No, Button.Yes)
    return answer not in (Button.No, Button.Cancel, Button.Close)
