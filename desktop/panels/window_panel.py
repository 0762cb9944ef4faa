"""Window and level: presets (bone, soft tissue, the paper's min-max, the file's own) and free centre/width."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.imaging.image import SliceImage
from core.imaging.windowing import BONE, SOFT_TISSUE, Window, min_max_window

PRESET_BONE, PRESET_SOFT, PRESET_MIN_MAX, PRESET_DICOM, PRESET_CUSTOM = "bone", "soft", "min-max", "dicom", "custom"


class WindowLevelPanel(QtWidgets.QGroupBox):
    """Emits ``windowChanged(Window)`` whenever the preset, centre or width changes."""

    windowChanged = QtCore.Signal(object)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.preset = QtWidgets.QComboBox()
        self.preset.setToolTip("Window preset; right-drag on the image changes width (left-right) and level (up-down)")
        self.center = QtWidgets.QDoubleSpinBox(decimals=0, minimum=-5000, maximum=10000, singleStep=10)
        self.width = QtWidgets.QDoubleSpinBox(decimals=0, minimum=1, maximum=20000, singleStep=10)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Preset", self.preset)
        form.addRow("Level (centre)", self.center)
        form.addRow("Width", self.width)
        self._image: SliceImage | None = None
        self._updating = False
        self._populate(None)
        self.preset.currentIndexChanged.connect(self._on_preset)
        self.center.valueChanged.connect(self._on_values)
        self.width.valueChanged.connect(self._on_values)

    def _populate(self, image: SliceImage | None) -> None:
        current = self.preset.currentData()
        self._updating = True
        self.preset.clear()
        if image is None or image.hu:
            self.preset.addItem(f"Bone ({BONE.center:g}/{BONE.width:g})", PRESET_BONE)
            self.preset.addItem(f"Soft tissue ({SOFT_TISSUE.center:g}/{SOFT_TISSUE.width:g})", PRESET_SOFT)
        self.preset.addItem("Min-max (the paper's export)", PRESET_MIN_MAX)
        if image is not None and image.windows:
            self.preset.addItem(f"From file: {image.windows[0].label()}", PRESET_DICOM)
        self.preset.addItem("Custom", PRESET_CUSTOM)
        index = self.preset.findData(current)
        self.preset.setCurrentIndex(index if index >= 0 else 0)
        self._updating = False

    def set_image(self, image: SliceImage) -> Window:
        """Adapt the presets to ``image`` and return the window to show it with."""
        first = self._image is None or self._image.hu != image.hu
        self._image = image
        self._populate(image)
        if first:
            default = PRESET_DICOM if image.windows else (PRESET_BONE if image.hu else PRESET_MIN_MAX)
            self.preset.setCurrentIndex(max(0, self.preset.findData(default)))
        if self.preset.currentData() in (PRESET_MIN_MAX, PRESET_DICOM) or first:
            self._apply(self._preset_window())
        return self.window()

    def window(self) -> Window:
        return Window(self.center.value(), max(1.0, self.width.value()))

    def set_window(self, window: Window, *, custom: bool = True) -> None:
        if custom:
            self._updating = True
            self.preset.setCurrentIndex(self.preset.findData(PRESET_CUSTOM))
            self._updating = False
        self._apply(window)

    def nudge(self, dx: float, dy: float) -> None:
        """Right-drag: moving right widens the window, moving down raises the level (PACS convention)."""
        current = self.window()
        scale = max(1.0, current.width) / 200.0
        self.set_window(Window(current.center + dy * scale, max(1.0, current.width + dx * scale)))

    def _preset_window(self) -> Window:
        key = self.preset.currentData()
        if key == PRESET_SOFT:
            return SOFT_TISSUE
        if key == PRESET_MIN_MAX and self._image is not None:
            return min_max_window(self._image.pixels)
        if key == PRESET_DICOM and self._image is not None and self._image.windows:
            return self._image.windows[0]
        if key == PRESET_CUSTOM:
            return self.window()
        return BONE if (self._image is None or self._image.hu) else min_max_window(self._image.pixels)

    def _apply(self, window: Window) -> None:
        self._updating = True
        self.center.setValue(window.center)
        self.width.setValue(window.width)
        self._updating = False
        self.windowChanged.emit(self.window())

    def _on_preset(self) -> None:
        if not self._updating:
            self._apply(self._preset_window())

    def _on_values(self) -> None:
        if not self._updating:
            self._updating = True
            self.preset.setCurrentIndex(self.preset.findData(PRESET_CUSTOM))
            self._updating = False
            self.windowChanged.emit(self.window())
