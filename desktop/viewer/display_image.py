"""The slice's image item: pyqtgraph's ImageItem, drawn with bilinear interpolation where the image is enlarged on
screen (more than one device pixel per image pixel) and with nearest-neighbour where it is reduced or smoothing is
off, as a PACS viewer does."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

_SMOOTH = QtGui.QPainter.RenderHint.SmoothPixmapTransform


def device_zoom(transform: QtGui.QTransform, pixel_ratio: float = 1.0) -> float:
    """Device pixels per image pixel along the more enlarged axis of ``transform`` (item to device)."""
    x_scale = math.hypot(transform.m11(), transform.m12())
    y_scale = math.hypot(transform.m21(), transform.m22())
    return max(x_scale, y_scale) * pixel_ratio


class DisplayImageItem(pg.ImageItem):
    """``smooth``: interpolate when enlarged (on by default). ``smoothed`` says how the last paint drew."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.smooth = True
        self.smoothed = False
        self._pixmap: tuple[QtGui.QImage, QtGui.QPixmap] | None = None  # the last rendered image, as a pixmap

    def set_smooth(self, on: bool) -> None:
        if on != self.smooth:
            self.smooth = on
            self.update()

    def paint(self, painter: QtGui.QPainter, *args) -> None:
        device = painter.device()
        ratio = device.devicePixelRatioF() if device is not None else 1.0
        # the image drawn may be downsampled (autoDownsample): compare the screen with the data's own pixels
        smooth = self.smooth and device_zoom(painter.worldTransform(), ratio) > 1.0
        self.smoothed = smooth
        if smooth == bool(painter.renderHints() & _SMOOTH):
            self._draw(painter)
            return
        painter.save()
        painter.setRenderHint(_SMOOTH, smooth)
        self._draw(painter)
        painter.restore()

    def _draw(self, painter: QtGui.QPainter) -> None:
        """As pyqtgraph's ``ImageItem.paint``, but the rendered image is turned into a pixmap once per render: drawing
        the 8-bit grey image scaled converted it on every paint (about 3 ms of each 1024 x 1024 repaint)."""
        if self.image is None:
            return
        if self._renderRequired:
            self.render()
            if self._unrenderable:
                return
        if self.qimage is None:
            return
        if self._pixmap is None or self._pixmap[0] is not self.qimage:
            self._pixmap = (self.qimage, QtGui.QPixmap.fromImage(self.qimage))
        if self.paintMode is not None:
            painter.setCompositionMode(self.paintMode)
        rows, cols = self.image.shape[:2]
        width, height = (cols, rows) if self.axisOrder == "row-major" else (rows, cols)
        pixmap = self._pixmap[1]
        painter.drawPixmap(QtCore.QRectF(0, 0, width, height), pixmap, QtCore.QRectF(pixmap.rect()))
