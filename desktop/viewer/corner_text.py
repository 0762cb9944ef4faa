"""Corner text over the image, where radiologists look for it on a PACS: the case and slice (and the slice's
position in mm, when its geometry is known) top left, window and level top right, the zoom bottom right. The bottom
left is the scale bar's; the banners sit above the image, outside it."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from core.imaging.image import SliceImage
from core.imaging.measure import slice_position_mm
from core.imaging.windowing import Window

TOP_LEFT, TOP_RIGHT, BOTTOM_RIGHT = "top-left", "top-right", "bottom-right"
_MARGIN = 6


def slice_caption(image: SliceImage, ids: tuple[str, str] | None) -> str:
    """``case-0001 · s003`` (or what the image calls itself), and the position across the body when known."""
    if ids is not None:
        lines = [f"{ids[0]} · {ids[1]}"]
    elif image.source is not None:
        lines = [f"{image.source.parent.name} · {image.source.name}"]
    else:
        lines = [image.label or "slice"]
    position = slice_position_mm(image)
    if position is not None:
        thickness = image.plane.thickness_mm if image.plane is not None else None
        slab = f" · {thickness:.1f} mm thick" if thickness else ""
        lines.append(f"x {position:+.1f} mm{slab}")
    return "\n".join(lines)


def window_caption(window: Window) -> str:
    return f"W {window.width:g}  L {window.center:g}"


def zoom_caption(screen_px_per_image_px: float) -> str:
    return f"Zoom {screen_px_per_image_px * 100:.0f}%"


def _style(label: QtWidgets.QLabel) -> None:
    """Light text on a dark translucent ground, readable over bone and air alike (a palette, not a style sheet:
    these labels repaint with every slice)."""
    palette = label.palette()
    palette.setColor(QtGui.QPalette.ColorRole.Window, QtGui.QColor(0, 0, 0, 150))
    palette.setColor(QtGui.QPalette.ColorRole.WindowText, QtGui.QColor("#F2F2F2"))
    label.setPalette(palette)
    label.setAutoFillBackground(True)
    label.setContentsMargins(5, 2, 5, 2)
    font = label.font()
    font.setPointSizeF(9.0)
    label.setFont(font)


class CornerText(QtCore.QObject):
    """Three labels over ``host``'s corners (the graphics view), let through by the mouse, kept in place by
    :meth:`place` whenever the host is resized."""

    def __init__(self, host: QtWidgets.QWidget) -> None:
        super().__init__(host)
        self._host = host
        self.labels: dict[str, QtWidgets.QLabel] = {}
        for corner in (TOP_LEFT, TOP_RIGHT, BOTTOM_RIGHT):
            label = QtWidgets.QLabel(host)
            label.setObjectName(f"corner-{corner}")
            label.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            _style(label)
            label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight if corner != TOP_LEFT
                               else QtCore.Qt.AlignmentFlag.AlignLeft)
            label.hide()
            self.labels[corner] = label

    def text(self, corner: str) -> str:
        label = self.labels[corner]
        return "" if label.isHidden() else label.text()

    def show_slice(self, image: SliceImage | None, ids: tuple[str, str] | None = None) -> None:
        self._set(TOP_LEFT, slice_caption(image, ids) if image is not None else "")

    def show_window(self, window: Window | None) -> None:
        self._set(TOP_RIGHT, window_caption(window) if window is not None else "")

    def show_zoom(self, screen_px_per_image_px: float | None) -> None:
        self._set(BOTTOM_RIGHT, zoom_caption(screen_px_per_image_px) if screen_px_per_image_px else "")

    def clear(self) -> None:
        for corner in self.labels:
            self._set(corner, "")

    def _set(self, corner: str, text: str) -> None:
        label = self.labels[corner]
        if text == label.text() and label.isHidden() == (not text):
            return
        label.setText(text)
        label.setVisible(bool(text))
        if text:
            label.adjustSize()
            self._place(corner, label)

    def place(self) -> None:
        for corner, label in self.labels.items():
            if not label.isHidden():
                self._place(corner, label)

    def _place(self, corner: str, label: QtWidgets.QLabel) -> None:
        width, height = self._host.width(), self._host.height()
        x = _MARGIN if corner == TOP_LEFT else width - label.width() - _MARGIN
        y = height - label.height() - _MARGIN if corner == BOTTOM_RIGHT else _MARGIN
        label.move(x, y)
