"""The Consensus menu: the consensus mode's switch, and the mode's actions with their keys (off until the mode is
on; the window turns them on and the review's editing keys off, and back)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from PySide6 import QtGui, QtWidgets

from desktop.consensus.controller import ConsensusController


def add_consensus_menu(bar: QtWidgets.QMenuBar, k: ConsensusController,
                       action: Callable[..., QtGui.QAction]) -> tuple[QtGui.QAction, list[QtGui.QAction]]:
    """``action(menu, text, slot, name, group=...)`` makes one action (the window's helper); returns the mode switch
    and the mode's actions."""
    menu = bar.addMenu("&Consensus")
    mode = action(menu, "&Consensus mode", k.set_active, "consensus_mode")
    mode.setCheckable(True)
    menu.addSeparator()
    group: list[QtGui.QAction] = []
    action(menu, "&Next disagreement", partial(k.step, 1), "next_disagreement", group=group)
    action(menu, "&Previous disagreement", partial(k.step, -1), "previous_disagreement", group=group)
    for number in range(1, 10):
        action(menu, f"Take reader {number}'s version", partial(k.take_reader_number, number),
               f"take_reader_{number}", group=group).setVisible(number <= 3)
    action(menu, "Take the &majority", k.take_majority, "take_majority", group=group)
    action(menu, "&Edit the result", k.editing.start, "edit_result", group=group)
    action(menu, "&Record the edited result", k.editing.record, "record_edit", group=group)
    action(menu, "Cancel the edit", k.editing.cancel, "cancel_edit", group=group)
    action(menu, "&Clear the decision", k.clear, "clear_decision", group=group)
    action(menu, "Accept all &unanimous vertebrae", k.accept_unanimous, "accept_unanimous", group=group)
    action(menu, "&Finalise this slice", k.finalise, "finalise", group=group)
    action(menu, "Re&open this slice", k.reopen, group=group)
    action(menu, "Agreement &statistics…", k.statistics.show, group=group)
    for item in group:
        item.setEnabled(False)
    return mode, group
