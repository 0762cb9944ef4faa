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
    "next_box": Shortcut(("Tab",), "Select the next box down the spine"),
    "previous_box": Shortcut(("Shift+Tab",), "Select the next box up the spine"),
    "level_up": Shortcut(("]",), "Selected box: next level down the spine (T12 → L1); the other boxes follow"),
    "level_down": Shortcut(("[",), "Selected box: previous level (L1 → T12); the other boxes follow"),
    "delete": Shortcut(("Del", "Backspace"), "Delete the selected box"),
    "undo": Shortcut(("Ctrl+Z",), "Undo"),
    "redo": Shortcut(("Ctrl+Shift+Z", "Ctrl+Y"), "Redo"),
    "overlay": Shortcut(("M",), "Show mine + model / mine / model / consensus"),
    "fit": Shortcut(("F",), "Fit the image to the window"),
    "zoom_in": Shortcut(("=", "+"), "Zoom in (also Ctrl+wheel)"),
    "zoom_out": Shortcut(("-",), "Zoom out"),
    "measure_ruler": Shortcut(("D",), "Measure a distance: drag a ruler on the image (in mm; not saved)"),
    "measure_roi": Shortcut(("R",), "Measure HU in a region: drag an ellipse (mean, SD, area; not saved)"),
    "clear_measurements": Shortcut(("Esc",), "Clear the measurements on the image"),
    "search": Shortcut(("Ctrl+F",), "Search case id"),
    "run_slice": Shortcut(("Ctrl+R",), "Run the model on this slice"),
    "run_case": Shortcut(("Ctrl+Shift+R",), "Run the model on this case"),
    "mark_done": Shortcut(("Ctrl+D",), "Mark this case done in your reading (with blinding on, you then see the "
                                       "other readers' boxes and the consensus of it)"),
    "retrain": Shortcut(("Ctrl+Shift+T",), "Retrain the models from the reviewed and agreed slices"),
    "versions": Shortcut(("Ctrl+Shift+V",), "Model versions: activate one, or roll back"),
    "consensus_mode": Shortcut(("Ctrl+Shift+C",), "Enter or leave the consensus mode"),
    "help": Shortcut(("F1",), "Show or hide this list"),
}

#: The consensus mode's keys (on only while the mode is; the review keys are off then).
CONSENSUS_SHORTCUTS: dict[str, Shortcut] = {
    "next_disagreement": Shortcut(("PgDown", "N"), "Next disagreement (also the mouse wheel)"),
    "previous_disagreement": Shortcut(("PgUp", "P"), "Previous disagreement"),
    **{f"take_reader_{i}": Shortcut((str(i),), f"Take reader {i}'s version (row {i} of the table)")
       for i in range(1, 10)},
    "take_majority": Shortcut(("M",), "Take the majority (refused for a conflict)"),
    "edit_result": Shortcut(("E",), "Edit the result: drag its box, tick its diseases"),
    "record_edit": Shortcut(("Return", "Enter"), "Record the edited result"),
    "cancel_edit": Shortcut(("Esc",), "Cancel the edit"),
    "clear_decision": Shortcut(("Del", "Backspace"), "Clear this vertebra's decision"),
    "accept_unanimous": Shortcut(("U",), "Accept all unanimous vertebrae (slices not final)"),
    "finalise": Shortcut(("Ctrl+Return", "Ctrl+Enter"), "Finalise this slice"),
}

MOUSE: tuple[tuple[str, str], ...] = (
    ("Left-drag on the image", "Draw a new box"),
    ("Click a box", "Select it, yours or the model's (an edit of the model's takes it into yours)"),
    ("Drag a box / its handles", "Move it / resize it"),
    ("Right-drag", "Window (left-right) and level (up-down)"),
    ("Middle-drag or Shift+left-drag", "Pan"),
    ("D or R, then left-drag", "Measure a distance / HU in a region (Esc clears; never saved)"),
    ("Wheel / Ctrl+wheel", "Next or previous slice / zoom"),
)
