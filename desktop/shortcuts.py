"""Every keyboard shortcut of the workspace, in one table: the window's actions and the help panel use it."""

from __future__ import annotations

from dataclasses import dataclass

from core.annotations.model import DISEASES


@dataclass(frozen=True)
class Shortcut:
    keys: tuple[str, ...]
    text: str


SHORTCUTS: dict[str, Shortcut] = {
    "next_slice": Shortcut(("PgDown",), "Next slice (also the mouse wheel)"),
    "previous_slice": Shortcut(("PgUp",), "Previous slice"),
    "reviewed_next": Shortcut(("Return", "Enter"), "Mark the slice reviewed and go to the next one "
                                                   "(on an untouched slice with a model result: accept it too)"),
    "accept": Shortcut(("A",), "Accept the model's result for this slice"),
    **{f"disease_{d.value}": Shortcut((str(i),), f"Toggle {d.value} on the selected box")
       for i, d in enumerate(DISEASES, start=1)},
    "normal": Shortcut(("0",), "Set the selected box NORMAL"),
    "next_box": Shortcut(("Tab",), "Select the next box"),
    "previous_box": Shortcut(("Shift+Tab",), "Select the previous box"),
    "level_up": Shortcut(("]",), "Selected box: next level down the spine (T12 → L1)"),
    "level_down": Shortcut(("[",), "Selected box: previous level (L1 → T12)"),
    "delete": Shortcut(("Del", "Backspace"), "Delete the selected box"),
    "undo": Shortcut(("Ctrl+Z",), "Undo"),
    "redo": Shortcut(("Ctrl+Shift+Z", "Ctrl+Y"), "Redo"),
    "overlay": Shortcut(("M",), "Show mine + model / mine / model / consensus"),
    "fit": Shortcut(("F",), "Fit the image to the window"),
    "zoom_in": Shortcut(("=", "+"), "Zoom in (also Ctrl+wheel)"),
    "zoom_out": Shortcut(("-",), "Zoom out"),
    "search": Shortcut(("Ctrl+F",), "Search case id"),
    "run_slice": Shortcut(("Ctrl+R",), "Run the model on this slice"),
    "run_case": Shortcut(("Ctrl+Shift+R",), "Run the model on this case"),
    "help": Shortcut(("F1",), "Show or hide this list"),
}

MOUSE: tuple[tuple[str, str], ...] = (
    ("Left-drag on the image", "Draw a new box"),
    ("Click a box", "Select it"),
    ("Drag a box / its handles", "Move it / resize it"),
    ("Right-drag", "Window (left-right) and level (up-down)"),
    ("Middle-drag or Shift+left-drag", "Pan"),
    ("Wheel / Ctrl+wheel", "Next or previous slice / zoom"),
)
