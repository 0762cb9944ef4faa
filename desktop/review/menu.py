"""The review's Edit and View menus: its actions with their keys. The editing ones go in ``group``, which the window
turns off while the consensus mode has the viewer (and back)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from PySide6 import QtGui, QtWidgets

from core.annotations.model import DISEASES
from desktop.panels.case_list import CaseListPanel
from desktop.review.controller import ReviewController
from desktop.viewer.slice_view import SliceView


def add_edit_menu(bar: QtWidgets.QMenuBar, c: ReviewController, action: Callable[..., QtGui.QAction],
                  group: list[QtGui.QAction]) -> tuple[QtGui.QAction, QtGui.QAction]:
    """``action(menu, text, slot, name, group=...)`` makes one action (the window's helper); returns Undo and
    Redo."""
    edit = bar.addMenu("&Edit")
    undo = action(edit, "&Undo", c.undo, "undo", group=group)
    redo = action(edit, "&Redo", c.redo, "redo", group=group)
    edit.addSeparator()
    action(edit, "&Accept the model's result", c.accept_model, "accept", group=group)
    action(edit, "Reviewed, &next slice", c.reviewed_next, "reviewed_next", group=group)
    action(edit, "&Delete box", c.delete_box, "delete", group=group)
    for disease in DISEASES:
        action(edit, f"Toggle {disease.value}", partial(c.toggle_disease, disease), f"disease_{disease}", group=group)
    action(edit, "Set NORMAL", c.set_normal, "normal", group=group)
    action(edit, "Level down the spine", partial(c.step_level, 1), "level_up", group=group)
    action(edit, "Level up the spine", partial(c.step_level, -1), "level_down", group=group)
    action(edit, "Next box", partial(c.select_step, 1), "next_box", group=group)
    action(edit, "Previous box", partial(c.select_step, -1), "previous_box", group=group)
    edit.addSeparator()
    action(edit, "Mark this case &done (my reading)", c.mark_case_done, "mark_done", group=group)
    return undo, redo


def add_view_menu(bar: QtWidgets.QMenuBar, c: ReviewController, viewer: SliceView, cases: CaseListPanel,
                  action: Callable[..., QtGui.QAction], group: list[QtGui.QAction]) -> QtGui.QAction:
    """As :func:`add_edit_menu`; returns the switch of the smooth display."""
    view = bar.addMenu("&View")
    action(view, "&Next slice", partial(c.step, 1), "next_slice", group=group)
    action(view, "&Previous slice", partial(c.step, -1), "previous_slice", group=group)
    action(view, "&Search case…", cases.focus_search, "search")
    action(view, "&Boxes shown: mine / model / both / consensus / readers", c.cycle_overlay, "overlay", group=group)
    action(view, "&Fit to window", viewer.fit, "fit")
    action(view, "Zoom &in", partial(viewer.zoom, 1.25), "zoom_in")
    action(view, "Zoom &out", partial(viewer.zoom, 0.8), "zoom_out")
    view.addSeparator()
    smooth = action(view, "S&mooth display (when enlarged)", viewer.set_smooth)
    smooth.setCheckable(True)
    smooth.setChecked(viewer.smooth)
    action(view, "Measure a &distance (ruler)", partial(viewer.start_measure, "ruler"), "measure_ruler")
    action(view, "Measure H&U in a region (ellipse)", partial(viewer.start_measure, "roi"), "measure_roi")
    action(view, "&Clear measurements", viewer.clear_measurements, "clear_measurements", group=group)
    return smooth
