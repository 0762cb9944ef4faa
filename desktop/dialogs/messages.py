"""Telling people what went wrong and what to do, without losing what they have."""

from __future__ import annotations

from PySide6 import QtWidgets

from core.errors import VertebraReviewError


def error_text(error: BaseException) -> str:
    if isinstance(error, VertebraReviewError):
        return str(error)
    return f"Unexpected error: {type(error).__name__}: {error}"


def show_error(parent: QtWidgets.QWidget | None, title: str, error: BaseException, advice: str = "") -> None:
    text = error_text(error)
    if advice:
        text = f"{text}\n\n{advice}"
    QtWidgets.QMessageBox.warning(parent, title, text)
