"""Window and level: presets (bone, soft tissue, the paper's min-max, the file's own) and free centre/width.

The panel is the one source of the drawn window: every change goes out through ``windowChanged``, and the preset box
always names what is drawn, the matching preset or "Custom (centre/width)". A new image keeps the chosen preset,
worked out again for that image (its min-max, its file's window); a preset the new image does not offer gives way to
the image's default, and a custom window stays as it is.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.imaging.image import SliceImage
from core.imaging.windowing import BONE, SOFT_TISSUE, Window, min_max_window

PRESET_BONE, PRESET_SOFT, PRESET_MIN_MAX, PRESET_DICOM, PRESET_CUSTOM = "bone", "soft", "min-max", "dicom", "custom"


def default_preset(image: SliceImage) -> str:
    """The file's window if it has one, else bone for HU, else min-max (as :meth:`SliceImage.default_window`)."""
    return PRESET_DICOM if image.windows else (PRESET_BONE if image.hu else PRESET_MIN_MAX)


def preset_keys(image: SliceImage | None) -> list[str]:
    """The presets ``image`` offers, in the box's order (custom not included)."""
    keys = [PRESET_BONE, PRESET_SOFT] if image is None or image.hu else []
    keys.append(PRESET_MIN_MAX)
    if image is not None and image.windows:
        keys.append(PRESET_DICOM)
    return keys


def preset_window(key: str, image: SliceImage | None) -> Window:
    """What preset ``key`` draws ``image`` with (min-max and the file's window need the image)."""
    if key == PRESET_MIN_MAX and image is not None:
        return min_max_window(image.pixels)
    if key == PRESET_DICOM and image is not None and image.windows:
        return image.windows[0]
    return SOFT_TISSUE if key == PRESET_SOFT else BONE


def _same(a: Window, b: Window) -> bool:
    """Equal as the spin boxes show them (whole numbers)."""
    return abs(a.center - b.center) <= 0.51 and abs(max(1.0, a.width) - max(1.0, b.width)) <= 0.51


class WindowLevelPanel(QtWidgets.QGroupBox):
    """Emits ``windowChanged(Window)`` whenever the drawn window changes (preset, centre, width, a new image)."""

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
        self._presets: dict[str, Window | None] = {}  # min-max is worked out when it is needed
        self._chosen = PRESET_BONE  # the preset that applies to the next image (custom: the window stays)
        self._updating = False
        self._populate(None)  # every fixed preset: the box takes its width from them, once, and keeps it
        self._apply(BONE, PRESET_BONE)
        self.preset.currentIndexChanged.connect(self._on_preset)
        self.center.valueChanged.connect(self._on_values)
        self.width.valueChanged.connect(self._on_values)

    # -- the image ---------------------------------------------------------------------------------------------------
    def set_image(self, image: SliceImage) -> Window:
        """Offer ``image``'s presets, apply the chosen one to it, and return the window to draw it with."""
        first = self._image is None or self._image.hu != image.hu
        self._image = image
        self._populate(image)
        if first or (self._chosen != PRESET_CUSTOM and self._chosen not in self._presets):
            self._chosen = default_preset(image)
        window = self.window() if self._chosen == PRESET_CUSTOM else self._preset(self._chosen)
        self._apply(window, self._chosen)
        return self.window()

    def _populate(self, image: SliceImage | None) -> None:
        self._presets = {key: None for key in preset_keys(image)}
        names = {PRESET_BONE: f"Bone ({BONE.center:g}/{BONE.width:g})",
                 PRESET_SOFT: f"Soft tissue ({SOFT_TISSUE.center:g}/{SOFT_TISSUE.width:g})",
                 PRESET_MIN_MAX: "Min-max (the paper's export)"}
        if image is not None and image.windows:
            names[PRESET_DICOM] = f"From file ({image.windows[0].center:g}/{image.windows[0].width:g})"
        items = [(names[key], key) for key in self._presets]
        shown = [(self.preset.itemText(i), self.preset.itemData(i)) for i in range(self.preset.count() - 1)]
        if items == shown:
            return  # the same presets as the last slice's (the custom entry is named in _apply)
        self._updating = True
        self.preset.clear()
        for name, key in items:
            self.preset.addItem(name, key)
        self.preset.addItem("Custom", PRESET_CUSTOM)
        self._updating = False

    # -- the window ---------------------------------------------------------------------------------------------------
    def window(self) -> Window:
        return Window(self.center.value(), max(1.0, self.width.value()))

    def shown_preset(self) -> str:
        """The key of the preset the box shows: the one that draws the current window, or ``custom``."""
        return self.preset.currentData()

    def set_window(self, window: Window) -> None:
        """Draw ``window``; the box names the preset that draws it (the chosen one first), else custom."""
        self._apply(window, self._chosen)

    def nudge(self, dx: float, dy: float) -> None:
        """Right-drag: moving right widens the window, moving down raises the level (PACS convention)."""
        current = self.window()
        scale = max(1.0, current.width) / 200.0
        self.set_window(Window(current.center + dy * scale, max(1.0, current.width + dx * scale)))

    def _preset(self, key: str) -> Window:
        if self._presets.get(key) is None:
            self._presets[key] = preset_window(key, self._image)
        return self._presets[key]

    def _matching(self, window: Window, prefer: str) -> str:
        """The preset that draws ``window`` on this image (``prefer`` first when several do), else custom. The
        slice's own min-max counts only while it is the chosen preset: it changes from slice to slice, and working
        it out for every slice would slow paging down."""
        if prefer in self._presets and _same(self._preset(prefer), window):
            return prefer
        fixed = (key for key in self._presets if key != PRESET_MIN_MAX)
        return next((key for key in fixed if _same(self._preset(key), window)), PRESET_CUSTOM)

    def _apply(self, window: Window, prefer: str) -> None:
        """Put ``window`` in the spin boxes, name it in the preset box and send it out to be drawn."""
        self._updating = True
        self.center.setValue(window.center)
        self.width.setValue(window.width)
        drawn = self.window()
        self._chosen = self._matching(drawn, prefer)
        custom = self.preset.findData(PRESET_CUSTOM)
        self.preset.setItemText(custom, f"Custom ({drawn.center:g}/{drawn.width:g})")
        self.preset.setCurrentIndex(self.preset.findData(self._chosen))
        self._updating = False
        self.windowChanged.emit(drawn)

    def _on_preset(self) -> None:
        if not self._updating:
            key = self.preset.currentData()
            self._apply(self.window() if key == PRESET_CUSTOM else self._preset(key), key)

    def _on_values(self) -> None:
        if not self._updating:
            self.set_window(self.window())
